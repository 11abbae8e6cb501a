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
//!   (`trim.lua`), never by length. A closed auction whose log that leaves empty is fully
//!   archived: it is scheduled to leave Redis after its retention (the engine's
//!   `retire.rs`) and leaves the active set; with each claim round the drainer also settles
//!   any such auction a failed follow-up left in the active set.
//! - **An entry that cannot be decoded** is never acknowledged as if archived. A damaged
//!   entry (no retry can help) is moved to its auction's dead-letter stream, counted
//!   (`gavel_drainer_dead_letters_total`) and logged as an error; an entry whose decoding
//!   needs something Redis could not give (its auction's spec missing, unreadable, a
//!   `WRONGTYPE`/`NOPERM`) stays pending and is read again with backoff, while the other
//!   auctions' entries keep flowing (the archive applies an auction's state only forward,
//!   so writing a later change first is harmless).

use gavel_archive::{Archive, ArchivedChange};
use gavel_core::{AuctionId, Event};
use gavel_engine::redis::log::DecodeError;
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
    /// Entries moved to a dead-letter stream.
    pub dead_letters: AtomicU64,
}

/// The longest a blocking read waits, so new auctions are picked up and stop is honoured.
const MAX_BLOCK: Duration = Duration::from_secs(1);
/// Own pending entries re-read per log after a restart or an error.
const OWN_PENDING: usize = 10_000;
/// First and longest wait before entries that could not be decoded yet are read again.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(10);

