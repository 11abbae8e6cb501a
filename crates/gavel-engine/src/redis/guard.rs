//! How a decision made on the node holds at the time the commit script runs.
//!
//! The time of an accepted change is Redis `TIME` when the commit script runs (the
//! auction's clock, kept monotonic). The node cannot know it when it decides, so it
//! decides at its best estimate `at` and sends two things:
//!
//! - a **guard**, the interval `[lo, hi)` around `at` in which `gavel_core::rules` give
//!   the same outcome up to the time itself: no status change (start, end), no soft-close
//!   threshold (window start, extension start, cap). The script refuses a commit whose
//!   clock falls outside it, and the node decides again at that clock.
//! - **templates**: the change, history entry and recorded reply as JSON, with every
//!   number that moves with the decision time (the entry's time, a closing's time, a
//!   soft-close end `now + extend_ms`) replaced by a marker `\x01<offset>\x01` meaning
//!   "the clock plus offset". The script writes its clock in. It knows nothing about what
//!   the numbers mean: a raw `\x01` byte never occurs in JSON that `serde_json` writes
//!   (it escapes control characters inside strings), so markers are unambiguous.
//!
//! Templates are found without knowing the rules: the decision is made at two instants
//! of the guard and the two JSON texts compared; numbers that differ by exactly the time
//! between them are time-relative, everything else must be identical. The guard is the
//! one place that knows which instants the rules compare the clock with; `tests` below
//! check it against the rules themselves (decide anywhere in a guard, compare with the
//! template filled in), so a new time-dependent rule that is not listed here fails them.

use gavel_core::{Auction, Millis};

/// The highest time a Lua double holds exactly; guards are clamped into `[0, LIMIT]`.
pub(super) const LIMIT: Millis = (1 << 53) - 1;

/// The interval `[lo, hi)` around `at` in which the rules decide alike for auction `a`.
pub(super) fn guard(a: &Auction, at: Millis) -> (Millis, Millis) {
    let mut lo = Millis::MIN;
    let mut hi = Millis::MAX;
    for b in breakpoints(a).into_iter().flatten() {
        if b <= at {
            lo = lo.max(b);
        } else {
            hi = hi.min(b);
        }
    }
    (lo.clamp(0, LIMIT), hi.clamp(0, LIMIT))
}

/// Every instant at which a decision on `a` may change shape: where `rules` compare the
/// clock with a value of the auction (`status_at`, `close_if_due`,
/// `extend_for_soft_close`). Listing too many is harmless (a smaller guard), too few is
/// not (the tests below).
fn breakpoints(a: &Auction) -> [Option<Millis>; 7] {
    let s = &a.state;
    let sc = a.spec.soft_close;
    let cap = sc.and_then(|sc| {
        sc.max_extension_ms.map(|m| {
            a.spec
                .ends_at
                .saturating_add(m)
                .saturating_sub(sc.extend_ms)
        })
    });
    [
        Some(a.spec.starts_at),
        Some(s.ends_at),
        sc.map(|sc| s.ends_at.saturating_sub(sc.window_ms)),
        // now + extend_ms > ends_at from here on.
        sc.map(|sc| s.ends_at.saturating_sub(sc.extend_ms).saturating_add(1)),
        // now + extend_ms reaches the cap: the new end stops moving with the clock.
        cap,
        cap.map(|c| c.saturating_add(1)),
        None,
    ]
}

/// Why two decisions could not be made into one template.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Mismatch(pub String);

/// The template of `at_a` (JSON of a decision made at `a`) given `at_b` (the same
/// decision made at `b`, `b != a`): numbers that differ by exactly `b - a` become markers
/// relative to the clock. `None` markers needed: the text itself is returned.
pub(super) fn template(at_a: &str, a: Millis, at_b: &str, b: Millis) -> Result<String, Mismatch> {
    if at_a == at_b {
        return Ok(at_a.to_string());
    }
    let (x, y) = (at_a.as_bytes(), at_b.as_bytes());
    let number = |c: u8| c.is_ascii_digit() || c == b'-';
    let mut out: Vec<u8> = Vec::with_capacity(x.len() + 16);
    let (mut i, mut j) = (0, 0);
    while i < x.len() || j < y.len() {
        if i < x.len() && j < y.len() && x[i] == y[j] {
            out.push(x[i]);
            i += 1;
            j += 1;
            continue;
        }
        // Back up to the start of the number both are in.
        let mut start = 0;
        while start < i.min(j) && number(x[i - start - 1]) {
            start += 1;
        }
        if start > 0 {
            out.truncate(out.len() - start);
        }
        let (si, sj) = (i - start, j - start);
        let end = |s: &[u8], mut k: usize| {
            while k < s.len() && number(s[k]) {
                k += 1;
            }
            k
        };
        let (ei, ej) = (end(x, si), end(y, sj));
        let parse = |s: &[u8], from: usize, to: usize| {
            std::str::from_utf8(&s[from..to])
                .ok()
                .and_then(|t| t.parse::<i64>().ok())
        };
        let (Some(nx), Some(ny)) = (parse(x, si, ei), parse(y, sj, ej)) else {
            return Err(Mismatch(format!(
                "the decisions differ outside a number at byte {si}"
            )));
        };
        if ny.checked_sub(nx) != b.checked_sub(a) {
            return Err(Mismatch(format!(
                "a number moved by {} while the clock moved by {}",
                ny.wrapping_sub(nx),
                b - a
            )));
        }
        out.push(1);
        out.extend_from_slice((nx - a).to_string().as_bytes());
        out.push(1);
        i = ei;
        j = ej;
    }
    // Only whole ASCII number tokens were replaced, so the text is still UTF-8.
    String::from_utf8(out).map_err(|e| Mismatch(e.to_string()))
}

