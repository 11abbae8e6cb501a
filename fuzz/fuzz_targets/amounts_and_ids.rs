//! Money, amounts and ids from arbitrary input: parsing never panics, what parses satisfies
//! its stated bounds and round-trips (text and JSON), and the two amount parsers — the wire's
//! `gavel_protocol::parse_amount` (raw JSON) and `gavel_core::Money`'s deserialiser — agree.
#![no_main]

use gavel_core::{AuctionId, BidderId, Currency, Money, RequestId, MAX_AMOUNT};
use libfuzzer_sys::fuzz_target;

macro_rules! check_id {
    ($ty:ty, $s:expr) => {{
        let s: &str = $s;
        match <$ty>::parse(s) {
            Ok(id) => {
                assert_eq!(id.as_str(), s);
                assert!(!s.is_empty() && s.len() <= <$ty>::MAX_LEN);
                assert!(s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)));
                assert!(!s.bytes().all(|b| b == b'.'), "an id of dots only: {s:?}");
                assert_eq!(id.to_string(), s);
                let json = serde_json::to_string(&id).expect("ids serialise");
                let back: $ty = serde_json::from_str(&json).expect("a valid id parses back");
                assert_eq!(back, id);
                assert_eq!(String::from(id), s);
            }
            Err(e) => {
                // The error quotes a bounded part of the input.
                assert!(e.got.chars().count() <= 80);
                // And the JSON path refuses it the same way.
                let json = serde_json::to_string(s).expect("strings serialise");
                assert!(serde_json::from_str::<$ty>(&json).is_err());
            }
        }
    }};
}

fuzz_target!(|data: &[u8]| {
    // Money from the first 8 bytes as an integer.
    if data.len() >= 8 {
        let v = i64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
        match Money::new(v) {
            Ok(m) => {
                assert!((1..=MAX_AMOUNT).contains(&v));
                assert_eq!(m.minor_units(), v);
                assert_eq!(m.to_string(), v.to_string());
                let json = serde_json::to_string(&m).expect("money serialises");
                assert_eq!(serde_json::from_str::<Money>(&json).ok(), Some(m));
                // Adding never overflows and never leaves the range.
                let sum = m.saturating_add(m).minor_units();
                assert!(sum >= v && sum <= MAX_AMOUNT);
            }
            Err(_) => assert!(!(1..=MAX_AMOUNT).contains(&v)),
        }
    }
    assert_eq!(gavel_protocol::MAX_AMOUNT, MAX_AMOUNT);

    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    check_id!(AuctionId, s);
    check_id!(BidderId, s);
    check_id!(RequestId, s);

    match Currency::parse(s) {
        Ok(c) => {
            assert_eq!(c.as_str(), s);
            assert!(s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()));
            let json = serde_json::to_string(&c).expect("currencies serialise");
            assert_eq!(serde_json::from_str::<Currency>(&json).ok(), Some(c));
        }
        Err(_) => assert!(!(s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()))),
    }

    // An amount as the wire carries it: any JSON value.
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(s) {
        let wire = gavel_protocol::parse_amount(Some(&v));
        if let Ok(a) = &wire {
            assert!((1..=MAX_AMOUNT).contains(a));
        }
        let core = serde_json::from_value::<Money>(v.clone()).map(Money::minor_units);
        assert_eq!(
            wire.clone().ok(),
            core.ok(),
            "the amount parsers disagree on {s}"
        );
        if let Err(e) = wire {
            let _ = (e.to_string(), e.code());
        }
    }
});
