//! Who may act: token expiry and refresh, failed `auth`, the admin token, guessing limits.

use crate::helpers::*;
use gavel_server::config::ServeConfig;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SECRET: &str = "sessions-test-secret-0123456789abcdef";

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A token signed with the server's secret, with these claims.
fn signed(claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

async fn me(app: &TestApp, token: &str) -> (u16, Value) {
    let r = app
        .http
        .get(app.url("/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_auth_leaves_the_connection_anonymous() {
    let app = spawn_app().await;
    let a = app.create_auction(json!({})).await;
    let id = a["id"].as_str().unwrap();
    let (t, _) = app.session("Alice").await;
    let mut ws = app.ws(Some(&t)).await;
    assert_eq!(ws.bid(id, json!(10000), "a1").await["outcome"], "accepted");
    ws.send(json!({"type": "auth", "token": "forged.token.value"}))
        .await;
    let e = ws.recv().await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("unauthorized")),
        "{e}"
    );
    let r = ws.bid(id, json!(20000), "a2").await;
    assert_eq!(
        (
            r["type"].as_str(),
            r["code"].as_str(),
            r["request_id"].as_str()
        ),
        (Some("error"), Some("unauthorized"), Some("a2")),
        "the failed auth must not keep Alice signed in: {r}"
    );
    let (_, view) = app.get(&format!("/api/auctions/{id}")).await;
    assert_eq!(
        (view["price"].as_i64(), view["bid_count"].as_u64()),
        (Some(10000), Some(1))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_raw_admin_token_administers_but_cannot_bid() {
    let app = spawn_app().await;
    let a = app.create_auction(json!({})).await;
    let id = a["id"].as_str().unwrap();
    let (s, e) = app
        .post(
            &format!("/api/auctions/{id}/bids"),
            Some(ADMIN),
            json!({"amount": 10000, "request_id": "adm1"}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("admin_cannot_bid")),
        "{e}"
    );
    let mut ws = app.ws(Some(ADMIN)).await;
    let r = ws.bid(id, json!(10000), "adm2").await;
    assert_eq!(
        (
            r["type"].as_str(),
            r["code"].as_str(),
            r["request_id"].as_str()
        ),
        (Some("error"), Some("admin_cannot_bid"), Some("adm2")),
        "{r}"
    );
    // An admin session (a real user with the admin role) may bid.
    let (s, admin) = app
        .post(
            "/api/session",
            None,
            json!({"name": "Auctioneer Ann", "admin_token": ADMIN}),
        )
        .await;
    assert_eq!(s, 200, "{admin}");
    let (s, r) = app
        .post(
            &format!("/api/auctions/{id}/bids"),
            admin["token"].as_str(),
            json!({"amount": 10000, "request_id": "adm3"}),
        )
        .await;
    assert_eq!((s, r["outcome"].as_str()), (200, Some("accepted")), "{r}");
    let (_, view) = app.get(&format!("/api/auctions/{id}")).await;
    assert_eq!(view["bid_count"], 1);
    assert_eq!(view["leader"]["id"], admin["user"]["id"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_issued_or_valid_from_the_future_are_refused() {
    let app = spawn_app_with(|c| c.jwt_secret = Some(SECRET.into())).await;
    let now = now_secs();
    let claims = |iat: i64, nbf: Option<i64>| {
        let mut c =
            json!({"sub": "u-x", "name": "X", "role": "bidder", "iat": iat, "exp": now + 7200});
        if let Some(nbf) = nbf {
            c["nbf"] = nbf.into();
        }
        signed(c)
    };
    let (s, e) = me(&app, &claims(now + 3600, None)).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (401, Some("token_not_yet_valid")),
        "{e}"
    );
    let (s, e) = me(&app, &claims(now, Some(now + 3600))).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (401, Some("token_not_yet_valid")),
        "{e}"
    );
    let (s, v) = me(&app, &claims(now, Some(now))).await;
    assert_eq!((s, v["id"].as_str()), (200, Some("u-x")), "{v}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_admin_tokens_are_limited_per_address_everywhere_they_can_be_tried() {
    let app = spawn_app_with(|c| c.auth_failures_per_minute_per_ip = 3).await;
    let (t, _) = app.session("Alice").await;
    // Three guesses, one through each door.
    let (s, e) = me(&app, "guess-1").await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let mut ws = app.ws(None).await;
    ws.send(json!({"type": "auth", "token": "guess-2"})).await;
    assert_eq!(ws.recv().await["code"], "unauthorized");
    let (s, e) = app
        .post(
            "/api/session",
            None,
            json!({"name": "Mallory", "admin_token": "guess-3"}),
        )
        .await;
    assert_eq!((s, e["error"]["code"].as_str()), (403, Some("forbidden")));
    // Now even the right token is not compared from this address...
    let (s, e) = me(&app, ADMIN).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{e}"
    );
    ws.send(json!({"type": "auth", "token": ADMIN})).await;
    assert_eq!(ws.recv().await["code"], "rate_limited");
    let (s, e) = app
        .post(
            "/api/session",
            None,
            json!({"name": "Mallory", "admin_token": ADMIN}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{e}"
    );
    let (s, e) = app
        .post(
            "/api/auctions",
            Some(ADMIN),
            json!({"title": "x", "starting_price": 1, "increment": 1, "duration_ms": 1000}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{e}"
    );
    // ...while a signed session from the same address still works.
    let (s, v) = me(&app, &t).await;
    assert_eq!((s, v["name"].as_str()), (200, Some("Alice")));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_server_refuses_to_start_with_a_short_admin_token_or_jwt_secret() {
    for (admin, secret, needs) in [
        (Some("s3cret"), None, "at least 16"),
        (None, Some("short-secret"), "at least 32"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServeConfig::for_data_dir(dir.path().to_path_buf());
        config.admin_token = admin.map(String::from);
        config.jwt_secret = secret.map(String::from);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let run = gavel_server::run(config, listener, shutdown.clone());
        let e = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("it stops at once")
            .expect_err("it refuses to start");
        let e = format!("{e:#}");
        assert!(
            e.contains(needs) && e.contains("openssl rand -hex 32"),
            "{e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_refreshes_into_the_same_user_with_a_later_expiry() {
    let app = spawn_app_with(|c| c.session_ttl_secs = 60).await;
    let r: Value = app
        .post("/api/session", None, json!({"name": "Alice"}))
        .await
        .1;
    let token = r["token"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, fresh) = app
        .post("/api/session/refresh", Some(token), json!({}))
        .await;
    assert_eq!(s, 200, "{fresh}");
    assert_eq!(fresh["user"], r["user"], "same user, name and role");
    assert!(
        fresh["expires_at"].as_i64().unwrap() > r["expires_at"].as_i64().unwrap(),
        "{fresh} vs {r}"
    );
    assert_ne!(fresh["token"], r["token"]);
    let (s, v) = me(&app, fresh["token"].as_str().unwrap()).await;
    assert_eq!((s, v["id"].as_str()), (200, r["user"]["id"].as_str()));
    // Only a valid session token can be refreshed.
    let (s, e) = app
        .post("/api/session/refresh", Some(ADMIN), json!({}))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{e}"
    );
    let (s, e) = app
        .post("/api/session/refresh", Some("forged"), json!({}))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{e}"
    );
    let (s, e) = app.post("/api/session/refresh", None, json!({})).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{e}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_websocket_turns_watch_only_when_its_token_expires_until_a_fresh_auth() {
    // Tokens carry whole seconds: a 2 s lifetime ends 1 to 2 s after sign-in.
    let app = spawn_app_with(|c| c.session_ttl_secs = 2).await;
    let a = app.create_auction(json!({})).await;
    let id = a["id"].as_str().unwrap();
    let (s, r) = app
        .post("/api/session", None, json!({"name": "Alice"}))
        .await;
    assert_eq!(s, 200);
    let token = r["token"].as_str().unwrap().to_string();
    let expires_at = r["expires_at"].as_i64().unwrap();
    let mut ws = app.ws(Some(&token)).await;
    ws.subscribe(id).await;
    assert_eq!(ws.bid(id, json!(10000), "e1").await["outcome"], "accepted");
    // Told at expiry, without asking.
    let started = Instant::now();
    let e = loop {
        let m = tokio::time::timeout(Duration::from_secs(4), ws.recv())
            .await
            .expect("token_expired within 4 s");
        if m["type"] == "error" {
            break m;
        }
    };
    assert_eq!(e["code"], "token_expired", "{e}");
    let told_at = gavel_now(&app).await;
    assert!(
        told_at >= expires_at,
        "told at {told_at}, before the expiry {expires_at}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // Watch-only now: bids are refused, updates still arrive.
    let r = ws.bid(id, json!(20000), "e2").await;
    assert_eq!(
        (r["type"].as_str(), r["code"].as_str()),
        (Some("error"), Some("unauthorized")),
        "{r}"
    );
    let (s, e) = app
        .post(
            &format!("/api/auctions/{id}/bids"),
            Some(&token),
            json!({"amount": 20000, "request_id": "e3"}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (401, Some("token_expired")),
        "{e}"
    );
    let (s, e) = app
        .post("/api/session/refresh", Some(&token), json!({}))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (401, Some("token_expired")),
        "{e}"
    );
    let (bob, _) = app.session("Bob").await;
    app.post(
        &format!("/api/auctions/{id}/bids"),
        Some(&bob),
        json!({"amount": 11000, "request_id": "b1"}),
    )
    .await;
    let u = ws.recv_type("update").await;
    assert_eq!(u["price"], 11000);
    // A fresh token through `auth` restores bidding.
    let (fresh, _) = app.session("Alice again").await;
    ws.send(json!({"type": "auth", "token": fresh})).await;
    let hello = ws.recv_type("hello").await;
    assert_eq!(hello["user"]["name"], "Alice again");
    assert_eq!(ws.bid(id, json!(12000), "e4").await["outcome"], "accepted");
    app.stop().await;
}

async fn gavel_now(app: &TestApp) -> i64 {
    app.get("/api/time").await.1["server_time"]
        .as_i64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_token_in_the_url_starts_anonymous_and_says_why() {
    let app = spawn_app_with(|c| c.jwt_secret = Some(SECRET.into())).await;
    let now = now_secs();
    let expired = signed(
        json!({"sub": "u-old", "name": "Old", "role": "bidder", "iat": now - 100, "exp": now - 10}),
    );
    let url = format!("ws://{}/ws?token={expired}", app.addr);
    let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut ws = Ws { stream };
    let hello = ws.recv().await;
    assert_eq!(
        (hello["type"].as_str(), hello["user"].is_null()),
        (Some("hello"), true)
    );
    assert_eq!(ws.recv().await["code"], "token_expired");
    let (s, e) = me(&app, &expired).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (401, Some("token_expired"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quiet_connection_gets_heartbeats_and_a_busy_one_does_not() {
    let app = spawn_app_with(|c| c.heartbeat_ms = 200).await;
    let mut ws = app.ws(None).await;
    // (The helper has read `hello`; check its announcement on a second connection.)
    let (stream, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", app.addr))
        .await
        .unwrap();
    let mut other = Ws { stream };
    assert_eq!(other.recv_any().await["heartbeat_ms"], 200);
    // Quiet: a heartbeat about every 200 ms.
    let mut beats = Vec::new();
    let started = Instant::now();
    while beats.len() < 3 {
        let m = ws.recv_any().await;
        assert_eq!(m["type"], "heartbeat", "{m}");
        assert!(m["server_time"].as_i64().unwrap() > 1_700_000_000_000);
        beats.push(started.elapsed());
    }
    let gaps: Vec<_> = beats.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter()
            .all(|g| *g >= Duration::from_millis(150) && *g < Duration::from_millis(600)),
        "{gaps:?}"
    );
    // Busy: a pong every 100 ms leaves no room for a heartbeat.
    for i in 0..8 {
        ws.send(json!({"type": "ping", "client_time": i})).await;
        let m = ws.recv_any().await;
        if i > 0 {
            assert_eq!(m["type"], "pong", "{m}");
        } else if m["type"] == "heartbeat" {
            // One may have been on its way before the first ping.
            assert_eq!(ws.recv_any().await["type"], "pong");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}
