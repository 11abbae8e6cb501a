//! The personal channel (`subscribe_personal`), the watchlist, "My bids" and next steps,
//! over real HTTP and WebSocket connections, in both modes.

use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

/// Reads until a `notification` of `kind` for `auction` arrives (failing after `secs`),
/// returning every notification read on the way too.
async fn notification(ws: &mut Ws, kind: &str, auction: &str, secs: u64) -> (Value, Vec<Value>) {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let v = ws
            .try_recv(left.as_millis() as u64)
            .await
            .unwrap_or_else(|| panic!("no {kind} for {auction} within {secs}s; saw {seen:?}"));
        if v["type"] == "notification" {
            if v["kind"] == kind && v["auction_id"] == auction {
                return (v, seen);
            }
            seen.push(v);
        }
    }
}

/// Every notification within `ms`.
async fn notifications_within(ws: &mut Ws, ms: u64) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return out;
        }
        match ws.try_recv(left.as_millis() as u64).await {
            Some(v) if v["type"] == "notification" => out.push(v),
            Some(_) => {}
            None => return out,
        }
    }
}

async fn personal(app: &TestApp, token: &str) -> (Ws, Value) {
    let mut ws = app.ws(Some(token)).await;
    ws.send(json!({"type": "subscribe_personal"})).await;
    let p = ws.recv_type_or_error("personal").await;
    assert_eq!(p["type"], "personal", "{p}");
    (ws, p)
}

