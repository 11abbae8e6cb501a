//! The report: one row per step, the correctness checks, the human table and `--json`.

use crate::stats::Percentiles;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The server's side of a step, from `/proc/PID` and `/metrics`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ServerStep {
    pub rss_kib: Option<u64>,
    /// Server CPU time (user + system) during the step.
    pub cpu_ms: Option<f64>,
    /// Server CPU per `update` frame the watchers received.
    pub cpu_us_per_update: Option<f64>,
    /// Server CPU per bid answered (accepted, rejected or refused), fan-out included.
    #[serde(default)]
    pub cpu_us_per_answer: Option<f64>,
    /// RSS growth per watcher connection opened for this step (after subscribing, idle).
    pub idle_kib_per_conn: Option<f64>,
    /// `gavel_archive_batches_total` during the step (write transactions).
    pub archive_batches: Option<f64>,
    /// Write transactions per accepted bid.
    pub batches_per_accepted: Option<f64>,
    /// `gavel_ws_frames_sent_total` during the step.
    pub frames_sent: Option<f64>,
}

/// One worker process's share of a step (`--workers`): the step's figures are the sum.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkerStep {
    pub worker: usize,
    pub pid: u32,
    pub watchers: usize,
    pub updates: u64,
    pub g2g_samples: u64,
    pub unmatched_updates: u64,
    /// Violations it had found by the end of the step.
    pub violations: u64,
    /// Its CPU time during the step.
    pub cpu_ms: Option<f64>,
    pub rss_kib: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StepReport {
    pub name: String,
    pub watchers: usize,
    pub connections: u64,
    pub auctions: usize,
    pub bidders: usize,
    /// Scheduled bids per second (for a simultaneous burst: the number of bids).
    pub offered_rate: f64,
    pub duration_s: f64,
    pub bids_sent: u64,
    pub answers: u64,
    pub accepted: u64,
    /// Answers by outcome, and errors as `error:<code>`.
    pub outcomes: BTreeMap<String, u64>,
    /// Decisions (accepted or rejected) per second, over the time until the last answer.
    pub decisions_per_s: f64,
    pub accepted_per_s: f64,
    pub rejected_per_s: f64,
    pub updates: u64,
    pub updates_per_s: f64,
    pub unmatched_updates: u64,
    /// Scheduled bid time → each watcher received the matching update.
    pub g2g_us: Percentiles,
    /// Scheduled bid time → `bid_result`.
    pub rtt_us: Percentiles,
    /// Scheduled bid time → handed to the socket (the tool's own lateness).
    pub send_lag_us: Percentiles,
    pub server: ServerStep,
    /// This tool's own CPU per update received (it shares the machine with the server).
    #[serde(default)]
    pub tool_cpu_us_per_update: Option<f64>,
    /// Cores busy on average during the step (the whole machine: server, tool and others).
    #[serde(default)]
    pub machine_busy_cores: Option<f64>,
    /// Of those, cores used by neither the server nor this tool (a shared machine's noise).
    #[serde(default)]
    pub other_busy_cores: Option<f64>,
    /// One-minute load average at the end of the step.
    #[serde(default)]
    pub load_average: Option<f64>,
    /// Violations counted so far in the run.
    pub violations: u64,
    /// With `--workers`: each worker process's share (the figures above are their sum).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerStep>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ArchiveCheck {
    pub accepted: u64,
    /// Rows of this run's auctions in the archive's `bids` table.
    pub archived: u64,
    /// Accepted, but not in the archive.
    pub missing: u64,
    /// In the archive, but not accepted (or with another amount).
    pub extra: u64,
    /// Request ids stored more than once.
    pub duplicates: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Checks {
    pub violations: u64,
    pub violation_samples: Vec<String>,
    /// Connection failures, server errors, resyncs, … by kind.
    pub events: BTreeMap<String, u64>,
    /// (watcher, auction) pairs compared with the server's final state.
    pub watcher_states_checked: u64,
    pub watcher_state_mismatches: u64,
    /// Bids answered `unavailable` or not at all, asked again by request id at the end.
    pub unknown_resolved: u64,
    pub unknown_unresolved: u64,
    pub archive: Option<ArchiveCheck>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    pub label: Option<String>,
    pub run: String,
    pub command: String,
    /// This process's open-files limit (soft raised to hard).
    pub fd_soft: u64,
    pub fd_hard: u64,
    pub server_fd_limit: Option<u64>,
    /// Worker processes holding the watchers (`--workers`; 0: this process holds them).
    #[serde(default)]
    pub workers: usize,
    pub servers: Vec<String>,
    pub steps: Vec<StepReport>,
    pub checks: Checks,
    /// Notes on limits met during the run (e.g. a ladder step cut by file descriptors).
    pub notes: Vec<String>,
    pub ok: bool,
}

fn ms(us: u64) -> String {
    if us == 0 {
        "-".into()
    } else {
        format!("{:.2}", us as f64 / 1000.0)
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

impl Report {
    /// The human table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\n{} (run {}): {}",
            self.scenario,
            self.run,
            if self.ok {
                "no correctness violation"
            } else {
                "CORRECTNESS VIOLATIONS"
            }
        );
        let _ = writeln!(
            s,
            "{:<16} {:>7} {:>7} {:>9} {:>8} {:>8} {:>9} | {:>8} {:>8} {:>8} {:>8} {:>8} | {:>7} {:>7} {:>7} | {:>6} | {:>7} {:>7} {:>7} {:>7} {:>6}",
            "step", "watch", "conns", "offered/s", "acc/s", "rej/s", "upd/s",
            "g2g p50", "p90", "p99", "p99.9", "max",
            "rtt p50", "p99", "max", "lag99",
            "cpu/upd", "tool", "KiB/con", "RSS MiB", "errors",
        );
        for st in &self.steps {
            let errors: u64 = st
                .outcomes
                .iter()
                .filter(|(k, _)| k.starts_with("error:"))
                .map(|(_, v)| v)
                .sum();
            let _ = writeln!(
                s,
                "{:<16} {:>7} {:>7} {:>9.0} {:>8.0} {:>8.0} {:>9.0} | {:>8} {:>8} {:>8} {:>8} {:>8} | {:>7} {:>7} {:>7} | {:>6} | {:>7} {:>7} {:>7} {:>7} {:>6}",
                st.name,
                st.watchers,
                st.connections,
                st.offered_rate,
                st.accepted_per_s,
                st.rejected_per_s,
                st.updates_per_s,
                ms(st.g2g_us.p50),
                ms(st.g2g_us.p90),
                ms(st.g2g_us.p99),
                ms(st.g2g_us.p999),
                ms(st.g2g_us.max),
                ms(st.rtt_us.p50),
                ms(st.rtt_us.p99),
                ms(st.rtt_us.max),
                ms(st.send_lag_us.p99),
                opt(st.server.cpu_us_per_update, 2),
                opt(st.tool_cpu_us_per_update, 2),
                opt(st.server.idle_kib_per_conn, 1),
                opt(st.server.rss_kib.map(|k| k as f64 / 1024.0), 0),
                errors,
            );
        }
        let _ = writeln!(s, "(latencies in ms; cpu/upd and tool: µs of server and of gavel-bench CPU per update frame delivered; KiB/con is RSS growth per watcher connection added)");
        for st in &self.steps {
            let extra: Vec<String> = st
                .outcomes
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let batches = match (st.server.archive_batches, st.server.batches_per_accepted) {
                (Some(b), Some(r)) => {
                    format!(
                        "; archive transactions {b:.0} ({:.2}% of accepted)",
                        r * 100.0
                    )
                }
                (Some(b), None) => format!("; archive transactions {b:.0}"),
                _ => String::new(),
            };
            let machine = match (st.machine_busy_cores, st.other_busy_cores, st.load_average) {
                (Some(m), Some(o), Some(l)) => {
                    format!("; machine busy {m:.2} cores, {o:.2} of them neither server nor tool, load {l:.1}")
                }
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "  {}: sent {}, answers {} ({}), decisions {:.0}/s, updates {}{}{}{}",
                st.name,
                st.bids_sent,
                st.answers,
                extra.join(", "),
                st.decisions_per_s,
                st.updates,
                if st.unmatched_updates > 0 {
                    format!(" ({} unmatched)", st.unmatched_updates)
                } else {
                    String::new()
                },
                batches,
                machine,
            );
        }
        let c = &self.checks;
        let _ = writeln!(
            s,
            "checks: {} violations; {} watcher states compared, {} differ from the server; unknown outcomes resolved {}, unresolved {}",
            c.violations, c.watcher_states_checked, c.watcher_state_mismatches, c.unknown_resolved, c.unknown_unresolved
        );
        if let Some(a) = &c.archive {
            let _ = writeln!(
                s,
                "archive: {} accepted, {} stored, {} missing, {} extra, {} duplicated",
                a.accepted, a.archived, a.missing, a.extra, a.duplicates
            );
        }
        for (k, v) in &c.events {
            let _ = writeln!(s, "event: {k} × {v}");
        }
        for v in &c.violation_samples {
            let _ = writeln!(s, "VIOLATION: {v}");
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        s
    }
}
