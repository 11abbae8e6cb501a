//! What the checker concludes: per auction, either an order that explains every answer was
//! found, or a violation naming the operations no order can explain.

use serde::Serialize;
use std::fmt;

/// The kind of a violation. Each names one promise the server broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// Two state changes were answered with the same `seq`.
    SeqClaimedTwice,
    /// One request (bidder + request id) was decided twice, with different answers.
    DecidedTwice,
    /// An operation saw a state older than one an operation that had already finished
    /// before it started saw (or saw its own change before it was sent).
    RealTime,
    /// An answer the auction rules cannot give from the state it was decided on.
    Rules,
    /// A history read (page or snapshot) that no state in its time window explains, e.g.
    /// an accepted bid missing from it.
    History,
    /// The server's own time for a decision lies outside the window the request was in
    /// flight.
    Time,
    /// A state change nothing in the history can have caused.
    Unexplained,
    /// `not_found` for an auction created before the request was sent.
    NotFound,
}

impl ViolationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationKind::SeqClaimedTwice => "seq_claimed_twice",
            ViolationKind::DecidedTwice => "decided_twice",
            ViolationKind::RealTime => "real_time",
            ViolationKind::Rules => "rules",
            ViolationKind::History => "history",
            ViolationKind::Time => "time",
            ViolationKind::Unexplained => "unexplained",
            ViolationKind::NotFound => "not_found",
        }
    }
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing no sequential order can explain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub auction: String,
    pub kind: ViolationKind,
    /// History lines (1-based) of the operations involved.
    pub lines: Vec<usize>,
    /// What was seen and why no order explains it, with the operations described.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] auction {}: {}",
            self.kind, self.auction, self.message
        )
    }
}

/// How one auction's check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Some order consistent with real time explains every answer.
    Linearizable,
    /// At least one violation.
    Violation,
    /// Could not be decided: the history lacks the auction's creation, or the search for
    /// unknown outcomes ran out of its budget.
    Unchecked,
}

/// The outcome for one auction.
#[derive(Clone, Debug, Serialize)]
pub struct AuctionReport {
    pub auction: String,
    pub verdict: Verdict,
    /// Operations on this auction (bid attempts, reads, admin actions, its creation).
    pub operations: usize,
    /// The highest `seq` the history reveals.
    pub seq: u64,
    /// Requests whose outcome was unknown (no answer, `outcome_unknown`), and how many of
    /// them the explaining order has taking effect.
    pub unknown: usize,
    pub unknown_took_effect: usize,
    /// Changes no recorded operation caused: openings and closings by the clock, and admin
    /// actions the history does not record (when its header allows them).
    pub clock_changes: usize,
    /// States the search visited (one per `seq` when nothing is unknown).
    pub search_steps: u64,
    /// Why it is `unchecked`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The checker's conclusion for a whole history.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub auctions: Vec<AuctionReport>,
    pub violations: Vec<Violation>,
}

impl Report {
    /// Every auction linearizable.
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
            && self
                .auctions
                .iter()
                .all(|a| a.verdict == Verdict::Linearizable)
    }

    /// Plain-text summary: one line per auction, then every violation.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for a in &self.auctions {
            out.push_str(&format!(
                "{:<13} {}: {} operations, seq {}, {} unknown ({} took effect), {} clock changes, {} search steps{}\n",
                match a.verdict {
                    Verdict::Linearizable => "linearizable",
                    Verdict::Violation => "VIOLATION",
                    Verdict::Unchecked => "UNCHECKED",
                },
                a.auction,
                a.operations,
                a.seq,
                a.unknown,
                a.unknown_took_effect,
                a.clock_changes,
                a.search_steps,
                a.note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default(),
            ));
        }
        for v in &self.violations {
            out.push_str(&format!("{v}\n"));
        }
        out
    }
}
