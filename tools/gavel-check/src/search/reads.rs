//! What reads and rejections saw: every answer at a seq against the model's state there,
//! and the reads that carry no seq (history pages, admin actions answered `closed`), placed
//! once the changes are.

use super::{Cause, Checker, Path, SNAPSHOT_RECENT_BIDS};
use crate::model::{
    compare_entry, compare_view, decision_times, describe, entry_words, outcome_code,
    outcome_words, view_words, Window,
};
use crate::normalize::{Changes, Kind};
use crate::report::{Violation, ViolationKind};
use gavel_core::{rules, BidEntry};
use gavel_protocol::BidView;

impl Checker<'_> {
    /// Every answer reported at seq `s` (other than the change's own, checked when it was
    /// chosen) must be what the model shows at `s`.
    pub(super) fn verify_at(
        &self,
        s: u64,
        path: &Path,
        cause: Option<Cause>,
    ) -> Result<(), Violation> {
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

    /// Places the operations that report no seq (history pages, admin actions answered
    /// `closed`), each at the earliest seq its time window allows that explains it.
    pub(super) fn place_reads(&self, path: &Path) -> Result<(), Violation> {
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
