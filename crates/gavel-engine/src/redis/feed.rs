//! The node's change feed on one Redis: one Pub/Sub connection with one pattern
//! subscription. (On a Redis Cluster the feed is `shard_feed.rs`: sharded Pub/Sub.)
//!
//! # One pattern, not one channel per watched auction
//!
//! Every node subscribes to `<prefix>:ch:*` and so receives every change. The alternative,
//! `SUBSCRIBE` per auction with local watchers, sends a node only what it needs, but the
//! lobby (`subscribe_lobby`: every auction's updates) then breaks across nodes: a lobby
//! watcher on node B would never hear of an auction created or bid on through node A unless
//! B happened to watch it. Clients must see the same thing on every node, so the pattern
//! wins. The cost is measured in `docs/distributed.md` (Redis matches one pattern per
//! node per publish; a node decodes each change once, a few microseconds): with a handful
//! of nodes it is far below what one Redis can publish. Past that, the way out is sharded
//! Pub/Sub per auction plus a lobby summary channel (also in the docs).
//!
//! # Pub/Sub is at most once
//!
//! A dropped connection (Redis restart, `CLIENT KILL`, output-buffer limit) loses whatever
//! was published meanwhile. On reconnect the feed re-reads the last change of every auction
//! it may have missed (open auctions, and those it delivered or was asked to watch) and
//! passes on the ones it has not delivered yet. Each change carries the full state and its
//! `seq`, so the fan-out sees the gap and resyncs its watchers with a snapshot. Changes are
//! delivered in `seq` order per auction and never twice.

