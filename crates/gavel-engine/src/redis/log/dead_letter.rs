//! Dead letters: change-log entries a drainer cannot decode, moved out of the way instead
//! of being acknowledged as if archived.
//!
//! Each auction has its own dead-letter stream, `<p>:{<id>}:dead`, beside its log and
//! under the same hash tag, so the move (acknowledge, copy with the reason, delete from the
//! log) is one script in one Cluster slot (`scripts/dead_letter.lua`): an entry is never
//! lost between the two. A single deployment-wide stream would be one place to look, but
//! writing it from the auction's slot is impossible on a Cluster, and two separate steps
//! could lose or duplicate an entry between them. Operators find the streams through the
//! node-wide index `<p>:dead` (auction id → first dead letter, written by Rust before the
//! move, like the other node-wide indexes); `scripts/replay_dead.lua` puts entries back
//! into the log. `docs/distributed.md` says how to inspect and replay them.

use super::{ChangeLog, LogEntry};
use crate::redis::{map_err, DRAIN_GROUP};
use crate::EngineError;
use gavel_core::AuctionId;
use redis::Script;
use std::sync::LazyLock;

static DEAD_LETTER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/dead_letter.lua")));

impl ChangeLog {
    /// Moves `entry` to its auction's dead-letter stream with `reason`. `Ok(false)`: it was
    /// no longer pending (another drainer archived or moved it), nothing was written.
    pub async fn dead_letter(&self, entry: &LogEntry, reason: &str) -> Result<bool, EngineError> {
        let i = &self.engine.inner.core;
        let mut cmd = i.cmd.clone();
        let now = crate::clock::system_now();
        // The index first: a dead letter an operator cannot find would be as bad as a lost one.
        let _: () = redis::cmd("ZADD")
            .arg(i.keys.dead_index())
            .arg("NX")
            .arg(now)
            .arg(entry.auction.as_str())
            .query_async(&mut cmd)
            .await
            .map_err(map_err)?;
        let moved: i64 = DEAD_LETTER
            .key(i.keys.log(&entry.auction))
            .key(i.keys.dead(&entry.auction))
            .arg(DRAIN_GROUP)
            .arg(&entry.entry_id)
            .arg(reason)
            .arg(&self.consumer)
            .arg(now)
            .invoke_async(&mut cmd)
            .await
            .map_err(map_err)?;
        Ok(moved == 1)
    }

    /// Auctions with dead letters (the index; an auction whose dead letters were all
    /// replayed or deleted stays listed until an operator removes it).
    pub async fn dead_lettered(&self) -> Result<Vec<AuctionId>, EngineError> {
        let i = &self.engine.inner.core;
        let raw: Vec<String> = redis::cmd("ZRANGE")
            .arg(i.keys.dead_index())
            .arg(0)
            .arg(-1)
            .query_async(&mut i.cmd.clone())
            .await
            .map_err(map_err)?;
        Ok(raw
            .iter()
            .filter_map(|s| AuctionId::parse(s.as_str()).ok())
            .collect())
    }
}
