//! The reserve: a hidden minimum for a sale. A maximum that reaches it lifts the price to
//! it; an auction that closes below it has no winner.
//!
//! Auction: starting price 1000, increment 100, reserve 5000 ($50.00).

use crate::helpers::*;
use gavel_core::{close_if_due, end_early, EntryKind, Event, Rejection};

fn with_reserve() -> gavel_core::Auction {
    let mut s = spec();
    s.reserve = Some(m(5_000));
    opened(s)
}

#[test]
fn reserve_met_is_none_without_a_reserve() {
    let mut a = opened(spec());
    assert_eq!(a.reserve_met(), None);
    accept(&mut a, &plain("ann", 1_000), MID);
    assert_eq!(a.reserve_met(), None);
}

#[test]
fn the_reserve_is_not_met_before_any_bid_or_below_it_and_is_met_at_it() {
    let mut a = with_reserve();
    assert_eq!(a.reserve_met(), Some(false));
    accept(&mut a, &plain("ann", 4_999), MID);
    assert_eq!(a.reserve_met(), Some(false));
    accept(&mut a, &plain("bob", 5_099), MID);
    assert_eq!(a.reserve_met(), Some(true));
}

#[test]
fn a_plain_bid_exactly_at_the_reserve_meets_it() {
    let mut a = with_reserve();
    accept(&mut a, &plain("ann", 5_000), MID);
    assert_eq!(a.reserve_met(), Some(true));
}

#[test]
fn a_first_maximum_reaching_the_reserve_lifts_the_price_to_the_reserve() {
    let mut a = with_reserve();
    let d = accept(&mut a, &max("ann", 8_000), MID);
    assert_eq!(price(&a), 5_000);
    assert_eq!(a.reserve_met(), Some(true));
    assert_eq!(entry(&d).amount, m(5_000));
}

#[test]
fn a_first_maximum_exactly_at_the_reserve_lifts_the_price_to_the_reserve() {
    let mut a = with_reserve();
    accept(&mut a, &max("ann", 5_000), MID);
    assert_eq!(price(&a), 5_000);
}

#[test]
fn a_maximum_below_the_reserve_does_not_lift_the_price() {
    let mut a = with_reserve();
    accept(&mut a, &max("ann", 4_999), MID);
    assert_eq!(price(&a), 1_000);
    assert_eq!(a.reserve_met(), Some(false));
}

#[test]
fn a_winning_maximum_reaching_the_reserve_pays_at_least_the_reserve() {
    let mut a = with_reserve();
    accept(&mut a, &max("ann", 2_000), MID);
    accept(&mut a, &max("bob", 6_000), MID);
    assert_eq!(leader(&a), "bob");
    assert_eq!(price(&a), 5_000, "not 2100: the reserve lifts it");
}

#[test]
fn a_defending_maximum_reaching_the_reserve_lifts_the_price_to_the_reserve() {
    let mut a = with_reserve();
    accept(&mut a, &max("ann", 6_000), MID);
    assert_eq!(price(&a), 5_000);
    // Bob bids above the old price but below the reserve: he must beat 5000 + 100 now.
    reject(
        &mut a,
        &plain("bob", 3_000),
        MID,
        Rejection::Outbid { min_bid: m(5_100) },
    );
    reject(
        &mut a,
        &plain("bob", 5_200),
        MID,
        Rejection::Outbid { min_bid: m(5_400) },
    );
    assert_eq!(price(&a), 5_300);
}

#[test]
fn the_leader_raising_their_maximum_to_the_reserve_lifts_the_price() {
    let mut a = with_reserve();
    accept(&mut a, &max("ann", 3_000), MID);
    accept(&mut a, &max("ann", 4_000), MID);
    assert_eq!(
        price(&a),
        1_000,
        "still below the reserve: no change in price"
    );
    let count = a.state.bid_count;
    let d = accept(&mut a, &max("ann", 7_000), MID);
    assert_eq!(price(&a), 5_000);
    assert_eq!(a.state.bid_count, count + 1);
    let e = entry(&d);
    assert_eq!(e.kind, EntryKind::Auto);
    assert_eq!(e.amount, m(5_000));
    assert!(matches!(d.change.unwrap().event, Event::Bid { .. }));
}

#[test]
fn a_plain_leader_adding_a_maximum_at_the_reserve_lifts_the_price() {
    let mut a = with_reserve();
    accept(&mut a, &plain("ann", 2_000), MID);
    accept(&mut a, &max("ann", 5_000), MID);
    assert_eq!(price(&a), 5_000);
}

#[test]
fn raising_a_maximum_once_the_reserve_is_met_does_not_move_the_price() {
    let mut a = with_reserve();
    accept(&mut a, &max("ann", 6_000), MID);
    let d = accept(&mut a, &max("ann", 9_000), MID);
    assert_eq!(d.change.unwrap().event, Event::MaxRaised);
    assert_eq!(price(&a), 5_000);
}

#[test]
fn an_auction_closing_below_the_reserve_has_no_winner() {
    let mut a = with_reserve();
    accept(&mut a, &max("ann", 4_000), MID);
    bid(&mut a, &plain("bob", 3_000), MID);
    assert_eq!(price(&a), 3_100);
    let closing = close_if_due(&a, END)
        .unwrap()
        .auction
        .state
        .closing
        .unwrap();
    assert_eq!(closing.winner, None);
    assert_eq!(closing.final_price, None);
}

#[test]
fn an_auction_ended_early_below_the_reserve_has_no_winner() {
    let mut a = with_reserve();
    accept(&mut a, &plain("ann", 4_900), MID);
    let closing = end_early(&a, MID, "carol")
        .unwrap()
        .auction
        .state
        .closing
        .unwrap();
    assert_eq!(closing.winner, None);
    assert_eq!(closing.final_price, None);
}

#[test]
fn an_auction_closing_at_the_reserve_is_sold_to_the_leader() {
    let mut a = with_reserve();
    accept(&mut a, &max("ann", 9_000), MID);
    let closing = close_if_due(&a, END)
        .unwrap()
        .auction
        .state
        .closing
        .unwrap();
    assert_eq!(closing.winner, Some(bidder("ann")));
    assert_eq!(closing.final_price, Some(m(5_000)));
}
