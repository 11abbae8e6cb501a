//! The personal channel: `outbid`, `won`, `lost` and `ending_soon` for the auctions each
//! signed-in user on this node watches or bid on (`docs/protocol.md`, "Personal channel").
//!
//! # Derived from the change feed every node already receives
//!
//! Every node's feed carries every auction's changes (the Redis feed subscribes to one
//! pattern; see `gavel_engine::redis::feed`), so the node that holds a user's connection
//! sees the change that outbids them wherever the bid was placed. No per-user channel, no
//! extra Redis traffic, and the same code in both modes. Events are derived from state:
//! "you led at the last state this node knew and someone else leads now" is `outbid`, so a
//! gap in the feed (Pub/Sub is at most once) can only merge two outbids into one.
//!
//! # Duplicates
//!
//! A change is applied once per auction and `seq` (older or equal seqs are ignored), so a
//! redelivered change never notifies twice. Each notification carries a stable id
//! (`<auction>:<seq>:<kind>`, or `<auction>:ending_soon`): a user reconnecting to another
//! node, or signed in on two tabs, may be told again, and the client shows each id once.
//!
//! # `ending_soon`
//!
//! A ticker (every [`TICK`]) fires it for each followed live auction with at most
//! `--ending-soon-secs` left, once per auction and user on this node: the auctions fired
//! are remembered per auction until it closes, so a soft-close extension that moves the end
//! out of the window and back never fires it again.
//!
//! What a node knows of who bid on what: the archive (`Archive::bid_auctions`: in
//! distributed mode PostgreSQL, up to one drain interval behind), plus every bid this node
//! saw on its feed since it started.

use crate::auth::Principal;
use axum::extract::ws::Utf8Bytes;
use gavel_archive::{Archive, NextSteps};
use gavel_core::{Auction, AuctionId, BidderId, Change, Event, Millis, Status};
use gavel_engine::{Engine, EngineError};
use gavel_protocol::{
    MyAuction, MyStatus, NextStepsView, Notification, NotificationKind, ServerMessage,
};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// How often `ending_soon` is checked.
pub const TICK: Duration = Duration::from_millis(500);
/// Auctions read per user (watched, and bid on, each).
pub const MAX_FOLLOWED: u32 = 500;
/// Personal frames a connection may fall behind by before it is sent a fresh `personal`.
const USER_BUFFER: usize = 64;
/// Bidders remembered from the feed (for "My bids" before the archive has their bids).
const SEEN_BIDDERS_MAX: usize = 100_000;
/// Auctions remembered per bidder from the feed.
const SEEN_PER_BIDDER: usize = 200;

/// Why the personal channel could not answer.
#[derive(Debug, thiserror::Error)]
pub enum PersonalError {
    #[error("sign in as a user to follow auctions")]
    NotAUser,
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Archive(#[from] gavel_archive::ArchiveError),
}

struct UserState {
    tx: broadcast::Sender<Utf8Bytes>,
    subscribers: usize,
    watched: HashSet<AuctionId>,
    bid: HashSet<AuctionId>,
}

/// What this node knows of an auction some connected user follows.
struct Tracked {
    title: Arc<str>,
    currency: String,
    /// `None` until the first subscriber's read (or a change) gives a state.
    state: Option<Snapshot>,
    /// Connected users following it.
    users: HashSet<String>,
    /// Users already sent `ending_soon` for it (kept until it closes).
    ending_fired: HashSet<String>,
}

#[derive(Clone)]
struct Snapshot {
    seq: u64,
    leader: Option<BidderId>,
    price: Option<i64>,
    ends_at: Millis,
    closed: bool,
}

impl Snapshot {
    fn of(a: &Auction) -> Self {
        Snapshot {
            seq: a.state.seq,
            leader: a.state.leader.as_ref().map(|l| l.id.clone()),
            price: a.state.price.map(|p| p.minor_units()),
            ends_at: a.state.ends_at,
            closed: a.state.closing.is_some(),
        }
    }
}

#[derive(Default)]
struct Inner {
    users: HashMap<String, UserState>,
    auctions: HashMap<AuctionId, Tracked>,
    seen_bids: HashMap<String, Vec<AuctionId>>,
}

/// The node's personal channels (one per connected signed-in user, shared by their
/// connections on this node).
pub struct Personal {
    engine: Arc<dyn Engine>,
    archive: Arc<dyn Archive>,
    ending_soon_ms: i64,
    inner: Mutex<Inner>,
}

/// One connection's subscription: its receiver, and its place in the user's channel
/// (dropping it leaves; the last one to leave lets the user's state go).
pub struct PersonalSub {
    personal: Arc<Personal>,
    user: String,
    pub rx: broadcast::Receiver<Utf8Bytes>,
}

impl Drop for PersonalSub {
    fn drop(&mut self) {
        self.personal.leave(&self.user);
    }
}

fn encode(msg: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(msg.to_json())
}

fn steps_view(s: NextSteps) -> NextStepsView {
    NextStepsView {
        text: s.text,
        url: s.url,
    }
}

/// Where `user` stands in `a`.
pub fn my_status(a: &Auction, user: &str, bid: bool) -> MyStatus {
    let leads = a
        .state
        .leader
        .as_ref()
        .is_some_and(|l| l.id.as_str() == user);
    match &a.state.closing {
        Some(c) if c.winner.as_ref().is_some_and(|w| w.id.as_str() == user) => MyStatus::Won,
        Some(_) if bid => MyStatus::Lost,
        Some(_) => MyStatus::Watching,
        // Ended by the clock, close not announced yet: the leader is about to win.
        None if leads => MyStatus::Leading,
        None if bid => MyStatus::Outbid,
        None => MyStatus::Watching,
    }
}

impl Personal {
    pub fn new(
        engine: Arc<dyn Engine>,
        archive: Arc<dyn Archive>,
        ending_soon_ms: i64,
    ) -> Arc<Self> {
        Arc::new(Personal {
            engine,
            archive,
            ending_soon_ms,
            inner: Mutex::new(Inner::default()),
        })
    }

