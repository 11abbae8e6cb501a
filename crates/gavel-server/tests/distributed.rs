//! Distributed mode with real services: real `gavel` processes on 127.0.0.1 sharing the
//! local Redis (`REDIS_URL`, default 127.0.0.1:6379) and PostgreSQL (`DATABASE_URL`,
//! default postgres://postgres@127.0.0.1:5432/test).
//!
//! Each test has its own Redis key prefix and PostgreSQL schema, stops its processes when
//! it ends (even on failure), and is bounded in time. The tests take turns (one lock):
//! they are heavy, and one of them kills a node's Pub/Sub connection by client id.
//! Some bids are placed through an in-process Redis engine on the same prefix: Redis is
//! the authority, so they are the cluster's bids like any other, and placing them that way
//! keeps a debug build fast enough to push 10,000 through the drainers.

use futures::{SinkExt, StreamExt};
use gavel_core::{BidKind, BidRequest, Bidder, BidderId, RequestId};
use gavel_engine::cut_proxy::CutProxy;
use gavel_engine::redis::RedisEngine;
use gavel_engine::Engine;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ADMIN: &str = "distributed-admin-token";
const LIMIT: Duration = Duration::from_secs(150);

mod common;
use common::isolation::{database_url, redis_url};
use common::nodes::{host_port, via_port, Deployment, Node};

