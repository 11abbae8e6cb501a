//! The HTTP API end to end.

use crate::helpers::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_filter_read_history_time_health_and_metrics() {
    let app = spawn_app().await;
    let open = app.create_auction(json!({})).await;
    let now = app.get("/api/time").await.1["server_time"]
        .as_i64()
        .unwrap();
    let later = app
        .create_auction(json!({"starts_at": now + 30 * 86_400_000, "duration_ms": 60000}))
        .await;
    let (s, list) = app.get("/api/auctions").await;
    assert_eq!(s, 200);
    assert_eq!(list["auctions"].as_array().unwrap().len(), 2);
    let (_, only_open) = app.get("/api/auctions?status=open").await;
    let ids: Vec<&str> = only_open["auctions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![open["id"].as_str().unwrap()]);
    let (_, scheduled) = app.get("/api/auctions?status=scheduled").await;
    assert_eq!(scheduled["auctions"][0]["id"], later["id"]);
    let (s, _) = app.get("/api/auctions?status=bogus").await;
    assert_eq!(s, 400);

    let id = open["id"].as_str().unwrap();
    let (t1, u1) = app.session("Alice").await;
    let (t2, _) = app.session("Bob").await;
    for (i, amount) in [10000, 11000, 12000, 13000, 14000].iter().enumerate() {
        let t = if i % 2 == 0 { &t1 } else { &t2 };
        let (s, _) = app
            .post(
                &format!("/api/auctions/{id}/bids"),
                Some(t),
                json!({"amount": amount, "request_id": format!("r{i}")}),
            )
            .await;
        assert_eq!(s, 200);
    }
    let (_, page1) = app.get(&format!("/api/auctions/{id}/bids?limit=2")).await;
    let amounts: Vec<i64> = page1["bids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, vec![14000, 13000], "newest first");
    let next = page1["next_before_seq"].as_u64().unwrap();
    let (_, page2) = app
        .get(&format!(
            "/api/auctions/{id}/bids?limit=2&before_seq={next}"
        ))
        .await;
    let amounts: Vec<i64> = page2["bids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, vec![12000, 11000]);
    let (_, view) = app.get(&format!("/api/auctions/{id}")).await;
    assert_eq!(view["leader"]["id"], u1);
    assert_eq!(view["min_bid"], 15000);

    let (_, time) = app.get("/api/time").await;
    assert!(time["server_time"].as_i64().unwrap() > 1_700_000_000_000);
    let (s, h) = app.get("/healthz").await;
    assert_eq!((s, h["status"].as_str()), (200, Some("ok")));
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("gavel_bids_total"), "{metrics}");
    let (s, me) = app.get("/api/me").await;
    assert_eq!(
        (s, me["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let me: serde_json::Value = app
        .http
        .get(app.url("/api/me"))
        .bearer_auth(&t1)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "Alice");
    // The web client is served at /.
    let page = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<html"));
    app.stop().await;
}

/// The `<gavel-auction>` script (web/dist/embed/gavel-auction.js) is served with a short
/// cache, an ETag that a revalidation answers with 304, and `Access-Control-Allow-Origin: *`
/// (shop pages on any origin load it); the web client's hashed assets stay immutable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embed_script_is_served_with_cache_headers_and_etag() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(app.url("/embed/gavel-auction.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert!(h["content-type"].to_str().unwrap().contains("javascript"));
    assert_eq!(h["cache-control"], "public, max-age=300, must-revalidate");
    assert_eq!(h["access-control-allow-origin"], "*");
    let etag = h["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");
    let body = r.text().await.unwrap();
    assert!(body.contains("gavel-auction"), "not the bid box script");
    let expected = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../web/dist/embed/gavel-auction.js"
    ))
    .unwrap();
    assert_eq!(body, expected);

    // Revalidation: the same ETag gives 304 with the headers and no body; another gives 200.
    let r = app
        .http
        .get(app.url("/embed/gavel-auction.js"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], etag.as_str());
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=300, must-revalidate"
    );
    assert!(r.text().await.unwrap().is_empty());
    let r = app
        .http
        .get(app.url("/embed/gavel-auction.js"))
        .header("If-None-Match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A `<script crossorigin>` on a shop page not in --allowed-origins still loads it (the
    // script is public; only the WebSocket and the API are guarded).
    let r = app
        .http
        .get(app.url("/embed/gavel-auction.js"))
        .header("Origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");

    // The app's own files keep their policies and get no CORS header.
    let r = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "no-cache");
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let (s, _) = app.get("/embed/nope.js").await;
    assert_eq!(s, 404);
}
