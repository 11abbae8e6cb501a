//! The rules under random operation sequences (`arbitrary`):
//!
//! 1. Proxy maxima only, against the reference model (`gavel_core::fuzzing::Reference`, the
//!    one the property tests use): accepted iff the model accepts, and after every bid the
//!    same leader, maximum and price; at the close, the model's winner and price.
//! 2. Any operation (plain, max and buy-now bids, stale `expected_seq`, timers, early end,
//!    cancel) on any valid spec, amounts up to the 2^53 − 1 cap and times anywhere: nothing
//!    panics, and every step keeps the invariants of a change (`seq` + 1, price never falls
//!    nor below the start, the leader's maximum covers the price, a closed auction stays
//!    closed and refuses bids, the end only moves within the soft-close cap).
#![no_main]

use arbitrary::Arbitrary;
use gavel_core::fuzzing::Reference;
use gavel_core::{
    cancel, close_if_due, end_early, open_if_due, place_bid, Auction, AuctionId, AuctionSpec,
    BidKind, BidRequest, Bidder, BidderId, Change, Currency, Decision, IncrementBand,
    IncrementPolicy, Money, Rejection, SoftClose, Status, MAX_AMOUNT,
};
use libfuzzer_sys::fuzz_target;

const BIDDERS: [&str; 4] = ["ann", "bob", "cat", "dan"];
const T0: i64 = 1_000_000;

#[derive(Arbitrary, Debug)]
struct Input {
    proxy: Option<ProxyRun>,
    free: Option<FreeRun>,
}

#[derive(Arbitrary, Debug)]
struct ProxyRun {
    start: u16,
    increment: Increments,
    reserve: Option<u16>,
    bids: Vec<(u8, ProxyAmount)>,
}

#[derive(Arbitrary, Debug)]
enum Increments {
    Fixed(u8),
    /// Band starts (offsets) and increments; sorted into a valid table.
    Table(Vec<(u16, u8)>),
}

#[derive(Arbitrary, Debug)]
enum ProxyAmount {
    AboveMin(u16),
    Absolute(u16),
    Repeat(u8),
    Reserve(i8),
}

#[derive(Arbitrary, Debug)]
struct FreeRun {
    now: i64,
    start_offset: i32,
    duration: u32,
    start: i64,
    increment: Increments,
    /// Scales the table's starts and increments: up to the cap.
    scale: i64,
    reserve: Option<i64>,
    buy_now: Option<i64>,
    soft_close: Option<(u32, u32, Option<u32>)>,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Bid {
        bidder: u8,
        kind: u8,
        amount: Amount,
        expect: Option<i8>,
        dt: u32,
    },
    Tick(u32),
    EndEarly(u32),
    Cancel(u32),
}

#[derive(Arbitrary, Debug)]
enum Amount {
    AboveMin(i32),
    BuyNow(i8),
    Absolute(i64),
}

fn m(v: i64) -> Money {
    Money::new(v.clamp(1, MAX_AMOUNT)).expect("clamped into range")
}

fn who(i: u8) -> Bidder {
    let name = BIDDERS[usize::from(i) % BIDDERS.len()];
    Bidder {
        id: BidderId::parse(name).expect("valid id"),
        name: name.into(),
    }
}

fn policy(inc: &Increments, scale: i64) -> IncrementPolicy {
    match inc {
        Increments::Fixed(a) => IncrementPolicy::Fixed {
            amount: m(i64::from(*a).saturating_mul(scale)),
        },
        Increments::Table(raw) => {
            let mut starts: Vec<i64> = raw
                .iter()
                .map(|(s, _)| i64::from(*s).saturating_add(1).saturating_mul(scale))
                .collect();
            starts.sort_unstable();
            starts.dedup();
            starts.truncate(63);
            let mut incs: Vec<i64> = raw
                .iter()
                .map(|(_, i)| i64::from(*i).saturating_mul(scale))
                .collect();
            incs.sort_unstable();
            incs.resize(starts.len() + 1, incs.last().copied().unwrap_or(1));
            IncrementPolicy::Table {
                bands: std::iter::once(0)
                    .chain(starts)
                    .zip(incs)
                    .map(|(from, inc)| IncrementBand {
                        from,
                        increment: m(inc),
                    })
                    .collect(),
            }
        }
    }
}

