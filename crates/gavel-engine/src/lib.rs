//! The authority: where every bid on an auction is decided, one at a time.
//!
//! `Engine` is the one trait; `memory.rs` (embedded mode: in-process, single node, group
//! commit into the archive) and `redis/` (distributed mode) implement it, chosen once at
//! start-up. Both apply the same pure rules from `gavel-core` and pass the same
//! conformance suite (`conformance.rs`).

pub mod clock;
#[cfg(any(test, feature = "test-support"))]
pub mod conformance;
#[cfg(any(test, feature = "test-support"))]
pub mod cut_proxy;
pub mod memory;
pub mod redis;
#[cfg(any(test, feature = "test-support"))]
pub mod throwaway_redis;

use async_trait::async_trait;
use gavel_core::{
    Auction, AuctionId, BidEntry, BidRequest, BidderId, Change, Millis, Rejection, RequestId,
};
use std::sync::Arc;
use tokio::sync::mpsc;

pub use clock::Clock;

/// The answer to a bid, released only once everything it reports is durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BidReply {
    pub outcome: Result<(), Rejection>,
    /// The auction as of the `seq` the bid was decided at: a repeat of the request gets
    /// this same state, however the auction moved on since. It may carry the leader's
    /// secret maximum only when the requester is that leader (their own); the edge, too,
    /// shows a maximum to its owner only.
    pub auction: Auction,
}

/// What an admin may do to a running auction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminAction {
    Cancel,
    EndEarly,
}

/// Why an engine call failed. Callers must tell the first two failure kinds apart: after
/// `Unavailable` nothing was decided and a retry is always safe; after `OutcomeUnknown` the
/// request may have been decided, and only a retry with the same request id (which the
/// engine answers from its idempotency record) tells the client what happened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("auction not found")]
    NotFound,
    #[error("auction {0} already exists")]
    AlreadyExists(AuctionId),
    /// Nothing was decided: the authority or its archive refused, or could not be reached,
    /// before deciding.
    #[error("unavailable: {0}")]
    Unavailable(Cause),
    /// The request reached the authority but its answer did not come back (a connection
    /// lost mid-call, a confirmation that did not arrive in time): it may have been decided.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(Cause),
    #[error("internal error: {0}")]
    Internal(Cause),
}

/// What went wrong, in words, with the underlying error kept as the source (not flattened
/// into the text), so logs and callers can still inspect it.
#[derive(Debug, Clone)]
pub struct Cause {
    context: std::borrow::Cow<'static, str>,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Cause {
    /// A cause with no underlying error.
    pub fn msg(context: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Cause {
            context: context.into(),
            source: None,
        }
    }

