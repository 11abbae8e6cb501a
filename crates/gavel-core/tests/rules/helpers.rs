//! Builders with readable defaults: a USD auction from `START` to `END` with a $10.00
//! starting price and a fixed $1.00 increment, and one-line bids.

use gavel_core::{
    open_if_due, place_bid, Auction, AuctionId, AuctionSpec, BidKind, BidRequest, Bidder, BidderId,
    Currency, Decision, Event, IncrementBand, IncrementPolicy, Millis, Money, Rejection, SoftClose,
};

/// When the default auction opens.
pub const START: Millis = 1_700_000_000_000;
/// When the default auction ends: one hour after `START`.
pub const END: Millis = START + 3_600_000;
/// A moment in the middle of the default auction.
pub const MID: Millis = START + 1_800_000;

/// Minor units as `Money`; panics on invalid amounts (tests only).
pub fn m(minor_units: i64) -> Money {
    Money::new(minor_units).expect("a valid test amount")
}

/// The default spec: $10.00 start, fixed $1.00 increment, no reserve/buy-now/soft close.
pub fn spec() -> AuctionSpec {
    AuctionSpec {
        title: "Lot 1: a brass telescope".into(),
        description: String::new(),
        currency: Currency::parse("USD").unwrap(),
        category: None,
        starting_price: m(1_000),
        increment: IncrementPolicy::Fixed { amount: m(100) },
        starts_at: START,
        ends_at: END,
        reserve: None,
        buy_now: None,
        soft_close: None,
    }
}

/// An increment table: $0.50 below $10, $1.00 from $10, $5.00 from $100.
pub fn table() -> IncrementPolicy {
    IncrementPolicy::Table {
        bands: vec![
            IncrementBand {
                from: 0,
                increment: m(50),
            },
            IncrementBand {
                from: 1_000,
                increment: m(100),
            },
            IncrementBand {
                from: 10_000,
                increment: m(500),
            },
        ],
    }
}

pub fn soft_close(window_ms: i64, extend_ms: i64, max_extension_ms: Option<i64>) -> SoftClose {
    SoftClose {
        window_ms,
        extend_ms,
        max_extension_ms,
    }
}

/// A scheduled (not yet opened) auction.
pub fn scheduled(spec: AuctionSpec) -> Auction {
    Auction::new(AuctionId::parse("a1").unwrap(), spec).expect("a valid test spec")
}

/// An auction that `open_if_due` has opened at `START` (so at `seq` 2).
pub fn opened(spec: AuctionSpec) -> Auction {
    let a = scheduled(spec);
    open_if_due(&a, START).expect("due at START").auction
}

pub fn bidder(name: &str) -> Bidder {
    Bidder {
        id: BidderId::parse(name).unwrap(),
        name: name.to_uppercase().into(),
    }
}

pub fn req(who: &str, amount: i64, kind: BidKind) -> BidRequest {
    BidRequest {
        bidder: bidder(who),
        amount: m(amount),
        kind,
        expected_seq: None,
    }
}

pub fn plain(who: &str, amount: i64) -> BidRequest {
    req(who, amount, BidKind::Plain)
}

pub fn max(who: &str, amount: i64) -> BidRequest {
    req(who, amount, BidKind::Max)
}

pub fn buy(who: &str, amount: i64) -> BidRequest {
    req(who, amount, BidKind::BuyNow)
}

/// Places a bid, checks the universal bookkeeping (a change bumps `seq` by exactly one; no
/// change means nothing happened), applies any change to `a` and returns the decision.
pub fn bid(a: &mut Auction, r: &BidRequest, now: Millis) -> Decision {
    let d = place_bid(a, r, now);
    if let Some(c) = &d.change {
        assert_eq!(
            c.auction.state.seq,
            a.state.seq + 1,
            "a change bumps seq by one"
        );
        assert_eq!(d.decided_at(a), a.state.seq + 1);
        *a = c.auction.clone();
    } else {
        assert!(
            d.outcome.is_err(),
            "an accepted bid always changes the state"
        );
        assert_eq!(d.decided_at(a), a.state.seq);
    }
    d
}

/// Places a bid that must be accepted.
pub fn accept(a: &mut Auction, r: &BidRequest, now: Millis) -> Decision {
    let d = bid(a, r, now);
    assert_eq!(d.outcome, Ok(()), "expected {r:?} to be accepted");
    d
}

/// Places a bid that must be rejected with `why`.
pub fn reject(a: &mut Auction, r: &BidRequest, now: Millis, why: Rejection) -> Decision {
    let d = bid(a, r, now);
    assert_eq!(d.outcome, Err(why), "expected {r:?} to be rejected");
    d
}

/// The current price in minor units (panics before the first bid).
pub fn price(a: &Auction) -> i64 {
    a.state.price.expect("a price").minor_units()
}

/// The current leader's id (panics when nobody leads).
pub fn leader(a: &Auction) -> String {
    a.state.leader.as_ref().expect("a leader").id.to_string()
}

/// The entry a price-moving decision added to the history.
pub fn entry(d: &Decision) -> gavel_core::BidEntry {
    match &d.change.as_ref().expect("a change").event {
        Event::Bid { entry, .. } => entry.clone(),
        other => panic!("expected a bid event, got {other:?}"),
    }
}

/// Whether a price-moving decision extended the auction.
pub fn extended(d: &Decision) -> bool {
    match &d.change.as_ref().expect("a change").event {
        Event::Bid { extended, .. } => *extended,
        other => panic!("expected a bid event, got {other:?}"),
    }
}