async fn http_bid(app: &TestApp, token: &str, auction: &str, amount: i64, req: &str) -> Value {
    let (status, r) = app
        .post(
            &format!("/api/auctions/{auction}/bids"),
            Some(token),
            json!({"amount": amount, "request_id": req}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    r
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.http.request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_outbid_leader_is_told_on_the_personal_channel_without_the_room_open() {
    let app = spawn_app().await;
    let (ann, _) = app.session("Ann").await;
    let (bob, _) = app.session("Bob").await;
    let a = app.create_auction(json!({"title": "Camera"})).await;
    let id = a["id"].as_str().unwrap();
    let (mut ann_ws, p) = personal(&app, &ann).await;
    assert_eq!(p["auctions"], json!([]), "nothing followed yet: {p}");
    assert_eq!(p["ending_soon_ms"], 60_000);
    let (mut bob_ws, _) = personal(&app, &bob).await;

    let r = http_bid(&app, &ann, id, 10_000, "a-1").await;
    assert_eq!(r["outcome"], "accepted", "{r}");
    let r = http_bid(&app, &bob, id, 11_000, "b-1").await;
    assert_eq!(r["outcome"], "accepted", "{r}");
    let seq = r["auction"]["seq"].as_u64().unwrap();

    let (n, before) = notification(&mut ann_ws, "outbid", id, 10).await;
    assert!(before.is_empty(), "nothing else first: {before:?}");
    assert_eq!(n["id"], format!("{id}:{seq}:outbid"));
    assert_eq!(n["seq"], seq);
    assert_eq!(n["price"], 11_000);
    assert_eq!(n["title"], "Camera");
    assert_eq!(n["currency"], "USD");
    assert!(n.get("next_steps").is_none(), "{n}");
    assert!(
        notifications_within(&mut bob_ws, 500).await.is_empty(),
        "the new leader is told nothing"
    );

    // Ann's list says so too (and is the same as the `personal` answer).
    let (status, mine) = send(
        &app,
        reqwest::Method::GET,
        "/api/me/auctions",
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["auctions"].as_array().unwrap().len(), 1, "{mine}");
    let m = &mine["auctions"][0];
    assert_eq!(
        (
            &m["auction_id"],
            &m["my_status"],
            &m["bid"],
            &m["watched"],
            &m["price"]
        ),
        (
            &json!(id),
            &json!("outbid"),
            &json!(true),
            &json!(false),
            &json!(11_000)
        ),
        "{m}"
    );
    let (_, bobs) = send(
        &app,
        reqwest::Method::GET,
        "/api/me/auctions?filter=leading",
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(bobs["auctions"][0]["auction_id"], id, "{bobs}");
    ann_ws.send(json!({"type": "subscribe_personal"})).await;
    let again = ann_ws.recv_type("personal").await;
    assert_eq!(again["auctions"], mine["auctions"]);

    // Bob takes it back and Ann outbids him: now Bob is told, once.
    let r = http_bid(&app, &ann, id, 12_000, "a-2").await;
    assert_eq!(r["outcome"], "accepted", "{r}");
    let (n, _) = notification(&mut bob_ws, "outbid", id, 10).await;
    assert_eq!(n["price"], 12_000);
    assert!(notifications_within(&mut bob_ws, 500).await.is_empty());
}

#[tokio::test]
async fn won_and_lost_reach_the_bidders_and_only_the_winner_sees_the_next_steps() {
    let app = spawn_app().await;
    let (ann, _) = app.session("Ann").await;
    let (bob, _) = app.session("Bob").await;
    let (cy, _) = app.session("Cy").await;
    let a = app.create_auction(json!({"duration_ms": 2500})).await;
    let id = a["id"].as_str().unwrap();
    let steps = json!({"text": "Pay within 3 days.", "url": "https://pay.example/lot"});
    let path = format!("/api/auctions/{id}/next_steps");
    let (status, body) = send(
        &app,
        reqwest::Method::PUT,
        &path,
        Some(ADMIN),
        Some(steps.clone()),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (mut ann_ws, _) = personal(&app, &ann).await;
    let (mut bob_ws, _) = personal(&app, &bob).await;
    // Cy only watches: no `lost` for someone who never bid.
    let (status, _) = send(
        &app,
        reqwest::Method::PUT,
        &format!("/api/me/watchlist/{id}"),
        Some(&cy),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (mut cy_ws, p) = personal(&app, &cy).await;
    assert_eq!(p["auctions"][0]["my_status"], "watching", "{p}");

    http_bid(&app, &ann, id, 10_000, "a-1").await;
    http_bid(&app, &bob, id, 11_000, "b-1").await;
    let (before_close, _) = send(&app, reqwest::Method::GET, &path, Some(&bob), None).await;
    assert_eq!(before_close, 403, "not before the close");

    let (won, _) = notification(&mut bob_ws, "won", id, 15).await;
    assert_eq!(won["price"], 11_000);
    assert_eq!(won["next_steps"], steps, "{won}");
    assert!(won["id"].as_str().unwrap().ends_with(":won"));
    let (lost, _) = notification(&mut ann_ws, "lost", id, 15).await;
    assert!(lost.get("next_steps").is_none(), "{lost}");
    let cy_got = notifications_within(&mut cy_ws, 1000).await;
    assert!(
        cy_got.iter().all(|n| n["kind"] == "ending_soon"),
        "a watcher who never bid is told neither won nor lost: {cy_got:?}"
    );

    let (status, body) = send(&app, reqwest::Method::GET, &path, Some(&bob), None).await;
    assert_eq!((status, &body), (200, &steps));
    let (status, body) = send(&app, reqwest::Method::GET, &path, Some(&ann), None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (_, mine) = send(
        &app,
        reqwest::Method::GET,
        "/api/me/auctions?filter=won",
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(mine["auctions"][0]["next_steps"], steps, "{mine}");
    let (_, hers) = send(
        &app,
        reqwest::Method::GET,
        "/api/me/auctions",
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(hers["auctions"][0]["my_status"], "lost", "{hers}");
    assert!(hers["auctions"][0].get("next_steps").is_none());
    let (_, public) = app.get(&format!("/api/auctions/{id}")).await;
    assert!(
        !public.to_string().contains("pay.example"),
        "the public view never carries them: {public}"
    );
}

#[tokio::test]
async fn ending_soon_fires_once_per_auction_even_after_a_soft_close_extension() {
    let app = spawn_app_with(|c| c.ending_soon_secs = 2).await;
    let (ann, _) = app.session("Ann").await;
    let (bob, _) = app.session("Bob").await;
    // Ends in 3 s; a bid in the last 1.5 s moves the end to 2.5 s after it.
    let a = app
        .create_auction(
            json!({"duration_ms": 3000, "soft_close": {"window_ms": 1500, "extend_ms": 2500}}),
        )
        .await;
    let id = a["id"].as_str().unwrap();
    let (status, _) = send(
        &app,
        reqwest::Method::PUT,
        &format!("/api/me/watchlist/{id}"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (mut ws, p) = personal(&app, &ann).await;
    assert_eq!(p["ending_soon_ms"], 2000);
    assert_eq!(p["auctions"][0]["watched"], true, "{p}");

    let (first, _) = notification(&mut ws, "ending_soon", id, 5).await;
    assert_eq!(first["id"], format!("{id}:ending_soon"));
    let left = first["ends_at"].as_i64().unwrap() - first["at"].as_i64().unwrap();
    assert!(
        (0..=2000).contains(&left),
        "sent with at most 2 s left: {left}"
    );
    // Into the soft-close window: the end moves out beyond the threshold and comes back.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let r = http_bid(&app, &bob, id, 10_000, "b-1").await;
    assert_eq!(r["outcome"], "accepted", "{r}");
    let extended = r["auction"]["ends_at"].as_i64().unwrap();
    assert!(
        extended > a["ends_at"].as_i64().unwrap(),
        "the bid extended the auction"
    );
    // Until well after the (extended) close: no second ending_soon.
    let rest = notifications_within(&mut ws, 4500).await;
    assert!(
        rest.iter().all(|n| n["kind"] != "ending_soon"),
        "ending_soon once: {rest:?}"
    );
    let (_, mine) = send(
        &app,
        reqwest::Method::GET,
        "/api/me/auctions",
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(
        mine["auctions"][0]["status"], "closed",
        "the auction did close: {mine}"
    );
}

#[tokio::test]
async fn the_watchlist_is_kept_per_user_and_bad_requests_get_typed_errors() {
    let app = spawn_app().await;
    let (ann, _) = app.session("Ann").await;
    let (bob, _) = app.session("Bob").await;
    let a = app.create_auction(json!({"title": "First"})).await;
    let b = app.create_auction(json!({"title": "Second"})).await;
    let (ida, idb) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    for id in [ida, idb, ida] {
        let (status, body) = send(
            &app,
            reqwest::Method::PUT,
            &format!("/api/me/watchlist/{id}"),
            Some(&ann),
            None,
        )
        .await;
        assert_eq!(status, 204, "{body}");
    }
    let (_, mine) = send(
        &app,
        reqwest::Method::GET,
        "/api/me/auctions?filter=watched",
        Some(&ann),
        None,
    )
    .await;
    let mut ids: Vec<&str> = mine["auctions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["auction_id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = vec![ida, idb];
    want.sort();
    assert_eq!(ids, want, "{mine}");
    assert!(mine["auctions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["my_status"] == "watching"));
    let (_, bobs) = send(
        &app,
        reqwest::Method::GET,
        "/api/me/auctions",
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(bobs["auctions"], json!([]), "another user's list is empty");

    let (status, _) = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/me/watchlist/{ida}"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/me/watchlist/{ida}"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(status, 204, "idempotent");
    let (_, mine) = send(
        &app,
        reqwest::Method::GET,
        "/api/me/auctions",
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(mine["auctions"].as_array().unwrap().len(), 1);
    assert_eq!(mine["auctions"][0]["auction_id"], idb);

    // Typed errors.
    let (status, body) = send(
        &app,
        reqwest::Method::PUT,
        "/api/me/watchlist/no-such-lot",
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = send(&app, reqwest::Method::GET, "/api/me/auctions", None, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, body) = send(
        &app,
        reqwest::Method::GET,
        "/api/me/auctions?filter=winning",
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let path = format!("/api/auctions/{ida}/next_steps");
    let (status, body) = send(
        &app,
        reqwest::Method::PUT,
        &path,
        Some(&ann),
        Some(json!({"text": "x"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    for bad in [
        json!({"text": "Pay", "url": "javascript:alert(1)"}),
        json!({"text": "Pay", "url": "https://a b"}),
        json!({"text": ""}),
        json!({"text": "x".repeat(2001)}),
        json!({"text": "Pay", "colour": "red"}),
    ] {
        let (status, body) = send(
            &app,
            reqwest::Method::PUT,
            &path,
            Some(ADMIN),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("invalid_message")),
            "{bad}"
        );
    }
    let (status, body) = send(&app, reqwest::Method::GET, &path, Some(ADMIN), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "none set"
    );

    // The personal channel needs a signed-in user.
    let mut anon = app.ws(None).await;
    anon.send(json!({"type": "subscribe_personal"})).await;
    let e = anon.recv_type("error").await;
    assert_eq!(e["code"], "unauthorized", "{e}");
    let (mut ws, _) = personal(&app, &ann).await;
    ws.send(json!({"type": "unsubscribe_personal"})).await;
    let ok = ws.recv_type("ok").await;
    assert_eq!(ok["what"], "unsubscribe_personal");
}

#[tokio::test]
async fn a_watch_through_http_is_followed_at_once_by_the_users_connection() {
    let app = spawn_app().await;
    let (ann, _) = app.session("Ann").await;
    let (bob, _) = app.session("Bob").await;
    let a = app.create_auction(json!({"duration_ms": 2500})).await;
    let id = a["id"].as_str().unwrap();
    let (mut ws, _) = personal(&app, &ann).await;
    assert!(notifications_within(&mut ws, 300).await.is_empty());
    let (status, _) = send(
        &app,
        reqwest::Method::PUT,
        &format!("/api/me/watchlist/{id}"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(status, 204);
    http_bid(&app, &bob, id, 10_000, "b-1").await;
    // Ann only watches: she hears ending_soon (60 s threshold, 2.5 s left) and nothing else.
    let (n, _) = notification(&mut ws, "ending_soon", id, 5).await;
    assert_eq!(n["id"], format!("{id}:ending_soon"));
}
