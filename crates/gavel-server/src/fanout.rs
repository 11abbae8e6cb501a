//! Local fan-out: turns the engine's committed changes into frames for this node's watchers.
//!
//! Every change is encoded once into a `Utf8Bytes` (a refcounted buffer) and the same
//! buffer goes to every watcher through a per-auction `broadcast` channel, so a delivery
//! costs a refcount, never a serialization. A watcher that falls behind the channel's
//! capacity gets `Lagged` and is sent the latest snapshot instead (conflation); a slow
//! watcher never slows the others, because the hub never waits for a socket.
//!
//! # Rooms: loaded, never assumed; kept only while watched
//!
//! A room exists only for an auction someone on this node watches. It is created by the
//! first subscriber, which loads the auction and its recent bids from the engine before
//! any snapshot is served; changes that arrive while it loads are merged in, so a room
//! never starts from a partial history (a change alone says nothing about the bids before
//! it). A change for an auction without a room only reaches the lobby.
//!
//! Each subscription holds a [`Watch`]: dropping it (unsubscribe, disconnect) lowers the
//! room's watcher count. A room nobody has watched for [`ROOM_IDLE`] is dropped by
//! [`Hub::sweep`], which also tells the engine ([`Engine::unwatch`]), so rooms, and the
//! engine's per-node watch set, shrink back when people leave. The increment of a watcher
//! count happens under the rooms map's read lock and the removal under its write lock, so a
//! subscriber never joins a room that is being dropped.
//!
//! Each room keeps the state it last published. The change carries the full new state, so
//! a gap in `seq` (possible with Redis Pub/Sub) is repaired by sending a snapshot, once the
//! room's bid history has been read again (it may miss the bids of the changes it never saw).

use crate::{latency, views};
use axum::extract::ws::Utf8Bytes;
use gavel_archive::Archive;
use gavel_core::{Auction, AuctionId, BidEntry, Change, Event, Millis};
use gavel_engine::{Cause, ChangeFeed, Engine, EngineError};
use gavel_protocol::ServerMessage;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Updates a watcher may fall behind by before it is resynced with a snapshot.
const ROOM_BUFFER: usize = 256;
/// Updates kept per auction to answer `subscribe` with `since_seq`.
const REPLAY_RING: usize = 64;
/// History entries kept per auction for snapshots.
const RECENT_BIDS: usize = 20;
/// How long a room nobody watches is kept (a page reload or a brief reconnect finds it
/// still warm) before [`Hub::sweep`] drops it.
pub const ROOM_IDLE: Duration = Duration::from_secs(5);

/// One encoded message for an auction.
#[derive(Debug)]
pub struct Frame {
    pub auction_id: AuctionId,
    /// The auction's seq after this message (0 for messages outside the seq order).
    pub seq: u64,
    pub text: Utf8Bytes,
    /// The authority's time of the change this frame announces, for an update whose
    /// delivery latency is measured (the writer records it once the frame is written).
    pub decided_at: Option<Millis>,
    /// The room's latency counters, for a room's update (not the lobby's).
    pub latency: Option<Arc<latency::Stats>>,
}

pub type SharedFrame = Arc<Frame>;

struct RoomState {
    /// `None` only while the first subscriber loads the room and no change has arrived.
    auction: Option<Auction>,
    /// Newest first.
    recent: VecDeque<BidEntry>,
    /// Whether the auction and its recent bids have been loaded from the engine. Until
    /// then changes are only merged in: nobody receives frames from a loading room.
    loaded: bool,
    ring: VecDeque<SharedFrame>,
    /// The encoded snapshot body for the `seq` it was built at.
    snapshot: Option<(u64, Arc<str>)>,
    /// After a gap in `seq`: the seq up to which `recent` may miss bids until the history is
    /// read again from the engine (0: complete). No snapshot is handed out meanwhile, since it
    /// would show the new seq without the bids that led to it.
    history_behind: u64,
}

/// How long a new subscriber waits for its room to reach the authority's latest state.
const CATCH_UP: Duration = Duration::from_secs(1);

/// How long a room keeps trying to read its history again after a gap before it resyncs
/// its watchers with the history it has.
const HISTORY_RELOAD_GIVE_UP: Duration = Duration::from_secs(10);

