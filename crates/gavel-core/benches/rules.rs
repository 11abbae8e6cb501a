//! Micro-benchmarks of the pure bid rules: `cargo bench -p gavel-core --bench rules`.
//!
//! Each decision is a pure function of (auction, request, now), so these are the floor of
//! every engine's bid path: whatever an engine adds (locks, queues, storage) comes on top.

use divan::{black_box, Bencher};
use gavel_core::{
    rules, Auction, AuctionId, AuctionSpec, BidKind, BidRequest, Bidder, BidderId, Currency,
    IncrementBand, IncrementPolicy, Money,
};

fn main() {
    divan::main();
}

const T0: i64 = 1_767_225_600_000;

fn money(v: i64) -> Money {
    Money::new(v).expect("valid amount")
}

fn spec(increment: IncrementPolicy) -> AuctionSpec {
    AuctionSpec {
        title: "Vintage camera".into(),
        description: "Leica M3".into(),
        currency: Currency::parse("USD").expect("valid"),
        category: None,
        starting_price: money(10_000),
        increment,
        starts_at: T0,
        ends_at: T0 + 3_600_000,
        reserve: None,
        buy_now: None,
        soft_close: None,
    }
}

fn fixed() -> IncrementPolicy {
    IncrementPolicy::Fixed { amount: money(100) }
}

fn req(who: &str, amount: i64, kind: BidKind) -> BidRequest {
    BidRequest {
        bidder: Bidder {
            id: BidderId::parse(format!("u-{who}")).expect("valid id"),
            name: who.into(),
        },
        amount: money(amount),
        kind,
        expected_seq: None,
    }
}

/// An open auction after `alice` bid `amount` with `kind`.
fn led_by_alice(policy: IncrementPolicy, amount: i64, kind: BidKind) -> Auction {
    let a = Auction::new(AuctionId::parse("bench").expect("valid"), spec(policy)).expect("valid");
    let d = rules::place_bid(&a, &req("alice", amount, kind), T0 + 1);
    d.change.expect("the first bid leads").auction
}

#[divan::bench]
fn plain_bid_accepted(b: Bencher) {
    let a = led_by_alice(fixed(), 10_000, BidKind::Plain);
    let r = req("bob", 20_000, BidKind::Plain);
    b.bench(|| rules::place_bid(black_box(&a), black_box(&r), T0 + 1_000));
}

#[divan::bench]
fn plain_bid_too_low(b: Bencher) {
    let a = led_by_alice(fixed(), 10_000, BidKind::Plain);
    let r = req("bob", 10_050, BidKind::Plain);
    b.bench(|| rules::place_bid(black_box(&a), black_box(&r), T0 + 1_000));
}

#[divan::bench]
fn plain_bid_against_a_proxy_maximum(b: Bencher) {
    // Bob's bid is below Alice's secret maximum: outbid, with an automatic counter-bid.
    let a = led_by_alice(fixed(), 50_000, BidKind::Max);
    let r = req("bob", 20_000, BidKind::Plain);
    b.bench(|| rules::place_bid(black_box(&a), black_box(&r), T0 + 1_000));
}

#[divan::bench]
fn proxy_bid_over_a_proxy_maximum(b: Bencher) {
    let a = led_by_alice(fixed(), 50_000, BidKind::Max);
    let r = req("bob", 90_000, BidKind::Max);
    b.bench(|| rules::place_bid(black_box(&a), black_box(&r), T0 + 1_000));
}

#[divan::bench]
fn plain_bid_with_a_tiered_increment_table(b: Bencher) {
    let table = IncrementPolicy::Table {
        bands: (0..20)
            .map(|i| IncrementBand {
                from: i * 10_000,
                increment: money(100 + i * 50),
            })
            .collect(),
    };
    let a = led_by_alice(table, 150_000, BidKind::Plain);
    let r = req("bob", 200_000, BidKind::Plain);
    b.bench(|| rules::place_bid(black_box(&a), black_box(&r), T0 + 1_000));
}
