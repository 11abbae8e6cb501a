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
pub mod sqlite;

use async_trait::async_trait;
use gavel_core::{Auction, AuctionId, BidEntry, Event, RequestId};
pub use std::path::Path;
use std::sync::Arc;

/// One state change to archive: the auction's state after it, and what happened.
#[derive(Clone, Debug)]
pub struct ArchivedChange {
    /// The auction after the change (its `state.seq` is the change's seq).
    pub auction: Auction,
    pub event: Event,
    /// Server-generated unique id of the bid (for `Event::Bid`): the archive's key, so a
    /// redelivered change is stored once.
    pub bid_id: Option<String>,
    /// The request that caused the change, if a bid did. Stored with the bid row and
    /// attributed to the entry's bidder (see [`Archive::recent_requests`]), so set it only
    /// when the entry was placed *for* the requester, i.e. the request was accepted. A
    /// rejected bid that triggered a proxy counter-bid belongs to someone else's entry.
    pub request_id: Option<RequestId>,
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
///
/// Every implementation runs the suite in the `conformance` module (feature `conformance`).
#[async_trait]
pub trait Archive: Send + Sync + 'static {
    /// Stores a new auction (at seq 1). Fails with `AlreadyExists` for a taken id.
    async fn create_auction(&self, auction: &Auction) -> Result<(), ArchiveError>;

    /// Stores a batch of changes, in order, in one transaction.
    async fn record_batch(&self, changes: &[ArchivedChange]) -> Result<(), ArchiveError>;

    /// Every auction with its latest stored state (used to rebuild the engine on start).
    async fn load_auctions(&self) -> Result<Vec<Auction>, ArchiveError>;

    /// One auction's latest stored state.
    async fn auction(&self, id: &AuctionId) -> Result<Option<Auction>, ArchiveError>;

    /// Bid history, newest first: bids with `seq < before_seq` (all if `None`), at most `limit`.
    async fn bids(
        &self,
        id: &AuctionId,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<BidEntry>, ArchiveError>;

    /// Accepted request ids of a bidder's bids on still-open auctions, with their seq, so an
    /// engine can keep answering retries after a restart.
    async fn recent_requests(
        &self,
        id: &AuctionId,
    ) -> Result<Vec<(gavel_core::BidderId, RequestId, u64)>, ArchiveError>;

    /// Write counters since this process started.
    fn stats(&self) -> ArchiveStats;
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
