//! Proxy bidding: maxima defend themselves one increment at a time, ties go to the earlier
//! maximum, and a maximum is never shown to anyone.
//!
//! Default auction: starting price 1000 ($10.00), fixed increment 100 ($1.00).

use crate::helpers::*;
use gavel_core::{EntryKind, Event, Rejection, MAX_AMOUNT};

#[test]
fn a_first_maximum_leads_at_the_starting_price() {
    let mut a = opened(spec());
    let d = accept(&mut a, &max("ann", 5_000), MID);
    assert_eq!(price(&a), 1_000);
    assert_eq!(leader(&a), "ann");
    assert_eq!(a.state.leader_max, Some(m(5_000)));
    let e = entry(&d);
    assert_eq!(
        e.amount,
        m(1_000),
        "the history shows the price, never the maximum"
    );
    assert_eq!(e.kind, EntryKind::Auto);
    assert_eq!(e.bidder, bidder("ann"));
}

#[test]
fn a_higher_second_maximum_wins_at_one_increment_above_the_first() {
    let mut a = opened(spec());
    accept(&mut a, &max("ann", 2_000), MID);
    let d = accept(&mut a, &max("bob", 5_000), MID);
    assert_eq!(price(&a), 2_100);
    assert_eq!(leader(&a), "bob");
    assert_eq!(a.state.leader_max, Some(m(5_000)));
    assert_eq!(entry(&d).bidder, bidder("bob"));
    assert_eq!(entry(&d).kind, EntryKind::Auto);
}

#[test]
fn a_higher_second_maximum_within_one_increment_wins_at_its_own_maximum() {
    let mut a = opened(spec());
    accept(&mut a, &max("ann", 2_000), MID);
    accept(&mut a, &max("bob", 2_050), MID);
    assert_eq!(price(&a), 2_050, "capped at the winner's maximum");
    assert_eq!(leader(&a), "bob");
}

#[test]
fn a_lower_second_maximum_is_outbid_and_lifts_the_price_one_increment_above_it() {
    let mut a = opened(spec());
    accept(&mut a, &max("ann", 5_000), MID);
    let d = reject(
        &mut a,
        &max("bob", 2_000),
        MID,
        Rejection::Outbid { min_bid: m(2_200) },
    );
    assert!(d.change.is_some(), "the counter-bid is a state change");
    assert_eq!(price(&a), 2_100);
    assert_eq!(leader(&a), "ann");
    assert_eq!(a.state.leader_max, Some(m(5_000)));
    assert_eq!(a.state.bid_count, 2);
    let e = entry(&d);
    assert_eq!(
        e.bidder,
        bidder("ann"),
        "the entry is the proxy's counter-bid"
    );
    assert_eq!(e.kind, EntryKind::Auto);
    assert_eq!(e.amount, m(2_100));
}

#[test]
fn a_lower_second_maximum_within_one_increment_lifts_the_price_to_the_first_maximum() {
    let mut a = opened(spec());
    accept(&mut a, &max("ann", 2_000), MID);
    reject(
        &mut a,
        &max("bob", 1_950),
        MID,
        Rejection::Outbid { min_bid: m(2_100) },
    );
    assert_eq!(price(&a), 2_000);
    assert_eq!(leader(&a), "ann");
}

#[test]
fn equal_maxima_go_to_the_earlier_bidder_at_that_maximum() {
    let mut a = opened(spec());
    accept(&mut a, &max("ann", 3_000), MID);
    reject(
        &mut a,
        &max("bob", 3_000),
        MID + 1,
        Rejection::Outbid { min_bid: m(3_100) },
    );
    assert_eq!(leader(&a), "ann");
    assert_eq!(price(&a), 3_000);
}

#[test]
fn a_plain_bid_below_a_standing_maximum_is_answered_outbid_and_the_price_rises() {
    let mut a = opened(spec());
    accept(&mut a, &max("ann", 5_000), MID);
    let d = reject(
        &mut a,
        &plain("bob", 1_500),
        MID,
        Rejection::Outbid { min_bid: m(1_700) },
    );
    assert!(d.change.is_some());
    assert_eq!(price(&a), 1_600);
    assert_eq!(leader(&a), "ann");
    assert_eq!(entry(&d).kind, EntryKind::Auto);
}

#[test]
fn a_plain_bid_equal_to_a_standing_maximum_loses_to_it() {
    let mut a = opened(spec());
    accept(&mut a, &max("ann", 3_000), MID);
    reject(
        &mut a,
        &plain("bob", 3_000),
        MID,
        Rejection::Outbid { min_bid: m(3_100) },
    );
    assert_eq!(price(&a), 3_000);
    assert_eq!(leader(&a), "ann");
}

