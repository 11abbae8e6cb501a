//! The named scenarios, each a sequence of bounded steps, and their defaults.

use crate::bench::{Bench, Planned};
use crate::cli::Opts;
use crate::ctx::outcome;
use crate::report::Report;
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Ladder,
    FinalSecond,
    Sustained,
    ManyAuctions,
    Idle,
    Custom,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Ladder => "ladder",
            Scenario::FinalSecond => "final-second",
            Scenario::Sustained => "sustained",
            Scenario::ManyAuctions => "many-auctions",
            Scenario::Idle => "idle",
            Scenario::Custom => "custom",
        }
    }
}

/// Runs a scenario from start (servers, auctions) to finish (checks, server stopped).
pub async fn run(scenario: Scenario, opts: Opts) -> anyhow::Result<Report> {
    let (auctions, bidders) = match scenario {
        Scenario::Ladder => (opts.auctions.unwrap_or(1), opts.bidders.unwrap_or(10)),
        Scenario::FinalSecond => (1, opts.bidders.unwrap_or(1000)),
        Scenario::Sustained => (opts.auctions.unwrap_or(100), opts.bidders.unwrap_or(200)),
        Scenario::ManyAuctions => (opts.auctions.unwrap_or(10_000), opts.bidders.unwrap_or(100)),
        Scenario::Idle => (opts.auctions.unwrap_or(10), opts.bidders.unwrap_or(0)),
        Scenario::Custom => (opts.auctions.unwrap_or(1), opts.bidders.unwrap_or(10)),
    };
    let quiet = opts.quiet;
    let mut b = Bench::setup(opts, auctions.max(1), bidders).await?;
    let pool_status = b.pool.as_ref().map(|p| p.status.clone());
    let progress =
        (!quiet).then(|| tokio::spawn(progress(b.ctx.clone(), b.phase.clone(), pool_status)));
    let result = match scenario {
        Scenario::Ladder => ladder(&mut b).await,
        Scenario::FinalSecond => final_second(&mut b).await,
        Scenario::Sustained => sustained(&mut b).await,
        Scenario::ManyAuctions => many_auctions(&mut b).await,
        Scenario::Idle => idle(&mut b).await,
        Scenario::Custom => custom(&mut b).await,
    };
    let checks = b.check().await;
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    b.disconnect().await;
    let report = Report {
        scenario: scenario.name().into(),
        label: b.opts.label.clone(),
        run: b.ctx.run.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        fd_soft: b.fd.soft,
        fd_hard: b.fd.hard,
        server_fd_limit: b.server_fd,
        workers: b.pool.as_ref().map_or(0, |p| p.len()),
        servers: b.ctx.servers.iter().map(|s| s.base.clone()).collect(),
        steps: b.steps.clone(),
        ok: checks.violations == 0,
        checks,
        notes: b.notes.clone(),
    };
    if let Some(s) = b.spawned.take() {
        s.stop(b.opts.keep_data || !report.ok).await;
    }
    result?;
    Ok(report)
}

fn all_auctions(b: &Bench) -> Vec<u32> {
    (0..b.ctx.auctions.len() as u32).collect()
}

async fn ladder(b: &mut Bench) -> anyhow::Result<()> {
    let steps = b
        .opts
        .steps
        .clone()
        .unwrap_or_else(|| ["100", "1000", "10000", "max"].map(String::from).to_vec());
    let max = b.max_watchers();
    let duration = b.opts.duration.unwrap_or(10.0);
    let subs = b.opts.subs_per_conn.unwrap_or(1);
    let mut done = 0usize;
    for s in steps {
        let wanted = if s == "max" {
            max
        } else {
            s.parse::<usize>()
                .map_err(|_| anyhow::anyhow!("ladder step {s:?}: a number or `max`"))?
        };
        let w = wanted.min(max);
        if w < wanted {
            b.notes.push(format!(
                "ladder step {wanted} cut to {w} watchers: open-files limit {} here, {} on the server (hard limit {}; raising it needs CAP_SYS_RESOURCE)",
                b.fd.soft,
                b.server_fd.map_or("unknown".into(), |l| l.to_string()),
                b.fd.hard
            ));
        }
        if w <= done {
            continue;
        }
        let kib = b.add_watchers(w, subs).await;
        done = b.watcher_count();
        let rate = b
            .opts
            .rate
            .unwrap_or(if done >= 50_000 { 1.0 } else { 10.0 });
        let plan = b.plan_rate(rate, duration, &all_auctions(b));
        b.step(&format!("{done} watchers"), plan, duration, rate, kib)
            .await;
    }
    Ok(())
}

async fn final_second(b: &mut Bench) -> anyhow::Result<()> {
    let w = b.opts.watchers.unwrap_or(100).min(b.max_watchers());
    let kib = b.add_watchers(w, 1).await;
    let rounds = b.opts.rounds.unwrap_or(3);
    let n = b.bidders.len();
    for round in 0..rounds {
        // Everyone bids the current minimum at the same instant.
        let k = b.scheduled[0];
        b.scheduled[0] += 1;
        let plan: Vec<Planned> = (0..n as u32)
            .map(|i| (0, 0, crate::bench::STARTING_PRICE + k, i))
            .collect();
        let first = b.ctx.ledger.len();
        let st = b
            .step(
                &format!("round {}", round + 1),
                plan,
                0.5,
                n as f64,
                kib.filter(|_| round == 0),
            )
            .await;
        let winners = b
            .ctx
            .ledger
            .with_outcome(first..b.ctx.ledger.len(), &[outcome::ACCEPTED])
            .len();
        if winners != 1 {
            b.ctx.violations.report(|| {
                format!(
                    "final-second round {}: {winners} of {n} identical simultaneous bids accepted (outcomes {:?})",
                    round + 1,
                    st.outcomes
                )
            });
        }
    }
    Ok(())
}

