//! The change logs as a drainer reads them: one consumer group (`drainers`) over the
//! per-auction streams listed in `<prefix>:active`.
//!
//! Delivery is at least once: an entry stays pending in the group until a drainer has
//! stored it and acknowledged it. A drainer that restarts first re-reads its own pending
//! entries (id `0`); entries a dead drainer left pending are claimed by another with
//! `XAUTOCLAIM` once they have been idle long enough. Trimming (`trim.lua`) never drops a
//! pending entry. Blocking reads use their own connection without a response timeout
//! (a client-wide timeout would cut `XREADGROUP BLOCK` short).
//!
//! Decoding an entry fails in one of two ways, kept apart by [`DecodeError`]: the entry
//! itself is damaged (no retry can help: the drainer moves it to the auction's dead-letter
//! stream, see `dead_letter.rs`), or what decoding needs could not be read (a Redis error,
//! the auction's spec missing or unreadable: the entry stays pending and is tried again).
//! Neither is ever acknowledged as if it had been archived.

mod dead_letter;

use super::conn::Conn;
use super::{map_err, RedisEngine, DRAIN_GROUP};
use crate::{Cause, EngineError};
use gavel_archive::ArchivedChange;
use gavel_core::AuctionId;
use redis::streams::{StreamId, StreamReadOptions, StreamReadReply};
use redis::AsyncCommands;
use std::collections::HashMap;
use std::time::Duration;

/// Streams named in one `XREADGROUP`.
const KEYS_PER_READ: usize = 500;
/// An auction registered this long ago whose hash does not exist was never created.
const GHOST_AFTER_MS: i64 = 60_000;

/// One change-log entry handed to the drainer.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub auction: AuctionId,
    /// The stream entry id (for `XACK`).
    pub entry_id: String,
    /// The change to archive, or why it cannot be (yet).
    pub change: Result<ArchivedChange, DecodeError>,
}

/// Why a change-log entry could not be made into a change to archive.
#[derive(Clone, Debug, thiserror::Error)]
pub enum DecodeError {
    /// The entry itself is damaged (no change field, not a change, another auction's
    /// change, fields that do not fit the auction): reading it again cannot help.
    #[error("undecodable change-log entry: {0}")]
    Undecodable(String),
    /// What decoding needs could not be read (a Redis error, the auction's spec missing or
    /// unreadable): the entry is fine and is tried again later.
    #[error("change-log entry not decodable yet: {0}")]
    Transient(EngineError),
}

/// Failures met while decoding one read's entries: once reading an auction's spec failed,
/// its other entries in that read fail the same way without asking Redis again, and once
/// Redis itself was unreachable, every remaining entry does (no timeout per entry).
#[derive(Default)]
struct ReadFailures {
    by_auction: HashMap<AuctionId, EngineError>,
    all: Option<EngineError>,
}

/// A drainer's view of the change logs.
pub struct ChangeLog {
    engine: RedisEngine,
    /// Blocking reads only: no response timeout.
    blocking: Conn,
    consumer: String,
}

/// The change JSON of a stream entry.
pub(crate) fn field_c(entry: &StreamId) -> Option<String> {
    entry.get::<String>("c")
}

impl ChangeLog {
    pub(super) async fn open(engine: RedisEngine, consumer: &str) -> Result<Self, EngineError> {
        let blocking = engine
            .inner
            .core
            .target
            .connect(None)
            .await
            .map_err(map_err)?;
        Ok(ChangeLog {
            engine,
            blocking,
            consumer: consumer.to_string(),
        })
    }

    /// This drainer's consumer name in the group.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Auctions whose logs may hold unarchived entries.
    pub async fn active(&self) -> Result<Vec<AuctionId>, EngineError> {
        let i = &self.engine.inner.core;
        let raw: Vec<String> = i
            .cmd
            .clone()
            .zrange(i.keys.active(), 0, -1)
            .await
            .map_err(map_err)?;
        Ok(raw
            .iter()
            .filter_map(|s| AuctionId::parse(s.as_str()).ok())
            .collect())
    }

