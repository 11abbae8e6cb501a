//! The model: `gavel_core::rules` applied to the checker's reconstructed state, and how a
//! model state must look from outside (the `AuctionView` a client would be shown).
//!
//! The rules need the authority's clock. The checker never knows it exactly unless an
//! answer reveals it (a history entry's `at`, a `closed_at`, a soft-close end), so it
//! tries every time that could make a difference: the edges of the request's window and
//! the auction's own thresholds (start, soft-close window, end). Between two such points
//! the rules decide the same way.

use gavel_core::{buy_now_available, Auction, BidEntry, Rejection, Status};
use gavel_protocol::{AuctionView, BidView};
use serde::Serialize;

/// Server times (ms, inclusive) at which something may have happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub lo: i64,
    pub hi: i64,
}

impl Window {
    /// The server times compatible with a request sent at `start` µs and answered at `end`
    /// µs (`None`: never answered, so up to `horizon` ms), given the clocks' skew.
    pub fn of(start: i64, end: Option<i64>, skew_ms: i64, horizon_ms: i64) -> Window {
        Window {
            lo: start.div_euclid(1000) - skew_ms,
            hi: end.map_or(horizon_ms, |e| e.div_euclid(1000)) + skew_ms,
        }
    }

    pub fn contains(&self, t: i64) -> bool {
        (self.lo..=self.hi).contains(&t)
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {}]", self.lo, self.hi)
    }
}

pub use gavel_core::outcome_code;

/// A rejection with what came with it, in words.
pub fn outcome_words(o: &Result<(), Rejection>) -> String {
    match o {
        Ok(()) => "accepted".into(),
        Err(Rejection::Outbid { min_bid }) => format!("outbid (min_bid {min_bid})"),
        Err(Rejection::Stale { seq }) => format!("stale (the auction is at seq {seq})"),
        Err(Rejection::BuyNowPrice { price }) => format!("buy_now_price ({price})"),
        Err(Rejection::MaxNotRaised { current_max }) => {
            format!("max_not_raised (current maximum {current_max})")
        }
        Err(r) => r.code().into(),
    }
}

/// A model state in a few words, for reports (the checker may show the hidden maximum:
/// the history is the tester's own).
pub fn describe(a: &Auction) -> String {
    let s = &a.state;
    let leader = match (&s.leader, s.leader_max) {
        (Some(l), Some(m)) => format!("{} (maximum {m})", l.id),
        (Some(l), None) => l.id.to_string(),
        (None, _) => "none".into(),
    };
    let closing = s
        .closing
        .as_ref()
        .map(|c| {
            format!(
                ", closed ({}, at {}, winner {})",
                c.reason.as_str(),
                c.closed_at,
                c.winner
                    .as_ref()
                    .map_or("none".into(), |w| w.id.to_string())
            )
        })
        .unwrap_or_default();
    format!(
        "seq {}: {}, price {}, leader {leader}, min_bid {}, {} bids, ends_at {}{closing}",
        s.seq,
        s.status.as_str(),
        s.price.map_or("none".into(), |p| p.to_string()),
        a.min_bid(),
        s.bid_count,
        s.ends_at,
    )
}

/// Every time in `w` at which a decision on `a` may differ from its neighbours', plus
/// `extra` (times an answer suggests), in order.
pub fn decision_times(a: &Auction, w: Window, extra: &[i64]) -> Vec<i64> {
    let ends = a.state.ends_at;
    let start = a.spec.starts_at;
    let mut v = vec![w.lo, w.hi, start - 1, start, ends - 1, ends];
    if let Some(sc) = a.spec.soft_close {
        v.push(ends.saturating_sub(sc.window_ms) - 1);
        v.push(ends.saturating_sub(sc.window_ms));
    }
    v.extend_from_slice(extra);
    v.retain(|t| w.contains(*t));
    v.sort_unstable();
    v.dedup();
    v
}

/// Differences between what the model shows and an answer, field by field.
#[derive(Default)]
struct Diffs(Vec<String>);

impl Diffs {
    fn eq<T: PartialEq + Serialize>(&mut self, what: &str, model: T, answer: T) {
        if model != answer {
            self.0.push(format!(
                "{what} should be {} but is {}",
                serde_json::to_string(&model).unwrap_or_default(),
                serde_json::to_string(&answer).unwrap_or_default()
            ));
        }
    }
}

