//! Input that is almost right is refused, never half-read: unknown fields, repeated keys,
//! and every HTTP error is the documented JSON error.

use crate::helpers::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends raw bytes as one HTTP/1.1 request and returns (status, body as JSON or Null).
async fn raw_http(app: &TestApp, request: &str) -> (u16, Value) {
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Asserts a documented JSON error: this status, this code, a non-empty message.
fn assert_error(what: &str, (status, body): (u16, Value), want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{what}: {body}");
    assert_eq!(body["error"]["code"], want_code, "{what}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_misspelled_expected_seq_is_refused_instead_of_dropping_the_stale_check() {
    let app = spawn_app().await;
    let a = app.create_auction(json!({})).await;
    let id = a["id"].as_str().unwrap();
    let (t, _) = app.session("Alice").await;
    let mut ws = app.ws(Some(&t)).await;
    ws.send(json!({"type": "bid", "auction_id": id, "amount": 10000, "request_id": "w1", "expected_Seq": 99}))
        .await;
    let e = ws.recv().await;
    assert_eq!(
        (
            e["type"].as_str(),
            e["code"].as_str(),
            e["request_id"].as_str()
        ),
        (Some("error"), Some("invalid_message"), Some("w1")),
        "{e}"
    );
    assert!(
        e["message"].as_str().unwrap().contains("expected_Seq"),
        "{e}"
    );
    // Repeated keys: the first amount must not be silently replaced by the last.
    ws.send_raw(&format!(
        r#"{{"type":"bid","auction_id":"{id}","amount":10000,"amount":990000,"request_id":"w2"}}"#
    ))
    .await;
    let e = ws.recv().await;
    assert_eq!(
        (e["code"].as_str(), e["request_id"].as_str()),
        (Some("invalid_message"), Some("w2")),
        "{e}"
    );
    ws.send_raw(r#"{"type":"subscribe_lobby","extra":true}"#)
        .await;
    assert_eq!(ws.recv().await["code"], "invalid_message");
    ws.send_raw(r#"{"type":"ping","type":"ping","client_time":1}"#)
        .await;
    assert_eq!(ws.recv().await["code"], "invalid_message");

    // The same over HTTP.
    let bids = format!("/api/auctions/{id}/bids");
    let r = app
        .post(
            &bids,
            Some(&t),
            json!({"amount": 10000, "request_id": "h1", "expected_Seq": 99}),
        )
        .await;
    assert_error("unknown bid field", r, 422, "invalid_message");
    let r = app
        .http
        .post(app.url(&bids))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body(r#"{"amount":10000,"request_id":"h2","request_id":"h3"}"#)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_error(
        "repeated bid key",
        (status, r.json().await.unwrap()),
        422,
        "invalid_message",
    );
    let r = app
        .post(
            "/api/session",
            None,
            json!({"name": "Eve", "role": "admin"}),
        )
        .await;
    assert_error("unknown session field", r, 422, "invalid_message");
    let r = app
        .post(
            "/api/auctions",
            Some(ADMIN),
            json!({"title": "x", "starting_price": 100, "increment": 1, "duration_ms": 1000, "reserv": 5}),
        )
        .await;
    assert_error("unknown auction field", r, 422, "invalid_message");

    // Nothing was placed by any of it.
    let (_, view) = app.get(&format!("/api/auctions/{id}")).await;
    assert_eq!(view["bid_count"], 0, "{view}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_http_error_is_the_documented_json_error() {
    let app = spawn_app().await;
    let a = app.create_auction(json!({})).await;
    let id = a["id"].as_str().unwrap();
    let host = app.addr;

    let r = app
        .http
        .delete(app.url("/api/auctions"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_error(
        "405",
        (status, r.json().await.unwrap_or(Value::Null)),
        405,
        "method_not_allowed",
    );
    for q in ["limit=-1", "before_seq=abc", "limit=99999999999"] {
        let r = app.get(&format!("/api/auctions/{id}/bids?{q}")).await;
        assert_error(q, r, 400, "invalid_query");
    }
    let r = raw_http(
        &app,
        &format!(
            "POST /api/session HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n{{}}"
        ),
    )
    .await;
    assert_error("413 with Content-Length", r, 413, "body_too_large");
    let r = raw_http(
        &app,
        &format!("GET /api/auctions/%ff HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_error("%ff path", r, 400, "bad_request");
    for path in ["/api/nothing-here", "/no-such-file.js", "/%ff"] {
        let r = raw_http(
            &app,
            &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_error(path, r, 404, "not_found");
    }
    let r = app.get("/ws").await;
    assert_error("/ws without an upgrade", r, 400, "bad_request");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn misleading_names_titles_ids_and_times_are_refused_with_typed_errors() {
    let app = spawn_app().await;
    for name in [
        "Admin",
        "aDMIN",
        "Аdmin",
        "Ａｄｍｉｎ",
        "\u{200B}\u{200D}",
        "Bob\u{202E}nimdA",
        "two\nlines",
        "nul\u{0}",
    ] {
        let r = app.post("/api/session", None, json!({"name": name})).await;
        assert_error(&format!("name {name:?}"), r, 400, "invalid_name");
    }
    let base =
        json!({"title": "Lot", "starting_price": 10000, "increment": 100, "duration_ms": 60000});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let now = app.get("/api/time").await.1["server_time"]
        .as_i64()
        .unwrap();
    for (what, body) in [
        ("id .", with("id", json!("."))),
        ("id ..", with("id", json!(".."))),
        ("reserve below the start", with("reserve", json!(9999))),
        ("NUL in the title", with("title", json!("Lot\u{0}"))),
        ("newline in the title", with("title", json!("Lot\n2"))),
        (
            "override in the title",
            with("title", json!("Rolex \u{202E}ekaf")),
        ),
        ("invisible title", with("title", json!("\u{200B}"))),
        (
            "override in the description",
            with("description", json!("\u{202E}")),
        ),
        (
            "far-future start",
            with("starts_at", json!(9_223_372_036_854_775_797i64)),
        ),
        (
            "start in two years",
            with("starts_at", json!(now + 2 * 365 * 86_400_000)),
        ),
        (
            "a duration over a year",
            with("duration_ms", json!(366 * 86_400_000i64)),
        ),
        ("a huge duration", with("duration_ms", json!(i64::MAX))),
    ] {
        let r = app.post("/api/auctions", Some(ADMIN), body).await;
        assert_error(what, r, 422, "invalid_auction");
    }
    let mut far = base.clone();
    far["starts_at"] = json!(9_223_372_036_854_775_797i64);
    far["duration_ms"] = json!(100);
    let r = app.post("/api/auctions", Some(ADMIN), far).await;
    assert_error("issue 10 item 13", r, 422, "invalid_auction");
    // Nothing was created by any of it; a description may still break lines.
    let (_, list) = app.get("/api/auctions").await;
    assert_eq!(list["auctions"].as_array().unwrap().len(), 0, "{list}");
    app.create_auction(json!({"description": "Line one\nLine two", "reserve": 10000}))
        .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_the_holder_of_the_admin_token_may_sign_in_as_admin() {
    let app = spawn_app().await;
    let (s, r) = app
        .post(
            "/api/session",
            None,
            json!({"name": "Admin", "admin_token": ADMIN}),
        )
        .await;
    assert_eq!(
        (s, r["user"]["name"].as_str(), r["user"]["role"].as_str()),
        (200, Some("Admin"), Some("admin")),
        "{r}"
    );
    let r = app
        .post("/api/session", None, json!({"name": "Admin"}))
        .await;
    assert_error("a guest named Admin", r, 400, "invalid_name");
    // Other name rules hold for admins too.
    let r = app
        .post(
            "/api/session",
            None,
            json!({"name": "Ad\u{202E}min", "admin_token": ADMIN}),
        )
        .await;
    assert_error("an override in an admin's name", r, 400, "invalid_name");
    app.stop().await;
}
