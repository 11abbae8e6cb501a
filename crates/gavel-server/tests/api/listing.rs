//! `GET /api/auctions` pages live auctions by end time, then closed ones newest first; the
//! lobby is bounded the same way (issue 10 item 3, issue 12 item 5).

use crate::helpers::*;
use serde_json::{json, Value};

/// Every page of a listing, following `next_cursor`; returns the ids in order.
async fn all_pages(app: &TestApp, query: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut path = format!("/api/auctions?limit={limit}{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = app.get(&path).await;
        assert_eq!(status, 200, "{path}: {page}");
        let auctions = page["auctions"].as_array().unwrap();
        assert!(auctions.len() <= limit, "{page}");
        ids.extend(
            auctions
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return ids,
        }
    }
    panic!("the listing never ended");
}

/// Creates auctions ending 1..=n minutes from now (ids `<tag>-<minutes>`), the ones in
/// `scheduled` starting in the future, and ends the ones in `closed` early, in that order.
async fn seed(app: &TestApp, tag: &str, n: i64, scheduled: &[i64], closed: &[i64]) {
    let now = app.get("/api/time").await.1["server_time"]
        .as_i64()
        .unwrap();
    for m in 1..=n {
        let mut body = json!({"id": format!("{tag}-{m}"), "ends_at": now + m * 60_000});
        if scheduled.contains(&m) {
            body["starts_at"] = json!(now + 30_000);
        }
        body["duration_ms"] = Value::Null;
        app.create_auction(body).await;
    }
    for m in closed {
        // Distinct close times, so the order does not rest on the id tie-break.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let (status, body) = app
            .post(
                &format!("/api/auctions/{tag}-{m}/end"),
                Some(ADMIN),
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    // In distributed mode closed auctions are listed from PostgreSQL once the drainer has
    // archived their close (100 ms drain interval in these tests); embedded: at once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (_, page) = app.get("/api/auctions?status=closed&limit=200").await;
        let listed = page["auctions"].as_array().unwrap().len();
        if listed == closed.len() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{listed} of {} closed auctions listed",
            closed.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn ids(tag: &str, minutes: &[i64]) -> Vec<String> {
    minutes.iter().map(|m| format!("{tag}-{m}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listing_pages_live_auctions_by_end_time_then_closed_ones_newest_first() {
    let app = spawn_app().await;
    seed(&app, "l", 8, &[2, 7], &[5, 1, 3]).await;
    let live = ids("l", &[2, 4, 6, 7, 8]);
    let closed = ids("l", &[3, 1, 5]); // most recently ended first
    for limit in [1, 3, 50] {
        let everything = all_pages(&app, "", limit).await;
        assert_eq!(
            everything,
            [live.clone(), closed.clone()].concat(),
            "limit {limit}"
        );
    }
    assert_eq!(all_pages(&app, "&status=live", 2).await, live);
    assert_eq!(all_pages(&app, "&status=closed", 2).await, closed);
    assert_eq!(
        all_pages(&app, "&status=scheduled", 1).await,
        ids("l", &[2, 7])
    );
    assert_eq!(
        all_pages(&app, "&status=open", 2).await,
        ids("l", &[4, 6, 8])
    );

    // A full last page has no cursor: no empty page follows.
    let (_, page) = app.get("/api/auctions?limit=8").await;
    assert_eq!(page["auctions"].as_array().unwrap().len(), 8);
    assert_eq!(page["next_cursor"], Value::Null);
    let (_, page) = app.get("/api/auctions?limit=5&status=live").await;
    assert_eq!(page["next_cursor"], Value::Null);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_page_holds_50_by_default_and_at_most_200() {
    let app = spawn_app().await;
    seed(&app, "p", 60, &[], &[]).await;
    let (status, page) = app.get("/api/auctions").await;
    assert_eq!(status, 200);
    assert_eq!(page["auctions"].as_array().unwrap().len(), 50);
    assert!(page["next_cursor"].is_string());
    let (_, page) = app.get("/api/auctions?limit=200").await;
    assert_eq!(page["auctions"].as_array().unwrap().len(), 60);
    for bad in ["limit=0", "limit=201", "limit=-1", "limit=x"] {
        let (status, body) = app.get(&format!("/api/auctions?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            matches!(
                body["error"]["code"].as_str(),
                Some("invalid_limit" | "invalid_query")
            ),
            "{bad}: {body}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cursor_that_was_not_handed_out_is_refused() {
    let app = spawn_app().await;
    seed(&app, "c", 3, &[], &[1]).await;
    let (_, page) = app.get("/api/auctions?limit=1").await;
    let live_cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, page) = app.get("/api/auctions?limit=1&status=closed").await;
    assert_eq!(page["next_cursor"], Value::Null);
    for (query, code) in [
        ("cursor=nonsense".to_string(), "invalid_query"),
        ("cursor=l~12~bad%20id".to_string(), "invalid_query"),
        (
            format!("status=closed&cursor={live_cursor}"),
            "invalid_query",
        ),
        ("status=open&cursor=c~".to_string(), "invalid_query"),
        ("status=ended".to_string(), "invalid_status"),
    ] {
        let (status, body) = app.get(&format!("/api/auctions?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_lobby_lists_live_auctions_first_and_closed_ones_in_their_own_section() {
    let app = spawn_app().await;
    seed(&app, "y", 4, &[3], &[2]).await;
    let mut ws = app.ws(None).await;
    ws.send(json!({"type": "subscribe_lobby"})).await;
    let lobby = ws.recv_type("lobby").await;
    let listed: Vec<String> = lobby["auctions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        listed,
        ids("y", &[1, 3, 4, 2]),
        "live by end time, then the closed ones"
    );
    let statuses: Vec<&str> = lobby["auctions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["open", "scheduled", "open", "closed"]);
    assert_eq!(lobby["more"], false);
    assert_eq!(ws.recv().await["type"], "ok");

    // Subscribing again is acknowledged, without another copy of the lobby.
    for _ in 0..3 {
        ws.send(json!({"type": "subscribe_lobby"})).await;
        let answer = ws.recv().await;
        assert_eq!(answer["type"], "ok", "{answer}");
        assert_eq!(answer["what"], "subscribe_lobby");
    }
    // What may still arrive is a change seeded just before the subscription (its feed
    // message can trail the lobby built from the engine): never another lobby.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(300);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ws.try_recv(left.as_millis() as u64).await {
            Some(m) => assert_ne!(m["type"], "lobby", "no lobby was sent again: {m}"),
            None => break,
        }
    }
    app.stop().await;
}