/// The watchers of one auction on this node.
pub struct Room {
    tx: broadcast::Sender<SharedFrame>,
    state: Mutex<RoomState>,
    /// Loaded once, by the first subscriber; the others wait for it.
    ready: tokio::sync::OnceCell<()>,
    watchers: AtomicUsize,
    watchers_announced: AtomicU64,
    /// When the watcher count last dropped to zero.
    idle_since: Mutex<Option<Instant>>,
    /// Delivery latency of this auction's updates on this node.
    latency: Arc<latency::Stats>,
    /// Woken whenever a change reaches the room (see [`Hub::catch_up`]).
    changed: tokio::sync::Notify,
}

impl Room {
    fn new() -> Arc<Room> {
        Arc::new(Room {
            tx: broadcast::channel(ROOM_BUFFER).0,
            state: Mutex::new(RoomState {
                auction: None,
                recent: VecDeque::new(),
                loaded: false,
                ring: VecDeque::with_capacity(REPLAY_RING),
                snapshot: None,
                history_behind: 0,
            }),
            ready: tokio::sync::OnceCell::new(),
            watchers: AtomicUsize::new(0),
            watchers_announced: AtomicU64::new(0),
            idle_since: Mutex::new(None),
            latency: Arc::new(latency::Stats::new()),
            changed: tokio::sync::Notify::new(),
        })
    }

    /// The seq of the state this room holds (0 before it has one), if its history is
    /// complete up to it.
    fn complete_seq(&self) -> Option<u64> {
        let st = self.state.lock();
        (st.history_behind == 0).then(|| st.auction.as_ref().map_or(0, |a| a.state.seq))
    }

    /// Delivery latency of this auction's updates on this node.
    pub fn latency(&self) -> &latency::Stats {
        &self.latency
    }

    /// Connections watching the auction on this node.
    pub fn watchers(&self) -> u64 {
        self.watchers.load(Ordering::Relaxed) as u64
    }
}

/// Live auctions in the lobby; more are paged through `GET /api/auctions`.
pub const LOBBY_LIVE: usize = 200;
/// Closed auctions in the lobby's own section, most recently closed first.
pub const LOBBY_CLOSED: usize = 20;
/// How long an encoded lobby is reused when nothing changed (statuses move with the clock).
const LOBBY_MAX_AGE: Duration = Duration::from_secs(1);

/// The encoded lobby and the hub version it was built at.
struct LobbyCache {
    version: u64,
    built: Instant,
    text: Utf8Bytes,
}

/// A watcher's place in a room. Dropping it leaves the room; the last one to leave starts
/// the room's idle time (see [`Hub::sweep`]).
pub struct Watch {
    room: Arc<Room>,
}

impl Watch {
    pub fn room(&self) -> &Room {
        &self.room
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if self.room.watchers.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.room.idle_since.lock() = Some(Instant::now());
        }
    }
}

/// How a new subscription starts.
pub enum Start {
    /// The frames after `since_seq`, in order.
    Replay(Vec<SharedFrame>),
    /// A full snapshot (encoded for this subscriber).
    Snapshot(Utf8Bytes),
}

pub struct Hub {
    engine: Arc<dyn Engine>,
    /// Where the lobby's closed auctions come from (none: the lobby lists no closed ones).
    archive: Option<Arc<dyn Archive>>,
    rooms: RwLock<HashMap<AuctionId, Arc<Room>>>,
    lobby: broadcast::Sender<SharedFrame>,
    /// Bumped by every change the hub applies: a cached lobby older than this is stale.
    changes: AtomicU64,
    /// The lobby, encoded once and shared by every `subscribe_lobby` until something
    /// changes. An async lock: one request builds it while the others wait for the result.
    lobby_cache: tokio::sync::Mutex<Option<LobbyCache>>,
    /// For the tasks the hub starts itself (a history reload after a gap).
    me: std::sync::Weak<Hub>,
    /// How long an unwatched room is kept.
    room_idle: Duration,
}

fn encode(msg: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(msg.to_json())
}

