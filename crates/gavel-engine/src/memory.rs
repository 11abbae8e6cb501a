//! The in-memory engine: embedded mode's authority. Single node only.
//!
//! Each auction has its own lock (a `parking_lot::Mutex`: nothing is awaited while it is
//! held), so bids on one auction are decided one at a time and bids on different auctions
//! never wait for each other. The decision is made in memory; the change is handed to the
//! group committer, which writes batches to the archive in one transaction each. A reply
//! or a change notice is released only when the archive has committed the `seq` it reports
//! (the auction's *durable watermark*), so nobody is ever told something a crash could
//! take back — not an acceptance, not an "outbid" caused by a bid that was never stored.

use crate::{
    AdminAction, BidReply, Cause, ChangeFeed, ChangeNotice, Clock, Engine, EngineError, EngineStats,
};
use async_trait::async_trait;
use gavel_archive::{Archive, ArchivedChange};
use gavel_core::{
    rules, Auction, AuctionId, BidEntry, BidRequest, BidderId, Change, Event, Millis, Rejection,
    RequestId, Status,
};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeSet, HashMap, VecDeque};
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
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            batch_max: 1000,
            batch_window: Duration::from_millis(2),
            reply_timeout: Duration::from_secs(10),
            max_requests_per_auction: 50_000,
            recent_bids: 20,
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

/// Deadlines in time order, and each auction's current one.
type Deadlines = (BTreeSet<(Millis, AuctionId)>, HashMap<AuctionId, Millis>);

