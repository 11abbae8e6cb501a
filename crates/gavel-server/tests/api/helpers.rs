//! Test helpers: a real server on 127.0.0.1:0 with its own data directory, and clients.
//!
//! Every test module runs twice: in embedded mode (target `api`, `tests/api/main.rs`) and
//! against a distributed node (target `api_distributed`, which includes the same modules),
//! chosen by [`MODE`]. A distributed node here is the same `gavel_server::run` on the local
//! Redis (`REDIS_URL`, default 127.0.0.1:6379) and PostgreSQL (`DATABASE_URL`, default
//! postgres://postgres@127.0.0.1:5432/test), with its own key prefix and schema (removed
//! when the test's [`TestApp`] goes) and a 100 ms drain interval, so the drainer runs
//! during the tests. A module added to `main.rs` runs in both modes with no other change;
//! a test that only makes sense in one mode starts with [`only_in`] and says why.

use futures::{SinkExt, StreamExt};
use gavel_server::config::ServeConfig;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

pub const ADMIN: &str = "test-admin-token";

/// Which backends the server under test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)] // each target builds one of them
pub enum Mode {
    /// Memory engine + SQLite in the data directory.
    Embedded,
    /// Redis engine + PostgreSQL archive + drainer.
    Distributed,
}

/// The mode of this test target (set by its crate root).
pub const MODE: Mode = crate::MODE;

/// For a test that only makes sense in `mode`: `false` (and the reason on stderr) in the
/// other mode, where the test then returns at once.
pub fn only_in(mode: Mode, why: &str) -> bool {
    if MODE != mode {
        eprintln!("only in {mode:?} mode: {why}");
    }
    MODE == mode
}

#[path = "../common/isolation.rs"]
mod isolation;
pub use isolation::{database_url, redis_url, Isolation};

impl Isolation {
    fn configure(&self, config: &mut ServeConfig) {
        config.redis = Some(redis_url());
        config.database = Some(database_url());
        config.redis_prefix = self.prefix.clone();
        config.database_schema = Some(self.schema.clone());
        config.drain_interval_ms = 100;
    }
}

/// A `gavel serve` process (for tests that kill it with SIGKILL), killed when dropped.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub base: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The mode's backend flags for a `gavel serve` process (and the isolation to keep alive
/// while they are used).
pub async fn backends() -> (Option<Isolation>, Vec<String>) {
    match MODE {
        Mode::Embedded => (None, Vec::new()),
        Mode::Distributed => {
            let iso = Isolation::new().await;
            let args = iso.serve_args();
            (Some(iso), args)
        }
    }
}

/// Starts `gavel serve` on `port` with its data in `data_dir`, the admin token `admin` and
/// `flags` (no backend or webhook setting is taken from the environment); waits for
/// `/healthz`.
pub async fn start_process(
    data_dir: &std::path::Path,
    port: u16,
    admin: &str,
    flags: &[String],
) -> ServerProcess {
    #[allow(clippy::zombie_processes)] // `ServerProcess`'s Drop kills and waits for it.
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--admin-token", admin, "--bids-per-second", "10000"])
        .args(flags)
        .env("RUST_LOG", "warn")
        .env_remove("REDIS_URL")
        .env_remove("DATABASE_URL")
        .env_remove("GAVEL_REDIS_URL")
        .env_remove("GAVEL_DATABASE_URL")
        .env_remove("GAVEL_WEBHOOK")
        .env_remove("GAVEL_WEBHOOK_SECRET")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start gavel");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return ServerProcess { child, base };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not start");
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    pub handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// Kept so the data directory lives as long as the server.
    pub _data_dir: tempfile::TempDir,
    /// The configuration it runs with, for a restart on the same data directory.
    pub config: ServeConfig,
    /// Distributed mode: the test's prefix and schema (removed when dropped).
    pub isolation: Option<Isolation>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut ServeConfig)) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    spawn_app_on(listener, configure).await
}

/// A server whose sockets have tiny send buffers (inherited from the listening socket), so
/// a client that stops reading backs up after a few dozen messages instead of megabytes.
pub async fn spawn_app_with_small_send_buffers(
    configure: impl FnOnce(&mut ServeConfig),
) -> TestApp {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    spawn_app_on(socket.listen(128).unwrap(), configure).await
}

/// A WebSocket client with a tiny receive buffer that reads nothing until told to.
pub async fn slow_ws(app: &TestApp) -> Ws {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let tcp = socket.connect(app.addr).await.unwrap();
    let url = format!("ws://{}/ws", app.addr);
    let (stream, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
        .await
        .expect("ws handshake");
    let mut ws = Ws { stream };
    assert_eq!(ws.recv().await["type"], "hello");
    ws
}

async fn spawn_app_on(
    listener: tokio::net::TcpListener,
    configure: impl FnOnce(&mut ServeConfig),
) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = ServeConfig::for_data_dir(data_dir.path().to_path_buf());
    config.admin_token = Some(ADMIN.into());
    config.bids_per_second = 1000;
    // A stop sends WebSocket clients away over a third of this (1 s), not the default 5 s.
    config.shutdown_grace_secs = 3;
    let isolation = match MODE {
        Mode::Embedded => None,
        Mode::Distributed => Some(Isolation::new().await),
    };
    if let Some(i) = &isolation {
        i.configure(&mut config);
    }
    configure(&mut config);
    start_on(listener, config, data_dir, isolation)
}

