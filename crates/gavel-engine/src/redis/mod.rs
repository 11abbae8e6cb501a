//! The Redis engine: distributed mode's authority. Any number of nodes share one Redis.
//!
//! **Decide in Rust, commit in one script.** A node decides every operation (a bid with its
//! proxy steps and soft-close extension, buy-now, opening and closing, admin actions,
//! creation) with the same pure rules as the memory engine (`gavel_core::rules`), on its own
//! copy of the auction, then commits the decision with `scripts/commit.lua`: a generic
//! compare-and-swap that checks the auction's version and the authority's clock and, if both
//! hold, writes the new state, appends the change to the auction's change log (a stream
//! drained into PostgreSQL), pushes the history entry, records the reply under the
//! request's idempotency key and publishes the change, in one atomic step. If something
//! moved it writes nothing and returns the current state and clock, and the node decides
//! again. No auction rule is written in Lua (`tests/redis_scripts.rs` keeps it that way).
//!
//! Time: the authority is Redis `TIME`, made monotonic per auction (`max(TIME, t)`, `t`
//! being the auction's last clock). A change's linearization point is the script's
//! execution and its time is that clock: the node sends, with its decision, the interval
//! of clocks in which the decision holds and marks the numbers that move with the clock
//! (`guard.rs`); the script refuses a clock outside the interval and writes its clock in.
//! A decision made just before an auction's end that reaches Redis after it is refused
//! and decided again, as `closed`.
//!
//! A reply is released when the script has returned. A call cut mid-way has an unknown
//! outcome; the idempotency record makes a retry with the same request id safe, on any
//! node. Scripts run with `EVALSHA` and are loaded again on `NOSCRIPT` (a restart,
//! failover or `SCRIPT FLUSH`).
//!
//! Layout: `keys.rs` (per-auction keys under one hash tag), `wire.rs` (what is stored and
//! published), `commit.rs` (one call of the script), `committer.rs` (deciding and
//! committing, batched per shard), `guard.rs` (where a decision holds in time, and the
//! clock markers), `core.rs` (what the parts share, this node's copies of the auctions),
//! `authority.rs` (the node's estimate of the clock), `feed.rs` (one Pub/Sub pattern
//! subscription per node), `log.rs` (what the drainer reads), `retire.rs` (closed,
//! archived auctions leaving Redis after `closed_retention`).
//!
//! Bounded state: a closed auction's keys leave Redis once PostgreSQL holds all of it and
//! its retention has passed (`retire.rs`); it is then answered from the archive, as the
//! memory engine answers for the auctions it let go. Listings page through `<p>:live`
//! (live auctions by end time), kept by every commit that moves an end time or closes an
//! auction, never a walk over every auction. This node's set of watched auctions shrinks
//! when the fan-out drops a room (`Engine::unwatch`).

mod authority;
mod commit;
mod committer;
pub mod conn;
mod core;
pub mod eviction;
mod feed;
mod guard;
pub mod keys;
pub mod log;
mod retire;
mod shard_feed;
pub mod wire;

pub use keys::{Keys, DRAIN_GROUP};
pub use log::{ChangeLog, LogEntry};

use self::core::Core;
use crate::{AdminAction, BidReply, Cause, ChangeFeed, ChangeNotice, Clock, Engine, EngineError};
use async_trait::async_trait;
use authority::{AuthorityClock, Source};
use commit::{CallSettings, Commit, NewState, ScriptReply, RECENT};
use committer::{Done, Job, Op};
use gavel_core::{
    Auction, AuctionId, BidEntry, BidRequest, BidderId, Change, Event, Millis, Rejection, RequestId,
};
use parking_lot::Mutex;
use redis::{AsyncCommands, RedisError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use wire::WireChange;

/// Settings of the Redis engine.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// `redis://host:port/db` (or `rediss://`). A Redis Cluster node is detected (`INFO
    /// cluster`) and used as the cluster's seed.
    pub url: String,
    /// Seeds of a Redis Cluster (`redis://host:port` each); when not empty they are used
    /// instead of `url` and the deployment is a cluster (see `conn.rs`).
    pub cluster_seeds: Vec<String>,
    /// Prefix of every key and channel (see [`Keys`]); deployments sharing a Redis use
    /// different prefixes, and so does every test.
    pub prefix: String,
    /// Tests only: decide with this clock instead of Redis `TIME` (its time is passed to the
    /// commit script, which then uses it instead of `TIME`). Production leaves it `None`.
    pub test_clock: Option<Clock>,
    /// Tests only: this node *believes* the time is this clock's, while the commit script
    /// still reads the real `TIME` (a node deciding just before a boundary with a clock
    /// that is off). Production leaves it `None`.
    pub estimate_clock: Option<Clock>,
    /// How long a command may take before the call is answered `unavailable`.
    pub response_timeout: Duration,
    /// How long a request's first reply is kept for repeats.
    pub request_ttl: Duration,
    /// Committer shards: each has at most one pipeline of commits in flight.
    pub shards: usize,
    /// Start even if Redis's `maxmemory-policy` may evict Gavel's keys (see `eviction.rs`).
    pub allow_eviction: bool,
    /// How long a closed auction's keys stay in Redis after it closed, once archived (see
    /// `retire.rs`; only with an archive, [`RedisEngine::connect_with_archive`]).
    pub closed_retention: Duration,
}

