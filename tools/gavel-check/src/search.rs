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

use crate::model::{
    compare_entry, compare_view, decision_times, describe, entry_words, outcome_code,
    outcome_words, view_words, Window,
};
use crate::normalize::{AuctionOps, Changes, Effect, Kind, Op};
use crate::report::{AuctionReport, Verdict, Violation, ViolationKind};
use gavel_core::{rules, Auction, BidEntry, Change, Event};
use gavel_protocol::BidView;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// How many entries a `snapshot` carries (the protocol's "at most 20").
pub const SNAPSHOT_RECENT_BIDS: usize = 20;
/// Violations of one kind reported per auction before the rest are only counted.
const MAX_REPORTS: usize = 5;

/// Limits of one check.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub skew_ms: i64,
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

    /// Every answer reported at seq `s` (other than the change's own, checked when it was
    /// chosen) must be what the model shows at `s`.
    fn verify_at(&self, s: u64, path: &Path, cause: Option<Cause>) -> Result<(), Violation> {
        let state = &path.state;
        for &i in self.at_pos.get(&s).map(Vec::as_slice).unwrap_or(&[]) {
            if cause == Some(Cause::Op(i)) {
                continue;
            }
            let op = &self.ops[i];
            let w = self.window(op);
            let mismatch = |diff: String, what: &str| {
                self.violation(
                    ViolationKind::Rules,
                    &[i],
                    format!(
                        "{}: {what} at seq {s} ({}): {diff}",
                        op.describe(),
                        describe(state)
                    ),
                )
            };
            match &op.kind {
                Kind::Create(v) | Kind::View(v) => compare_view(state, v, None, w)
                    .map_err(|d| mismatch(d, "the model shows another state"))?,
                Kind::Snapshot(body) => {
                    let since = path.trail[(s - 1) as usize].0;
                    let sw = Window {
                        lo: since.min(w.hi) - self.limits.skew_ms,
                        hi: w.hi,
                    };
                    compare_view(state, &body.auction, None, sw).map_err(|d| {
                        mismatch(d, "the snapshot's auction differs from the model")
                    })?;
                    if !w.contains(body.server_time) {
                        return Err(self.violation(
                            ViolationKind::Time,
                            &[i],
                            format!(
                                "{}: server_time {} lies outside the window {w} the request was in flight",
                                op.describe(),
                                body.server_time
                            ),
                        ));
                    }
                    let model: Vec<&BidEntry> = path
                        .entries
                        .iter()
                        .rev()
                        .take(SNAPSHOT_RECENT_BIDS)
                        .collect();
                    self.compare_page(&model, &body.recent_bids)
                        .map_err(|d| self.history_violation(i, d))?;
                }
                Kind::Decision(d) => {
                    if op.changes() == Changes::Yes {
                        return Err(self.violation(
                            ViolationKind::SeqClaimedTwice,
                            &[i],
                            format!(
                                "{} claims the change to seq {s}, but that change was {}",
                                op.describe(),
                                self.cause_words(cause)
                            ),
                        ));
                    }
                    // A rejection that changed nothing: decided on this very state.
                    let times = decision_times(state, w, &[]);
                    let decided: Vec<_> = times
                        .iter()
                        .map(|&t| rules::place_bid(state, &d.req, t))
                        .collect();
                    let fits = decided
                        .iter()
                        .any(|dec| dec.change.is_none() && outcome_code(&dec.outcome) == d.outcome);
                    if !fits {
                        let model = decided
                            .first()
                            .map(|dec| {
                                let change = if dec.change.is_some() {
                                    " with a change to the next seq"
                                } else {
                                    ""
                                };
                                format!("{}{change}", outcome_words(&dec.outcome))
                            })
                            .unwrap_or_else(|| "nothing (an empty window)".into());
                        return Err(mismatch(
                            format!("the rules answer {model} in the window {w}"),
                            "a rejection that changed nothing, decided",
                        ));
                    }
                    for a in &d.answers {
                        let aw = Window::of(
                            a.sent,
                            Some(a.received),
                            self.limits.skew_ms,
                            self.horizon_ms,
                        );
                        compare_view(state, &a.view, Some(d.req.bidder.id.as_str()), aw).map_err(
                            |diff| mismatch(diff, "its answer's view differs from the model"),
                        )?;
                    }
                }
                Kind::AdminDone(..) => {
                    return Err(self.violation(
                        ViolationKind::SeqClaimedTwice,
                        &[i],
                        format!(
                            "{} claims the change to seq {s}, but that change was {}",
                            op.describe(),
                            self.cause_words(cause)
                        ),
                    ))
                }
                Kind::Page { .. } | Kind::AdminClosed(_) | Kind::Unknown(_) => {}
            }
        }
        Ok(())
    }

    fn cause_words(&self, cause: Option<Cause>) -> String {
        match cause {
            Some(Cause::Op(i)) => self.ops[i].describe(),
            Some(Cause::Clock) => "the clock".into(),
            None => "the creation".into(),
        }
    }

    /// The ways to go from seq `s` to `s + 1`.
    fn steps_from(&self, s: u64, path: &Path) -> Result<Vec<Step>, Violation> {
        let t = s + 1;
        let state = &path.state;
        if let Some(&k) = self.known_cause.get(&t) {
            return self.known_step(k, state, t).map(|st| vec![st]);
        }
        let mut alts = Vec::new();
        let mut tried = Vec::new();
        for &i in self.at_pos.get(&t).map(Vec::as_slice).unwrap_or(&[]) {
            if self.ops[i].changes() == Changes::Maybe {
                match self.known_step(i, state, t) {
                    Ok(st) => alts.push(st),
                    Err(v) => tried.push(v.message),
                }
            }
        }
        alts.extend(self.clock_steps(state, t));
        for &u in &self.unknowns {
            if !self.used(path, u) {
                alts.extend(self.unknown_steps(u, state, t));
            }
        }
        if !alts.is_empty() {
            return Ok(alts);
        }
        let observers: Vec<usize> = self.at_pos.get(&t).cloned().unwrap_or_default();
        let shown = match (observers.first(), self.seen_entries.get(&t)) {
            (Some(&o), _) => format!("{} reports seq {t}", self.ops[o].describe()),
            (None, Some((e, o))) => format!(
                "{} shows a history entry at seq {t} ({})",
                self.ops[*o].describe(),
                view_words(e)
            ),
            (None, None) => format!("the history reaches seq {}", self.top),
        };
        let tried = if tried.is_empty() {
            String::new()
        } else {
            format!(" Candidates that do not fit: {}", tried.join(" | "))
        };
        Err(self.violation(
            ViolationKind::Unexplained,
            &observers,
            format!(
                "{shown}, but no operation in the history, no unknown outcome and no clock event can change the auction from {} to seq {t}.{tried}",
                describe(state)
            ),
        ))
    }

    /// Exact decision time of the change to `t`, when a read showed its history entry.
    fn exact_time(&self, t: u64) -> Option<i64> {
        self.seen_entries.get(&t).map(|(e, _)| e.at)
    }

    /// A change whose own answer says it made seq `t`: replay it and compare.
    fn known_step(&self, i: usize, state: &Auction, t: u64) -> Result<Step, Violation> {
        let op = &self.ops[i];
        let w = self.window(op);
        if let Some((seen, x)) = self.max_before(op.start) {
            if seen >= t {
                return Err(self.violation(
                    ViolationKind::RealTime,
                    &[x, i],
                    format!(
                        "{} had already returned seq {seen} when {} was sent, yet it made seq {t}",
                        self.ops[x].describe(),
                        op.describe()
                    ),
                ));
            }
        }
        let exact = self.exact_time(t);
        if let Some(at) = exact {
            if !w.contains(at) {
                return Err(self.violation(
                    ViolationKind::Time,
                    &[i],
                    format!(
                        "a read shows the change to seq {t} made at {at}, outside the window {w} in which {} was in flight",
                        op.describe()
                    ),
                ));
            }
        }
        // What the rules say at `now`: (outcome code, in words, the change).
        let decide = |now: i64| -> (String, String, Option<Change>) {
            match &op.kind {
                Kind::Decision(d) => {
                    let dec = rules::place_bid(state, &d.req, now);
                    (
                        outcome_code(&dec.outcome).to_string(),
                        outcome_words(&dec.outcome),
                        dec.change,
                    )
                }
                Kind::AdminDone(action, _) => match admin(state, *action, now) {
                    Ok(c) => ("done".into(), "done".into(), Some(c)),
                    Err(r) => (r.code().into(), r.code().into(), None),
                },
                _ => unreachable!("only decisions and admin actions are changes with a seq"),
            }
        };
        let (view0, expected) = match &op.kind {
            Kind::Decision(d) => (&d.answers[0].view, d.outcome.as_str()),
            Kind::AdminDone(_, v) => (v, "done"),
            _ => unreachable!("only decisions and admin actions are changes with a seq"),
        };
        let mut extra = vec![view0.ends_at];
        if let Some(sc) = state.spec.soft_close {
            extra.push(view0.ends_at - sc.extend_ms);
        }
        if let Some(c) = &view0.closing {
            extra.push(c.closed_at);
        }
        let times = match exact {
            Some(at) => vec![at],
            None => decision_times(state, w, &extra),
        };
        let mut why: Option<String> = None;
        let mut rules_say: Vec<String> = Vec::new();
        for now in times.iter().copied() {
            let (code, words, change) = decide(now);
            if code != expected {
                if !rules_say.contains(&words) {
                    rules_say.push(words);
                }
                continue;
            }
            let Some(change) = change else {
                why.get_or_insert_with(|| "the rules give this answer but change nothing".into());
                continue;
            };
            let entry = match &change.event {
                Event::Bid { entry, .. } => Some(entry.clone()),
                _ => None,
            };
            if let Err(d) = self.entry_fits(t, entry.as_ref()) {
                why.get_or_insert(d);
                continue;
            }
            let answers_fit = match &op.kind {
                Kind::Decision(d) => d.answers.iter().try_for_each(|a| {
                    let aw = Window::of(
                        a.sent,
                        Some(a.received),
                        self.limits.skew_ms,
                        self.horizon_ms,
                    );
                    compare_view(&change.auction, &a.view, Some(d.req.bidder.id.as_str()), aw)
                }),
                _ => compare_view(&change.auction, view0, None, w),
            };
            if let Err(d) = answers_fit {
                why.get_or_insert(format!("the rules agree on the outcome, but {d}"));
                continue;
            }
            return Ok(Step {
                cause: Cause::Op(i),
                next: change.auction,
                entry,
                since: w.lo,
            });
        }
        let message = match why {
            Some(why) => format!(
                "{}: from {} at a time in {w}: {why}",
                op.describe(),
                describe(state)
            ),
            None => format!(
                "{}: from {} the rules answer {} (at every time in {w}{})",
                op.describe(),
                describe(state),
                rules_say.join(" or "),
                exact.map(|_| ", the time a read shows").unwrap_or_default()
            ),
        };
        Err(self.violation(ViolationKind::Rules, &[i], message))
    }

    /// Whether the model's entry for a change to `t` is the one reads showed (if any).
    fn entry_fits(&self, t: u64, entry: Option<&BidEntry>) -> Result<(), String> {
        match (self.seen_entries.get(&t), entry) {
            (None, _) => Ok(()),
            (Some((shown, o)), None) => Err(format!(
                "{} shows a history entry at seq {t} ({}), but this change adds none",
                self.ops[*o].describe(),
                view_words(shown)
            )),
            (Some((shown, o)), Some(e)) => compare_entry(e, shown).map_err(|d| {
                format!(
                    "{} shows {}, the model makes {} ({d})",
                    self.ops[*o].describe(),
                    view_words(shown),
                    entry_words(e)
                )
            }),
        }
    }

    /// Openings and closings by the clock that could make seq `t`.
    fn clock_steps(&self, state: &Auction, t: u64) -> Vec<Step> {
        if self.seen_entries.contains_key(&t) || state.state.closing.is_some() {
            return Vec::new();
        }
        let mut steps = Vec::new();
        let mut consider = |at: i64, change: Option<Change>| {
            let Some(change) = change else { return };
            let seen_before = self
                .max_before((at - self.limits.skew_ms) * 1000)
                .is_some_and(|(seen, _)| seen >= t);
            if !seen_before {
                steps.push(Step {
                    cause: Cause::Clock,
                    next: change.auction,
                    entry: None,
                    since: at,
                });
            }
        };
        let starts = state.spec.starts_at;
        consider(starts, rules::open_if_due(state, starts));
        let ends = state.state.ends_at;
        consider(ends, rules::close_if_due(state, ends));
        steps
    }

    /// The ways an operation with an unknown outcome could have made seq `t`.
    fn unknown_steps(&self, i: usize, state: &Auction, t: u64) -> Vec<Step> {
        let op = &self.ops[i];
        if self.max_before(op.start).is_some_and(|(seen, _)| seen >= t) {
            return Vec::new();
        }
        let w = self.window(op);
        let times = match self.exact_time(t) {
            Some(at) if w.contains(at) => vec![at],
            Some(_) => return Vec::new(),
            None => {
                let mut extra: Vec<i64> = self.seen_ends.clone();
                if let Some(sc) = state.spec.soft_close {
                    extra.extend(self.seen_ends.iter().map(|e| e - sc.extend_ms));
                }
                decision_times(state, w, &extra)
            }
        };
        let mut steps: Vec<Step> = Vec::new();
        for now in times {
            let change = match &op.kind {
                Kind::Unknown(Effect::Bid {
                    req, may_accept, ..
                }) => {
                    let dec = rules::place_bid(state, req, now);
                    if dec.outcome.is_ok() && !may_accept {
                        continue;
                    }
                    dec.change
                }
                Kind::Unknown(Effect::Admin(action)) => admin(state, *action, now).ok(),
                _ => None,
            };
            let Some(change) = change else { continue };
            let entry = match &change.event {
                Event::Bid { entry, .. } => Some(entry.clone()),
                _ => None,
            };
            if self.entry_fits(t, entry.as_ref()).is_err() {
                continue;
            }
            if steps
                .iter()
                .any(|s| s.next == change.auction && s.entry == entry)
            {
                continue;
            }
            steps.push(Step {
                cause: Cause::Op(i),
                next: change.auction,
                entry,
                since: now,
            });
        }
        steps
    }

    /// Places the operations that report no seq (history pages, admin actions answered
    /// `closed`), each at the earliest seq its time window allows that explains it.
    fn place_reads(&self, path: &Path) -> Result<(), Violation> {
        let mut order = self.positionless.clone();
        order.sort_by_key(|&i| (self.ops[i].start, i));
        let mut placed: Vec<(i64, u64)> = Vec::new();
        for i in order {
            let op = &self.ops[i];
            let end = op.end.unwrap_or(i64::MAX);
            let mut lo = self.max_before(op.start).map_or(1, |(p, _)| p);
            lo = placed
                .iter()
                .filter(|(e, _)| *e < op.start)
                .map(|(_, p)| *p)
                .fold(lo, u64::max);
            let hi = self.latest_position(path, end);
            let fits = |p: u64| -> Result<(), PageDiff> {
                match &op.kind {
                    Kind::Page {
                        limit,
                        before_seq,
                        page,
                    } => {
                        let upto = before_seq.map_or(p, |b| p.min(b.saturating_sub(1)));
                        let n = path.entries.partition_point(|e| e.seq <= upto);
                        let model: Vec<&BidEntry> = path.entries[..n]
                            .iter()
                            .rev()
                            .take(*limit as usize)
                            .collect();
                        self.compare_page(&model, &page.bids)?;
                        let next = if n > *limit as usize {
                            model.last().map(|e| e.seq)
                        } else {
                            None
                        };
                        if next != page.next_before_seq {
                            return Err(format!(
                                "next_before_seq should be {next:?} but is {:?}",
                                page.next_before_seq
                            )
                            .into());
                        }
                        Ok(())
                    }
                    Kind::AdminClosed(_) => {
                        let (_, closed, ends_at) = path.trail[(p - 1) as usize];
                        if closed || self.window(op).hi >= ends_at {
                            Ok(())
                        } else {
                            Err(format!(
                                "the auction is open at seq {p} until {ends_at}, after the answer"
                            )
                            .into())
                        }
                    }
                    _ => Ok(()),
                }
            };
            let hi = hi.min(self.top);
            let mut first_diff: Option<(u64, PageDiff)> = None;
            let found = (lo..=hi).find(|&p| match fits(p) {
                Ok(()) => true,
                Err(d) => {
                    if first_diff.is_none() {
                        first_diff = Some((p, d));
                    }
                    false
                }
            });
            match (found, first_diff) {
                (Some(p), _) => placed.push((end, p)),
                (None, Some((p, d))) => {
                    return Err(self.history_violation(
                        i,
                        PageDiff {
                            text: format!(
                                "it fits no state from seq {lo} to seq {hi} (the seqs its time window allows); at seq {p}: {}",
                                d.text
                            ),
                            missing: d.missing,
                        },
                    ))
                }
                (None, None) => {
                    return Err(self.violation(
                        ViolationKind::RealTime,
                        &[i],
                        format!(
                            "{}: no seq fits its time window: operations finished before it was sent had seen seq {lo}, but changes sent after it finished make the latest it can see seq {hi}",
                            op.describe()
                        ),
                    ))
                }
            }
        }
        Ok(())
    }

    /// The latest seq an operation finished at `end` (µs) may have seen: before any change
    /// sent after it finished, and no later than any read sent after it finished.
    fn latest_position(&self, path: &Path, end: i64) -> u64 {
        let mut hi = self.top;
        for (j, o) in self.ops.iter().enumerate() {
            if o.start <= end {
                continue;
            }
            if let Some(p) = o.pos {
                let made = match o.changes() {
                    Changes::Yes => true,
                    Changes::Maybe => {
                        path.causes.get((p as usize).wrapping_sub(2)) == Some(&Cause::Op(j))
                    }
                    Changes::No => false,
                };
                hi = hi.min(if made { p - 1 } else { p });
            } else if let Some(k) = path.causes.iter().position(|c| *c == Cause::Op(j)) {
                hi = hi.min(k as u64 + 1);
            }
        }
        for (k, c) in path.causes.iter().enumerate() {
            let since = path.trail[k + 1].0;
            if *c == Cause::Clock && (since - self.limits.skew_ms) * 1000 > end {
                hi = hi.min(k as u64 + 1);
            }
        }
        hi
    }

    fn compare_page(&self, model: &[&BidEntry], shown: &[BidView]) -> Result<(), PageDiff> {
        let lacks = |m: &BidEntry| PageDiff {
            text: format!("it lacks {}{}", entry_words(m), self.entry_origin(m.seq)),
            missing: Some(m.seq),
        };
        for (k, m) in model.iter().enumerate() {
            match shown.get(k) {
                None => return Err(lacks(m)),
                Some(s) if s.seq < m.seq => return Err(lacks(m)),
                Some(s) if s.seq > m.seq => {
                    return Err(format!(
                        "it shows {}, which the model does not have",
                        view_words(s)
                    )
                    .into())
                }
                Some(s) => compare_entry(m, s)?,
            }
        }
        if let Some(extra) = shown.get(model.len()) {
            return Err(format!(
                "it shows {}, beyond the model's {} entries",
                view_words(extra),
                model.len()
            )
            .into());
        }
        Ok(())
    }

    /// Which operation's change made the entry at `seq` (for messages).
    fn entry_origin(&self, seq: u64) -> String {
        self.known_cause
            .get(&seq)
            .map(|&i| format!(" (made by {})", self.ops[i].describe()))
            .unwrap_or_default()
    }

    /// A read no state explains; names the change whose entry it lacks, if that is why.
    fn history_violation(&self, i: usize, diff: PageDiff) -> Violation {
        let mut ops = vec![i];
        ops.extend(
            diff.missing
                .and_then(|seq| self.known_cause.get(&seq).copied()),
        );
        self.violation(
            ViolationKind::History,
            &ops,
            format!("{}: {}", self.ops[i].describe(), diff.text),
        )
    }
}

/// Why a page of history differs from the model's.
struct PageDiff {
    text: String,
    /// The seq of an entry the model has and the page lacks.
    missing: Option<u64>,
}

impl From<String> for PageDiff {
    fn from(text: String) -> Self {
        PageDiff {
            text,
            missing: None,
        }
    }
}

fn admin(
    state: &Auction,
    action: crate::history::AdminAction,
    now: i64,
) -> Result<Change, gavel_core::Rejection> {
    match action {
        crate::history::AdminAction::Cancel => rules::cancel(state, now, "admin"),
        crate::history::AdminAction::EndEarly => rules::end_early(state, now, "admin"),
    }
}
