//! The check of one auction: find a sequence of changes, one per `seq`, that the rules
//! produce and that explains every answer, in an order consistent with real time.
//!
//! Answers carry the `seq` they were decided at, so almost every operation's place in the
//! order is known: a change answered at `seq` n is the n-th change; a rejection or a read
//! answered at n saw the state after it. The checker therefore walks the seqs in order,
//! replaying each change with `gavel_core::rules` from the state before it and comparing
//! every answer at that seq with the model. It only searches where the history does not
//! say what caused a change: a request whose outcome is unknown (it may have taken effect
//! once, or not at all), the clock opening or closing the auction, or which of several
//! `outbid` answers at one seq was the one a proxy counter-bid answered. There it tries each
//! candidate and backtracks on a contradiction (like Knossos or Porcupine, but over the few
//! operations that need it). History pages carry no seq; they are placed last, at the
//! earliest seq their time window allows that explains them.

use crate::history::AdminAction;
use crate::model::{view_words, Window};
use crate::normalize::{AuctionOps, Changes, Kind, Op};
use crate::report::{AuctionReport, Verdict, Violation, ViolationKind};
use gavel_core::{Auction, BidEntry, CloseReason};
use gavel_protocol::BidView;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

mod reads;
mod steps;

/// How many entries a `snapshot` carries (the protocol's "at most 20").
pub const SNAPSHOT_RECENT_BIDS: usize = 20;
/// Violations of one kind reported per auction before the rest are only counted.
const MAX_REPORTS: usize = 5;

/// Limits of one check.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub skew_ms: i64,
    /// Admin actions may have happened that the history does not record.
    pub unrecorded_admin: bool,
    /// States the search may visit per auction before giving up (verdict `unchecked`).
    pub max_steps: u64,
}

/// What caused a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    Op(usize),
    /// The clock: an opening or a closing nobody asked for.
    Clock,
}

/// One way to reach the next seq.
#[derive(Clone, Debug)]
struct Step {
    cause: Cause,
    next: Auction,
    entry: Option<BidEntry>,
    /// The earliest server time (ms) the new state may exist from.
    since: i64,
}

/// A choice point: the state before it is at `s`, `alts` lead to `s + 1`.
struct Frame {
    s: u64,
    alts: Vec<Step>,
    next: usize,
}

/// The path being explored: everything per seq, cut back on backtracking.
struct Path {
    state: Auction,
    /// The model's history entries, in seq order.
    entries: Vec<BidEntry>,
    /// The cause of seq n at index n − 2.
    causes: Vec<Cause>,
    /// For seq n at index n − 1: the earliest server time the state exists from, whether it
    /// is closed, and its end.
    trail: Vec<(i64, bool, i64)>,
}

impl Path {
    fn apply(&mut self, step: &Step) {
        if let Some(e) = &step.entry {
            self.entries.push(e.clone());
        }
        self.causes.push(step.cause);
        self.state = step.next.clone();
        self.trail.push((
            step.since,
            self.state.state.closing.is_some(),
            self.state.state.ends_at,
        ));
    }

    /// Back to seq `s` (its state is supplied by the caller through the next step).
    fn cut(&mut self, s: u64) {
        self.causes.truncate(s.saturating_sub(1) as usize);
        self.trail.truncate(s as usize);
        let keep = self.entries.partition_point(|e| e.seq <= s);
        self.entries.truncate(keep);
    }
}

struct Checker<'a> {
    a: &'a AuctionOps,
    ops: &'a [Op],
    initial: &'a Auction,
    limits: Limits,
    horizon_ms: i64,
    top: u64,
    at_pos: HashMap<u64, Vec<usize>>,
    known_cause: HashMap<u64, usize>,
    unknowns: Vec<usize>,
    positionless: Vec<usize>,
    /// Entries shown by reads, by seq (the first read that showed each).
    seen_entries: BTreeMap<u64, (BidView, usize)>,
    /// Every `ends_at` and `closed_at` an answer showed: times a decision may have had.
    seen_ends: Vec<i64>,
    /// Admin closings answers showed (action, `closed_at`): what an unrecorded admin action
    /// would have to have been.
    seen_admin_closes: Vec<(AdminAction, i64)>,
    /// Ops with a known position and end, by end: (end, running max position, its op).
    before: Vec<(i64, u64, usize)>,
}

