//! Plain bids: the first bid, the increment, stale `seq`, the leader bidding again, and
//! the outcome codes.

use crate::helpers::*;
use gavel_core::{place_bid, EntryKind, Event, Rejection, MAX_AMOUNT};

#[test]
fn the_first_bid_at_the_starting_price_is_accepted_and_recorded() {
    let mut a = opened(spec());
    let before = a.state.seq;
    let d = accept(&mut a, &plain("ann", 1_000), MID);
    assert_eq!(price(&a), 1_000);
    assert_eq!(leader(&a), "ann");
    assert_eq!(a.state.leader_max, None);
    assert_eq!(a.state.bid_count, 1);
    let e = entry(&d);
    assert_eq!(e.seq, before + 1);
    assert_eq!(e.bidder, bidder("ann"));
    assert_eq!(e.amount, m(1_000));
    assert_eq!(e.kind, EntryKind::Bid);
    assert_eq!(e.at, MID);
    assert!(!extended(&d));
}

#[test]
fn a_first_bid_below_the_starting_price_is_rejected_as_outbid() {
    let mut a = opened(spec());
    reject(
        &mut a,
        &plain("ann", 999),
        MID,
        Rejection::Outbid { min_bid: m(1_000) },
    );
    assert_eq!(a.state.price, None);
}

#[test]
fn a_first_bid_above_the_starting_price_sets_the_price_to_the_bid() {
    let mut a = opened(spec());
    accept(&mut a, &plain("ann", 4_321), MID);
    assert_eq!(price(&a), 4_321);
}

#[test]
fn a_bid_below_the_increment_is_rejected_as_outbid() {
    let mut a = opened(spec());
    accept(&mut a, &plain("ann", 1_000), MID);
    let before = a.clone();
    reject(
        &mut a,
        &plain("bob", 1_099),
        MID,
        Rejection::Outbid { min_bid: m(1_100) },
    );
    assert_eq!(a, before, "a rejected bid changes nothing");
}

#[test]
fn a_bid_equal_to_the_price_is_rejected_as_outbid() {
    let mut a = opened(spec());
    accept(&mut a, &plain("ann", 1_000), MID);
    reject(
        &mut a,
        &plain("bob", 1_000),
        MID,
        Rejection::Outbid { min_bid: m(1_100) },
    );
}

#[test]
fn a_bid_of_exactly_price_plus_increment_takes_the_lead() {
    let mut a = opened(spec());
    accept(&mut a, &plain("ann", 1_000), MID);
    assert_eq!(a.min_bid(), m(1_100));
    accept(&mut a, &plain("bob", 1_100), MID);
    assert_eq!(price(&a), 1_100);
    assert_eq!(leader(&a), "bob");
    assert_eq!(a.state.bid_count, 2);
}

#[test]
fn a_bid_far_above_the_minimum_sets_the_price_to_the_bid() {
    let mut a = opened(spec());
    accept(&mut a, &plain("ann", 1_000), MID);
    accept(&mut a, &plain("bob", 7_777), MID);
    assert_eq!(price(&a), 7_777);
    assert_eq!(a.min_bid(), m(7_877));
}

#[test]
fn an_outbid_bidder_may_bid_again() {
    let mut a = opened(spec());
    accept(&mut a, &plain("ann", 1_000), MID);
    accept(&mut a, &plain("bob", 1_100), MID);
    accept(&mut a, &plain("ann", 1_200), MID);
    assert_eq!(leader(&a), "ann");
}

#[test]
fn a_plain_bid_from_the_leader_is_rejected_as_already_leading() {
    let mut a = opened(spec());
    accept(&mut a, &plain("ann", 1_000), MID);
    reject(&mut a, &plain("ann", 5_000), MID, Rejection::AlreadyLeading);
    assert_eq!(price(&a), 1_000);
}

#[test]
fn the_leader_is_recognised_by_id_not_by_display_name() {
    let mut a = opened(spec());
    accept(&mut a, &plain("ann", 1_000), MID);
    let mut r = plain("ann", 2_000);
    r.bidder.name = "Someone Else".into();
    reject(&mut a, &r, MID, Rejection::AlreadyLeading);
}

#[test]
fn a_bid_with_a_stale_expected_seq_is_rejected_as_stale_with_the_current_seq() {
    let mut a = opened(spec());
    accept(&mut a, &plain("ann", 1_000), MID);
    let current = a.state.seq;
    let mut r = plain("bob", 1_100);
    r.expected_seq = Some(current - 1);
    reject(&mut a, &r, MID, Rejection::Stale { seq: current });
    r.expected_seq = Some(current + 1);
    reject(&mut a, &r, MID, Rejection::Stale { seq: current });
}