async fn sustained(b: &mut Bench) -> anyhow::Result<()> {
    let w = b.opts.watchers.unwrap_or(1000).min(b.max_watchers());
    let subs = b.opts.subs_per_conn.unwrap_or(1);
    let kib = b.add_watchers(w, subs).await;
    let rates = b.opts.rates.clone().unwrap_or_else(|| match b.opts.rate {
        Some(r) => vec![r],
        None => vec![1000.0, 2000.0, 5000.0, 10_000.0, 20_000.0, 50_000.0],
    });
    let duration = b.opts.duration.unwrap_or(5.0);
    let auctions = all_auctions(b);
    for (i, rate) in rates.into_iter().enumerate() {
        let plan = b.plan_rate(rate, duration, &auctions);
        let st = b
            .step(
                &format!("{rate:.0} bids/s"),
                plan,
                duration,
                rate,
                kib.filter(|_| i == 0),
            )
            .await;
        let unanswered = st.bids_sent.saturating_sub(st.answers);
        if st.decisions_per_s < 0.9 * rate || unanswered > 0 {
            b.notes.push(format!(
                "sustained stopped at {rate:.0} bids/s offered: {:.0} decisions/s, {unanswered} unanswered after the drain",
                st.decisions_per_s
            ));
            break;
        }
    }
    Ok(())
}

async fn many_auctions(b: &mut Bench) -> anyhow::Result<()> {
    let subs = b.opts.subs_per_conn.unwrap_or(4);
    let w = b.opts.watchers.unwrap_or(5000).min(b.max_watchers());
    let kib = b.add_watchers(w, subs).await;
    let rate = b.opts.rate.unwrap_or(2000.0);
    let duration = b.opts.duration.unwrap_or(10.0);
    let plan = b.plan_rate(rate, duration, &all_auctions(b));
    let name = format!("{} auctions", b.ctx.auctions.len());
    b.step(&name, plan, duration, rate, kib).await;
    Ok(())
}

async fn idle(b: &mut Bench) -> anyhow::Result<()> {
    let w = b.opts.watchers.unwrap_or(10_000).min(b.max_watchers());
    let subs = b.opts.subs_per_conn.unwrap_or(1);
    let kib = b.add_watchers(w, subs).await;
    let duration = b.opts.duration.unwrap_or(3.0);
    b.step(&format!("{w} idle"), Vec::new(), duration, 0.0, kib)
        .await;
    Ok(())
}

async fn custom(b: &mut Bench) -> anyhow::Result<()> {
    let w = b.opts.watchers.unwrap_or(100).min(b.max_watchers());
    let subs = b.opts.subs_per_conn.unwrap_or(1);
    let kib = b.add_watchers(w, subs).await;
    let rate = b.opts.rate.unwrap_or(100.0);
    let duration = b.opts.duration.unwrap_or(10.0);
    let plan = b.plan_rate(rate, duration, &all_auctions(b));
    b.step("custom", plan, duration, rate, kib).await;
    Ok(())
}

/// A progress line on standard error, once a second (a new line each time when it is not a
/// terminal). With workers, their counters are added in (g2g p99: the largest of theirs
/// and this process's).
async fn progress(
    ctx: Arc<crate::ctx::Ctx>,
    phase: Arc<parking_lot::Mutex<String>>,
    pool: Option<Arc<crate::pool::PoolStatus>>,
) {
    let tty = std::io::stderr().is_terminal();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_updates = 0u64;
    loop {
        tick.tick().await;
        let t = ctx.rec.peek();
        let w = pool.as_ref().map(|p| p.total()).unwrap_or_default();
        let updates = t.updates + w.updates;
        let ups = updates.saturating_sub(last_updates);
        last_updates = updates;
        let mine = if t.g2g.is_empty() {
            0
        } else {
            t.g2g.value_at_quantile(0.99)
        };
        let p99 = match mine.max(w.g2g_p99_us) {
            0 => "-".to_string(),
            us => format!("{:.1}ms", us as f64 / 1000.0),
        };
        let line = format!(
            "[{}] conns {} subs {} | bids sent {} answered {} accepted {} | updates/s {} g2g p99 {} | events {} violations {}",
            phase.lock(),
            ctx.open.load(Ordering::Relaxed) + w.open,
            ctx.subscribed.load(Ordering::Relaxed) + w.subscribed,
            t.sent,
            t.answers(),
            t.accepted(),
            ups,
            p99,
            ctx.events.total() + w.events,
            ctx.violations.count(),
        );
        // Workers' violations reach this process's count at the end of each step.
        let line = if pool.is_some() {
            format!("{line} (workers {})", w.violations)
        } else {
            line
        };
        if tty {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
    }
}
