//! The node's change feed on a Redis Cluster: sharded Pub/Sub, one channel per auction.
//!
//! # Why per auction
//!
//! On a cluster, a classic `PUBLISH` is broadcast over the cluster bus to every shard, so
//! every shard carries every change. A sharded channel (`SPUBLISH`, Redis ≥ 7) lives in one
//! slot and its messages stay on the shard that owns that slot. The commit script may only
//! name its own slot (Redis refuses a script touching a key or shard channel of another
//! node), so the channel carries the auction's hash tag: `<p>:{<id>}:ch` (`keys.rs`), and
//! there is no pattern over sharded channels. A node therefore `SSUBSCRIBE`s to the channel
//! of every auction it must follow: every live auction (the lobby promises every live
//! auction's updates, exactly as the pattern did on one Redis), and every auction its
//! watchers asked for. Each node still receives every live auction's changes (what the lobby
//! needs); what the cluster saves is the bus broadcast: a change crosses one shard, not all.
//!
//! # Which channels
//!
//! Every [`REFRESH`] the feed reads `<p>:live` (the index listings page through) and this
//! node's watched set, subscribes to what is new and unsubscribes from what left (a closed
//! auction nobody here watches). An auction this node creates or is asked to watch is
//! subscribed at once ([`Core::follow`]). A subscription made after a change was published
//! misses it, so after every `SSUBSCRIBE` the feed reads the auction's `last` change and
//! passes it on if it is new: the hub sees the `seq` and, if it skipped some, resyncs its
//! watchers with a snapshot.
//!
//! # Slot moves and lost connections
//!
//! When a slot moves (resharding, failover), Redis tells its subscribers with an
//! `SUNSUBSCRIBE` they did not ask for. The feed subscribes again, which the cluster
//! connection routes to the new owner (following `MOVED` and refreshing its slot map), then
//! reads `last` as above. When a connection to a shard drops (`Disconnection`), the cluster
//! connection reconnects and subscribes again on its own; the feed re-reads `last` of every
//! auction it follows. Delivery stays in `seq` order per auction and never twice
//! (`feed::Delivered`).