impl RedisConfig {
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            cluster_seeds: Vec::new(),
            prefix: prefix.into(),
            test_clock: None,
            estimate_clock: None,
            response_timeout: Duration::from_secs(5),
            request_ttl: Duration::from_secs(24 * 3600),
            shards: 4,
            allow_eviction: false,
            closed_retention: Duration::from_secs(24 * 3600),
        }
    }
}

/// Capacity of the change feed to the node's fan-out.
const CHANGE_FEED: usize = 16_384;
/// Jobs waiting per committer shard.
const SHARD_QUEUE: usize = 8_192;
/// How often this node's estimate of Redis `TIME` is refreshed when no commit does it.
const CLOCK_SYNC: Duration = Duration::from_secs(30);
/// Auctions `advance` acts on per call.
const ADVANCE_BATCH: isize = 1000;
/// An auction registered this long ago whose hash does not exist was never created.
const GHOST_AFTER_MS: i64 = 60_000;

pub(crate) struct Inner {
    core: Arc<Core>,
    shards: Vec<mpsc::Sender<Job>>,
    changes_rx: Mutex<Option<ChangeFeed>>,
    shutdown: watch::Sender<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Stops the Pub/Sub and clock tasks; the shards stop when their senders go.
        let _ = self.shutdown.send(true);
    }
}

/// The distributed-mode engine. Cheap to clone.
#[derive(Clone)]
pub struct RedisEngine {
    inner: Arc<Inner>,
}

/// A failed read or a call that changes nothing. Connection trouble (or a busy, loading or
/// read-only server) is `unavailable`; anything else (a script error, an unexpected reply)
/// is a bug.
pub(crate) fn map_err(e: RedisError) -> EngineError {
    if is_refusal_by_redis(&e) {
        tracing::error!(error = %e, "Redis refused a Gavel command");
        EngineError::Internal(Cause::new("redis", e))
    } else {
        EngineError::Unavailable(Cause::new("redis", e))
    }
}

/// A failed call that may have changed state (a commit). Only an error that proves the
/// script never ran (the connection was refused, or Redis answered with an error before
/// running it) means nothing was decided; a call lost mid-way (timeout, dropped
/// connection) may have been executed: its outcome is unknown.
pub(crate) fn map_write_err(e: RedisError) -> EngineError {
    if is_refusal_by_redis(&e) {
        return map_err(e);
    }
    let never_sent = e.is_connection_refusal()
        || matches!(
            e.kind(),
            redis::ErrorKind::Server(_) | redis::ErrorKind::Extension
        );
    if never_sent {
        EngineError::Unavailable(Cause::new("redis", e))
    } else {
        EngineError::OutcomeUnknown(Cause::new("redis", e))
    }
}

fn is_refusal_by_redis(e: &RedisError) -> bool {
    matches!(e.code(), Some("ERR") | Some("NOPERM") | Some("WRONGTYPE"))
        || matches!(
            e.kind(),
            redis::ErrorKind::Parse | redis::ErrorKind::UnexpectedReturnType
        )
}

fn internal(e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(Cause::msg(e.to_string()))
}

async fn connection(
    target: &conn::Target,
    response_timeout: Option<Duration>,
) -> Result<conn::Conn, EngineError> {
    target.connect(response_timeout).await.map_err(map_err)
}

impl RedisEngine {
    /// Connects, starts the committers and the Pub/Sub feed and waits until it is
    /// subscribed, so every change committed after this returns reaches
    /// [`Engine::take_changes`].
    pub async fn connect(config: RedisConfig) -> Result<Self, EngineError> {
        Self::start(config, None).await
    }

    /// As [`connect`](Self::connect), with the archive the drainer writes to: closed,
    /// archived auctions then leave Redis after `closed_retention` and are answered from
    /// it (see `retire.rs`).
    pub async fn connect_with_archive(
        config: RedisConfig,
        archive: Arc<dyn gavel_archive::Archive>,
    ) -> Result<Self, EngineError> {
        Self::start(config, Some(archive)).await
    }

