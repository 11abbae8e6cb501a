//! Watcher connections: subscribe, then check and time every frame.
//!
//! Each watcher applies updates the way the protocol tells a client to and reports a
//! violation when the server breaks a promise: an update before the snapshot, a gap in `seq`
//! without a resync, a `seq` that goes back (other than the stale updates a `resync`
//! snapshot may overtake, which the protocol tells clients to ignore), or a falling price.

use crate::ctx::Ctx;
use crate::sys;
use futures::{SinkExt, StreamExt};
use gavel_protocol::{ClientMessage, ServerMessage};
use parking_lot::Mutex;
use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

/// What one watcher believes about one auction.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    pub auction: u32,
    pub seq: u64,
    pub price: Option<i64>,
    pub bid_count: u64,
    pub leader: Option<String>,
    pub snapshot: bool,
    /// The seq of the last `resync` snapshot: older updates may still follow it.
    pub resync_floor: u64,
    pub closed: bool,
}

pub struct Watcher {
    pub id: usize,
    pub server: usize,
    pub seen: Mutex<Vec<Seen>>,
}

/// Opens a WebSocket to server `server` (with `query`, e.g. `?token=…`).
pub async fn open(ctx: &Ctx, server: usize, query: &str) -> anyhow::Result<Ws> {
    let s = &ctx.servers[server];
    let tcp = sys::connect_from(ctx.next_source(), s.addr).await?;
    let url = format!("ws://{}/ws{query}", s.authority);
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(url, tcp, Some(ctx.ws_config)).await?;
    ctx.open.fetch_add(1, Ordering::Relaxed);
    Ok(ws)
}

/// Connects a watcher, subscribes it to `auctions` and starts its reader task.
pub async fn start(
    ctx: Arc<Ctx>,
    id: usize,
    server: usize,
    auctions: Vec<u32>,
) -> anyhow::Result<(Arc<Watcher>, tokio::task::AbortHandle)> {
    let mut ws = open(&ctx, server, "").await?;
    for &a in &auctions {
        let msg = ClientMessage::Subscribe {
            auction_id: ctx.auctions[a as usize].clone(),
            since_seq: None,
        };
        ws.feed(Message::text(serde_json::to_string(&msg)?)).await?;
    }
    ws.flush().await?;
    let w = Arc::new(Watcher {
        id,
        server,
        seen: Mutex::new(
            auctions
                .iter()
                .map(|&a| Seen {
                    auction: a,
                    ..Seen::default()
                })
                .collect(),
        ),
    });
    let task = tokio::spawn(read_loop(ctx, w.clone(), ws));
    Ok((w, task.abort_handle()))
}

/// Connects watchers `ids` (`connect_concurrency` at a time), watcher `j` on server
/// `j % servers`, subscribed to auctions `j·subs … j·subs+subs−1` (modulo the auction
/// count). Returns the watchers, sorted by id, with their tasks, and the number that failed
/// to connect (each counted as an event).
pub async fn connect_all(
    ctx: &Arc<Ctx>,
    ids: std::ops::Range<usize>,
    subs: usize,
    connect_concurrency: usize,
) -> (Vec<(Arc<Watcher>, tokio::task::AbortHandle)>, usize) {
    let n_auctions = ctx.auctions.len();
    let servers = ctx.servers.len();
    let mut results = futures::stream::iter(ids)
        .map(|j| {
            let auctions = (0..subs)
                .map(|m| ((j * subs + m) % n_auctions) as u32)
                .collect();
            start(ctx.clone(), j, j % servers, auctions)
        })
        .buffer_unordered(connect_concurrency.max(1));
    let mut out = Vec::new();
    let mut failures = 0usize;
    while let Some(r) = results.next().await {
        match r {
            Ok(w) => out.push(w),
            Err(e) => {
                failures += 1;
                ctx.events.add(&format!("watcher connect failed: {e}"));
            }
        }
    }
    out.sort_by_key(|(w, _)| w.id);
    (out, failures)
}

