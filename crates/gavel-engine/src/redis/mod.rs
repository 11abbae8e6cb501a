//! The Redis engine: distributed mode's authority. Any number of stateless nodes share it.
//!
//! Every state-changing operation is one atomic Lua script (`scripts/*.lua`, each opening
//! with its KEYS/ARGV) that restates the rules of `gavel-core`: it reads the auction,
//! decides at Redis's own clock (`TIME`), checks everything before its first write, then
//! bumps `seq`, writes the state, appends the change to the auction's change log (a
//! stream, drained into PostgreSQL by every node's drainer), records the idempotency key
//! with a TTL, and publishes the change — all in the same step, so an accepted bid always
//! has its log entry and its update. Scripts run with `EVALSHA` through
//! [`redis::Script`], which reloads a script the server lost (restart, failover,
//! `SCRIPT FLUSH`) on `NOSCRIPT`.
//!
//! A reply is released when the script has returned: the decision is then written by
//! Redis (how durable that is depends on Redis's persistence settings; see
//! `docs/distributed.md`). A call that fails mid-way (connection lost, timeout) has an
//! unknown outcome and is answered `unavailable`; the idempotency key makes the retry with
//! the same request id safe, on any node.
//!
//! Layout and choices: `keys.rs` (per-auction keys under one hash tag, per-auction change
//! logs), `feed.rs` (one Pub/Sub pattern subscription per node feeding the local fan-out,
//! with resync on reconnect), `log.rs` (what the drainer reads), `wire.rs` (the string-only
//! JSON the scripts speak).

pub mod eviction;
mod feed;
pub mod keys;
pub mod log;
pub mod wire;

pub use keys::{Keys, DRAIN_GROUP};
pub use log::{ChangeLog, LogEntry};

use crate::{AdminAction, BidReply, Cause, ChangeFeed, ChangeNotice, Clock, Engine, EngineError};
use async_trait::async_trait;
use gavel_core::{
    Auction, AuctionId, AuctionSpec, BidEntry, BidKind, BidRequest, BidderId, Millis, Rejection,
    RequestId, Status,
};
use parking_lot::{Mutex, RwLock};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, RedisError, Script};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use wire::{WireChange, WireReply, WireRules, WireState};

/// Each deciding script is `common.lua` (the rules) followed by its own body.
macro_rules! rules_script {
    ($file:literal) => {
        concat!(
            include_str!("scripts/common.lua"),
            include_str!(concat!("scripts/", $file))
        )
    };
}

/// Settings of the Redis engine.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// `redis://host:port/db` (or `rediss://`).
    pub url: String,
    /// Prefix of every key and channel (see [`Keys`]); deployments sharing a Redis use
    /// different prefixes, and so does every test.
    pub prefix: String,
    /// Tests only: decide with this clock instead of Redis `TIME` (its `now()` is passed to
    /// the scripts). Production leaves it `None`.
    pub test_clock: Option<Clock>,
    /// How long a command may take before the call is answered `unavailable`.
    pub response_timeout: Duration,
    /// How long a request's first reply is kept for repeats.
    pub request_ttl: Duration,
    /// Start even if Redis's `maxmemory-policy` may evict Gavel's keys (see `eviction.rs`).
    pub allow_eviction: bool,
}

impl RedisConfig {
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            prefix: prefix.into(),
            test_clock: None,
            response_timeout: Duration::from_secs(5),
            request_ttl: Duration::from_secs(24 * 3600),
            allow_eviction: false,
        }
    }
}

struct Scripts {
    create: Script,
    place_bid: Script,
    advance: Script,
    admin_close: Script,
    trim: Script,
}

impl Scripts {
    fn new() -> Self {
        Scripts {
            create: Script::new(rules_script!("create.lua")),
            place_bid: Script::new(rules_script!("place_bid.lua")),
            advance: Script::new(rules_script!("advance.lua")),
            admin_close: Script::new(rules_script!("admin_close.lua")),
            trim: Script::new(include_str!("scripts/trim.lua")),
        }
    }
}

/// Capacity of the change feed to the node's fan-out.
const CHANGE_FEED: usize = 16_384;
/// Specs cached per node (they never change); the cache is cleared when it grows past this.
const SPEC_CACHE: usize = 100_000;
/// How often the offset between this node's clock and Redis's is measured.
const CLOCK_SYNC: Duration = Duration::from_secs(30);

