//! Fixed increments and increment tables, including the band boundaries.

use crate::helpers::*;
use gavel_core::{IncrementBand, IncrementPolicy, Rejection};

#[test]
fn a_fixed_increment_applies_at_every_price() {
    let p = IncrementPolicy::Fixed { amount: m(25) };
    for price in [1, 99, 1_000, 1_000_000] {
        assert_eq!(p.at(m(price)), m(25));
    }
}

#[test]
fn an_increment_table_uses_the_band_whose_start_is_the_highest_not_above_the_price() {
    let t = table();
    assert_eq!(t.at(m(1)), m(50));
    assert_eq!(
        t.at(m(999)),
        m(50),
        "one cent below a band start: the lower band"
    );
    assert_eq!(t.at(m(1_000)), m(100), "exactly at a band start: that band");
    assert_eq!(t.at(m(1_001)), m(100));
    assert_eq!(t.at(m(9_999)), m(100));
    assert_eq!(t.at(m(10_000)), m(500));
    assert_eq!(
        t.at(m(gavel_core::MAX_AMOUNT)),
        m(500),
        "the last band is open-ended"
    );
}

#[test]
fn the_minimum_bid_uses_the_band_of_the_current_price() {
    let mut s = spec();
    s.starting_price = m(949);
    s.increment = table();
    let mut a = opened(s);
    assert_eq!(
        a.min_bid(),
        m(949),
        "the first bid may be the starting price"
    );
    accept(&mut a, &plain("ann", 949), MID);
    assert_eq!(a.min_bid(), m(999), "$9.49 is in the $0.50 band");
    accept(&mut a, &plain("bob", 999), MID);
    assert_eq!(a.min_bid(), m(1_049), "$9.99 is still in the $0.50 band");
    accept(&mut a, &plain("ann", 1_049), MID);
    assert_eq!(a.min_bid(), m(1_149), "$10.49 is in the $1.00 band");
    accept(&mut a, &plain("bob", 10_000), MID);
    assert_eq!(
        a.min_bid(),
        m(10_500),
        "exactly $100.00 is in the $5.00 band"
    );
    reject(
        &mut a,
        &plain("ann", 10_499),
        MID,
        Rejection::Outbid { min_bid: m(10_500) },
    );
    accept(&mut a, &plain("ann", 10_500), MID);
}

#[test]
fn a_bid_landing_exactly_on_a_band_start_makes_the_next_increment_the_higher_one() {
    let mut s = spec();
    s.starting_price = m(950);
    s.increment = table();
    let mut a = opened(s);
    accept(&mut a, &plain("ann", 950), MID);
    accept(&mut a, &plain("bob", 1_000), MID);
    assert_eq!(a.min_bid(), m(1_100));
}

#[test]
fn the_auction_reports_the_increment_at_the_current_or_starting_price() {
    let mut s = spec();
    s.starting_price = m(990);
    s.increment = table();
    let mut a = opened(s);
    assert_eq!(a.increment(), m(50));
    accept(&mut a, &plain("ann", 1_000), MID);
    assert_eq!(a.increment(), m(100));
}

#[test]
fn a_one_band_table_behaves_like_a_fixed_increment() {
    let one = IncrementPolicy::Table {
        bands: vec![IncrementBand {
            from: 0,
            increment: m(10),
        }],
    };
    for price in [1, 10, 10_000] {
        assert_eq!(one.at(m(price)), m(10));
    }
}
