//! One benchmark run: the servers, the auctions, the connections, and the steps that
//! scenarios are made of.

use crate::bidder::{self, Bidder};
use crate::cli::Opts;
use crate::ctx::{outcome, Ctx};
use crate::report::{ServerStep, StepReport};
use crate::stats::Percentiles;
use crate::sys::{self, FdLimit, ProcSample};
use crate::target::{Api, Server, Spawned};
use crate::watcher::{self, Watcher};
use anyhow::{bail, Context};
use futures::StreamExt;
use gavel_protocol::CreateAuction;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Every auction starts at this price (minor units) with an increment of 1, so bid `k` on
/// an auction is `STARTING_PRICE + k`: amounts are unique per auction and identify the bid.
pub const STARTING_PRICE: i64 = 100;

/// A bid to schedule: (µs after the step starts, auction, amount, bidder).
pub type Planned = (u64, u32, i64, u32);

pub struct Bench {
    pub ctx: Arc<Ctx>,
    pub api: Api,
    pub opts: Opts,
    /// Server processes whose RSS and CPU are measured (summed).
    pub pids: Vec<u32>,
    pub archive: Option<std::path::PathBuf>,
    pub spawned: Option<Spawned>,
    pub fd: FdLimit,
    pub server_fd: Option<u64>,
    /// Watchers held by this process.
    pub watchers: Vec<Arc<Watcher>>,
    aborts: Vec<tokio::task::AbortHandle>,
    /// `--workers`: the worker processes, and the watchers they hold.
    pub pool: Option<crate::pool::Pool>,
    pub remote_watchers: usize,
    pub bidders: Vec<Bidder>,
    pub steps: Vec<StepReport>,
    pub notes: Vec<String>,
    /// Bids scheduled so far per auction.
    pub scheduled: Vec<i64>,
    pub phase: Arc<Mutex<String>>,
}

/// The server's counters at one moment.
struct ServerSample {
    proc: Option<ProcSample>,
    /// This process, to show what the load generator itself costs on a shared machine.
    tool: Option<ProcSample>,
    /// Each worker process, by pid.
    workers: HashMap<u32, ProcSample>,
    machine_busy_us: Option<u64>,
    at: Instant,
    metrics: HashMap<String, f64>,
}