fn proxy(run: &ProxyRun) {
    let start = i64::from(run.start) + 1;
    let spec = AuctionSpec {
        title: "proxy lot".into(),
        description: String::new(),
        currency: Currency::parse("USD").expect("valid"),
        category: None,
        starting_price: m(start),
        increment: policy(&run.increment, 1),
        starts_at: T0,
        ends_at: T0 + 1_000_000,
        reserve: run.reserve.map(|r| m(start + i64::from(r))),
        buy_now: None,
        soft_close: None,
    };
    let scheduled =
        Auction::new(AuctionId::parse("p").expect("valid"), spec.clone()).expect("a valid spec");
    let mut a = open_if_due(&scheduled, T0)
        .expect("opens at its start")
        .auction;
    let mut model = Reference::new(&spec);
    let mut placed: Vec<i64> = Vec::new();
    for (order, (bidder, amount)) in run.bids.iter().take(64).enumerate() {
        let bidder = usize::from(*bidder) % BIDDERS.len();
        let max = match *amount {
            ProxyAmount::AboveMin(off) => model.min_bid() + i64::from(off),
            ProxyAmount::Absolute(v) => i64::from(v).max(1),
            ProxyAmount::Repeat(k) if !placed.is_empty() => placed[usize::from(k) % placed.len()],
            ProxyAmount::Reserve(off) if model.reserve.is_some() => {
                (model.reserve.expect("checked") + i64::from(off)).max(1)
            }
            _ => model.min_bid(),
        };
        placed.push(max);
        let r = BidRequest {
            bidder: who(bidder as u8),
            amount: m(max),
            kind: BidKind::Max,
            expected_seq: None,
        };
        let d = place_bid(&a, &r, T0 + 1 + order as i64);
        let leads = model.place(bidder, max, order);
        assert_eq!(
            d.outcome.is_ok(),
            leads,
            "accepted iff the model accepts it"
        );
        if let Some(c) = d.change {
            a = c.auction;
        }
        let winner = model.winner();
        assert_eq!(
            a.state.leader.as_ref().map(|l| l.id.as_str()),
            winner.map(|(w, _)| BIDDERS[w])
        );
        assert_eq!(
            a.state.leader_max.map(Money::minor_units),
            winner.map(|(_, x)| x)
        );
        assert_eq!(a.state.price.map(Money::minor_units), model.price);
    }
    let closing = close_if_due(&a, a.state.ends_at)
        .expect("closes at its end")
        .auction
        .state
        .closing
        .expect("closed");
    let winner = model
        .winner()
        .filter(|&(_, max)| model.reserve.is_none_or(|r| max >= r))
        .map(|(w, _)| BIDDERS[w].to_string());
    assert_eq!(closing.winner.map(|b| b.id.to_string()), winner.clone());
    assert_eq!(
        closing.final_price.map(Money::minor_units),
        model.price.filter(|_| winner.is_some())
    );
}

/// The invariants of one change from `before` to `c`.
fn check_change(before: &Auction, c: &Change) {
    let (b, a) = (&before.state, &c.auction.state);
    assert_eq!(a.seq, b.seq + 1, "each change bumps seq by one");
    assert!(b.closing.is_none(), "a closed auction changed");
    if let (Some(p0), Some(p1)) = (b.price, a.price) {
        assert!(p1 >= p0, "the price fell");
    }
    if b.price.is_some() {
        assert!(a.price.is_some(), "the price vanished");
    }
    assert!(a.bid_count >= b.bid_count);
    check_state(&c.auction);
}

fn check_state(a: &Auction) {
    let s = &a.state;
    if let Some(p) = s.price {
        assert!(p >= a.spec.starting_price, "price below the start");
        if let Some(max) = s.leader_max {
            assert!(max >= p, "leader's maximum below the price");
        }
        if s.closing.is_none() {
            assert!(s.leader.is_some(), "a price without a leader");
        }
    }
    assert!(
        s.ends_at
            >= a.spec
                .ends_at
                .min(s.closing.as_ref().map_or(i64::MAX, |c| c.closed_at))
    );
    if let (Some(sc), None) = (a.spec.soft_close, &s.closing) {
        if let Some(cap) = sc.max_extension_ms {
            assert!(
                s.ends_at <= a.spec.ends_at.saturating_add(cap),
                "extended past the cap"
            );
        }
    }
    if let Some(c) = &s.closing {
        assert_eq!(s.status, Status::Closed);
        if let Some(price) = c.final_price {
            assert!(c.winner.is_some());
            assert!(a
                .spec
                .reserve
                .is_none_or(|r| price >= r || c.reason == gavel_core::CloseReason::BuyNow));
        }
    }
}

