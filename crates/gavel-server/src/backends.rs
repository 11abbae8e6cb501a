//! Chooses the engine and the archive once, at start-up, from the configuration.
//!
//! - Embedded mode (the default): the in-memory engine with group commit into SQLite.
//! - Distributed mode (`--redis` and `--database`, both required): the Redis engine as
//!   the authority, PostgreSQL as the archive, and this node's drainer moving the Redis
//!   change logs into PostgreSQL. The node keeps no auction state of its own. Bid history
//!   is read from PostgreSQL merged with the entries still in the Redis change log, so the
//!   newest bids show before the drainer has written them (see `MergedHistory`).

use crate::config::ServeConfig;
use crate::drainer::{self, DrainConfig, DrainStats};
use anyhow::{bail, Context};
use async_trait::async_trait;
use gavel_archive::webhooks::{
    AttemptOutcome, DeliveryRecord, DeliveryStatus, DueDelivery, OutboxEvent, WebhookEndpoint,
};
use gavel_archive::{
    Archive, ArchiveError, ArchiveStats, ArchivedChange, LogRecord, NextSteps, StoredReply,
};
use gavel_core::{Auction, AuctionId, BidEntry, BidderId, Millis, RequestId};
use gavel_engine::memory::{MemoryConfig, MemoryEngine};
use gavel_engine::redis::{RedisConfig, RedisEngine};
use gavel_engine::{Clock, Engine};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Resolves once the engine has stopped (see [`Backends::stopped`]).
pub type Stopped = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The engine and archive a node runs on.
pub struct Backends {
    pub engine: Arc<dyn Engine>,
    /// Where bid history is read from.
    pub archive: Arc<dyn Archive>,
    /// Embedded mode: resolves once every handle on the engine is gone and its group
    /// committer has finished, i.e. the archive file is closed. The server waits for it
    /// before returning, so a restart in the same process never finds the old engine
    /// still writing to the file. Distributed mode: resolves once the drainer, stopped
    /// with the server's background tasks, has written what it held to PostgreSQL.
    pub stopped: Option<Stopped>,
}

/// Builds the backends. `stop` is cancelled when the server stops, for any background
/// tasks the backends need (the drainer).
pub async fn build(
    config: &ServeConfig,
    clock: Clock,
    stop: CancellationToken,
) -> anyhow::Result<Backends> {
    match (config.redis.as_deref(), config.database.as_deref()) {
        (None, None) => embedded(config, clock).await,
        (Some(redis), Some(database)) => distributed(config, redis, database, stop).await,
        _ => bail!(
            "distributed mode needs both --redis (GAVEL_REDIS_URL or REDIS_URL) and --database \
             (GAVEL_DATABASE_URL or DATABASE_URL); embedded mode needs neither"
        ),
    }
}

async fn embedded(config: &ServeConfig, clock: Clock) -> anyhow::Result<Backends> {
    let archive = gavel_archive::build_sqlite(&config.data_dir).context("opening the archive")?;
    let memory = MemoryEngine::start(
        archive.clone(),
        clock,
        MemoryConfig {
            batch_max: config.batch_max.max(1),
            batch_window: Duration::from_millis(config.batch_window_ms),
            closed_retention: config.closed_retention,
            ..MemoryConfig::default()
        },
    )
    .await
    .context("starting the engine")?;
    let stopped: Stopped = Box::pin(memory.stopped());
    Ok(Backends {
        engine: Arc::new(memory),
        archive,
        stopped: Some(stopped),
    })
}