/// Fills a template's markers with `clock` (what the commit script does, in Rust: for
/// tests).
#[cfg(test)]
pub(super) fn fill(template: &str, clock: Millis) -> String {
    let mut out = String::with_capacity(template.len());
    let mut parts = template.split('\x01');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let mut marker = true;
    for part in parts {
        if marker {
            let k: i64 = part.parse().unwrap_or(0);
            out.push_str(&(clock + k).to_string());
        } else {
            out.push_str(part);
        }
        marker = !marker;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gavel_core::{
        rules, AuctionId, AuctionSpec, BidKind, BidRequest, Bidder, BidderId, Change, Currency,
        IncrementBand, IncrementPolicy, Money, SoftClose,
    };
    use proptest::prelude::*;

    const T0: Millis = 1_767_225_600_000;

    /// Everything a decision at `at` writes, as the commit sends it (change and reply state).
    fn decided(a: &Auction, op: &TestOp, at: Millis) -> String {
        let (outcome, change): (String, Option<Change>) = match op {
            TestOp::Bid(req) => {
                let d = rules::place_bid(a, req, at);
                (format!("{:?}", d.outcome), d.change)
            }
            TestOp::Advance => (
                String::new(),
                rules::open_if_due(a, at).or_else(|| rules::close_if_due(a, at)),
            ),
            TestOp::EndEarly => match rules::end_early(a, at, "admin") {
                Ok(c) => (String::new(), Some(c)),
                Err(r) => (format!("{r:?}"), None),
            },
        };
        let state = change.as_ref().map_or(&a.state, |c| &c.auction.state);
        let event = change.as_ref().map(|c| &c.event);
        format!(
            "{outcome}|{}|{}",
            serde_json::to_string(state).unwrap(),
            serde_json::to_string(&event).unwrap()
        )
    }

    #[derive(Clone, Debug)]
    enum TestOp {
        Bid(BidRequest),
        Advance,
        EndEarly,
    }

    fn money(v: i64) -> Money {
        Money::new(v.clamp(1, gavel_core::MAX_AMOUNT)).unwrap()
    }

    /// An auction after some bids, so leaders, maximums, extended ends and closings vary.
    fn auction_strategy() -> impl Strategy<Value = Auction> {
        let soft_close = prop_oneof![
            Just(None),
            (1i64..20_000, 1i64..20_000, prop::option::of(0i64..30_000)).prop_map(
                |(w, e, m)| Some(SoftClose {
                    window_ms: w,
                    extend_ms: e,
                    max_extension_ms: m,
                })
            ),
        ];
        let history = prop::collection::vec((0usize..3, 0i64..5, 0u8..3, 0i64..70_000), 0..8);
        (
            soft_close,
            prop::option::of(100i64..2_000),
            prop::option::of(0i64..3_000),
            history,
        )
            .prop_map(|(soft_close, reserve, buy_now, history)| {
                let spec = AuctionSpec {
                    title: "Lot".into(),
                    description: String::new(),
                    currency: Currency::parse("USD").unwrap(),
                    category: None,
                    starting_price: money(100),
                    increment: IncrementPolicy::Table {
                        bands: vec![
                            IncrementBand {
                                from: 0,
                                increment: money(10),
                            },
                            IncrementBand {
                                from: 1_000,
                                increment: money(100),
                            },
                        ],
                    },
                    starts_at: T0,
                    ends_at: T0 + 60_000,
                    reserve: reserve.map(money),
                    buy_now: buy_now.map(|b| money(2_000 + b)),
                    soft_close,
                };
                let mut a = Auction::new(AuctionId::parse("g").unwrap(), spec).unwrap();
                for (who, step, kind, at) in history {
                    let kind = [BidKind::Plain, BidKind::Max, BidKind::BuyNow][kind as usize];
                    let amount = match (kind, a.spec.buy_now) {
                        (BidKind::BuyNow, Some(p)) => p,
                        _ => money(a.min_bid().minor_units() + step * 100),
                    };
                    let req = BidRequest {
                        bidder: bidder(who),
                        amount,
                        kind,
                        expected_seq: None,
                    };
                    if let Some(c) = rules::place_bid(&a, &req, T0 + at).change {
                        a = c.auction;
                    }
                }
                a
            })
    }

    fn bidder(i: usize) -> Bidder {
        Bidder {
            id: BidderId::parse(format!("u-{i}")).unwrap(),
            name: format!("Bidder \"{i}\" ü").into(),
        }
    }

    fn op_strategy() -> impl Strategy<Value = TestOp> {
        prop_oneof![
            6 => (0usize..4, -1i64..4, 0u8..3, any::<bool>()).prop_map(|(who, step, kind, exp)| {
                TestOp::Bid(BidRequest {
                    bidder: bidder(who),
                    amount: money(900 + step * 150),
                    kind: [BidKind::Plain, BidKind::Max, BidKind::BuyNow][kind as usize],
                    expected_seq: exp.then_some(3),
                })
            }),
            1 => Just(TestOp::Advance),
            1 => Just(TestOp::EndEarly),
        ]
    }

    /// A time near one of the auction's instants, or anywhere.
    fn time_near(a: &Auction, pick: usize, delta: i64) -> Millis {
        let mut instants: Vec<Millis> = breakpoints(a).into_iter().flatten().collect();
        instants.push(T0 + 30_000);
        instants[pick % instants.len()] + delta
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        /// The property the commit script relies on: inside the guard of a decision made at
        /// `at`, the template filled with any clock is exactly the decision at that clock.
        #[test]
        fn a_template_filled_anywhere_in_its_guard_is_the_decision_made_there(
            a in auction_strategy(),
            op in op_strategy(),
            pick in 0usize..8,
            delta in -3i64..4,
            later in 0i64..5_000,
        ) {
            let at = time_near(&a, pick, delta);
            let (lo, hi) = guard(&a, at);
            prop_assume!(lo <= at && at < hi);
            let other = if at + 1 < hi { at + 1 } else { at - 1 };
            prop_assume!(other >= lo);
            let t = template(&decided(&a, &op, at), at, &decided(&a, &op, other), other)
                .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            for clock in [lo, at, (at + later).min(hi - 1), hi - 1, hi.saturating_sub(2).max(lo)] {
                prop_assert_eq!(fill(&t, clock), decided(&a, &op, clock), "clock {}", clock);
            }
        }
    }

    #[test]
    fn a_number_that_moves_otherwise_is_refused() {
        let a = "{\"at\":1000,\"ends\":5000}";
        let b = "{\"at\":1001,\"ends\":5007}";
        assert!(template(a, 1000, b, 1001).is_err());
        let t = template(a, 1000, "{\"at\":1001,\"ends\":5000}", 1001).unwrap();
        assert_eq!(t, "{\"at\":\x010\x01,\"ends\":5000}");
        assert_eq!(fill(&t, 999_999), "{\"at\":999999,\"ends\":5000}");
        // Numbers of different lengths, negative offsets.
        let t = template("[9,99]", 9, "[10,100]", 10).unwrap();
        assert_eq!(t, "[\x010\x01,\x0190\x01]");
        assert_eq!(fill(&t, 1_000), "[1000,1090]");
        assert!(template("{\"a\":\"x\"}", 1, "{\"a\":\"y\"}", 2).is_err());
    }

    #[test]
    fn a_guard_stops_at_the_end_and_at_the_soft_close_window() {
        let spec = AuctionSpec {
            title: "Lot".into(),
            description: String::new(),
            currency: Currency::parse("USD").unwrap(),
            category: None,
            starting_price: money(100),
            increment: IncrementPolicy::Fixed { amount: money(10) },
            starts_at: T0,
            ends_at: T0 + 60_000,
            reserve: None,
            buy_now: None,
            soft_close: Some(SoftClose {
                window_ms: 10_000,
                extend_ms: 30_000,
                max_extension_ms: None,
            }),
        };
        let a = Auction::new(AuctionId::parse("g").unwrap(), spec).unwrap();
        assert_eq!(guard(&a, T0 + 1), (T0, T0 + 30_001));
        assert_eq!(guard(&a, T0 + 59_999), (T0 + 50_000, T0 + 60_000));
        assert_eq!(guard(&a, T0 + 60_000), (T0 + 60_000, LIMIT));
        assert_eq!(guard(&a, T0 - 1), (0, T0));
    }
}