fn free(run: &FreeRun) {
    let scale = run.scale.unsigned_abs().clamp(1, MAX_AMOUNT as u64) as i64;
    let start = m(run.start);
    let starts_at = run.now.saturating_add(i64::from(run.start_offset));
    let ends_at = starts_at.saturating_add(i64::from(run.duration).max(1));
    let spec = AuctionSpec {
        title: "lot".into(),
        description: String::new(),
        currency: Currency::parse("USD").expect("valid"),
        category: None,
        starting_price: start,
        increment: policy(&run.increment, scale),
        starts_at,
        ends_at,
        reserve: run.reserve.map(m),
        buy_now: run.buy_now.map(m),
        soft_close: run.soft_close.map(|(w, e, cap)| SoftClose {
            window_ms: i64::from(w),
            extend_ms: i64::from(e),
            max_extension_ms: cap.map(i64::from),
        }),
    };
    let Ok(mut a) = Auction::new_at(AuctionId::parse("f").expect("valid"), spec, run.now) else {
        return;
    };
    check_state(&a);
    let mut now = run.now;
    for op in run.ops.iter().take(128) {
        let dt = match op {
            Op::Bid { dt, .. } | Op::Tick(dt) | Op::EndEarly(dt) | Op::Cancel(dt) => *dt,
        };
        now = now.saturating_add(i64::from(dt));
        let before = a.clone();
        let status = a.status_at(now);
        let change = match op {
            Op::Bid {
                bidder,
                kind,
                amount,
                expect,
                ..
            } => {
                let kind = match kind % 3 {
                    0 => BidKind::Plain,
                    1 => BidKind::Max,
                    _ => BidKind::BuyNow,
                };
                let amount = match *amount {
                    Amount::AboveMin(off) => {
                        m(a.min_bid().minor_units().saturating_add(i64::from(off)))
                    }
                    Amount::BuyNow(off) => m(a
                        .spec
                        .buy_now
                        .unwrap_or(a.spec.starting_price)
                        .minor_units()
                        .saturating_add(i64::from(off))),
                    Amount::Absolute(v) => m(v),
                };
                let expected_seq = expect.map(|d| a.state.seq.saturating_add_signed(i64::from(d)));
                let req = BidRequest {
                    bidder: who(*bidder),
                    amount,
                    kind,
                    expected_seq,
                };
                let d: Decision = place_bid(&a, &req, now);
                match status {
                    Status::Closed => {
                        assert!(d.change.is_none(), "a closed auction took a bid");
                        assert!(d.outcome.is_err());
                    }
                    Status::Scheduled => {
                        assert!(d.change.is_none(), "a scheduled auction took a bid");
                        assert!(d.outcome.is_err());
                    }
                    Status::Open => {
                        if let Err(Rejection::Stale { seq }) = d.outcome {
                            assert_eq!(seq, a.state.seq);
                            assert!(d.change.is_none());
                        }
                    }
                }
                if d.outcome.is_ok() {
                    assert!(d.change.is_some(), "an accepted bid changed nothing");
                }
                let _ = gavel_core::outcome_code(&d.outcome);
                d.change
            }
            Op::Tick(_) => open_if_due(&a, now).or_else(|| close_if_due(&a, now)),
            Op::EndEarly(_) => end_early(&a, now, "admin").ok(),
            Op::Cancel(_) => cancel(&a, now, "admin").ok(),
        };
        if let Some(c) = change {
            check_change(&before, &c);
            a = c.auction;
        }
    }
}

fuzz_target!(|input: Input| {
    if let Some(run) = &input.proxy {
        proxy(run);
    }
    if let Some(run) = &input.free {
        free(run);
    }
});