use super::conn::Target;
use super::core::Core;
use super::keys::Keys;
use super::wire::WireChange;
use crate::{ChangeNotice, EngineError};
use futures::StreamExt;
use gavel_core::{AuctionId, Event};
use redis::AsyncCommands;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// A connection that answers no PING within this long is considered dead.
const PING_EVERY: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Delivered seqs remembered per node before the map is reset (a reset only allows one
/// harmless duplicate per auction, which the fan-out ignores by `seq`).
const DELIVERED_MAX: usize = 200_000;

/// What the feed remembers across reconnects.
#[derive(Default)]
pub(super) struct Delivered {
    pub(super) seq: HashMap<AuctionId, u64>,
}

impl Delivered {
    fn is_new(&self, id: &AuctionId, seq: u64) -> bool {
        self.seq.get(id).is_none_or(|d| *d < seq)
    }

    fn record(&mut self, id: AuctionId, seq: u64) {
        if self.seq.len() >= DELIVERED_MAX {
            self.seq.clear();
        }
        self.seq.insert(id, seq);
    }
}

async fn connect(
    client: &redis::Client,
    keys: &Keys,
) -> redis::RedisResult<(redis::aio::PubSubSink, redis::aio::PubSubStream)> {
    let pubsub = client.get_async_pubsub().await?;
    let (mut sink, stream) = pubsub.split();
    sink.psubscribe(keys.channel_pattern()).await?;
    Ok((sink, stream))
}

/// Runs until the engine is dropped (`stop`). Every change it passes on also refreshes this
/// node's copy of the auction, which decisions are made on.
pub(super) async fn run(
    core: Arc<Core>,
    tx: mpsc::Sender<ChangeNotice>,
    mut stop: watch::Receiver<bool>,
    ready: oneshot::Sender<()>,
) {
    let client = match &core.target {
        Target::Single(client) => client.clone(),
        Target::Cluster { .. } => return super::shard_feed::run(core, tx, stop, ready).await,
    };
    let mut ready = Some(ready);
    let keys = core.keys.clone();
    let mut delivered = Delivered::default();
    let mut backoff = Duration::from_millis(100);
    loop {
        let connected = tokio::select! {
            r = tokio::time::timeout(CONNECT_TIMEOUT, connect(&client, &keys)) => r,
            _ = stop.changed() => return,
        };
        let (mut sink, mut stream) = match connected {
            Ok(Ok(pair)) => pair,
            failed => {
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_string(),
                };
                tracing::warn!(%error, "cannot subscribe to Redis Pub/Sub; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        metrics::counter!("gavel_pubsub_subscriptions_total").increment(1);
        if let Some(r) = ready.take() {
            let _ = r.send(());
        } else {
            tracing::info!("Redis Pub/Sub subscribed again; resyncing auctions");
            let missed = match resync(&core, &mut delivered).await {
                Ok(missed) => missed,
                Err(e) => {
                    // Redis went away again; the next reconnect resyncs.
                    tracing::warn!(error = %e, "resync after reconnect failed");
                    Vec::new()
                }
            };
            metrics::counter!("gavel_pubsub_resynced_total").increment(missed.len() as u64);
            for change in missed {
                if !send(&tx, &mut stop, change).await {
                    return;
                }
            }
        }
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            let msg = tokio::select! {
                m = stream.next() => m,
                _ = ping.tick() => {
                    let pong = tokio::time::timeout(PING_EVERY, sink.ping::<redis::Value>()).await;
                    if !matches!(pong, Ok(Ok(_))) {
                        break;
                    }
                    continue;
                }
                _ = stop.changed() => return,
            };
            let Some(msg) = msg else { break };
            let Ok(payload) = msg.get_payload::<String>() else {
                continue;
            };
            let change = accept(&core, &mut delivered, &payload).await;
            if let Some(change) = change {
                if !send(&tx, &mut stop, change).await {
                    return;
                }
            }
        }
        metrics::counter!("gavel_pubsub_disconnects_total").increment(1);
        tracing::warn!("Redis Pub/Sub connection lost; resubscribing");
    }
}

/// Sends without holding the engine (whose drop ends the feed). False when it is gone.
pub(super) async fn send(
    tx: &mpsc::Sender<ChangeNotice>,
    stop: &mut watch::Receiver<bool>,
    change: ChangeNotice,
) -> bool {
    tokio::select! {
        r = tx.send(change) => r.is_ok(),
        _ = stop.changed() => false,
    }
}

/// Decodes a published change; `None` if it was delivered already or cannot be read.
pub(super) async fn accept(
    core: &Core,
    delivered: &mut Delivered,
    payload: &str,
) -> Option<ChangeNotice> {
    let wire = match WireChange::parse(payload) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "ignoring an unreadable Pub/Sub message");
            return None;
        }
    };
    let (id, seq) = (wire.id.clone(), wire.state.seq);
    if !delivered.is_new(&id, seq) {
        return None;
    }
    match core.decode_change(wire).await {
        Ok(d) => {
            delivered.record(id, seq);
            Some(Arc::new(d.change))
        }
        Err(e) => {
            // The fan-out sees the gap at the next change and resyncs.
            tracing::warn!(auction = %id, seq, error = %e, "could not decode a change");
            None
        }
    }
}

/// The last change of every auction this node may have missed while disconnected.
async fn resync(i: &Core, delivered: &mut Delivered) -> Result<Vec<ChangeNotice>, EngineError> {
    let open: Vec<String> = i
        .cmd
        .clone()
        .zrange(i.keys.deadlines(), 0, -1)
        .await
        .map_err(super::map_err)?;
    let mut ids: Vec<AuctionId> = open
        .iter()
        .filter_map(|s| AuctionId::parse(s.as_str()).ok())
        .collect();
    ids.extend(delivered.seq.keys().cloned());
    ids.extend(i.watched.lock().iter().cloned());
    ids.sort();
    ids.dedup();
    let mut out = Vec::new();
    for chunk in ids.chunks(200) {
        let mut pipe = redis::pipe();
        for id in chunk {
            pipe.hget(i.keys.hash(id), "last");
        }
        let lasts: Vec<Option<String>> = pipe
            .query_async(&mut i.cmd.clone())
            .await
            .map_err(super::map_err)?;
        for last in lasts.into_iter().flatten() {
            if let Some(change) = accept(i, delivered, &last).await {
                if matches!(change.event, Event::Closed) {
                    tracing::debug!(auction = %change.auction.id, "closed while disconnected");
                }
                out.push(change);
            }
        }
    }
    Ok(out)
}
