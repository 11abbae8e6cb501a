//! `--workers N`: the parent's side of the worker processes ([`crate::worker`]).
//!
//! One process can hold only as many sockets as its open-files limit allows (20,000 here,
//! and root cannot raise it). With workers, the parent keeps the bidders, the ledger and the
//! checks that need the whole run; each worker holds a contiguous share of the watchers.
//! After every step the parent takes each worker's tally and merges it into the step's, and
//! at the end each worker compares its watchers with the servers. A worker's result is merged
//! only when it holds together (see [`crate::stats::TallyWire::decode`] and
//! [`Pool::check`]); a worker that exits, answers late or sends figures that do not add up
//! is a correctness violation of the run, never a silently smaller sample.

use crate::ctx::Ctx;
use crate::report::{Checks, WorkerStep};
use crate::stats::Tally;
use crate::worker::{Command, Found, Init, Progress, Reply};
use anyhow::Context;
use parking_lot::Mutex;
use std::ops::Range;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// The latest progress of every worker (for the progress line and the step's drain).
#[derive(Default)]
pub struct PoolStatus(Mutex<Vec<Progress>>);

impl PoolStatus {
    /// The workers' counters added up; g2g p99 is the largest of theirs.
    pub fn total(&self) -> Progress {
        let all = self.0.lock();
        let mut t = Progress::default();
        for p in all.iter() {
            t.open += p.open;
            t.subscribed += p.subscribed;
            t.updates += p.updates;
            t.g2g_p99_us = t.g2g_p99_us.max(p.g2g_p99_us);
            t.events += p.events;
            t.violations += p.violations;
        }
        t
    }
}

struct Worker {
    index: usize,
    pid: u32,
    fd_soft: u64,
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    replies: mpsc::UnboundedReceiver<Reply>,
    /// Watchers it opened, and their subscriptions: what its final check must cover.
    watchers: usize,
    subscriptions: u64,
    /// Its violation total when last heard.
    violations: u64,
    /// False once it failed: it is asked nothing more.
    alive: bool,
}

impl Worker {
    async fn request(&mut self, cmd: &Command, limit: Duration) -> anyhow::Result<Reply> {
        let mut line = serde_json::to_string(cmd).expect("commands serialize");
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .context("writing to it")?;
        self.stdin.flush().await.context("writing to it")?;
        match tokio::time::timeout(limit, self.replies.recv()).await {
            Ok(Some(Reply::Error { message })) => anyhow::bail!("{message}"),
            Ok(Some(r)) => Ok(r),
            Ok(None) => {
                let status = self.child.try_wait().ok().flatten();
                anyhow::bail!(
                    "exited ({})",
                    status.map_or("status unknown".into(), |s| s.to_string())
                )
            }
            Err(_) => anyhow::bail!("no answer within {} s", limit.as_secs()),
        }
    }
}

pub struct Pool {
    workers: Vec<Worker>,
    pub status: Arc<PoolStatus>,
}

/// Reads a worker's standard output: progress into `status`, everything else to `tx`.
async fn read_replies(
    index: usize,
    stdout: tokio::process::ChildStdout,
    status: Arc<PoolStatus>,
    tx: mpsc::UnboundedSender<Reply>,
) {
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        match serde_json::from_str::<Reply>(&line) {
            Ok(Reply::Progress(p)) => status.0.lock()[index] = p,
            Ok(r) => {
                if tx.send(r).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Reply::Error {
                    message: format!("unreadable line ({e}): {line:.200}"),
                });
            }
        }
    }
}