    /// `context` (what was being done) caused by `source`.
    pub fn new(
        context: impl Into<std::borrow::Cow<'static, str>>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Cause {
            context: context.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// What was being done when it failed.
    pub fn context(&self) -> &str {
        &self.context
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Some(s) => write!(f, "{}: {s}", self.context),
            None => f.write_str(&self.context),
        }
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// What an engine holds in this process, for operators and the bounded-state tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Auctions whose state this process keeps in memory (the memory engine's hot set;
    /// `None` for an engine that keeps none itself).
    pub hot_auctions: Option<u64>,
    /// Auctions this node follows for its watchers (`None` where not tracked).
    pub watched_auctions: Option<u64>,
}

/// The auction as `bidder` may be told it: without another bidder's proxy maximum. Every
/// engine passes its [`BidReply::auction`] through this.
pub fn as_seen_by(mut auction: Auction, bidder: &BidderId) -> Auction {
    if auction
        .state
        .leader
        .as_ref()
        .is_none_or(|l| l.id != *bidder)
    {
        auction.state.leader_max = None;
    }
    auction
}

/// One page of live auctions out of `auctions` (any order), as [`Engine::list_live`]
/// returns it. For implementations without an index of their own.
pub fn live_page(
    auctions: impl IntoIterator<Item = Auction>,
    after: Option<&(Millis, AuctionId)>,
    limit: usize,
) -> Vec<Auction> {
    let mut live: Vec<Auction> = auctions
        .into_iter()
        .filter(|a| a.state.closing.is_none())
        .filter(|a| after.is_none_or(|after| (a.state.ends_at, &a.id) > (after.0, &after.1)))
        .collect();
    live.sort_by(|a, b| (a.state.ends_at, &a.id).cmp(&(b.state.ends_at, &b.id)));
    live.truncate(limit);
    live
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
/// - A repeat's reply is the first one: the auction as of the seq it was decided at, never
///   the current state, and never another bidder's proxy maximum ([`as_seen_by`]).
/// - The decision clock never goes back: no decision uses a time earlier than one already
///   used (`the_decision_clock_never_steps_back`, for both engines).
/// - A closed auction stays readable (view, history, `closed` for a new bid, the first
///   answer for a retried accepted request) after its hot state leaves the authority.
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

    /// The stored first reply to (bidder, request id) on an auction, if the engine still
    /// holds it (released once durable, like the reply itself). Decides nothing: the edge
    /// asks before refusing a bid as rate-limited, so a retry always gets its first answer.
    async fn replay(
        &self,
        id: &AuctionId,
        bidder: &BidderId,
        request_id: &RequestId,
    ) -> Result<Option<BidReply>, EngineError>;

    /// The latest durable state of one auction.
    async fn auction(&self, id: &AuctionId) -> Result<Option<Auction>, EngineError>;

    /// Every auction the engine holds, latest durable state. Walks all of them: for tests
    /// and tools, never on a request path (see [`Engine::list_live`]).
    async fn list(&self) -> Result<Vec<Auction>, EngineError>;

    /// Live auctions (not closed yet: scheduled or open), ordered by current end time then
    /// id, starting strictly after `after` = `(ends_at, id)` of the last one already seen.
    /// At most `limit`. Served from an index, so a page costs the same however many
    /// auctions exist. An auction whose end moves (soft close) while a client pages may
    /// show up on two pages or on none; each page is right as of its own read.
    async fn list_live(
        &self,
        after: Option<(Millis, AuctionId)>,
        limit: usize,
    ) -> Result<Vec<Auction>, EngineError>;

    /// The most recent bid history entries, newest first.
    async fn recent_bids(&self, id: &AuctionId, limit: usize)
        -> Result<Vec<BidEntry>, EngineError>;

    /// Opens and closes every auction whose start or end time has passed at the
    /// authority's clock. Safe to run on every node at once: each transition happens once.
    /// The memory engine also releases here the closed auctions whose retention has passed
    /// (their reads then come from the archive).
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

    /// Tells the engine this node has watchers for an auction, so a distributed engine
    /// follows its changes. The memory engine feeds every auction anyway. Fails with
    /// `NotFound` for an unknown auction.
    async fn watch(&self, id: &AuctionId) -> Result<(), EngineError>;

    /// This node no longer has watchers for an auction (the fan-out dropped its room). Sync,
    /// so a `Drop` guard can call it.
    fn unwatch(&self, id: &AuctionId);

    /// The authority's current time (server UTC ms).
    fn now(&self) -> Millis;

    /// What the engine holds in this process.
    fn stats(&self) -> EngineStats {
        EngineStats::default()
    }

    /// Finishes in-flight work before the process exits (the memory engine commits every
    /// decided change still queued). Bounded in time.
    async fn flush(&self) {}

    /// Whether the authority can decide bids right now (readiness, `GET /readyz`): the
    /// memory engine when its archive commits; the Redis engine when Redis answers and
    /// holds its scripts (loaded again here if Redis lost them). Cheap: one round trip at
    /// most; callers bound it in time.
    async fn check_ready(&self) -> Result<(), EngineError> {
        Ok(())
    }
}
