//! What `AuctionSpec::validate` refuses.

use crate::helpers::*;
use gavel_core::{AuctionId, AuctionSpec, IncrementBand, IncrementPolicy, SpecError};

fn check(s: AuctionSpec) -> Result<(), SpecError> {
    let r = s.validate();
    assert_eq!(
        r.clone().err(),
        gavel_core::Auction::new(AuctionId::parse("x").unwrap(), s).err(),
        "Auction::new validates the same way"
    );
    r
}

#[test]
fn the_default_test_spec_is_valid() {
    assert_eq!(check(spec()), Ok(()));
}

#[test]
fn an_auction_must_end_after_it_starts_and_last_at_most_a_year() {
    let mut s = spec();
    s.ends_at = s.starts_at;
    assert_eq!(check(s.clone()), Err(SpecError::Window));
    s.ends_at = s.starts_at + 365 * 86_400_000;
    assert_eq!(check(s.clone()), Ok(()));
    s.ends_at += 1;
    assert_eq!(check(s), Err(SpecError::TooLong));
}

#[test]
fn a_title_is_required_and_limited() {
    let mut s = spec();
    s.title = "   ".into();
    assert_eq!(check(s.clone()), Err(SpecError::Title));
    s.title = "x".repeat(201);
    assert_eq!(check(s.clone()), Err(SpecError::Title));
    s.title = "x".into();
    s.description = "y".repeat(5_001);
    assert_eq!(check(s), Err(SpecError::Description));
}

#[test]
fn an_increment_table_must_start_at_zero_and_strictly_increase() {
    let band = |from, inc| IncrementBand {
        from,
        increment: m(inc),
    };
    let mut s = spec();
    s.increment = IncrementPolicy::Table { bands: vec![] };
    assert!(matches!(
        check(s.clone()),
        Err(SpecError::IncrementTable(_))
    ));
    s.increment = IncrementPolicy::Table {
        bands: vec![band(1, 10)],
    };
    assert!(matches!(
        check(s.clone()),
        Err(SpecError::IncrementTable(_))
    ));
    s.increment = IncrementPolicy::Table {
        bands: vec![band(0, 10), band(100, 20), band(100, 30)],
    };
    assert!(matches!(
        check(s.clone()),
        Err(SpecError::IncrementTable(_))
    ));
    s.increment = IncrementPolicy::Table {
        bands: (0..65).map(|i| band(i * 100, 10)).collect(),
    };
    assert!(matches!(
        check(s.clone()),
        Err(SpecError::IncrementTable(_))
    ));
    s.increment = table();
    assert_eq!(check(s), Ok(()));
}

#[test]
fn a_buy_now_price_must_be_at_least_the_starting_price_and_the_reserve() {
    let mut s = spec();
    s.buy_now = Some(m(999));
    assert_eq!(check(s.clone()), Err(SpecError::BuyNow));
    s.buy_now = Some(m(1_000));
    assert_eq!(check(s.clone()), Ok(()));
    s.reserve = Some(m(5_000));
    assert_eq!(check(s.clone()), Err(SpecError::BuyNow));
    s.buy_now = Some(m(5_000));
    assert_eq!(check(s), Ok(()));
}

#[test]
fn soft_close_needs_a_positive_window_and_extension_of_at_most_a_day() {
    let mut s = spec();
    for bad in [
        soft_close(0, 1, None),
        soft_close(1, 0, None),
        soft_close(86_400_001, 1, None),
        soft_close(1, 86_400_001, None),
        soft_close(1, 1, Some(-1)),
        soft_close(1, 1, Some(365 * 86_400_000 + 1)),
    ] {
        s.soft_close = Some(bad);
        assert_eq!(check(s.clone()), Err(SpecError::SoftClose), "{bad:?}");
    }
    s.soft_close = Some(soft_close(120_000, 120_000, Some(0)));
    assert_eq!(check(s), Ok(()));
}
