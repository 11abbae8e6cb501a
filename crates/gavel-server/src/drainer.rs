//! Distributed mode: moves committed changes from the Redis change logs into PostgreSQL.
//!
//! Every node runs one drainer; they share one consumer group, so each entry is delivered
//! to one of them (at least once). A drainer buffers entries and writes them as one batch
//! (one SQL statement, see `gavel_archive::postgres`) when it holds `batch` entries, when
//! `interval` has passed since the first one, or at once when the batch holds a closing
//! (results reach PostgreSQL promptly). Only after the batch has committed are its entries
//! acknowledged (`XACK`); the archive keys bids by their server-generated id, so an entry
//! written twice (a redelivery, a claim racing a slow drainer) is stored once.
//!
//! - **Restart**: the drainer first re-reads its own pending entries (id `0`); so does it
//!   after any error, since entries it had read may not have been written.
//! - **Dead node**: entries another drainer has held longer than `claim_idle` are claimed
//!   (`XAUTOCLAIM`) and written here. `claim_idle` must exceed the longest a live drainer
//!   holds an entry (the interval plus a write), or live drainers' entries get written
//!   twice (harmless, but wasted).
//! - **PostgreSQL down**: the batch is retried with backoff and nothing more is read;
//!   entries wait in Redis (the stream keeps them) and bids keep flowing.
//! - **Trimming**: after acknowledging, each log is trimmed below its oldest pending entry
//!   (`trim.lua`), never by length.

use gavel_archive::{Archive, ArchivedChange};
use gavel_core::Event;
use gavel_engine::redis::{ChangeLog, LogEntry};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How the drainer batches.
#[derive(Clone, Debug)]
pub struct DrainConfig {
    /// Entries per batch (and per statement).
    pub batch: usize,
    /// A partial batch is written this long after its first entry.
    pub interval: Duration,
    /// Entries idle this long in another drainer are claimed.
    pub claim_idle: Duration,
}

/// What the drainer has done since start (also exported as metrics).
#[derive(Debug, Default)]
pub struct DrainStats {
    /// Batches committed (each one SQL statement).
    pub batches: AtomicU64,
    /// Entries acknowledged after their batch committed.
    pub entries: AtomicU64,
}

/// The longest a blocking read waits, so new auctions are picked up and stop is honoured.
const MAX_BLOCK: Duration = Duration::from_secs(1);
/// Own pending entries re-read per log after a restart or an error.
const OWN_PENDING: usize = 10_000;

struct Drainer {
    log: ChangeLog,
    archive: Arc<dyn Archive>,
    config: DrainConfig,
    stats: Arc<DrainStats>,
    buffer: Vec<LogEntry>,
    first_at: Option<Instant>,
}