/// What the engine's handles share. Dropping the last handle drops this, and with it the
/// only sender of the commit queue: the group committer then commits what is queued and
/// stops (see [`MemoryEngine::stopped`]).
struct Inner {
    auctions: RwLock<HashMap<AuctionId, Arc<Slot>>>,
    /// (deadline, auction): the next start or end to act on, per auction.
    deadlines: Mutex<Deadlines>,
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

fn deadline_of(a: &Auction) -> Option<Millis> {
    match (a.state.closing.is_some(), a.state.status) {
        (true, _) => None,
        (false, Status::Scheduled) => Some(a.spec.starts_at),
        (false, _) => Some(a.state.ends_at),
    }
}

impl MemoryEngine {
    /// Rebuilds every auction from the archive and starts the group committer.
    pub async fn start(
        archive: Arc<dyn Archive>,
        clock: Clock,
        config: MemoryConfig,
    ) -> Result<Self, EngineError> {
        let (commit_tx, commit_rx) = mpsc::channel(COMMIT_QUEUE);
        let (changes_tx, changes_rx) = mpsc::channel(CHANGE_FEED);
        let (done_tx, committer_done) = watch::channel(());
        let shared = Arc::new(Shared {
            archive: archive.clone(),
            changes_tx,
            archive_healthy: AtomicBool::new(true),
            committing: AtomicBool::new(false),
            config,
        });
        let inner = Arc::new(Inner {
            auctions: RwLock::new(HashMap::new()),
            deadlines: Mutex::new((BTreeSet::new(), HashMap::new())),
            commit_tx,
            changes_rx: Mutex::new(Some(changes_rx)),
            clock,
            last_decision: AtomicI64::new(i64::MIN),
            committer_done,
            shared: shared.clone(),
        });
        let stored = archive.load_auctions().await.map_err(storage)?;
        let count = stored.len();
        let now = inner.clock.now();
        for auction in stored {
            let recent = archive
                .bids(&auction.id, None, inner.shared.config.recent_bids as u32)
                .await
                .map_err(storage)?;
            let slot = new_slot(auction.clone(), recent.into());
            inner.set_deadline(&auction);
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

    fn slot(&self, id: &AuctionId) -> Result<Arc<Slot>, EngineError> {
        self.inner
            .auctions
            .read()
            .get(id)
            .cloned()
            .ok_or(EngineError::NotFound)
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
        let Some(change) = rules::open_if_due(&live.auction, now)
            .or_else(|| rules::close_if_due(&live.auction, now))
        else {
            self.inner.set_deadline(&live.auction);
            return Ok(None);
        };
        let change = Arc::new(change);
        live.auction = change.auction.clone();
        if live.auction.state.closing.is_some() {
            forget_rejections(&mut live);
        }
        self.inner.set_deadline(&live.auction);
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

/// The auction as a bidder may be told it: without another bidder's proxy maximum.
fn as_seen_by(mut auction: Auction, bidder: &BidderId) -> Auction {
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

    fn set_deadline(&self, auction: &Auction) {
        let mut guard = self.deadlines.lock();
        let (set, by_id) = &mut *guard;
        let new = deadline_of(auction);
        let old = by_id.get(&auction.id).copied();
        if old == new {
            return;
        }
        if let Some(old) = old {
            set.remove(&(old, auction.id.clone()));
            by_id.remove(&auction.id);
        }
        if let Some(new) = new {
            set.insert((new, auction.id.clone()));
            by_id.insert(auction.id.clone(), new);
        }
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
    async fn create_auction(&self, auction: Auction) -> Result<Auction, EngineError> {
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
        self.inner.set_deadline(&auction);
        Ok(auction)
    }

    async fn place_bid(
        &self,
        id: &AuctionId,
        request_id: &RequestId,
        req: BidRequest,
    ) -> Result<BidReply, EngineError> {
        let slot = self.slot(id)?;
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
                let decision = rules::place_bid(&live.auction, &req, now);
                let decided_at = decision.decided_at(&live.auction);
                if let Some(change) = decision.change {
                    let change = Arc::new(change);
                    let deadline_moved = deadline_of(&live.auction) != deadline_of(&change.auction);
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
                    if deadline_moved {
                        self.inner.set_deadline(&live.auction);
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

    async fn auction(&self, id: &AuctionId) -> Result<Option<Auction>, EngineError> {
        Ok(self
            .inner
            .auctions
            .read()
            .get(id)
            .map(|s| s.confirmed.lock().auction.clone()))
    }

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
        Ok(crate::live_page(self.list().await?, after.as_ref(), limit))
    }

    async fn recent_bids(
        &self,
        id: &AuctionId,
        limit: usize,
    ) -> Result<Vec<BidEntry>, EngineError> {
        let slot = self.slot(id)?;
        let c = slot.confirmed.lock();
        Ok(c.recent.iter().take(limit).cloned().collect())
    }

    async fn advance(&self) -> Result<Vec<ChangeNotice>, EngineError> {
        let now = self.inner.decision_time();
        let due: Vec<AuctionId> = {
            let guard = self.inner.deadlines.lock();
            guard
                .0
                .iter()
                .take_while(|(at, _)| *at <= now)
                .map(|(_, id)| id.clone())
                .collect()
        };
        // Decide every due transition first, so they share batches; then wait once each.
        let mut decided = Vec::new();
        let mut first_error = None;
        for id in due {
            let Ok(slot) = self.slot(&id) else { continue };
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
        match first_error {
            Some(e) if changes.is_empty() => Err(e),
            _ => Ok(changes),
        }
    }

    async fn next_deadline(&self) -> Result<Option<Millis>, EngineError> {
        Ok(self.inner.deadlines.lock().0.first().map(|(at, _)| *at))
    }

    async fn admin_close(
        &self,
        id: &AuctionId,
        action: AdminAction,
        by: &str,
    ) -> Result<Result<Auction, Rejection>, EngineError> {
        let slot = self.slot(id)?;
        let permit = self.reserve_commit()?;
        let change = {
            let mut live = slot.live.lock();
            let now = self.inner.decision_time();
            let decided = match action {
                AdminAction::Cancel => rules::cancel(&live.auction, now, by),
                AdminAction::EndEarly => rules::end_early(&live.auction, now, by),
            };
            let change = match decided {
                Ok(c) => Arc::new(c),
                Err(r) => return Ok(Err(r)),
            };
            live.auction = change.auction.clone();
            forget_rejections(&mut live);
            self.inner.set_deadline(&live.auction);
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
        self.slot(id).map(|_| ())
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
