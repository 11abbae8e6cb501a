//! Fan-out rooms start from the whole recent history, never from the one change that
//! created them (issue 10, item 2), and go away when nobody watches (item 3).

use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

/// Five bids, alternating between two bidders.
async fn five_bids(app: &TestApp, id: &str, a: &str, b: &str) {
    for (i, amount) in [10000, 11000, 12000, 13000, 14000].into_iter().enumerate() {
        let token = if i % 2 == 0 { a } else { b };
        let (status, body) = app
            .post(
                &format!("/api/auctions/{id}/bids"),
                Some(token),
                json!({"amount": amount, "request_id": format!("r{i}")}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

/// The newest `n` entries of the public history.
async fn newest_history(app: &TestApp, id: &str, n: usize) -> Vec<Value> {
    let (status, page) = app.get(&format!("/api/auctions/{id}/bids?limit=200")).await;
    assert_eq!(status, 200);
    page["bids"]
        .as_array()
        .unwrap()
        .iter()
        .take(n)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_room_first_touched_by_a_change_after_a_restart_has_the_whole_recent_history() {
    let app = spawn_app().await;
    let (alice, _) = app.session("Alice").await;
    let (bob, _) = app.session("Bob").await;
    let bid_on = app.create_auction(json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let closed_on = app.create_auction(json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    five_bids(&app, &bid_on, &alice, &bob).await;
    five_bids(&app, &closed_on, &alice, &bob).await;

    let app = app.restart().await;
    // The first thing this server sees of each auction is a change: a bid, and a close.
    let (status, _) = app
        .post(
            &format!("/api/auctions/{bid_on}/bids"),
            Some(&bob),
            json!({"amount": 15000, "request_id": "r5"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post(
            &format!("/api/auctions/{closed_on}/end"),
            Some(ADMIN),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    // Let the fan-out see both changes before anyone subscribes.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut ws = app.ws(None).await;
    for (id, bids) in [(&bid_on, 6), (&closed_on, 5)] {
        let snapshot = ws.subscribe(id).await;
        let recent = snapshot["recent_bids"].as_array().unwrap().clone();
        assert_eq!(recent.len(), bids, "{id}: {snapshot}");
        assert_eq!(
            recent,
            newest_history(&app, id, bids).await,
            "the snapshot's recent bids are the newest of the history"
        );
    }
    app.stop().await;
}

/// The hub's room count, from the admin stats.
async fn rooms(app: &TestApp) -> u64 {
    let r = app
        .http
        .get(app.url("/api/admin/stats"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stats: Value = r.json().await.unwrap();
    stats["rooms"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rooms_nobody_watches_are_dropped_and_unknown_auctions_leave_none() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            app.create_auction(json!({})).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let mut a = app.ws(None).await;
    let mut b = app.ws(None).await;
    for id in &ids {
        a.subscribe(id).await;
    }
    b.subscribe(&ids[0]).await;
    for i in 0..50 {
        a.send(json!({"type": "subscribe", "auction_id": format!("no-such-{i}")}))
            .await;
        assert_eq!(a.recv_type("error").await["code"], "not_found");
    }
    assert_eq!(
        rooms(&app).await,
        3,
        "one room per watched auction, none for made-up ids"
    );
    let (status, _) = app.get("/api/admin/stats").await;
    assert_eq!(status, 401, "the stats are for admins");

    // A leaves: the rooms only A watched go after the idle time; B's stays.
    drop(a);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while rooms(&app).await != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "idle rooms were not dropped: {} left",
            rooms(&app).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The room B still watches keeps working.
    let (token, _) = app.session("Carol").await;
    let (status, _) = app
        .post(
            &format!("/api/auctions/{}/bids", ids[0]),
            Some(&token),
            json!({"amount": 10000, "request_id": "c1"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(b.recv_type("update").await["price"], 10000);
    // And a dropped room comes back, complete, for a new subscriber.
    let mut c = app.ws(None).await;
    let snapshot = c.subscribe(&ids[1]).await;
    assert_eq!(snapshot["auction"]["id"], ids[1].as_str());
    app.stop().await;
}
