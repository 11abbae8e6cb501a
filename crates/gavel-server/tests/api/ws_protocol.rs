//! WebSocket protocol violations get their close frame (RFC 6455), not a dropped connection.

use crate::helpers::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A WebSocket opened by hand, so the test can send frames no library would.
async fn raw_ws(app: &TestApp) -> TcpStream {
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        app.addr
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        tcp.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let (op, body) = read_frame(&mut tcp).await.expect("hello");
    assert_eq!(op, 1);
    assert!(String::from_utf8_lossy(&body).contains("\"hello\""));
    tcp
}

/// Reads one server frame: (opcode, payload), or `None` if the connection ends.
async fn read_frame(tcp: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let read = async {
        let mut h = [0u8; 2];
        tcp.read_exact(&mut h).await.ok()?;
        let mut len = (h[1] & 0x7f) as u64;
        if len == 126 {
            let mut b = [0u8; 2];
            tcp.read_exact(&mut b).await.ok()?;
            len = u16::from_be_bytes(b) as u64;
        } else if len == 127 {
            let mut b = [0u8; 8];
            tcp.read_exact(&mut b).await.ok()?;
            len = u64::from_be_bytes(b);
        }
        let mut body = vec![0u8; len as usize];
        tcp.read_exact(&mut body).await.ok()?;
        Some((h[0] & 0x0f, body))
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("a frame or the end within 5 s")
}

/// The close code the server sends, skipping other frames.
async fn close_code(tcp: &mut TcpStream) -> Option<u16> {
    loop {
        let (op, body) = read_frame(tcp).await?;
        if op == 8 {
            return Some(u16::from_be_bytes([body[0], body[1]]));
        }
    }
}

fn masked_text(payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut f = vec![0x81, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_utf8_closes_with_1007_and_an_unmasked_frame_with_1002() {
    let app = spawn_app().await;
    let mut ws = raw_ws(&app).await;
    ws.write_all(&masked_text(b"{\"type\":\"ping\",\"client_time\":1}"))
        .await
        .unwrap();
    let (op, pong) = read_frame(&mut ws).await.unwrap();
    assert_eq!(op, 1);
    assert!(
        String::from_utf8_lossy(&pong).contains("pong"),
        "the raw client works"
    );
    ws.write_all(&masked_text(&[0x7b, 0xff, 0xfe, 0x7d]))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, Some(1007));

    let mut ws = raw_ws(&app).await;
    let unmasked = [&[0x81u8, 2][..], b"{}"].concat();
    ws.write_all(&unmasked).await.unwrap();
    assert_eq!(close_code(&mut ws).await, Some(1002));
    let (s, _) = app.get("/healthz").await;
    assert_eq!(s, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_websocket_stalled_mid_frame_is_closed_and_a_quiet_healthy_one_is_not() {
    let app = spawn_app_with(|c| {
        c.client_timeout_secs = 1;
        c.heartbeat_ms = 0;
    })
    .await;
    let mut healthy = app.ws(None).await;
    let mut stalled = raw_ws(&app).await;
    // A masked text frame announcing 100 bytes, of which 10 are sent.
    let mut frame = vec![0x81, 0x80 | 100, 1, 2, 3, 4];
    frame.extend_from_slice(&[b'x'; 10]);
    stalled.write_all(&frame).await.unwrap();
    let started = std::time::Instant::now();
    // Pinged after 1 s of silence, closed 1 s later (the ping frame comes first). Meanwhile
    // the healthy client says nothing either, but it answers pings (its library does, as
    // long as it reads).
    let stalled_closed = async {
        loop {
            match read_frame(&mut stalled).await {
                Some((8, body)) => {
                    let code = u16::from_be_bytes([body[0], body[1]]);
                    return Some((code, started.elapsed()));
                }
                Some((9, _)) => continue,
                Some((op, _)) => panic!("unexpected frame {op}"),
                None => return None,
            }
        }
    };
    let (closed, heard) = tokio::join!(stalled_closed, healthy.try_recv(3500));
    let took = started.elapsed();
    let (code, closed_after) = closed.expect("a close frame");
    assert_eq!(code, 1008);
    assert!(
        closed_after >= Duration::from_millis(1500) && closed_after < Duration::from_secs(3),
        "{closed_after:?}"
    );
    assert!(heard.is_none(), "the healthy client got {heard:?}");
    assert!(took >= Duration::from_millis(3500), "{took:?}");
    healthy
        .send(serde_json::json!({"type": "ping", "client_time": 1}))
        .await;
    assert_eq!(healthy.recv().await["type"], "pong");
    app.stop().await;
}
