//! Local fan-out: turns the engine's committed changes into frames for this node's watchers.
//!
//! Every change is encoded once into a `Utf8Bytes` (a refcounted buffer) and the same
//! buffer goes to every watcher through a per-auction `broadcast` channel, so a delivery
//! costs a refcount, never a serialization. A watcher that falls behind the channel's
//! capacity gets `Lagged` and is sent the latest snapshot instead (conflation); a slow
//! watcher never slows the others, because the hub never waits for a socket.
//!
//! Each room keeps the state it last published. The change carries the full new state, so
//! a gap in `seq` (possible with Redis Pub/Sub) is repaired by sending a snapshot.

use crate::views;
use axum::extract::ws::Utf8Bytes;
use gavel_core::{Auction, AuctionId, BidEntry, Change, Event};
use gavel_engine::{ChangeFeed, Engine, EngineError};
use gavel_protocol::ServerMessage;
use parking_lot::{Mutex, RwLock};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Updates a watcher may fall behind by before it is resynced with a snapshot.
const ROOM_BUFFER: usize = 256;
/// Updates kept per auction to answer `subscribe` with `since_seq`.
const REPLAY_RING: usize = 64;
/// History entries kept per auction for snapshots.
const RECENT_BIDS: usize = 20;

/// One encoded message for an auction.
#[derive(Debug)]
pub struct Frame {
    pub auction_id: AuctionId,
    /// The auction's seq after this message (0 for messages outside the seq order).
    pub seq: u64,
    pub text: Utf8Bytes,
}

pub type SharedFrame = Arc<Frame>;

struct RoomState {
    auction: Auction,
    recent: VecDeque<BidEntry>,
    ring: VecDeque<SharedFrame>,
    /// The encoded snapshot body for the `seq` it was built at.
    snapshot: Option<(u64, Arc<str>)>,
}

/// The watchers of one auction on this node.
pub struct Room {
    tx: broadcast::Sender<SharedFrame>,
    state: Mutex<RoomState>,
    watchers: AtomicUsize,
    watchers_announced: AtomicU64,
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
    rooms: RwLock<HashMap<AuctionId, Arc<Room>>>,
    lobby: broadcast::Sender<SharedFrame>,
}

fn encode(msg: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(msg.to_json())
}

