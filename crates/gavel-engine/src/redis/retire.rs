//! Retirement: a closed auction's hot state leaves Redis `closed_retention` after it closed,
//! once PostgreSQL holds all of it. Afterwards the engine answers for it from the archive
//! (view, history, `closed` for a new bid, the first answer to a retried accepted request),
//! as the memory engine does after it lets an auction go.
//!
//! Two steps, each safe to repeat and to run on every node at once:
//!
//! 1. **Scheduling**, by the drainer: when an acknowledgement leaves the change log of a
//!    final auction empty (`trim.lua` reports it), every change up to and including its
//!    close is in PostgreSQL. The auction goes into the node-wide index `<p>:retire`,
//!    scored `closed_at + closed_retention` (`ZADD NX`: a redelivery does not move it).
//! 2. **Retiring**, by `advance` (the closer loop of every node, at most once a second):
//!    for each due auction the node reads it from the archive, and only if the archive
//!    holds it closed runs `retire.lua` with the archived `seq`. The script deletes every key
//!    of the auction in one atomic step, and only if Redis agrees: final at that very seq,
//!    empty log, no dead letters. Otherwise the auction is looked at again later (dead
//!    letters wait for an operator; `docs/distributed.md`). Then the node-wide indexes drop
//!    it.
//!
//! A late commit on a retired auction (a retry, a node with an old copy) finds no hash and
//! writes nothing; a creation reusing the id is refused because the archive holds it.
//! Without an archive (`RedisEngine::connect`, the engine's own tests) nothing is retired.

use super::{map_err, RedisEngine};
use crate::{Cause, EngineError};
use gavel_core::{AuctionId, Millis};
use redis::{AsyncCommands, Script};
use std::sync::atomic::Ordering;
use std::sync::LazyLock;

static RETIRE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/retire.lua")));

/// Auctions looked at per read of the index.
const BATCH: isize = 500;
/// How often a node looks for due auctions (ms).
const EVERY_MS: i64 = 1_000;
/// An auction that could not be retired yet (dead letters, not archived) is looked at again
/// this much later (ms).
const RETRY_MS: i64 = 10_000;

/// What `retire.lua` answered.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Retired,
    Gone,
    Wait(String),
}

impl RedisEngine {
    /// Called once a final auction's log is empty: it may leave Redis after its retention.
    /// Does nothing without an archive to answer for it afterwards.
    pub(super) async fn schedule_retirement(&self, id: &AuctionId) -> Result<(), EngineError> {
        let core = self.core();
        if core.archive.is_none() {
            return Ok(());
        }
        let (spec, last): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(core.keys.hash(id))
            .arg("spec")
            .arg("last")
            .query_async(&mut core.cmd.clone())
            .await
            .map_err(map_err)?;
        let (Some(spec), Some(last)) = (spec, last) else {
            return Ok(()); // retired already
        };
        let (auction, _) = core.decode_stored(id, &spec, &last)?;
        let Some(closing) = auction.state.closing else {
            return Ok(());
        };
        let at = closing.closed_at.saturating_add(core.retention_ms());
        let _: () = redis::cmd("ZADD")
            .arg(core.keys.retire())
            .arg("NX")
            .arg(at)
            .arg(id.as_str())
            .query_async(&mut core.cmd.clone())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// Starts retiring the auctions whose retention has passed at `now`, in a task of its
    /// own (so the closer is never held up), at most once a second per node and never two
    /// at once.
    pub(super) fn spawn_retirement(&self, now: Millis) {
        let core = self.core();
        if core.archive.is_none() {
            return;
        }
        let wall = crate::clock::system_now();
        let last = core.retire_checked.load(Ordering::Relaxed);
        if wall < last.saturating_add(EVERY_MS) || core.retiring.swap(true, Ordering::AcqRel) {
            return;
        }
        core.retire_checked.store(wall, Ordering::Relaxed);
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                match engine.retire_due(now).await {
                    Ok((_, more)) if more => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not retire closed auctions; trying again later");
                        break;
                    }
                }
            }
            engine.core().retiring.store(false, Ordering::Release);
        });
    }

    /// Retires up to one batch of the auctions whose retention has passed at `now`.
    /// Returns how many left Redis, and whether a full batch was due (more may be).
    async fn retire_due(&self, now: Millis) -> Result<(usize, bool), EngineError> {
        let core = self.core();
        let Some(archive) = core.archive.clone() else {
            return Ok((0, false));
        };
        let mut cmd = core.cmd.clone();
        let due: Vec<String> = cmd
            .zrangebyscore_limit(core.keys.retire(), "-inf", now, 0, BATCH)
            .await
            .map_err(map_err)?;
        let more = due.len() == BATCH as usize;
        let mut retired = 0;
        for raw in due {
            let Ok(id) = AuctionId::parse(raw.as_str()) else {
                let _: () = cmd.zrem(core.keys.retire(), &raw).await.map_err(map_err)?;
                continue;
            };
            let archived = archive
                .auction(&id)
                .await
                .map_err(|e| EngineError::Unavailable(Cause::new("archive", e)))?;
            let seq = match &archived {
                Some(a) if a.state.closing.is_some() => a.state.seq.to_string(),
                _ => String::new(),
            };
            match self.run_retire(&id, &seq).await? {
                Outcome::Retired | Outcome::Gone => {
                    self.forget_retired(&id).await?;
                    retired += 1;
                }
                Outcome::Wait(why) => {
                    tracing::debug!(auction = %id, %why, "a closed auction cannot leave Redis yet");
                    let _: () = redis::cmd("ZADD")
                        .arg(core.keys.retire())
                        .arg("XX")
                        .arg(now.saturating_add(RETRY_MS))
                        .arg(id.as_str())
                        .query_async(&mut cmd)
                        .await
                        .map_err(map_err)?;
                }
            }
        }
        if retired > 0 {
            tracing::debug!(retired, "closed auctions left Redis after their retention");
            metrics::counter!("gavel_redis_retired_total").increment(retired as u64);
        }
        Ok((retired, more))
    }

    async fn run_retire(&self, id: &AuctionId, seq: &str) -> Result<Outcome, EngineError> {
        let core = self.core();
        let out: String = RETIRE
            .key(core.keys.hash(id))
            .key(core.keys.log(id))
            .key(core.keys.recent(id))
            .key(core.keys.dead(id))
            .key(core.keys.reqs(id))
            .arg(seq)
            .invoke_async(&mut core.cmd.clone())
            .await
            .map_err(map_err)?;
        Ok(match out.as_str() {
            "retired" => Outcome::Retired,
            "gone" => Outcome::Gone,
            _ => Outcome::Wait(out),
        })
    }

    /// Drops a retired auction from the node-wide indexes and this node's copies.
    async fn forget_retired(&self, id: &AuctionId) -> Result<(), EngineError> {
        let core = self.core();
        let _: () = redis::pipe()
            .zrem(core.keys.retire(), id.as_str())
            .zrem(core.keys.live(), id.as_str())
            .zrem(core.keys.deadlines(), id.as_str())
            .zrem(core.keys.active(), id.as_str())
            .zrem(core.keys.auctions(), id.as_str())
            .query_async(&mut core.cmd.clone())
            .await
            .map_err(map_err)?;
        core.forget(id);
        core.forget_spec(id);
        Ok(())
    }
}
