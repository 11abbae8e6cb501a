//! A thousand clients that send half a request line cannot starve a server of descriptors.
//!
//! Its own test binary: the server runs as a child process under a lowered descriptor limit
//! (`ulimit -n 512`), which must not touch the other tests. Loopback only, bounded in time.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /healthz` from 127.0.0.2 (another client address than the attacker's), with a
/// deadline; the status, or `None` if it did not answer in time.
async fn healthz_from_elsewhere(port: u16, within: Duration) -> Option<u16> {
    let ask = async {
        let socket = TcpSocket::new_v4().ok()?;
        socket.bind("127.0.0.2:0".parse().unwrap()).ok()?;
        let mut tcp = socket
            .connect(format!("127.0.0.1:{port}").parse().unwrap())
            .await
            .ok()?;
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut buf = Vec::new();
        tcp.read_to_end(&mut buf).await.ok()?;
        String::from_utf8_lossy(&buf)
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    tokio::time::timeout(within, ask).await.ok().flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_half_sent_request_lines_do_not_make_healthz_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let bin = env!("CARGO_BIN_EXE_gavel");
    #[allow(clippy::zombie_processes)] // `Server`'s Drop kills and waits for it.
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 512 && exec '{bin}' serve --listen 127.0.0.1:{port} --data-dir '{}' \
             --http-header-timeout-secs 2",
            dir.path().display()
        ))
        .env("RUST_LOG", "error")
        .env_remove("REDIS_URL")
        .env_remove("DATABASE_URL")
        .env_remove("GAVEL_REDIS_URL")
        .env_remove("GAVEL_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gavel");
    let _server = Server(child);
    let started = Instant::now();
    while healthz_from_elsewhere(port, Duration::from_secs(1)).await != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Each connect is bounded: a server that stops accepting fills its backlog, and then a
    // connect would wait for SYN retries.
    let mut attackers = Vec::new();
    let attack_until = Instant::now() + Duration::from_secs(20);
    for _ in 0..1000 {
        if Instant::now() > attack_until {
            break;
        }
        let connect = TcpStream::connect(("127.0.0.1", port));
        if let Ok(Ok(mut tcp)) = tokio::time::timeout(Duration::from_millis(100), connect).await {
            let _ = tcp.write_all(b"GET /healthz HT").await;
            attackers.push(tcp);
        }
    }
    // While they hold on, other clients are served promptly...
    for _ in 0..5 {
        assert_eq!(
            healthz_from_elsewhere(port, Duration::from_secs(2)).await,
            Some(200),
            "healthz timed out with {} half-open connections",
            attackers.len()
        );
    }
    assert!(attackers.len() >= 900, "only {} connected", attackers.len());
    // ...and the ones the server kept are closed at the header deadline.
    let mut closed = 0;
    let deadline = Instant::now() + Duration::from_secs(6);
    for tcp in &mut attackers {
        let mut buf = [0u8; 512];
        let left = deadline.saturating_duration_since(Instant::now());
        loop {
            match tokio::time::timeout(left, tcp.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed += 1;
                    break;
                }
                Ok(Ok(_)) => continue,
                Err(_) => break,
            }
        }
    }
    assert_eq!(
        closed,
        attackers.len(),
        "connections left open past the deadline"
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// A WebSocket opened by hand on a socket with a tiny receive buffer; the upgrade answer
/// has been read, nothing else.
async fn raw_ws_that_never_reads(port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let mut tcp = socket
        .connect(format!("127.0.0.1:{port}").parse().unwrap())
        .await
        .unwrap();
    tcp.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        tcp.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    tcp
}

fn masked_text(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [9, 8, 7, 6];
    let mut f = vec![0x81, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_lobby_requests_from_clients_that_never_read_stay_within_a_lobby_each() {
    const ADMIN: &str = "slow-clients-admin-token";
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    #[allow(clippy::zombie_processes)] // `Server`'s Drop kills and waits for it.
    let child = Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--admin-token", ADMIN, "--heartbeat-ms", "0"])
        .env("RUST_LOG", "error")
        .env_remove("REDIS_URL")
        .env_remove("DATABASE_URL")
        .env_remove("GAVEL_REDIS_URL")
        .env_remove("GAVEL_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gavel");
    let pid = child.id();
    let _server = Server(child);
    let started = Instant::now();
    while healthz_from_elsewhere(port, Duration::from_secs(1)).await != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A lobby of about 900 KB: 60 auctions with 4,900-character descriptions of 3-byte
    // characters.
    let http = reqwest::Client::new();
    let description = "€".repeat(4900);
    for i in 0..60 {
        let r = http
            .post(format!("http://127.0.0.1:{port}/api/auctions"))
            .bearer_auth(ADMIN)
            .json(
                &serde_json::json!({"title": format!("Lot {i}"), "description": description,
                "starting_price": 100, "increment": 10, "duration_ms": 600000}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(pid);
    let frames: Vec<u8> = (0..200)
        .flat_map(|_| masked_text(br#"{"type":"subscribe_lobby"}"#))
        .collect();
    let mut clients = Vec::new();
    for _ in 0..32 {
        let mut ws = raw_ws_that_never_reads(port).await;
        ws.write_all(&frames).await.unwrap();
        clients.push(ws);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let grown_mib = rss_kib(pid).saturating_sub(before) / 1024;
    // One lobby each (about 29 MB for 32 clients) plus buffers; 64 queued copies each
    // would be about 1.8 GB.
    eprintln!("RSS grew by {grown_mib} MiB");
    assert!(grown_mib < 96, "RSS grew by {grown_mib} MiB");
    assert_eq!(
        healthz_from_elsewhere(port, Duration::from_secs(2)).await,
        Some(200)
    );
}