/// Adds `entry` to a newest-first history unless it is there already.
fn remember_bid(recent: &mut VecDeque<BidEntry>, entry: &BidEntry) {
    if recent.iter().any(|e| e.seq == entry.seq) {
        return;
    }
    let at = recent
        .iter()
        .position(|e| e.seq < entry.seq)
        .unwrap_or(recent.len());
    recent.insert(at, entry.clone());
    recent.truncate(RECENT_BIDS);
}

impl Hub {
    /// A hub over `engine`; the lobby's closed auctions come from `archive`.
    pub fn new(engine: Arc<dyn Engine>, archive: Option<Arc<dyn Archive>>) -> Arc<Self> {
        Self::with_room_idle(engine, archive, ROOM_IDLE)
    }

    /// A hub that keeps unwatched rooms for `room_idle` instead of [`ROOM_IDLE`].
    pub fn with_room_idle(
        engine: Arc<dyn Engine>,
        archive: Option<Arc<dyn Archive>>,
        room_idle: Duration,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Hub {
            engine,
            archive,
            rooms: RwLock::new(HashMap::new()),
            lobby: broadcast::channel(4096).0,
            changes: AtomicU64::new(0),
            lobby_cache: tokio::sync::Mutex::new(None),
            me: me.clone(),
            room_idle,
        })
    }

    /// Applies the engine's changes until the feed ends or `stop` is cancelled.
    pub async fn run(self: Arc<Self>, mut feed: ChangeFeed, stop: CancellationToken) {
        loop {
            let change = tokio::select! {
                change = feed.recv() => change,
                _ = stop.cancelled() => return,
            };
            let Some(change) = change else { return };
            self.apply(&change);
        }
    }

    /// Rooms on this node (watched now, or within the last [`ROOM_IDLE`]).
    pub fn rooms(&self) -> usize {
        self.rooms.read().len()
    }

    /// The `n` watched rooms with the most watchers on this node, most first (ties by id).
    pub fn most_watched(&self, n: usize) -> Vec<(AuctionId, Arc<Room>)> {
        let mut rooms: Vec<(AuctionId, Arc<Room>)> = self
            .rooms
            .read()
            .iter()
            .filter(|(_, r)| r.watchers() > 0)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        rooms.sort_by(|a, b| b.1.watchers().cmp(&a.1.watchers()).then(a.0.cmp(&b.0)));
        rooms.truncate(n);
        rooms
    }

    fn room(&self, id: &AuctionId) -> Option<Arc<Room>> {
        self.rooms.read().get(id).cloned()
    }

    /// Publishes one committed change to the auction's watchers and the lobby.
    pub fn apply(&self, change: &Change) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        let next = &change.auction;
        let lobby_first = || first_message(change, self.engine.now());
        let Some(room) = self.room(&next.id) else {
            // Nobody here watches it: only the lobby hears of it.
            return self.publish_lobby_message(lobby_first, change);
        };
        self.apply_to_room(&room, change);
        room.changed.notify_waiters();
    }

    fn apply_to_room(&self, room: &Arc<Room>, change: &Change) {
        let next = &change.auction;
        let lobby_first = || first_message(change, self.engine.now());
        let mut st = room.state.lock();
        if let Event::Bid { entry, .. } = &change.event {
            remember_bid(&mut st.recent, entry);
        }
        let prev = match (&st.auction, st.loaded) {
            (Some(prev), true) if next.state.seq > prev.state.seq => prev.clone(),
            (_, true) => {
                // Already in the room (it was loaded from the engine's newer state, or this
                // is a duplicate). The lobby may not have seen it; its clients apply each seq
                // once.
                drop(st);
                return self.publish_lobby_message(lobby_first, change);
            }
            (_, false) => {
                // Loading: keep the newest state; the loader merges it with what it reads.
                if st
                    .auction
                    .as_ref()
                    .is_none_or(|a| a.state.seq < next.state.seq)
                {
                    st.auction = Some(next.clone());
                }
                drop(st);
                return self.publish_lobby_message(lobby_first, change);
            }
        };
        let prev_seq = prev.state.seq;
        st.auction = Some(next.clone());
        if next.state.seq != prev_seq + 1 {
            // A gap: our watchers missed changes we never saw, and the history may miss their
            // bids. The watchers get a snapshot once the history is read again; until then a
            // new subscriber waits for it (see `catch_up`).
            metrics::counter!("gavel_fanout_gaps_total").increment(1);
            st.ring.clear();
            st.snapshot = None;
            st.history_behind = st.history_behind.max(next.state.seq);
            drop(st);
            self.reload_history(&next.id, room);
            return self.publish_lobby_message(lobby_first, change);
        }
        let frame = Arc::new(Frame {
            auction_id: next.id.clone(),
            seq: next.state.seq,
            text: encode(&message_for(&prev, change)),
            decided_at: decided_at(change),
            latency: Some(room.latency.clone()),
        });
        if st.ring.len() == REPLAY_RING {
            st.ring.pop_front();
        }
        st.ring.push_back(frame.clone());
        let _ = room.tx.send(frame.clone());
        drop(st);
        self.publish_lobby(frame);
    }

    fn publish_lobby_message(&self, message: impl FnOnce() -> ServerMessage, change: &Change) {
        if self.lobby.receiver_count() > 0 {
            self.publish_lobby(Arc::new(Frame {
                auction_id: change.auction.id.clone(),
                seq: change.auction.state.seq,
                text: encode(&message()),
                decided_at: decided_at(change),
                latency: None,
            }));
        }
    }

    fn publish_lobby(&self, frame: SharedFrame) {
        if self.lobby.receiver_count() > 0 {
            let _ = self.lobby.send(frame);
        }
    }

    /// Joins the auction's room (creating it if needed) as one more watcher.
    fn join(&self, id: &AuctionId) -> Watch {
        if let Some(room) = self.rooms.read().get(id) {
            // Under the read lock: `sweep` removes rooms under the write lock, so this room
            // cannot be dropped between the lookup and the increment.
            room.watchers.fetch_add(1, Ordering::AcqRel);
            return Watch { room: room.clone() };
        }
        let mut rooms = self.rooms.write();
        let room = rooms.entry(id.clone()).or_insert_with(Room::new).clone();
        room.watchers.fetch_add(1, Ordering::AcqRel);
        Watch { room }
    }

    /// Loads a room from the engine, merging in whatever changes arrived meanwhile.
    async fn load(&self, id: &AuctionId, room: &Room) -> Result<(), EngineError> {
        self.engine.watch(id).await?;
        let auction = self
            .engine
            .auction(id)
            .await?
            .ok_or(EngineError::NotFound)?;
        let recent = self.engine.recent_bids(id, RECENT_BIDS).await?;
        let mut st = room.state.lock();
        if st
            .auction
            .as_ref()
            .is_none_or(|a| a.state.seq < auction.state.seq)
        {
            st.auction = Some(auction);
        }
        for entry in &recent {
            remember_bid(&mut st.recent, entry);
        }
        // The bids were read after the state, so they may hold changes the room's state has
        // not reached yet (their feed messages are still on the way). A snapshot must not
        // show a bid newer than its own seq: leave those to their feed messages, which add
        // them back as the updates they are.
        let seq = st.auction.as_ref().map_or(0, |a| a.state.seq);
        st.recent.retain(|e| e.seq <= seq);
        st.ring.clear();
        st.snapshot = None;
        st.loaded = true;
        Ok(())
    }

    /// Reads the room's recent bids again from the engine after a gap and resyncs its
    /// watchers with a snapshot that has them. Retried while the engine is unavailable; after
    /// [`HISTORY_RELOAD_GIVE_UP`] the watchers get the snapshot the room has.
    fn reload_history(&self, id: &AuctionId, room: &Arc<Room>) {
        let (Some(hub), Ok(rt)) = (self.me.upgrade(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        let (id, room) = (id.clone(), room.clone());
        rt.spawn(async move {
            let give_up = tokio::time::Instant::now() + HISTORY_RELOAD_GIVE_UP;
            let mut pause = Duration::from_millis(50);
            let read = loop {
                match hub.read_history(&id).await {
                    Ok(read) => break Some(read),
                    Err(e) if tokio::time::Instant::now() >= give_up => {
                        tracing::warn!(auction = %id, error = %e, "cannot reload a room's history; resyncing its watchers with what it has");
                        break None;
                    }
                    Err(e) => {
                        tracing::debug!(auction = %id, error = %e, "cannot reload a room's history yet");
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(1));
                    }
                }
            };
            let mut st = room.state.lock();
            let Some(seq) = st.auction.as_ref().map(|a| a.state.seq) else {
                return;
            };
            if let Some((covered, recent)) = read {
                for entry in &recent {
                    remember_bid(&mut st.recent, entry);
                }
                // As in `load`: bids newer than the room's state come with their own feed
                // messages.
                st.recent.retain(|e| e.seq <= seq);
                if covered < st.history_behind {
                    // A later gap is waiting for a later read, which resyncs.
                    return;
                }
            }
            st.history_behind = 0;
            st.snapshot = None;
            st.ring.clear();
            let text = snapshot_text(&mut st, hub.engine.now(), true);
            let _ = room.tx.send(Arc::new(Frame {
                auction_id: id.clone(),
                seq,
                text,
                decided_at: None,
                latency: None,
            }));
            drop(st);
            room.changed.notify_waiters();
        });
    }

    /// The engine's seq of an auction and its recent bids, read in that order so that the
    /// bids hold every bid up to that seq.
    async fn read_history(&self, id: &AuctionId) -> Result<(u64, Vec<BidEntry>), EngineError> {
        let seq = self
            .engine
            .auction(id)
            .await?
            .ok_or(EngineError::NotFound)?
            .state
            .seq;
        Ok((seq, self.engine.recent_bids(id, RECENT_BIDS).await?))
    }

    /// Subscribes to an auction. The start (replay or snapshot) and the receiver are taken
    /// under the room's lock, so nothing is missed or doubled between them. The [`Watch`]
    /// keeps the subscriber in the room until it is dropped.
    pub async fn subscribe(
        &self,
        id: &AuctionId,
        since_seq: Option<u64>,
    ) -> Result<(Watch, Start, broadcast::Receiver<SharedFrame>), EngineError> {
        let watch = self.join(id);
        let room = watch.room.clone();
        if let Err(e) = room.ready.get_or_try_init(|| self.load(id, &room)).await {
            drop(watch);
            // A room that never loaded (no such auction, engine unavailable) is not kept:
            // subscribing to made-up ids must not grow the hub.
            let mut rooms = self.rooms.write();
            if rooms.get(id).is_some_and(|r| {
                Arc::ptr_eq(r, &room)
                    && r.watchers.load(Ordering::Acquire) == 0
                    && !r.state.lock().loaded
            }) {
                rooms.remove(id);
            }
            return Err(e);
        }
        self.catch_up(id, &room).await;
        let mut st = room.state.lock();
        let rx = room.tx.subscribe();
        let current = st.auction.as_ref().map_or(0, |a| a.state.seq);
        let start = match since_seq {
            Some(since) if since >= current => Start::Replay(Vec::new()),
            Some(since)
                if st.ring.front().is_some_and(|f| {
                    f.seq <= since + 1 && st.ring.back().is_some_and(|b| b.seq == current)
                }) =>
            {
                Start::Replay(st.ring.iter().filter(|f| f.seq > since).cloned().collect())
            }
            Some(_) => Start::Snapshot(snapshot_text(&mut st, self.engine.now(), true)),
            None => Start::Snapshot(snapshot_text(&mut st, self.engine.now(), false)),
        };
        drop(st);
        Ok((watch, start, rx))
    }

    /// Waits, for at most [`CATCH_UP`], until the room holds at least the authority's current
    /// state of the auction. A bid's answer is released once its change is durable, and the
    /// change reaches the room a moment later through the feed: without this wait, a client
    /// subscribing right after its bid was confirmed could get a snapshot from before that
    /// bid (a read going back in time, found by the linearizability checker).
    async fn catch_up(&self, id: &AuctionId, room: &Room) {
        let target = match self.engine.auction(id).await {
            Ok(Some(auction)) => auction.state.seq,
            _ => return,
        };
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        loop {
            let changed = room.changed.notified();
            tokio::pin!(changed);
            // Registered before the check, so a change landing in between still wakes us.
            changed.as_mut().enable();
            let have = room.complete_seq();
            if have.is_some_and(|have| have >= target) {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                tracing::warn!(auction = %id, target, have, "a room did not reach the authority's state in time; the snapshot may lag");
                return;
            }
        }
    }

    /// The latest snapshot of a room and a fresh receiver positioned right after it, for a
    /// watcher that lagged: it skips everything it missed instead of replaying stale frames.
    /// No snapshot while the room's history is being read again after a gap: the snapshot
    /// that follows the read reaches the new receiver.
    pub fn resync(&self, room: &Room) -> (Option<Utf8Bytes>, broadcast::Receiver<SharedFrame>) {
        let mut st = room.state.lock();
        let rx = room.tx.subscribe();
        let snapshot =
            (st.history_behind == 0).then(|| snapshot_text(&mut st, self.engine.now(), true));
        (snapshot, rx)
    }

    /// Drops the rooms nobody has watched for [`ROOM_IDLE`] (or the hub's own idle time) and
    /// tells the engine this node
    /// no longer watches them. Called about once a second.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut dropped = Vec::new();
        {
            let mut rooms = self.rooms.write();
            rooms.retain(|id, room| {
                let idle = room.watchers.load(Ordering::Acquire) == 0
                    && room
                        .idle_since
                        .lock()
                        .is_none_or(|since| now.duration_since(since) >= self.room_idle);
                if idle {
                    dropped.push(id.clone());
                }
                !idle
            });
            metrics::gauge!("gavel_hub_rooms").set(rooms.len() as f64);
        }
        for id in &dropped {
            self.engine.unwatch(id);
        }
    }

    /// The lobby (the first [`LOBBY_LIVE`] live auctions by end time, then the last
    /// [`LOBBY_CLOSED`] closed ones, newest first) and a receiver for every auction's changes. The message
    /// is encoded once and the same buffer handed to every subscriber until a change or
    /// [`LOBBY_MAX_AGE`] makes it stale, so a thousand `subscribe_lobby` cost one lobby.
    pub async fn lobby(
        &self,
    ) -> Result<(Utf8Bytes, broadcast::Receiver<SharedFrame>), EngineError> {
        // Subscribe first, then look at the version: a change the cached lobby may miss is
        // then either in the receiver or has made the cache stale.
        let rx = self.lobby.subscribe();
        let mut cache = self.lobby_cache.lock().await;
        let version = self.changes.load(Ordering::Acquire);
        if let Some(c) = cache.as_ref() {
            if c.version == version && c.built.elapsed() < LOBBY_MAX_AGE {
                return Ok((c.text.clone(), rx));
            }
        }
        let now = self.engine.now();
        let mut live = self.engine.list_live(None, LOBBY_LIVE + 1).await?;
        let more = live.len() > LOBBY_LIVE;
        live.truncate(LOBBY_LIVE);
        let closed = match &self.archive {
            Some(archive) => archive
                .closed_auctions(None, LOBBY_CLOSED as u32)
                .await
                .map_err(|e| EngineError::Unavailable(Cause::new("archive", e)))?,
            None => Vec::new(),
        };
        let text = encode(&ServerMessage::Lobby {
            auctions: live
                .iter()
                .chain(&closed)
                .map(|a| views::auction_view(a, now, None))
                .collect(),
            more,
            server_time: now,
        });
        metrics::counter!("gavel_lobby_builds_total").increment(1);
        *cache = Some(LobbyCache {
            version,
            built: Instant::now(),
            text: text.clone(),
        });
        Ok((text, rx))
    }

    /// Sends `watchers` counts to rooms whose count changed, and exports the node's total
    /// (`gavel_watchers`: subscriptions to auctions). Called about once a second.
    pub fn announce_watchers(&self) {
        let rooms: Vec<(AuctionId, Arc<Room>)> = self
            .rooms
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let total: u64 = rooms.iter().map(|(_, r)| r.watchers()).sum();
        metrics::gauge!("gavel_watchers").set(total as f64);
        for (id, room) in rooms {
            let count = room.watchers.load(Ordering::Relaxed) as u64;
            if room.watchers_announced.swap(count, Ordering::Relaxed) != count && count > 0 {
                let _ = room.tx.send(Arc::new(Frame {
                    auction_id: id.clone(),
                    seq: 0,
                    text: encode(&ServerMessage::Watchers {
                        auction_id: id.to_string(),
                        count,
                    }),
                    decided_at: None,
                    latency: None,
                }));
            }
        }
    }
}