use super::conn::Target;
use super::core::Core;
use super::feed::{accept, send, Delivered};
use crate::ChangeNotice;
use gavel_core::AuctionId;
use redis::{PushInfo, PushKind, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// How often the set of followed auctions is compared with `<p>:live` and the watched set.
pub(super) const REFRESH: Duration = Duration::from_millis(200);
/// Subscriptions (or `last` reads) sent concurrently.
const BATCH: usize = 200;

struct Feed {
    core: Arc<Core>,
    conn: redis::cluster_async::ClusterConnection,
    /// Auctions whose sharded channel this node is subscribed to.
    followed: HashSet<AuctionId>,
    /// Until the first refresh is done: what was committed before the engine was connected
    /// is not the feed's to deliver (as on one Redis), so new subscriptions read nothing.
    starting: bool,
    delivered: Delivered,
}

pub(super) async fn run(
    core: Arc<Core>,
    tx: mpsc::Sender<ChangeNotice>,
    mut stop: watch::Receiver<bool>,
    ready: oneshot::Sender<()>,
) {
    let Target::Cluster { seeds } = &core.target else {
        return;
    };
    let (push_tx, mut pushes) = mpsc::unbounded_channel::<PushInfo>();
    let client = match Target::cluster_client(seeds, Some(Duration::from_secs(5)), Some(push_tx)) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the Redis Cluster Pub/Sub client");
            return;
        }
    };
    let mut backoff = Duration::from_millis(100);
    let conn = loop {
        let connected = tokio::select! {
            c = tokio::time::timeout(Duration::from_secs(5), client.get_async_connection()) => c,
            _ = stop.changed() => return,
        };
        match connected {
            Ok(Ok(c)) => break c,
            failed => {
                tracing::warn!(error = ?failed.err(), "cannot connect to the Redis Cluster for Pub/Sub; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    };
    let mut feed = Feed {
        core: core.clone(),
        conn,
        followed: HashSet::new(),
        starting: true,
        delivered: Delivered::default(),
    };
    // Subscribed to every live auction before the engine reports itself connected.
    let mut ready = Some(ready);
    let mut resync_all = false;
    let mut again: HashSet<AuctionId> = HashSet::new();
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut wake = false;
        tokio::select! {
            _ = tick.tick() => wake = true,
            _ = core.follow_nudge.notified() => wake = true,
            push = pushes.recv() => {
                let Some(push) = push else { return };
                match push.kind {
                    PushKind::SMessage => {
                        if let Some(payload) = push.data.get(1).and_then(text) {
                            if let Some(change) = accept(&core, &mut feed.delivered, &payload).await {
                                if !send(&tx, &mut stop, change).await {
                                    return;
                                }
                            }
                        }
                    }
                    PushKind::SUnsubscribe => {
                        // Ours are only ever dropped by `refresh`, which forgets the
                        // auction first: one still followed was moved away with its slot.
                        let moved = push
                            .data
                            .first()
                            .and_then(text)
                            .and_then(|c| core.keys.auction_of_shard_channel(&c))
                            .filter(|id| feed.followed.contains(id));
                        if let Some(id) = moved {
                            tracing::info!(auction = %id, "its slot moved; subscribing again");
                            metrics::counter!("gavel_pubsub_slot_moves_total").increment(1);
                            feed.followed.remove(&id);
                            again.insert(id);
                            wake = true;
                        }
                    }
                    PushKind::Disconnection => {
                        metrics::counter!("gavel_pubsub_disconnects_total").increment(1);
                        tracing::warn!("a Redis Cluster Pub/Sub connection dropped; resyncing");
                        resync_all = true;
                    }
                    _ => {}
                }
            }
            _ = stop.changed() => return,
        }
        if !wake {
            continue;
        }
        let mut missed = Vec::new();
        match feed.refresh(&mut again, &mut missed).await {
            Ok(()) => {
                feed.starting = false;
                if let Some(r) = ready.take() {
                    metrics::counter!("gavel_pubsub_subscriptions_total").increment(1);
                    let _ = r.send(());
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not refresh the sharded subscriptions"),
        }
        if std::mem::take(&mut resync_all) {
            let all: Vec<AuctionId> = feed.followed.iter().cloned().collect();
            if let Err(e) = feed.read_last(&all, &mut missed).await {
                tracing::warn!(error = %e, "resync after a dropped connection failed");
                resync_all = true;
            }
            metrics::counter!("gavel_pubsub_resynced_total").increment(missed.len() as u64);
        }
        for change in missed {
            if !send(&tx, &mut stop, change).await {
                return;
            }
        }
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

impl Feed {
    /// Follows what must be followed now; changes missed by a new subscription go to `out`.
    async fn refresh(
        &mut self,
        again: &mut HashSet<AuctionId>,
        out: &mut Vec<ChangeNotice>,
    ) -> Result<(), redis::RedisError> {
        let core = self.core.clone();
        let live: Vec<String> = redis::cmd("ZRANGE")
            .arg(core.keys.live())
            .arg(0)
            .arg(-1)
            .query_async(&mut core.cmd.clone())
            .await?;
        let mut want: HashSet<AuctionId> = live
            .iter()
            .filter_map(|s| AuctionId::parse(s.as_str()).ok())
            .collect();
        want.extend(core.watched.lock().iter().cloned());
        let asked = core.take_follow();
        want.extend(asked.iter().map(|(id, _)| id.clone()));
        want.extend(again.drain());
        let new: Vec<AuctionId> = want
            .iter()
            .filter(|id| !self.followed.contains(*id))
            .cloned()
            .collect();
        let gone: Vec<AuctionId> = self
            .followed
            .iter()
            .filter(|id| !want.contains(*id))
            .cloned()
            .collect();
        for chunk in new.chunks(BATCH) {
            let results = futures::future::join_all(chunk.iter().map(|id| {
                let mut conn = self.conn.clone();
                let channel = core.keys.shard_channel(id);
                async move { conn.ssubscribe(channel).await }
            }))
            .await;
            let mut subscribed = Vec::with_capacity(chunk.len());
            for (id, r) in chunk.iter().zip(results) {
                match r {
                    Ok(()) => {
                        self.followed.insert(id.clone());
                        subscribed.push(id.clone());
                    }
                    // Tried again at the next refresh (it is still wanted).
                    Err(e) => {
                        tracing::warn!(auction = %id, error = %e, "SSUBSCRIBE failed");
                        again.insert(id.clone());
                    }
                }
            }
            if !self.starting {
                self.read_last(&subscribed, out).await?;
            }
        }
        for id in gone {
            // Forgotten first: the SUNSUBSCRIBE confirmation is then not taken for a move.
            self.followed.remove(&id);
            let mut conn = self.conn.clone();
            if let Err(e) = conn.sunsubscribe(core.keys.shard_channel(&id)).await {
                tracing::debug!(auction = %id, error = %e, "SUNSUBSCRIBE failed");
            }
            // Its closing may have been published as the subscription ended.
            self.read_last(std::slice::from_ref(&id), out).await?;
        }
        for (id, done) in asked {
            if self.followed.contains(&id) {
                let _ = done.send(());
            }
        }
        Ok(())
    }

    /// Passes on the `last` change of these auctions where this node has not delivered it.
    async fn read_last(
        &mut self,
        ids: &[AuctionId],
        out: &mut Vec<ChangeNotice>,
    ) -> Result<(), redis::RedisError> {
        let core = self.core.clone();
        for chunk in ids.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.cmd("HGET").arg(core.keys.hash(id)).arg("last");
            }
            let lasts: Vec<Option<String>> = pipe.query_async(&mut core.cmd.clone()).await?;
            for last in lasts.into_iter().flatten() {
                if let Some(change) = accept(&core, &mut self.delivered, &last).await {
                    out.push(change);
                }
            }
        }
        Ok(())
    }
}
