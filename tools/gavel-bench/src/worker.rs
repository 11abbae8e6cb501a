//! A worker process (`gavel-bench --workers N` starts N of them, each this same binary run
//! as `gavel-bench __worker`): it holds a share of the watcher connections under its own
//! open-files limit, and reports to its parent over its standard output.
//!
//! The parent ([`crate::pool`]) sends one JSON [`Command`] per line on the worker's
//! standard input; the worker answers each with one JSON [`Reply`] line, and in between
//! sends a [`Reply::Progress`] line four times a second. Histograms travel in HDR's V2
//! format ([`crate::stats::TallyWire`]). Both processes read the same monotonic clock, so a
//! bid's due time, fixed by the parent, times the watchers' updates in every worker.

use crate::ctx::Ctx;
use crate::report::Checks;
use crate::stats::TallyWire;
use crate::target::{Api, Server};
use crate::watcher::{self, Watcher};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

/// What the worker needs to know about the run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Init {
    pub worker: usize,
    pub run: String,
    /// The parent's epoch, as [`crate::sys::monotonic_us`].
    pub epoch_monotonic_us: u64,
    pub servers: Vec<String>,
    pub auctions: Vec<String>,
    pub source_base: Ipv4Addr,
    pub conns_per_source: usize,
    pub connect_concurrency: usize,
}

/// Parent → worker, one per line.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    Init(Init),
    /// Connect watchers `first..end` (global numbers), `subs` subscriptions each, and wait
    /// (at most 60 s) for their snapshots.
    Watch {
        first: usize,
        end: usize,
        subs: usize,
    },
    /// Bids of the next step: (due µs since the epoch, auction index, amount).
    Plan {
        bids: Vec<(u64, u32, i64)>,
    },
    /// The tally since the last take, and the violations found since the last reply.
    Take,
    /// Compare every watcher's final state with its server's (waiting up to 30 s for it to
    /// catch up).
    Check,
    /// Close everything and exit.
    Stop,
}

/// Worker → parent, one per line.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum Reply {
    /// First line, before any command.
    Hello {
        pid: u32,
        fd_soft: u64,
        fd_hard: u64,
    },
    /// Not an answer: counters for the progress line.
    Progress(Progress),
    /// `Init` or `Plan` done.
    Done,
    Watching {
        opened: usize,
        failed: usize,
        /// Subscriptions that received their first snapshot (all of this worker's).
        subscribed: u64,
    },
    Taken {
        tally: TallyWire,
        violations: Found,
    },
    Checked {
        /// Watchers held and (watcher, auction) subscriptions among them.
        watchers: usize,
        subscriptions: u64,
        states_checked: u64,
        state_mismatches: u64,
        events: BTreeMap<String, u64>,
        violations: Found,
    },
    Error {
        message: String,
    },
}

/// Violations a worker found: its running total, and the descriptions not sent before.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Found {
    pub total: u64,
    pub new_samples: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Progress {
    pub open: u64,
    pub subscribed: u64,
    /// Updates received since the last take.
    pub updates: u64,
    /// g2g p99 since the last take (µs; refreshed once a second), 0 when none.
    pub g2g_p99_us: u64,
    pub events: u64,
    pub violations: u64,
}