    /// The `ending_soon` threshold.
    pub fn ending_soon_ms(&self) -> i64 {
        self.ending_soon_ms
    }

    /// Reads an auction from the engine, or from the archive once it left the engine.
    async fn load(&self, id: &AuctionId) -> Result<Option<Auction>, PersonalError> {
        match self.engine.auction(id).await? {
            Some(a) => Ok(Some(a)),
            None => Ok(self.archive.auction(id).await?),
        }
    }

    /// Every auction `user` watches or bid on, with where they stand (`GET /api/me/auctions`
    /// and the `personal` message), and the sets it was built from.
    pub async fn my_auctions(
        &self,
        user: &BidderId,
    ) -> Result<
        (
            Vec<MyAuction>,
            Vec<Auction>,
            HashSet<AuctionId>,
            HashSet<AuctionId>,
        ),
        PersonalError,
    > {
        let watched: Vec<AuctionId> = self.archive.watchlist(user, MAX_FOLLOWED).await?;
        let mut bid: Vec<AuctionId> = self.archive.bid_auctions(user, MAX_FOLLOWED).await?;
        if let Some(seen) = self.inner.lock().seen_bids.get(user.as_str()) {
            for id in seen {
                if !bid.contains(id) {
                    bid.push(id.clone());
                }
            }
        }
        let watched_set: HashSet<AuctionId> = watched.iter().cloned().collect();
        let bid_set: HashSet<AuctionId> = bid.iter().cloned().collect();
        let mut order: Vec<AuctionId> = bid.clone();
        for id in watched {
            if !bid_set.contains(&id) {
                order.push(id);
            }
        }
        let now = self.engine.now();
        let mut out = Vec::with_capacity(order.len());
        let mut loaded = Vec::with_capacity(order.len());
        for id in order {
            let Some(a) = self.load(&id).await? else {
                continue;
            };
            let is_bid = bid_set.contains(&id);
            let status = my_status(&a, user.as_str(), is_bid);
            let next_steps = match status {
                MyStatus::Won => self.archive.next_steps(&id).await?.map(steps_view),
                _ => None,
            };
            out.push(MyAuction {
                auction_id: id.to_string(),
                title: a.spec.title.clone(),
                currency: a.spec.currency.to_string(),
                watched: watched_set.contains(&id),
                bid: is_bid,
                my_status: status,
                status: a.status_at(now).as_str().into(),
                price: a.state.price.map(|p| p.minor_units()),
                ends_at: a.state.ends_at,
                seq: a.state.seq,
                next_steps,
            });
            loaded.push(a);
        }
        // Live ones first (soonest end first), then closed ones, latest end first.
        out.sort_by(|x, y| {
            let (xc, yc) = (
                x.status == Status::Closed.as_str(),
                y.status == Status::Closed.as_str(),
            );
            xc.cmp(&yc).then_with(|| {
                if xc {
                    y.ends_at.cmp(&x.ends_at)
                } else {
                    x.ends_at.cmp(&y.ends_at)
                }
            })
        });
        Ok((out, loaded, watched_set, bid_set))
    }

