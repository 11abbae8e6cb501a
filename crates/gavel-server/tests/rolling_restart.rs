//! Readiness (`/readyz`) and rolling restarts, on real `gavel` processes.
//!
//! - Readiness in each state: ready, Redis cut, PostgreSQL cut (each behind a cuttable
//!   proxy), draining (SIGTERM), embedded and distributed.
//! - SIGTERM: new connections refused at once, `reconnect` then close 1012 for every
//!   WebSocket, exit within `--shutdown-grace-secs`.
//! - A rolling restart of two distributed nodes behind a small round-robin TCP load
//!   balancer written here, under steady bidding and watching: no accepted bid lost, every
//!   watcher on the final state, no client shown an error, each exit within its grace.
//!
//! Distributed tests use the local Redis (`REDIS_URL`) and PostgreSQL (`DATABASE_URL`)
//! with their own key prefix and schema. Every test is bounded in time; tests take turns.

use futures::{SinkExt, StreamExt};
use gavel_engine::cut_proxy::CutProxy;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ADMIN: &str = "rolling-admin-token";
const LIMIT: Duration = Duration::from_secs(150);

mod common;
use common::isolation::{database_url, redis_url};
use common::nodes::{free_port, host_port, via_port, Deployment, Node};

/// Readiness, as a load balancer's health check sees it.
impl Node {
    async fn readyz(&self) -> (u16, Value) {
        let r = reqwest::get(format!("{}/readyz", self.base)).await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// Polls `/readyz` until `want(status, body)` holds (or panics after `within`).
    async fn readyz_until(&self, within: Duration, want: impl Fn(u16, &Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (status, body) = self.readyz().await;
            if want(status, &body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "readiness stayed {status} {body}\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The reason codes of a `/readyz` body.
fn codes(body: &Value) -> Vec<String> {
    body["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_string())
        .collect()
}

/// An HTTP/1.1 connection kept open across requests (as a load balancer's health checker
/// may keep one), to see what a node answers after it started draining.
struct KeptAlive(TcpStream);

impl KeptAlive {
    async fn open(port: u16) -> Self {
        let mut c = KeptAlive(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
        let (status, _, _) = c.get("/healthz").await.expect("a first answer");
        assert_eq!(status, 200);
        c
    }

    /// (status, headers in lower case, body); `None` if the connection was closed.
    async fn get(&mut self, path: &str) -> Option<(u16, String, String)> {
        let req = format!("GET {path} HTTP/1.1\r\nhost: gavel\r\n\r\n");
        self.0.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    let status = head.split_whitespace().nth(1)?.parse().ok()?;
                    return Some((status, head.to_ascii_lowercase(), body[..len].to_string()));
                }
            }
            let n = tokio::time::timeout(Duration::from_secs(5), self.0.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn create_auction(base: &str) -> String {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/auctions"))
        .bearer_auth(ADMIN)
        .json(&json!({
            "title": "Rolling lot", "description": "", "currency": "USD",
            "starting_price": 100, "increment": 10, "duration_ms": 600_000
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

async fn session(base: &str, name: &str) -> String {
    let r: Value = reqwest::Client::new()
        .post(format!("{base}/api/session"))
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["token"].as_str().unwrap().to_string()
}

async fn watcher(port: u16, auction: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws"))
        .await
        .unwrap();
    ws.send(Message::text(
        json!({"type": "subscribe", "auction_id": auction}).to_string(),
    ))
    .await
    .unwrap();
    ws
}

/// What a client that ignores `reconnect` sees after SIGTERM: the `reconnect` message, then
/// the close frame. Returns (delay_ms, when reconnect arrived, close code, when it closed).
async fn await_reconnect_and_close(ws: &mut Ws) -> (u64, Instant, u16, Instant) {
    let mut reconnect = None;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("the server closes within 15 s")
            .expect("a close frame before the stream ends")
            .expect("no socket error");
        match msg {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "reconnect" {
                    assert_eq!(v["reason"], "draining", "{v}");
                    reconnect = Some((v["delay_ms"].as_u64().unwrap(), Instant::now()));
                }
            }
            Message::Close(frame) => {
                let (delay, at) = reconnect.expect("reconnect before the close frame");
                let code = frame.map_or(0, |f| u16::from(f.code));
                return (delay, at, code, Instant::now());
            }
            _ => {}
        }
    }
}

/// Readiness of an embedded node, then SIGTERM: a kept-alive connection sees 503
/// `draining` (and is let go), a new connection is refused, every WebSocket gets
/// `reconnect` with a delay within the spread and then close 1012 at that delay, and the
/// process exits within its grace period; a bid accepted just before is in the archive
/// after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_node_is_ready_then_drains_on_sigterm_within_its_grace_period() {
    let _turn = SERIAL.lock().await;
    tokio::time::timeout(LIMIT, async {
        let d = Deployment::new("groll", ADMIN).await;
        let port = free_port();
        // Grace 6 s: reconnects spread over 2 s.
        let flags = ["--shutdown-grace-secs", "6"].map(String::from);
        let mut node = d.spawn("solo", port, &flags).await;
        let (status, body) = node.readyz().await;
        assert_eq!(
            (status, &body),
            (200, &json!({"ready": true, "reasons": []}))
        );
        assert_eq!(node.metric("gavel_ready").await, Some(1.0));
        assert_eq!(node.metric("gavel_draining").await, Some(0.0));

        let auction = create_auction(&node.base).await;
        let token = session(&node.base, "Ann").await;
        let r: Value = reqwest::Client::new()
            .post(format!("{}/api/auctions/{auction}/bids", node.base))
            .bearer_auth(&token)
            .json(&json!({"amount": 100, "request_id": "before-term"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["outcome"], "accepted", "{r}");
        let mut watchers = Vec::new();
        for _ in 0..10 {
            watchers.push(watcher(port, &auction).await);
        }
        let mut kept = Vec::new();
        for _ in 0..5 {
            kept.push(KeptAlive::open(port).await);
        }

        node.sigterm();
        let term = Instant::now();
        // A kept-alive connection gets its answer, 503 draining, and `connection: close`.
        let mut seen_draining = false;
        for mut c in kept {
            let (status, head, body) = c.get("/readyz").await.expect("an answer while draining");
            if status == 200 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue; // the signal was not handled yet
            }
            assert_eq!(status, 503, "{body}");
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["ready"], false);
            assert_eq!(codes(&body), ["draining"], "{body}");
            assert!(head.contains("connection: close"), "{head}");
            assert!(c.get("/readyz").await.is_none(), "the connection is let go");
            seen_draining = true;
            break;
        }
        assert!(seen_draining, "no kept-alive connection saw the drain");
        // New connections are refused (not queued).
        let refused = async {
            while TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(1), refused)
            .await
            .expect("new connections are refused at once");

        let spread = Duration::from_secs(2);
        let mut delays = Vec::new();
        // Read concurrently, so each arrival time is when the frame came.
        let seen =
            futures::future::join_all(watchers.iter_mut().map(await_reconnect_and_close)).await;
        for (delay, told, code, closed) in seen {
            assert_eq!(code, 1012, "closed with 1012 (service restart)");
            assert!(delay <= spread.as_millis() as u64, "delay {delay} ms");
            let open_for = closed.duration_since(told);
            assert!(
                open_for + Duration::from_millis(100) >= Duration::from_millis(delay)
                    && open_for <= Duration::from_millis(delay) + Duration::from_secs(1),
                "told to reconnect after {delay} ms, closed after {open_for:?}"
            );
            delays.push(delay);
        }
        delays.sort();
        delays.dedup();
        assert!(delays.len() > 1, "the delays are spread: {delays:?}");

        let status = node
            .wait_exit(Duration::from_secs(6))
            .await
            .unwrap_or_else(|| panic!("no exit within the 6 s grace\n{}", node.log_text()));
        assert!(status.success(), "{status}\n{}", node.log_text());
        eprintln!("exited {:?} after SIGTERM", term.elapsed());

        // The same data directory: the bid accepted before the drain is there.
        let node = d.spawn("solo", free_port(), &flags).await;
        let history: Value = reqwest::get(format!("{}/api/auctions/{auction}/bids", node.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(history["bids"].as_array().unwrap().len(), 1, "{history}");
    })
    .await
    .expect("bounded in time");
}

/// A distributed node behind cuttable proxies to Redis and PostgreSQL: ready; Redis cut →
/// 503 `authority_unavailable` only (and `gavel_ready` 0); back → ready; PostgreSQL cut →
/// 503 `archive_unavailable` only; back → ready; SIGTERM → 503 `draining` on a kept-alive
/// connection, and an exit within the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distributed_node_reports_redis_cut_postgres_cut_and_draining() {
    let _turn = SERIAL.lock().await;
    tokio::time::timeout(LIMIT, async {
        let d = Deployment::new("groll", ADMIN).await;
        let mut redis = CutProxy::start(host_port(&redis_url(), 6379)).await;
        let mut pg = CutProxy::start(host_port(&database_url(), 5432)).await;
        let mut flags = d.distributed(
            &via_port(&redis_url(), redis.port),
            &via_port(&database_url(), pg.port),
        );
        flags.extend(["--drain-interval-ms", "200"].map(String::from));
        flags.extend(["--shutdown-grace-secs", "4"].map(String::from));
        let port = free_port();
        let mut node = d.spawn("a", port, &flags).await;
        let ready = |s: u16, b: &Value| s == 200 && b == &json!({"ready": true, "reasons": []});
        let within = Duration::from_secs(15);
        node.readyz_until(within, ready).await;
        assert_eq!(node.metric("gavel_ready").await, Some(1.0));

        redis.down();
        let body = node
            .readyz_until(within, |s, b| s == 503 && !codes(b).is_empty())
            .await;
        assert_eq!(codes(&body), ["authority_unavailable"], "{body}");
        assert_eq!(body["ready"], false);
        assert_eq!(node.metric("gavel_ready").await, Some(0.0));
        assert_eq!(node.metric("gavel_draining").await, Some(0.0));
        redis.up().await;
        node.readyz_until(within, ready).await;

        pg.down();
        let body = node
            .readyz_until(within, |s, b| s == 503 && !codes(b).is_empty())
            .await;
        assert_eq!(codes(&body), ["archive_unavailable"], "{body}");
        assert_eq!(node.metric("gavel_ready").await, Some(0.0));
        pg.up().await;
        node.readyz_until(within, ready).await;
        assert_eq!(node.metric("gavel_ready").await, Some(1.0));

        let auction = create_auction(&node.base).await;
        let mut ws = watcher(port, &auction).await;
        let mut kept = Vec::new();
        for _ in 0..5 {
            kept.push(KeptAlive::open(port).await);
        }
        node.sigterm();
        let mut seen = None;
        for mut c in kept {
            let (status, _, body) = c.get("/readyz").await.expect("an answer while draining");
            if status == 503 {
                seen = Some(serde_json::from_str::<Value>(&body).unwrap());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let body = seen.expect("a kept-alive connection saw the drain");
        assert_eq!(codes(&body), ["draining"], "{body}");
        let (_, _, code, _) = await_reconnect_and_close(&mut ws).await;
        assert_eq!(code, 1012);
        let status = node
            .wait_exit(Duration::from_secs(4))
            .await
            .unwrap_or_else(|| panic!("no exit within the 4 s grace\n{}", node.log_text()));
        assert!(status.success(), "{status}");
    })
    .await
    .expect("bounded in time");
}

/// A round-robin TCP load balancer on a free loopback port: each connection goes to the
/// next backend that accepts it (one that refuses is skipped). Stops when dropped.
struct LoadBalancer {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl LoadBalancer {
    async fn start(backends: Vec<u16>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut next = 0usize;
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let first = next;
                next = next.wrapping_add(1);
                let backends = backends.clone();
                conns.spawn(async move {
                    for i in 0..backends.len() {
                        let port = backends[(first + i) % backends.len()];
                        if let Ok(mut server) = TcpStream::connect(("127.0.0.1", port)).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            return;
                        }
                    }
                    // Every backend refused: the client's connection is dropped.
                });
                while conns.try_join_next().is_some() {}
            }
        });
        LoadBalancer { port, task }
    }
}

impl Drop for LoadBalancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What one simulated user saw.
#[derive(Default)]
struct Seen {
    seq: u64,
    price: i64,
    min_bid: i64,
    /// Anything a user would have been shown: an `error` message, a connection lost
    /// without `reconnect`, a close other than 1012, a reconnect that did not succeed.
    errors: Vec<String>,
    reconnects: u64,
    /// Accepted bids: (seq, amount, request id).
    accepted: Vec<(u64, i64, String)>,
}

type Shared = std::sync::Arc<parking_lot::Mutex<Seen>>;

/// One user through the load balancer, following the protocol as the official clients do:
/// applies updates in seq order (resubscribing with `since_seq` on a gap); on `reconnect`,
/// keeps the connection until the server closes it with 1012 or `delay_ms` has passed, then
/// connects again to the same address and resubscribes with `since_seq`. A bidder (with a
/// token) bids at its view's minimum every `bid_every`, and sends a bid left unanswered by
/// a closed connection again with the same request id on the next one.
async fn user(
    lb: u16,
    auction: String,
    token: Option<String>,
    bid_every: Duration,
    seen: Shared,
    bidding: tokio_util::sync::CancellationToken,
    stop: tokio_util::sync::CancellationToken,
) {
    let url = match &token {
        Some(t) => format!("ws://127.0.0.1:{lb}/ws?token={t}"),
        None => format!("ws://127.0.0.1:{lb}/ws"),
    };
    let mut unanswered: Vec<(String, i64)> = Vec::new();
    let mut n = 0u64;
    'connection: loop {
        // A planned reconnect may meet a node that just stopped listening: try again
        // quietly for a moment (as a client's reconnect does), but not for long.
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut ws = loop {
            if stop.is_cancelled() {
                return;
            }
            match tokio_tungstenite::connect_async(&url).await {
                Ok((ws, _)) => break ws,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => {
                    seen.lock().errors.push(format!("could not connect: {e}"));
                    return;
                }
            }
        };
        let since = seen.lock().seq;
        let mut subscribe = json!({"type": "subscribe", "auction_id": auction});
        if since > 0 {
            subscribe["since_seq"] = json!(since);
        }
        if ws.send(Message::text(subscribe.to_string())).await.is_err() {
            seen.lock()
                .errors
                .push("the subscription could not be sent".into());
            return;
        }
        for (request_id, amount) in &unanswered {
            let bid = json!({"type": "bid", "auction_id": auction, "amount": amount, "request_id": request_id});
            let _ = ws.send(Message::text(bid.to_string())).await;
        }
        let mut leave_at: Option<tokio::time::Instant> = None;
        let mut tick = tokio::time::interval(bid_every);
        loop {
            let leave = async {
                match leave_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = leave => {
                    // The delay passed before the server closed: go on our own.
                    let _ = ws.close(None).await;
                    continue 'connection;
                }
                _ = tick.tick(), if token.is_some() && leave_at.is_none() && !bidding.is_cancelled() => {
                    let amount = seen.lock().min_bid;
                    if amount == 0 {
                        continue;
                    }
                    n += 1;
                    let request_id = format!("r-{}-{n}", uuid::Uuid::new_v4().simple());
                    let bid = json!({"type": "bid", "auction_id": auction, "amount": amount, "request_id": request_id});
                    unanswered.push((request_id, amount));
                    if ws.send(Message::text(bid.to_string())).await.is_err() {
                        // Answered after the next connection, as any unanswered bid.
                        continue;
                    }
                }
                msg = ws.next() => {
                    let msg = match msg {
                        Some(Ok(m)) => m,
                        other => {
                            if leave_at.is_some() {
                                            continue 'connection;
                            }
                            seen.lock().errors.push(format!("connection lost without reconnect: {other:?}"));
                            return;
                        }
                    };
                    let text = match msg {
                        Message::Text(t) => t,
                        Message::Close(frame) => {
                            let code = frame.as_ref().map_or(0, |f| u16::from(f.code));
                            if leave_at.is_some() && code == 1012 {
                                            continue 'connection;
                            }
                            seen.lock().errors.push(format!("closed with {frame:?}"));
                            return;
                        }
                        _ => continue,
                    };
                    let v: Value = serde_json::from_str(&text).unwrap();
                    let mut resubscribe = None;
                    {
                    let mut s = seen.lock();
                    match v["type"].as_str().unwrap_or("") {
                        "snapshot" => {
                            s.seq = v["auction"]["seq"].as_u64().unwrap();
                            s.price = v["auction"]["price"].as_i64().unwrap_or(0);
                            s.min_bid = v["auction"]["min_bid"].as_i64().unwrap();
                        }
                        "update" => {
                            let seq = v["seq"].as_u64().unwrap();
                            if seq == s.seq + 1 {
                                s.seq = seq;
                                if let Some(p) = v["price"].as_i64() {
                                    s.price = p;
                                }
                                if let Some(m) = v["min_bid"].as_i64() {
                                    s.min_bid = m;
                                }
                            } else if seq > s.seq + 1 {
                                resubscribe = Some(json!({"type": "subscribe", "auction_id": auction, "since_seq": s.seq}));
                            }
                        }
                        "bid_result" => {
                            let request_id = v["request_id"].as_str().unwrap().to_string();
                            unanswered.retain(|(r, _)| *r != request_id);
                            if v["outcome"] == "accepted" {
                                let a = &v["auction"];
                                s.accepted.push((
                                    a["seq"].as_u64().unwrap(),
                                    a["price"].as_i64().unwrap(),
                                    request_id,
                                ));
                            }
                        }
                        "reconnect" => {
                            s.reconnects += 1;
                            let delay = v["delay_ms"].as_u64().unwrap();
                            leave_at = Some(
                                tokio::time::Instant::now()
                                    + Duration::from_millis(delay)
                                    + Duration::from_millis(500),
                            );
                        }
                        "error" => s.errors.push(format!("error message: {v}")),
                        _ => {}
                    }
                    }
                    if let Some(again) = resubscribe {
                        let _ = ws.send(Message::text(again.to_string())).await;
                    }
                }
            }
        }
    }
}

/// Every history entry of an auction (through `base`), by seq: amount.
async fn history(base: &str, auction: &str) -> std::collections::BTreeMap<u64, i64> {
    let mut out = std::collections::BTreeMap::new();
    let mut before: Option<u64> = None;
    loop {
        let mut url = format!("{base}/api/auctions/{auction}/bids?limit=200");
        if let Some(b) = before {
            url += &format!("&before_seq={b}");
        }
        let page: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        let bids = page["bids"].as_array().unwrap();
        if bids.is_empty() {
            return out;
        }
        for b in bids {
            let seq = b["seq"].as_u64().unwrap();
            out.insert(seq, b["amount"].as_i64().unwrap());
            before = Some(before.map_or(seq, |x: u64| x.min(seq)));
        }
    }
}

/// Two distributed nodes behind the load balancer, watchers and bidders connected through
/// it under steady bidding; each node in turn gets SIGTERM, exits, and starts again on its
/// port. Afterwards: every accepted bid is in the history and in PostgreSQL, every watcher
/// and bidder shows the final seq and price, nobody was shown an error, every client went
/// through a `reconnect`, and each node exited within its grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_behind_a_load_balancer_loses_no_bid_and_shows_no_error() {
    let _turn = SERIAL.lock().await;
    tokio::time::timeout(LIMIT, async {
        let d = Deployment::new("groll", ADMIN).await;
        let grace = Duration::from_secs(6);
        let mut flags = d.distributed(&redis_url(), &database_url());
        flags.extend(["--drain-interval-ms", "200"].map(String::from));
        flags.extend([
            "--shutdown-grace-secs".to_string(),
            grace.as_secs().to_string(),
        ]);
        let ports = [free_port(), free_port()];
        let names = ["a", "b"];
        let mut nodes = [
            d.spawn(names[0], ports[0], &flags).await,
            d.spawn(names[1], ports[1], &flags).await,
        ];
        let lb = LoadBalancer::start(ports.to_vec()).await;
        let auction = create_auction(&nodes[0].base).await;
        let stop = tokio_util::sync::CancellationToken::new();
        let bidding = tokio_util::sync::CancellationToken::new();
        let mut users = Vec::new();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..9 {
            let token = match i % 3 {
                0 => Some(session(&nodes[i % 2].base, &format!("Bidder {i}")).await),
                _ => None,
            };
            let seen = Shared::default();
            users.push(seen.clone());
            tasks.spawn(user(
                lb.port,
                auction.clone(),
                token,
                Duration::from_millis(40),
                seen,
                bidding.clone(),
                stop.clone(),
            ));
        }
        // Steady load first, then each node in turn.
        tokio::time::sleep(Duration::from_secs(2)).await;
        for i in 0..2 {
            nodes[i].sigterm();
            let term = Instant::now();
            let status = nodes[i].wait_exit(grace + Duration::from_secs(2)).await;
            let took = term.elapsed();
            let status = status.unwrap_or_else(|| {
                panic!(
                    "node {} still runs {took:?} after SIGTERM\n{}",
                    names[i],
                    nodes[i].log_text()
                )
            });
            assert!(status.success(), "{status}\n{}", nodes[i].log_text());
            assert!(
                took <= grace,
                "node {} took {took:?} to exit (grace {grace:?})",
                names[i]
            );
            eprintln!("node {} exited {took:?} after SIGTERM", names[i]);
            nodes[i] = d.spawn(names[i], ports[i], &flags).await;
            nodes[i]
                .readyz_until(Duration::from_secs(15), |s, _| s == 200)
                .await;
            // Steady load on the restarted pair before the next one goes.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        // Bidding stops (answers still come), then every user must show the final state.
        bidding.cancel();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let final_view = || async {
            let v: Value = reqwest::get(format!("{}/api/auctions/{auction}", nodes[0].base))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (v["seq"].as_u64().unwrap(), v["price"].as_i64().unwrap_or(0))
        };
        let (seq, price) = final_view().await;
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            for (i, u) in users.iter().enumerate() {
                let g = u.lock();
                assert!(g.errors.is_empty(), "user {i} was shown: {:?}", g.errors);
            }
            let behind: Vec<(usize, u64, i64)> = users
                .iter()
                .enumerate()
                .map(|(i, u)| {
                    let g = u.lock();
                    (i, g.seq, g.price)
                })
                .filter(|&(_, s, p)| (s, p) != (seq, price))
                .collect();
            if behind.is_empty() {
                break;
            }
            assert!(
                Instant::now() < until,
                "users left on a stale state (final seq {seq}, price {price}): {behind:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            final_view().await,
            (seq, price),
            "nothing moved after bidding stopped"
        );
        stop.cancel();
        while tasks.join_next().await.is_some() {}
        let mut accepted = Vec::new();
        let mut reconnects = 0;
        for (i, u) in users.iter().enumerate() {
            let g = u.lock();
            assert!(g.errors.is_empty(), "user {i} was shown: {:?}", g.errors);
            assert!(g.reconnects >= 1, "user {i} went through no reconnect");
            reconnects += g.reconnects;
            accepted.extend(g.accepted.iter().cloned());
        }
        eprintln!(
            "final seq {seq}, price {price}; {} accepted bids; {reconnects} reconnects",
            accepted.len()
        );
        assert!(
            accepted.len() >= 20,
            "too few bids accepted to mean anything: {}",
            accepted.len()
        );
        // Every accepted bid is in the history, at its seq, with its amount.
        let h = history(&nodes[1].base, &auction).await;
        for (s, amount, request_id) in &accepted {
            assert_eq!(
                h.get(s),
                Some(amount),
                "accepted bid {request_id} (seq {s}) missing from the history"
            );
        }
        assert_eq!(
            h.len() as u64,
            seq - 1,
            "one history entry per seq after creation"
        );
        // ... and in PostgreSQL once the drainers have written it.
        let (pg, conn) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let rows = pg
                .query(
                    &format!(
                        "SELECT seq, amount FROM {}.bids WHERE auction_id = $1",
                        d.schema()
                    ),
                    &[&auction],
                )
                .await
                .unwrap();
            let stored: std::collections::BTreeMap<u64, i64> = rows
                .iter()
                .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, i64>(1)))
                .collect();
            if stored == h {
                break;
            }
            assert!(
                Instant::now() < until,
                "PostgreSQL holds {} of the {} bids in the history",
                stored.len(),
                h.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("bounded in time");
}
