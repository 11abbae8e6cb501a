//! The lobby amplification attack (issue 10, item 11): clients without a token send many
//! `subscribe_lobby` frames in one write and never read, with a tiny receive buffer, against
//! a server whose lobby is large. The lobby is encoded once and shared, and a repeated
//! `subscribe_lobby` gets only `ok`, so each such connection holds at most about one lobby
//! in its socket's write buffer: the server's RSS grows by under [`BOUND_PER_CONNECTION`]
//! per connection (documented in docs/architecture.md) instead of a lobby per request.

use futures::SinkExt;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::MaybeTlsStream;

const ADMIN: &str = "flood-admin-token-0123456789";
const CONNECTIONS: usize = 16;
const FRAMES: usize = 200;
/// A lobby is ~0.9 MB here; a connection may hold one in its write buffer, plus slack.
const BOUND_PER_CONNECTION_KB: u64 = 2 * 1024;
const SLACK_KB: u64 = 8 * 1024;

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn rss_kb(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server runs")
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

async fn start(dir: &std::path::Path) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    #[allow(clippy::zombie_processes)] // `Server`'s Drop kills and waits for it.
    let child = Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir)
        .args(["--admin-token", ADMIN])
        .args(["--max-connections-per-ip", "0"])
        .env("RUST_LOG", "warn")
        .env_remove("REDIS_URL")
        .env_remove("DATABASE_URL")
        .env_remove("GAVEL_REDIS_URL")
        .env_remove("GAVEL_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gavel");
    let server = Server { child, port };
    for _ in 0..400 {
        if reqwest::get(server.url("/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not start");
}

/// A client with a 2 KiB receive buffer that sends `FRAMES` subscribe_lobby frames in one
/// write and then reads nothing.
type Client = tokio_tungstenite::WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

async fn flood(port: u16) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let tcp = socket
        .connect(format!("127.0.0.1:{port}").parse().unwrap())
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(
        format!("ws://127.0.0.1:{port}/ws"),
        MaybeTlsStream::Plain(tcp),
    )
    .await
    .expect("handshake");
    let frame = json!({"type": "subscribe_lobby"}).to_string();
    for _ in 0..FRAMES {
        ws.feed(Message::text(frame.clone())).await.unwrap();
    }
    ws.flush().await.unwrap();
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_subscribe_lobby_does_not_multiply_the_lobby_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let http = reqwest::Client::new();
    // 60 auctions with 5,000-character descriptions of 3-byte characters: a ~0.9 MB lobby.
    for i in 0..60 {
        let r = http
            .post(server.url("/api/auctions"))
            .bearer_auth(ADMIN)
            .json(
                &json!({"id": format!("big-{i}"), "title": "Lot", "description": "€".repeat(5_000),
                          "starting_price": 1000, "increment": 100, "duration_ms": 600_000}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    // One ordinary lobby read warms what every server has anyway.
    let lobby_len = {
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", server.port))
                .await
                .unwrap();
        ws.send(Message::text(
            json!({"type": "subscribe_lobby"}).to_string(),
        ))
        .await
        .unwrap();
        use futures::StreamExt;
        loop {
            let Message::Text(t) = ws.next().await.unwrap().unwrap() else {
                continue;
            };
            if t.contains("\"type\":\"lobby\"") {
                break t.len();
            }
        }
    };
    assert!(
        lobby_len > 800_000,
        "the lobby is large ({lobby_len} bytes)"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss_kb();

    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        clients.push(flood(server.port).await);
    }
    // Well before the slow-client limit (10 s) closes them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = server.rss_kb();
    let bound = CONNECTIONS as u64 * BOUND_PER_CONNECTION_KB + SLACK_KB;
    eprintln!("lobby flood: RSS {before} KiB -> {during} KiB ({CONNECTIONS} connections)");
    assert!(
        during.saturating_sub(before) < bound,
        "{CONNECTIONS} flooding connections grew the RSS by {} KiB (bound {bound} KiB)",
        during - before
    );
    let r = reqwest::get(server.url("/healthz")).await.unwrap();
    assert!(r.status().is_success(), "the server still serves");
    drop(clients);
}