/// Whether `view` is how model state `m` looks to `viewer` at some time in `w` (the status
/// and buy-now availability follow the server's clock when the answer was made).
pub fn compare_view(
    m: &Auction,
    v: &AuctionView,
    viewer: Option<&str>,
    w: Window,
) -> Result<(), String> {
    let s = &m.state;
    let spec = &m.spec;
    let mut d = Diffs::default();
    d.eq("id", m.id.as_str(), v.id.as_str());
    d.eq("seq", s.seq, v.seq);
    d.eq("price", s.price.map(|p| p.minor_units()), v.price);
    d.eq(
        "leader",
        s.leader.as_ref().map(|l| (l.id.as_str(), &*l.name)),
        v.leader.as_ref().map(|l| (l.id.as_str(), l.name.as_str())),
    );
    d.eq("bid_count", s.bid_count, v.bid_count);
    d.eq("min_bid", m.min_bid().minor_units(), v.min_bid);
    d.eq("increment", m.increment().minor_units(), v.increment);
    d.eq("ends_at", s.ends_at, v.ends_at);
    d.eq("reserve_met", m.reserve_met(), v.reserve_met);
    d.eq(
        "closing",
        s.closing.as_ref().map(|c| {
            (
                c.reason.as_str(),
                c.closed_at,
                c.winner.as_ref().map(|w| w.id.to_string()),
                c.final_price.map(|p| p.minor_units()),
            )
        }),
        v.closing.as_ref().map(|c| {
            (
                c.reason.as_str(),
                c.closed_at,
                c.winner.as_ref().map(|w| w.id.clone()),
                c.final_price,
            )
        }),
    );
    let your_max = match (&s.leader, s.leader_max, viewer) {
        (Some(l), Some(max), Some(who)) if l.id.as_str() == who => Some(max.minor_units()),
        _ => None,
    };
    d.eq("your_max", your_max, v.your_max);
    d.eq("starts_at", spec.starts_at, v.starts_at);
    d.eq("original_ends_at", spec.ends_at, v.original_ends_at);
    d.eq(
        "starting_price",
        spec.starting_price.minor_units(),
        v.starting_price,
    );
    d.eq("buy_now", spec.buy_now.map(|b| b.minor_units()), v.buy_now);
    d.eq("has_reserve", spec.reserve.is_some(), v.has_reserve);
    d.eq("title", spec.title.as_str(), v.title.as_str());
    d.eq("currency", spec.currency.as_str(), v.currency.as_str());
    let shows = |t: i64| {
        let status = m.status_at(t);
        status.as_str() == v.status
            && (status == Status::Open && buy_now_available(m)) == v.buy_now_available
    };
    let times = decision_times(m, w, &[]);
    if !times.iter().any(|&t| shows(t)) {
        let at = |t: i64| {
            let st = m.status_at(t);
            format!(
                "{} (buy_now_available {})",
                st.as_str(),
                st == Status::Open && buy_now_available(m)
            )
        };
        d.0.push(format!(
            "status {} (buy_now_available {}) matches no time in {w}: the model shows {} at {} and {} at {}",
            v.status,
            v.buy_now_available,
            at(w.lo),
            w.lo,
            at(w.hi),
            w.hi
        ));
    }
    if d.0.is_empty() {
        Ok(())
    } else {
        Err(d.0.join("; "))
    }
}

/// Whether a history entry as shown matches the model's.
pub fn compare_entry(model: &BidEntry, shown: &BidView) -> Result<(), String> {
    let mut d = Diffs::default();
    d.eq("seq", model.seq, shown.seq);
    d.eq(
        "bidder",
        (model.bidder.id.as_str(), &*model.bidder.name),
        (shown.bidder.id.as_str(), shown.bidder.name.as_str()),
    );
    d.eq("amount", model.amount.minor_units(), shown.amount);
    d.eq("kind", model.kind.as_str(), shown.kind.as_str());
    d.eq("at", model.at, shown.at);
    if d.0.is_empty() {
        Ok(())
    } else {
        Err(format!("entry seq {}: {}", model.seq, d.0.join(", ")))
    }
}

/// An entry in a few words.
pub fn entry_words(e: &BidEntry) -> String {
    format!(
        "seq {} {} {} by {} at {}",
        e.seq,
        e.kind.as_str(),
        e.amount,
        e.bidder.id,
        e.at
    )
}

/// A shown entry in a few words.
pub fn view_words(e: &BidView) -> String {
    format!(
        "seq {} {} {} by {} at {}",
        e.seq, e.kind, e.amount, e.bidder.id, e.at
    )
}