fn send(reply: &Reply) {
    let line = serde_json::to_string(reply).expect("replies serialize");
    let mut out = std::io::stdout().lock();
    // The parent gone means nothing is left to do: exit quietly.
    if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// `gavel-bench __worker`: serves its parent until `Stop` or the end of its standard input.
pub fn main() -> std::process::ExitCode {
    let fd = crate::sys::raise_fd_limit();
    send(&Reply::Hello {
        pid: std::process::id(),
        fd_soft: fd.soft,
        fd_hard: fd.hard,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = rt.block_on(serve());
    rt.shutdown_background();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gavel-bench worker: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

struct State {
    ctx: Arc<Ctx>,
    api: Api,
    watchers: Vec<Arc<Watcher>>,
    aborts: Vec<tokio::task::AbortHandle>,
    subscriptions: u64,
    samples_sent: usize,
    connect_concurrency: usize,
}

impl State {
    fn found(&mut self) -> Found {
        let samples = self.ctx.violations.samples();
        let new_samples = samples[self.samples_sent.min(samples.len())..].to_vec();
        self.samples_sent = samples.len();
        Found {
            total: self.ctx.violations.count(),
            new_samples,
        }
    }
}

async fn serve() -> anyhow::Result<()> {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut state: Option<State> = None;
    while let Some(line) = lines.next_line().await? {
        let cmd: Command = match serde_json::from_str(&line) {
            Ok(c) => c,
            Err(e) => {
                send(&Reply::Error {
                    message: format!("unreadable command ({e})"),
                });
                continue;
            }
        };
        let reply = match (cmd, state.as_mut()) {
            (Command::Init(init), None) => match init_state(init).await {
                Ok(s) => {
                    tokio::spawn(progress(s.ctx.clone()));
                    state = Some(s);
                    Reply::Done
                }
                Err(e) => Reply::Error {
                    message: format!("{e:#}"),
                },
            },
            (Command::Stop, s) => {
                if let Some(s) = s {
                    s.ctx.stopping.store(true, Ordering::Relaxed);
                    for a in &s.aborts {
                        a.abort();
                    }
                }
                return Ok(());
            }
            (Command::Watch { first, end, subs }, Some(s)) => {
                let subs = subs.min(s.ctx.auctions.len());
                s.ctx.number_connections_from(first);
                let (opened, failed) =
                    watcher::connect_all(&s.ctx, first..end, subs, s.connect_concurrency).await;
                s.subscriptions += (opened.len() * subs) as u64;
                let n = opened.len();
                for (w, abort) in opened {
                    s.watchers.push(w);
                    s.aborts.push(abort);
                }
                watcher::wait_subscribed(&s.ctx, s.subscriptions, Duration::from_secs(60)).await;
                Reply::Watching {
                    opened: n,
                    failed,
                    subscribed: s.ctx.subscribed.load(Ordering::Relaxed),
                }
            }
            (Command::Plan { bids }, Some(s)) => {
                s.ctx
                    .ledger
                    .append(bids.into_iter().map(|(at, a, amount)| (at, a, amount, 0)));
                Reply::Done
            }
            (Command::Take, Some(s)) => Reply::Taken {
                tally: s.ctx.rec.take().to_wire(),
                violations: s.found(),
            },
            (Command::Check, Some(s)) => {
                let mut checks = Checks::default();
                crate::check::compare_watchers(&s.ctx, &s.api, &s.watchers, &mut checks).await;
                Reply::Checked {
                    watchers: s.watchers.len(),
                    subscriptions: s.subscriptions,
                    states_checked: checks.watcher_states_checked,
                    state_mismatches: checks.watcher_state_mismatches,
                    events: s.ctx.events.snapshot(),
                    violations: s.found(),
                }
            }
            (Command::Init(_), Some(_)) => Reply::Error {
                message: "already initialised".into(),
            },
            (_, None) => Reply::Error {
                message: "not initialised".into(),
            },
        };
        send(&reply);
    }
    Ok(())
}

async fn init_state(init: Init) -> anyhow::Result<State> {
    let mut servers = Vec::new();
    for s in &init.servers {
        servers.push(Server::parse(s).await?);
    }
    let mut ctx = Ctx::new(
        init.run,
        servers,
        init.auctions,
        init.source_base,
        init.conns_per_source,
        None,
    );
    let behind = crate::sys::monotonic_us().saturating_sub(init.epoch_monotonic_us);
    ctx.epoch = Instant::now()
        .checked_sub(Duration::from_micros(behind))
        .ok_or_else(|| anyhow::anyhow!("the parent's epoch is before this machine's boot"))?;
    Ok(State {
        ctx: Arc::new(ctx),
        // Only reads auction lists: no admin token needed.
        api: Api::new(String::new()),
        watchers: Vec::new(),
        aborts: Vec::new(),
        subscriptions: 0,
        samples_sent: 0,
        connect_concurrency: init.connect_concurrency,
    })
}

async fn progress(ctx: Arc<Ctx>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut p99 = 0;
    for n in 0u64.. {
        tick.tick().await;
        if n % 4 == 0 {
            let g2g = ctx.rec.peek().g2g;
            p99 = if g2g.is_empty() {
                0
            } else {
                g2g.value_at_quantile(0.99)
            };
        }
        send(&Reply::Progress(Progress {
            open: ctx.open.load(Ordering::Relaxed),
            subscribed: ctx.subscribed.load(Ordering::Relaxed),
            updates: ctx.rec.updates(),
            g2g_p99_us: p99,
            events: ctx.events.total(),
            violations: ctx.violations.count(),
        }));
    }
}