/// The Redis engine decides by Redis's clock (`TIME`); the server's clock is not used.
async fn distributed(
    config: &ServeConfig,
    redis: &str,
    database: &str,
    stop: CancellationToken,
) -> anyhow::Result<Backends> {
    // Install the metrics recorder before the engine and drainer count anything.
    let _ = crate::telemetry::metrics_handle();
    let archive = gavel_archive::build_postgres(database, config.database_schema.as_deref())
        .await
        .context("opening the PostgreSQL archive (--database)")?;
    let mut redis_config = RedisConfig::new(redis, config.redis_prefix.clone());
    redis_config.allow_eviction = config.allow_redis_eviction;
    redis_config.closed_retention = config.closed_retention;
    // With the archive: closed auctions leave Redis after their retention, once drained,
    // and are answered from PostgreSQL afterwards.
    let engine = RedisEngine::connect_with_archive(redis_config, archive.clone())
        .await
        .context("connecting to Redis (--redis)")?;
    let node = config.node_id.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "node".into());
        format!("{host}-{}", config.listen.port())
    });
    let interval = Duration::from_millis(config.drain_interval_ms.max(1));
    let drain = DrainConfig {
        batch: config.drain_batch.max(1),
        interval,
        claim_idle: config
            .drain_claim_idle_ms
            .map(Duration::from_millis)
            .unwrap_or(interval * 2 + Duration::from_secs(30)),
    };
    let log = engine
        .change_log(&node)
        .await
        .context("opening the Redis change logs")?;
    let drainer = tokio::spawn(drainer::run(
        log,
        archive.clone(),
        drain,
        Arc::new(DrainStats::default()),
        stop,
    ));
    // The drainer writes what it holds when it stops: the server waits for that.
    let stopped: Stopped = Box::pin(async move {
        let _ = drainer.await;
    });
    tracing::info!(node = %node, prefix = %config.redis_prefix, "distributed mode");
    let history: Arc<dyn Archive> = Arc::new(MergedHistory {
        archive,
        engine: engine.clone(),
    });
    Ok(Backends {
        engine: Arc::new(engine),
        archive: history,
        stopped: Some(stopped),
    })
}

/// The PostgreSQL archive, with `bids` also reading the entries the drainer has not
/// written yet (the auction's Redis change log), so history never lags by the drain
/// interval. Everything else goes to PostgreSQL unchanged.
struct MergedHistory {
    archive: Arc<dyn Archive>,
    engine: RedisEngine,
}

#[async_trait]
impl Archive for MergedHistory {
    async fn create_auction(&self, auction: &Auction) -> Result<(), ArchiveError> {
        self.archive.create_auction(auction).await
    }

    async fn record_batch(&self, changes: &[ArchivedChange]) -> Result<(), ArchiveError> {
        self.archive.record_batch(changes).await
    }

    async fn load_auctions(&self) -> Result<Vec<Auction>, ArchiveError> {
        self.archive.load_auctions().await
    }

    async fn load_hot(&self, closed_since: Millis) -> Result<Vec<Auction>, ArchiveError> {
        self.archive.load_hot(closed_since).await
    }

    async fn closed_auctions(
        &self,
        before: Option<(Millis, AuctionId)>,
        limit: u32,
    ) -> Result<Vec<Auction>, ArchiveError> {
        self.archive.closed_auctions(before, limit).await
    }

    async fn auction(&self, id: &AuctionId) -> Result<Option<Auction>, ArchiveError> {
        self.archive.auction(id).await
    }

    async fn search(
        &self,
        query: &gavel_archive::search::SearchQuery,
    ) -> Result<Vec<Auction>, ArchiveError> {
        self.archive.search(query).await
    }

    async fn categories(&self) -> Result<Vec<(String, u64)>, ArchiveError> {
        self.archive.categories().await
    }