fn message_for(prev: &Auction, change: &Change) -> ServerMessage {
    with_decided_at(message_for_change(prev, change), change)
}

/// Stamps an update with the authority's time of its change (`closed` has `closed_at`).
fn with_decided_at(mut msg: ServerMessage, change: &Change) -> ServerMessage {
    if let ServerMessage::Update(u) = &mut msg {
        u.decided_at = decided_at(change);
    }
    msg
}

fn message_for_change(prev: &Auction, change: &Change) -> ServerMessage {
    let next = &change.auction;
    match &change.event {
        Event::Closed => views::closed(next)
            .map(ServerMessage::Closed)
            .unwrap_or_else(|| ServerMessage::Update(views::update(prev, next, "closed", None))),
        Event::Bid { entry, .. } => match views::closed(next) {
            // A buy-now bid closes the auction in the same step: announce the close.
            Some(c) if next.state.closing.is_some() && prev.state.closing.is_none() => {
                let _ = entry;
                ServerMessage::Closed(c)
            }
            _ => ServerMessage::Update(views::update(prev, next, "bid", Some(entry))),
        },
        Event::MaxRaised => ServerMessage::Update(views::update(prev, next, "max_raised", None)),
        Event::Opened => ServerMessage::Update(views::update(prev, next, "opened", None)),
        Event::Created => ServerMessage::Update(views::update(prev, next, "created", None)),
    }
}