/// (bid rows, distinct bid ids, distinct (auction, seq)) stored for these auctions.
async fn stored(d: &Deployment, auctions: &[String]) -> (i64, i64, i64) {
    let row = d
        .pg()
        .await
        .query_one(
            &format!(
                "SELECT count(*), count(DISTINCT bid_id), count(DISTINCT (auction_id, seq))
                   FROM {}.bids WHERE auction_id = ANY($1)",
                d.schema()
            ),
            &[&auctions],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

async fn session(http: &reqwest::Client, node: &Node, name: &str) -> String {
    // "Admin" asks for an admin session; the name itself is reserved (not a display name).
    let body = if name == "Admin" {
        json!({"name": "Ops", "admin_token": ADMIN})
    } else {
        json!({"name": name})
    };
    let r: Value = http
        .post(format!("{}/api/session", node.base))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["token"]
        .as_str()
        .unwrap_or_else(|| panic!("a token: {r}"))
        .to_string()
}

async fn create_auction(http: &reqwest::Client, node: &Node, starting_price: i64) -> String {
    let admin = session(http, node, "Admin").await;
    let r = http
        .post(format!("{}/api/auctions", node.base))
        .bearer_auth(admin)
        .json(&json!({
            "title": "Distributed lot", "description": "", "currency": "USD",
            "starting_price": starting_price, "increment": 100, "duration_ms": 600_000
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

async fn bid(
    http: &reqwest::Client,
    node: &Node,
    token: &str,
    auction: &str,
    amount: i64,
    request: &str,
) -> Value {
    http.post(format!("{}/api/auctions/{auction}/bids", node.base))
        .bearer_auth(token)
        .json(&json!({"amount": amount, "request_id": request}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn watch(node: &Node, auction: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(&node.ws).await.unwrap();
    ws.send(Message::text(
        json!({"type": "subscribe", "auction_id": auction}).to_string(),
    ))
    .await
    .unwrap();
    ws
}

/// Reads messages until `done` says the watcher's view is complete (or the time is up).
/// Tracks the auction's (seq, price) as a client would: updates, snapshots, closes.
async fn follow(ws: &mut Ws, within: Duration, done: impl Fn(u64, i64) -> bool) -> (u64, i64) {
    let deadline = Instant::now() + within;
    let (mut seq, mut price) = (0u64, 0i64);
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(Ok(msg))) = tokio::time::timeout(left, ws.next()).await else {
            break;
        };
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(&text).unwrap();
        match v["type"].as_str() {
            Some("snapshot") => {
                seq = v["auction"]["seq"].as_u64().unwrap_or(seq);
                price = v["auction"]["price"].as_i64().unwrap_or(price);
            }
            Some("update") => {
                let s = v["seq"].as_u64().unwrap_or(0);
                if s > seq {
                    seq = s;
                    if let Some(p) = v["price"].as_i64() {
                        price = p;
                    }
                }
            }
            _ => {}
        }
        if done(seq, price) {
            break;
        }
    }
    (seq, price)
}

fn bidder(i: usize) -> Bidder {
    Bidder {
        id: BidderId::parse(format!("u-load-{i}")).unwrap(),
        name: format!("Load {i}").into(),
    }
}

/// Places `per_auction` accepted bids on each auction (two bidders alternating at the
/// minimum), all auctions at once, through `engine`. Returns the number accepted.
/// `tag` keeps request ids unique across calls (a repeated id is the same bid).
async fn alternate_bids(
    engine: &RedisEngine,
    auctions: &[String],
    per_auction: usize,
    tag: &str,
) -> usize {
    let mut tasks = JoinSet::new();
    for (n, id) in auctions.iter().enumerate() {
        let engine = engine.clone();
        let id = gavel_core::AuctionId::parse(id.as_str()).unwrap();
        let tag = tag.to_string();
        tasks.spawn(async move {
            let mut accepted = 0;
            for round in 0..per_auction {
                if outbid_leader(&engine, &id, &format!("{tag}-{n}-{round}")).await {
                    accepted += 1;
                }
            }
            accepted
        });
    }
    let mut total = 0;
    while let Some(r) = tasks.join_next().await {
        total += r.unwrap();
    }
    total
}

async fn wait_stored(d: &Deployment, auctions: &[String], want: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let (rows, ids, seqs) = stored(d, auctions).await;
        assert_eq!(rows, ids, "a bid id stored twice");
        assert_eq!(rows, seqs, "a seq stored twice");
        if rows == want {
            return;
        }
        assert!(
            rows < want,
            "more bids stored ({rows}) than accepted ({want})"
        );
        assert!(
            Instant::now() < deadline,
            "only {rows} of {want} bids reached PostgreSQL"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bid_through_one_node_reaches_a_watcher_on_the_other() {
    let _turn = SERIAL.lock().await;
    tokio::time::timeout(LIMIT, async {
        let d = Deployment::new("gdist", ADMIN).await;
        let a = d.node("a", &[]).await;
        let b = d.node("b", &[]).await;
        let http = reqwest::Client::new();
        let auction = create_auction(&http, &a, 1_000).await;
        let mut ws = watch(&b, &auction).await;
        let (seq, _) = follow(&mut ws, Duration::from_secs(10), |s, _| s >= 1).await;
        assert_eq!(seq, 1, "the watcher on B starts from a snapshot");
        let ann = session(&http, &a, "Ann").await;
        let r = bid(&http, &a, &ann, &auction, 1_500, "r-1").await;
        assert_eq!(r["outcome"], "accepted", "{r}");
        let (seq, price) = follow(&mut ws, Duration::from_secs(10), |s, _| s >= 2).await;
        assert_eq!(
            (seq, price),
            (2, 1_500),
            "node B's watcher saw node A's bid"
        );
        // And the history on B shows it at once, before any drain.
        let h: Value = http
            .get(format!("{}/api/auctions/{auction}/bids", b.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(h["bids"][0]["amount"], 1_500, "{h}");
    })
    .await
    .expect("bounded in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_500_bidders_on_each_node_bidding_the_same_amount_exactly_one_wins() {
    let _turn = SERIAL.lock().await;
    tokio::time::timeout(LIMIT, async {
        let d = Deployment::new("gdist", ADMIN).await;
        let nodes = [d.node("a", &[]).await, d.node("b", &[]).await];
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1_000)
            .build()
            .unwrap();
        let auction = create_auction(&http, &nodes[0], 1_000).await;
        let mut tokens = Vec::new();
        for i in 0..1_000 {
            tokens.push(session(&http, &nodes[i % 2], &format!("Bidder {i}")).await);
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(1_000));
        let mut tasks = JoinSet::new();
        for (i, token) in tokens.into_iter().enumerate() {
            let (http, barrier, auction) = (http.clone(), barrier.clone(), auction.clone());
            let base = nodes[i % 2].base.clone();
            tasks.spawn(async move {
                barrier.wait().await;
                let v: Value = http
                    .post(format!("{base}/api/auctions/{auction}/bids"))
                    .bearer_auth(token)
                    .json(&json!({"amount": 2_000, "request_id": format!("same-{i}")}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                v["outcome"].as_str().unwrap_or("?").to_string()
            });
        }
        let mut accepted = 0;
        let mut outbid = 0;
        while let Some(r) = tasks.join_next().await {
            match r.unwrap().as_str() {
                "accepted" => accepted += 1,
                "outbid" => outbid += 1,
                other => panic!("unexpected outcome {other}"),
            }
        }
        assert_eq!((accepted, outbid), (1, 999));
        for node in &nodes {
            let v: Value = http
                .get(format!("{}/api/auctions/{auction}", node.base))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(
                (v["bid_count"].as_u64(), v["seq"].as_u64()),
                (Some(1), Some(2))
            );
        }
    })
    .await
    .expect("bounded in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_bids_reach_postgres_exactly_once_in_a_few_hundred_statements() {
    let _turn = SERIAL.lock().await;
    tokio::time::timeout(LIMIT, async {
        let d = Deployment::new("gdist", ADMIN).await;
        let flags = ["--drain-interval-ms", "1000"];
        let nodes = [d.node("a", &flags).await, d.node("b", &flags).await];
        let http = reqwest::Client::new();
        let mut auctions = Vec::new();
        for i in 0..20 {
            auctions.push(create_auction(&http, &nodes[i % 2], 100).await);
        }
        let engine = d.engine().await;
        let accepted = alternate_bids(&engine, &auctions, 500, "load").await;
        assert_eq!(accepted, 10_000);
        wait_stored(&d, &auctions, 10_000, Duration::from_secs(60)).await;
        let mut statements = 0;
        for n in &nodes {
            statements += n.count("gavel_archive_statements_total").await;
        }
        assert!(
            statements <= 300,
            "{statements} statements for 10,000 bids (and 20 creations)"
        );
        assert!(statements >= 100, "at most 100 entries per statement");
    })
    .await
    .expect("bounded in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_batch_has_its_entries_claimed_and_stored_once() {
    let _turn = SERIAL.lock().await;
    tokio::time::timeout(LIMIT, async {
        let d = Deployment::new("gdist", ADMIN).await;
        // A holds what it reads for a minute; B writes within half a second and claims
        // entries idle for 2 s.
        let mut a = d.node("a", &["--drain-interval-ms", "60000"]).await;
        let b = d
            .node(
                "b",
                &[
                    "--drain-interval-ms",
                    "500",
                    "--drain-claim-idle-ms",
                    "2000",
                ],
            )
            .await;
        let http = reqwest::Client::new();
        let auction = create_auction(&http, &b, 100).await;
        let engine = d.engine().await;
        let log = engine
            .keys()
            .log(&gavel_core::AuctionId::parse(auction.as_str()).unwrap());
        let mut redis = d.redis().await;
        let mut accepted = 0;
        let mut held_by_a = 0;
        for round in 0..40 {
            accepted += alternate_bids_on(&engine, &auction, round * 5, 5).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let pending: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
                .arg(&log)
                .arg("drainers")
                .arg("-")
                .arg("+")
                .arg(1_000)
                .arg("a")
                .query_async(&mut redis)
                .await
                .unwrap();
            held_by_a = pending.ids.len();
            if held_by_a > 0 {
                break;
            }
        }
        assert!(held_by_a > 0, "node A never held an entry");
        a.kill9();
        // More bids after the crash: B drains those normally.
        accepted += alternate_bids_on(&engine, &auction, 1_000, 20).await;
        wait_stored(
            &d,
            std::slice::from_ref(&auction),
            accepted as i64,
            Duration::from_secs(30),
        )
        .await;
        assert!(b.count("gavel_drainer_claimed_total").await >= held_by_a as u64);
    })
    .await
    .expect("bounded in time");
}

/// `count` accepted bids on one auction, request ids from `first`.
async fn alternate_bids_on(
    engine: &RedisEngine,
    auction: &str,
    first: usize,
    count: usize,
) -> usize {
    let id = gavel_core::AuctionId::parse(auction).unwrap();
    let mut accepted = 0;
    for round in first..first + count {
        if outbid_leader(engine, &id, &format!("one-{round}")).await {
            accepted += 1;
        }
    }
    accepted
}

/// One bid at the minimum by whichever of the two load bidders is not leading; whether it
/// was accepted.
async fn outbid_leader(engine: &RedisEngine, id: &gavel_core::AuctionId, request_id: &str) -> bool {
    let a = engine.auction(id).await.unwrap().unwrap();
    let leader = a.state.leader.as_ref().map(|l| l.id.to_string());
    let who = if leader.as_deref() == Some("u-load-0") {
        1
    } else {
        0
    };
    engine
        .place_bid(
            id,
            &RequestId::parse(request_id).unwrap(),
            BidRequest {
                bidder: bidder(who),
                amount: a.min_bid(),
                kind: BidKind::Plain,
                expected_seq: None,
            },
        )
        .await
        .unwrap()
        .outcome
        .is_ok()
}

/// A cuttable proxy to PostgreSQL and the archive URL that goes through it.
async fn pg_proxy() -> CutProxy {
    CutProxy::start(host_port(&database_url(), 5432)).await
}

fn proxied_pg_url(proxy: &CutProxy) -> String {
    via_port(&database_url(), proxy.port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_for_a_while_loses_nothing() {
    let _turn = SERIAL.lock().await;
    tokio::time::timeout(LIMIT, async {
        let d = Deployment::new("gdist", ADMIN).await;
        let mut proxy = pg_proxy().await;
        let flags = ["--drain-interval-ms", "300"];
        let a = d
            .node_via("a", &redis_url(), &proxied_pg_url(&proxy), &flags)
            .await;
        let b = d
            .node_via("b", &redis_url(), &proxied_pg_url(&proxy), &flags)
            .await;
        let http = reqwest::Client::new();
        let auctions = vec![
            create_auction(&http, &a, 100).await,
            create_auction(&http, &b, 100).await,
        ];
        let engine = d.engine().await;
        let mut accepted = alternate_bids(&engine, &auctions, 50, "before").await;
        wait_stored(&d, &auctions, accepted as i64, Duration::from_secs(20)).await;

        proxy.down();
        // Bids keep flowing through both nodes while the archive is unreachable.
        let ann = session(&http, &a, "Ann").await;
        let bob = session(&http, &b, "Bob").await;
        for i in 0..20 {
            let (node, token) = if i % 2 == 0 { (&a, &ann) } else { (&b, &bob) };
            let current: Value = http
                .get(format!("{}/api/auctions/{}", node.base, auctions[0]))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let min = current["min_bid"].as_i64().unwrap();
            let r = bid(&http, node, token, &auctions[0], min, &format!("down-{i}")).await;
            assert_eq!(r["outcome"], "accepted", "{r}");
            accepted += 1;
        }
        accepted += alternate_bids(&engine, &auctions, 30, "during").await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            a.count("gavel_drainer_write_failures_total").await
                + b.count("gavel_drainer_write_failures_total").await
                > 0,
            "the drainers noticed the outage"
        );
        // The archive lag (alerted on: deploy/prometheus/alerts.yml) shows the wait.
        assert!(
            a.count("gavel_archive_lag_seconds").await + b.count("gavel_archive_lag_seconds").await
                >= 1,
            "the archive lag grows while PostgreSQL is away"
        );

        proxy.up().await;
        wait_stored(&d, &auctions, accepted as i64, Duration::from_secs(40)).await;
        // And falls back once everything is archived.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while a.count("gavel_archive_lag_seconds").await
            + b.count("gavel_archive_lag_seconds").await
            > 0
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the archive lag stays up"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("bounded in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bids_succeed_again_after_the_script_cache_is_flushed() {
    let _turn = SERIAL.lock().await;
    tokio::time::timeout(LIMIT, async {
        let d = Deployment::new("gdist", ADMIN).await;
        let a = d.node("a", &[]).await;
        let b = d.node("b", &[]).await;
        let http = reqwest::Client::new();
        let auction = create_auction(&http, &a, 1_000).await;
        let ann = session(&http, &a, "Ann").await;
        let bob = session(&http, &b, "Bob").await;
        let r = bid(&http, &a, &ann, &auction, 1_000, "f-1").await;
        assert_eq!(r["outcome"], "accepted", "{r}");
        let mut redis = d.redis().await;
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut redis)
            .await
            .unwrap();
        let r = bid(&http, &b, &bob, &auction, 1_100, "f-2").await;
        assert_eq!(r["outcome"], "accepted", "{r}");
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut redis)
            .await
            .unwrap();
        let r = bid(&http, &a, &ann, &auction, 1_200, "f-3").await;
        assert_eq!(r["outcome"], "accepted", "{r}");
        assert_eq!(r["auction"]["seq"], 4);
    })
    .await
    .expect("bounded in time");
}

/// Local ports of the TCP connections process `pid` holds to `remote_port` (from /proc).
fn ports_to(pid: u32, remote_port: u16) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().to_string();
                    Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local = u16::from_str_radix(f.get(1)?.split(':').nth(1)?, 16).ok()?;
            let remote = u16::from_str_radix(f.get(2)?.split(':').nth(1)?, 16).ok()?;
            let inode = *f.get(9)?;
            (remote == remote_port && inodes.iter().any(|i| i == inode)).then_some(local)
        })
        .collect()
}

/// Client ids of the Pub/Sub connections node `pid` holds to Redis.
async fn pubsub_clients_of(redis: &mut redis::aio::MultiplexedConnection, pid: u32) -> Vec<String> {
    let redis_port = redis_url()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').split('/').next()?.parse().ok())
        .unwrap_or(6379);
    let ports = ports_to(pid, redis_port);
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(redis)
        .await
        .unwrap();
    list.lines()
        .filter(|l| {
            l.split_whitespace()
                .find_map(|f| f.strip_prefix("addr="))
                .and_then(|a| a.rsplit(':').next()?.parse::<u16>().ok())
                .is_some_and(|port| ports.contains(&port))
        })
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|f| f.strip_prefix("id="))
                .map(String::from)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_converge_after_their_nodes_subscription_is_dropped() {
    let _turn = SERIAL.lock().await;
    tokio::time::timeout(LIMIT, async {
        let d = Deployment::new("gdist", ADMIN).await;
        let mut redis = d.redis().await;
        let a = d.node("a", &[]).await;
        let b = d.node("b", &[]).await;
        let b_subscriptions = pubsub_clients_of(&mut redis, b.pid()).await;
        assert_eq!(
            b_subscriptions.len(),
            1,
            "node B holds one Pub/Sub connection"
        );
        let http = reqwest::Client::new();
        let auction = create_auction(&http, &a, 100).await;
        let mut ws = watch(&b, &auction).await;
        follow(&mut ws, Duration::from_secs(10), |s, _| s >= 1).await;

        let _: () = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(&b_subscriptions[0])
            .query_async(&mut redis)
            .await
            .unwrap();
        // Bids through A while B is resubscribing: some of these B never hears.
        let engine = d.engine().await;
        alternate_bids_on(&engine, &auction, 0, 30).await;
        let last = engine
            .auction(&gavel_core::AuctionId::parse(auction.as_str()).unwrap())
            .await
            .unwrap()
            .unwrap();
        let want = (last.state.seq, last.state.price.unwrap().minor_units());
        let got = follow(&mut ws, Duration::from_secs(15), |s, p| (s, p) == want).await;
        assert_eq!(got, want, "B's watcher converged to the latest state");
        assert!(
            b.count("gavel_pubsub_subscriptions_total").await >= 2,
            "node B resubscribed"
        );
        drop(a);
        drop(b);
    })
    .await
    .expect("bounded in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_proxy_cuts_and_restores_postgres() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let mut proxy = pg_proxy().await;
        let url = proxied_pg_url(&proxy);
        let connect = || async {
            let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            c.query_one("SELECT 1", &[]).await.map(|_| c)
        };
        let before = connect().await.expect("through the proxy");
        proxy.down();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(before.query_one("SELECT 1", &[]).await.is_err(), "cut");
        assert!(connect().await.is_err(), "refused while down");
        proxy.up().await;
        connect().await.expect("restored");
    })
    .await
    .expect("bounded in time");
}

/// Reads until a message of type `ty` arrives (or the time is up).
async fn until_type(ws: &mut Ws, ty: &str, within: Duration) -> Option<Value> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(Ok(msg))) = tokio::time::timeout(left, ws.next()).await else {
            return None;
        };
        if let Message::Text(text) = msg {
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["type"] == ty {
                return Some(v);
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_answers_unavailable_keeps_sockets_open_and_the_node_recovers() {
    let _turn = SERIAL.lock().await;
    tokio::time::timeout(LIMIT, async {
        let d = Deployment::new("gdist", ADMIN).await;
        let redis_host = redis_url()
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .to_string();
        let mut proxy = CutProxy::start(redis_host).await;
        let a = d
            .node_via(
                "a",
                &format!("redis://127.0.0.1:{}", proxy.port),
                &database_url(),
                &[],
            )
            .await;
        let http = reqwest::Client::new();
        let auction = create_auction(&http, &a, 1_000).await;
        let ann = session(&http, &a, "Ann").await;
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}?token={ann}", a.ws))
            .await
            .unwrap();
        ws.send(Message::text(
            json!({"type": "subscribe", "auction_id": auction}).to_string(),
        ))
        .await
        .unwrap();
        until_type(&mut ws, "snapshot", Duration::from_secs(10))
            .await
            .expect("snapshot");
        let bid_msg = |amount: i64, rid: &str| {
            Message::text(
                json!({"type": "bid", "auction_id": auction, "amount": amount, "request_id": rid})
                    .to_string(),
            )
        };
        let bob = session(&http, &a, "Bob").await;
        let r = bid(&http, &a, &bob, &auction, 1_000, "b-0").await;
        assert_eq!(r["outcome"], "accepted", "{r}");
        until_type(&mut ws, "update", Duration::from_secs(10))
            .await
            .expect("update");

        // Redis unreachable: an explicit `unavailable` (nothing decided) or
        // `outcome_unknown` (the call was cut mid-way), and the socket stays open.
        proxy.down();
        ws.send(bid_msg(1_100, "r-2")).await.unwrap();
        let e = until_type(&mut ws, "error", Duration::from_secs(30))
            .await
            .expect("an error while Redis is down");
        assert!(
            e["code"] == "unavailable" || e["code"] == "outcome_unknown",
            "{e}"
        );
        assert_eq!(e["request_id"], "r-2");
        // Counted for the bid error rate alert (deploy/prometheus/alerts.yml).
        assert!(a.count("gavel_bid_errors_total").await >= 1);
        ws.send(Message::text(
            json!({"type": "ping", "client_time": 1.0}).to_string(),
        ))
        .await
        .unwrap();
        until_type(&mut ws, "pong", Duration::from_secs(10))
            .await
            .expect("the socket is still open");

        // Redis back: the same request is decided (once), and watchers see it.
        proxy.up().await;
        let started = Instant::now();
        let outcome = loop {
            ws.send(bid_msg(1_100, "r-2")).await.unwrap();
            let m = until_type(&mut ws, "bid_result", Duration::from_secs(3)).await;
            if let Some(m) = m {
                break m;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the node never recovered"
            );
        };
        assert_eq!(outcome["outcome"], "accepted", "{outcome}");
        // Another user's bid through HTTP reaches this socket: the subscription is back.
        let r = bid(&http, &a, &bob, &auction, 1_200, "b-1").await;
        assert_eq!(r["outcome"], "accepted", "{r}");
        let (seq, price) = follow(&mut ws, Duration::from_secs(30), |_, p| p == 1_200).await;
        assert_eq!(price, 1_200, "the watcher converged (seq {seq})");
        let view: Value = http
            .get(format!("{}/api/auctions/{auction}", a.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(view["bid_count"], 3, "r-2 was placed exactly once");
    })
    .await
    .expect("bounded in time");
}

/// The first message of type `ty` on `ws`, within `within`.
async fn first_of(ws: &mut Ws, ty: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(Ok(msg))) = tokio::time::timeout(left, ws.next()).await else {
            panic!("no {ty} within {within:?}");
        };
        if let Message::Text(text) = msg {
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["type"] == ty {
                return v;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_serves_snapshots_with_the_whole_recent_history() {
    let _turn = SERIAL.lock().await;
    tokio::time::timeout(LIMIT, async {
        let d = Deployment::new("gdist", ADMIN).await;
        let a = d.node("a", &[]).await;
        let b = d.node("b", &[]).await;
        let http = reqwest::Client::new();
        let auction = create_auction(&http, &a, 1_000).await;
        let ann = session(&http, &a, "Ann").await;
        let bob = session(&http, &a, "Bob").await;
        drop(b); // stopped (kill -9)
        for i in 0..5 {
            let token = if i % 2 == 0 { &ann } else { &bob };
            let r = bid(
                &http,
                &a,
                token,
                &auction,
                1_000 + i * 100,
                &format!("r{i}"),
            )
            .await;
            assert_eq!(r["outcome"], "accepted", "{r}");
        }
        let b = d.node("b", &[]).await;
        let r = bid(&http, &a, &bob, &auction, 1_500, "r5").await;
        assert_eq!(r["outcome"], "accepted", "{r}");
        // B's fan-out sees that bid before anyone on B subscribes.
        tokio::time::sleep(Duration::from_millis(500)).await;

        let mut ws = watch(&b, &auction).await;
        let snapshot = first_of(&mut ws, "snapshot", Duration::from_secs(10)).await;
        let history: Value = http
            .get(format!("{}/api/auctions/{auction}/bids", b.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let all = history["bids"].as_array().unwrap();
        assert_eq!(all.len(), 6, "{history}");
        let recent = snapshot["recent_bids"].as_array().unwrap();
        assert_eq!(
            recent.as_slice(),
            &all[..recent.len()],
            "the snapshot's recent bids are the newest of the history"
        );
        assert_eq!(recent.len(), 6, "{snapshot}");
    })
    .await
    .expect("within the time limit");
}