fn start_on(
    listener: tokio::net::TcpListener,
    config: ServeConfig,
    data_dir: tempfile::TempDir,
    isolation: Option<Isolation>,
) -> TestApp {
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(gavel_server::run(
        config.clone(),
        listener,
        shutdown.clone(),
    ));
    TestApp {
        addr,
        http: reqwest::Client::new(),
        shutdown,
        handle,
        _data_dir: data_dir,
        config,
        isolation,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Signs a guest in; returns (token, user id).
    pub async fn session(&self, name: &str) -> (String, String) {
        let r: Value = self
            .http
            .post(self.url("/api/session"))
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            r["token"].as_str().unwrap().to_string(),
            r["user"]["id"].as_str().unwrap().to_string(),
        )
    }

    /// Creates an auction as admin from a partial body; returns its view.
    pub async fn create_auction(&self, extra: Value) -> Value {
        let mut body = json!({
            "title": "Test lot",
            "starting_price": 10000,
            "increment": 1000,
            "duration_ms": 600000
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = self
            .http
            .post(self.url("/api/auctions"))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "create failed: {:?}", r.text().await);
        r.json().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn ws(&self, token: Option<&str>) -> Ws {
        let url = match token {
            Some(t) => format!("ws://{}/ws?token={}", self.addr, t),
            None => format!("ws://{}/ws", self.addr),
        };
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        let mut ws = Ws { stream };
        let hello = ws.recv().await;
        assert_eq!(hello["type"], "hello");
        ws
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.handle).await;
    }

    /// Stops the server (waiting until `run` has returned) and starts a new one on the
    /// same data directory and configuration, on a new port.
    pub async fn restart(self) -> TestApp {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("the server stops within 10 s")
            .expect("the server task did not panic")
            .expect("the server stopped cleanly");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        // The same data directory, and in distributed mode the same prefix and schema.
        start_on(listener, self.config, self._data_dir, self.isolation)
    }
}

/// Messages the server sends on its own, which most tests look past.
fn is_background(v: &Value) -> bool {
    v["type"] == "watchers" || v["type"] == "heartbeat"
}

pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn send(&mut self, v: Value) {
        self.stream
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, s: &str) {
        self.stream
            .send(Message::Text(s.to_string().into()))
            .await
            .expect("send");
    }

    /// The next JSON message (skipping `watchers` counts and heartbeats), failing after 5 s.
    pub async fn recv(&mut self) -> Value {
        loop {
            let v = self.recv_any().await;
            if !is_background(&v) {
                return v;
            }
        }
    }

    pub async fn recv_any(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(5), self.stream.next())
                .await
                .expect("a message within 5 s")
                .expect("stream open")
                .expect("no error");
            match msg {
                Message::Text(t) => return serde_json::from_str(&t).expect("JSON"),
                Message::Close(c) => return json!({"type": "_close", "frame": format!("{c:?}")}),
                _ => continue,
            }
        }
    }

    /// The next message of type `ty`, skipping others.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] == ty {
                return v;
            }
        }
    }

    /// Whether a message arrives within `ms` (skipping `watchers` and heartbeats).
    pub async fn try_recv(&mut self, ms: u64) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.stream.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if !is_background(&v) {
                        return Some(v);
                    }
                }
                Ok(Some(Ok(Message::Close(c)))) => {
                    return Some(json!({"type": "_close", "frame": format!("{c:?}")}))
                }
                Ok(Some(Ok(_))) => continue,
                _ => return None,
            }
        }
    }

    pub async fn subscribe(&mut self, auction_id: &str) -> Value {
        self.send(json!({"type": "subscribe", "auction_id": auction_id}))
            .await;
        self.recv_type("snapshot").await
    }

    /// Subscribes and reads until this watcher's view of the auction has reached `seq`;
    /// returns the view's (seq, price). A distributed node's hub hears of a change through
    /// Redis Pub/Sub, a moment after the node answered the request that made it, so a
    /// snapshot right after that answer may be one change behind; the update follows.
    pub async fn subscribe_until(&mut self, auction_id: &str, seq: u64) -> (u64, Value) {
        let snapshot = self.subscribe(auction_id).await;
        let mut view = (
            snapshot["auction"]["seq"].as_u64().unwrap(),
            snapshot["auction"]["price"].clone(),
        );
        while view.0 < seq {
            let m = self.recv_type_or_error("update").await;
            assert_eq!(m["type"], "update", "{m}");
            view = (m["seq"].as_u64().unwrap(), m["price"].clone());
        }
        view
    }

    pub async fn bid(&mut self, auction_id: &str, amount: Value, request_id: &str) -> Value {
        self.send(json!({"type": "bid", "auction_id": auction_id, "amount": amount, "request_id": request_id}))
            .await;
        self.recv_type_or_error("bid_result").await
    }

    /// The next message of type `ty` or an `error`.
    pub async fn recv_type_or_error(&mut self, ty: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] == ty || v["type"] == "error" || v["type"] == "_close" {
                return v;
            }
        }
    }
}
