//! The in-memory engine: embedded mode's authority. Single node only.
//!
//! Each auction has its own lock (a `parking_lot::Mutex`: nothing is awaited while it is
//! held), so bids on one auction are decided one at a time and bids on different auctions
//! never wait for each other. The decision is made in memory; the change is handed to the
//! group committer, which writes batches to the archive in one transaction each. A reply
//! or a change notice is released only when the archive has committed the `seq` it reports
//! (the auction's *durable watermark*), so nobody is ever told something a crash could
//! take back — not an acceptance, not an "outbid" caused by a bid that was never stored.
//!
//! # Bounded state
//!
//! Memory holds the auctions not closed yet and those closed within `closed_retention`
//! (24 h by default). Once a closed auction's retention has passed and every change of it is
//! committed, `advance` lets its hot state go (its idempotency records too); reads, bids and
//! retries on it are then answered from the archive, with the same answers: its view and
//! history, `closed` for a new bid, the stored first answer for a retried accepted request.
//! The engine's ordered views (deadlines, live auctions by end time, closed auctions by
//! expiry) live in `index.rs`.
//!
//! # Time
//!
//! Decisions use the clock, but never a time earlier than one already used: a wall clock
//! stepping back cannot reopen an auction a decision has already seen end.

mod index;

use crate::{
    as_seen_by, AdminAction, BidReply, Cause, ChangeFeed, ChangeNotice, Clock, Engine, EngineError,
    EngineStats,
};
use async_trait::async_trait;
use gavel_archive::{Archive, ArchivedChange};
use gavel_core::{
    rules, Auction, AuctionId, BidEntry, BidRequest, BidderId, Change, Event, Millis, Rejection,
    RequestId,
};
use index::{Index, Keys};
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Tuning of the memory engine and its group commit.
#[derive(Clone, Debug)]
pub struct MemoryConfig {
    /// A batch closes when it holds this many changes...
    pub batch_max: usize,
    /// ...or when this long has passed since its first change.
    pub batch_window: Duration,
    /// How long a bidder waits for their bid's batch to commit before being told
    /// `unavailable` (the outcome is then unknown; a retry with the same request id gets it).
    pub reply_timeout: Duration,
    /// Idempotency records kept per auction (oldest dropped first).
    pub max_requests_per_auction: usize,
    /// History entries kept in memory per auction for snapshots.
    pub recent_bids: usize,
    /// How long a closed auction stays in memory after it closed. Afterwards it is served
    /// from the archive.
    pub closed_retention: Duration,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            batch_max: 1000,
            batch_window: Duration::from_millis(2),
            reply_timeout: Duration::from_secs(10),
            max_requests_per_auction: 50_000,
            recent_bids: 20,
            closed_retention: Duration::from_secs(24 * 3600),
        }
    }
}

/// The first reply to a (bidder, request id), returned verbatim to repeats.
#[derive(Clone, Debug)]
struct StoredReply {
    reply: BidReply,
    decided_at: u64,
}

/// What only the decision step touches.
struct Live {
    auction: Auction,
    /// Boxed records: the table holds up to `max_requests_per_auction` of them and grows by
    /// rehashing, which moves every entry; small entries keep that (and its memory) cheap.
    requests: HashMap<(BidderId, RequestId), Arc<StoredReply>>,
    /// Keys in the order they were decided, with the time (server ms) they were decided.
    request_order: VecDeque<(Millis, (BidderId, RequestId))>,
}

/// What watchers and readers see: the latest committed state.
struct Confirmed {
    auction: Auction,
    recent: VecDeque<BidEntry>,
}

struct Slot {
    live: Mutex<Live>,
    confirmed: Mutex<Confirmed>,
    /// Highest `seq` of this auction committed to the archive.
    durable: watch::Sender<u64>,
}

/// A decided change on its way to the archive.
struct Pending {
    slot: Arc<Slot>,
    change: Arc<Change>,
    bid_id: Option<String>,
    request_id: Option<RequestId>,
}