/// The message for a change whose previous state this node never saw.
fn first_message(change: &Change, now: i64) -> ServerMessage {
    let a = &change.auction;
    match (&change.event, views::closed(a)) {
        (Event::Created, _) => ServerMessage::AuctionCreated {
            auction: views::auction_view(a, now, None),
        },
        (_, Some(c)) => ServerMessage::Closed(c),
        (event, None) => {
            let bid = match event {
                Event::Bid { entry, .. } => Some(entry),
                _ => None,
            };
            with_decided_at(
                ServerMessage::Update(views::full_update(a, event_name(event), bid)),
                change,
            )
        }
    }
}

/// The authority's time of a change: when a bid was decided, when the auction closed
/// (its end time, an admin's action, a buy-now), when its start came. `None` for a raised
/// maximum, which holds no time (and changes nothing others see), and for a creation.
pub fn decided_at(change: &Change) -> Option<Millis> {
    match &change.event {
        Event::Bid { entry, .. } => Some(entry.at),
        Event::Closed => change.auction.state.closing.as_ref().map(|c| c.closed_at),
        Event::Opened => Some(change.auction.spec.starts_at),
        Event::MaxRaised | Event::Created => None,
    }
}

fn event_name(e: &Event) -> &'static str {
    match e {
        Event::Bid { .. } => "bid",
        Event::MaxRaised => "max_raised",
        Event::Opened => "opened",
        Event::Closed => "closed",
        Event::Created => "created",
    }
}

