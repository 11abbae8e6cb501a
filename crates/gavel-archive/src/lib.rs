//! The archive: the durable record of auctions, accepted bids and results.
//!
//! One trait, one file per implementation (`sqlite.rs` for embedded mode, `postgres.rs` for
//! distributed mode), chosen once at start-up (by the server; [`build_sqlite`] opens the
//! embedded one). In embedded mode the archive is also what makes a bid *confirmed*: the
//! memory engine releases an outcome only after the batch holding it has committed (group
//! commit).

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod postgres;
mod rows;
pub mod search;
pub mod sqlite;
pub mod webhooks;

use async_trait::async_trait;
use gavel_core::{Auction, AuctionId, AuctionState, BidEntry, BidderId, Event, Millis, RequestId};
pub use std::path::Path;
use std::sync::Arc;
use webhooks::{
    AttemptOutcome, DeliveryRecord, DeliveryStatus, DueDelivery, OutboxEvent, WebhookEndpoint,
};

/// One state change to archive: the auction's state after it, and what happened.
#[derive(Clone, Debug)]
pub struct ArchivedChange {
    /// The auction after the change (its `state.seq` is the change's seq).
    pub auction: Auction,
    pub event: Event,
    /// Server-generated unique id of the bid (for `Event::Bid`): the archive's key, so a
    /// redelivered change is stored once.
    pub bid_id: Option<String>,
    /// The request that caused the change, set only when the request was **accepted** (a
    /// bid, a buy-now, a leader raising their maximum). The requester then leads at this
    /// seq, so the change is stored as that request's reply ([`StoredReply`]), attributed
    /// to the leader. A rejected bid that triggered a proxy counter-bid must leave it
    /// `None`: the change belongs to someone else.
    pub request_id: Option<RequestId>,
}

/// The first answer to an accepted request, as the archive keeps it: enough to give a
/// retry exactly that answer again (after a restart, or once the auction's hot state has
/// left the engine). The outcome is always "accepted".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredReply {
    pub auction_id: AuctionId,
    pub bidder: BidderId,
    pub request_id: RequestId,
    /// The auction's state right after the request was decided (its `seq` is the seq the
    /// request was decided at). The requester led then, so a maximum in it is their own.
    pub state: AuctionState,
    /// When the archive stored it (server UTC ms).
    pub stored_at: Millis,
}

/// One entry of an auction's verifiable log as stored, with its chain hash
/// (see `gavel_core::chain`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    pub entry: gavel_core::chain::LogEntry,
    pub hash: gavel_core::chain::ChainHash,
}

/// What the winner of an auction is told to do after the close (a payment or collection
/// page, pick-up instructions). Set by an admin at any time; not part of the sealed spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextSteps {
    /// Plain text (at most [`NextSteps::MAX_TEXT`] characters).
    pub text: String,
    /// An `https://` (or `http://`) link, if any.
    pub url: Option<String>,
    /// When it was last set (server ms).
    pub updated_at: Millis,
}

impl NextSteps {
    pub const MAX_TEXT: usize = 2000;
    pub const MAX_URL: usize = 2000;
}

/// Counters that let tests and benchmarks check the write amplification.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArchiveStats {
    /// Write transactions committed by `record_batch`.
    pub batches: u64,
    /// Bid rows stored.
    pub bids: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("auction {0} already exists")]
    AlreadyExists(AuctionId),
    #[error("archive storage failed: {0}")]
    Storage(String),
    #[error("archived data is corrupt: {0}")]
    Corrupt(String),
}

