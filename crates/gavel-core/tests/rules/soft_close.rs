//! Soft close (anti-sniping): a price-moving bid in the last `window_ms` moves the end to
//! `now + extend_ms`, capped at the original end plus `max_extension_ms`, never earlier.

use crate::helpers::*;
use gavel_core::{close_if_due, Auction, Event, Rejection, SoftClose};

const MIN: i64 = 60_000;

fn with_soft_close(sc: SoftClose) -> Auction {
    let mut s = spec();
    s.soft_close = Some(sc);
    opened(s)
}

/// Two-minute window, two-minute extension, no cap.
fn two_and_two() -> Auction {
    with_soft_close(soft_close(2 * MIN, 2 * MIN, None))
}

#[test]
fn a_bid_inside_the_window_moves_the_end_to_now_plus_the_extension() {
    let mut a = two_and_two();
    let d = accept(&mut a, &plain("ann", 1_000), END - MIN);
    assert!(extended(&d));
    assert_eq!(a.state.ends_at, END + MIN);
    assert_eq!(a.spec.ends_at, END, "the spec keeps the original end");
}

#[test]
fn a_bid_before_the_window_does_not_extend() {
    let mut a = two_and_two();
    let d = accept(&mut a, &plain("ann", 1_000), END - 2 * MIN - 1);
    assert!(!extended(&d));
    assert_eq!(a.state.ends_at, END);
}

#[test]
fn the_window_includes_its_first_millisecond() {
    let mut a = with_soft_close(soft_close(2 * MIN, 3 * MIN, None));
    let d = accept(&mut a, &plain("ann", 1_000), END - 2 * MIN);
    assert!(extended(&d));
    assert_eq!(a.state.ends_at, END + MIN);
}

#[test]
fn a_bid_in_the_last_millisecond_extends() {
    let mut a = two_and_two();
    accept(&mut a, &plain("ann", 1_000), END - 1);
    assert_eq!(a.state.ends_at, END - 1 + 2 * MIN);
}

#[test]
fn an_extension_never_shortens_the_auction() {
    // A ten-minute window with a one-minute extension: early in the window now + 1 min is
    // before the end, and the end stays where it is.
    let mut a = with_soft_close(soft_close(10 * MIN, MIN, None));
    for (who, amount, at) in [("ann", 1_000, END - 5 * MIN), ("bob", 1_100, END - 2 * MIN)] {
        let d = accept(&mut a, &plain(who, amount), at);
        assert!(!extended(&d));
        assert_eq!(a.state.ends_at, END);
    }
    let d = accept(&mut a, &plain("ann", 1_200), END - 30_000);
    assert!(extended(&d));
    assert_eq!(a.state.ends_at, END + 30_000);
}

#[test]
fn extensions_chain_from_the_current_end() {
    let mut a = two_and_two();
    accept(&mut a, &plain("ann", 1_000), END - MIN);
    // After the original end, but inside the extended auction and its window.
    accept(&mut a, &plain("bob", 1_100), END + 30_000);
    assert_eq!(a.state.ends_at, END + 30_000 + 2 * MIN);
    accept(&mut a, &plain("ann", 1_200), END + 2 * MIN);
    assert_eq!(a.state.ends_at, END + 4 * MIN);
}

#[test]
fn a_bid_at_the_extended_end_is_rejected_as_closed() {
    let mut a = two_and_two();
    accept(&mut a, &plain("ann", 1_000), END - MIN);
    accept(&mut a, &plain("bob", 1_100), END);
    let end = a.state.ends_at;
    accept(&mut a, &plain("ann", 1_200), end - 1);
    let end = a.state.ends_at;
    reject(&mut a, &plain("bob", 1_300), end, Rejection::Closed);
}