/// Runs until `stop`; then writes what it holds (once, without retrying) and returns.
pub async fn run(
    log: ChangeLog,
    archive: Arc<dyn Archive>,
    config: DrainConfig,
    stats: Arc<DrainStats>,
    stop: CancellationToken,
) {
    tracing::info!(consumer = %log.consumer(), batch = config.batch, interval_ms = config.interval.as_millis() as u64, "drainer started");
    let mut d = Drainer {
        log,
        archive,
        config,
        stats,
        buffer: Vec::new(),
        first_at: None,
    };
    let claim_every = (d.config.claim_idle / 4).clamp(Duration::from_millis(200), MAX_BLOCK * 10);
    let mut last_claim = Instant::now();
    let mut reread_own = true;
    let mut backoff = Duration::from_millis(100);
    while !stop.is_cancelled() {
        let step = d
            .step(&mut reread_own, &mut last_claim, claim_every, &stop)
            .await;
        match step {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(error = %e, "drainer cannot read the change logs; retrying");
                // Whatever was read may not be written: start over from our pending list.
                reread_own = true;
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.cancelled() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
    if !d.buffer.is_empty() {
        // Best effort: anything not written stays pending and is re-read or claimed.
        let _ = d.write_and_ack(true, false, &stop).await;
    }
    tracing::info!("drainer stopped");
}

impl Drainer {
    async fn step(
        &mut self,
        reread_own: &mut bool,
        last_claim: &mut Instant,
        claim_every: Duration,
        stop: &CancellationToken,
    ) -> Result<(), gavel_engine::EngineError> {
        let ids = self.log.active().await?;
        if *reread_own {
            let own = self.log.own_pending(&ids, OWN_PENDING).await?;
            if !own.is_empty() {
                tracing::info!(
                    entries = own.len(),
                    "drainer re-read its own pending entries"
                );
            }
            // The buffer's entries are pending under our name too: take the fresh list.
            self.buffer.clear();
            self.first_at = None;
            self.take(own);
            *reread_own = false;
        } else if last_claim.elapsed() >= claim_every {
            *last_claim = Instant::now();
            let claimed = self
                .log
                .claim_stale(&ids, self.config.claim_idle, self.config.batch)
                .await?;
            self.take(claimed);
        } else {
            let room = self.config.batch.saturating_sub(self.buffer.len()).max(1);
            let block = match self.first_at {
                Some(at) => self.config.interval.saturating_sub(at.elapsed()),
                None => MAX_BLOCK,
            }
            .clamp(Duration::from_millis(1), MAX_BLOCK);
            let fresh = self.log.read_new(&ids, room, block).await?;
            self.take(fresh);
        }
        if let Some(all) = self.due() {
            self.write_and_ack(all, true, stop).await;
        }
        Ok(())
    }

    fn take(&mut self, entries: Vec<LogEntry>) {
        if entries.is_empty() {
            return;
        }
        let known: HashSet<(String, String)> = self
            .buffer
            .iter()
            .map(|e| (e.auction.to_string(), e.entry_id.clone()))
            .collect();
        for e in entries {
            if !known.contains(&(e.auction.to_string(), e.entry_id.clone())) {
                self.buffer.push(e);
            }
        }
        self.first_at.get_or_insert_with(Instant::now);
    }

    /// `Some(true)`: write everything (old enough, or holding a result); `Some(false)`:
    /// write the full batches and keep the rest; `None`: not yet.
    fn due(&self) -> Option<bool> {
        if self.buffer.is_empty() {
            return None;
        }
        let old = self
            .first_at
            .is_some_and(|at| at.elapsed() >= self.config.interval);
        let result = self.buffer.iter().any(|e| {
            e.change.as_ref().is_some_and(|c| {
                matches!(c.event, Event::Closed) || c.auction.state.closing.is_some()
            })
        });
        if old || result {
            Some(true)
        } else if self.buffer.len() >= self.config.batch {
            Some(false)
        } else {
            None
        }
    }

    /// Writes the buffer in batches of `batch` (with `all`, also the last partial one),
    /// each acknowledged after its commit. With `retry`, a failing write is retried (with
    /// backoff) until it commits or `stop`.
    async fn write_and_ack(&mut self, all: bool, retry: bool, stop: &CancellationToken) -> bool {
        while !self.buffer.is_empty() && (all || self.buffer.len() >= self.config.batch) {
            let n = self.buffer.len().min(self.config.batch);
            let chunk: Vec<LogEntry> = self.buffer.drain(..n).collect();
            let changes: Vec<ArchivedChange> =
                chunk.iter().filter_map(|e| e.change.clone()).collect();
            let mut backoff = Duration::from_millis(100);
            loop {
                match self.archive.record_batch(&changes).await {
                    Ok(()) => break,
                    Err(e) => {
                        metrics::counter!("gavel_drainer_write_failures_total").increment(1);
                        tracing::warn!(error = %e, entries = chunk.len(), "drainer cannot write to the archive; retrying");
                        if !retry {
                            return false;
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = stop.cancelled() => return false,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            self.stats.batches.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("gavel_drainer_batches_total").increment(1);
            // Unacknowledged entries stay pending and are written again later: harmless.
            if let Err(e) = self.log.ack(&chunk).await {
                tracing::warn!(error = %e, "drainer could not acknowledge a written batch");
            } else {
                self.stats
                    .entries
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                metrics::counter!("gavel_drainer_entries_total").increment(chunk.len() as u64);
            }
        }
        self.first_at = (!self.buffer.is_empty()).then(Instant::now);
        true
    }
}