#[derive(serde::Serialize)]
struct SnapshotBody {
    auction: gavel_protocol::AuctionView,
    recent_bids: Vec<gavel_protocol::BidView>,
}

/// A snapshot message. The auction and its recent bids are encoded once per `seq` and
/// cached in the room; only the envelope (server time, resync flag) is written per watcher.
fn snapshot_text(st: &mut RoomState, now: i64, resync: bool) -> Utf8Bytes {
    let auction = st.auction.as_ref().expect("a loaded room has its auction");
    let seq = auction.state.seq;
    let body = match &st.snapshot {
        Some((cached_seq, body)) if *cached_seq == seq => body.clone(),
        _ => {
            let body = SnapshotBody {
                auction: views::auction_view(auction, now, None),
                recent_bids: st.recent.iter().map(views::bid_view).collect(),
            };
            let json: Arc<str> = serde_json::to_string(&body)
                .expect("snapshots always serialize")
                .into();
            st.snapshot = Some((seq, json.clone()));
            json
        }
    };
    // `body` is a JSON object; splice the envelope's fields in front of its own.
    let mut text = String::with_capacity(body.len() + 64);
    text.push_str("{\"type\":\"snapshot\",\"server_time\":");
    text.push_str(&now.to_string());
    text.push_str(if resync {
        ",\"resync\":true,"
    } else {
        ",\"resync\":false,"
    });
    text.push_str(&body[1..]);
    Utf8Bytes::from(text)
}