    async fn start(
        config: RedisConfig,
        archive: Option<Arc<dyn gavel_archive::Archive>>,
    ) -> Result<Self, EngineError> {
        let keys = Keys::new(&config.prefix).map_err(internal)?;
        redis::Client::open(config.url.as_str())
            .map_err(|e| EngineError::Internal(Cause::msg(format!("invalid Redis URL: {e}"))))?;
        let target = conn::Target::detect(&config.url, &config.cluster_seeds)
            .await
            .map_err(map_err)?;
        let cmd = connection(&target, Some(config.response_timeout)).await?;
        eviction::check(&cmd, config.allow_eviction).await?;
        let commits = connection(&target, Some(config.response_timeout)).await?;
        let source = match (&config.test_clock, &config.estimate_clock) {
            (Some(c), _) => Source::Test(c.clone()),
            (None, Some(c)) => Source::Pinned(c.clone()),
            (None, None) => Source::Redis,
        };
        let clock = AuthorityClock::new(source);
        let shards = config.shards.max(1);
        let core = Arc::new(Core::new(
            target, cmd, commits, keys, clock, config, shards, archive,
        ));
        sync_clock(&core).await?;
        let senders = (0..shards)
            .map(|_| {
                let (tx, rx) = mpsc::channel(SHARD_QUEUE);
                tokio::spawn(committer::run(core.clone(), rx));
                tx
            })
            .collect();
        let (tx, rx) = mpsc::channel(CHANGE_FEED);
        let (shutdown, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            core: core.clone(),
            shards: senders,
            changes_rx: Mutex::new(Some(rx)),
            shutdown,
        });
        tokio::spawn(clock_sync(core.clone(), inner.shutdown.subscribe()));
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::spawn(feed::run(
            core.clone(),
            tx,
            inner.shutdown.subscribe(),
            ready_tx,
        ));
        match tokio::time::timeout(Duration::from_secs(10), ready_rx).await {
            Ok(Ok(())) => {}
            _ => {
                return Err(EngineError::Unavailable(Cause::msg(
                    "could not subscribe to Redis Pub/Sub",
                )))
            }
        }
        tracing::info!(
            prefix = %core.keys.prefix(),
            cluster = core.target.is_cluster(),
            "Redis engine connected"
        );
        Ok(RedisEngine { inner })
    }

    fn core(&self) -> &Core {
        &self.inner.core
    }

    /// The key layout this engine uses.
    pub fn keys(&self) -> &Keys {
        &self.core().keys
    }

    /// A reader of the change logs for this node's drainer (its own connection).
    pub async fn change_log(&self, consumer: &str) -> Result<ChangeLog, EngineError> {
        ChangeLog::open(self.clone(), consumer).await
    }

    /// History entries still in the auction's change log (not yet archived, or archived
    /// and not yet trimmed), newest first, with `seq < before_seq`. Merged with the
    /// archive's history, this gives the full history without waiting for the drainer.
    pub async fn logged_bids(
        &self,
        id: &AuctionId,
        before_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<BidEntry>, EngineError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut end = "+".to_string();
        let mut cmd = self.core().cmd.clone();
        // Walk back through the log in pages; most entries of a busy log are bids.
        loop {
            let page: redis::streams::StreamRangeReply = cmd
                .xrevrange_count(self.core().keys.log(id), &end, "-", 200)
                .await
                .map_err(map_err)?;
            let n = page.ids.len();
            for entry in &page.ids {
                end = format!("({}", entry.id);
                let Some(json) = log::field_c(entry) else {
                    continue;
                };
                let change = WireChange::parse(&json).map_err(internal)?;
                if let Event::Bid { entry, .. } = change.event {
                    if before_seq.is_none_or(|b| entry.seq < b) {
                        out.push(entry);
                        if out.len() >= limit {
                            return Ok(out);
                        }
                    }
                }
            }
            if n < 200 {
                return Ok(out);
            }
        }
    }

    /// Hands an operation to the committer shard of its auction and waits for the answer.
    async fn submit(&self, id: &AuctionId, op: Op) -> Result<Done, EngineError> {
        let (tx, rx) = oneshot::channel();
        let shard = &self.inner.shards[self.core().shard_of(id)];
        shard
            .try_send(Job {
                id: id.clone(),
                op,
                tx,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => {
                    EngineError::Unavailable(Cause::msg("too many decisions are waiting for Redis"))
                }
                mpsc::error::TrySendError::Closed(_) => {
                    EngineError::Unavailable(Cause::msg("the engine is shutting down"))
                }
            })?;
        rx.await
            .map_err(|_| EngineError::Internal(Cause::msg("committer dropped a decision")))?
    }

    /// Keeps the deadline index right after a decision told us an auction's next deadline
    /// (`None` when it has none left). Deadlines only move later, hence `GT`.
    async fn set_deadline(&self, id: &AuctionId, next: Option<Millis>) -> Result<(), EngineError> {
        let core = self.core();
        let mut cmd = core.cmd.clone();
        match next {
            None => cmd
                .zrem::<_, _, ()>(core.keys.deadlines(), id.as_str())
                .await
                .map_err(map_err),
            Some(at) => redis::cmd("ZADD")
                .arg(core.keys.deadlines())
                .arg("XX")
                .arg("GT")
                .arg(at)
                .arg(id.as_str())
                .query_async::<()>(&mut cmd)
                .await
                .map_err(map_err),
        }
    }

    /// Keeps the live index right after a commit: a closed auction leaves it, a moved end
    /// time moves it (`XX`: an auction that left is never put back; `GT`: ends only move
    /// later, so a repeat's older state cannot move it back).
    async fn index_live(&self, auction: &Auction) -> Result<(), EngineError> {
        let core = self.core();
        let mut cmd = core.cmd.clone();
        if auction.state.closing.is_some() {
            cmd.zrem::<_, _, ()>(core.keys.live(), auction.id.as_str())
                .await
                .map_err(map_err)
        } else {
            redis::cmd("ZADD")
                .arg(core.keys.live())
                .arg("XX")
                .arg("GT")
                .arg(auction.state.ends_at)
                .arg(auction.id.as_str())
                .query_async::<()>(&mut cmd)
                .await
                .map_err(map_err)
        }
    }

    /// A closed auction no longer in Redis (retired after its retention), from the archive;
    /// `None` when the archive does not know it either (or there is no archive).
    async fn archived(&self, id: &AuctionId) -> Result<Option<Auction>, EngineError> {
        let Some(archive) = &self.core().archive else {
            return Ok(None);
        };
        match archive.auction(id).await.map_err(storage)? {
            Some(a) if a.state.closing.is_none() => Err(EngineError::Internal(Cause::msg(
                format!("auction {id} is open in the archive but not in Redis"),
            ))),
            other => Ok(other),
        }
    }

    /// Whether the auction's hash is in Redis.
    async fn in_redis(&self, id: &AuctionId) -> Result<bool, EngineError> {
        let core = self.core();
        core.cmd
            .clone()
            .exists(core.keys.hash(id))
            .await
            .map_err(map_err)
    }

    /// A bid on a retired auction: the first answer if the request was accepted (the
    /// archive's stored reply), otherwise `closed`, as the memory engine answers.
    async fn bid_archived(
        &self,
        id: &AuctionId,
        request_id: &RequestId,
        req: &BidRequest,
    ) -> Result<BidReply, EngineError> {
        let auction = self.archived(id).await?.ok_or(EngineError::NotFound)?;
        let archive = self.core().archive.as_ref().ok_or(EngineError::NotFound)?;
        let stored = archive
            .reply(id, &req.bidder.id, request_id)
            .await
            .map_err(storage)?;
        Ok(match stored {
            Some(stored) => archived_reply(auction, stored.state),
            None => BidReply {
                outcome: Err(Rejection::Closed),
                auction: crate::as_seen_by(auction, &req.bidder.id),
            },
        })
    }

    /// An auction registered in the indexes whose creation never completed: dropped from
    /// the deadline index once it is old enough that its create cannot still be running.
    async fn forget_ghost(&self, id: &AuctionId) -> Result<(), EngineError> {
        let core = self.core();
        let registered: Option<f64> = core
            .cmd
            .clone()
            .zscore(core.keys.auctions(), id.as_str())
            .await
            .map_err(map_err)?;
        if registered.is_none_or(|at| (at as i64) < wall_ms() - GHOST_AFTER_MS) {
            self.set_deadline(id, None).await?;
            let _: () = core
                .cmd
                .clone()
                .zrem(core.keys.live(), id.as_str())
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }
}

