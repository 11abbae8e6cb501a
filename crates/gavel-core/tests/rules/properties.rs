//! Property tests: invariants over random bid sequences, and proxy bidding against an
//! independent reference model.
//!
//! Case counts are kept modest so the whole suite runs in a few seconds on a small machine.

use gavel_core::{
    cancel, close_if_due, end_early, open_if_due, place_bid, Auction, AuctionId, AuctionSpec,
    BidEntry, BidKind, BidRequest, Bidder, BidderId, Change, CloseReason, Currency, EntryKind,
    Event, IncrementBand, IncrementPolicy, Money, Rejection, SoftClose, Status, MAX_AMOUNT,
};
use proptest::prelude::*;

const T0: i64 = 1_000_000;
const BIDDERS: [&str; 4] = ["ann", "bob", "cat", "dan"];
/// The base of specs whose amounts run into the 2^53 − 1 cap within a few bids.
const NEAR_CAP: i64 = MAX_AMOUNT - 4_000;

fn m(v: i64) -> Money {
    Money::new(v.clamp(1, MAX_AMOUNT)).unwrap()
}

fn who(i: usize) -> Bidder {
    Bidder {
        id: BidderId::parse(BIDDERS[i]).unwrap(),
        name: BIDDERS[i].into(),
    }
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

/// Increment bands with non-decreasing increments (as real tables have), from `base` up.
fn increment_policy(base: i64) -> impl Strategy<Value = IncrementPolicy> {
    prop_oneof![
        (1i64..=300).prop_map(|a| IncrementPolicy::Fixed { amount: m(a) }),
        (
            prop::collection::btree_set(1i64..20_000, 0..4),
            prop::collection::vec(1i64..=200, 4)
        )
            .prop_map(move |(starts, mut incs)| {
                incs.sort_unstable();
                let froms = std::iter::once(0).chain(starts.into_iter().map(|s| base + s));
                IncrementPolicy::Table {
                    bands: froms
                        .zip(incs)
                        .map(|(from, inc)| IncrementBand {
                            from,
                            increment: m(inc),
                        })
                        .collect(),
                }
            }),
    ]
}

fn soft_close() -> impl Strategy<Value = Option<SoftClose>> {
    prop::option::of(
        (
            1i64..=30_000,
            1i64..=30_000,
            prop::option::of(0i64..=60_000),
        )
            .prop_map(|(window_ms, extend_ms, max_extension_ms)| SoftClose {
                window_ms,
                extend_ms,
                max_extension_ms,
            }),
    )
}

/// Specs with small amounts, or amounts just below the 2^53 − 1 cap.
fn auction_spec() -> impl Strategy<Value = AuctionSpec> {
    prop_oneof![3 => Just(0i64), 1 => Just(NEAR_CAP)]
        .prop_flat_map(|base| {
            (
                Just(base),
                1i64..=2_000,
                increment_policy(base),
                prop::option::of(0i64..=8_000),
                prop::option::of(0i64..=8_000),
                soft_close(),
                1_000i64..=120_000,
            )
        })
        .prop_map(
            |(base, start, increment, reserve, buy_now, soft_close, duration)| {
                let starting_price = m(base + start);
                let reserve = reserve.map(|r| m(base + start + r));
                let floor = reserve.unwrap_or(starting_price).minor_units();
                AuctionSpec {
                    title: "property lot".into(),
                    description: String::new(),
                    currency: Currency::parse("EUR").unwrap(),
                    category: None,
                    starting_price,
                    increment,
                    starts_at: T0,
                    ends_at: T0 + duration,
                    reserve,
                    buy_now: buy_now.map(|b| m(floor + b)),
                    soft_close,
                }
            },
        )
}

/// How a bid's amount is chosen, resolved against the auction when the bid is placed so
/// that most bids are near the interesting boundary.
#[derive(Clone, Copy, Debug)]
enum Amount {
    /// `min_bid + offset` (clamped to a valid amount).
    AboveMin(i64),
    /// The buy-now price plus a small offset (the starting price if there is none).
    BuyNow(i64),
    /// Any small absolute amount above the spec's base.
    Absolute(i64),
    /// The same amount as an earlier maximum (to provoke ties), by index modulo their count.
    Repeat(usize),
    /// The reserve plus a small offset (the minimum bid if there is no reserve).
    Reserve(i64),
}

/// When an operation happens; time never goes backwards.
#[derive(Clone, Copy, Debug)]
enum When {
    /// `dt` milliseconds after the previous operation.
    After(i64),
    /// Within a few milliseconds of the start, the current end, or the soft-close window.
    Start(i64),
    End(i64),
    Window(i64),
}

impl When {
    fn time(self, a: &Auction, now: i64) -> i64 {
        let window = a.spec.soft_close.map_or(0, |sc| sc.window_ms);
        let target = match self {
            When::After(dt) => now + dt,
            When::Start(off) => a.spec.starts_at + off,
            When::End(off) => a.state.ends_at + off,
            When::Window(off) => a.state.ends_at - window + off,
        };
        target.max(now)
    }
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![
        12 => (0i64..2_000).prop_map(When::After),
        4 => (0i64..40_000).prop_map(When::After),
        1 => (-2i64..=2).prop_map(When::Start),
        2 => (-2i64..=2).prop_map(When::End),
        2 => (-2i64..=2).prop_map(When::Window),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Bid {
        bidder: usize,
        kind: BidKind,
        amount: Amount,
        /// `Some(d)`: send `expected_seq = seq + d` (0 is current, others are stale).
        expect: Option<i8>,
        when: When,
    },
    /// The opener and closer timers run.
    Tick {
        when: When,
    },
    EndEarly {
        when: When,
    },
    Cancel {
        when: When,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        4 => Just(BidKind::Plain),
        4 => Just(BidKind::Max),
        1 => Just(BidKind::BuyNow),
    ];
    let amount = prop_oneof![
        6 => (-300i64..3_000).prop_map(Amount::AboveMin),
        1 => (-1i64..=1).prop_map(Amount::BuyNow),
        2 => (1i64..20_000).prop_map(Amount::Absolute),
    ];
    let expect = prop_oneof![4 => Just(None), 2 => Just(Some(0i8)), 1 => (-2i8..=2).prop_map(Some)];
    prop_oneof![
        20 => (0..BIDDERS.len(), kind, amount, expect, when()).prop_map(
            |(bidder, kind, amount, expect, when)| Op::Bid { bidder, kind, amount, expect, when }
        ),
        3 => when().prop_map(|when| Op::Tick { when }),
        1 => when().prop_map(|when| Op::EndEarly { when }),
        1 => when().prop_map(|when| Op::Cancel { when }),
    ]
}

fn resolve(a: &Auction, amount: Amount) -> Money {
    let base = if a.spec.starting_price.minor_units() > NEAR_CAP {
        NEAR_CAP
    } else {
        0
    };
    match amount {
        Amount::AboveMin(off) => m(a.min_bid().minor_units().saturating_add(off)),
        Amount::BuyNow(off) => m(a
            .spec
            .buy_now
            .unwrap_or(a.spec.starting_price)
            .minor_units()
            + off),
        Amount::Absolute(v) => m(base + v),
        Amount::Repeat(_) | Amount::Reserve(_) => unreachable!("only in the proxy test"),
    }
}

// ---------------------------------------------------------------------------------------
// Invariants of one step
// ---------------------------------------------------------------------------------------

/// The status by the rule as stated, not through `Auction::status_at`: closed once a
/// closing is recorded or from the current end on, scheduled before the start, otherwise open.
fn expected_status(a: &Auction, now: i64) -> Status {
    if a.state.closing.is_some() || now >= a.state.ends_at {
        Status::Closed
    } else if now < a.spec.starts_at {
        Status::Scheduled
    } else {
        Status::Open
    }
}

/// Buy-now as documented, not through `buy_now_available`: offered, not closed, and either
/// nobody has bid or a reserve is set and the price is below it.
fn offers_buy_now(a: &Auction) -> bool {
    let below_reserve = a
        .spec
        .reserve
        .is_some_and(|r| a.state.price.is_none_or(|p| p < r));
    a.spec.buy_now.is_some()
        && a.state.closing.is_none()
        && (a.state.bid_count == 0 || below_reserve)
}

/// What the test remembers across steps: the public history.
struct Tracker {
    history: Vec<BidEntry>,
}

impl Tracker {
    /// Checks a state change against the state before it and records any bid entry.
    fn change(&mut self, before: &Auction, c: &Change, now: i64) -> Result<(), TestCaseError> {
        let (b, n) = (&before.state, &c.auction.state);
        prop_assert_eq!(n.seq, b.seq + 1, "every change bumps seq by exactly one");
        prop_assert_eq!(&c.auction.spec, &before.spec, "the spec never changes");
        prop_assert!(n.ends_at >= b.ends_at, "the end never moves earlier");
        match &c.event {
            Event::Bid { entry, extended } => {
                prop_assert_eq!(
                    expected_status(before, now),
                    Status::Open,
                    "bids only in the open window"
                );
                prop_assert_eq!(entry.seq, n.seq);
                prop_assert_eq!(entry.at, now);
                prop_assert_eq!(Some(entry.amount), n.price);
                prop_assert_eq!(Some(&entry.bidder), n.leader.as_ref());
                if let Some(p) = b.price {
                    prop_assert!(entry.amount > p, "prices strictly increase");
                }
                prop_assert_eq!(n.bid_count, b.bid_count + 1);
                prop_assert_eq!(*extended, n.ends_at != b.ends_at);
                // Soft close as stated: inside the last `window_ms`, the end moves to
                // now + extend_ms, capped at the original end + max_extension_ms, never earlier.
                let expected_end = match before.spec.soft_close {
                    Some(sc)
                        if entry.kind != EntryKind::BuyNow && now >= b.ends_at - sc.window_ms =>
                    {
                        let cap = sc
                            .max_extension_ms
                            .map_or(i64::MAX, |c| before.spec.ends_at + c);
                        b.ends_at.max((now + sc.extend_ms).min(cap))
                    }
                    _ => b.ends_at,
                };
                prop_assert_eq!(n.ends_at, expected_end, "soft close as stated");
                if entry.kind == EntryKind::BuyNow {
                    prop_assert_eq!(Some(entry.amount), before.spec.buy_now);
                    prop_assert!(n.closing.is_some());
                }
                self.history.push(entry.clone());
            }
            Event::MaxRaised => {
                prop_assert_eq!(expected_status(before, now), Status::Open);
                prop_assert_eq!(n.price, b.price);
                prop_assert_eq!(&n.leader, &b.leader);
                prop_assert_eq!(n.bid_count, b.bid_count);
                prop_assert_eq!(n.ends_at, b.ends_at);
                prop_assert!(n.leader_max > b.leader_max);
            }
            Event::Opened => {
                prop_assert_eq!(b.status, Status::Scheduled);
                prop_assert_eq!(n.status, Status::Open);
            }
            Event::Closed => {
                prop_assert!(b.closing.is_none());
                prop_assert_eq!(n.status, Status::Closed);
                prop_assert!(n.closing.is_some());
            }
            #[allow(unreachable_patterns)]
            other => prop_assert!(false, "the rules never emit {other:?}"),
        }
        self.state(&c.auction)
    }

    /// Invariants of any state.
    fn state(&self, a: &Auction) -> Result<(), TestCaseError> {
        let s = &a.state;
        prop_assert_eq!(s.bid_count as usize, self.history.len());
        match self.history.last() {
            Some(last) => {
                prop_assert_eq!(s.leader.as_ref(), Some(&last.bidder), "leader = last entry");
                prop_assert_eq!(s.price, Some(last.amount));
            }
            None => {
                prop_assert_eq!(&s.leader, &None);
                prop_assert_eq!(s.price, None);
            }
        }
        if let (Some(max), Some(price)) = (s.leader_max, s.price) {
            prop_assert!(price <= max, "the price never exceeds the leader's maximum");
            if let Some(r) = a.spec.reserve {
                prop_assert!(max < r || price >= r, "a maximum at the reserve pays it");
            }
        }
        match a.spec.soft_close {
            None => prop_assert_eq!(s.ends_at, a.spec.ends_at),
            Some(sc) => {
                prop_assert!(s.ends_at >= a.spec.ends_at);
                if let Some(cap) = sc.max_extension_ms {
                    prop_assert!(s.ends_at <= a.spec.ends_at + cap);
                }
            }
        }
        if let Some(c) = &s.closing {
            prop_assert_eq!(s.status, Status::Closed);
            let below_reserve = a.reserve_met() == Some(false);
            if below_reserve || c.reason == CloseReason::Cancelled || s.leader.is_none() {
                prop_assert_eq!(
                    &c.winner,
                    &None,
                    "no sale below the reserve or when cancelled"
                );
                prop_assert_eq!(c.final_price, None);
            } else {
                prop_assert_eq!(&c.winner, &s.leader);
                prop_assert_eq!(c.final_price, s.price);
            }
        }
        Ok(())
    }
}

fn check_bid(
    t: &mut Tracker,
    a: &mut Auction,
    r: &BidRequest,
    now: i64,
) -> Result<(), TestCaseError> {
    let before = a.clone();
    let d = place_bid(&before, r, now);
    let status = expected_status(&before, now);
    prop_assert_eq!(before.status_at(now), status);
    let was_leader = before.state.leader.as_ref().map(|l| &l.id) == Some(&r.bidder.id);
    match (&d.outcome, status) {
        (Err(Rejection::NotOpen), s) => prop_assert_eq!(s, Status::Scheduled),
        (Err(Rejection::Closed), s) => prop_assert_eq!(s, Status::Closed),
        (_, s) => prop_assert_eq!(s, Status::Open, "outside the window only not_open/closed"),
    }
    match d.outcome {
        Ok(()) => match r.kind {
            BidKind::BuyNow => {
                let closing = d.change.as_ref().unwrap().auction.state.closing.clone();
                let closing = closing.expect("buy-now closes");
                prop_assert_eq!(closing.reason, CloseReason::BuyNow);
                prop_assert_eq!(closing.winner, Some(r.bidder.clone()));
                prop_assert!(offers_buy_now(&before));
                prop_assert_eq!(Some(r.amount), before.spec.buy_now);
            }
            _ => {
                let next = &d.change.as_ref().unwrap().auction;
                prop_assert_eq!(next.state.leader.as_ref(), Some(&r.bidder));
                if !was_leader {
                    prop_assert!(r.amount >= before.min_bid());
                }
            }
        },
        Err(Rejection::Stale { seq }) => {
            prop_assert_eq!(seq, before.state.seq);
            prop_assert_ne!(r.expected_seq, Some(before.state.seq));
        }
        Err(Rejection::Outbid { min_bid }) => match &d.change {
            None => prop_assert!(r.amount < min_bid || before.state.price >= Some(r.amount)),
            Some(c) => {
                // A standing maximum answered: the leader stays and the price moved.
                prop_assert_eq!(&c.auction.state.leader, &before.state.leader);
                prop_assert_eq!(min_bid, c.auction.min_bid());
            }
        },
        Err(Rejection::AlreadyLeading) => {
            prop_assert!(was_leader);
            prop_assert_eq!(r.kind, BidKind::Plain);
        }
        Err(Rejection::MaxNotRaised { current_max }) => {
            prop_assert!(was_leader);
            prop_assert!(r.amount <= current_max);
        }
        Err(Rejection::BuyNowUnavailable) => {
            prop_assert_eq!(r.kind, BidKind::BuyNow);
            prop_assert!(!offers_buy_now(&before));
            prop_assert!(!gavel_core::buy_now_available(&before));
        }
        Err(Rejection::BuyNowPrice { price }) => {
            prop_assert!(offers_buy_now(&before));
            prop_assert_eq!(Some(price), before.spec.buy_now);
            prop_assert_ne!(r.amount, price);
        }
        Err(Rejection::NotOpen | Rejection::Closed) => {}
    }
    match &d.change {
        Some(c) => {
            t.change(&before, c, now)?;
            *a = c.auction.clone();
        }
        None => prop_assert!(d.outcome.is_err(), "an accepted bid always changes state"),
    }
    Ok(())
}

fn apply(
    t: &mut Tracker,
    a: &mut Auction,
    c: Option<Change>,
    now: i64,
) -> Result<(), TestCaseError> {
    if let Some(c) = c {
        t.change(a, &c, now)?;
        *a = c.auction;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Any sequence of bids, timer ticks and admin actions keeps every invariant.
    #[test]
    fn random_sequences_keep_every_invariant(
        spec in auction_spec(),
        ops in prop::collection::vec(op(), 1..60),
        first in -5_000i64..5_000,
    ) {
        let mut a = Auction::new(AuctionId::parse("p").unwrap(), spec).unwrap();
        let mut t = Tracker { history: Vec::new() };
        let mut now = T0 + first;
        for op in ops {
            match op {
                Op::Bid { bidder, kind, amount, expect, when } => {
                    now = when.time(&a, now);
                    let r = BidRequest {
                        bidder: who(bidder),
                        amount: resolve(&a, amount),
                        kind,
                        expected_seq: expect.map(|d| a.state.seq.wrapping_add_signed(d.into())),
                    };
                    check_bid(&mut t, &mut a, &r, now)?;
                }
                Op::Tick { when } => {
                    now = when.time(&a, now);
                    let opened = open_if_due(&a, now);
                    apply(&mut t, &mut a, opened, now)?;
                    let closed = close_if_due(&a, now);
                    if let Some(c) = &closed {
                        let closing = c.auction.state.closing.as_ref().unwrap();
                        prop_assert_eq!(closing.closed_at, a.state.ends_at);
                    }
                    apply(&mut t, &mut a, closed, now)?;
                }
                Op::EndEarly { when } | Op::Cancel { when } => {
                    now = when.time(&a, now);
                    let r = if matches!(op, Op::Cancel { .. }) {
                        cancel(&a, now, "admin")
                    } else {
                        end_early(&a, now, "admin")
                    };
                    match r {
                        Ok(c) => apply(&mut t, &mut a, Some(c), now)?,
                        Err(e) => {
                            prop_assert_eq!(e, Rejection::Closed);
                            prop_assert_eq!(a.status_at(now), Status::Closed);
                        }
                    }
                }
            }
            t.state(&a)?;
        }
        // However it went, the auction ends, once, with a result consistent with its state.
        let late = a.state.ends_at.max(now);
        let closed = close_if_due(&a, late);
        apply(&mut t, &mut a, closed, late)?;
        prop_assert!(a.state.closing.is_some());
        prop_assert_eq!(close_if_due(&a, late + 1), None);
        t.state(&a)?;
        if a.spec.reserve.is_some_and(|r| a.state.price.is_none_or(|p| p < r)) {
            prop_assert_eq!(&a.state.closing.as_ref().unwrap().winner, &None);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Proxy bidding against a reference model
// ---------------------------------------------------------------------------------------

// The model lives in `gavel_core::fuzzing` (feature `fuzzing`), shared with the `rules`
// fuzz target (fuzz/fuzz_targets/rules.rs).
use gavel_core::fuzzing::Reference;

fn proxy_spec() -> impl Strategy<Value = AuctionSpec> {
    (
        1i64..=2_000,
        increment_policy(0),
        prop::option::of(0i64..=6_000),
    )
        .prop_map(|(start, increment, reserve)| AuctionSpec {
            title: "proxy lot".into(),
            description: String::new(),
            currency: Currency::parse("USD").unwrap(),
            category: None,
            starting_price: m(start),
            increment,
            starts_at: T0,
            ends_at: T0 + 1_000_000,
            reserve: reserve.map(|r| m(start + r)),
            buy_now: None,
            soft_close: None,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Maxima placed in order end at the reference model's winner and price, step by step.
    #[test]
    fn proxy_maxima_settle_where_the_reference_model_says(
        spec in proxy_spec(),
        bids in prop::collection::vec(
            (0..BIDDERS.len(), prop_oneof![
                6 => (0i64..4_000).prop_map(Amount::AboveMin),
                2 => (1i64..12_000).prop_map(Amount::Absolute),
                2 => any::<usize>().prop_map(Amount::Repeat),
                1 => (-1i64..=1).prop_map(Amount::Reserve),
            ]),
            1..25,
        ),
    ) {
        let scheduled = Auction::new(AuctionId::parse("p").unwrap(), spec.clone()).unwrap();
        let mut a = open_if_due(&scheduled, T0).unwrap().auction;
        let mut model = Reference::new(&spec);
        let mut placed: Vec<i64> = Vec::new();
        for (order, (bidder, amount)) in bids.into_iter().enumerate() {
            let max = match amount {
                Amount::AboveMin(off) => model.min_bid() + off,
                Amount::Absolute(v) => v,
                Amount::Repeat(k) if !placed.is_empty() => placed[k % placed.len()],
                Amount::Reserve(off) if model.reserve.is_some() => model.reserve.unwrap() + off,
                _ => model.min_bid(),
            };
            placed.push(max);
            let r = BidRequest {
                bidder: who(bidder),
                amount: m(max),
                kind: BidKind::Max,
                expected_seq: None,
            };
            let d = place_bid(&a, &r, T0 + 1 + order as i64);
            let leads = model.place(bidder, max, order);
            prop_assert_eq!(d.outcome.is_ok(), leads, "accepted iff the model accepts it");
            if let Some(c) = d.change {
                a = c.auction;
            }
            let winner = model.winner();
            prop_assert_eq!(
                a.state.leader.as_ref().map(|l| l.id.as_str()),
                winner.map(|(w, _)| BIDDERS[w])
            );
            prop_assert_eq!(a.state.leader_max.map(Money::minor_units), winner.map(|(_, x)| x));
            prop_assert_eq!(a.state.price.map(Money::minor_units), model.price);
        }
        let closing = close_if_due(&a, a.state.ends_at).unwrap().auction.state.closing.unwrap();
        let winner = model
            .winner()
            .filter(|&(_, max)| model.reserve.is_none_or(|r| max >= r))
            .map(|(w, _)| BIDDERS[w].to_string());
        prop_assert_eq!(closing.winner.map(|b| b.id.to_string()), winner.clone());
        prop_assert_eq!(
            closing.final_price.map(Money::minor_units),
            model.price.filter(|_| winner.is_some())
        );
    }
}