#[test]
fn a_plain_bid_above_a_standing_maximum_takes_the_lead_at_its_full_amount() {
    let mut a = opened(spec());
    accept(&mut a, &max("ann", 3_000), MID);
    let d = accept(&mut a, &plain("bob", 4_000), MID);
    assert_eq!(price(&a), 4_000);
    assert_eq!(leader(&a), "bob");
    assert_eq!(a.state.leader_max, None);
    assert_eq!(entry(&d).kind, EntryKind::Bid);
}

#[test]
fn a_maximum_above_a_plain_leader_wins_at_one_increment_above_the_price() {
    let mut a = opened(spec());
    accept(&mut a, &plain("ann", 1_500), MID);
    accept(&mut a, &max("bob", 5_000), MID);
    assert_eq!(price(&a), 1_600);
    assert_eq!(leader(&a), "bob");
}

#[test]
fn a_maximum_keeps_defending_until_it_is_passed() {
    let mut a = opened(spec());
    accept(&mut a, &max("ann", 1_450), MID);
    for (bob, after) in [(1_100, 1_200), (1_300, 1_400)] {
        reject(
            &mut a,
            &plain("bob", bob),
            MID,
            Rejection::Outbid {
                min_bid: m(after + 100),
            },
        );
        assert_eq!(price(&a), after);
    }
    // 1500 > 1450: bob finally leads, at his plain amount.
    accept(&mut a, &plain("bob", 1_500), MID);
    assert_eq!(price(&a), 1_500);
    assert_eq!(leader(&a), "bob");
}

#[test]
fn an_outbid_bidder_may_return_with_a_higher_maximum() {
    let mut a = opened(spec());
    accept(&mut a, &max("ann", 3_000), MID);
    bid(&mut a, &max("bob", 2_000), MID);
    assert_eq!(leader(&a), "ann");
    accept(&mut a, &max("bob", 4_000), MID);
    assert_eq!(leader(&a), "bob");
    assert_eq!(price(&a), 3_100);
}

#[test]
fn the_leader_raising_their_maximum_does_not_raise_the_price() {
    let mut a = opened(spec());
    accept(&mut a, &max("ann", 2_000), MID);
    let before = a.clone();
    let d = accept(&mut a, &max("ann", 3_000), MID);
    assert_eq!(d.change.as_ref().unwrap().event, Event::MaxRaised);
    assert_eq!(a.state.seq, before.state.seq + 1);
    assert_eq!(a.state.price, before.state.price);
    assert_eq!(a.state.bid_count, before.state.bid_count);
    assert_eq!(a.state.leader_max, Some(m(3_000)));
}

#[test]
fn a_plain_leader_may_add_a_maximum_without_moving_the_price() {
    let mut a = opened(spec());
    accept(&mut a, &plain("ann", 1_500), MID);
    let d = accept(&mut a, &max("ann", 2_000), MID);
    assert_eq!(d.change.as_ref().unwrap().event, Event::MaxRaised);
    assert_eq!(price(&a), 1_500);
    assert_eq!(a.state.leader_max, Some(m(2_000)));
    // And the new maximum defends.
    reject(
        &mut a,
        &plain("bob", 1_700),
        MID,
        Rejection::Outbid { min_bid: m(1_900) },
    );
    assert_eq!(price(&a), 1_800);
}

#[test]
fn a_leader_lowering_or_repeating_their_maximum_is_rejected_as_max_not_raised() {
    let mut a = opened(spec());
    accept(&mut a, &max("ann", 2_000), MID);
    let why = Rejection::MaxNotRaised {
        current_max: m(2_000),
    };
    reject(&mut a, &max("ann", 2_000), MID, why);
    reject(&mut a, &max("ann", 1_500), MID, why);
}

#[test]
fn a_plain_leaders_current_maximum_is_the_price() {
    let mut a = opened(spec());
    accept(&mut a, &plain("ann", 1_500), MID);
    reject(
        &mut a,
        &max("ann", 1_500),
        MID,
        Rejection::MaxNotRaised {
            current_max: m(1_500),
        },
    );
}

#[test]
fn the_proxy_increment_is_the_one_at_the_losing_maximum() {
    let mut s = spec();
    s.starting_price = m(900);
    s.increment = table(); // 50 below 1000, 100 from 1000, 500 from 10000
    let mut a = opened(s);
    accept(&mut a, &max("ann", 20_000), MID);
    bid(&mut a, &max("bob", 999), MID);
    assert_eq!(price(&a), 1_049, "999 + 50");
    bid(&mut a, &max("carol", 10_000), MID);
    assert_eq!(price(&a), 10_500, "10000 + 500");
    assert_eq!(leader(&a), "ann");
}