fn wall_ms() -> Millis {
    crate::clock::system_now()
}

fn storage(e: gavel_archive::ArchiveError) -> EngineError {
    EngineError::Unavailable(Cause::new("archive", e))
}

/// The first answer to an accepted request, from the state the archive stored with it (the
/// requester led then: a maximum in it is their own).
fn archived_reply(current: Auction, state: gavel_core::AuctionState) -> BidReply {
    BidReply {
        outcome: Ok(()),
        auction: Auction { state, ..current },
    }
}

/// Live auctions read from the index per round of `list_live`.
const LIVE_READ: usize = 100;

/// Reads Redis `TIME` into the authority clock's estimate.
async fn sync_clock(core: &Core) -> Result<(), EngineError> {
    if !core.clock.learns() {
        return Ok(());
    }
    let (secs, micros): (i64, i64) = redis::cmd("TIME")
        .query_async(&mut core.cmd.clone())
        .await
        .map_err(map_err)?;
    core.clock
        .reset(Instant::now(), secs * 1000 + micros / 1000);
    Ok(())
}

/// Refreshes the estimate of Redis's clock now and then, while the engine lives.
async fn clock_sync(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CLOCK_SYNC) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = sync_clock(&core).await {
            tracing::debug!(error = %e, "could not read Redis TIME");
        }
    }
}

