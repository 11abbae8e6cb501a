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
//! The distributed soak runs the same rounds against a distributed node (Redis + PostgreSQL,
//! its own key prefix and schema, removed at the end): after each round the closed auctions
//! must leave Redis (`--closed-retention 1s`, once drained), so the number of Redis keys
//! under the prefix comes back to its baseline, and this node's rooms and watched auctions
//! to zero; the RSS stays within the margin; every auction is still readable, with its
//! whole history, from PostgreSQL; and a sample gives, once retired, exactly the answers it
//! gave while in Redis (view, history, a retried request's first answer), refuses a new bid
//! as `closed` and keeps its id taken.

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

/// Distributed rounds are fewer and smaller (each request crosses Redis, the drainer writes
/// PostgreSQL): 3,000 auctions keep the test near a minute on a shared machine.
const ROUNDS_DISTRIBUTED: usize = 4;
const PER_ROUND_DISTRIBUTED: usize = 750;
/// Redis keys under the prefix that may remain after the auctions left (node-wide indexes
/// that are not empty for a moment). Were one auction's keys left behind, a round would
/// leave thousands.
const KEYS_MARGIN: usize = 8;
/// Auctions per round whose answers are compared before and after they leave Redis.
const SAMPLE: usize = 20;

mod common;
use common::isolation::{database_url, redis_url};
use common::nodes::free_port;

/// Where the server keeps its state.
#[derive(Clone)]
enum Mode {
    Embedded,
    /// Its own Redis key prefix and PostgreSQL schema.
    Distributed {
        prefix: String,
        schema: String,
    },
}

impl Mode {
    async fn distributed() -> Mode {
        Mode::Distributed {
            prefix: gavel_engine::conformance::redis_test_prefix(&redis_url(), "gsoak").await,
            schema: format!("gsoak_{}", uuid::Uuid::new_v4().simple()),
        }
    }

    fn rounds(&self) -> (usize, usize) {
        match self {
            Mode::Embedded => (ROUNDS, PER_ROUND),
            Mode::Distributed { .. } => (ROUNDS_DISTRIBUTED, PER_ROUND_DISTRIBUTED),
        }
    }

    /// Keys under the prefix (`None` in embedded mode).
    async fn redis_keys(&self) -> Option<usize> {
        let Mode::Distributed { prefix, .. } = self else {
            return None;
        };
        let client = redis::Client::open(redis_url()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let mut cursor: u64 = 0;
        let mut n = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}:*"))
                .arg("COUNT")
                .arg(5000)
                .query_async(&mut c)
                .await
                .unwrap();
            n += keys.len();
            if next == 0 {
                return Some(n);
            }
            cursor = next;
        }
    }
}

/// Removes a distributed run's prefix and schema when the test ends, however it ends.
struct Cleanup(Mode);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Mode::Distributed { prefix, schema } = &self.0 {
            common::isolation::remove(prefix, schema);
        }
    }
}

struct Server {
    child: Child,
    base: String,
    mode: Mode,
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

async fn start(data_dir: &std::path::Path, mode: &Mode) -> Server {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_gavel"));
    command.arg("serve");
    if let Mode::Distributed { prefix, schema } = mode {
        command
            .args(["--redis", &redis_url(), "--database", &database_url()])
            .args(["--redis-prefix", prefix, "--database-schema", schema])
            .args(["--node-id", "soak", "--drain-interval-ms", "100"]);
    }
    #[allow(clippy::zombie_processes)] // `Server`'s Drop kills and waits for it.
    let child = command
        .args(["--listen", &format!("127.0.0.1:{port}")])
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
        mode: mode.clone(),
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

/// What a client can ask about a closed auction, as the server answered.
#[derive(Debug, PartialEq)]
struct Answers {
    view: Value,
    history: Value,
    /// The first bid's request sent again: its first answer.
    retry: Value,
}

/// `server_time` says when, not what: left out of comparisons.
fn without_time(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("server_time");
        for x in o.values_mut() {
            *x = without_time(x.take());
        }
    }
    v
}

async fn ask(http: &reqwest::Client, base: &str, id: &str, bidder: &str) -> Answers {
    let (status, view) = get(http, format!("{base}/api/auctions/{id}")).await;
    assert_eq!(status, 200, "{id}: {view}");
    let (status, history) = get(http, format!("{base}/api/auctions/{id}/bids?limit=200")).await;
    assert_eq!(status, 200, "{id}: {history}");
    let (status, retry) = post(
        http,
        format!("{base}/api/auctions/{id}/bids"),
        bidder,
        json!({"amount": 1000, "request_id": "r0"}),
    )
    .await;
    assert_eq!(status, 200, "{id}: a retry gets its first answer: {retry}");
    Answers {
        view: without_time(view),
        history: without_time(history),
        retry: without_time(retry),
    }
}

/// One round: create, bid on (two bids each), watch some, end. Returns the auction ids, and
/// the answers about the first `SAMPLE` of them as soon as they were ended.
async fn round(
    server: &Server,
    n: usize,
    bidders: &[String; 2],
) -> (Vec<String>, Vec<(String, Answers)>) {
    let http = reqwest::Client::new();
    let base = server.base.clone();
    let per_round = server.mode.rounds().1;
    let sampled = Arc::new(std::sync::Mutex::new(Vec::new()));
    let ids: Vec<String> = (0..per_round)
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
        let sample: Vec<String> = ids.iter().take(SAMPLE).cloned().collect();
        let sampled = sampled.clone();
        each(ids.clone(), move |id| {
            let (http, base, bidders) = (http.clone(), base.clone(), bidders.clone());
            let (sample, sampled) = (sample.contains(&id), sampled.clone());
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
                if sample {
                    let answers = ask(&http, &base, &id, &bidders[0]).await;
                    sampled.lock().unwrap().push((id, answers));
                }
            }
        })
        .await;
    }
    drop(ws);
    let sampled = std::mem::take(&mut *sampled.lock().unwrap());
    (ids, sampled)
}