struct Drainer {
    log: ChangeLog,
    archive: Arc<dyn Archive>,
    config: DrainConfig,
    stats: Arc<DrainStats>,
    /// Decoded entries waiting for their batch (each pending under this consumer).
    buffer: Vec<LogEntry>,
    first_at: Option<Instant>,
    /// Damaged entries to move to their dead-letter streams.
    dead: Vec<(LogEntry, String)>,
    /// Auctions with entries left pending because they could not be decoded yet.
    retry: HashSet<AuctionId>,
    /// When to read those again, and the wait after that if they still fail.
    retry_at: Instant,
    retry_backoff: Duration,
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
        dead: Vec::new(),
        retry: HashSet::new(),
        retry_at: Instant::now(),
        retry_backoff: RETRY_FIRST,
    };
    match d.log.dead_lettered().await {
        Ok(ids) if !ids.is_empty() => tracing::error!(
            auctions = ids.len(),
            first = %ids[0],
            "change-log entries wait in dead-letter streams (docs/distributed.md: dead letters)"
        ),
        _ => {}
    }
    let claim_every = (d.config.claim_idle / 4).clamp(Duration::from_millis(200), MAX_BLOCK * 10);
    let mut last_claim = Instant::now();
    let mut reread_own = true;
    let mut backoff = Duration::from_millis(100);
    while !stop.is_cancelled() {
        let step = d
            .step(&mut reread_own, &mut last_claim, claim_every, &stop)
            .await;
        d.report_lag();
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

/// The time (ms) a change-log entry was added: its stream id's first part (Redis' clock).
fn entry_time_ms(entry_id: &str) -> Option<i64> {
    entry_id.split('-').next()?.parse().ok()
}

impl Drainer {
    /// Exports `gavel_archive_lag_seconds`: how long ago the oldest change this drainer
    /// holds was written to its log (0 when it holds none). It grows while PostgreSQL
    /// refuses the batch; the drain interval bounds it in normal operation.
    fn report_lag(&self) {
        self.report_lag_with(&[]);
    }

    /// [`Self::report_lag`], counting `held` (entries out of the buffer being written) too.
    fn report_lag_with(&self, held: &[LogEntry]) {
        let oldest = self
            .buffer
            .iter()
            .chain(held)
            .filter_map(|e| entry_time_ms(&e.entry_id))
            .min();
        let lag_ms = match oldest {
            Some(at) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                (now - at).max(0)
            }
            None => 0,
        };
        metrics::gauge!("gavel_archive_lag_seconds").set(lag_ms as f64 / 1000.0);
    }

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
            self.dead.clear();
            self.retry.clear();
            self.take(own);
            *reread_own = false;
        } else if !self.retry.is_empty() && Instant::now() >= self.retry_at {
            let ids: Vec<AuctionId> = self.retry.drain().collect();
            let own = self.log.own_pending(&ids, OWN_PENDING).await?;
            self.take(own);
            self.retry_backoff = if self.retry.is_empty() {
                RETRY_FIRST
            } else {
                (self.retry_backoff * 2).min(RETRY_MAX)
            };
        } else if last_claim.elapsed() >= claim_every {
            *last_claim = Instant::now();
            let claimed = self
                .log
                .claim_stale(&ids, self.config.claim_idle, self.config.batch)
                .await?;
            self.take(claimed);
            // Closed auctions archived whole but still listed as active (a follow-up of
            // their last acknowledgement failed) are scheduled to leave Redis now.
            self.log.settle(&ids).await?;
        } else {
            let room = self.config.batch.saturating_sub(self.buffer.len()).max(1);
            let mut block = match self.first_at {
                Some(at) => self.config.interval.saturating_sub(at.elapsed()),
                None => MAX_BLOCK,
            };
            if !self.retry.is_empty() {
                block = block.min(self.retry_at.saturating_duration_since(Instant::now()));
            }
            let block = block.clamp(Duration::from_millis(1), MAX_BLOCK);
            let fresh = self.log.read_new(&ids, room, block).await?;
            self.take(fresh);
        }
        self.move_dead_letters().await;
        if let Some(all) = self.due() {
            self.write_and_ack(all, true, stop).await;
        }
        Ok(())
    }

    /// Moves the damaged entries to their dead-letter streams. One that cannot be moved
    /// now (Redis trouble) stays pending and is read again with the retries.
    async fn move_dead_letters(&mut self) {
        for (entry, reason) in std::mem::take(&mut self.dead) {
            match self.log.dead_letter(&entry, &reason).await {
                Ok(true) => {
                    self.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("gavel_drainer_dead_letters_total").increment(1);
                    tracing::error!(auction = %entry.auction, entry = %entry.entry_id, %reason, "moved an undecodable change-log entry to the auction's dead-letter stream");
                }
                Ok(false) => {
                    tracing::debug!(auction = %entry.auction, entry = %entry.entry_id, "an undecodable entry was already handled by another drainer");
                }
                Err(e) => {
                    tracing::warn!(auction = %entry.auction, entry = %entry.entry_id, error = %e, "could not move an undecodable entry to its dead-letter stream; retrying");
                    self.schedule_retry(entry.auction);
                }
            }
        }
    }

    fn schedule_retry(&mut self, auction: AuctionId) {
        if self.retry.is_empty() {
            self.retry_at = Instant::now() + self.retry_backoff;
        }
        self.retry.insert(auction);
    }

    /// Sorts freshly read entries: decoded ones into the batch (once each), damaged ones
    /// towards the dead letters, the rest left pending for a retry.
    fn take(&mut self, entries: Vec<LogEntry>) {
        let mut known: HashSet<(AuctionId, String)> = self
            .buffer
            .iter()
            .chain(self.dead.iter().map(|(e, _)| e))
            .map(|e| (e.auction.clone(), e.entry_id.clone()))
            .collect();
        // One warning per auction, not per entry: a stuck auction may hold thousands.
        let mut not_yet: Vec<(AuctionId, usize, String)> = Vec::new();
        for e in entries {
            if !known.insert((e.auction.clone(), e.entry_id.clone())) {
                continue;
            }
            match &e.change {
                Ok(_) => {
                    self.buffer.push(e);
                    self.first_at.get_or_insert_with(Instant::now);
                }
                Err(DecodeError::Undecodable(reason)) => {
                    let reason = reason.clone();
                    self.dead.push((e, reason));
                }
                Err(DecodeError::Transient(error)) => {
                    metrics::counter!("gavel_drainer_decode_retries_total").increment(1);
                    match not_yet.iter_mut().find(|(a, ..)| *a == e.auction) {
                        Some((_, n, _)) => *n += 1,
                        None => not_yet.push((e.auction.clone(), 1, error.to_string())),
                    }
                    self.schedule_retry(e.auction);
                }
            }
        }
        for (auction, entries, error) in not_yet {
            tracing::warn!(%auction, entries, %error, retry_in_ms = self.retry_backoff.as_millis() as u64, "cannot decode change-log entries yet; they stay pending and are read again");
        }
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
            e.change.as_ref().is_ok_and(|c| {
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
            // The buffer holds decoded entries only (`take`).
            let changes: Vec<ArchivedChange> =
                chunk.iter().filter_map(|e| e.change.clone().ok()).collect();
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
                        // The chunk is out of the buffer while it is retried: count it.
                        self.report_lag_with(&chunk);
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
