//! The ways from one seq to the next: the change an answer claims, an `outbid` a proxy
//! answered, the clock opening or closing the auction, an operation whose outcome is
//! unknown.

use super::{Cause, Checker, Path, Step};
use crate::model::{
    compare_entry, compare_view, decision_times, describe, entry_words, outcome_code,
    outcome_words, view_words, Window,
};
use crate::normalize::{Changes, Effect, Kind};
use crate::report::{Violation, ViolationKind};
use gavel_core::{rules, Auction, BidEntry, Change, Event};

impl Checker<'_> {
    /// The ways to go from seq `s` to `s + 1`.
    pub(super) fn steps_from(&self, s: u64, path: &Path) -> Result<Vec<Step>, Violation> {
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

    /// Openings and closings by the clock that could make seq `t`, and (when the history
    /// allows them) admin actions it does not record, at the closings answers show.
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
        if self.limits.unrecorded_admin {
            for &(action, at) in &self.seen_admin_closes {
                consider(at, admin(state, action, at).ok());
            }
        }
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
