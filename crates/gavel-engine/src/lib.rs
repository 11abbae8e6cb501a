//! The authority: where every bid on an auction is decided, one at a time.
//!
//! `Engine` is the one trait; `memory.rs` (embedded mode: in-process, single node, group
//! commit into the archive) and `redis/` (distributed mode) implement it, chosen once at
//! start-up. Both apply the same pure rules from `gavel-core` and pass the same
//! conformance suite (`conformance.rs`).

pub mod clock;
pub mod conformance;
pub mod cut_proxy;
pub mod memory;
pub mod redis;

use async_trait::async_trait;
use gavel_core::{Auction, AuctionId, BidEntry, BidRequest, Change, Millis, Rejection, RequestId};
use std::sync::Arc;
use tokio::sync::mpsc;

pub use clock::Clock;

/// The answer to a bid, released only once everything it reports is durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BidReply {
    pub outcome: Result<(), Rejection>,
    /// The auction as of the `seq` the bid was decided at. Contains the leader's secret
    /// maximum: the edge shows it to the leader only.
    pub auction: Auction,
}

/// What an admin may do to a running auction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminAction {
    Cancel,
    EndEarly,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("auction not found")]
    NotFound,
    #[error("auction {0} already exists")]
    AlreadyExists(AuctionId),
    /// The authority or its archive cannot take this right now; nothing was decided, or
    /// (for a timed-out wait) the outcome is unknown and a retry with the same request id
    /// returns it.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// A committed state change, delivered in `seq` order per auction.
pub type ChangeNotice = Arc<Change>;

/// The receiving end of an engine's change feed.
pub type ChangeFeed = mpsc::Receiver<ChangeNotice>;

/// The authority over auctions.
///
/// Contract every implementation keeps (checked by `conformance`):
/// - `place_bid` decides each bid in one atomic step per auction, with the rules of
///   `gavel_core::rules` at the authority's clock, so two bids on one auction never both
///   see the same state; bids on different auctions do not wait for each other.
/// - The step that decides a bid also records its idempotency key (bidder, request id) per
///   auction: a repeat returns the first reply and changes nothing.
/// - A reply (accepted or rejected) and a change notice are released only once the state
///   they report is durable (embedded: committed to the archive; Redis: written by Redis).
/// - Every committed change reaches the change feed exactly once per node, in `seq` order
///   per auction (the Redis engine may skip ahead; consumers resync on a gap).
#[async_trait]
pub trait Engine: Send + Sync + 'static {
    /// Adds a new auction (validated by `Auction::new`).
    async fn create_auction(&self, auction: Auction) -> Result<Auction, EngineError>;

    /// Decides a bid. The bidder inside `req` comes from the authenticated session.
    async fn place_bid(
        &self,
        id: &AuctionId,
        request_id: &RequestId,
        req: BidRequest,
    ) -> Result<BidReply, EngineError>;

    /// The latest durable state of one auction.
    async fn auction(&self, id: &AuctionId) -> Result<Option<Auction>, EngineError>;

    /// Every auction the engine knows, latest durable state.
    async fn list(&self) -> Result<Vec<Auction>, EngineError>;

    /// The most recent bid history entries, newest first.
    async fn recent_bids(&self, id: &AuctionId, limit: usize)
        -> Result<Vec<BidEntry>, EngineError>;

    /// Opens and closes every auction whose start or end time has passed at the
    /// authority's clock. Safe to run on every node at once: each transition happens once.
    async fn advance(&self) -> Result<Vec<ChangeNotice>, EngineError>;

    /// The earliest start or end time still to be acted on by `advance`, if any.
    async fn next_deadline(&self) -> Result<Option<Millis>, EngineError>;

    /// Cancel or end early, by admin `by`.
    async fn admin_close(
        &self,
        id: &AuctionId,
        action: AdminAction,
        by: &str,
    ) -> Result<Result<Auction, Rejection>, EngineError>;

    /// Takes the change feed. Called once, by the node's fan-out.
    fn take_changes(&self) -> Option<ChangeFeed>;

    /// Tells the engine this node has (or no longer has) watchers for an auction, so a
    /// distributed engine subscribes to it. The memory engine feeds every auction anyway.
    async fn watch(&self, id: &AuctionId, watching: bool) -> Result<(), EngineError>;

    /// The authority's current time (server UTC ms).
    fn now(&self) -> Millis;

    /// Finishes in-flight work before the process exits (the memory engine commits every
    /// decided change still queued). Bounded in time.
    async fn flush(&self) {}
}