/// The durable store behind an engine.
///
/// Contract every implementation keeps:
/// - `record_batch` is one transaction: all of the batch is stored, or none of it. An
///   empty batch is a no-op (no transaction, not counted).
/// - It is idempotent: a change whose `bid_id` (or `(auction, seq)`) is already stored is
///   skipped, so redelivery after a crash stores nothing twice.
/// - An auction's stored state only moves forward: a change older than the stored `seq`
///   never overwrites a newer one.
/// - When `record_batch` returns `Ok`, the batch survives a crash of this process.
/// - A change carrying a closing (`Event::Closed`, or the buy-now `Event::Bid`) stores the
///   auction's result once.
/// - A change with a `request_id` stores that request's reply once: the first one stored
///   is never replaced.
///
/// Every implementation runs the suite in the `conformance` module (feature `conformance`).
#[async_trait]
pub trait Archive: Send + Sync + 'static {
    /// Stores a new auction (at seq 1). Fails with `AlreadyExists` for a taken id.
    async fn create_auction(&self, auction: &Auction) -> Result<(), ArchiveError>;

    /// Stores a batch of changes, in order, in one transaction.
    async fn record_batch(&self, changes: &[ArchivedChange]) -> Result<(), ArchiveError>;

    /// Every auction with its latest stored state. Reads the whole table: for tools and
    /// tests, never on a request path or at start-up (see [`Archive::load_hot`]).
    async fn load_auctions(&self) -> Result<Vec<Auction>, ArchiveError>;

    /// What an engine keeps in memory: every auction not closed yet, and those closed at
    /// or after `closed_since` (server ms). Served from indexes, not a scan.
    async fn load_hot(&self, closed_since: Millis) -> Result<Vec<Auction>, ArchiveError>;

    /// Closed auctions, most recently closed first (by `closed_at`, then id, both
    /// descending), starting strictly after `before` = `(closed_at, id)` of the last one
    /// already seen. At most `limit`. Served from an index.
    async fn closed_auctions(
        &self,
        before: Option<(Millis, AuctionId)>,
        limit: u32,
    ) -> Result<Vec<Auction>, ArchiveError>;

    /// One auction's latest stored state.
    async fn auction(&self, id: &AuctionId) -> Result<Option<Auction>, ArchiveError>;

    /// The auctions a search finds, in its order, from `query.offset`, at most
    /// `query.limit` (see [`search::SearchQuery`]). Words are matched through the
    /// full-text index (SQLite FTS5, PostgreSQL `tsvector` + GIN); filters and order read
    /// the stored state, so a live auction's price is as of its last archived change.
    async fn search(&self, query: &search::SearchQuery) -> Result<Vec<Auction>, ArchiveError>;

    /// The categories of auctions not closed yet, by name, with how many each holds.
    async fn categories(&self) -> Result<Vec<(String, u64)>, ArchiveError>;

    /// Bid history, newest first: bids with `seq < before_seq` (all if `None`), at most `limit`.
    async fn bids(
        &self,
        id: &AuctionId,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<BidEntry>, ArchiveError>;

    /// Every reply stored at or after `since` (server ms), oldest first, so an engine can
    /// keep answering retries across a restart.
    async fn replies_since(&self, since: Millis) -> Result<Vec<StoredReply>, ArchiveError>;

    /// The stored reply to one request, if it was accepted.
    async fn reply(
        &self,
        id: &AuctionId,
        bidder: &BidderId,
        request_id: &RequestId,
    ) -> Result<Option<StoredReply>, ArchiveError>;

    /// The auction's log entries with `seq > after_seq`, oldest first, at most `limit`.
    /// Every sealed change stored by `create_auction` or `record_batch` has one, written
    /// in the same transaction.
    async fn log(
        &self,
        id: &AuctionId,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<LogRecord>, ArchiveError>;

    /// Write counters since this process started.
    fn stats(&self) -> ArchiveStats;

    // --- Per-user lists (the personal channel, "My bids"; docs/protocol.md). ---
    //
    // Contract:
    // - `set_watched` is idempotent: watching twice keeps one row (and its first `at`),
    //   unwatching what is not watched changes nothing. It returns whether anything changed.
    // - `watchlist` lists one user's watched auctions, most recently added first.
    // - `bid_auctions` lists the auctions with at least one stored bid by the user (the
    //   accepted, price-moving bids of `record_batch`), most recent bid first, each once.
    // - `set_next_steps` replaces an auction's next steps (`None` removes them).

    /// Adds an auction to (or removes it from) a user's watchlist.
    async fn set_watched(
        &self,
        bidder: &BidderId,
        auction: &AuctionId,
        watched: bool,
        at: Millis,
    ) -> Result<bool, ArchiveError>;

    /// A user's watched auctions, most recently added first, at most `limit`.
    async fn watchlist(
        &self,
        bidder: &BidderId,
        limit: u32,
    ) -> Result<Vec<AuctionId>, ArchiveError>;

    /// The auctions a user has a stored bid on, most recent bid first, at most `limit`.
    async fn bid_auctions(
        &self,
        bidder: &BidderId,
        limit: u32,
    ) -> Result<Vec<AuctionId>, ArchiveError>;

    /// Sets (or with `None` removes) what the auction's winner is told to do next.
    async fn set_next_steps(
        &self,
        auction: &AuctionId,
        steps: Option<&NextSteps>,
    ) -> Result<(), ArchiveError>;

    /// What the auction's winner is told to do next, if an admin set it.
    async fn next_steps(&self, auction: &AuctionId) -> Result<Option<NextSteps>, ArchiveError>;

    /// Whether the archive answers right now (readiness, `GET /readyz`): one trivial query
    /// on a connection of its own pool. Callers bound it in time.
    async fn check_ready(&self) -> Result<(), ArchiveError> {
        Ok(())
    }

    // --- The webhook outbox (see [`webhooks`]). ---
    //
    // Contract:
    // - `record_batch` and `create_auction` write the events of their changes
    //   ([`webhooks::events_of`], [`webhooks::created_event`]) in the same transaction,
    //   each once (by its stable id), with one pending delivery per enabled endpoint that
    //   wants the type (`bid.accepted` only with `bid_events`). An event no endpoint wants
    //   is not stored.
    // - A claimed delivery is leased until `lease_until`: no other claim returns it before
    //   then, on any node (PostgreSQL: `FOR UPDATE SKIP LOCKED`).
    // - Finishing a delivery that is no longer pending changes nothing.
    //
    // The defaults refuse: an archive without an outbox says so instead of losing events.

    /// Stores an endpoint, replacing one with the same id (a replaced endpoint is enabled
    /// again).
    async fn put_webhook_endpoint(&self, _endpoint: &WebhookEndpoint) -> Result<(), ArchiveError> {
        Err(no_outbox())
    }

    /// Every endpoint, oldest first.
    async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, ArchiveError> {
        Err(no_outbox())
    }

    /// Removes an endpoint and its deliveries. `false` when there was none.
    async fn delete_webhook_endpoint(&self, _id: &str) -> Result<bool, ArchiveError> {
        Err(no_outbox())
    }

    /// Replaces an endpoint's secret. `false` when there is no such endpoint.
    async fn set_webhook_secret(&self, _id: &str, _secret: &str) -> Result<bool, ArchiveError> {
        Err(no_outbox())
    }

    /// Stores `event` with one pending delivery to `endpoint_id` only (the admin API's test
    /// event). `false` when there is no such endpoint.
    async fn enqueue_webhook_event(
        &self,
        _event: &OutboxEvent,
        _endpoint_id: &str,
    ) -> Result<bool, ArchiveError> {
        Err(no_outbox())
    }

    /// Claims up to `limit` pending deliveries due at `now` (oldest first) whose lease is
    /// free, leasing them to `owner` until `lease_until`.
    async fn claim_webhook_deliveries(
        &self,
        _now: Millis,
        _lease_until: Millis,
        _owner: &str,
        _limit: u32,
    ) -> Result<Vec<DueDelivery>, ArchiveError> {
        Err(no_outbox())
    }

    /// Records how an attempt at a claimed delivery ended.
    async fn finish_webhook_delivery(
        &self,
        _event_id: &str,
        _endpoint_id: &str,
        _now: Millis,
        _outcome: &AttemptOutcome,
    ) -> Result<(), ArchiveError> {
        Err(no_outbox())
    }

    /// Removes deliveries that finished (delivered or failed) before `finished_before`, and
    /// the events left without any delivery that were stored before it. Returns how many
    /// deliveries went.
    async fn prune_webhook_outbox(&self, _finished_before: Millis) -> Result<u64, ArchiveError> {
        Err(no_outbox())
    }

    /// Deliveries, newest first, of one endpoint (or all), in one status (or any).
    async fn webhook_deliveries(
        &self,
        _endpoint_id: Option<&str>,
        _status: Option<DeliveryStatus>,
        _limit: u32,
    ) -> Result<Vec<DeliveryRecord>, ArchiveError> {
        Err(no_outbox())
    }
}

fn no_outbox() -> ArchiveError {
    ArchiveError::Storage("this archive keeps no webhook outbox".into())
}

/// Opens the distributed archive: PostgreSQL at `url`, in `schema` if given (created and
/// migrated at start-up).
pub async fn build_postgres(
    url: &str,
    schema: Option<&str>,
) -> Result<Arc<dyn Archive>, ArchiveError> {
    Ok(Arc::new(
        postgres::PostgresArchive::connect(url, schema).await?,
    ))
}

/// Opens the embedded archive in `data_dir`.
pub fn build_sqlite(data_dir: &Path) -> Result<Arc<dyn Archive>, ArchiveError> {
    Ok(Arc::new(sqlite::SqliteArchive::open(
        &data_dir.join("gavel.db"),
    )?))
}
