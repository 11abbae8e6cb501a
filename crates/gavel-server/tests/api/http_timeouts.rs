//! Slow HTTP clients: headers and bodies have deadlines, and connections per address are
//! capped for HTTP as for WebSockets.

use crate::helpers::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes; returns what it sent and how long that took.
async fn until_closed(tcp: &mut TcpStream, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(within, tcp.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "still open after {within:?}");
    (
        String::from_utf8_lossy(&buf).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_sent_headers_and_stalled_bodies_are_cut_off() {
    let app = spawn_app_with(|c| {
        c.http_header_timeout_secs = 1;
        c.http_body_timeout_secs = 1;
    })
    .await;
    let mut half_line = TcpStream::connect(app.addr).await.unwrap();
    half_line.write_all(b"GET /healthz HT").await.unwrap();
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    let (_, took) = until_closed(&mut half_line, Duration::from_secs(4)).await;
    assert!(took < Duration::from_secs(3), "{took:?}");
    let (_, took) = until_closed(&mut idle, Duration::from_secs(4)).await;
    assert!(
        took < Duration::from_secs(3),
        "an idle connection: {took:?}"
    );

    let mut slow_body = TcpStream::connect(app.addr).await.unwrap();
    slow_body
        .write_all(
            format!(
                "POST /api/session HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                 Content-Length: 100\r\n\r\n{{\"name\":",
                app.addr
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let (answer, took) = until_closed(&mut slow_body, Duration::from_secs(4)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plain_http_connections_count_against_the_per_address_cap() {
    let app = spawn_app_with(|c| c.max_connections_per_ip = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut tcp = TcpStream::connect(app.addr).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        held.push(tcp);
    }
    let mut fourth = TcpStream::connect(app.addr).await.unwrap();
    fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = until_closed(&mut fourth, Duration::from_secs(4)).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(
        answer.contains(r#""code":"too_many_connections""#),
        "{answer}"
    );
    // Another address is not affected.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = socket.connect(app.addr).await.unwrap();
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = until_closed(&mut other, Duration::from_secs(4)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Freed slots are reused.
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (s, _) = app.get("/healthz").await;
    assert_eq!(s, 200);
    app.stop().await;
}
