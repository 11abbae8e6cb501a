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
use std::net::TcpListener as StdListener;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ADMIN: &str = "rolling-admin-token";
const LIMIT: Duration = Duration::from_secs(150);

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `host:port` of a `scheme://[user@]host:port/...` URL.
fn host_port(url: &str, default_port: u16) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let hp = rest.split('/').next().unwrap_or("127.0.0.1");
    if hp.contains(':') {
        hp.to_string()
    } else {
        format!("{hp}:{default_port}")
    }
}

/// `url` with its host and port replaced by 127.0.0.1:`port`.
fn via_port(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, rest) = match rest.rsplit_once('@') {
        Some((u, r)) => (format!("{u}@"), r),
        None => (String::new(), rest),
    };
    let path = rest
        .split_once('/')
        .map_or(String::new(), |(_, p)| format!("/{p}"));
    format!("{scheme}://{user}127.0.0.1:{port}{path}")
}

/// What the nodes of one test share: a data directory, and in distributed mode a Redis
/// prefix and a PostgreSQL schema (removed at the end).
struct Deployment {
    prefix: String,
    schema: String,
    dir: Option<tempfile::TempDir>,
}

impl Deployment {
    fn new() -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        Deployment {
            prefix: format!("groll-{tag}"),
            schema: format!("groll_{tag}"),
            dir: Some(tempfile::tempdir().unwrap()),
        }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.as_ref().expect("present until drop").path()
    }

    /// Flags of a distributed node on this deployment, through the given URLs.
    fn distributed(&self, redis: &str, database: &str) -> Vec<String> {
        [
            "--redis",
            redis,
            "--database",
            database,
            "--redis-prefix",
            &self.prefix,
            "--database-schema",
            &self.schema,
            "--drain-interval-ms",
            "200",
        ]
        .map(String::from)
        .to_vec()
    }

    /// Starts `gavel serve` on `port` with `extra` flags; waits for `/healthz`.
    async fn node(&self, name: &str, port: u16, extra: &[String]) -> Node {
        let data = self.path().join(name);
        std::fs::create_dir_all(&data).unwrap();
        let log_path = self.path().join(format!("{name}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gavel"))
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(&data)
            .args(["--node-id", name])
            .args(["--admin-token", ADMIN])
            .args(["--jwt-secret", "rolling-test-secret-0123456789abcdef"])
            .args(["--bids-per-second", "100000"])
            .args(["--max-connections-per-ip", "0"])
            .args(["--sessions-per-minute-per-ip", "0"])
            .args(extra)
            .env_remove("REDIS_URL")
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "info,tower_http=warn")
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the gavel binary starts");
        let node = Node {
            child,
            port,
            log: log_path,
        };
        let started = Instant::now();
        loop {
            if let Ok(r) = reqwest::get(format!("{}/healthz", node.base())).await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "node {name} did not start:\n{}",
                node.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        node
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                eprintln!("node logs kept in {}", dir.keep().display());
            }
        }
        let (prefix, schema) = (self.prefix.clone(), self.schema.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(client) = redis::Client::open(redis_url()) {
                if let Ok(mut c) = client.get_connection() {
                    let keys: Vec<String> = redis::cmd("KEYS")
                        .arg(format!("{prefix}:*"))
                        .query(&mut c)
                        .unwrap_or_default();
                    for k in keys {
                        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(k).query(&mut c);
                    }
                }
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&database_url(), tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

struct Node {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Node {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
    }

    /// Waits (up to `within`) for the process to exit; its exit status, `None` if it runs.
    async fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn readyz(&self) -> (u16, Value) {
        let r = reqwest::get(format!("{}/readyz", self.base()))
            .await
            .unwrap();
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

    async fn metric(&self, name: &str) -> Option<f64> {
        let text = reqwest::get(format!("{}/metrics", self.base()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().last()?.parse().ok())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
        let d = Deployment::new();
        let port = free_port();
        // Grace 6 s: reconnects spread over 2 s.
        let flags = ["--shutdown-grace-secs", "6"].map(String::from);
        let mut node = d.node("solo", port, &flags).await;
        let (status, body) = node.readyz().await;
        assert_eq!(
            (status, &body),
            (200, &json!({"ready": true, "reasons": []}))
        );
        assert_eq!(node.metric("gavel_ready").await, Some(1.0));
        assert_eq!(node.metric("gavel_draining").await, Some(0.0));

        let auction = create_auction(&node.base()).await;
        let token = session(&node.base(), "Ann").await;
        let r: Value = reqwest::Client::new()
            .post(format!("{}/api/auctions/{auction}/bids", node.base()))
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
        let node = d.node("solo", free_port(), &flags).await;
        let history: Value = reqwest::get(format!("{}/api/auctions/{auction}/bids", node.base()))
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
        let d = Deployment::new();
        let mut redis = CutProxy::start(host_port(&redis_url(), 6379)).await;
        let mut pg = CutProxy::start(host_port(&database_url(), 5432)).await;
        let mut flags = d.distributed(
            &via_port(&redis_url(), redis.port),
            &via_port(&database_url(), pg.port),
        );
        flags.extend(["--shutdown-grace-secs", "4"].map(String::from));
        let port = free_port();
        let mut node = d.node("a", port, &flags).await;
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

        let auction = create_auction(&node.base()).await;
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