    /// Subscribes one connection of `who` (a second `subscribe_personal` on the same
    /// connection drops the first subscription first). Returns the `personal` message.
    pub async fn subscribe(
        self: &Arc<Self>,
        who: &Principal,
    ) -> Result<(Utf8Bytes, PersonalSub), PersonalError> {
        let user = BidderId::parse(who.id.as_str()).map_err(|_| PersonalError::NotAUser)?;
        let uid = user.to_string();
        // Join first, so changes arriving while the lists load are tracked.
        let rx = {
            let mut inner = self.inner.lock();
            let st = inner.users.entry(uid.clone()).or_insert_with(|| UserState {
                tx: broadcast::channel(USER_BUFFER).0,
                subscribers: 0,
                watched: HashSet::new(),
                bid: HashSet::new(),
            });
            st.subscribers += 1;
            st.tx.subscribe()
        };
        let sub = PersonalSub {
            personal: self.clone(),
            user: uid.clone(),
            rx,
        };
        let (auctions, loaded, watched, bid) = self.my_auctions(&user).await?;
        {
            let mut inner = self.inner.lock();
            let Inner {
                users,
                auctions: tracked,
                ..
            } = &mut *inner;
            if let Some(st) = users.get_mut(&uid) {
                st.watched = watched;
                st.bid.extend(bid);
            }
            for a in &loaded {
                let t = track(tracked, a);
                t.users.insert(uid.clone());
                if t.state.as_ref().is_none_or(|s| s.seq < a.state.seq) {
                    t.state = Some(Snapshot::of(a));
                }
            }
        }
        let text = encode(&ServerMessage::Personal {
            auctions,
            ending_soon_ms: self.ending_soon_ms as u64,
            server_time: self.engine.now(),
        });
        Ok((text, sub))
    }

    fn leave(&self, uid: &str) {
        let mut inner = self.inner.lock();
        let gone = match inner.users.get_mut(uid) {
            Some(st) => {
                st.subscribers = st.subscribers.saturating_sub(1);
                st.subscribers == 0
            }
            None => false,
        };
        if gone {
            inner.users.remove(uid);
            inner.auctions.retain(|_, t| {
                t.users.remove(uid);
                // A live auction keeps whom it told `ending_soon` (a reconnect must not
                // hear it again); a closed one nobody follows here goes.
                !(t.users.is_empty()
                    && (t.ending_fired.is_empty() || t.state.as_ref().is_some_and(|s| s.closed)))
            });
        }
    }

    /// The watchlist changed through this node (`PUT`/`DELETE /api/me/watchlist/{id}`):
    /// the user's connections here follow (or stop following) the auction at once.
    /// Connections on other nodes pick it up when they send `subscribe_personal` again.
    pub fn set_watched(&self, user: &str, auction: &Auction, watched: bool) {
        let mut inner = self.inner.lock();
        let Inner {
            users,
            auctions: tracked,
            ..
        } = &mut *inner;
        let Some(st) = users.get_mut(user) else {
            return;
        };
        if watched {
            st.watched.insert(auction.id.clone());
            let t = track(tracked, auction);
            t.users.insert(user.to_string());
            if t.state.as_ref().is_none_or(|s| s.seq < auction.state.seq) {
                t.state = Some(Snapshot::of(auction));
            }
        } else {
            st.watched.remove(&auction.id);
            if !st.bid.contains(&auction.id) {
                if let Some(t) = tracked.get_mut(&auction.id) {
                    t.users.remove(user);
                }
            }
        }
    }