/// Waits until `expected` subscriptions have their first snapshot, at most `limit`.
pub async fn wait_subscribed(ctx: &Ctx, expected: u64, limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    while ctx.subscribed.load(Ordering::Relaxed) < expected && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn read_loop(ctx: Arc<Ctx>, w: Arc<Watcher>, mut ws: Ws) {
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(Message::Text(t)) => on_text(&ctx, &w, t.as_str()),
            Ok(Message::Close(frame)) => {
                if !ctx.stopping.load(Ordering::Relaxed) {
                    let why = frame.map(|f| format!("{} {}", u16::from(f.code), f.reason));
                    ctx.events.add(&format!(
                        "watcher closed by server: {}",
                        why.unwrap_or_default()
                    ));
                }
                break;
            }
            Ok(_) => {}
            Err(e) => {
                if !ctx.stopping.load(Ordering::Relaxed) {
                    ctx.events.add(&format!("watcher read error: {e}"));
                }
                break;
            }
        }
    }
    ctx.open.fetch_sub(1, Ordering::Relaxed);
}

/// The fields of an `update` the checks and timings use, borrowed from the frame: every
/// watcher parses every update, so the tool decodes no more than it looks at.
#[derive(serde::Deserialize)]
struct UpdateFields<'a> {
    #[serde(borrow)]
    auction_id: Cow<'a, str>,
    seq: u64,
    price: Option<i64>,
    bid_count: Option<u64>,
    #[serde(borrow)]
    leader: Option<LeaderId<'a>>,
    bid: Option<BidAmount>,
}

#[derive(serde::Deserialize)]
struct LeaderId<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

#[derive(serde::Deserialize)]
struct BidAmount {
    amount: i64,
}

fn on_text(ctx: &Ctx, w: &Watcher, text: &str) {
    let now = ctx.now_us();
    // Updates are most of the traffic: the server writes the message type first.
    if text.starts_with(r#"{"type":"update","#) {
        if let Ok(u) = serde_json::from_str::<UpdateFields>(text) {
            return on_update(ctx, w, u, now);
        }
    }
    let msg = match serde_json::from_str::<ServerMessage>(text) {
        Ok(m) => m,
        Err(e) => {
            ctx.violations
                .report(|| format!("watcher {}: unparseable frame ({e}): {text:.200}", w.id));
            return;
        }
    };
    match msg {
        ServerMessage::Update(u) => {
            let fields = UpdateFields {
                auction_id: Cow::Borrowed(&u.auction_id),
                seq: u.seq,
                price: u.price,
                bid_count: u.bid_count,
                leader: u.leader.as_ref().map(|l| LeaderId {
                    id: Cow::Borrowed(&l.id),
                }),
                bid: u.bid.as_ref().map(|b| BidAmount { amount: b.amount }),
            };
            on_update(ctx, w, fields, now)
        }
        ServerMessage::Snapshot {
            auction, resync, ..
        } => {
            let Some(&a) = ctx.index.get(&auction.id) else {
                return;
            };
            let mut seen = w.seen.lock();
            let Some(s) = seen.iter_mut().find(|s| s.auction == a) else {
                return;
            };
            if s.snapshot && !resync && auction.seq < s.seq {
                ctx.violations.report(|| {
                    format!(
                        "watcher {} on {}: snapshot at seq {} after seq {}",
                        w.id, auction.id, auction.seq, s.seq
                    )
                });
            }
            if !s.snapshot {
                ctx.subscribed.fetch_add(1, Ordering::Relaxed);
            }
            if resync {
                ctx.events.add("resync snapshots");
                s.resync_floor = auction.seq;
            }
            s.snapshot = true;
            s.seq = auction.seq;
            s.price = auction.price;
            s.bid_count = auction.bid_count;
            s.leader = auction.leader.map(|l| l.id);
            s.closed = auction.closing.is_some();
        }
        ServerMessage::Closed(c) => {
            if let Some(&a) = ctx.index.get(&c.auction_id) {
                let mut seen = w.seen.lock();
                if let Some(s) = seen.iter_mut().find(|s| s.auction == a) {
                    s.seq = s.seq.max(c.seq);
                    s.closed = true;
                }
            }
        }
        ServerMessage::Error { code, .. } => ctx.events.add(&format!("watcher error: {code}")),
        _ => {}
    }
}