impl Pool {
    /// Starts `n` workers (this binary, `__worker`) and tells them about the run.
    pub async fn start(n: usize, ctx: &Ctx, connect_concurrency: usize) -> anyhow::Result<Pool> {
        // GAVEL_BENCH_WORKER_EXE runs another program (e.g. a wrapper that pins workers to
        // cores, or the test that breaks a worker's results on purpose) with `__worker`.
        let exe = match std::env::var_os("GAVEL_BENCH_WORKER_EXE") {
            Some(p) => std::path::PathBuf::from(p),
            None => std::env::current_exe().context("finding this program to start workers")?,
        };
        let status = Arc::new(PoolStatus(Mutex::new(vec![Progress::default(); n])));
        let epoch_monotonic_us =
            crate::sys::monotonic_us().saturating_sub(ctx.epoch.elapsed().as_micros() as u64);
        let mut workers = Vec::with_capacity(n);
        for index in 0..n {
            let mut child = tokio::process::Command::new(&exe)
                .arg("__worker")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting worker {index} ({})", exe.display()))?;
            let stdin = child.stdin.take().expect("piped stdin");
            let stdout = child.stdout.take().expect("piped stdout");
            let (tx, mut rx) = mpsc::unbounded_channel();
            tokio::spawn(read_replies(index, stdout, status.clone(), tx));
            let hello = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
            let Ok(Some(Reply::Hello { pid, fd_soft, .. })) = hello else {
                anyhow::bail!("worker {index} did not start: {hello:?}");
            };
            workers.push(Worker {
                index,
                pid,
                fd_soft,
                child,
                stdin,
                replies: rx,
                watchers: 0,
                subscriptions: 0,
                violations: 0,
                alive: true,
            });
        }
        let mut pool = Pool { workers, status };
        let init = |worker| {
            Command::Init(Init {
                worker,
                run: ctx.run.clone(),
                epoch_monotonic_us,
                servers: ctx.servers.iter().map(|s| s.base.clone()).collect(),
                auctions: ctx.auctions.clone(),
                source_base: ctx.source_base,
                conns_per_source: ctx.conns_per_source,
                connect_concurrency,
            })
        };
        for w in &mut pool.workers {
            w.request(&init(w.index), Duration::from_secs(30))
                .await
                .with_context(|| format!("initialising worker {}", w.index))?;
        }
        Ok(pool)
    }

    pub fn len(&self) -> usize {
        self.workers.len()
    }

    pub fn pids(&self) -> Vec<u32> {
        self.workers.iter().map(|w| w.pid).collect()
    }

    /// Watchers the workers can hold together, leaving each some files for itself.
    pub fn capacity(&self) -> usize {
        self.workers
            .iter()
            .map(|w| w.fd_soft.saturating_sub(100) as usize)
            .sum()
    }

    /// A worker failed: its violation, and it is asked nothing more.
    fn fail(ctx: &Ctx, w: &mut Worker, what: &str, e: impl std::fmt::Display) {
        w.alive = false;
        ctx.violations
            .report(|| format!("worker {} (pid {}) {what}: {e:#}", w.index, w.pid));
    }

    fn absorb(ctx: &Ctx, w: &mut Worker, found: &Found) {
        ctx.violations
            .absorb(found.total.saturating_sub(w.violations), &found.new_samples);
        w.violations = w.violations.max(found.total);
    }

    /// Opens watchers `ids`, split into one contiguous share per worker. Returns how many
    /// failed to open (a dead worker's whole share among them).
    pub async fn watch(&mut self, ctx: &Ctx, ids: Range<usize>, subs: usize) -> usize {
        let n = self.workers.len();
        let total = ids.len();
        let subs = subs.min(ctx.auctions.len());
        let shares: Vec<Range<usize>> = (0..n)
            .map(|i| ids.start + total * i / n..ids.start + total * (i + 1) / n)
            .collect();
        let answers = futures::future::join_all(self.workers.iter_mut().zip(&shares).map(
            |(w, share)| async move {
                if !w.alive || share.is_empty() {
                    return (w, None);
                }
                let cmd = Command::Watch {
                    first: share.start,
                    end: share.end,
                    subs,
                };
                let r = w.request(&cmd, Duration::from_secs(300)).await;
                (w, Some(r))
            },
        ))
        .await;
        let mut failed = 0;
        for ((w, answer), share) in answers.into_iter().zip(&shares) {
            match answer {
                None if share.is_empty() => {}
                None => failed += share.len(),
                Some(Ok(Reply::Watching {
                    opened, failed: f, ..
                })) if opened + f == share.len() => {
                    w.watchers += opened;
                    w.subscriptions += (opened * subs) as u64;
                    failed += f;
                }
                Some(Ok(other)) => {
                    Self::fail(ctx, w, "answered Watch with", format!("{other:?}"));
                    failed += share.len();
                }
                Some(Err(e)) => {
                    Self::fail(ctx, w, "failed to open its watchers", e);
                    failed += share.len();
                }
            }
        }
        failed
    }

    /// Hands the step's bids to every worker (to time the updates they cause).
    pub async fn plan(&mut self, ctx: &Ctx, bids: Vec<(u64, u32, i64)>) {
        let cmd = Command::Plan { bids };
        let cmd = &cmd;
        let answers = futures::future::join_all(self.workers.iter_mut().filter(|w| w.alive).map(
            |w| async move {
                let r = w.request(cmd, Duration::from_secs(30)).await;
                (w, r)
            },
        ))
        .await;
        for (w, r) in answers {
            match r {
                Ok(Reply::Done) => {}
                Ok(other) => Self::fail(ctx, w, "answered Plan with", format!("{other:?}")),
                Err(e) => Self::fail(ctx, w, "did not take the plan", e),
            }
        }
    }