/// What the engine's handles share. Dropping the last handle drops this, and with it the
/// only sender of the commit queue: the group committer then commits what is queued and
/// stops (see [`MemoryEngine::stopped`]).
struct Inner {
    /// The hot auctions: live, or closed within the retention period.
    auctions: RwLock<HashMap<AuctionId, Arc<Slot>>>,
    /// Ordered views of the hot auctions (see `index.rs`).
    index: Mutex<Index>,
    /// `closed_retention` in ms.
    retention_ms: i64,
    commit_tx: mpsc::Sender<Pending>,
    changes_rx: Mutex<Option<ChangeFeed>>,
    clock: Clock,
    /// The latest time a decision was made at (see [`Inner::decision_time`]).
    last_decision: AtomicI64,
    /// Closed (its sender dropped) once the group committer has stopped.
    committer_done: watch::Receiver<()>,
    shared: Arc<Shared>,
}

/// What the group committer needs. Kept apart from [`Inner`] so the committer never holds
/// the engine itself alive: it runs exactly as long as someone can still send it work.
struct Shared {
    archive: Arc<dyn Archive>,
    changes_tx: mpsc::Sender<ChangeNotice>,
    /// False while the archive fails to commit: new bids are refused with `unavailable`.
    archive_healthy: AtomicBool,
    /// True while the committer holds a batch it has not finished releasing.
    committing: AtomicBool,
    config: MemoryConfig,
}

/// The embedded-mode engine. Cheap to clone.
#[derive(Clone)]
pub struct MemoryEngine {
    inner: Arc<Inner>,
}

/// Capacity of the queue between decisions and the group committer. When full, new
/// decisions are refused with `unavailable` rather than queued without bound.
const COMMIT_QUEUE: usize = 16_384;
/// Capacity of the change feed to the fan-out.
const CHANGE_FEED: usize = 16_384;

impl MemoryEngine {
    /// Rebuilds the hot auctions (live, or closed within the retention period) from the
    /// archive and starts the group committer.
    pub async fn start(
        archive: Arc<dyn Archive>,
        clock: Clock,
        config: MemoryConfig,
    ) -> Result<Self, EngineError> {
        let (commit_tx, commit_rx) = mpsc::channel(COMMIT_QUEUE);
        let (changes_tx, changes_rx) = mpsc::channel(CHANGE_FEED);
        let (done_tx, committer_done) = watch::channel(());
        let retention_ms = i64::try_from(config.closed_retention.as_millis()).unwrap_or(i64::MAX);
        let shared = Arc::new(Shared {
            archive: archive.clone(),
            changes_tx,
            archive_healthy: AtomicBool::new(true),
            committing: AtomicBool::new(false),
            config,
        });
        let inner = Arc::new(Inner {
            auctions: RwLock::new(HashMap::new()),
            index: Mutex::new(Index::default()),
            retention_ms,
            commit_tx,
            changes_rx: Mutex::new(Some(changes_rx)),
            clock,
            last_decision: AtomicI64::new(i64::MIN),
            committer_done,
            shared: shared.clone(),
        });
        let now = inner.clock.now();
        // Hot while `closed_at + retention > now`, as `release_expired` decides.
        let stored = archive
            .load_hot(now.saturating_sub(retention_ms).saturating_add(1))
            .await
            .map_err(storage)?;
        let count = stored.len();
        for auction in stored {
            let recent = archive
                .bids(&auction.id, None, inner.shared.config.recent_bids as u32)
                .await
                .map_err(storage)?;
            let slot = new_slot(auction.clone(), recent.into());
            inner.reindex(&auction);
            inner
                .auctions
                .write()
                .insert(auction.id.clone(), Arc::new(slot));
        }
        // Keep answering retries of requests accepted before the restart, each with the
        // answer it was first given (the auction as it was then), never the current state.
        let replies = archive
            .replies_since(now - IDEMPOTENCY_TTL_MS)
            .await
            .map_err(storage)?;
        let reloaded = replies.len();
        for stored in replies {
            let Some(slot) = inner.auctions.read().get(&stored.auction_id).cloned() else {
                continue;
            };
            let mut live = slot.live.lock();
            let reply = stored_reply(&live.auction, stored.state);
            let key = (stored.bidder, stored.request_id);
            remember(
                &mut live,
                &inner.shared.config,
                key,
                reply,
                stored.stored_at.min(now),
            );
        }
        tracing::info!(
            auctions = count,
            replies = reloaded,
            "memory engine rebuilt from archive"
        );
        tokio::spawn(async move {
            group_committer(shared, commit_rx).await;
            drop(done_tx);
        });
        Ok(MemoryEngine { inner })
    }