fn on_update(ctx: &Ctx, w: &Watcher, u: UpdateFields, now: u64) {
    let Some(&a) = ctx.index.get(u.auction_id.as_ref()) else {
        return;
    };
    {
        let mut seen = w.seen.lock();
        let Some(s) = seen.iter_mut().find(|s| s.auction == a) else {
            ctx.violations.report(|| {
                format!(
                    "watcher {}: update for {} it did not subscribe to",
                    w.id, u.auction_id
                )
            });
            return;
        };
        if !s.snapshot {
            ctx.violations.report(|| {
                format!(
                    "watcher {} on {}: update seq {} before the snapshot",
                    w.id, u.auction_id, u.seq
                )
            });
        }
        if u.seq <= s.seq {
            if u.seq <= s.resync_floor {
                ctx.events.add("stale updates after a resync (ignored)");
            } else {
                ctx.violations.report(|| {
                    format!(
                        "watcher {} on {}: seq {} after seq {}",
                        w.id, u.auction_id, u.seq, s.seq
                    )
                });
            }
            return;
        }
        if u.seq > s.seq + 1 {
            ctx.violations.report(|| {
                format!(
                    "watcher {} on {}: gap, seq {} after seq {} with no resync",
                    w.id, u.auction_id, u.seq, s.seq
                )
            });
        }
        if let (Some(p), Some(old)) = (u.price, s.price) {
            if p < old {
                ctx.violations.report(|| {
                    format!(
                        "watcher {} on {}: price fell from {old} to {p} at seq {}",
                        w.id, u.auction_id, u.seq
                    )
                });
            }
        }
        s.seq = u.seq;
        if u.price.is_some() {
            s.price = u.price;
        }
        if let Some(n) = u.bid_count {
            s.bid_count = n;
        }
        if let Some(l) = &u.leader {
            if s.leader.as_deref() != Some(l.id.as_ref()) {
                s.leader = Some(l.id.to_string());
            }
        }
    }
    let due = u.bid.as_ref().and_then(|b| ctx.ledger.due_at(a, b.amount));
    ctx.rec.with(w.id, |t| {
        t.updates += 1;
        match due {
            Some(at) => {
                t.g2g.saturating_record(now.saturating_sub(at).max(1));
            }
            None => t.unmatched += 1,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use gavel_protocol::{AuctionView, BidView, Update, UserRef};

    fn ctx() -> Ctx {
        Ctx::new(
            "r1".into(),
            Vec::new(),
            vec!["bench-r1-0".into()],
            std::net::Ipv4Addr::LOCALHOST,
            25_000,
            None,
        )
    }

    fn watcher() -> Watcher {
        Watcher {
            id: 0,
            server: 0,
            seen: Mutex::new(vec![Seen::default()]),
        }
    }

    fn view(seq: u64, price: Option<i64>) -> AuctionView {
        AuctionView {
            id: "bench-r1-0".into(),
            title: "t".into(),
            description: String::new(),
            category: None,
            currency: "USD".into(),
            starting_price: 100,
            increment: 1,
            increment_table: None,
            starts_at: 0,
            ends_at: 1,
            original_ends_at: 1,
            status: "open".into(),
            price,
            leader: None,
            bid_count: 0,
            seq,
            min_bid: 100,
            has_reserve: false,
            reserve_met: None,
            buy_now: None,
            buy_now_available: false,
            soft_close: None,
            closing: None,
            your_max: None,
            log_hash: None,
        }
    }

    fn snapshot_with(seq: u64, price: Option<i64>, resync: bool) -> String {
        ServerMessage::Snapshot {
            auction: view(seq, price),
            server_time: 0,
            recent_bids: Vec::new(),
            resync,
        }
        .to_json()
    }

    fn snapshot(seq: u64, price: Option<i64>) -> String {
        snapshot_with(seq, price, false)
    }

    fn update(seq: u64, price: i64) -> String {
        let who = UserRef {
            id: "u-1".into(),
            name: "A".into(),
        };
        ServerMessage::Update(Update {
            auction_id: "bench-r1-0".into(),
            seq,
            event: "bid".into(),
            price: Some(price),
            leader: Some(who.clone()),
            bid: Some(BidView {
                seq,
                bidder: who,
                amount: price,
                kind: "bid".into(),
                at: 0,
            }),
            ..Update::default()
        })
        .to_json()
    }

    fn feed(c: &Ctx, w: &Watcher, frames: &[String]) -> u64 {
        for f in frames {
            on_text(c, w, f);
        }
        c.violations.count()
    }

    #[test]
    fn updates_in_order_after_the_snapshot_pass() {
        let (c, w) = (ctx(), watcher());
        assert_eq!(
            feed(&c, &w, &[snapshot(3, None), update(4, 100), update(5, 101)]),
            0
        );
        let seen = w.seen.lock()[0].clone();
        assert_eq!((seen.seq, seen.price), (5, Some(101)));
    }

    #[test]
    fn an_update_the_one_pass_parse_skips_is_still_checked() {
        // Leading whitespace is valid JSON but not the server's layout: the full parse runs.
        let (c, w) = (ctx(), watcher());
        let odd = format!(" {}", update(5, 90));
        assert!(update(4, 100).starts_with(r#"{"type":"update","#));
        assert_eq!(feed(&c, &w, &[snapshot(3, None), update(4, 100), odd]), 1);
        assert_eq!(w.seen.lock()[0].seq, 5);
    }

    #[test]
    fn a_gap_in_seq_without_a_resync_is_a_violation() {
        let (c, w) = (ctx(), watcher());
        assert_eq!(feed(&c, &w, &[snapshot(3, None), update(5, 100)]), 1);
    }

    #[test]
    fn a_repeated_seq_is_a_violation() {
        let (c, w) = (ctx(), watcher());
        assert_eq!(
            feed(&c, &w, &[snapshot(3, None), update(4, 100), update(4, 100)]),
            1
        );
    }

    #[test]
    fn an_update_before_the_snapshot_is_a_violation() {
        let (c, w) = (ctx(), watcher());
        assert_eq!(feed(&c, &w, &[update(1, 100)]), 1);
    }

    #[test]
    fn a_falling_price_is_a_violation() {
        let (c, w) = (ctx(), watcher());
        assert_eq!(feed(&c, &w, &[snapshot(3, Some(120)), update(4, 110)]), 1);
    }

    #[test]
    fn stale_updates_overtaken_by_a_resync_are_ignored() {
        let (c, w) = (ctx(), watcher());
        let frames = [
            snapshot(3, None),
            snapshot_with(10, Some(150), true),
            update(5, 102),
            update(11, 151),
        ];
        assert_eq!(feed(&c, &w, &frames), 0);
        assert_eq!(w.seen.lock()[0].seq, 11);
    }

    #[test]
    fn an_update_is_timed_from_its_bids_due_time() {
        let (c, w) = (ctx(), watcher());
        c.ledger.append([(1_000, 0, 100, 0)]);
        feed(&c, &w, &[snapshot(1, None), update(2, 100), update(3, 101)]);
        let t = c.rec.take();
        assert_eq!((t.updates, t.g2g.len(), t.unmatched), (2, 1, 1));
    }

    #[test]
    fn request_ids_carry_the_run_and_the_ledger_index() {
        let c = ctx();
        assert_eq!(c.parse_request_id(&c.request_id(42)), Some(42));
        assert_eq!(c.parse_request_id("other-42"), None);
    }
}