impl Bench {
    /// Starts or finds the servers, creates `auctions` auctions and connects `bidders`.
    pub async fn setup(opts: Opts, auctions: usize, bidders: usize) -> anyhow::Result<Bench> {
        let fd = sys::raise_fd_limit();
        let run = format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis()
                % 0xfff_ffff
        );
        let admin = opts
            .admin_token
            .clone()
            .unwrap_or_else(|| format!("bench-admin-{run}-{}", std::process::id()));
        let (spawned, servers) = match &opts.spawn {
            Some(bin) => {
                let (sp, server) = Spawned::start(bin, &opts.spawn_args, &admin, &run).await?;
                (Some(sp), vec![server])
            }
            None => {
                if opts.servers.is_empty() {
                    bail!("give --server URL (repeatable) or --spawn path/to/gavel");
                }
                if opts.admin_token.is_none() {
                    bail!("--admin-token (or GAVEL_ADMIN_TOKEN) is needed to create auctions");
                }
                let mut v = Vec::new();
                for s in &opts.servers {
                    v.push(Server::parse(s).await?);
                }
                (None, v)
            }
        };
        let mut pids = opts.server_pids.clone();
        pids.extend(spawned.as_ref().and_then(|s| s.pid()));
        let archive = opts
            .archive_db
            .clone()
            .or_else(|| spawned.as_ref().map(|s| s.archive()));
        let api = Api::new(admin);
        let recorder = match &opts.record {
            Some(path) => Some(Arc::new(
                gavel_check::Recorder::to_file(
                    path,
                    opts.record_clock_skew_ms,
                    Some(std::env::args().collect::<Vec<_>>().join(" ")),
                )
                .with_context(|| format!("creating {}", path.display()))?,
            )),
            None => None,
        };
        let ids = create_auctions(&api, &servers[0], &run, auctions, recorder.as_deref()).await?;
        let ctx = Arc::new(Ctx::new(
            run,
            servers,
            ids,
            opts.source_base,
            opts.conns_per_source,
            recorder,
        ));
        let mut b = Bench {
            ctx,
            api,
            server_fd: pids.iter().filter_map(|&p| sys::fd_limit_of(p)).min(),
            pids,
            archive,
            spawned,
            fd,
            watchers: Vec::new(),
            aborts: Vec::new(),
            pool: None,
            remote_watchers: 0,
            bidders: Vec::new(),
            steps: Vec::new(),
            notes: Vec::new(),
            scheduled: vec![0; auctions],
            phase: Arc::new(Mutex::new("setup".into())),
            opts,
        };
        if b.opts.workers > 0 {
            *b.phase.lock() = format!("starting {} workers", b.opts.workers);
            b.pool = Some(
                crate::pool::Pool::start(b.opts.workers, &b.ctx, b.opts.connect_concurrency)
                    .await?,
            );
        }
        b.add_bidders(bidders).await?;
        Ok(b)
    }

    /// Watchers open, in this process and in the workers.
    pub fn watcher_count(&self) -> usize {
        self.watchers.len() + self.remote_watchers
    }

    /// Updates received since the last take, in this process and (as last reported) in the
    /// workers.
    fn updates_so_far(&self) -> u64 {
        self.ctx.rec.updates() + self.pool.as_ref().map_or(0, |p| p.status.total().updates)
    }

    /// This process and its workers.
    fn tool_pids(&self) -> Vec<u32> {
        let mut pids = vec![std::process::id()];
        if let Some(p) = &self.pool {
            pids.extend(p.pids());
        }
        pids
    }

    async fn add_bidders(&mut self, n: usize) -> anyhow::Result<()> {
        *self.phase.lock() = format!("signing in {n} bidders");
        let servers = self.ctx.servers.len();
        let results: Vec<anyhow::Result<Bidder>> = futures::stream::iter(0..n)
            .map(|i| bidder::start(self.ctx.clone(), &self.api, i, i % servers))
            .buffered(self.opts.connect_concurrency.clamp(1, 64))
            .collect()
            .await;
        for r in results {
            self.bidders.push(r.context("connecting a bidder")?);
        }
        Ok(())
    }

    /// How many watchers the file-descriptor limits allow (the tool's, and the server's when
    /// known), leaving room for bidders and HTTP.
    pub fn max_watchers(&self) -> usize {
        let reserve = self.bidders.len() as u64 + 200;
        let mine = match &self.pool {
            Some(p) => p.capacity() as u64,
            None => self.fd.soft.saturating_sub(reserve),
        };
        let theirs = self
            .server_fd
            .map(|l| l.saturating_sub(reserve) * self.ctx.servers.len() as u64)
            .unwrap_or(u64::MAX);
        mine.min(theirs) as usize
    }

    /// Opens watcher connections until there are `total`; each subscribes to `subs` auctions
    /// (connection `j` to auctions `j·subs … j·subs+subs−1`, modulo the auction count). Returns
    /// the server's RSS growth per connection added, once all are subscribed.
    pub async fn add_watchers(&mut self, total: usize, subs: usize) -> Option<f64> {
        let first = self.watcher_count();
        if total <= first {
            return None;
        }
        let before = sys::sample_all(&self.pids);
        // 0 subscriptions: bare connections (what a connection costs before it watches).
        let subs = subs.min(self.ctx.auctions.len());
        let expected =
            self.ctx.subscribed.load(Ordering::Relaxed) + ((total - first) * subs) as u64;
        *self.phase.lock() = format!("connecting {total} watchers");
        let failures = match self.pool.as_mut() {
            Some(pool) => {
                let failures = pool.watch(&self.ctx, first..total, subs).await;
                self.remote_watchers += total - first - failures;
                failures
            }
            None => {
                let (opened, failures) = watcher::connect_all(
                    &self.ctx,
                    first..total,
                    subs,
                    self.opts.connect_concurrency,
                )
                .await;
                for (w, abort) in opened {
                    self.watchers.push(w);
                    self.aborts.push(abort);
                }
                let expected = expected - (failures * subs) as u64;
                watcher::wait_subscribed(&self.ctx, expected, Duration::from_secs(60)).await;
                failures
            }
        };
        if failures > 0 {
            self.notes.push(format!(
                "{failures} of {} watcher connections failed to open",
                total - first
            ));
        }
        // Let the allocator and the kernel settle before reading RSS.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = sys::sample_all(&self.pids);
        let added = self.watcher_count() - first;
        match (before, after) {
            (Some(b), Some(a)) if added > 0 => {
                Some((a.rss_kib as f64 - b.rss_kib as f64) / added as f64)
            }
            _ => None,
        }
    }

    /// `rate` bids per second for `duration` seconds, round-robin over `auctions`; each
    /// auction's consecutive bids come from different bidders and raise its price by one.
    pub fn plan_rate(&mut self, rate: f64, duration: f64, auctions: &[u32]) -> Vec<Planned> {
        let n = (rate * duration).round() as usize;
        let b = self.bidders.len().max(1);
        (0..n)
            .map(|i| {
                let a = auctions[i % auctions.len()];
                let k = self.scheduled[a as usize];
                self.scheduled[a as usize] += 1;
                let at = (i as f64 * 1e6 / rate) as u64;
                let bidder = ((k as usize) + a as usize) % b;
                (at, a, STARTING_PRICE + k, bidder as u32)
            })
            .collect()
    }

    async fn server_sample(&self) -> ServerSample {
        let mut metrics: HashMap<String, f64> = HashMap::new();
        for s in &self.ctx.servers {
            if let Ok(m) = self.api.metrics(s).await {
                for (k, v) in m {
                    *metrics.entry(k).or_default() += v;
                }
            }
        }
        ServerSample {
            proc: sys::sample_all(&self.pids),
            tool: sys::sample_all(&self.tool_pids()),
            workers: self
                .pool
                .as_ref()
                .map(|p| p.pids())
                .unwrap_or_default()
                .into_iter()
                .filter_map(|pid| Some((pid, sys::sample(pid)?)))
                .collect(),
            machine_busy_us: sys::machine_busy_us(),
            at: Instant::now(),
            metrics,
        }
    }

    /// Runs one step: schedules `plan`, waits for the answers and the updates, and records
    /// a row of the report.
    pub async fn step(
        &mut self,
        name: &str,
        plan: Vec<Planned>,
        duration: f64,
        offered_rate: f64,
        idle_kib_per_conn: Option<f64>,
    ) -> StepReport {
        *self.phase.lock() = name.to_string();
        let before = self.server_sample().await;
        let _ = self.ctx.rec.take();
        if let Some(pool) = self.pool.as_mut() {
            pool.take(&self.ctx, &mut crate::stats::Tally::default())
                .await;
        }
        let start_us = self.ctx.now_us() + 300_000;
        let range = self.ctx.ledger.append(
            plan.iter()
                .map(|&(off, a, amt, b)| (start_us + off, a, amt, b)),
        );
        if let Some(pool) = self.pool.as_mut() {
            let bids = plan
                .iter()
                .map(|&(off, a, amt, _)| (start_us + off, a, amt))
                .collect();
            pool.plan(&self.ctx, bids).await;
        }
        bidder::dispatch(&self.ctx, &self.bidders, range.clone()).await;
        let end = self.ctx.epoch + Duration::from_micros(start_us + (duration * 1e6) as u64);
        tokio::time::sleep_until(end.into()).await;
        // Answers, then until the updates stop coming.
        let deadline = Instant::now() + Duration::from_secs_f64(self.opts.drain);
        while Instant::now() < deadline
            && !self
                .ctx
                .ledger
                .with_outcome(range.clone(), &[outcome::PENDING])
                .is_empty()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut last = self.updates_so_far();
        // Workers report every 250 ms: wait longer than that for a change.
        let quiet = if self.pool.is_some() { 600 } else { 250 };
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(quiet)).await;
            let now = self.updates_so_far();
            if now == last {
                break;
            }
            last = now;
        }
        let mut t = self.ctx.rec.take();
        let mut workers = match self.pool.as_mut() {
            Some(pool) => pool.take(&self.ctx, &mut t).await,
            None => Vec::new(),
        };
        let after = self.server_sample().await;
        for w in &mut workers {
            if let Some((b, a)) = before.workers.get(&w.pid).zip(after.workers.get(&w.pid)) {
                w.cpu_ms = Some((a.cpu_us - b.cpu_us) as f64 / 1000.0);
            }
        }

        let elapsed = (t.last_answer_us.saturating_sub(start_us) as f64 / 1e6).max(duration);
        let rejected: u64 = t
            .outcomes
            .iter()
            .filter(|(k, _)| *k != "accepted" && !k.starts_with("error:"))
            .map(|(_, v)| v)
            .sum();
        let accepted = t.accepted();
        let per_s = |n: u64| {
            if elapsed > 0.0 {
                n as f64 / elapsed
            } else {
                0.0
            }
        };
        let delta = |name: &str| -> Option<f64> {
            Some(after.metrics.get(name)? - before.metrics.get(name).copied().unwrap_or(0.0))
        };
        let cpu_ms = match (before.proc, after.proc) {
            (Some(b), Some(a)) => Some((a.cpu_us - b.cpu_us) as f64 / 1000.0),
            _ => None,
        };
        let batches = delta("gavel_archive_batches_total");
        let tool_cpu_ms = match (before.tool, after.tool) {
            (Some(b), Some(a)) => Some((a.cpu_us - b.cpu_us) as f64 / 1000.0),
            _ => None,
        };
        // Cores busy on average during the step, and how much of it was neither the server
        // nor this tool (other work on a shared machine).
        let wall_us = after.at.duration_since(before.at).as_micros().max(1) as f64;
        let machine_cores = match (before.machine_busy_us, after.machine_busy_us) {
            (Some(b), Some(a)) => Some((a - b) as f64 / wall_us),
            _ => None,
        };
        let other_cores = machine_cores.map(|m| {
            m - cpu_ms.unwrap_or(0.0) * 1000.0 / wall_us
                - tool_cpu_ms.unwrap_or(0.0) * 1000.0 / wall_us
        });
        let report = StepReport {
            name: name.to_string(),
            watchers: self.watcher_count(),
            connections: self.ctx.open.load(Ordering::Relaxed)
                + self.pool.as_ref().map_or(0, |p| p.status.total().open),
            auctions: self.ctx.auctions.len(),
            bidders: self.bidders.len(),
            offered_rate,
            duration_s: duration,
            bids_sent: t.sent,
            answers: t.answers(),
            accepted,
            outcomes: t.outcomes.clone(),
            decisions_per_s: per_s(accepted + rejected),
            accepted_per_s: per_s(accepted),
            rejected_per_s: per_s(rejected),
            updates: t.updates,
            updates_per_s: t.updates as f64 / elapsed.max(1e-9),
            unmatched_updates: t.unmatched,
            g2g_us: Percentiles::of(&t.g2g),
            rtt_us: Percentiles::of(&t.rtt),
            send_lag_us: Percentiles::of(&t.send_lag),
            server: ServerStep {
                rss_kib: after.proc.map(|p| p.rss_kib),
                cpu_ms,
                cpu_us_per_update: cpu_ms
                    .filter(|_| t.updates > 0)
                    .map(|ms| ms * 1000.0 / t.updates as f64),
                cpu_us_per_answer: cpu_ms
                    .filter(|_| t.answers() > 0)
                    .map(|ms| ms * 1000.0 / t.answers() as f64),
                idle_kib_per_conn,
                archive_batches: batches,
                batches_per_accepted: batches
                    .filter(|_| accepted > 0)
                    .map(|b| b / accepted as f64),
                frames_sent: delta("gavel_ws_frames_sent_total"),
            },
            tool_cpu_us_per_update: tool_cpu_ms
                .filter(|_| t.updates > 0)
                .map(|ms| ms * 1000.0 / t.updates as f64),
            machine_busy_cores: machine_cores,
            other_busy_cores: other_cores,
            load_average: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|l| l.split_whitespace().next()?.parse().ok()),
            violations: self.ctx.violations.count(),
            workers,
        };
        self.steps.push(report.clone());
        report
    }

    /// Closes every connection (on purpose: not counted as errors) and stops the workers.
    pub async fn disconnect(&mut self) {
        self.ctx.stopping.store(true, Ordering::Relaxed);
        for a in self.aborts.drain(..) {
            a.abort();
        }
        self.bidders.clear();
        if let Some(pool) = self.pool.as_mut() {
            pool.stop().await;
        }
    }
}

async fn create_auctions(
    api: &Api,
    server: &Server,
    run: &str,
    n: usize,
    recorder: Option<&gavel_check::Recorder>,
) -> anyhow::Result<Vec<String>> {
    let ids: Vec<String> = (0..n).map(|i| format!("bench-{run}-{i}")).collect();
    let results: Vec<anyhow::Result<_>> = futures::stream::iter(ids.iter().cloned())
        .map(|id| async move {
            let body = CreateAuction {
                id: Some(id.clone()),
                title: format!("Benchmark {id}"),
                description: "created by gavel-bench".into(),
                category: None,
                currency: Some("USD".into()),
                starting_price: STARTING_PRICE.into(),
                increment: Some(1.into()),
                duration_ms: Some(3 * 3600 * 1000),
                ..CreateAuction::default()
            };
            let sent = gavel_check::record::now_us();
            let view = api.create_auction(server, &body).await?;
            if let Some(rec) = recorder {
                crate::record::create(rec, 0, &body, sent, &view);
            }
            anyhow::Ok(view)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for r in results {
        r.context("creating an auction")?;
    }
    Ok(ids)
}
