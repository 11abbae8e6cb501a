//! Soak: state stays bounded over thousands of auctions (issue 10, item 3).
//!
//! A real `gavel` process (embedded mode, `--closed-retention 1s`) gets round after round
//! of auctions: each is created (with a 4 KiB description, so anything kept per auction
//! shows in the memory), bid on, watched over a WebSocket for a while, and ended. After each
//! round the test waits for the closed auctions to leave memory and the rooms to go, then
//! reads the server's RSS (`/proc/<pid>/status`) and its admin stats. The RSS after the last
//! round must stay within a small margin of the RSS after the second one (the first warms
//! the allocator, SQLite's page caches and the connection pools), the hot auctions and the
//! rooms must be back to zero, and every auction of every round must still be readable with
//! its whole history. Bounded in time (a few minutes at most) and on loopback only.
//!
//! The distributed soak (Redis keys under the test prefix back to baseline) waits for the
//! Redis engine's retention (wt-redis); see the report.

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

const ADMIN: &str = "soak-admin-token-0123456789";
const ROUNDS: usize = 5;
const PER_ROUND: usize = 1_000;
/// Auctions of each round a WebSocket watches (each makes a fan-out room).
const WATCHED: usize = 50;
/// Requests in flight at once.
const PARALLEL: usize = 16;
/// What the RSS may grow by from the second round to the last. Were the released state
/// kept, 3,000 auctions with 4 KiB descriptions would add well over twice this.
const RSS_MARGIN_KB: u64 = 10 * 1024;
const TIME_LIMIT: Duration = Duration::from_secs(300);

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server runs");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(data_dir: &std::path::Path) -> Server {
    let port = free_port();
    #[allow(clippy::zombie_processes)] // `Server`'s Drop kills and waits for it.
    let child = Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--admin-token", ADMIN])
        .args(["--bids-per-second", "100000"])
        .args(["--sessions-per-minute-per-ip", "0"])
        .args(["--max-connections-per-ip", "0"])
        .args(["--closed-retention", "1s"])
        .env("RUST_LOG", "warn")
        .env_remove("REDIS_URL")
        .env_remove("DATABASE_URL")
        .env_remove("GAVEL_REDIS_URL")
        .env_remove("GAVEL_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gavel");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    for _ in 0..400 {
        if http
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not start");
}

