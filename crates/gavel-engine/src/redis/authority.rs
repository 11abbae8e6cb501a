//! The node's estimate of the authority's clock.
//!
//! The authority is Redis `TIME`, kept monotonic per auction by the commit script (an
//! auction's clock is `max(TIME, t)`, `t` being the clock of its last decision), and the
//! time of every committed change is that clock when the script ran. A node decides before
//! its commit reaches Redis, so it decides at its best guess of that moment; the guard it
//! sends (`guard.rs`) makes a wrong guess harmless: the script refuses a clock outside the
//! interval in which the decision holds, and the node decides again at the clock it got
//! back. A good guess only saves that second round near an auction's start, end or
//! soft-close instants.
//!
//! The guess is anchored on clocks the scripts return, advanced with the local
//! *monotonic* clock (`Instant`), so a step of this machine's wall clock never reaches a
//! decision, plus `lead`: the measured delay between deciding and the script's execution
//! (a round trip plus Redis's queue), learned from every reply.

use crate::Clock;
use gavel_core::Millis;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

/// Where the node's notion of the authority's time comes from.
#[derive(Clone, Debug)]
pub(super) enum Source {
    /// Production: learned from Redis `TIME`.
    Redis,
    /// Tests: the scripts are handed this clock's time instead of `TIME` (both sides agree
    /// exactly, so a frozen clock gives reproducible decisions).
    Test(Clock),
    /// Tests: this node *believes* the time is this clock's, while the scripts still read
    /// the real `TIME` (a node whose estimate is off, deciding just before a boundary).
    Pinned(Clock),
}

pub(super) struct AuthorityClock {
    source: Source,
    /// (when, TIME then): the latest lower bound of `TIME` this node knows.
    anchor: Mutex<(Instant, Millis)>,
    /// Milliseconds between a decision and its script's execution, as measured.
    lead: AtomicI64,
    /// The latest clock a commit of this node ran at: no decision of this node is made,
    /// and no script of this node runs, at an earlier time (the decision clock is
    /// monotonic per engine, whatever the wall clock or Redis `TIME` does).
    last: AtomicI64,
}

/// The most the lead grows to: a guess of when the script will run, nothing more.
const MAX_LEAD: i64 = 50;

impl AuthorityClock {
    pub(super) fn new(source: Source) -> Self {
        AuthorityClock {
            source,
            anchor: Mutex::new((Instant::now(), crate::clock::system_now())),
            lead: AtomicI64::new(1),
            last: AtomicI64::new(i64::MIN),
        }
    }

    /// A commit of this node ran at `clock` (or saw the auction's clock there).
    pub(super) fn used(&self, clock: Millis) {
        self.last.fetch_max(clock, Ordering::AcqRel);
    }

    /// The engine's time: the estimate, never earlier than a clock already used.
    pub(super) fn now(&self) -> Millis {
        self.estimate().max(self.last.load(Ordering::Acquire))
    }

    /// The floor the scripts put under `TIME` (`''`: none): the latest clock this node
    /// used. Not for a pinned estimate, whose point is a node deciding with a wrong clock.
    pub(super) fn script_floor(&self) -> String {
        match &self.source {
            Source::Redis => {
                let last = self.last.load(Ordering::Acquire);
                if last == i64::MIN {
                    String::new()
                } else {
                    last.to_string()
                }
            }
            Source::Test(_) | Source::Pinned(_) => String::new(),
        }
    }

    /// What the scripts are told the time is: `''` (read `TIME`), or a test clock's time.
    pub(super) fn script_now(&self) -> String {
        match &self.source {
            Source::Test(c) => c.now().max(self.last.load(Ordering::Acquire)).to_string(),
            Source::Redis | Source::Pinned(_) => String::new(),
        }
    }

    /// Whether the estimate is learned from Redis replies.
    pub(super) fn learns(&self) -> bool {
        matches!(self.source, Source::Redis)
    }

    /// The authority's time now, as best this node knows it (for `Engine::now`).
    pub(super) fn estimate(&self) -> Millis {
        match &self.source {
            Source::Test(c) | Source::Pinned(c) => c.now(),
            Source::Redis => {
                let (at, time) = *self.anchor.lock();
                time + at.elapsed().as_millis() as Millis
            }
        }
    }

    /// The time to decide at: when the commit is expected to run, never before `floor`
    /// (the auction's clock as last seen).
    pub(super) fn propose(&self, floor: Millis) -> Millis {
        let lead = if self.learns() {
            self.lead.load(Ordering::Relaxed)
        } else {
            0
        };
        let base = match &self.source {
            Source::Pinned(_) => self.estimate(),
            Source::Redis | Source::Test(_) => self.now(),
        };
        (base + lead).max(floor)
    }

    /// A script ran at Redis `TIME` `time` (ms); `estimate` is what
    /// [`estimate`](Self::estimate) said when the node decided.
    pub(super) fn observe(&self, estimate: Millis, time: Millis) {
        self.used(time);
        if !self.learns() {
            return;
        }
        {
            // TIME then was `time` at some instant between `sent` and now: anchoring it at
            // now gives a lower bound. Keep the highest lower bound.
            let now = Instant::now();
            let mut anchor = self.anchor.lock();
            let current = anchor.1 + now.duration_since(anchor.0).as_millis() as Millis;
            if time > current {
                *anchor = (now, time);
            }
        }
        // How much later than our estimate the script ran, plus a millisecond because TIME
        // is truncated to milliseconds. Rise at once, fall slowly (one step in 16).
        let need = (time - estimate + 1).clamp(1, MAX_LEAD);
        let _ = self
            .lead
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |lead| {
                Some(if need >= lead {
                    need
                } else {
                    lead - (lead - need + 15) / 16
                })
            });
        metrics::gauge!("gavel_redis_decision_lead_ms").set(self.lead() as f64);
    }

    /// A fresh reading of `TIME` (start-up, periodic sync): replaces the anchor even if it
    /// is lower, so a Redis clock that stepped back (a failover) is followed. Auctions stay
    /// monotonic by their own clocks.
    pub(super) fn reset(&self, received: Instant, time: Millis) {
        if self.learns() {
            *self.anchor.lock() = (received, time);
        }
    }

    /// Current lead (ms), for metrics and tests.
    pub(super) fn lead(&self) -> i64 {
        self.lead.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lead_rises_at_once_and_decays_slowly() {
        let c = AuthorityClock::new(Source::Redis);
        let est = c.estimate();
        c.observe(est, est + 9);
        assert_eq!(c.lead(), 10);
        for _ in 0..4 {
            c.observe(c.estimate(), c.estimate());
        }
        assert!(c.lead() < 10 && c.lead() > 1, "{}", c.lead());
        c.observe(est, est + 10_000);
        assert_eq!(c.lead(), MAX_LEAD, "capped");
    }

    #[test]
    fn proposals_never_go_below_the_auctions_clock() {
        let c = AuthorityClock::new(Source::Redis);
        let far = c.estimate() + 60_000;
        assert_eq!(c.propose(far), far);
        assert!(c.propose(0) >= c.estimate());
    }

    #[test]
    fn an_anchor_only_moves_forward_unless_reset() {
        let c = AuthorityClock::new(Source::Redis);
        let before = c.estimate();
        c.observe(before, before - 5_000);
        assert!(c.estimate() >= before, "a late reply does not pull it back");
        c.reset(Instant::now(), before - 5_000);
        assert!(c.estimate() < before, "a fresh reading does");
    }
}