#[test]
fn a_bid_with_the_current_expected_seq_is_decided_normally() {
    let mut a = opened(spec());
    let mut r = plain("ann", 1_000);
    r.expected_seq = Some(a.state.seq);
    accept(&mut a, &r, MID);
    let mut low = plain("bob", 1_000);
    low.expected_seq = Some(a.state.seq);
    reject(&mut a, &low, MID, Rejection::Outbid { min_bid: m(1_100) });
}

#[test]
fn a_stale_seq_is_reported_before_already_leading_or_too_low() {
    let mut a = opened(spec());
    accept(&mut a, &plain("ann", 1_000), MID);
    let seq = a.state.seq;
    let mut r = plain("ann", 5_000);
    r.expected_seq = Some(seq - 1);
    reject(&mut a, &r, MID, Rejection::Stale { seq });
    let mut r = plain("bob", 1);
    r.expected_seq = Some(seq - 1);
    reject(&mut a, &r, MID, Rejection::Stale { seq });
}

#[test]
fn no_bid_can_beat_a_price_at_the_maximum_amount() {
    let mut s = spec();
    s.starting_price = m(MAX_AMOUNT - 50);
    let mut a = opened(s);
    accept(&mut a, &plain("ann", MAX_AMOUNT), MID);
    assert_eq!(a.min_bid(), m(MAX_AMOUNT), "min_bid saturates at the cap");
    let before = a.clone();
    reject(
        &mut a,
        &plain("bob", MAX_AMOUNT),
        MID,
        Rejection::Outbid {
            min_bid: m(MAX_AMOUNT),
        },
    );
    reject(
        &mut a,
        &max("bob", MAX_AMOUNT),
        MID,
        Rejection::Outbid {
            min_bid: m(MAX_AMOUNT),
        },
    );
    assert_eq!(
        a, before,
        "a bid that cannot raise the price changes nothing"
    );
}

#[test]
fn a_bid_near_the_maximum_amount_saturates_instead_of_overflowing() {
    let mut s = spec();
    s.starting_price = m(MAX_AMOUNT - 150);
    let mut a = opened(s);
    accept(&mut a, &plain("ann", MAX_AMOUNT - 150), MID);
    assert_eq!(a.min_bid(), m(MAX_AMOUNT - 50));
    accept(&mut a, &plain("bob", MAX_AMOUNT - 50), MID);
    assert_eq!(a.min_bid(), m(MAX_AMOUNT));
    accept(&mut a, &plain("ann", MAX_AMOUNT), MID);
    assert_eq!(price(&a), MAX_AMOUNT);
}

#[test]
fn every_rejection_has_a_stable_wire_code() {
    let cases = [
        (Rejection::Outbid { min_bid: m(1) }, "outbid"),
        (Rejection::Stale { seq: 1 }, "stale"),
        (Rejection::AlreadyLeading, "already_leading"),
        (Rejection::NotOpen, "not_open"),
        (Rejection::Closed, "closed"),
        (Rejection::BuyNowUnavailable, "buy_now_unavailable"),
        (Rejection::BuyNowPrice { price: m(1) }, "buy_now_price"),
        (
            Rejection::MaxNotRaised { current_max: m(1) },
            "max_not_raised",
        ),
    ];
    for (r, code) in cases {
        assert_eq!(r.code(), code);
        let json = serde_json::to_value(r).unwrap();
        assert_eq!(json["code"], code, "serialized code matches code()");
        assert_eq!(serde_json::from_value::<Rejection>(json).unwrap(), r);
    }
}

#[test]
fn rejections_carry_what_the_bidder_needs_to_retry() {
    let json = serde_json::to_string(&Rejection::Outbid { min_bid: m(1_100) }).unwrap();
    assert_eq!(json, r#"{"code":"outbid","min_bid":1100}"#);
    let json = serde_json::to_string(&Rejection::Stale { seq: 7 }).unwrap();
    assert_eq!(json, r#"{"code":"stale","seq":7}"#);
}

#[test]
fn a_rejected_bid_has_no_change_and_is_decided_at_the_current_seq() {
    let a = opened(spec());
    let d = place_bid(&a, &plain("ann", 1), MID);
    assert!(d.change.is_none());
    assert_eq!(d.decided_at(&a), a.state.seq);
}

#[test]
fn an_accepted_bid_reports_a_bid_event_at_the_new_seq() {
    let a = opened(spec());
    let d = place_bid(&a, &plain("ann", 1_000), MID);
    let c = d.change.as_ref().unwrap();
    assert!(matches!(c.event, Event::Bid { .. }));
    assert_eq!(d.decided_at(&a), a.state.seq + 1);
}
