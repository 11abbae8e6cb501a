//! Readiness (`GET /readyz`) and the node's draining state.
//!
//! `/healthz` is liveness: the process serves requests. `/readyz` says whether a load
//! balancer should send this node traffic: the authority can decide (embedded: the memory
//! engine's archive commits; distributed: Redis answers and holds Gavel's scripts), the
//! archive answers (SQLite / PostgreSQL), and the node is not draining (SIGTERM). Each
//! failed condition is one typed reason ([`NotReadyCode`]) in the 503 body.
//!
//! The same result is exported as the gauges `gavel_ready` and `gavel_draining` (1/0),
//! refreshed every [`MONITOR_EVERY`] and on every `/readyz`, so alerts do not depend on
//! anyone probing.

use crate::AppState;
use gavel_protocol::{NotReady, NotReadyCode, Readiness};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long one check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the gauges are refreshed without a probe.
pub const MONITOR_EVERY: Duration = Duration::from_secs(2);

/// The node's drain state, shared by the accept loop, the WebSocket connections and
/// `/readyz`.
#[derive(Default)]
pub struct Drain {
    draining: AtomicBool,
    /// When the drain must be over (set once, when it starts).
    deadline: parking_lot::Mutex<Option<Instant>>,
}

impl Drain {
    /// Marks the node as draining, with the moment its shutdown must be complete.
    pub fn start(&self, deadline: Instant) {
        *self.deadline.lock() = Some(deadline);
        self.draining.store(true, Ordering::Release);
        metrics::gauge!("gavel_draining").set(1.0);
        metrics::gauge!("gavel_ready").set(0.0);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// When the drain must be over (`None` before it starts).
    pub fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock()
    }
}

/// Runs every check (concurrently, each bounded by [`CHECK_TIMEOUT`]) and sets the gauges.
pub async fn check(state: &AppState) -> Readiness {
    let mut reasons = Vec::new();
    let authority = tokio::time::timeout(CHECK_TIMEOUT, state.engine.check_ready());
    let archive = tokio::time::timeout(CHECK_TIMEOUT, state.archive.check_ready());
    let (authority, archive) = tokio::join!(authority, archive);
    let timed_out = || format!("no answer within {} s", CHECK_TIMEOUT.as_secs());
    let authority = match authority {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(timed_out()),
    };
    if let Some(message) = authority {
        reasons.push(NotReady {
            code: NotReadyCode::AuthorityUnavailable,
            message,
        });
    }
    let archive = match archive {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(timed_out()),
    };
    if let Some(message) = archive {
        reasons.push(NotReady {
            code: NotReadyCode::ArchiveUnavailable,
            message,
        });
    }
    // Read after the checks: a drain that started while they ran is reported.
    let draining = state.drain.is_draining();
    if draining {
        reasons.insert(
            0,
            NotReady {
                code: NotReadyCode::Draining,
                message: "the node is shutting down; connect to another one".into(),
            },
        );
    }
    let ready = reasons.is_empty();
    metrics::gauge!("gavel_ready").set(if ready { 1.0 } else { 0.0 });
    metrics::gauge!("gavel_draining").set(if draining { 1.0 } else { 0.0 });
    if !ready {
        tracing::debug!(?reasons, "not ready");
    }
    Readiness { ready, reasons }
}

/// Keeps the gauges current until `stop`, and logs each change of readiness.
pub async fn monitor(state: Arc<AppState>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(MONITOR_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<bool> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let r = tokio::select! {
            r = check(&state) => r,
            _ = stop.cancelled() => return,
        };
        if last.is_some_and(|was| was != r.ready) {
            if r.ready {
                tracing::info!("ready again");
            } else {
                tracing::warn!(reasons = ?r.reasons, "not ready");
            }
        }
        last = Some(r.ready);
    }
}
