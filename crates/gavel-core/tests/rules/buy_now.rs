//! Buy-now: available until the first bid, or while a reserve is set and not yet met; the
//! exact price is required; it closes the auction at once.
//!
//! Auction: starting price 1000, increment 100, buy-now 9000 ($90.00).

use crate::helpers::*;
use gavel_core::{
    buy_now_available, cancel, close_if_due, Auction, CloseReason, EntryKind, Event, Rejection,
    Status,
};

fn with_buy_now(reserve: Option<i64>) -> Auction {
    let mut s = spec();
    s.buy_now = Some(m(9_000));
    s.reserve = reserve.map(m);
    opened(s)
}

#[test]
fn buy_now_is_unavailable_when_the_auction_does_not_offer_it() {
    let mut a = opened(spec());
    assert!(!buy_now_available(&a));
    reject(
        &mut a,
        &buy("ann", 9_000),
        MID,
        Rejection::BuyNowUnavailable,
    );
}

#[test]
fn buying_now_at_the_exact_price_before_any_bid_closes_the_auction_with_the_buyer_winning() {
    let mut a = with_buy_now(None);
    assert!(buy_now_available(&a));
    let seq = a.state.seq;
    let d = accept(&mut a, &buy("ann", 9_000), MID);
    assert_eq!(a.state.seq, seq + 1);
    assert_eq!(a.state.status, Status::Closed);
    assert_eq!(a.status_at(MID), Status::Closed);
    assert_eq!(price(&a), 9_000);
    assert_eq!(leader(&a), "ann");
    assert_eq!(a.state.bid_count, 1);
    let closing = a.state.closing.clone().unwrap();
    assert_eq!(closing.reason, CloseReason::BuyNow);
    assert_eq!(closing.closed_at, MID);
    assert_eq!(closing.winner, Some(bidder("ann")));
    assert_eq!(closing.final_price, Some(m(9_000)));
    assert_eq!(closing.by, None);
    let e = entry(&d);
    assert_eq!(e.kind, EntryKind::BuyNow);
    assert_eq!(e.amount, m(9_000));
    assert_eq!(e.seq, seq + 1);
    assert!(!extended(&d));
}

#[test]
fn a_buy_now_bid_for_any_other_amount_is_rejected_with_the_price() {
    let mut a = with_buy_now(None);
    let why = Rejection::BuyNowPrice { price: m(9_000) };
    reject(&mut a, &buy("ann", 8_999), MID, why);
    reject(&mut a, &buy("ann", 9_001), MID, why);
    assert!(buy_now_available(&a));
}

#[test]
fn nothing_is_accepted_after_a_buy_now() {
    let mut a = with_buy_now(None);
    accept(&mut a, &buy("ann", 9_000), MID);
    reject(&mut a, &plain("bob", 20_000), MID + 1, Rejection::Closed);
    reject(&mut a, &buy("bob", 9_000), MID + 1, Rejection::Closed);
    assert!(!buy_now_available(&a));
    assert_eq!(close_if_due(&a, END), None, "already closed");
}

#[test]
fn buy_now_disappears_with_the_first_bid_when_there_is_no_reserve() {
    let mut a = with_buy_now(None);
    accept(&mut a, &plain("bob", 1_000), MID);
    assert!(!buy_now_available(&a));
    reject(
        &mut a,
        &buy("ann", 9_000),
        MID,
        Rejection::BuyNowUnavailable,
    );
}

#[test]
fn buy_now_disappears_with_a_first_maximum_too() {
    let mut a = with_buy_now(None);
    accept(&mut a, &max("bob", 2_000), MID);
    reject(
        &mut a,
        &buy("ann", 9_000),
        MID,
        Rejection::BuyNowUnavailable,
    );
}

#[test]
fn buy_now_stays_available_while_a_reserve_is_set_and_not_met() {
    let mut a = with_buy_now(Some(5_000));
    accept(&mut a, &plain("bob", 1_000), MID);
    accept(&mut a, &max("carol", 4_000), MID);
    assert_eq!(a.reserve_met(), Some(false));
    assert!(buy_now_available(&a));
    accept(&mut a, &buy("ann", 9_000), MID);
    assert_eq!(a.state.closing.unwrap().winner, Some(bidder("ann")));
}

#[test]
fn the_leader_below_the_reserve_may_buy_now_too() {
    let mut a = with_buy_now(Some(5_000));
    accept(&mut a, &plain("bob", 1_000), MID);
    accept(&mut a, &buy("bob", 9_000), MID);
    assert_eq!(a.state.leader_max, None, "the buy-now clears any maximum");
}

#[test]
fn buy_now_disappears_once_the_reserve_is_met() {
    let mut a = with_buy_now(Some(5_000));
    accept(&mut a, &plain("bob", 5_000), MID);
    assert!(!buy_now_available(&a));
    reject(
        &mut a,
        &buy("ann", 9_000),
        MID,
        Rejection::BuyNowUnavailable,
    );
}

#[test]
fn buy_now_disappears_when_a_maximum_lifts_the_price_to_the_reserve() {
    let mut a = with_buy_now(Some(5_000));
    accept(&mut a, &max("bob", 6_000), MID);
    assert_eq!(price(&a), 5_000);
    reject(
        &mut a,
        &buy("ann", 9_000),
        MID,
        Rejection::BuyNowUnavailable,
    );
}

#[test]
fn buy_now_is_unavailable_once_the_price_reaches_the_buy_now_price() {
    // Reserve equal to buy-now: bidding up to it meets the reserve at the same moment.
    let mut s = spec();
    s.buy_now = Some(m(9_000));
    s.reserve = Some(m(9_000));
    let mut a = opened(s);
    accept(&mut a, &plain("bob", 8_900), MID);
    assert!(buy_now_available(&a));
    accept(&mut a, &plain("carol", 9_000), MID);
    assert!(!buy_now_available(&a));
}

#[test]
fn buy_now_follows_the_clock_and_the_seq_like_any_bid() {
    let mut s = spec();
    s.buy_now = Some(m(9_000));
    let mut a = scheduled(s);
    reject(&mut a, &buy("ann", 9_000), START - 1, Rejection::NotOpen);
    reject(&mut a, &buy("ann", 9_000), END, Rejection::Closed);
    let seq = a.state.seq;
    let mut r = buy("ann", 9_000);
    r.expected_seq = Some(seq + 3);
    reject(&mut a, &r, START, Rejection::Stale { seq });
}

#[test]
fn buy_now_is_unavailable_on_a_cancelled_auction() {
    let a = with_buy_now(None);
    let a = cancel(&a, MID, "carol").unwrap().auction;
    assert!(!buy_now_available(&a));
}

#[test]
fn a_buy_now_is_reported_as_a_bid_event() {
    let a = with_buy_now(None);
    let d = gavel_core::place_bid(&a, &buy("ann", 9_000), MID);
    assert!(matches!(
        d.change.unwrap().event,
        Event::Bid {
            extended: false,
            ..
        }
    ));
}