    /// This consumer's own pending entries: read them first after a (re)start.
    pub async fn own_pending(
        &mut self,
        ids: &[AuctionId],
        count: usize,
    ) -> Result<Vec<LogEntry>, EngineError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(KEYS_PER_READ) {
            out.extend(self.read(chunk, "0", count, None).await?);
        }
        Ok(out)
    }

    /// Entries never delivered to any drainer, waiting up to `block` for the first one.
    pub async fn read_new(
        &mut self,
        ids: &[AuctionId],
        count: usize,
        block: Duration,
    ) -> Result<Vec<LogEntry>, EngineError> {
        if ids.is_empty() {
            tokio::time::sleep(block).await;
            return Ok(Vec::new());
        }
        if ids.len() <= KEYS_PER_READ {
            return self.read(ids, ">", count, Some(block)).await;
        }
        let mut out = Vec::new();
        for chunk in ids.chunks(KEYS_PER_READ) {
            out.extend(self.read(chunk, ">", count, None).await?);
        }
        if out.is_empty() {
            tokio::time::sleep(block.min(Duration::from_millis(250))).await;
        }
        Ok(out)
    }

    /// One `XREADGROUP` over these logs; on a Redis Cluster, one per slot (a command may
    /// not name keys of several slots), sent concurrently, and a block becomes a short
    /// sleep when nothing came (a blocking read can wait on one shard only).
    async fn read(
        &mut self,
        ids: &[AuctionId],
        from: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<LogEntry>, EngineError> {
        if !self.engine.inner.core.target.is_cluster() {
            return self.read_slot(ids, from, count, block).await;
        }
        let mut by_slot: Vec<(redis::cluster_routing::Slot, Vec<AuctionId>)> = Vec::new();
        for id in ids {
            let slot = redis::cluster_routing::Slot::for_key(self.engine.inner.core.keys.log(id));
            match by_slot.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, v)) => v.push(id.clone()),
                None => by_slot.push((slot, vec![id.clone()])),
            }
        }
        if by_slot.len() == 1 {
            return self.read_slot(ids, from, count, block).await;
        }
        let reads = by_slot.iter().map(|(_, ids)| {
            let mut reader = ChangeLog {
                engine: self.engine.clone(),
                blocking: self.blocking.clone(),
                consumer: self.consumer.clone(),
            };
            async move { reader.read_slot(ids, from, count, None).await }
        });
        let mut out = Vec::new();
        for r in futures::future::join_all(reads).await {
            out.extend(r?);
        }
        if out.is_empty() {
            if let Some(b) = block {
                tokio::time::sleep(b.min(Duration::from_millis(100))).await;
            }
        }
        Ok(out)
    }

    async fn read_slot(
        &mut self,
        ids: &[AuctionId],
        from: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<LogEntry>, EngineError> {
        let keys: Vec<String> = ids
            .iter()
            .map(|id| self.engine.inner.core.keys.log(id))
            .collect();
        let starts = vec![from; keys.len()];
        let mut opts = StreamReadOptions::default()
            .group(DRAIN_GROUP, &self.consumer)
            .count(count);
        if let Some(b) = block {
            opts = opts.block(b.as_millis().max(1) as usize);
        }
        let reply: Result<Option<StreamReadReply>, _> =
            self.blocking.xread_options(&keys, &starts, &opts).await;
        let reply = match reply {
            Ok(r) => r,
            Err(e) if e.code() == Some("NOGROUP") => {
                self.ensure_groups(ids).await?;
                return Ok(Vec::new());
            }
            Err(e) => return Err(map_err(e)),
        };
        let mut out = Vec::new();
        let mut failures = ReadFailures::default();
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            let Some(auction) = self.engine.inner.core.keys.auction_of_log(&key.key) else {
                continue;
            };
            for entry in &key.ids {
                out.push(self.decode(&auction, entry, &mut failures).await);
            }
        }
        Ok(out)
    }

    /// Entries other drainers have held for at least `min_idle` (a dead drainer's batch).
    pub async fn claim_stale(
        &mut self,
        ids: &[AuctionId],
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<LogEntry>, EngineError> {
        let mut out = Vec::new();
        let idle = min_idle.as_millis() as u64;
        for chunk in ids.chunks(200) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.cmd("XAUTOCLAIM")
                    .arg(self.engine.inner.core.keys.log(id))
                    .arg(DRAIN_GROUP)
                    .arg(&self.consumer)
                    .arg(idle)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(count);
            }
            let replies: Result<Vec<redis::streams::StreamAutoClaimReply>, _> =
                pipe.query_async(&mut self.blocking).await;
            let replies = match replies {
                Ok(r) => r,
                Err(e) if e.code() == Some("NOGROUP") => {
                    self.ensure_groups(chunk).await?;
                    continue;
                }
                Err(e) => return Err(map_err(e)),
            };
            let mut failures = ReadFailures::default();
            for (id, reply) in chunk.iter().zip(replies) {
                if !reply.claimed.is_empty() {
                    tracing::info!(auction = %id, entries = reply.claimed.len(), consumer = %self.consumer, "claimed change-log entries of an idle drainer");
                    metrics::counter!("gavel_drainer_claimed_total")
                        .increment(reply.claimed.len() as u64);
                }
                for entry in &reply.claimed {
                    out.push(self.decode(id, entry, &mut failures).await);
                }
            }
        }
        Ok(out)
    }

    async fn decode(
        &self,
        auction: &AuctionId,
        entry: &StreamId,
        failures: &mut ReadFailures,
    ) -> LogEntry {
        LogEntry {
            auction: auction.clone(),
            entry_id: entry.id.clone(),
            change: self.decode_change(auction, entry, failures).await,
        }
    }

    async fn decode_change(
        &self,
        auction: &AuctionId,
        entry: &StreamId,
        failures: &mut ReadFailures,
    ) -> Result<ArchivedChange, DecodeError> {
        let undecodable = |e: super::wire::WireError| DecodeError::Undecodable(e.to_string());
        let json =
            field_c(entry).ok_or_else(|| DecodeError::Undecodable("no change field `c`".into()))?;
        let wire = super::WireChange::parse(&json).map_err(undecodable)?;
        let id = &wire.id;
        if id != auction {
            return Err(DecodeError::Undecodable(format!(
                "a change of auction {id} in the log of {auction}"
            )));
        }
        if let Some(e) = failures.all.as_ref().or(failures.by_auction.get(auction)) {
            return Err(DecodeError::Transient(e.clone()));
        }
        let spec = match self.engine.inner.core.spec(auction).await {
            Ok(Some(spec)) => spec,
            Ok(None) => {
                let e = EngineError::Internal(Cause::msg(format!(
                    "the spec of auction {auction} is missing from Redis"
                )));
                failures.by_auction.insert(auction.clone(), e.clone());
                return Err(DecodeError::Transient(e));
            }
            Err(e) => {
                if matches!(e, EngineError::Internal(_)) {
                    failures.by_auction.insert(auction.clone(), e.clone());
                } else {
                    failures.all = Some(e.clone());
                }
                return Err(DecodeError::Transient(e));
            }
        };
        let d = wire.decode(&spec);
        Ok(ArchivedChange {
            auction: d.change.auction,
            event: d.change.event,
            bid_id: d.bid_id,
            request_id: d.request_id,
        })
    }

    /// Creates missing consumer groups (a registered auction whose create is still in
    /// flight) and forgets auctions registered long ago that were never created.
    async fn ensure_groups(&mut self, ids: &[AuctionId]) -> Result<(), EngineError> {
        let i = &self.engine.inner.core;
        let mut cmd = i.cmd.clone();
        for id in ids {
            let (exists, log_exists): (bool, bool) = redis::pipe()
                .exists(i.keys.hash(id))
                .exists(i.keys.log(id))
                .query_async(&mut cmd)
                .await
                .map_err(map_err)?;
            if exists && log_exists {
                let created: Result<(), _> = cmd
                    .xgroup_create_mkstream(i.keys.log(id), DRAIN_GROUP, "0")
                    .await;
                match created {
                    Ok(()) => {}
                    Err(e) if e.code() == Some("BUSYGROUP") => {}
                    Err(e) => return Err(map_err(e)),
                }
                continue;
            }
            if exists {
                continue;
            }
            let registered: Option<f64> = cmd
                .zscore(i.keys.active(), id.as_str())
                .await
                .map_err(map_err)?;
            if registered.is_none_or(|at| (at as i64) < super::wall_ms() - GHOST_AFTER_MS) {
                tracing::warn!(auction = %id, "forgetting an auction registered but never created");
                let _: () = redis::pipe()
                    .zrem(i.keys.active(), id.as_str())
                    .zrem(i.keys.auctions(), id.as_str())
                    .zrem(i.keys.deadlines(), id.as_str())
                    .query_async(&mut cmd)
                    .await
                    .map_err(map_err)?;
            }
        }
        Ok(())
    }

    /// Acknowledges stored entries, trims what every drainer has acknowledged, and, for a
    /// closed auction whose log is then empty (fully archived), schedules its retirement
    /// and drops it from the active set.
    pub async fn ack(&mut self, entries: &[LogEntry]) -> Result<(), EngineError> {
        if entries.is_empty() {
            return Ok(());
        }
        let i = &self.engine.inner.core;
        let mut by_auction: Vec<(&AuctionId, Vec<&str>)> = Vec::new();
        for e in entries {
            match by_auction.iter_mut().find(|(a, _)| *a == &e.auction) {
                Some((_, ids)) => ids.push(&e.entry_id),
                None => by_auction.push((&e.auction, vec![&e.entry_id])),
            }
        }
        let mut cmd = i.cmd.clone();
        let mut pipe = redis::pipe();
        for (auction, ids) in &by_auction {
            pipe.xack(i.keys.log(auction), DRAIN_GROUP, ids).ignore();
        }
        let _: () = pipe.query_async(&mut cmd).await.map_err(map_err)?;
        for (auction, _) in &by_auction {
            self.trim(auction).await?;
        }
        Ok(())
    }

    /// Trims an auction's log; if that leaves a final auction's log empty, everything up
    /// to and including its close is archived: it is scheduled to leave Redis after its
    /// retention (`retire.rs`), then leaves the active set (in that order: if scheduling
    /// fails, it stays in the active set and [`settle`](Self::settle) tries again).
    async fn trim(&self, auction: &AuctionId) -> Result<(), EngineError> {
        let i = &self.engine.inner.core;
        let mut cmd = i.cmd.clone();
        let (_trimmed, _left, done): (i64, i64, i64) = i
            .trim
            .key(i.keys.log(auction))
            .key(i.keys.hash(auction))
            .arg(DRAIN_GROUP)
            .invoke_async(&mut cmd)
            .await
            .map_err(map_err)?;
        if done == 1 {
            self.engine.schedule_retirement(auction).await?;
            let _: () = cmd
                .zrem(i.keys.active(), auction.as_str())
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }

    /// Finishes the active auctions that are final with an empty log but were left in the
    /// active set (an acknowledgement whose follow-up failed, a node that died between the
    /// two): two pipelined reads per auction, the trim only for those.
    pub async fn settle(&self, ids: &[AuctionId]) -> Result<(), EngineError> {
        let i = &self.engine.inner.core;
        for chunk in ids.chunks(500) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.hget(i.keys.hash(id), "final").xlen(i.keys.log(id));
            }
            let rows: Vec<(Option<String>, i64)> = pipe
                .query_async(&mut i.cmd.clone())
                .await
                .map_err(map_err)?;
            for (id, (final_, len)) in chunk.iter().zip(rows) {
                if final_.as_deref() == Some("1") && len == 0 {
                    self.trim(id).await?;
                }
            }
        }
        Ok(())
    }
}