#[test]
fn maxima_at_the_amount_cap_saturate_and_then_nothing_can_beat_them() {
    let mut a = opened(spec());
    accept(&mut a, &max("ann", MAX_AMOUNT), MID);
    reject(
        &mut a,
        &max("bob", MAX_AMOUNT),
        MID,
        Rejection::Outbid {
            min_bid: m(MAX_AMOUNT),
        },
    );
    assert_eq!(price(&a), MAX_AMOUNT);
    assert_eq!(leader(&a), "ann");
    let before = a.clone();
    reject(
        &mut a,
        &max("carol", MAX_AMOUNT),
        MID,
        Rejection::Outbid {
            min_bid: m(MAX_AMOUNT),
        },
    );
    assert_eq!(a, before);
}

#[test]
fn a_leader_raising_a_maximum_that_capped_the_price_keeps_the_lower_price() {
    // Bob leads at his own maximum (2050 < 2000 + 100). Re-pricing from scratch after his
    // raise would give 2100; by the rule, raising your own maximum never moves the price.
    let mut a = opened(spec());
    accept(&mut a, &max("ann", 2_000), MID);
    accept(&mut a, &max("bob", 2_050), MID);
    assert_eq!(price(&a), 2_050);
    let d = accept(&mut a, &max("bob", 5_000), MID);
    assert_eq!(d.change.unwrap().event, Event::MaxRaised);
    assert_eq!(price(&a), 2_050);
    assert_eq!(a.min_bid(), m(2_150));
    // The next challenger re-prices as usual.
    reject(
        &mut a,
        &max("carol", 2_150),
        MID,
        Rejection::Outbid { min_bid: m(2_350) },
    );
    assert_eq!(price(&a), 2_250);
}

/// The worked example in `docs/rules.md`, step by step, so the document cannot drift.
#[test]
fn the_worked_example_in_the_rules_document_holds() {
    let mut s = spec();
    s.starting_price = m(2_000);
    s.increment = gavel_core::IncrementPolicy::Table {
        bands: vec![
            gavel_core::IncrementBand {
                from: 0,
                increment: m(100),
            },
            gavel_core::IncrementBand {
                from: 5_000,
                increment: m(250),
            },
        ],
    };
    s.reserve = Some(m(6_000));
    let mut a = opened(s);

    // 1. Ann: max $45.00. She leads at the starting price; $45 is below the reserve.
    accept(&mut a, &max("ann", 4_500), MID);
    assert_eq!((leader(&a), price(&a)), ("ann".into(), 2_000));
    assert_eq!(a.reserve_met(), Some(false));

    // 2. Bob: plain $30.00. Ann's maximum answers at $31.00; Bob must now bid $32.00.
    reject(
        &mut a,
        &plain("bob", 3_000),
        MID,
        Rejection::Outbid { min_bid: m(3_200) },
    );
    assert_eq!((leader(&a), price(&a)), ("ann".into(), 3_100));

    // 3. Carol: max $70.00. She beats $45.00 at $46.00, lifted to the $60.00 reserve.
    accept(&mut a, &max("carol", 7_000), MID);
    assert_eq!((leader(&a), price(&a)), ("carol".into(), 6_000));
    assert_eq!(a.reserve_met(), Some(true));
    assert_eq!(a.min_bid(), m(6_250), "$2.50 increments from $50.00");

    // 4. Ann: max $65.00. Carol's maximum answers at $65.00 + $2.50.
    reject(
        &mut a,
        &max("ann", 6_500),
        MID,
        Rejection::Outbid { min_bid: m(7_000) },
    );
    assert_eq!((leader(&a), price(&a)), ("carol".into(), 6_750));

    // 5. Ann: max $70.00, equal to Carol's. The earlier maximum wins, at $70.00.
    reject(
        &mut a,
        &max("ann", 7_000),
        MID,
        Rejection::Outbid { min_bid: m(7_250) },
    );
    assert_eq!((leader(&a), price(&a)), ("carol".into(), 7_000));

    // 6. Carol raises her maximum to $90.00: accepted, the price stays $70.00.
    let d = accept(&mut a, &max("carol", 9_000), MID);
    assert_eq!(d.change.unwrap().event, Event::MaxRaised);
    assert_eq!(price(&a), 7_000);

    // 7. Dan: plain $80.00. Carol's maximum answers at $82.50.
    reject(
        &mut a,
        &plain("dan", 8_000),
        MID,
        Rejection::Outbid { min_bid: m(8_500) },
    );
    assert_eq!((leader(&a), price(&a)), ("carol".into(), 8_250));

    // The auction ends: Carol wins at $82.50.
    let closing = gavel_core::close_if_due(&a, END)
        .unwrap()
        .auction
        .state
        .closing
        .unwrap();
    assert_eq!(closing.winner, Some(bidder("carol")));
    assert_eq!(closing.final_price, Some(m(8_250)));
    assert_eq!(a.state.bid_count, 6, "one history entry per price move");
}