    /// The log is read first: an entry trimmed from it after that read was written to
    /// PostgreSQL before, so the archive read that follows has it.
    async fn bids(
        &self,
        id: &AuctionId,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<BidEntry>, ArchiveError> {
        let logged = self
            .engine
            .logged_bids(id, before_seq, limit as usize)
            .await
            .map_err(|e| ArchiveError::Storage(e.to_string()))?;
        let stored = self.archive.bids(id, before_seq, limit).await?;
        let mut all: Vec<BidEntry> = logged.into_iter().chain(stored).collect();
        all.sort_by_key(|e| std::cmp::Reverse(e.seq));
        all.dedup_by_key(|e| e.seq);
        all.truncate(limit as usize);
        Ok(all)
    }

    async fn replies_since(&self, since: Millis) -> Result<Vec<StoredReply>, ArchiveError> {
        self.archive.replies_since(since).await
    }

    async fn reply(
        &self,
        id: &AuctionId,
        bidder: &BidderId,
        request_id: &RequestId,
    ) -> Result<Option<StoredReply>, ArchiveError> {
        self.archive.reply(id, bidder, request_id).await
    }

    /// The drained log only: entries still in Redis appear once the drainer writes them.
    async fn log(
        &self,
        id: &AuctionId,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<LogRecord>, ArchiveError> {
        self.archive.log(id, after_seq, limit).await
    }

    fn stats(&self) -> ArchiveStats {
        self.archive.stats()
    }

    async fn set_watched(
        &self,
        bidder: &BidderId,
        auction: &AuctionId,
        watched: bool,
        at: Millis,
    ) -> Result<bool, ArchiveError> {
        self.archive.set_watched(bidder, auction, watched, at).await
    }

    async fn watchlist(
        &self,
        bidder: &BidderId,
        limit: u32,
    ) -> Result<Vec<AuctionId>, ArchiveError> {
        self.archive.watchlist(bidder, limit).await
    }

    /// PostgreSQL only: bids still in Redis appear once the drainer writes them (the
    /// personal channel adds the ones its node saw on the change feed meanwhile).
    async fn bid_auctions(
        &self,
        bidder: &BidderId,
        limit: u32,
    ) -> Result<Vec<AuctionId>, ArchiveError> {
        self.archive.bid_auctions(bidder, limit).await
    }

    async fn set_next_steps(
        &self,
        auction: &AuctionId,
        steps: Option<&NextSteps>,
    ) -> Result<(), ArchiveError> {
        self.archive.set_next_steps(auction, steps).await
    }

    async fn next_steps(&self, auction: &AuctionId) -> Result<Option<NextSteps>, ArchiveError> {
        self.archive.next_steps(auction).await
    }

    async fn check_ready(&self) -> Result<(), ArchiveError> {
        self.archive.check_ready().await
    }

    async fn put_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), ArchiveError> {
        self.archive.put_webhook_endpoint(endpoint).await
    }

    async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, ArchiveError> {
        self.archive.webhook_endpoints().await
    }

    async fn delete_webhook_endpoint(&self, id: &str) -> Result<bool, ArchiveError> {
        self.archive.delete_webhook_endpoint(id).await
    }

    async fn set_webhook_secret(&self, id: &str, secret: &str) -> Result<bool, ArchiveError> {
        self.archive.set_webhook_secret(id, secret).await
    }

    async fn enqueue_webhook_event(
        &self,
        event: &OutboxEvent,
        endpoint_id: &str,
    ) -> Result<bool, ArchiveError> {
        self.archive.enqueue_webhook_event(event, endpoint_id).await
    }

    async fn claim_webhook_deliveries(
        &self,
        now: Millis,
        lease_until: Millis,
        owner: &str,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, ArchiveError> {
        self.archive
            .claim_webhook_deliveries(now, lease_until, owner, limit)
            .await
    }

    async fn finish_webhook_delivery(
        &self,
        event_id: &str,
        endpoint_id: &str,
        now: Millis,
        outcome: &AttemptOutcome,
    ) -> Result<(), ArchiveError> {
        self.archive
            .finish_webhook_delivery(event_id, endpoint_id, now, outcome)
            .await
    }

    async fn prune_webhook_outbox(&self, finished_before: Millis) -> Result<u64, ArchiveError> {
        self.archive.prune_webhook_outbox(finished_before).await
    }

    async fn webhook_deliveries(
        &self,
        endpoint_id: Option<&str>,
        status: Option<DeliveryStatus>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, ArchiveError> {
        self.archive
            .webhook_deliveries(endpoint_id, status, limit)
            .await
    }
}