    /// Applies one committed change (called for every change of the node's feed).
    pub fn apply(&self, change: &Change) {
        let a = &change.auction;
        let mut won = Vec::new();
        {
            let mut inner = self.inner.lock();
            let Inner {
                users,
                auctions: tracked,
                seen_bids,
            } = &mut *inner;
            if let Event::Bid { entry, .. } = &change.event {
                let bidder = entry.bidder.id.as_str();
                if seen_bids.len() >= SEEN_BIDDERS_MAX && !seen_bids.contains_key(bidder) {
                    seen_bids.clear();
                }
                let seen = seen_bids.entry(bidder.to_string()).or_default();
                if !seen.contains(&a.id) {
                    if seen.len() >= SEEN_PER_BIDDER {
                        seen.remove(0);
                    }
                    seen.push(a.id.clone());
                }
                if let Some(st) = users.get_mut(bidder) {
                    st.bid.insert(a.id.clone());
                    track(tracked, a).users.insert(bidder.to_string());
                }
            }
            let Some(t) = tracked.get_mut(&a.id) else {
                return;
            };
            let prev = t.state.clone();
            if prev.as_ref().is_some_and(|p| p.seq >= a.state.seq) {
                return; // Already applied (a redelivery, or loaded after it).
            }
            let next = Snapshot::of(a);
            t.state = Some(next.clone());
            let now = self.engine.now();
            let note = |kind: NotificationKind| Notification {
                id: format!("{}:{}:{}", a.id, a.state.seq, kind.as_str()),
                kind,
                auction_id: a.id.to_string(),
                title: a.spec.title.clone(),
                currency: a.spec.currency.to_string(),
                seq: a.state.seq,
                price: next.price,
                ends_at: next.ends_at,
                at: now,
                next_steps: None,
            };
            if let (Some(closing), false) =
                (&a.state.closing, prev.as_ref().is_some_and(|p| p.closed))
            {
                let winner = closing.winner.as_ref().map(|w| w.id.as_str());
                for uid in &t.users {
                    let Some(st) = users.get(uid) else { continue };
                    if winner == Some(uid.as_str()) {
                        won.push((st.tx.clone(), note(NotificationKind::Won)));
                    } else if st.bid.contains(&a.id) {
                        let _ = st.tx.send(encode(&ServerMessage::Notification(note(
                            NotificationKind::Lost,
                        ))));
                    }
                }
                t.ending_fired.clear();
            } else if !next.closed {
                let was = prev.as_ref().and_then(|p| p.leader.as_ref());
                if let Some(was) = was.filter(|w| Some(*w) != next.leader.as_ref()) {
                    if t.users.contains(was.as_str()) {
                        if let Some(st) = users.get(was.as_str()) {
                            let _ = st.tx.send(encode(&ServerMessage::Notification(note(
                                NotificationKind::Outbid,
                            ))));
                        }
                    }
                }
            }
        }
        // The winner's notification carries the next steps, read from the archive.
        for (tx, mut n) in won {
            let archive = self.archive.clone();
            let id = a.id.clone();
            let send = async move {
                match archive.next_steps(&id).await {
                    Ok(steps) => n.next_steps = steps.map(steps_view),
                    Err(e) => tracing::warn!(auction = %id, error = %e, "cannot read next steps"),
                }
                let _ = tx.send(encode(&ServerMessage::Notification(n)));
            };
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(send);
                }
                Err(_) => tracing::warn!("no runtime to send a `won` notification"),
            }
        }
    }

    /// Sends `ending_soon` to each following user of each live auction that has at most the
    /// threshold left, once per auction and user. Called every [`TICK`].
    pub fn tick(&self) {
        let now = self.engine.now();
        let mut inner = self.inner.lock();
        let Inner {
            users,
            auctions: tracked,
            ..
        } = &mut *inner;
        for (id, t) in tracked.iter_mut() {
            let Some(s) = &t.state else { continue };
            if s.closed || now >= s.ends_at || s.ends_at - now > self.ending_soon_ms {
                continue;
            }
            for uid in &t.users {
                if t.ending_fired.contains(uid) {
                    continue;
                }
                let Some(st) = users.get(uid) else { continue };
                t.ending_fired.insert(uid.clone());
                let n = Notification {
                    id: format!("{id}:{}", NotificationKind::EndingSoon.as_str()),
                    kind: NotificationKind::EndingSoon,
                    auction_id: id.to_string(),
                    title: t.title.to_string(),
                    currency: t.currency.clone(),
                    seq: s.seq,
                    price: s.price,
                    ends_at: s.ends_at,
                    at: now,
                    next_steps: None,
                };
                let _ = st.tx.send(encode(&ServerMessage::Notification(n)));
            }
        }
    }

    /// Runs [`Personal::tick`] every [`TICK`] until `stop`.
    pub async fn run_ticker(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let mut every = tokio::time::interval(TICK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => self.tick(),
                _ = stop.cancelled() => return,
            }
        }
    }
}

fn track<'a>(tracked: &'a mut HashMap<AuctionId, Tracked>, a: &Auction) -> &'a mut Tracked {
    tracked.entry(a.id.clone()).or_insert_with(|| Tracked {
        title: a.spec.title.as_str().into(),
        currency: a.spec.currency.to_string(),
        state: None,
        users: HashSet::new(),
        ending_fired: HashSet::new(),
    })
}