#[async_trait]
impl Engine for RedisEngine {
    async fn create_auction(&self, auction: Auction) -> Result<Auction, EngineError> {
        let core = self.core();
        let id = &auction.id;
        // A retired auction's id stays taken: the archive still answers for it.
        if let Some(archive) = &core.archive {
            if archive.auction(id).await.map_err(storage)?.is_some() {
                return Err(EngineError::AlreadyExists(auction.id));
            }
        }
        let spec = serde_json::to_string(&*auction.spec).map_err(internal)?;
        // Register in the node-wide indexes first (a script may only touch the auction's
        // own slot): an entry for an auction that then fails to be created is skipped and
        // cleaned up; an auction missing from them would never close or be archived.
        let now = wall_ms();
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD")
            .arg(core.keys.auctions())
            .arg("NX")
            .arg(now)
            .arg(id.as_str())
            .ignore();
        pipe.cmd("ZADD")
            .arg(core.keys.active())
            .arg("NX")
            .arg(now)
            .arg(id.as_str())
            .ignore();
        if auction.state.closing.is_none() {
            // Before the auction exists, like the other indexes: an entry whose creation
            // failed (or that names an existing closed auction) is skipped by listings and
            // dropped lazily.
            pipe.cmd("ZADD")
                .arg(core.keys.live())
                .arg("NX")
                .arg(auction.state.ends_at)
                .arg(id.as_str())
                .ignore();
        }
        if let Some(at) = committer::deadline_of(&auction) {
            pipe.cmd("ZADD")
                .arg(core.keys.deadlines())
                .arg("NX")
                .arg(at)
                .arg(id.as_str())
                .ignore();
        }
        let _: () = pipe
            .query_async(&mut core.cmd.clone())
            .await
            .map_err(map_err)?;
        // The first log entry's time is the commit's clock, like every other time in the
        // change: sealed at two instants, it becomes a template like them.
        let created_at = |at: Millis| {
            let mut auction = auction.clone();
            gavel_core::chain::seal_created(&mut auction, at);
            Change {
                auction,
                event: Event::Created,
            }
        };
        // On a cluster, this node's feed subscribes to the new auction's channel now.
        core.follow(id).await;
        let script_now = core.clock.script_now();
        let floor = core.clock.script_floor();
        let settings = CallSettings {
            keys: &core.keys,
            script_now: &script_now,
            floor: &floor,
            ttl_secs: core.config.request_ttl.as_secs(),
            group: DRAIN_GROUP,
            sharded: core.target.is_cluster(),
        };
        // Creation is a commit like any other, expecting no auction (an empty version),
        // at any clock; the change's time is the clock it ran at.
        let version = core.new_version();
        let at = core.clock.propose(0);
        let created = created_at(at);
        let mut json = WireChange::new(&created, &version, at, None, None).to_json();
        let other = WireChange::new(&created_at(at + 1), &version, at + 1, None, None).to_json();
        json = guard::template(&json, at, &other, at + 1).map_err(|e| internal(e.0))?;
        let commit = Commit {
            expected: String::new(),
            guard: (0, guard::LIMIT),
            change: Some(NewState {
                version: version.clone(),
                seq: auction.state.seq,
                json,
            }),
            spec: Some(spec),
            marked: true,
            ..Commit::default()
        };
        let (keys, argv) = commit.args(id, &settings);
        let out: Vec<String> = core
            .commit
            .key(keys)
            .arg(argv)
            .invoke_async(&mut core.commits.clone())
            .await
            .map_err(map_write_err)?;
        match ScriptReply::parse(&out).map_err(internal)? {
            ScriptReply::Committed { clock } => {
                core.clock.used(clock);
                core.cache_spec(id, auction.spec.clone());
                let auction = created_at(clock).auction;
                core.remember(&auction, &version, clock);
                Ok(auction)
            }
            ScriptReply::Moved { .. } => Err(EngineError::AlreadyExists(auction.id)),
            ScriptReply::Repeat { .. } => Err(internal("creation answered as a repeated request")),
        }
    }