#[test]
fn the_extension_is_capped_at_the_original_end_plus_the_maximum_extension() {
    let mut a = with_soft_close(soft_close(2 * MIN, 2 * MIN, Some(90_000)));
    let d = accept(&mut a, &plain("ann", 1_000), END - 1);
    assert!(extended(&d));
    assert_eq!(a.state.ends_at, END + 90_000);
    // At the cap: further bids are accepted but move nothing.
    let d = accept(&mut a, &plain("bob", 1_100), END + 80_000);
    assert!(!extended(&d));
    assert_eq!(a.state.ends_at, END + 90_000);
    reject(
        &mut a,
        &plain("ann", 1_200),
        END + 90_000,
        Rejection::Closed,
    );
}

#[test]
fn a_zero_maximum_extension_never_extends() {
    let mut a = with_soft_close(soft_close(2 * MIN, 2 * MIN, Some(0)));
    let d = accept(&mut a, &plain("ann", 1_000), END - 1);
    assert!(!extended(&d));
    assert_eq!(a.state.ends_at, END);
}

#[test]
fn a_rejected_bid_that_changes_nothing_does_not_extend() {
    let mut a = two_and_two();
    accept(&mut a, &plain("ann", 1_000), END - 3 * MIN);
    reject(
        &mut a,
        &plain("bob", 1_050),
        END - 1,
        Rejection::Outbid { min_bid: m(1_100) },
    );
    reject(
        &mut a,
        &plain("ann", 5_000),
        END - 1,
        Rejection::AlreadyLeading,
    );
    assert_eq!(a.state.ends_at, END);
}

#[test]
fn a_proxy_counter_bid_inside_the_window_extends_because_the_price_moved() {
    let mut a = two_and_two();
    accept(&mut a, &max("ann", 5_000), END - 3 * MIN);
    let d = reject(
        &mut a,
        &plain("bob", 2_000),
        END - MIN,
        Rejection::Outbid { min_bid: m(2_200) },
    );
    assert!(extended(&d));
    assert_eq!(a.state.ends_at, END + MIN);
}

#[test]
fn raising_a_maximum_inside_the_window_does_not_extend() {
    let mut a = two_and_two();
    accept(&mut a, &max("ann", 2_000), END - 3 * MIN);
    let d = accept(&mut a, &max("ann", 3_000), END - MIN);
    assert_eq!(d.change.unwrap().event, Event::MaxRaised);
    assert_eq!(a.state.ends_at, END);
}

#[test]
fn a_reserve_lift_inside_the_window_extends_because_the_price_moved() {
    let mut s = spec();
    s.reserve = Some(m(5_000));
    s.soft_close = Some(soft_close(2 * MIN, 2 * MIN, None));
    let mut a = opened(s);
    accept(&mut a, &max("ann", 2_000), END - 3 * MIN);
    let d = accept(&mut a, &max("ann", 6_000), END - MIN);
    assert!(extended(&d));
    assert_eq!(price(&a), 5_000);
    assert_eq!(a.state.ends_at, END + MIN);
}

#[test]
fn a_buy_now_inside_the_window_closes_instead_of_extending() {
    let mut s = spec();
    s.buy_now = Some(m(9_000));
    s.soft_close = Some(soft_close(2 * MIN, 2 * MIN, None));
    let mut a = opened(s);
    let d = accept(&mut a, &buy("ann", 9_000), END - MIN);
    assert!(!extended(&d));
    assert_eq!(a.state.closing.unwrap().closed_at, END - MIN);
}

#[test]
fn close_if_due_waits_for_the_extended_end_and_records_it() {
    let mut a = two_and_two();
    accept(&mut a, &plain("ann", 1_000), END - MIN);
    assert_eq!(close_if_due(&a, END), None);
    assert_eq!(close_if_due(&a, END + MIN - 1), None);
    let closing = close_if_due(&a, END + MIN)
        .unwrap()
        .auction
        .state
        .closing
        .unwrap();
    assert_eq!(closing.closed_at, END + MIN);
    assert_eq!(closing.winner, Some(bidder("ann")));
}
