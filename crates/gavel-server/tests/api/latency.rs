//! Delivery latency (issue 16): the server measures decision → frame written for every
//! update it sends, clients report decision → received, and both show up overall in
//! `/metrics` and per watched auction in `GET /api/admin/latency`.

use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

/// Buckets of a report (one per bound of `LATENCY_BOUNDS_MS`, plus one).
const BUCKETS: usize = gavel_protocol::LATENCY_BOUNDS_MS.len() + 1;

async fn admin_get(app: &TestApp, path: &str) -> (u16, Value) {
    let r = app
        .http
        .get(app.url(path))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The auction's entry in `GET /api/admin/latency`, once `ready` holds for it (5 s at most:
/// the writer records a frame just after the client could read it).
async fn auction_latency(app: &TestApp, id: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = admin_get(app, "/api/admin/latency").await;
        assert_eq!(status, 200, "{body}");
        let entry = body["auctions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["auction_id"] == id)
            .cloned()
            .unwrap_or(Value::Null);
        if ready(&entry) {
            return entry;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "latency of {id} never got there: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn metric(app: &TestApp, line_start: &str) -> f64 {
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .unwrap_or_else(|| panic!("no {line_start} in /metrics:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn every_update_written_is_measured_from_the_time_the_authority_decided_it() {
    let app = spawn_app().await;
    let auction = app.create_auction(json!({})).await;
    let id = auction["id"].as_str().unwrap();
    let (alice, _) = app.session("Alice").await;
    let (bob, _) = app.session("Bob").await;
    let mut watchers = vec![app.ws(None).await, app.ws(None).await];
    for w in &mut watchers {
        w.subscribe(id).await;
    }
    let before = metric(&app, "gavel_delivery_seconds_count ").await;
    let mut bidder = app.ws(Some(&alice)).await;
    let mut other = app.ws(Some(&bob)).await;
    for (i, amount) in [10000, 11000, 12000].into_iter().enumerate() {
        let who = if i % 2 == 0 { &mut bidder } else { &mut other };
        let r = who.bid(id, json!(amount), &format!("r{i}")).await;
        assert_eq!(r["outcome"], "accepted", "{r}");
    }
    for w in &mut watchers {
        for _ in 0..3 {
            let u = w.recv_type("update").await;
            // The authority's time of the change: the bid's own decision time.
            assert_eq!(u["event"], "bid", "{u}");
            assert_eq!(u["decided_at"], u["bid"]["at"], "{u}");
            assert!(u["decided_at"].as_i64().unwrap() > 1_700_000_000_000);
        }
    }
    // Three updates written to each of the two watchers (the bidders watch nothing).
    let entry = auction_latency(&app, id, |e| e["latency"]["server"]["count"] == 6).await;
    assert_eq!(entry["watchers"], 2, "{entry}");
    let server = &entry["latency"]["server"];
    let counts: u64 = server["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(counts, 6, "{entry}");
    // Local delivery: well under a second.
    assert!(server["p99_ms"].as_u64().unwrap() <= 1000, "{entry}");
    assert_eq!(entry["latency"]["client"]["count"], 0);
    // The process-wide histogram (shared by every server in this test binary) has them too.
    let after = metric(&app, "gavel_delivery_seconds_count ").await;
    assert!(after >= before + 6.0, "{before} → {after}");
    assert!(metric(&app, "gavel_delivery_seconds_bucket{le=\"+Inf\"} ").await >= after);
}

#[tokio::test]
async fn client_reports_are_bounded_and_counted_for_the_auctions_the_client_watches() {
    let app = spawn_app().await;
    let watched = app.create_auction(json!({})).await;
    let watched = watched["id"].as_str().unwrap();
    let unwatched = app.create_auction(json!({})).await;
    let unwatched = unwatched["id"].as_str().unwrap();
    let mut ws = app.ws(None).await;
    ws.subscribe(watched).await;
    let before = metric(&app, "gavel_client_delivery_seconds_count ").await;

    let mut counts = vec![0u64; BUCKETS];
    counts[4] = 7; // 11–25 ms
    counts[BUCKETS - 1] = 1; // slower than the last bound
    ws.send(
        json!({"type": "latency_report", "clock_error_ms": 9, "auctions": [
            {"auction_id": watched, "counts": counts},
            {"auction_id": unwatched, "counts": counts},
        ]}),
    )
    .await;
    let ok = ws.recv().await;
    assert_eq!(ok, json!({"type": "ok", "what": "latency_report"}));
    let entry = auction_latency(&app, watched, |e| e["latency"]["reports"] == 1).await;
    let client = &entry["latency"]["client"];
    assert_eq!(client["count"], 8, "{entry}");
    assert_eq!(client["counts"][4], 7, "{entry}");
    assert_eq!(client["p50_ms"], 25, "{entry}");
    assert_eq!(
        client["p99_ms"],
        Value::Null,
        "slower than the last bound: {entry}"
    );
    assert_eq!(entry["latency"]["max_clock_error_ms"], 9);
    // Not watched here: only in the totals, never a per-auction entry of its own.
    let (_, all) = admin_get(&app, "/api/admin/latency").await;
    assert!(all["auctions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["auction_id"] != unwatched));
    assert_eq!(all["bounds_ms"].as_array().unwrap().len(), BUCKETS - 1);
    let after = metric(&app, "gavel_client_delivery_seconds_count ").await;
    assert!(after >= before + 16.0, "{before} → {after}");

    // A second report right away is refused.
    ws.send(json!({"type": "latency_report", "clock_error_ms": 1, "auctions": []}))
        .await;
    let e = ws.recv().await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("rate_limited")),
        "{e}"
    );

    // Reports out of bounds get a typed error, on a connection that is still served.
    let mut other = app.ws(None).await;
    let too_many: Vec<Value> = (0..65)
        .map(|i| json!({"auction_id": format!("a{i}"), "counts": vec![0; BUCKETS]}))
        .collect();
    for bad in [
        json!({"type": "latency_report", "clock_error_ms": 1,
               "auctions": [{"auction_id": watched, "counts": [1, 2, 3]}]}),
        json!({"type": "latency_report", "clock_error_ms": 1, "auctions": too_many}),
        json!({"type": "latency_report", "clock_error_ms": 1,
               "auctions": [{"auction_id": watched, "counts": vec![100_000; BUCKETS]}]}),
        json!({"type": "latency_report", "clock_error_ms": 3_600_000, "auctions": []}),
        json!({"type": "latency_report", "clock_error_ms": -1, "auctions": []}),
        json!({"type": "latency_report", "auctions": []}),
        json!({"type": "latency_report", "clock_error_ms": 1, "auctions": [], "extra": 1}),
    ] {
        other.send(bad.clone()).await;
        let e = other.recv().await;
        assert_eq!(e["type"], "error", "{bad} → {e}");
        assert_eq!(e["code"], "invalid_message", "{bad} → {e}");
    }
    let entry = auction_latency(&app, watched, |_| true).await;
    assert_eq!(
        entry["latency"]["reports"], 1,
        "refused reports count nowhere"
    );
    assert!(metric(&app, "gavel_latency_reports_refused_total ").await >= 4.0);
    other
        .send(json!({"type": "ping", "client_time": 1.0}))
        .await;
    assert_eq!(other.recv().await["type"], "pong");
}

#[tokio::test]
async fn the_latency_endpoint_is_for_admins_and_checks_its_limit() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/admin/latency").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (bidder, _) = app.session("Carol").await;
    let r = app
        .http
        .get(app.url("/api/admin/latency"))
        .bearer_auth(&bidder)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    for (q, code) in [
        ("0", "invalid_limit"),
        ("101", "invalid_limit"),
        ("x", "invalid_query"),
    ] {
        let (status, body) = admin_get(&app, &format!("/api/admin/latency?limit={q}")).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{q}"
        );
    }
    // The most watched first, `limit` of them.
    let a = app.create_auction(json!({})).await;
    let b = app.create_auction(json!({})).await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let mut conns = Vec::new();
    for _ in 0..3 {
        let mut w = app.ws(None).await;
        w.subscribe(b).await;
        conns.push(w);
    }
    let mut w = app.ws(None).await;
    w.subscribe(a).await;
    conns.push(w);
    let (status, body) = admin_get(&app, "/api/admin/latency?limit=1").await;
    assert_eq!(status, 200);
    let listed: Vec<(&str, u64)> = body["auctions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["auction_id"].as_str().unwrap(),
                e["watchers"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, vec![(b, 3)]);
}
