//! What every part of the Redis engine shares: connections, key names, the scripts, the
//! authority clock, and this node's copies of auction specs and states.
//!
//! The state copies are what decisions are made on. They are trusted (a node is part of
//! the authority) and kept fresh from this node's own commits, from every commit script
//! refusal (which returns the current state), and from the change feed; they only ever
//! move forward by `seq`. A stale copy costs a refused commit and a second decision, never
//! a wrong one: the commit script compares `seq`.

use super::authority::AuthorityClock;
use super::conn::{Conn, Target};
use super::keys::Keys;
use super::wire::{self, DecodedChange, WireChange};
use super::{map_err, RedisConfig};
use crate::{Cause, EngineError};
use gavel_core::{Auction, AuctionId, AuctionSpec, Millis};
use parking_lot::{Mutex, RwLock};
use redis::{AsyncCommands, Script};
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;

/// Specs cached per node (they never change); the cache is cleared when it grows past this.
const SPEC_CACHE: usize = 100_000;
/// How long creating or watching an auction waits for the sharded feed to subscribe.
const FOLLOW_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// Auction states cached per committer shard; cleared when it grows past this.
const STATE_CACHE: usize = 50_000;

/// An auction as this node last saw it, and its clock (the time of its last decision, or
/// the latest `TIME` a script saw for it).
#[derive(Clone, Debug)]
pub(super) struct Cached {
    pub auction: Auction,
    /// The state's version (what a commit on it expects).
    pub v: String,
    pub t: Millis,
}

pub(crate) struct Core {
    /// One server or a cluster, chosen at start-up (`conn.rs`).
    pub target: Target,
    /// Reads, index writes and the drainer's commands.
    pub cmd: Conn,
    /// Commit pipelines only, so a large read never queues in front of a bid.
    pub commits: Conn,
    pub keys: Keys,
    pub commit: Script,
    pub trim: Script,
    pub clock: AuthorityClock,
    pub config: RedisConfig,
    specs: RwLock<HashMap<AuctionId, Arc<AuctionSpec>>>,
    states: Vec<Mutex<HashMap<AuctionId, Cached>>>,
    hasher: std::collections::hash_map::RandomState,
    /// Auctions this node's watchers asked for (resynced after a Pub/Sub reconnect).
    pub watched: Mutex<HashSet<AuctionId>>,
    /// Auctions to follow at once on a Redis Cluster (created or watched here), taken by
    /// the sharded feed (`shard_feed.rs`), which `follow_nudge` wakes.
    follow: Mutex<Vec<(AuctionId, tokio::sync::oneshot::Sender<()>)>>,
    pub follow_nudge: tokio::sync::Notify,
    /// Where a retired auction is read from (see `retire.rs`); `None`: nothing is retired.
    pub archive: Option<Arc<dyn gavel_archive::Archive>>,
    /// When this node last looked for auctions to retire (wall ms).
    pub retire_checked: std::sync::atomic::AtomicI64,
    /// True while a retirement task of this node runs.
    pub retiring: std::sync::atomic::AtomicBool,
    /// Random per process: versions from different nodes never collide.
    node_tag: String,
    versions: std::sync::atomic::AtomicU64,
}