impl Hub {
    pub fn new(engine: Arc<dyn Engine>) -> Arc<Self> {
        Arc::new(Hub {
            engine,
            rooms: RwLock::new(HashMap::new()),
            lobby: broadcast::channel(4096).0,
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

    fn room(&self, id: &AuctionId) -> Option<Arc<Room>> {
        self.rooms.read().get(id).cloned()
    }

    fn new_room(auction: Auction, recent: VecDeque<BidEntry>) -> Arc<Room> {
        Arc::new(Room {
            tx: broadcast::channel(ROOM_BUFFER).0,
            state: Mutex::new(RoomState {
                auction,
                recent,
                ring: VecDeque::with_capacity(REPLAY_RING),
                snapshot: None,
            }),
            watchers: AtomicUsize::new(0),
            watchers_announced: AtomicU64::new(0),
        })
    }

    /// Publishes one committed change to the auction's watchers and the lobby.
    pub fn apply(&self, change: &Change) {
        let next = &change.auction;
        let room = match self.room(&next.id) {
            Some(room) => room,
            None => {
                // First change seen for this auction on this node: the room may start here.
                let recent = match &change.event {
                    Event::Bid { entry, .. } => VecDeque::from([entry.clone()]),
                    _ => VecDeque::new(),
                };
                let mut rooms = self.rooms.write();
                match rooms.entry(next.id.clone()) {
                    // A subscriber created it meanwhile: apply the change to it as usual.
                    Entry::Occupied(e) => e.get().clone(),
                    Entry::Vacant(e) => {
                        e.insert(Self::new_room(next.clone(), recent));
                        drop(rooms);
                        self.publish_lobby_message(
                            || first_message(change, self.engine.now()),
                            change,
                        );
                        return;
                    }
                }
            }
        };
        let mut st = room.state.lock();
        let prev_seq = st.auction.state.seq;
        if next.state.seq <= prev_seq {
            // Already in the room (it was seeded from the engine's newer state, or this is a
            // duplicate). The lobby may not have seen it; its clients apply each seq once.
            drop(st);
            self.publish_lobby_message(|| first_message(change, self.engine.now()), change);
            return;
        }
        let prev = std::mem::replace(&mut st.auction, next.clone());
        if let Event::Bid { entry, .. } = &change.event {
            if st.recent.front().is_none_or(|f| f.seq < entry.seq) {
                st.recent.push_front(entry.clone());
                st.recent.truncate(RECENT_BIDS);
            }
        }
        let frame = if next.state.seq == prev_seq + 1 {
            Arc::new(Frame {
                auction_id: next.id.clone(),
                seq: next.state.seq,
                text: encode(&message_for(&prev, change)),
            })
        } else {
            // A gap: our watchers missed changes we never saw. Resync them.
            metrics::counter!("gavel_fanout_gaps_total").increment(1);
            st.ring.clear();
            Arc::new(Frame {
                auction_id: next.id.clone(),
                seq: next.state.seq,
                text: snapshot_text(&mut st, self.engine.now(), true),
            })
        };
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
            }));
        }
    }

    fn publish_lobby(&self, frame: SharedFrame) {
        if self.lobby.receiver_count() > 0 {
            let _ = self.lobby.send(frame);
        }
    }

    /// Subscribes to an auction. The start (replay or snapshot) and the receiver are taken
    /// under the room's lock, so nothing is missed or doubled between them.
    pub async fn subscribe(
        &self,
        id: &AuctionId,
        since_seq: Option<u64>,
    ) -> Result<(Arc<Room>, Start, broadcast::Receiver<SharedFrame>), EngineError> {
        let room = match self.room(id) {
            Some(r) => r,
            None => {
                self.engine.watch(id).await?;
                let auction = self
                    .engine
                    .auction(id)
                    .await?
                    .ok_or(EngineError::NotFound)?;
                let recent = self.engine.recent_bids(id, RECENT_BIDS).await?;
                self.rooms
                    .write()
                    .entry(id.clone())
                    .or_insert_with(|| Self::new_room(auction, recent.into()))
                    .clone()
            }
        };
        let mut st = room.state.lock();
        let rx = room.tx.subscribe();
        let current = st.auction.state.seq;
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
        room.watchers.fetch_add(1, Ordering::Relaxed);
        Ok((room, start, rx))
    }

    /// The latest snapshot of a room and a fresh receiver positioned right after it, for a
    /// watcher that lagged: it skips everything it missed instead of replaying stale frames.
    pub fn resync(&self, room: &Room) -> (Utf8Bytes, broadcast::Receiver<SharedFrame>) {
        let mut st = room.state.lock();
        let rx = room.tx.subscribe();
        (snapshot_text(&mut st, self.engine.now(), true), rx)
    }

    pub fn unsubscribed(&self, room: &Room) {
        room.watchers.fetch_sub(1, Ordering::Relaxed);
    }

    /// Every auction's state and a receiver for all their changes.
    pub async fn lobby(
        &self,
    ) -> Result<(Utf8Bytes, broadcast::Receiver<SharedFrame>), EngineError> {
        let rx = self.lobby.subscribe();
        let now = self.engine.now();
        let mut auctions = self.engine.list().await?;
        auctions.sort_by_key(|a| (a.state.ends_at, a.id.clone()));
        let msg = ServerMessage::Lobby {
            auctions: auctions
                .iter()
                .map(|a| views::auction_view(a, now, None))
                .collect(),
            server_time: now,
        };
        Ok((encode(&msg), rx))
    }

    /// Sends `watchers` counts to rooms whose count changed. Called about once a second.
    pub fn announce_watchers(&self) {
        let rooms: Vec<(AuctionId, Arc<Room>)> = self
            .rooms
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
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
                }));
            }
        }
    }
}

fn message_for(prev: &Auction, change: &Change) -> ServerMessage {
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
            ServerMessage::Update(views::full_update(a, event_name(event), bid))
        }
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
    let seq = st.auction.state.seq;
    let body = match &st.snapshot {
        Some((cached_seq, body)) if *cached_seq == seq => body.clone(),
        _ => {
            let body = SnapshotBody {
                auction: views::auction_view(&st.auction, now, None),
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