    /// Resolves once the engine has stopped: every handle was dropped, the group committer
    /// committed what was still queued and let go of the archive. Take it before dropping
    /// the last handle; a restart that opens the same archive file should await it first.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut done = self.inner.committer_done.clone();
        async move { while done.changed().await.is_ok() {} }
    }

    /// The auction's hot state, if it is in memory.
    fn hot(&self, id: &AuctionId) -> Option<Arc<Slot>> {
        self.inner.auctions.read().get(id).cloned()
    }

    /// An auction that is not in memory, from the archive: closed and past its retention
    /// (or unknown: `None`).
    async fn archived(&self, id: &AuctionId) -> Result<Option<Auction>, EngineError> {
        let a = self
            .inner
            .shared
            .archive
            .auction(id)
            .await
            .map_err(storage)?;
        match a {
            Some(a) if a.state.closing.is_none() => Err(EngineError::Internal(Cause::msg(
                format!("auction {id} is open in the archive but not in memory"),
            ))),
            other => Ok(other),
        }
    }

    /// A bid on an auction that left memory: the first answer if the request was accepted
    /// (from the archive's stored reply), otherwise `closed`, as it would be in memory.
    async fn bid_archived(
        &self,
        id: &AuctionId,
        request_id: &RequestId,
        req: &BidRequest,
    ) -> Result<BidReply, EngineError> {
        let auction = self.archived(id).await?.ok_or(EngineError::NotFound)?;
        let archive = &self.inner.shared.archive;
        let stored = archive
            .reply(id, &req.bidder.id, request_id)
            .await
            .map_err(storage)?;
        let reply = match stored {
            Some(stored) => stored_reply(&auction, stored.state).reply.clone(),
            None => BidReply {
                outcome: Err(Rejection::Closed),
                auction: as_seen_by(auction, &req.bidder.id),
            },
        };
        metrics::counter!("gavel_bids_total", "outcome" => outcome_label(&reply.outcome))
            .increment(1);
        Ok(reply)
    }

    /// Lets closed auctions whose retention has passed leave memory, once every change of
    /// theirs is committed (the archive then answers for them).
    fn release_expired(&self, now: Millis) {
        let expired = self.inner.index.lock().expired(now);
        let mut released = 0;
        for id in expired {
            let Some(slot) = self.hot(&id) else {
                self.inner.index.lock().remove(&id);
                continue;
            };
            let seq = slot.live.lock().auction.state.seq;
            if *slot.durable.borrow() < seq {
                continue; // not all committed yet: next round
            }
            self.inner.auctions.write().remove(&id);
            self.inner.index.lock().remove(&id);
            released += 1;
        }
        if released > 0 {
            tracing::debug!(
                released,
                "closed auctions left memory after their retention"
            );
            metrics::counter!("gavel_engine_released_total").increment(released);
        }
        metrics::gauge!("gavel_engine_hot_auctions").set(self.inner.auctions.read().len() as f64);
    }

    fn reserve_commit(&self) -> Result<mpsc::Permit<'_, Pending>, EngineError> {
        if !self.inner.shared.archive_healthy.load(Ordering::Acquire) {
            return Err(EngineError::Unavailable(Cause::msg(
                "the archive cannot commit right now; no bid is being accepted",
            )));
        }
        self.inner.commit_tx.try_reserve().map_err(|_| {
            EngineError::Unavailable(Cause::msg("too many bids are waiting for the archive"))
        })
    }

    /// Waits until `seq` of the auction is committed.
    async fn wait_durable(&self, slot: &Slot, seq: u64) -> Result<(), EngineError> {
        let mut rx = slot.durable.subscribe();
        let waited = tokio::time::timeout(
            self.inner.shared.config.reply_timeout,
            rx.wait_for(|d| *d >= seq),
        )
        .await
        .map(|r| r.map(|_| ()));
        match waited {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(EngineError::Internal(Cause::msg("durable watermark dropped"))),
            Err(_) => Err(EngineError::OutcomeUnknown(Cause::msg(
                "the archive did not confirm in time; retry with the same request_id to learn the outcome",
            ))),
        }
    }

    /// Decides an open/close transition if it is due; the caller waits for durability.
    fn decide_transition(
        &self,
        slot: &Arc<Slot>,
        now: Millis,
    ) -> Result<Option<Arc<Change>>, EngineError> {
        let permit = self.reserve_commit()?;
        let mut live = slot.live.lock();
        let Some(mut change) = rules::open_if_due(&live.auction, now)
            .or_else(|| rules::close_if_due(&live.auction, now))
        else {
            self.inner.reindex(&live.auction);
            return Ok(None);
        };
        gavel_core::chain::seal(&live.auction, &mut change, now);
        let change = Arc::new(change);
        live.auction = change.auction.clone();
        if live.auction.state.closing.is_some() {
            forget_rejections(&mut live);
        }
        self.inner.reindex(&live.auction);
        permit.send(Pending {
            slot: slot.clone(),
            change: change.clone(),
            bid_id: None,
            request_id: None,
        });
        Ok(Some(change))
    }
}