pub(crate) struct Inner {
    client: redis::Client,
    /// Commands and scripts: one multiplexed connection that reconnects by itself.
    cmd: ConnectionManager,
    keys: Keys,
    scripts: Scripts,
    specs: RwLock<HashMap<AuctionId, Arc<AuctionSpec>>>,
    config: RedisConfig,
    /// Redis time minus local time, in ms (for `now()`; decisions use Redis `TIME`).
    offset_ms: AtomicI64,
    changes_rx: Mutex<Option<ChangeFeed>>,
    /// Auctions this node's watchers asked for (resynced after a Pub/Sub reconnect).
    watched: Mutex<HashSet<AuctionId>>,
    shutdown: watch::Sender<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Stops the Pub/Sub and clock tasks.
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

/// A failed call that may have changed state (a deciding script). Only an error that
/// proves the script never ran (the connection was refused, or Redis answered with an
/// error before running it) means nothing was decided; a call lost mid-way (timeout,
/// dropped connection) may have been executed: its outcome is unknown.
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

fn corrupt(e: wire::WireError) -> EngineError {
    EngineError::Internal(Cause::msg(e.to_string()))
}

fn wall_ms() -> Millis {
    crate::clock::system_now()
}

impl RedisEngine {
    /// Connects, starts the Pub/Sub feed and waits until it is subscribed, so every change
    /// committed after this returns reaches [`Engine::take_changes`].
    pub async fn connect(config: RedisConfig) -> Result<Self, EngineError> {
        let keys = Keys::new(&config.prefix)
            .map_err(|e| EngineError::Internal(Cause::msg(e.to_string())))?;
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| EngineError::Internal(Cause::msg(format!("invalid Redis URL: {e}"))))?;
        let cmd = ConnectionManager::new_with_config(
            client.clone(),
            ConnectionManagerConfig::new()
                .set_response_timeout(Some(config.response_timeout))
                .set_connection_timeout(Some(Duration::from_secs(2)))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(500)),
        )
        .await
        .map_err(map_err)?;
        eviction::check(&cmd, config.allow_eviction).await?;
        let (tx, rx) = mpsc::channel(CHANGE_FEED);
        let (shutdown, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            client,
            cmd,
            keys,
            scripts: Scripts::new(),
            specs: RwLock::new(HashMap::new()),
            config,
            offset_ms: AtomicI64::new(0),
            changes_rx: Mutex::new(Some(rx)),
            watched: Mutex::new(HashSet::new()),
            shutdown,
        });
        if inner.config.test_clock.is_none() {
            inner.sync_clock().await?;
            tokio::spawn(clock_sync(Arc::downgrade(&inner)));
        }
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(feed::run(
            Arc::downgrade(&inner),
            inner.client.clone(),
            inner.keys.clone(),
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
        tracing::info!(prefix = %inner.keys.prefix(), "Redis engine connected");
        Ok(RedisEngine { inner })
    }

    /// The key layout this engine uses.
    pub fn keys(&self) -> &Keys {
        &self.inner.keys
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
        let mut cmd = self.inner.cmd.clone();
        // Walk back through the log in pages; most entries of a busy log are bids.
        loop {
            let page: redis::streams::StreamRangeReply = cmd
                .xrevrange_count(self.inner.keys.log(id), &end, "-", 200)
                .await
                .map_err(map_err)?;
            let n = page.ids.len();
            for entry in &page.ids {
                end = format!("({}", entry.id);
                let Some(json) = log::field_c(entry) else {
                    continue;
                };
                let change = WireChange::parse(&json).map_err(corrupt)?;
                if let Some(e) = &change.e {
                    let e = e.to_entry().map_err(corrupt)?;
                    if before_seq.is_none_or(|b| e.seq < b) {
                        out.push(e);
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

    fn now_arg(&self) -> String {
        self.inner.now_arg()
    }
}

impl Inner {
    fn now_arg(&self) -> String {
        match &self.config.test_clock {
            Some(c) => c.now().to_string(),
            None => String::new(),
        }
    }

    /// The authority's time for choosing due deadlines: the test clock, or Redis `TIME`.
    async fn authority_now(&self) -> Result<Millis, EngineError> {
        if let Some(c) = &self.config.test_clock {
            return Ok(c.now());
        }
        let (secs, micros): (i64, i64) = redis::cmd("TIME")
            .query_async(&mut self.cmd.clone())
            .await
            .map_err(map_err)?;
        Ok(secs * 1000 + micros / 1000)
    }

    async fn sync_clock(&self) -> Result<(), EngineError> {
        let before = wall_ms();
        let started = Instant::now();
        let redis_now = self.authority_now().await?;
        let rtt = started.elapsed().as_millis() as i64;
        self.offset_ms
            .store(redis_now - (before + rtt / 2), Ordering::Relaxed);
        Ok(())
    }

    /// The auction's spec, cached (specs never change).
    async fn spec(&self, id: &AuctionId) -> Result<Option<Arc<AuctionSpec>>, EngineError> {
        if let Some(s) = self.specs.read().get(id) {
            return Ok(Some(s.clone()));
        }
        let raw: Option<String> = self
            .cmd
            .clone()
            .hget(self.keys.hash(id), "spec")
            .await
            .map_err(map_err)?;
        let Some(raw) = raw else { return Ok(None) };
        let spec: Arc<AuctionSpec> =
            Arc::new(serde_json::from_str(&raw).map_err(|e| {
                EngineError::Internal(Cause::msg(format!("stored spec of {id}: {e}")))
            })?);
        let mut specs = self.specs.write();
        if specs.len() >= SPEC_CACHE {
            specs.clear();
        }
        specs.insert(id.clone(), spec.clone());
        Ok(Some(spec))
    }

    fn cache_spec(&self, id: &AuctionId, spec: &AuctionSpec) {
        let mut specs = self.specs.write();
        if specs.len() >= SPEC_CACHE {
            specs.clear();
        }
        specs.insert(id.clone(), Arc::new(spec.clone()));
    }

    /// Decodes a change (the spec comes from the cache or Redis).
    async fn decode_change(&self, wire: &WireChange) -> Result<wire::DecodedChange, EngineError> {
        let id = wire.auction_id().map_err(corrupt)?;
        let spec = self.spec(&id).await?.ok_or_else(|| {
            EngineError::Internal(Cause::msg(format!("change of unknown auction {id}")))
        })?;
        wire.decode(&spec).map_err(corrupt)
    }

    async fn auction_from(&self, id: &AuctionId, st: &WireState) -> Result<Auction, EngineError> {
        let spec = self.spec(id).await?.ok_or(EngineError::NotFound)?;
        Ok(Auction {
            id: id.clone(),
            spec: spec.clone(),
            state: st.to_state().map_err(corrupt)?,
        })
    }

    /// Keeps the deadline index right after a script told us an auction's next deadline
    /// ('' when it has none left). Deadlines only move later, hence `GT`.
    async fn set_deadline(&self, id: &AuctionId, next: &str) -> Result<(), EngineError> {
        let mut cmd = self.cmd.clone();
        if next.is_empty() {
            let _: () = cmd
                .zrem(self.keys.deadlines(), id.as_str())
                .await
                .map_err(map_err)?;
        } else {
            let at: i64 = next
                .parse()
                .map_err(|_| EngineError::Internal(Cause::msg(format!("deadline {next:?}"))))?;
            let _: () = redis::cmd("ZADD")
                .arg(self.keys.deadlines())
                .arg("XX")
                .arg("GT")
                .arg(at)
                .arg(id.as_str())
                .query_async(&mut cmd)
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }
}

/// Measures the offset to Redis's clock now and then, while the engine lives.
async fn clock_sync(inner: std::sync::Weak<Inner>) {
    let mut stop = match inner.upgrade() {
        Some(i) => i.shutdown.subscribe(),
        None => return,
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CLOCK_SYNC) => {}
            _ = stop.changed() => return,
        }
        let Some(i) = inner.upgrade() else { return };
        if let Err(e) = i.sync_clock().await {
            tracing::debug!(error = %e, "could not read Redis TIME");
        }
    }
}

fn outcome_label(outcome: &Result<(), Rejection>) -> &'static str {
    match outcome {
        Ok(()) => "accepted",
        Err(r) => r.code(),
    }
}

fn kind_str(kind: BidKind) -> &'static str {
    match kind {
        BidKind::Plain => "plain",
        BidKind::Max => "max",
        BidKind::BuyNow => "buy_now",
    }
}

fn deadline_of(a: &Auction) -> Option<Millis> {
    match (a.state.closing.is_some(), a.state.status) {
        (true, _) => None,
        (false, Status::Scheduled) => Some(a.spec.starts_at),
        (false, _) => Some(a.state.ends_at),
    }
}

fn tag(out: &[String]) -> &str {
    out.first().map_or("", String::as_str)
}

fn second(out: &[String]) -> Result<&str, EngineError> {
    out.get(1)
        .map(String::as_str)
        .ok_or_else(|| EngineError::Internal(Cause::msg(format!("short script reply {out:?}"))))
}

#[async_trait]
impl Engine for RedisEngine {
    async fn create_auction(&self, auction: Auction) -> Result<Auction, EngineError> {
        let i = &self.inner;
        let id = &auction.id;
        let spec = serde_json::to_string(&auction.spec)
            .map_err(|e| EngineError::Internal(Cause::msg(e.to_string())))?;
        let rules = serde_json::to_string(&WireRules::from_spec(&auction.spec))
            .map_err(|e| EngineError::Internal(Cause::msg(e.to_string())))?;
        let state = serde_json::to_string(&WireState::from_state(&auction.state))
            .map_err(|e| EngineError::Internal(Cause::msg(e.to_string())))?;
        // Register in the node-wide indexes first (a script may only touch the auction's
        // own slot): an entry for an auction that then fails to be created is skipped and
        // cleaned up; an auction missing from them would never close or be archived.
        let now = wall_ms();
        let mut cmd = i.cmd.clone();
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD")
            .arg(i.keys.auctions())
            .arg("NX")
            .arg(now)
            .arg(id.as_str())
            .ignore();
        pipe.cmd("ZADD")
            .arg(i.keys.active())
            .arg("NX")
            .arg(now)
            .arg(id.as_str())
            .ignore();
        if let Some(at) = deadline_of(&auction) {
            pipe.cmd("ZADD")
                .arg(i.keys.deadlines())
                .arg("NX")
                .arg(at)
                .arg(id.as_str())
                .ignore();
        }
        let _: () = pipe.query_async(&mut cmd).await.map_err(map_err)?;
        let out: Vec<String> = i
            .scripts
            .create
            .key(i.keys.hash(id))
            .key(i.keys.log(id))
            .arg(id.as_str())
            .arg(i.keys.channel(id))
            .arg(spec)
            .arg(rules)
            .arg(state)
            .arg(DRAIN_GROUP)
            .invoke_async(&mut cmd)
            .await
            .map_err(map_write_err)?;
        match tag(&out) {
            "created" => {
                i.cache_spec(id, &auction.spec);
                Ok(auction)
            }
            "exists" => Err(EngineError::AlreadyExists(auction.id)),
            _ => Err(EngineError::Internal(Cause::msg(format!(
                "create replied {out:?}"
            )))),
        }
    }

    async fn place_bid(
        &self,
        id: &AuctionId,
        request_id: &RequestId,
        req: BidRequest,
    ) -> Result<BidReply, EngineError> {
        let i = &self.inner;
        let bid_id = uuid::Uuid::now_v7().to_string();
        let ttl = i.config.request_ttl.as_secs().max(1);
        let out: Vec<String> = i
            .scripts
            .place_bid
            .key(i.keys.hash(id))
            .key(i.keys.log(id))
            .key(i.keys.recent(id))
            .key(i.keys.request(id, &req.bidder.id, request_id))
            .arg(self.now_arg())
            .arg(id.as_str())
            .arg(i.keys.channel(id))
            .arg(req.bidder.id.as_str())
            .arg(&*req.bidder.name)
            .arg(req.amount.minor_units().to_string())
            .arg(kind_str(req.kind))
            .arg(req.expected_seq.map(|s| s.to_string()).unwrap_or_default())
            .arg(request_id.as_str())
            .arg(bid_id.as_str())
            .arg(ttl)
            .invoke_async(&mut i.cmd.clone())
            .await
            .map_err(map_write_err)?;
        let reply = match tag(&out) {
            "missing" => return Err(EngineError::NotFound),
            "new" | "repeat" => WireReply::parse(second(&out)?).map_err(corrupt)?,
            _ => {
                return Err(EngineError::Internal(Cause::msg(format!(
                    "place_bid replied {out:?}"
                ))))
            }
        };
        let reply = BidReply {
            outcome: reply.outcome().map_err(corrupt)?,
            // Never another bidder's maximum (a counter-bid's reply carries the leader's).
            auction: crate::as_seen_by(i.auction_from(id, &reply.st).await?, &req.bidder.id),
        };
        metrics::counter!("gavel_bids_total", "outcome" => outcome_label(&reply.outcome))
            .increment(1);
        Ok(reply)
    }

    async fn replay(
        &self,
        id: &AuctionId,
        bidder: &BidderId,
        request_id: &RequestId,
    ) -> Result<Option<BidReply>, EngineError> {
        // The record `place_bid.lua` wrote with the first reply: written by Redis, so durable.
        let i = &self.inner;
        let stored: Option<String> = redis::cmd("GET")
            .arg(i.keys.request(id, bidder, request_id))
            .query_async(&mut i.cmd.clone())
            .await
            .map_err(map_err)?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let reply = WireReply::parse(&stored).map_err(corrupt)?;
        Ok(Some(BidReply {
            outcome: reply.outcome().map_err(corrupt)?,
            auction: i.auction_from(id, &reply.st).await?,
        }))
    }

    async fn auction(&self, id: &AuctionId) -> Result<Option<Auction>, EngineError> {
        let i = &self.inner;
        let (spec, state): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(i.keys.hash(id))
            .arg("spec")
            .arg("state")
            .query_async(&mut i.cmd.clone())
            .await
            .map_err(map_err)?;
        let (Some(spec), Some(state)) = (spec, state) else {
            return Ok(None);
        };
        decode_auction(id, &spec, &state).map(Some)
    }

    async fn list(&self) -> Result<Vec<Auction>, EngineError> {
        let i = &self.inner;
        let mut cmd = i.cmd.clone();
        let ids: Vec<String> = cmd
            .zrange(i.keys.auctions(), 0, -1)
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
                    .arg(i.keys.hash(&id))
                    .arg("spec")
                    .arg("state");
                parsed.push(id);
            }
            let rows: Vec<(Option<String>, Option<String>)> =
                pipe.query_async(&mut cmd).await.map_err(map_err)?;
            for (id, row) in parsed.iter().zip(rows) {
                if let (Some(spec), Some(state)) = row {
                    out.push(decode_auction(id, &spec, &state)?);
                }
            }
        }
        Ok(out)
    }

    /// Simple and correct, not indexed: reads every auction and sorts. To be replaced by a
    /// Redis index of live auctions by end time.
    async fn list_live(
        &self,
        after: Option<(Millis, AuctionId)>,
        limit: usize,
    ) -> Result<Vec<Auction>, EngineError> {
        Ok(crate::live_page(self.list().await?, after.as_ref(), limit))
    }

    async fn recent_bids(
        &self,
        id: &AuctionId,
        limit: usize,
    ) -> Result<Vec<BidEntry>, EngineError> {
        let i = &self.inner;
        let (exists, raw): (bool, Vec<String>) = redis::pipe()
            .exists(i.keys.hash(id))
            .lrange(i.keys.recent(id), 0, limit.max(1) as isize - 1)
            .query_async(&mut i.cmd.clone())
            .await
            .map_err(map_err)?;
        if !exists {
            return Err(EngineError::NotFound);
        }
        raw.iter()
            .take(limit)
            .map(|j| wire::parse_entry(j).map_err(corrupt))
            .collect()
    }

    async fn advance(&self) -> Result<Vec<ChangeNotice>, EngineError> {
        let i = &self.inner;
        let now = i.authority_now().await?;
        let due: Vec<String> = i
            .cmd
            .clone()
            .zrangebyscore_limit(i.keys.deadlines(), "-inf", now, 0, 1000)
            .await
            .map_err(map_err)?;
        let mut changes = Vec::new();
        for raw in due {
            let Ok(id) = AuctionId::parse(raw.as_str()) else {
                let _: () = i
                    .cmd
                    .clone()
                    .zrem(i.keys.deadlines(), &raw)
                    .await
                    .map_err(map_err)?;
                continue;
            };
            let out: Vec<String> = i
                .scripts
                .advance
                .key(i.keys.hash(&id))
                .key(i.keys.log(&id))
                .key(i.keys.recent(&id))
                .arg(self.now_arg())
                .arg(id.as_str())
                .arg(i.keys.channel(&id))
                .invoke_async(&mut i.cmd.clone())
                .await
                .map_err(map_write_err)?;
            match tag(&out) {
                "missing" => {
                    // Registered by a create that never completed.
                    let registered: Option<f64> = i
                        .cmd
                        .clone()
                        .zscore(i.keys.auctions(), id.as_str())
                        .await
                        .map_err(map_err)?;
                    if registered.is_none_or(|at| (at as i64) < wall_ms() - 60_000) {
                        i.set_deadline(&id, "").await?;
                    }
                }
                "wait" => i.set_deadline(&id, second(&out)?).await?,
                "changed" => {
                    let wire = WireChange::parse(second(&out)?).map_err(corrupt)?;
                    let next = out.get(2).map_or("", String::as_str);
                    i.set_deadline(&id, next).await?;
                    changes.push(Arc::new(i.decode_change(&wire).await?.change));
                }
                _ => {
                    return Err(EngineError::Internal(Cause::msg(format!(
                        "advance replied {out:?}"
                    ))))
                }
            }
        }
        Ok(changes)
    }

    async fn next_deadline(&self) -> Result<Option<Millis>, EngineError> {
        let i = &self.inner;
        let first: Vec<(String, f64)> = i
            .cmd
            .clone()
            .zrange_withscores(i.keys.deadlines(), 0, 0)
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
        let i = &self.inner;
        let reason = match action {
            AdminAction::Cancel => "cancelled",
            AdminAction::EndEarly => "ended_early",
        };
        let out: Vec<String> = i
            .scripts
            .admin_close
            .key(i.keys.hash(id))
            .key(i.keys.log(id))
            .key(i.keys.recent(id))
            .arg(self.now_arg())
            .arg(id.as_str())
            .arg(i.keys.channel(id))
            .arg(reason)
            .arg(by)
            .invoke_async(&mut i.cmd.clone())
            .await
            .map_err(map_write_err)?;
        match tag(&out) {
            "missing" => Err(EngineError::NotFound),
            "closed" => Ok(Err(Rejection::Closed)),
            "changed" => {
                let wire = WireChange::parse(second(&out)?).map_err(corrupt)?;
                i.set_deadline(id, "").await?;
                Ok(Ok(i.decode_change(&wire).await?.change.auction))
            }
            _ => Err(EngineError::Internal(Cause::msg(format!(
                "admin_close replied {out:?}"
            )))),
        }
    }

    fn take_changes(&self) -> Option<ChangeFeed> {
        self.inner.changes_rx.lock().take()
    }

    async fn watch(&self, id: &AuctionId) -> Result<(), EngineError> {
        let i = &self.inner;
        let exists: bool = i
            .cmd
            .clone()
            .exists(i.keys.hash(id))
            .await
            .map_err(map_err)?;
        if !exists {
            return Err(EngineError::NotFound);
        }
        i.watched.lock().insert(id.clone());
        Ok(())
    }

    fn unwatch(&self, id: &AuctionId) {
        self.inner.watched.lock().remove(id);
    }

    fn stats(&self) -> crate::EngineStats {
        crate::EngineStats {
            hot_auctions: None,
            watched_auctions: Some(self.inner.watched.lock().len() as u64),
        }
    }

    fn now(&self) -> Millis {
        match &self.inner.config.test_clock {
            Some(c) => c.now(),
            None => wall_ms() + self.inner.offset_ms.load(Ordering::Relaxed),
        }
    }
}

fn decode_auction(id: &AuctionId, spec: &str, state: &str) -> Result<Auction, EngineError> {
    let spec: AuctionSpec = serde_json::from_str(spec)
        .map_err(|e| EngineError::Internal(Cause::msg(format!("stored spec of {id}: {e}"))))?;
    let state: WireState = serde_json::from_str(state)
        .map_err(|e| EngineError::Internal(Cause::msg(format!("stored state of {id}: {e}"))))?;
    Ok(Auction {
        id: id.clone(),
        spec: Arc::new(spec),
        state: state.to_state().map_err(corrupt)?,
    })
}