/// What a node holds, from its admin stats (and Redis).
#[derive(Debug, PartialEq)]
struct Held {
    /// Embedded: auctions in the engine's memory. Distributed: auctions this node follows
    /// for its watchers.
    auctions: u64,
    rooms: u64,
    /// Distributed: keys under the prefix, above the baseline's margin (0 when within it).
    extra_redis_keys: usize,
}

impl Held {
    fn empty() -> Held {
        Held {
            auctions: 0,
            rooms: 0,
            extra_redis_keys: 0,
        }
    }
}

async fn stats(server: &Server, baseline_keys: usize) -> Held {
    let r = reqwest::Client::new()
        .get(format!("{}/api/admin/stats", server.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let field = match server.mode {
        Mode::Embedded => "hot_auctions",
        Mode::Distributed { .. } => "watched_auctions",
    };
    let keys = server.mode.redis_keys().await.unwrap_or(0);
    Held {
        auctions: v[field].as_u64().expect("the mode counts them"),
        rooms: v["rooms"].as_u64().unwrap(),
        extra_redis_keys: keys.saturating_sub(baseline_keys + KEYS_MARGIN),
    }
}

/// Waits until the released auctions, idle rooms and Redis keys are gone; returns what is
/// held then.
async fn settle(server: &Server, baseline_keys: usize) -> Held {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let s = stats(server, baseline_keys).await;
        if s == Held::empty() || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousands_of_auctions_leave_the_server_where_it_started_and_stay_readable() {
    soak(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousands_of_auctions_leave_redis_and_the_node_where_they_started_and_stay_readable() {
    let mode = Mode::distributed().await;
    let _cleanup = Cleanup(mode.clone());
    soak(mode).await;
}

async fn soak(mode: Mode) {
    tokio::time::timeout(TIME_LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let baseline_keys = mode.redis_keys().await.unwrap_or(0);
        let server = start(dir.path(), &mode).await;
        let (rounds, per_round) = mode.rounds();
        let http = reqwest::Client::new();
        let bidders = [
            session(&http, &server.base, "Ann").await,
            session(&http, &server.base, "Bob").await,
        ];
        let started = Instant::now();
        let mut all = Vec::new();
        let mut sampled = Vec::new();
        let mut rss = Vec::new();
        for n in 0..rounds {
            let (ids, answers) = round(&server, n, &bidders).await;
            all.extend(ids);
            sampled.extend(answers);
            let settled = settle(&server, baseline_keys).await;
            assert_eq!(
                settled,
                Held::empty(),
                "after round {n}: auctions held, rooms and Redis keys back to the baseline \
                 ({baseline_keys} keys + {KEYS_MARGIN})"
            );
            rss.push(server.rss_kb());
            eprintln!(
                "soak: round {n} done at {:.1} s, RSS {} KiB, Redis keys {:?} (baseline {baseline_keys})",
                started.elapsed().as_secs_f64(),
                rss[n],
                mode.redis_keys().await
            );
        }
        let (baseline, last) = (rss[1], rss[rounds - 1]);
        assert!(
            last <= baseline + RSS_MARGIN_KB,
            "RSS grew from {baseline} KiB after round 1 to {last} KiB after round {} \
             (margin {RSS_MARGIN_KB} KiB): {rss:?}",
            rounds - 1
        );

        // Out of the authority now, the sampled auctions answer exactly as they did in it,
        // refuse a new bid as closed, stay out of the live listing and keep their ids.
        for (id, before) in &sampled {
            let after = ask(&http, &server.base, id, &bidders[0]).await;
            assert_eq!(
                &after, before,
                "{id}: the same answers once it left the authority"
            );
            let (status, body) = post(
                &http,
                format!("{}/api/auctions/{id}/bids", server.base),
                &bidders[1],
                json!({"amount": 5000, "request_id": "late"}),
            )
            .await;
            let code = body["outcome"].as_str().or(body["error"]["code"].as_str());
            assert_eq!(code, Some("closed"), "{id}: {status} {body}");
            let (status, body) = post(
                &http,
                format!("{}/api/auctions", server.base),
                ADMIN,
                json!({"id": id, "title": "Again", "starting_price": 1000, "increment": 100,
                       "duration_ms": 600_000}),
            )
            .await;
            assert_eq!(status, 409, "{id}: its id stays taken: {body}");
        }
        let (status, live) = get(
            &http,
            format!("{}/api/auctions?status=live&limit=200", server.base),
        )
        .await;
        assert_eq!(status, 200, "{live}");
        assert!(
            live["auctions"].as_array().unwrap().is_empty(),
            "no closed auction is listed live: {live}"
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
            rounds * per_round,
            started.elapsed().as_secs_f64()
        );
    })
    .await
    .expect("the soak finishes within its time limit");
}