/// The first answer to an accepted request, rebuilt from the state the archive stored
/// with it.
fn stored_reply(current: &Auction, state: gavel_core::AuctionState) -> Arc<StoredReply> {
    let decided_at = state.seq;
    Arc::new(StoredReply {
        reply: BidReply {
            outcome: Ok(()),
            auction: Auction {
                id: current.id.clone(),
                spec: current.spec.clone(),
                state,
            },
        },
        decided_at,
    })
}

fn storage(e: gavel_archive::ArchiveError) -> EngineError {
    EngineError::Unavailable(Cause::new("archive", e))
}

fn new_slot(auction: Auction, recent: VecDeque<BidEntry>) -> Slot {
    let seq = auction.state.seq;
    Slot {
        live: Mutex::new(Live {
            auction: auction.clone(),
            requests: HashMap::new(),
            request_order: VecDeque::new(),
        }),
        confirmed: Mutex::new(Confirmed { auction, recent }),
        durable: watch::Sender::new(seq),
    }
}

/// How long a decided request is remembered: 24 hours.
const IDEMPOTENCY_TTL_MS: i64 = 86_400_000;

fn remember(
    live: &mut Live,
    config: &MemoryConfig,
    key: (BidderId, RequestId),
    reply: Arc<StoredReply>,
    now: Millis,
) {
    if live.requests.insert(key.clone(), reply).is_none() {
        live.request_order.push_back((now, key));
    }
    while let Some((at, _)) = live.request_order.front() {
        let expired = *at <= now - IDEMPOTENCY_TTL_MS;
        if !expired && live.request_order.len() <= config.max_requests_per_auction {
            break;
        }
        if let Some((_, old)) = live.request_order.pop_front() {
            live.requests.remove(&old);
        }
    }
}

/// Once an auction has closed, only accepted requests can still be asked about usefully:
/// a retried rejection is simply rejected again as `closed`.
fn forget_rejections(live: &mut Live) {
    live.requests.retain(|_, r| r.reply.outcome.is_ok());
    let requests = &live.requests;
    live.request_order.retain(|(_, k)| requests.contains_key(k));
}

