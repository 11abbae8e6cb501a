//! A slow watcher never slows anyone else: it is conflated, or closed if it stays stuck.

use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

/// Places `n` accepted bids, alternating two bidders.
async fn burst(app: &TestApp, id: &str, n: i64) -> u64 {
    let (ta, _) = app.session("A").await;
    let (tb, _) = app.session("B").await;
    let mut last_seq = 0;
    for i in 0..n {
        let t = if i % 2 == 0 { &ta } else { &tb };
        let (s, r) = app
            .post(
                &format!("/api/auctions/{id}/bids"),
                Some(t),
                json!({"amount": 10000 + i * 100, "request_id": format!("burst-{i}")}),
            )
            .await;
        assert_eq!(s, 200, "{r}");
        last_seq = r["auction"]["seq"].as_u64().unwrap();
    }
    last_seq
}

/// Reads updates until `seq` is reached; returns (updates seen, whether a resync snapshot came).
async fn follow_to(ws: &mut Ws, mut seq: u64, target: u64) -> (usize, bool) {
    let mut updates = 0;
    let mut resynced = false;
    while seq < target {
        let m: Value = ws.recv().await;
        match m["type"].as_str().unwrap() {
            "update" => {
                let s = m["seq"].as_u64().unwrap();
                assert_eq!(s, seq + 1, "updates arrive in order without gaps");
                seq = s;
                updates += 1;
            }
            "snapshot" => {
                assert_eq!(m["resync"], true);
                let s = m["auction"]["seq"].as_u64().unwrap();
                assert!(s >= seq);
                seq = s;
                resynced = true;
            }
            other => panic!("unexpected {other}: {m}"),
        }
    }
    (updates, resynced)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watcher_that_falls_behind_gets_the_latest_snapshot_and_others_get_everything() {
    let app = spawn_app_with_small_send_buffers(|c| c.bids_per_second = 100_000).await;
    let a = app
        .create_auction(json!({"starting_price": 10000, "increment": 100}))
        .await;
    let id = a["id"].as_str().unwrap();
    let mut fast = app.ws(None).await;
    let start = fast.subscribe(id).await["auction"]["seq"].as_u64().unwrap();
    let mut slow = slow_ws(&app).await;
    slow.subscribe(id).await;

    let n = 700;
    let (last, (fast_updates, fast_resynced)) = tokio::join!(burst(&app, id, n), async {
        // The fast watcher keeps up with every update while the slow one reads nothing.
        follow_to(&mut fast, start, start + n as u64).await
    });
    assert_eq!(last, start + n as u64);
    assert_eq!(
        fast_updates, n as usize,
        "the fast watcher saw every update"
    );
    assert!(!fast_resynced);

    let (slow_updates, slow_resynced) = follow_to(&mut slow, start, last).await;
    assert!(
        slow_resynced,
        "the slow watcher was conflated to a snapshot"
    );
    assert!(
        slow_updates < n as usize,
        "it skipped intermediate updates ({slow_updates})"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watcher_that_stays_stuck_is_closed_and_the_others_are_unaffected() {
    let app = spawn_app_with_small_send_buffers(|c| {
        c.bids_per_second = 100_000;
        c.slow_client_secs = 1;
    })
    .await;
    let a = app
        .create_auction(json!({"starting_price": 10000, "increment": 100}))
        .await;
    let id = a["id"].as_str().unwrap();
    let mut fast = app.ws(None).await;
    let start = fast.subscribe(id).await["auction"]["seq"].as_u64().unwrap();
    let mut stuck = slow_ws(&app).await;
    stuck.subscribe(id).await;
    let n = 300;
    let (last, (fast_updates, _)) = tokio::join!(burst(&app, id, n), async {
        follow_to(&mut fast, start, start + n as u64).await
    });
    assert_eq!(fast_updates, n as usize);
    // Stay stuck past the limit, then find the connection closed by the server.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        use futures::StreamExt;
        loop {
            match stuck.stream.next().await {
                None | Some(Err(_)) => return true,
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) => return true,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(closed, "the stuck watcher was disconnected");
    // The server is fine and keeps serving others.
    let (_, view) = app.get(&format!("/api/auctions/{id}")).await;
    assert_eq!(view["seq"].as_u64().unwrap(), last);
    app.stop().await;
}