impl Core {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        target: Target,
        cmd: Conn,
        commits: Conn,
        keys: Keys,
        clock: AuthorityClock,
        config: RedisConfig,
        shards: usize,
        archive: Option<Arc<dyn gavel_archive::Archive>>,
    ) -> Self {
        Core {
            target,
            cmd,
            commits,
            keys,
            commit: Script::new(super::commit::COMMIT_LUA),
            trim: Script::new(super::commit::TRIM_LUA),
            clock,
            config,
            specs: RwLock::new(HashMap::new()),
            states: (0..shards.max(1))
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            hasher: Default::default(),
            watched: Mutex::new(HashSet::new()),
            follow: Mutex::new(Vec::new()),
            follow_nudge: tokio::sync::Notify::new(),
            archive,
            retire_checked: std::sync::atomic::AtomicI64::new(i64::MIN),
            retiring: std::sync::atomic::AtomicBool::new(false),
            node_tag: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            versions: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Has the sharded feed follow this auction and waits (at most [`FOLLOW_WAIT`]) until
    /// it is subscribed, so every change committed after this returns reaches the feed.
    /// A no-op on one Redis, whose pattern subscription follows everything.
    pub(super) async fn follow(&self, id: &AuctionId) {
        if !self.target.is_cluster() {
            return;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.follow.lock().push((id.clone(), tx));
        self.follow_nudge.notify_one();
        if tokio::time::timeout(FOLLOW_WAIT, rx).await.is_err() {
            // The feed reads the auction's last change once subscribed: watchers see a
            // gap and resync, nothing is lost.
            tracing::warn!(auction = %id, "the sharded feed did not subscribe in time");
        }
    }

    /// What [`follow`](Self::follow) asked for since the last call.
    pub(super) fn take_follow(&self) -> Vec<(AuctionId, tokio::sync::oneshot::Sender<()>)> {
        std::mem::take(&mut *self.follow.lock())
    }

    /// The committer shard that decides for this auction.
    pub(super) fn shard_of(&self, id: &AuctionId) -> usize {
        (self.hasher.hash_one(id) % self.states.len() as u64) as usize
    }

    pub(super) fn cached(&self, id: &AuctionId) -> Option<Cached> {
        self.states[self.shard_of(id)].lock().get(id).cloned()
    }

    /// Takes a newer state (by `seq`) and a later clock; never moves either back.
    pub(super) fn remember(&self, auction: &Auction, version: &str, t: Millis) {
        let mut states = self.states[self.shard_of(&auction.id)].lock();
        if let Some(c) = states.get_mut(&auction.id) {
            if auction.state.seq > c.auction.state.seq {
                c.auction = auction.clone();
                c.v = version.to_string();
            }
            c.t = c.t.max(t);
            return;
        }
        if states.len() >= STATE_CACHE {
            states.clear();
        }
        states.insert(
            auction.id.clone(),
            Cached {
                auction: auction.clone(),
                v: version.to_string(),
                t,
            },
        );
    }

    /// The auction's clock has reached `t` (a commit that changed nothing).
    pub(super) fn touch(&self, id: &AuctionId, t: Millis) {
        if let Some(c) = self.states[self.shard_of(id)].lock().get_mut(id) {
            c.t = c.t.max(t);
        }
    }

    /// A new state version, unique across nodes.
    pub(super) fn new_version(&self) -> String {
        let n = self
            .versions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}.{n:x}", self.node_tag)
    }

    /// Drops this node's copy (after a call whose outcome is unknown).
    pub(super) fn forget(&self, id: &AuctionId) {
        self.states[self.shard_of(id)].lock().remove(id);
    }

    /// Drops this node's copy of a retired auction's spec.
    pub(super) fn forget_spec(&self, id: &AuctionId) {
        self.specs.write().remove(id);
    }

    /// `closed_retention` in ms.
    pub(super) fn retention_ms(&self) -> Millis {
        i64::try_from(self.config.closed_retention.as_millis()).unwrap_or(i64::MAX)
    }

    pub(super) fn cache_spec(&self, id: &AuctionId, spec: Arc<AuctionSpec>) {
        let mut specs = self.specs.write();
        if specs.len() >= SPEC_CACHE {
            specs.clear();
        }
        specs.insert(id.clone(), spec);
    }

    /// The auction's spec, cached (specs never change).
    pub(super) async fn spec(
        &self,
        id: &AuctionId,
    ) -> Result<Option<Arc<AuctionSpec>>, EngineError> {
        let cached = self.specs.read().get(id).cloned();
        if cached.is_some() {
            return Ok(cached);
        }
        let raw: Option<String> = self
            .cmd
            .clone()
            .hget(self.keys.hash(id), "spec")
            .await
            .map_err(map_err)?;
        let Some(raw) = raw else { return Ok(None) };
        let spec = Arc::new(wire::parse_spec(&raw).map_err(|e| corrupt(id, "spec", e))?);
        self.cache_spec(id, spec.clone());
        Ok(Some(spec))
    }

    /// Decodes a change (the spec comes from the cache or Redis) and keeps its state.
    pub(super) async fn decode_change(
        &self,
        wire: WireChange,
    ) -> Result<DecodedChange, EngineError> {
        let id = wire.id.clone();
        let spec = self.spec(&id).await?.ok_or_else(|| {
            EngineError::Internal(Cause::msg(format!("change of unknown auction {id}")))
        })?;
        let decoded = wire.decode(&spec);
        self.remember(&decoded.change.auction, &decoded.version, decoded.at);
        Ok(decoded)
    }

    /// Reads auctions from Redis into this node's copies: `None` for one that does not
    /// exist, an error for one whose stored data cannot be read.
    pub(super) async fn load(
        &self,
        ids: &[AuctionId],
    ) -> Result<Vec<Result<Option<Cached>, EngineError>>, EngineError> {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HMGET")
                .arg(self.keys.hash(id))
                .arg("spec")
                .arg("last")
                .arg("t");
        }
        let rows: Vec<(Option<String>, Option<String>, Option<String>)> = pipe
            .query_async(&mut self.cmd.clone())
            .await
            .map_err(map_err)?;
        Ok(ids
            .iter()
            .zip(rows)
            .map(|(id, (spec, last, t))| {
                let (Some(spec), Some(last)) = (spec, last) else {
                    return Ok(None);
                };
                let (auction, v) = self.decode_stored(id, &spec, &last)?;
                let t = t.and_then(|t| t.parse().ok()).unwrap_or(0);
                self.remember(&auction, &v, t);
                Ok(Some(Cached { auction, v, t }))
            })
            .collect())
    }

    /// An auction and its version from its stored `spec` and `last` fields.
    pub(super) fn decode_stored(
        &self,
        id: &AuctionId,
        spec: &str,
        last: &str,
    ) -> Result<(Auction, String), EngineError> {
        // A separate statement: the read guard must be gone before `cache_spec` writes.
        let cached = self.specs.read().get(id).cloned();
        let spec = match cached {
            Some(s) => s,
            None => {
                let s = Arc::new(wire::parse_spec(spec).map_err(|e| corrupt(id, "spec", e))?);
                self.cache_spec(id, s.clone());
                s
            }
        };
        let last = WireChange::parse(last).map_err(|e| corrupt(id, "last change", e))?;
        if &last.id != id {
            return Err(corrupt(id, "last change", format!("names {}", last.id)));
        }
        Ok((
            Auction {
                id: id.clone(),
                spec,
                state: last.state,
            },
            last.v,
        ))
    }
}

/// Stored data of an auction that cannot be read: logged by the caller, never a rule.
pub(super) fn corrupt(id: &AuctionId, what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(Cause::msg(format!("stored {what} of auction {id}: {e}")))
}
