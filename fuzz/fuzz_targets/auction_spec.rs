//! Increment tables and auction specs: building an auction (`Auction::new`, `Auction::new_at`)
//! from any spec — structured, or JSON as an admin would send it — never panics, and every
//! accepted spec satisfies the invariants `docs/` states for it.
#![no_main]

use arbitrary::Arbitrary;
use gavel_core::{
    Auction, AuctionId, AuctionSpec, Currency, IncrementBand, IncrementPolicy, Money, SoftClose,
    Status, MAX_AMOUNT,
};
use libfuzzer_sys::fuzz_target;

/// 365 days (`auction::MAX_SPAN_MS`).
const MAX_SPAN_MS: i64 = 365 * 86_400_000;
const DAY: i64 = 86_400_000;

#[derive(Arbitrary, Debug)]
struct Input {
    json: Option<String>,
    title: String,
    description: String,
    start_price: i64,
    fixed: Option<i64>,
    bands: Vec<(i64, i64)>,
    starts_at: i64,
    ends_at: i64,
    reserve: Option<i64>,
    buy_now: Option<i64>,
    soft_close: Option<(i64, i64, Option<i64>)>,
    now: i64,
    prices: Vec<i64>,
}

fn money(v: i64) -> Money {
    Money::new(v.clamp(1, MAX_AMOUNT)).expect("clamped into range")
}

fn spec_of(i: &Input) -> AuctionSpec {
    let increment = match i.fixed {
        Some(a) => IncrementPolicy::Fixed { amount: money(a) },
        None => IncrementPolicy::Table {
            bands: i
                .bands
                .iter()
                .map(|&(from, inc)| IncrementBand {
                    from,
                    increment: money(inc),
                })
                .collect(),
        },
    };
    AuctionSpec {
        title: i.title.clone(),
        description: i.description.clone(),
        currency: Currency::parse("USD").expect("valid"),
        category: None,
        starting_price: money(i.start_price),
        increment,
        starts_at: i.starts_at,
        ends_at: i.ends_at,
        reserve: i.reserve.map(money),
        buy_now: i.buy_now.map(money),
        soft_close: i
            .soft_close
            .map(|(window_ms, extend_ms, max_extension_ms)| SoftClose {
                window_ms,
                extend_ms,
                max_extension_ms,
            }),
    }
}

/// What an accepted spec promises.
fn check_accepted(a: &Auction, prices: &[i64]) {
    let s = &a.spec;
    assert!(s.validate().is_ok());
    let title = s.title.trim().chars().count();
    assert!((1..=200).contains(&title), "title of {title} characters");
    assert!(s.description.chars().count() <= 5000);
    assert!(s.ends_at > s.starts_at);
    assert!(s.ends_at - s.starts_at <= MAX_SPAN_MS);
    if let Some(r) = s.reserve {
        assert!(r >= s.starting_price);
    }
    if let Some(b) = s.buy_now {
        assert!(b >= s.starting_price && s.reserve.is_none_or(|r| b >= r));
    }
    if let Some(sc) = s.soft_close {
        assert!((1..=DAY).contains(&sc.window_ms) && (1..=DAY).contains(&sc.extend_ms));
        assert!(sc
            .max_extension_ms
            .is_none_or(|m| (0..=365 * DAY).contains(&m)));
    }
    let increments: Vec<Money> = match &s.increment {
        IncrementPolicy::Fixed { amount } => vec![*amount],
        IncrementPolicy::Table { bands } => {
            assert!(!bands.is_empty() && bands.len() <= 64);
            assert_eq!(bands[0].from, 0);
            assert!(bands.windows(2).all(|w| w[0].from < w[1].from));
            bands.iter().map(|b| b.increment).collect()
        }
    };
    // The increment at any price is one of the policy's, and the one of the band it is in.
    for &p in prices {
        let price = money(p);
        let inc = s.increment.at(price);
        assert!(increments.contains(&inc));
        if let IncrementPolicy::Table { bands } = &s.increment {
            let band = bands
                .iter()
                .rev()
                .find(|b| b.from <= price.minor_units())
                .expect("the first band starts at 0");
            assert_eq!(inc, band.increment);
        }
    }
    assert_eq!(a.state.seq, 1);
    assert_eq!(a.state.price, None);
    assert_eq!(a.state.bid_count, 0);
    assert_eq!(a.state.ends_at, s.ends_at);
    assert_eq!(a.min_bid(), s.starting_price);
    assert!(a.increment() >= Money::new(1).expect("valid"));
    assert_eq!(a.reserve_met(), s.reserve.map(|_| false));
    // The spec survives storage (JSON) unchanged.
    let json = serde_json::to_string(s.as_ref()).expect("specs serialise");
    let back: AuctionSpec = serde_json::from_str(&json).expect("a stored spec reads back");
    assert_eq!(&back, s.as_ref());
}

fn build(spec: AuctionSpec, now: i64, prices: &[i64]) {
    let id = AuctionId::parse("fuzz").expect("valid id");
    let plain = Auction::new(id.clone(), spec.clone());
    assert_eq!(plain.is_ok(), spec.validate().is_ok());
    if let Ok(a) = &plain {
        check_accepted(a, prices);
        let _ = a.status_at(now);
    }
    match Auction::new_at(id, spec.clone(), now) {
        Ok(a) => {
            assert!(plain.is_ok(), "new_at accepted what new refused");
            assert!(spec.starts_at.abs_diff(now) <= MAX_SPAN_MS as u64);
            check_accepted(&a, prices);
            let expected = if now >= spec.starts_at {
                Status::Open
            } else {
                Status::Scheduled
            };
            assert_eq!(a.state.status, expected);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fuzz_target!(|input: Input| {
    if let Some(json) = &input.json {
        if let Ok(spec) = serde_json::from_str::<AuctionSpec>(json) {
            build(spec, input.now, &input.prices);
        }
    }
    build(spec_of(&input), input.now, &input.prices);
});
