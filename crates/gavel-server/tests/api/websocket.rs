//! WebSocket behaviours: resubscribe with since_seq, lobby, clock sync, shutdown.

use crate::helpers::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resubscribing_with_since_seq_replays_what_was_missed() {
    let app = spawn_app().await;
    let a = app.create_auction(json!({})).await;
    let id = a["id"].as_str().unwrap();
    let (t1, _) = app.session("A").await;
    let (t2, _) = app.session("B").await;
    let mut w = app.ws(None).await;
    let snap = w.subscribe(id).await;
    let seen = snap["auction"]["seq"].as_u64().unwrap();
    w.send(json!({"type": "unsubscribe", "auction_id": id}))
        .await;
    assert_eq!(w.recv_type("ok").await["what"], "unsubscribe");
    for (i, amount) in [10000, 11000, 12000].iter().enumerate() {
        let t = if i % 2 == 0 { &t1 } else { &t2 };
        app.post(
            &format!("/api/auctions/{id}/bids"),
            Some(t),
            json!({"amount": amount, "request_id": format!("m{i}")}),
        )
        .await;
    }
    w.send(json!({"type": "subscribe", "auction_id": id, "since_seq": seen}))
        .await;
    for k in 1..=3 {
        let u = w.recv().await;
        assert_eq!(u["type"], "update", "{u}");
        assert_eq!(u["seq"].as_u64().unwrap(), seen + k);
    }
    // Too old a since_seq (or an unknown one) gets a snapshot marked resync.
    let mut w2 = app.ws(None).await;
    w2.send(json!({"type": "subscribe", "auction_id": id, "since_seq": 0}))
        .await;
    let s = w2.recv().await;
    if s["type"] == "snapshot" {
        assert_eq!(s["resync"], true);
    } else {
        assert_eq!(s["type"], "update");
    }
    app.stop().await;
}

/// The next lobby message about an auction that is news to a client applying each
/// (auction, seq) once, as
/// docs/protocol.md asks: the lobby's receiver is subscribed before its list is read, so a
/// change already in the list can follow it (seen on a distributed node, where the creation
/// reaches the node's hub through Pub/Sub after the HTTP answer).
async fn lobby_news(lobby: &mut Ws, seen: &mut std::collections::HashMap<String, u64>) -> Value {
    loop {
        let m = lobby.recv().await;
        let (id, seq) = match m["type"].as_str() {
            Some("auction_created") => (&m["auction"]["id"], &m["auction"]["seq"]),
            Some("update" | "closed") => (&m["auction_id"], &m["seq"]),
            _ => continue, // not about an auction (`ok`, ...)
        };
        let (id, seq) = (id.as_str().unwrap(), seq.as_u64().unwrap());
        if seen.get(id).is_none_or(|s| *s < seq) {
            seen.insert(id.to_string(), seq);
            return m;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_lobby_shows_every_auction_and_its_changes() {
    let app = spawn_app().await;
    let a = app.create_auction(json!({})).await;
    let id = a["id"].as_str().unwrap();
    let mut lobby = app.ws(None).await;
    lobby.send(json!({"type": "subscribe_lobby"})).await;
    let l = lobby.recv_type("lobby").await;
    let mut seen: std::collections::HashMap<String, u64> = l["auctions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["id"].as_str().unwrap().to_string(),
                x["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen.get(id), Some(&1), "{l}");
    let b = app.create_auction(json!({})).await;
    let created = lobby_news(&mut lobby, &mut seen).await;
    assert_eq!(created["type"], "auction_created", "{created}");
    assert_eq!(created["auction"]["id"], b["id"]);
    let (t, _) = app.session("A").await;
    app.post(
        &format!("/api/auctions/{id}/bids"),
        Some(&t),
        json!({"amount": 10000, "request_id": "l1"}),
    )
    .await;
    let u = lobby_news(&mut lobby, &mut seen).await;
    assert_eq!(u["type"], "update", "{u}");
    assert_eq!(u["auction_id"], id);
    assert_eq!(u["price"], 10000);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ping_echoes_the_client_time_with_the_server_time() {
    let app = spawn_app().await;
    let mut ws = app.ws(None).await;
    ws.send(json!({"type": "ping", "client_time": 1234.5}))
        .await;
    let p = ws.recv_type("pong").await;
    assert_eq!(p["client_time"], 1234.5);
    assert!(p["server_time"].as_i64().unwrap() > 1_700_000_000_000);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watchers_are_counted_per_auction() {
    let app = spawn_app().await;
    let a = app.create_auction(json!({})).await;
    let id = a["id"].as_str().unwrap();
    let mut w1 = app.ws(None).await;
    let mut w2 = app.ws(None).await;
    w1.subscribe(id).await;
    w2.subscribe(id).await;
    loop {
        let m = w1.recv_any().await;
        if m["type"] == "watchers" && m["count"] == 2 {
            break;
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_tells_every_socket_to_reconnect_then_closes_it_with_1012() {
    let app = spawn_app().await;
    let mut ws = app.ws(None).await;
    app.shutdown.cancel();
    let told = ws.recv_type("reconnect").await;
    assert_eq!(told["reason"], "draining", "{told}");
    // The helpers' grace period is 3 s: delays are spread over 1 s.
    assert!(told["delay_ms"].as_u64().unwrap() <= 1000, "{told}");
    let close = ws.recv_any().await;
    assert_eq!(close["type"], "_close");
    assert!(
        close["frame"].as_str().unwrap().contains("Restart"),
        "{close}"
    );
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), app.handle).await;
}