/// Checks one auction.
pub fn check_auction(
    a: &AuctionOps,
    limits: Limits,
    horizon_ms: i64,
) -> (AuctionReport, Vec<Violation>) {
    let mut report = AuctionReport {
        auction: a.id.clone(),
        verdict: Verdict::Linearizable,
        operations: a.records,
        seq: 1,
        unknown: a
            .ops
            .iter()
            .filter(|o| matches!(o.kind, Kind::Unknown(_)))
            .count(),
        unknown_took_effect: 0,
        clock_changes: 0,
        search_steps: 0,
        note: a.note.clone(),
    };
    let Some(initial) = &a.initial else {
        report.verdict = Verdict::Unchecked;
        return (report, a.violations.clone());
    };
    let mut violations = a.violations.clone();
    let c = Checker::new(a, initial, limits, horizon_ms, &mut violations);
    report.seq = c.top;
    if !violations.is_empty() {
        report.verdict = Verdict::Violation;
        return (report, violations);
    }
    match c.search(&mut report) {
        Ok(()) => {}
        Err(Some(v)) => {
            report.verdict = Verdict::Violation;
            violations.push(v);
        }
        Err(None) => {
            report.verdict = Verdict::Unchecked;
            report.note = Some(format!(
                "the search for unknown outcomes stopped after {} steps",
                report.search_steps
            ));
        }
    }
    (report, violations)
}