    async fn place_bid(
        &self,
        id: &AuctionId,
        request_id: &RequestId,
        req: BidRequest,
    ) -> Result<BidReply, EngineError> {
        let req_copy = req.clone();
        let op = Op::Bid {
            request_id: request_id.clone(),
            req,
            bid_id: uuid::Uuid::now_v7().to_string(),
        };
        let reply = match self.submit(id, op).await? {
            Done::Bid(reply) => reply,
            Done::Missing => return self.bid_archived(id, request_id, &req_copy).await,
            other => return Err(internal(format!("a bid was answered {other:?}"))),
        };
        if reply.outcome == Err(Rejection::Closed)
            && self.core().archive.is_some()
            && !self.in_redis(id).await?
        {
            // Answered `closed` from this node's copy of an auction that has since left
            // Redis: an accepted request's first answer is in the archive.
            return self.bid_archived(id, request_id, &req_copy).await;
        }
        let moved_end = reply.outcome.is_ok() && reply.auction.spec.soft_close.is_some();
        if moved_end || reply.auction.state.closing.is_some() {
            // The bid may have moved the end (soft close) or closed it (buy-now).
            if let Err(e) = self.index_live(&reply.auction).await {
                tracing::warn!(auction = %id, error = %e, "could not update the live index; listings correct it");
            }
        }
        metrics::counter!("gavel_bids_total", "outcome" => gavel_core::outcome_code(&reply.outcome))
            .increment(1);
        Ok(reply)
    }

    async fn replay(
        &self,
        id: &AuctionId,
        bidder: &BidderId,
        request_id: &RequestId,
    ) -> Result<Option<BidReply>, EngineError> {
        // The record the commit script wrote with the reply: written by Redis, so durable.
        let core = self.core();
        let (record, spec, last): (Option<String>, Option<String>, Option<String>) = redis::pipe()
            .get(core.keys.request(id, bidder, request_id))
            .hget(core.keys.hash(id), "spec")
            .hget(core.keys.hash(id), "last")
            .query_async(&mut core.cmd.clone())
            .await
            .map_err(map_err)?;
        let (Some(spec), Some(last)) = (spec, last) else {
            // Retired: the archive holds the accepted answers.
            let Some(auction) = self.archived(id).await? else {
                return Ok(None);
            };
            let archive = core.archive.as_ref().ok_or(EngineError::NotFound)?;
            let stored = archive
                .reply(id, bidder, request_id)
                .await
                .map_err(storage)?;
            return Ok(stored.map(|r| archived_reply(auction, r.state)));
        };
        let Some(record) = record else {
            return Ok(None);
        };
        let (current, _) = core.decode_stored(id, &spec, &last)?;
        let stored = wire::WireReply::parse(&record).map_err(internal)?;
        if stored.outcome.is_some() && current.state.closing.is_some() {
            // As `place_bid` (and the memory engine): once the auction's closing is
            // recorded, a rejection is no longer an answer worth repeating.
            return Ok(None);
        }
        Ok(Some(BidReply {
            outcome: stored.outcome(),
            auction: Auction {
                state: stored.state,
                ..current
            },
        }))
    }

    async fn auction(&self, id: &AuctionId) -> Result<Option<Auction>, EngineError> {
        let core = self.core();
        let (spec, last): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(core.keys.hash(id))
            .arg("spec")
            .arg("last")
            .query_async(&mut core.cmd.clone())
            .await
            .map_err(map_err)?;
        let (Some(spec), Some(last)) = (spec, last) else {
            return self.archived(id).await;
        };
        let (auction, version) = core.decode_stored(id, &spec, &last)?;
        core.remember(&auction, &version, 0);
        Ok(Some(auction))
    }

