//! `gavel-check`: decides whether a recorded history of black-box operations on Gavel is
//! linearizable, that is, whether some sequential order of the operations, consistent with
//! real time (an operation that finished before another started comes first), explains
//! every answer under the auction rules (`gavel_core::rules` is the model).
//!
//! Histories are JSON Lines ([`history`], documented in `docs/verification.md`), written
//! by clients through a [`record::Recorder`]. Auctions are independent, so each is checked
//! on its own ([`search`]); answers carry the `seq` they were decided at, which fixes almost
//! every operation's place, so the check is a linear replay with a small search only where
//! an outcome is unknown.

pub mod history;
pub mod model;
pub mod normalize;
pub mod record;
pub mod report;
pub mod search;

pub use history::{History, HistoryError, Record};
pub use record::Recorder;
pub use report::{AuctionReport, Report, Verdict, Violation, ViolationKind};

/// How to check.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Overrides the history's `clock_skew_ms`.
    pub skew_ms: Option<i64>,
    /// States the search may visit per auction, on top of one per `seq`.
    pub max_steps: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            skew_ms: None,
            max_steps: 1_000_000,
        }
    }
}

/// Checks every auction of a history.
pub fn check(history: &History, options: Options) -> Report {
    let skew_ms = options.skew_ms.unwrap_or(history.header.clock_skew_ms);
    // Operations never answered may have taken effect until the last moment the history
    // knows of.
    let horizon_ms = history
        .records
        .iter()
        .filter_map(|(_, r)| r.call())
        .map(|c| c.received.unwrap_or(c.sent).max(c.sent))
        .max()
        .unwrap_or(0)
        .div_euclid(1000)
        + 1;
    let mut report = Report::default();
    for auction in normalize::by_auction(history) {
        let limits = search::Limits {
            skew_ms,
            unrecorded_admin: history.header.unrecorded_admin,
            max_steps: options.max_steps + 4 * auction.ops.len() as u64,
        };
        let (a, violations) = search::check_auction(&auction, limits, horizon_ms);
        report.auctions.push(a);
        report.violations.extend(violations);
    }
    report
}