impl<'a> Checker<'a> {
    fn new(
        a: &'a AuctionOps,
        initial: &'a Auction,
        limits: Limits,
        horizon_ms: i64,
        violations: &mut Vec<Violation>,
    ) -> Self {
        let ops = &a.ops;
        let mut c = Checker {
            a,
            ops,
            initial,
            limits,
            horizon_ms,
            top: 1,
            at_pos: HashMap::new(),
            known_cause: HashMap::new(),
            unknowns: Vec::new(),
            positionless: Vec::new(),
            seen_entries: BTreeMap::new(),
            seen_ends: Vec::new(),
            seen_admin_closes: Vec::new(),
            before: Vec::new(),
        };
        for (i, op) in ops.iter().enumerate() {
            match op.pos {
                Some(p) => {
                    c.top = c.top.max(p);
                    c.at_pos.entry(p).or_default().push(i);
                    if op.changes() == Changes::Yes {
                        if let Some(&other) = c.known_cause.get(&p) {
                            violations.push(c.violation(
                                ViolationKind::SeqClaimedTwice,
                                &[other, i],
                                format!(
                                    "two changes were answered at seq {p}: {} and {}",
                                    ops[other].describe(),
                                    op.describe()
                                ),
                            ));
                        } else {
                            c.known_cause.insert(p, i);
                        }
                    }
                }
                None if matches!(op.kind, Kind::Unknown(_)) => c.unknowns.push(i),
                None => c.positionless.push(i),
            }
            let views = match &op.kind {
                Kind::Create(v) | Kind::View(v) | Kind::AdminDone(_, v) => vec![v],
                Kind::Snapshot(s) => vec![&s.auction],
                Kind::Decision(d) => d.answers.iter().map(|a| &a.view).collect(),
                _ => vec![],
            };
            for v in views {
                c.seen_ends.push(v.ends_at);
                if let Some(cl) = &v.closing {
                    c.seen_ends.push(cl.closed_at);
                    let action = match cl.reason.parse::<CloseReason>() {
                        Ok(CloseReason::Cancelled) => Some(AdminAction::Cancel),
                        Ok(CloseReason::EndedEarly) => Some(AdminAction::EndEarly),
                        _ => None,
                    };
                    c.seen_admin_closes
                        .extend(action.map(|a| (a, cl.closed_at)));
                }
            }
            let shown: &[BidView] = match &op.kind {
                Kind::Snapshot(s) => &s.recent_bids,
                Kind::Page { page, .. } => &page.bids,
                _ => &[],
            };
            for e in shown {
                c.top = c.top.max(e.seq);
                match c.seen_entries.get(&e.seq) {
                    Some((first, j)) if first != e => violations.push(c.violation(
                        ViolationKind::History,
                        &[*j, i],
                        format!(
                            "two reads show different entries at seq {}: {} shows {}, {} shows {}",
                            e.seq,
                            ops[*j].describe(),
                            view_words(first),
                            op.describe(),
                            view_words(e)
                        ),
                    )),
                    Some(_) => {}
                    None => {
                        c.seen_entries.insert(e.seq, (e.clone(), i));
                    }
                }
            }
        }
        c.seen_ends.sort_unstable();
        c.seen_ends.dedup();
        c.seen_admin_closes
            .sort_unstable_by_key(|(a, t)| (*t, *a as u8));
        c.seen_admin_closes.dedup();
        let mut ended: Vec<(i64, u64, usize)> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, o)| Some((o.end?, o.pos?, i)))
            .collect();
        ended.sort_unstable();
        let mut best = (0u64, usize::MAX);
        c.before = ended
            .into_iter()
            .map(|(end, pos, i)| {
                if pos > best.0 {
                    best = (pos, i);
                }
                (end, best.0, best.1)
            })
            .collect();
        c.real_time_precheck(violations);
        c.cap(violations);
        c
    }

    fn violation(&self, kind: ViolationKind, ops: &[usize], message: String) -> Violation {
        let mut lines: Vec<usize> = ops
            .iter()
            .flat_map(|&i| self.ops[i].lines.iter().copied())
            .collect();
        lines.sort_unstable();
        lines.dedup();
        Violation {
            auction: self.a.id.clone(),
            kind,
            lines,
            message,
        }
    }

    fn window(&self, op: &Op) -> Window {
        Window::of(op.start, op.end, self.limits.skew_ms, self.horizon_ms)
    }

    /// The highest seq returned by an operation that finished before `t` (µs), and that op.
    fn max_before(&self, t: i64) -> Option<(u64, usize)> {
        let n = self.before.partition_point(|(end, _, _)| *end < t);
        (n > 0).then(|| (self.before[n - 1].1, self.before[n - 1].2))
    }

    /// Real time among operations whose seq is known: an operation cannot see a state
    /// older than one already returned before it was sent, nor make a change that an
    /// operation finished before it was sent had already seen.
    fn real_time_precheck(&self, violations: &mut Vec<Violation>) {
        for (i, op) in self.ops.iter().enumerate() {
            let Some(pos) = op.pos else { continue };
            let Some((seen, x)) = self.max_before(op.start) else {
                continue;
            };
            let change = op.changes() == Changes::Yes;
            if seen > pos || (change && seen == pos) {
                let what = if change {
                    format!("it was answered as the change that made seq {pos}")
                } else {
                    format!("it saw seq {pos}: a read that goes back in time")
                };
                violations.push(self.violation(
                    ViolationKind::RealTime,
                    &[x, i],
                    format!(
                        "{} had already returned seq {seen} when {} was sent, yet {what}",
                        self.ops[x].describe(),
                        op.describe()
                    ),
                ));
            }
        }
    }

    /// Keeps the first few violations of each kind and counts the rest.
    fn cap(&self, violations: &mut Vec<Violation>) {
        let mut seen: HashMap<ViolationKind, usize> = HashMap::new();
        violations.retain(|v| {
            let n = seen.entry(v.kind).or_default();
            *n += 1;
            *n <= MAX_REPORTS
        });
        let mut more: Vec<(ViolationKind, usize)> =
            seen.into_iter().filter(|(_, n)| *n > MAX_REPORTS).collect();
        more.sort_by_key(|(k, _)| k.as_str());
        for (kind, n) in more {
            violations.push(Violation {
                auction: self.a.id.clone(),
                kind,
                lines: Vec::new(),
                message: format!("{} more violations of this kind", n - MAX_REPORTS),
            });
        }
    }

    /// Walks the seqs, backtracking at choice points. `Err(None)`: out of budget.
    fn search(&self, report: &mut AuctionReport) -> Result<(), Option<Violation>> {
        let create_since = self
            .known_cause
            .get(&1)
            .map_or(i64::MIN / 4, |&i| self.window(&self.ops[i]).lo);
        let mut path = Path {
            state: self.initial.clone(),
            entries: Vec::new(),
            causes: Vec::new(),
            trail: vec![(create_since, false, self.initial.state.ends_at)],
        };
        let mut s = 1u64;
        let mut stack: Vec<Frame> = Vec::new();
        let mut visited: HashSet<u64> = HashSet::new();
        let mut deepest: Option<(u64, Violation)> = None;
        let budget = self.limits.max_steps;
        'walk: loop {
            report.search_steps += 1;
            if report.search_steps > budget {
                return Err(None);
            }
            let cause = path.causes.last().copied().filter(|_| s > 1);
            let checked = self.verify_at(s, &path, cause).and_then(|()| {
                if s == self.top {
                    self.place_reads(&path)
                } else {
                    Ok(())
                }
            });
            let failure = match checked {
                Ok(()) if s == self.top => {
                    report.unknown_took_effect = path
                        .causes
                        .iter()
                        .filter(|c| matches!(c, Cause::Op(i) if matches!(self.ops[*i].kind, Kind::Unknown(_))))
                        .count();
                    report.clock_changes =
                        path.causes.iter().filter(|c| **c == Cause::Clock).count();
                    return Ok(());
                }
                Ok(()) => match self.steps_from(s, &path) {
                    Ok(mut alts) if alts.len() == 1 => {
                        let step = alts.pop().expect("one step");
                        path.apply(&step);
                        s += 1;
                        continue 'walk;
                    }
                    Ok(alts) => {
                        stack.push(Frame { s, alts, next: 0 });
                        None
                    }
                    Err(v) => Some((s + 1, v)),
                },
                Err(v) => Some((s, v)),
            };
            if let Some((at, v)) = failure {
                if deepest.as_ref().is_none_or(|(d, _)| at > *d) {
                    deepest = Some((at, v));
                }
            }
            // Take the next untried alternative of the innermost choice point.
            loop {
                let Some(frame) = stack.last_mut() else {
                    return Err(deepest.map(|(_, v)| v));
                };
                if frame.next >= frame.alts.len() {
                    stack.pop();
                    continue;
                }
                let step = frame.alts[frame.next].clone();
                frame.next += 1;
                s = frame.s;
                path.cut(s);
                path.apply(&step);
                s += 1;
                if visited.insert(self.key(s, &path)) {
                    continue 'walk;
                }
            }
        }
    }

    /// Identifies a search state: the same seq, model state, history and set of unknown
    /// operations already used lead to the same conclusions.
    fn key(&self, s: u64, path: &Path) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        s.hash(&mut h);
        format!("{:?}", path.state.state).hash(&mut h);
        format!("{:?}", path.entries).hash(&mut h);
        let mut used: Vec<usize> = path
            .causes
            .iter()
            .filter_map(|c| match c {
                Cause::Op(i) => Some(*i),
                Cause::Clock => None,
            })
            .collect();
        used.sort_unstable();
        used.hash(&mut h);
        h.finish()
    }

    fn used(&self, path: &Path, op: usize) -> bool {
        path.causes.contains(&Cause::Op(op))
    }
}
