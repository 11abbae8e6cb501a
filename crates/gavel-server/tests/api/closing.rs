//! Closing by the server's clock, announced to every watcher and archived.

use crate::helpers::*;
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watchers_get_the_close_within_milliseconds_and_the_archive_agrees() {
    let app = spawn_app().await;
    let a = app.create_auction(json!({"duration_ms": 1500})).await;
    let id = a["id"].as_str().unwrap();
    let ends_at = a["ends_at"].as_i64().unwrap();
    let (t, _) = app.session("Alice").await;
    let mut bidder = app.ws(Some(&t)).await;
    let mut watcher = app.ws(None).await;
    watcher.subscribe(id).await;
    let r = bidder.bid(id, json!(12000), "r1").await;
    assert_eq!(r["outcome"], "accepted");
    let closed = watcher.recv_type("closed").await;
    let received_at = now_ms();
    assert!(received_at >= ends_at, "never announced early");
    assert!(
        received_at - ends_at < 500,
        "announced {} ms after the end",
        received_at - ends_at
    );
    assert_eq!(closed["winner"]["name"], "Alice");
    assert_eq!(closed["final_price"], 12000);
    assert_eq!(closed["reason"], "ended");
    assert_eq!(closed["closed_at"], ends_at);
    // A bid after the end is refused as closed.
    let late = bidder.bid(id, json!(20000), "r2").await;
    assert_eq!(late["outcome"], "closed");
    // The archive holds the same result (a restart would show it too).
    let (_, view) = app.get(&format!("/api/auctions/{id}")).await;
    assert_eq!(view["status"], "closed");
    assert_eq!(view["closing"]["winner"], closed["winner"]);
    assert_eq!(view["closing"]["final_price"], closed["final_price"]);
    assert_eq!(view["seq"], closed["seq"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sniping_bid_extends_the_auction_for_every_watcher() {
    let app = spawn_app().await;
    let a = app
        .create_auction(
            json!({"duration_ms": 1500, "soft_close": {"window_ms": 1000, "extend_ms": 3000}}),
        )
        .await;
    let id = a["id"].as_str().unwrap();
    let (t, _) = app.session("Sniper").await;
    let mut w1 = app.ws(None).await;
    let mut w2 = app.ws(None).await;
    w1.subscribe(id).await;
    w2.subscribe(id).await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    let (s, r) = app
        .post(
            &format!("/api/auctions/{id}/bids"),
            Some(&t),
            json!({"amount": 10000, "request_id": "snipe"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let new_end = r["auction"]["ends_at"].as_i64().unwrap();
    assert!(new_end > a["ends_at"].as_i64().unwrap());
    for w in [&mut w1, &mut w2] {
        let u = w.recv_type("update").await;
        assert_eq!(u["ends_at"], new_end, "{u}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_buy_now_closes_the_auction_for_all_watchers_at_once() {
    let app = spawn_app().await;
    let a = app.create_auction(json!({"buy_now": 50000})).await;
    let id = a["id"].as_str().unwrap();
    assert_eq!(a["buy_now_available"], true);
    let (t, _) = app.session("Buyer").await;
    let mut w1 = app.ws(None).await;
    let mut w2 = app.ws(None).await;
    w1.subscribe(id).await;
    w2.subscribe(id).await;
    let (s, r) = app
        .post(
            &format!("/api/auctions/{id}/bids"),
            Some(&t),
            json!({"amount": 50000, "request_id": "buy", "kind": "buy_now"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    for w in [&mut w1, &mut w2] {
        let c = w.recv_type("closed").await;
        assert_eq!(c["reason"], "buy_now");
        assert_eq!(c["winner"]["name"], "Buyer");
        assert_eq!(c["final_price"], 50000);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admins_cancel_and_watchers_are_told_there_is_no_winner() {
    let app = spawn_app().await;
    let a = app.create_auction(json!({})).await;
    let id = a["id"].as_str().unwrap();
    let (t, _) = app.session("Alice").await;
    let mut w = app.ws(None).await;
    w.subscribe(id).await;
    app.post(
        &format!("/api/auctions/{id}/bids"),
        Some(&t),
        json!({"amount": 10000, "request_id": "r"}),
    )
    .await;
    let (s, _) = app
        .post(&format!("/api/auctions/{id}/cancel"), Some(&t), json!({}))
        .await;
    assert_eq!(s, 403, "bidders cannot cancel");
    let (s, v) = app
        .post(
            &format!("/api/auctions/{id}/cancel"),
            Some(ADMIN),
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["closing"]["reason"], "cancelled");
    let c = w.recv_type("closed").await;
    assert_eq!(c["reason"], "cancelled");
    assert!(c["winner"].is_null());
    let (s, _) = app
        .post(&format!("/api/auctions/{id}/end"), Some(ADMIN), json!({}))
        .await;
    assert_eq!(s, 409);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scheduled_auction_opens_by_itself_and_watchers_are_told() {
    let app = spawn_app().await;
    let start = now_ms() + 700;
    let a = app
        .create_auction(json!({"starts_at": start, "duration_ms": 60000}))
        .await;
    let id = a["id"].as_str().unwrap();
    assert_eq!(a["status"], "scheduled");
    let (t, _) = app.session("Early").await;
    let (s, r) = app
        .post(
            &format!("/api/auctions/{id}/bids"),
            Some(&t),
            json!({"amount": 10000, "request_id": "early"}),
        )
        .await;
    assert_eq!((s, r["outcome"].as_str()), (409, Some("not_open")));
    let mut w = app.ws(None).await;
    w.subscribe(id).await;
    let u = w.recv_type("update").await;
    assert_eq!(u["event"], "opened");
    assert_eq!(u["status"], "open");
    app.stop().await;
}