impl Inner {
    /// The time to decide at: the clock's, but never earlier than a time already used. A
    /// wall clock stepping back (an NTP correction, an operator) must not reopen an auction
    /// a decision has already seen end, nor order two decisions backwards in time.
    fn decision_time(&self) -> Millis {
        let now = self.clock.now();
        let before = self.last_decision.fetch_max(now, Ordering::AcqRel);
        if before > now {
            metrics::counter!("gavel_clock_step_back_total").increment(1);
        }
        before.max(now)
    }

    /// Puts the auction where its current state belongs in the ordered views.
    fn reindex(&self, auction: &Auction) {
        self.index
            .lock()
            .set(&auction.id, Keys::of(auction, self.retention_ms));
    }

    fn keys(&self, auction: &Auction) -> Keys {
        Keys::of(auction, self.retention_ms)
    }
}

/// Writes decided changes to the archive in batches, then releases them.
async fn group_committer(shared: Arc<Shared>, mut rx: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(shared.config.batch_max);
    let mut records: Vec<ArchivedChange> = Vec::with_capacity(shared.config.batch_max);
    loop {
        let Some(first) = rx.recv().await else {
            tracing::info!("group committer stopped: every engine handle dropped");
            return;
        };
        shared.committing.store(true, Ordering::Release);
        batch.push(first);
        let deadline = tokio::time::Instant::now() + shared.config.batch_window;
        while batch.len() < shared.config.batch_max {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(p)) => batch.push(p),
                        _ => break,
                    }
                }
            }
        }
        records.clear();
        records.extend(batch.iter().map(|p| ArchivedChange {
            auction: p.change.auction.clone(),
            event: p.change.event.clone(),
            bid_id: p.bid_id.clone(),
            request_id: p.request_id.clone(),
        }));
        let mut backoff = Duration::from_millis(50);
        loop {
            match shared.archive.record_batch(&records).await {
                Ok(()) => break,
                Err(e) => {
                    if shared.archive_healthy.swap(false, Ordering::AcqRel) {
                        tracing::error!(error = %e, "archive commit failed; refusing new bids until it recovers");
                    }
                    metrics::counter!("gavel_archive_commit_failures_total").increment(1);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
        if !shared.archive_healthy.swap(true, Ordering::AcqRel) {
            tracing::info!("archive commits again; accepting bids");
        }
        metrics::counter!("gavel_archive_batches_total").increment(1);
        metrics::histogram!("gavel_archive_batch_size").record(batch.len() as f64);
        // Release every reply first, then feed the fan-out: a backed-up fan-out must never
        // hold back a bidder's confirmation.
        // Each auction's watermark moves once per batch, to its highest committed seq: every
        // move wakes all of that auction's waiting bidders, so one per change would wake them
        // once for each of the auction's changes in the batch.
        let mut watermarks: HashMap<usize, (&Arc<Slot>, u64)> = HashMap::new();
        for p in &batch {
            {
                let mut c = p.slot.confirmed.lock();
                c.auction = p.change.auction.clone();
                if let Event::Bid { entry, .. } = &p.change.event {
                    c.recent.push_front(entry.clone());
                    c.recent.truncate(shared.config.recent_bids);
                }
            }
            let seq = p.change.auction.state.seq;
            watermarks
                .entry(Arc::as_ptr(&p.slot) as usize)
                .and_modify(|w| w.1 = w.1.max(seq))
                .or_insert((&p.slot, seq));
        }
        for (slot, seq) in watermarks.into_values() {
            slot.durable.send_replace(seq);
        }
        for p in batch.drain(..) {
            // The fan-out may be gone at shutdown; the change is committed either way.
            let _ = shared.changes_tx.send(p.change).await;
        }
        shared.committing.store(false, Ordering::Release);
    }
}

#[async_trait]
impl Engine for MemoryEngine {
    async fn create_auction(&self, mut auction: Auction) -> Result<Auction, EngineError> {
        gavel_core::chain::seal_created(&mut auction, self.inner.decision_time());
        if self.inner.auctions.read().contains_key(&auction.id) {
            return Err(EngineError::AlreadyExists(auction.id));
        }
        self.inner
            .shared
            .archive
            .create_auction(&auction)
            .await
            .map_err(|e| match e {
                gavel_archive::ArchiveError::AlreadyExists(id) => EngineError::AlreadyExists(id),
                e => storage(e),
            })?;
        // Announce the creation before any bid can exist, so the fan-out sees seq 1 first.
        let _ = self
            .inner
            .shared
            .changes_tx
            .send(Arc::new(Change {
                auction: auction.clone(),
                event: Event::Created,
            }))
            .await;
        {
            let mut map = self.inner.auctions.write();
            if map.contains_key(&auction.id) {
                return Err(EngineError::AlreadyExists(auction.id));
            }
            map.insert(
                auction.id.clone(),
                Arc::new(new_slot(auction.clone(), VecDeque::new())),
            );
        }
        self.inner.reindex(&auction);
        Ok(auction)
    }

    async fn place_bid(
        &self,
        id: &AuctionId,
        request_id: &RequestId,
        req: BidRequest,
    ) -> Result<BidReply, EngineError> {
        let Some(slot) = self.hot(id) else {
            return self.bid_archived(id, request_id, &req).await;
        };
        let key = (req.bidder.id.clone(), request_id.clone());
        // A repeat must not need the archive to be healthy, so look it up first.
        // Made before taking the lock: the generator has a process-wide lock of its own.
        let bid_id = uuid::Uuid::now_v7();
        let (reply, decided_at) = {
            let mut live = slot.live.lock();
            if let Some(stored) = live.requests.get(&key) {
                // A repeat gets the first answer, even while the archive is unavailable.
                (stored.reply.clone(), stored.decided_at)
            } else {
                // Taking a queue slot is synchronous, so it may happen under the lock.
                let permit = self.reserve_commit()?;
                let now = self.inner.decision_time();
                #[cfg(feature = "broken-cas")]
                let stale = broken::stale_copy(&slot);
                #[cfg(feature = "broken-cas")]
                let base = stale.as_ref().unwrap_or(&live.auction);
                #[cfg(not(feature = "broken-cas"))]
                let base = &live.auction;
                let mut decision = rules::place_bid(base, &req, now);
                if let Some(change) = decision.change.as_mut() {
                    gavel_core::chain::seal(base, change, now);
                }
                let decided_at = decision.decided_at(base);
                if let Some(change) = decision.change {
                    let change = Arc::new(change);
                    let moved = self.inner.keys(&live.auction) != self.inner.keys(&change.auction);
                    live.auction = change.auction.clone();
                    let bid_id =
                        matches!(change.event, Event::Bid { .. }).then(|| bid_id.to_string());
                    // The archive keys accepted bids by their bidder's request id; a
                    // proxy's counter-bid belongs to the leader, not to this request.
                    let request_id = decision.outcome.is_ok().then(|| request_id.clone());
                    permit.send(Pending {
                        slot: slot.clone(),
                        change,
                        bid_id,
                        request_id,
                    });
                    if moved {
                        self.inner.reindex(&live.auction);
                    }
                }
                let reply = BidReply {
                    outcome: decision.outcome,
                    auction: as_seen_by(live.auction.clone(), &req.bidder.id),
                };
                let config = &self.inner.shared.config;
                remember(
                    &mut live,
                    config,
                    key,
                    Arc::new(StoredReply {
                        reply: reply.clone(),
                        decided_at,
                    }),
                    now,
                );
                if live.auction.state.closing.is_some() {
                    forget_rejections(&mut live);
                }
                (reply, decided_at)
            }
        };
        self.wait_durable(&slot, decided_at).await?;
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
        let Some(slot) = self.hot(id) else {
            // Released after its retention: the archive holds the accepted answers.
            let Some(auction) = self.archived(id).await? else {
                return Ok(None);
            };
            let stored = self
                .inner
                .shared
                .archive
                .reply(id, bidder, request_id)
                .await
                .map_err(storage)?;
            return Ok(stored.map(|r| stored_reply(&auction, r.state).reply.clone()));
        };
        let stored = slot
            .live
            .lock()
            .requests
            .get(&(bidder.clone(), request_id.clone()))
            .cloned();
        let Some(stored) = stored else {
            return Ok(None);
        };
        self.wait_durable(&slot, stored.decided_at).await?;
        Ok(Some(stored.reply.clone()))
    }

    async fn auction(&self, id: &AuctionId) -> Result<Option<Auction>, EngineError> {
        match self.hot(id) {
            Some(slot) => Ok(Some(slot.confirmed.lock().auction.clone())),
            None => self.archived(id).await,
        }
    }

    /// The hot auctions (live, or closed within the retention period).
    async fn list(&self) -> Result<Vec<Auction>, EngineError> {
        let slots: Vec<Arc<Slot>> = self.inner.auctions.read().values().cloned().collect();
        Ok(slots
            .iter()
            .map(|s| s.confirmed.lock().auction.clone())
            .collect())
    }

    async fn list_live(
        &self,
        after: Option<(Millis, AuctionId)>,
        limit: usize,
    ) -> Result<Vec<Auction>, EngineError> {
        let ids = self.inner.index.lock().live_after(after.as_ref(), limit);
        let auctions = self.inner.auctions.read();
        Ok(ids
            .iter()
            .filter_map(|id| auctions.get(id))
            .map(|slot| slot.confirmed.lock().auction.clone())
            .collect())
    }

    async fn recent_bids(
        &self,
        id: &AuctionId,
        limit: usize,
    ) -> Result<Vec<BidEntry>, EngineError> {
        let Some(slot) = self.hot(id) else {
            let bids = self
                .inner
                .shared
                .archive
                .bids(id, None, u32::try_from(limit).unwrap_or(u32::MAX))
                .await
                .map_err(storage)?;
            if bids.is_empty() && self.archived(id).await?.is_none() {
                return Err(EngineError::NotFound);
            }
            return Ok(bids);
        };
        let c = slot.confirmed.lock();
        Ok(c.recent.iter().take(limit).cloned().collect())
    }

    async fn advance(&self) -> Result<Vec<ChangeNotice>, EngineError> {
        let now = self.inner.decision_time();
        let due = self.inner.index.lock().due(now);
        // Decide every due transition first, so they share batches; then wait once each.
        let mut decided = Vec::new();
        let mut first_error = None;
        for id in due {
            let Some(slot) = self.hot(&id) else { continue };
            match self.decide_transition(&slot, now) {
                Ok(Some(change)) => decided.push((slot, change)),
                Ok(None) => {}
                Err(e) => {
                    // The queue is full or the archive is down: the rest waits for the next round.
                    first_error = Some(e);
                    break;
                }
            }
        }
        let mut changes = Vec::with_capacity(decided.len());
        for (slot, change) in decided {
            match self.wait_durable(&slot, change.auction.state.seq).await {
                Ok(()) => changes.push(change),
                Err(e) => first_error = Some(e),
            }
        }
        self.release_expired(now);
        match first_error {
            Some(e) if changes.is_empty() => Err(e),
            _ => Ok(changes),
        }
    }

    async fn next_deadline(&self) -> Result<Option<Millis>, EngineError> {
        Ok(self.inner.index.lock().next_deadline())
    }

    async fn admin_close(
        &self,
        id: &AuctionId,
        action: AdminAction,
        by: &str,
    ) -> Result<Result<Auction, Rejection>, EngineError> {
        let Some(slot) = self.hot(id) else {
            return match self.archived(id).await? {
                Some(_) => Ok(Err(Rejection::Closed)),
                None => Err(EngineError::NotFound),
            };
        };
        let permit = self.reserve_commit()?;
        let change = {
            let mut live = slot.live.lock();
            let now = self.inner.decision_time();
            let decided = match action {
                AdminAction::Cancel => rules::cancel(&live.auction, now, by),
                AdminAction::EndEarly => rules::end_early(&live.auction, now, by),
            };
            let change = match decided {
                Ok(mut c) => {
                    gavel_core::chain::seal(&live.auction, &mut c, now);
                    Arc::new(c)
                }
                Err(r) => return Ok(Err(r)),
            };
            live.auction = change.auction.clone();
            forget_rejections(&mut live);
            self.inner.reindex(&live.auction);
            permit.send(Pending {
                slot: slot.clone(),
                change: change.clone(),
                bid_id: None,
                request_id: None,
            });
            change
        };
        self.wait_durable(&slot, change.auction.state.seq).await?;
        Ok(Ok(change.auction.clone()))
    }

    fn take_changes(&self) -> Option<ChangeFeed> {
        self.inner.changes_rx.lock().take()
    }

    async fn watch(&self, id: &AuctionId) -> Result<(), EngineError> {
        if self.hot(id).is_some() || self.archived(id).await?.is_some() {
            Ok(())
        } else {
            Err(EngineError::NotFound)
        }
    }

    fn unwatch(&self, _id: &AuctionId) {}

    /// Never earlier than the last decision (see `Inner::decision_time`).
    fn now(&self) -> Millis {
        self.inner
            .clock
            .now()
            .max(self.inner.last_decision.load(Ordering::Acquire))
    }

    fn stats(&self) -> EngineStats {
        EngineStats {
            hot_auctions: Some(self.inner.auctions.read().len() as u64),
            watched_auctions: None,
        }
    }

    /// Ready while the group committer runs and its last commit went through.
    async fn check_ready(&self) -> Result<(), EngineError> {
        if self.inner.commit_tx.is_closed() {
            return Err(EngineError::Unavailable(Cause::msg(
                "the group committer has stopped",
            )));
        }
        if !self.inner.shared.archive_healthy.load(Ordering::Acquire) {
            return Err(EngineError::Unavailable(Cause::msg(
                "the archive cannot commit right now",
            )));
        }
        Ok(())
    }

    async fn flush(&self) {
        let tx = &self.inner.commit_tx;
        let busy = || {
            tx.capacity() < tx.max_capacity()
                || self.inner.shared.committing.load(Ordering::Acquire)
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        // Idle twice in a row, so a batch just taken off the queue is not missed.
        let mut idle_seen = 0;
        while idle_seen < 2 && tokio::time::Instant::now() < deadline {
            idle_seen = if busy() { 0 } else { idle_seen + 1 };
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Metric label of an outcome.
pub fn outcome_label(outcome: &Result<(), Rejection>) -> &'static str {
    match outcome {
        Ok(()) => "accepted",
        Err(r) => r.code(),
    }
}

/// Tests only (feature `broken-cas`, never in the product): a switch that makes `place_bid`
/// decide on the last committed state instead of the live one, as an engine without its
/// compare-and-swap would, so a test can prove the linearizability checker fails.
#[cfg(feature = "broken-cas")]
pub mod broken {
    use std::sync::atomic::{AtomicBool, Ordering};

    static SKIP_CAS: AtomicBool = AtomicBool::new(false);

    /// Breaks (or mends) every memory engine in this process.
    pub fn skip_compare_and_swap(on: bool) {
        SKIP_CAS.store(on, Ordering::SeqCst);
    }

    pub(super) fn stale_copy(slot: &super::Slot) -> Option<gavel_core::Auction> {
        SKIP_CAS
            .load(Ordering::Relaxed)
            .then(|| slot.confirmed.lock().auction.clone())
    }
}