    async fn list(&self) -> Result<Vec<Auction>, EngineError> {
        let core = self.core();
        let mut cmd = core.cmd.clone();
        let ids: Vec<String> = cmd
            .zrange(core.keys.auctions(), 0, -1)
            .await
            .map_err(map_err)?;
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut pipe = redis::pipe();
            let mut parsed = Vec::with_capacity(chunk.len());
            for raw in chunk {
                let Ok(id) = AuctionId::parse(raw.as_str()) else {
                    continue;
                };
                pipe.cmd("HMGET")
                    .arg(core.keys.hash(&id))
                    .arg("spec")
                    .arg("last");
                parsed.push(id);
            }
            let rows: Vec<(Option<String>, Option<String>)> =
                pipe.query_async(&mut cmd).await.map_err(map_err)?;
            for (id, row) in parsed.iter().zip(rows) {
                if let (Some(spec), Some(last)) = row {
                    match core.decode_stored(id, &spec, &last) {
                        Ok((a, _)) => out.push(a),
                        Err(e) => {
                            // One unreadable auction must not take the listing (and every
                            // lobby) down with it.
                            tracing::error!(auction = %id, error = %e, "skipping an unreadable auction in a listing");
                            metrics::counter!("gavel_redis_unreadable_auctions_total").increment(1);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// From the index `<p>:live` (end time → id): reads only as far as the page needs.
    /// Entries the index holds wrongly (a closed auction, an end time that moved without
    /// the index following, a node having died between its commit and the index write) are
    /// corrected here, and the page is ordered by the auctions' actual end times.
    async fn list_live(
        &self,
        after: Option<(Millis, AuctionId)>,
        limit: usize,
    ) -> Result<Vec<Auction>, EngineError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let core = self.core();
        let mut cmd = core.cmd.clone();
        let min = after
            .as_ref()
            .map_or_else(|| "-inf".to_string(), |(at, _)| at.to_string());
        let read = LIVE_READ.max(limit + 1);
        let mut offset = 0;
        let mut out = Vec::new();
        let mut closed = Vec::new();
        let mut moved = Vec::new();
        loop {
            let page: Vec<(String, f64)> = redis::cmd("ZRANGEBYSCORE")
                .arg(core.keys.live())
                .arg(&min)
                .arg("+inf")
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(offset)
                .arg(read)
                .query_async(&mut cmd)
                .await
                .map_err(map_err)?;
            offset += page.len();
            let ids: Vec<(AuctionId, Millis)> = page
                .iter()
                .filter_map(|(raw, score)| {
                    let id = AuctionId::parse(raw.as_str()).ok()?;
                    let at = *score as Millis;
                    let seen = after
                        .as_ref()
                        .is_some_and(|(a_at, a_id)| (at, &id) <= (*a_at, a_id));
                    (!seen).then_some((id, at))
                })
                .collect();
            let mut pipe = redis::pipe();
            for (id, _) in &ids {
                pipe.cmd("HMGET")
                    .arg(core.keys.hash(id))
                    .arg("spec")
                    .arg("last");
            }
            let rows: Vec<(Option<String>, Option<String>)> = if ids.is_empty() {
                Vec::new()
            } else {
                pipe.query_async(&mut cmd).await.map_err(map_err)?
            };
            for ((id, at), row) in ids.into_iter().zip(rows) {
                // No hash: a creation still in flight, or retired; skipped either way.
                let (Some(spec), Some(last)) = row else {
                    continue;
                };
                match core.decode_stored(&id, &spec, &last) {
                    Ok((a, _)) if a.state.closing.is_some() => closed.push(id),
                    Ok((a, _)) => {
                        if a.state.ends_at != at {
                            moved.push((id, a.state.ends_at));
                        }
                        out.push(a);
                    }
                    Err(e) => {
                        tracing::error!(auction = %id, error = %e, "skipping an unreadable auction in a listing");
                        metrics::counter!("gavel_redis_unreadable_auctions_total").increment(1);
                    }
                }
            }
            if out.len() > limit || page.len() < read {
                break;
            }
        }
        if !closed.is_empty() || !moved.is_empty() {
            let mut pipe = redis::pipe();
            for id in &closed {
                pipe.zrem(core.keys.live(), id.as_str()).ignore();
            }
            for (id, at) in &moved {
                pipe.cmd("ZADD")
                    .arg(core.keys.live())
                    .arg("XX")
                    .arg(*at)
                    .arg(id.as_str())
                    .ignore();
            }
            if let Err(e) = pipe.query_async::<()>(&mut cmd).await {
                tracing::warn!(error = %e, "could not correct the live index");
            }
        }
        Ok(crate::live_page(out, after.as_ref(), limit))
    }

    async fn recent_bids(
        &self,
        id: &AuctionId,
        limit: usize,
    ) -> Result<Vec<BidEntry>, EngineError> {
        let core = self.core();
        let (exists, raw): (bool, Vec<String>) = redis::pipe()
            .exists(core.keys.hash(id))
            // The list may hold up to twice RECENT (commit.lua trims it in steps).
            .lrange(core.keys.recent(id), 0, limit.clamp(1, RECENT) as isize - 1)
            .query_async(&mut core.cmd.clone())
            .await
            .map_err(map_err)?;
        if !exists {
            let Some(archive) = &core.archive else {
                return Err(EngineError::NotFound);
            };
            let bids = archive
                .bids(id, None, u32::try_from(limit).unwrap_or(u32::MAX))
                .await
                .map_err(storage)?;
            if bids.is_empty() && self.archived(id).await?.is_none() {
                return Err(EngineError::NotFound);
            }
            return Ok(bids);
        }
        raw.iter()
            .take(limit)
            .map(|j| wire::parse_entry(j).map_err(internal))
            .collect()
    }

    async fn advance(&self) -> Result<Vec<ChangeNotice>, EngineError> {
        let core = self.core();
        let now = core.clock.now();
        let due: Vec<String> = core
            .cmd
            .clone()
            .zrangebyscore_limit(core.keys.deadlines(), "-inf", now, 0, ADVANCE_BATCH)
            .await
            .map_err(map_err)?;
        let mut jobs = Vec::with_capacity(due.len());
        for raw in due {
            let Ok(id) = AuctionId::parse(raw.as_str()) else {
                let _: () = core
                    .cmd
                    .clone()
                    .zrem(core.keys.deadlines(), &raw)
                    .await
                    .map_err(map_err)?;
                continue;
            };
            jobs.push(async move {
                let done = self.submit(&id, Op::Advance).await;
                (id, done)
            });
        }
        let mut changes = Vec::new();
        let mut first_error = None;
        for (id, done) in futures::future::join_all(jobs).await {
            let step = match done {
                Ok(Done::Advanced(change)) => {
                    let next = committer::deadline_of(&change.auction);
                    if change.auction.state.closing.is_some() {
                        if let Err(e) = self.index_live(&change.auction).await {
                            tracing::warn!(auction = %id, error = %e, "could not update the live index; listings correct it");
                        }
                    }
                    changes.push(change);
                    self.set_deadline(&id, next).await
                }
                Ok(Done::Idle { next }) => self.set_deadline(&id, next).await,
                Ok(Done::Missing) => self.forget_ghost(&id).await,
                Ok(other) => Err(internal(format!("advance was answered {other:?}"))),
                Err(e) => Err(e),
            };
            if let Err(e) = step {
                first_error.get_or_insert(e);
            }
        }
        self.spawn_retirement(now);
        match first_error {
            Some(e) if changes.is_empty() => Err(e),
            _ => Ok(changes),
        }
    }

    async fn next_deadline(&self) -> Result<Option<Millis>, EngineError> {
        let core = self.core();
        let first: Vec<(String, f64)> = core
            .cmd
            .clone()
            .zrange_withscores(core.keys.deadlines(), 0, 0)
            .await
            .map_err(map_err)?;
        Ok(first.first().map(|(_, at)| *at as Millis))
    }

    async fn admin_close(
        &self,
        id: &AuctionId,
        action: AdminAction,
        by: &str,
    ) -> Result<Result<Auction, Rejection>, EngineError> {
        let op = Op::Admin {
            action,
            by: by.to_string(),
        };
        match self.submit(id, op).await? {
            Done::Admin(Ok(a)) => {
                self.set_deadline(id, None).await?;
                if let Err(e) = self.index_live(&a).await {
                    tracing::warn!(auction = %id, error = %e, "could not update the live index; listings correct it");
                }
                Ok(Ok(a))
            }
            Done::Admin(Err(r)) => Ok(Err(r)),
            Done::Missing => match self.archived(id).await? {
                Some(_) => Ok(Err(Rejection::Closed)),
                None => Err(EngineError::NotFound),
            },
            other => Err(internal(format!("an admin action was answered {other:?}"))),
        }
    }

    fn take_changes(&self) -> Option<ChangeFeed> {
        self.inner.changes_rx.lock().take()
    }

    async fn watch(&self, id: &AuctionId) -> Result<(), EngineError> {
        let core = self.core();
        let exists: bool = core
            .cmd
            .clone()
            .exists(core.keys.hash(id))
            .await
            .map_err(map_err)?;
        if !exists {
            // A retired auction is watchable (its snapshot comes from the archive); it
            // changes no more, so there is nothing to follow.
            return match self.archived(id).await? {
                Some(_) => Ok(()),
                None => Err(EngineError::NotFound),
            };
        }
        core.watched.lock().insert(id.clone());
        core.follow(id).await;
        Ok(())
    }

    fn unwatch(&self, id: &AuctionId) {
        self.core().watched.lock().remove(id);
    }

    fn stats(&self) -> crate::EngineStats {
        crate::EngineStats {
            hot_auctions: None,
            watched_auctions: Some(self.core().watched.lock().len() as u64),
        }
    }

    /// Never earlier than a clock this node's commits already used.
    fn now(&self) -> Millis {
        self.core().clock.now()
    }

    /// Redis answers on both of this node's command connections (a `PING` on the commit
    /// connection, which also makes it reconnect after a cut rather than at the next bid),
    /// and holds both scripts (`SCRIPT EXISTS`). A script Redis lost (restart, failover,
    /// `SCRIPT FLUSH`) is loaded again here, so readiness never reports a node that would
    /// first have to reload before deciding.
    async fn check_ready(&self) -> Result<(), EngineError> {
        let core = self.core();
        let mut cmd = core.cmd.clone();
        let mut commits = core.commits.clone();
        let ping = redis::cmd("PING");
        let mut exists = redis::cmd("SCRIPT");
        exists
            .arg("EXISTS")
            .arg(core.commit.get_hash())
            .arg(core.trim.get_hash());
        let (ping, present) = tokio::join!(
            ping.query_async::<String>(&mut commits),
            exists.query_async::<Vec<bool>>(&mut cmd)
        );
        ping.map_err(map_err)?;
        let present = present.map_err(map_err)?;
        for (script, loaded) in [&core.commit, &core.trim].into_iter().zip(present) {
            if !loaded {
                tracing::info!("a Gavel script is missing in Redis; loading it again");
                script
                    .prepare_invoke()
                    .load_async(&mut cmd)
                    .await
                    .map_err(map_err)?;
            }
        }
        Ok(())
    }
}