    /// Every worker's tally since the last take, merged into `into` when it holds together.
    /// Returns each worker's share, for the report.
    pub async fn take(&mut self, ctx: &Ctx, into: &mut Tally) -> Vec<WorkerStep> {
        let answers = futures::future::join_all(self.workers.iter_mut().filter(|w| w.alive).map(
            |w| async move {
                let r = w.request(&Command::Take, Duration::from_secs(30)).await;
                (w, r)
            },
        ))
        .await;
        let mut shares = Vec::new();
        for (w, r) in answers {
            match r {
                Ok(Reply::Taken { tally, violations }) => {
                    Self::absorb(ctx, w, &violations);
                    match tally.decode() {
                        Ok(t) => {
                            into.absorb(&t);
                            shares.push(WorkerStep {
                                worker: w.index,
                                pid: w.pid,
                                watchers: w.watchers,
                                updates: t.updates,
                                g2g_samples: t.g2g.len(),
                                unmatched_updates: t.unmatched,
                                violations: w.violations,
                                cpu_ms: None,
                                rss_kib: crate::sys::sample(w.pid).map(|s| s.rss_kib),
                            });
                        }
                        Err(e) => Self::fail(ctx, w, "sent a tally that does not add up", e),
                    }
                }
                Ok(other) => Self::fail(ctx, w, "answered Take with", format!("{other:?}")),
                Err(e) => Self::fail(ctx, w, "did not send its tally", e),
            }
        }
        shares
    }

    /// Each worker compares its watchers with the servers; the counts are added to
    /// `checks`. A worker must compare exactly the subscriptions it opened.
    pub async fn check(&mut self, ctx: &Ctx, checks: &mut Checks) {
        let answers = futures::future::join_all(self.workers.iter_mut().filter(|w| w.alive).map(
            |w| async move {
                let r = w.request(&Command::Check, Duration::from_secs(120)).await;
                (w, r)
            },
        ))
        .await;
        for (w, r) in answers {
            match r {
                Ok(Reply::Checked {
                    watchers,
                    subscriptions,
                    states_checked,
                    state_mismatches,
                    events,
                    violations,
                }) => {
                    Self::absorb(ctx, w, &violations);
                    for (k, v) in events {
                        ctx.events.add_n(&k, v);
                    }
                    checks.watcher_states_checked += states_checked;
                    checks.watcher_state_mismatches += state_mismatches;
                    if let Err(e) = merge_check(
                        (w.watchers, w.subscriptions),
                        (watchers, subscriptions, states_checked),
                    ) {
                        Self::fail(ctx, w, "check", e);
                    }
                }
                Ok(other) => Self::fail(ctx, w, "answered Check with", format!("{other:?}")),
                Err(e) => Self::fail(ctx, w, "did not check its watchers", e),
            }
        }
        // Workers that failed earlier checked nothing: their watchers are unaccounted for.
        for w in self.workers.iter().filter(|w| !w.alive) {
            checks.watcher_state_mismatches += w.subscriptions;
        }
    }

    /// Stops every worker (at most 10 s each, then killed).
    pub async fn stop(&mut self) {
        for w in &mut self.workers {
            let mut line = serde_json::to_string(&Command::Stop).expect("commands serialize");
            line.push('\n');
            let _ = w.stdin.write_all(line.as_bytes()).await;
            let _ = w.stdin.flush().await;
        }
        for w in &mut self.workers {
            if tokio::time::timeout(Duration::from_secs(10), w.child.wait())
                .await
                .is_err()
            {
                let _ = w.child.kill().await;
            }
        }
    }
}

/// A worker's final check covers what it was given: the watchers and subscriptions the
/// parent counted when they opened, and one compared state per subscription.
pub fn merge_check(opened: (usize, u64), answer: (usize, u64, u64)) -> Result<(), String> {
    let (watchers, subscriptions) = opened;
    let (held, subs, checked) = answer;
    if held != watchers || subs != subscriptions {
        return Err(format!(
            "holds {held} watchers with {subs} subscriptions, but opened {watchers} with {subscriptions}"
        ));
    }
    if checked != subscriptions {
        return Err(format!(
            "compared {checked} watcher states for {subscriptions} subscriptions"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_compared_what_it_opened_passes() {
        assert_eq!(merge_check((10, 40), (10, 40, 40)), Ok(()));
    }

    #[test]
    fn a_worker_that_compared_fewer_states_than_it_holds_fails() {
        assert!(merge_check((10, 40), (10, 40, 39))
            .unwrap_err()
            .contains("compared 39"));
    }

    #[test]
    fn a_worker_holding_other_watchers_than_it_opened_fails() {
        assert!(merge_check((10, 40), (9, 36, 36))
            .unwrap_err()
            .contains("holds 9"));
    }
}