async fn post(http: &reqwest::Client, url: String, token: &str, body: Value) -> (u16, Value) {
    let r = http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("the server answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(http: &reqwest::Client, url: String) -> (u16, Value) {
    let r = http.get(url).send().await.expect("the server answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn session(http: &reqwest::Client, base: &str, name: &str) -> String {
    let (_, r) = post(
        http,
        format!("{base}/api/session"),
        "",
        json!({ "name": name }),
    )
    .await;
    r["token"].as_str().expect("a token").to_string()
}

/// Runs `work` on every item, `PARALLEL` at a time.
async fn each<T, F, Fut>(items: Vec<T>, work: F)
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let work = Arc::new(work);
    let mut items = items.into_iter();
    let mut running = JoinSet::new();
    loop {
        while running.len() < PARALLEL {
            let Some(item) = items.next() else { break };
            let work = work.clone();
            running.spawn(async move { work(item).await });
        }
        match running.join_next().await {
            Some(r) => r.expect("a task panicked"),
            None => return,
        }
    }
}

/// One round: create, bid on (two bids each), watch some, end. Returns the auction ids.
async fn round(server: &Server, n: usize, bidders: &[String; 2]) -> Vec<String> {
    let http = reqwest::Client::new();
    let base = server.base.clone();
    let ids: Vec<String> = (0..PER_ROUND)
        .map(|i| format!("soak-{n}-{i}-{}", uuid::Uuid::new_v4().simple()))
        .collect();
    let description = "d".repeat(4_096);
    {
        let (http, base) = (http.clone(), base.clone());
        each(ids.clone(), move |id| {
            let (http, base, description) = (http.clone(), base.clone(), description.clone());
            async move {
                let (status, body) = post(
                    &http,
                    format!("{base}/api/auctions"),
                    ADMIN,
                    json!({"id": id, "title": "Soak lot", "description": description,
                           "starting_price": 1000, "increment": 100, "duration_ms": 600_000}),
                )
                .await;
                assert_eq!(status, 201, "{body}");
            }
        })
        .await;
    }
    // Watch some of them: each makes a room, which must go again once nobody watches.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws", base.trim_start_matches("http://")))
            .await
            .expect("ws");
    for id in ids.iter().take(WATCHED) {
        ws.send(Message::text(
            json!({"type": "subscribe", "auction_id": id}).to_string(),
        ))
        .await
        .unwrap();
    }
    let mut snapshots = 0;
    while snapshots < WATCHED {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("snapshots arrive")
            .expect("open")
            .expect("no error");
        if let Message::Text(t) = msg {
            if serde_json::from_str::<Value>(&t).unwrap()["type"] == "snapshot" {
                snapshots += 1;
            }
        }
    }
    {
        let (http, base, bidders) = (http.clone(), base.clone(), bidders.clone());
        each(ids.clone(), move |id| {
            let (http, base, bidders) = (http.clone(), base.clone(), bidders.clone());
            async move {
                for (i, amount) in [1000, 1100].into_iter().enumerate() {
                    let (status, body) = post(
                        &http,
                        format!("{base}/api/auctions/{id}/bids"),
                        &bidders[i],
                        json!({"amount": amount, "request_id": format!("r{i}")}),
                    )
                    .await;
                    assert_eq!(status, 200, "{body}");
                }
                let (status, body) = post(
                    &http,
                    format!("{base}/api/auctions/{id}/end"),
                    ADMIN,
                    json!({}),
                )
                .await;
                assert_eq!(status, 200, "{body}");
            }
        })
        .await;
    }
    drop(ws);
    ids
}

/// (hot auctions, rooms) from the admin stats.
async fn stats(server: &Server) -> (u64, u64) {
    let r = reqwest::Client::new()
        .get(format!("{}/api/admin/stats", server.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    (
        v["hot_auctions"]
            .as_u64()
            .expect("embedded mode counts them"),
        v["rooms"].as_u64().unwrap(),
    )
}

/// Waits until the released auctions and idle rooms are gone; returns the stats then.
async fn settle(server: &Server) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = stats(server).await;
        if s == (0, 0) || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousands_of_auctions_leave_the_server_where_it_started_and_stay_readable() {
    tokio::time::timeout(TIME_LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let server = start(dir.path()).await;
        let http = reqwest::Client::new();
        let bidders = [
            session(&http, &server.base, "Ann").await,
            session(&http, &server.base, "Bob").await,
        ];
        let started = Instant::now();
        let mut all = Vec::new();
        let mut rss = Vec::new();
        for n in 0..ROUNDS {
            all.extend(round(&server, n, &bidders).await);
            let settled = settle(&server).await;
            assert_eq!(
                settled,
                (0, 0),
                "after round {n}: (hot auctions, rooms) back to zero"
            );
            rss.push(server.rss_kb());
            eprintln!(
                "soak: round {n} done at {:.1} s, RSS {} KiB",
                started.elapsed().as_secs_f64(),
                rss[n]
            );
        }
        let (baseline, last) = (rss[1], rss[ROUNDS - 1]);
        assert!(
            last <= baseline + RSS_MARGIN_KB,
            "RSS grew from {baseline} KiB after round 1 to {last} KiB after round {} \
             (margin {RSS_MARGIN_KB} KiB): {rss:?}",
            ROUNDS - 1
        );

        // Every auction is still there, closed, with its whole history.
        let base = server.base.clone();
        each(all, move |id| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let (status, view) = get(&http, format!("{base}/api/auctions/{id}")).await;
                assert_eq!(status, 200, "{id}: {view}");
                assert_eq!(view["status"], "closed", "{view}");
                assert_eq!(view["bid_count"], 2);
                let (status, history) =
                    get(&http, format!("{base}/api/auctions/{id}/bids?limit=200")).await;
                assert_eq!(status, 200, "{history}");
                let amounts: Vec<i64> = history["bids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| b["amount"].as_i64().unwrap())
                    .collect();
                assert_eq!(amounts, vec![1100, 1000], "{id}: the whole history");
            }
        })
        .await;
        eprintln!(
            "soak: {} auctions checked at {:.1} s",
            ROUNDS * PER_ROUND,
            started.elapsed().as_secs_f64()
        );
    })
    .await
    .expect("the soak finishes within its time limit");
}
