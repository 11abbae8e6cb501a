//! `GET /api/search` and `GET /api/categories` find auctions through the archive's
//! full-text and column indexes (SQLite FTS5 embedded, PostgreSQL tsvector distributed),
//! with typed errors for every bad parameter (issue 12, "Find things").

use crate::helpers::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The ids of one search page, and the page.
async fn search(app: &TestApp, query: &str) -> (Vec<String>, Value) {
    let (status, page) = app.get(&format!("/api/search?{query}")).await;
    assert_eq!(status, 200, "{query}: {page}");
    let ids = page["auctions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    (ids, page)
}

fn ids(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// A lamp (lighting, ends in 2 min), a desk (furniture, 10 min, bid up to 200.00) and lamp
/// oil (lighting, ended early); waits until the archive holds the bid and the close (the
/// drainer writes them in distributed mode).
async fn seed(app: &TestApp) {
    app.create_auction(json!({
        "id": "s-lamp", "title": "Brass desk lamp", "description": "Green glass shade.",
        "category": "lighting", "duration_ms": 120_000
    }))
    .await;
    app.create_auction(json!({
        "id": "s-desk", "title": "Oak writing desk", "description": "Solid oak, three drawers.",
        "category": "furniture"
    }))
    .await;
    app.create_auction(json!({
        "id": "s-oil", "title": "Lamp oil", "description": "One litre.", "category": "lighting"
    }))
    .await;
    let (token, _) = app.session("Searcher").await;
    let (s, r) = app
        .post(
            "/api/auctions/s-desk/bids",
            Some(&token),
            json!({"amount": 20000, "request_id": "desk-1"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let (s, r) = app
        .post("/api/auctions/s-oil/end", Some(ADMIN), json!({}))
        .await;
    assert_eq!(s, 200, "{r}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (closed, _) = search(app, "status=closed").await;
        let (dear, _) = search(app, "min_price=15000").await;
        if closed == ids(&["s-oil"]) && dear == ids(&["s-desk"]) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the archive never showed the bid and the close: closed {closed:?}, dear {dear:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn search_finds_auctions_by_words_category_price_status_and_end() {
    let app = spawn_app().await;
    seed(&app).await;

    // Words of the title or description, as prefixes, all required; live ones first.
    assert_eq!(search(&app, "q=lamp").await.0, ids(&["s-lamp", "s-oil"]));
    assert_eq!(search(&app, "q=LAMP+shade").await.0, ids(&["s-lamp"]));
    assert_eq!(search(&app, "q=des").await.0, ids(&["s-lamp", "s-desk"]));
    assert_eq!(search(&app, "q=drawer").await.0, ids(&["s-desk"]));
    assert_eq!(search(&app, "q=chair").await.0, ids(&[]));
    // Query syntax is read as words: quotes and operators are separators.
    assert_eq!(
        search(&app, "q=%22lamp%22+*+%26+(shade)").await.0,
        ids(&["s-lamp"])
    );

    assert_eq!(
        search(&app, "category=lighting").await.0,
        ids(&["s-lamp", "s-oil"])
    );
    assert_eq!(search(&app, "q=lamp&status=live").await.0, ids(&["s-lamp"]));
    assert_eq!(
        search(&app, "status=open").await.0,
        ids(&["s-lamp", "s-desk"])
    );
    assert_eq!(search(&app, "status=scheduled").await.0, ids(&[]));

    // The desk leads at 200.00; the others are at their starting price (100.00).
    let (found, page) = search(&app, "min_price=10001").await;
    assert_eq!(found, ids(&["s-desk"]));
    assert_eq!(page["auctions"][0]["price"], 20000, "{page}");
    assert_eq!(page["auctions"][0]["category"], "furniture", "{page}");
    assert_eq!(
        search(&app, "max_price=10000").await.0,
        ids(&["s-lamp", "s-oil"])
    );
    assert_eq!(
        search(&app, "sort=price_desc").await.0,
        ids(&["s-desk", "s-oil", "s-lamp"])
    );
    assert_eq!(
        search(&app, "sort=price_asc").await.0,
        ids(&["s-lamp", "s-oil", "s-desk"])
    );
    assert_eq!(
        search(&app, "ending_within_ms=180000").await.0,
        ids(&["s-lamp"])
    );

    // Pages of one, following next_offset, walk the same order once.
    let mut walked = Vec::new();
    let mut offset = Some(0);
    while let Some(o) = offset {
        let (found, page) = search(&app, &format!("limit=1&offset={o}")).await;
        walked.extend(found);
        offset = page["next_offset"].as_u64();
        assert!(walked.len() <= 3, "{walked:?}");
    }
    assert_eq!(walked, ids(&["s-lamp", "s-desk", "s-oil"]));

    let (s, cats) = app.get("/api/categories").await;
    assert_eq!(s, 200);
    assert_eq!(
        cats,
        json!({"categories": [
            {"category": "furniture", "live": 1},
            {"category": "lighting", "live": 1}
        ]}),
        "closed auctions are not counted"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn search_refuses_bad_parameters_with_typed_errors() {
    let app = spawn_app().await;
    for (query, status, code) in [
        ("status=ended", 400, "invalid_status"),
        ("sort=cheapest", 400, "invalid_query"),
        ("limit=0", 400, "invalid_limit"),
        ("limit=101", 400, "invalid_limit"),
        ("limit=-1", 400, "invalid_query"),
        ("min_price=-1", 400, "invalid_query"),
        ("max_price=abc", 400, "invalid_query"),
        ("category=Art%20Deco", 400, "invalid_query"),
        ("ending_within_ms=0", 400, "invalid_query"),
        ("offset=9990&limit=24", 400, "invalid_query"),
    ] {
        let (s, body) = app.get(&format!("/api/search?{query}")).await;
        assert_eq!(s, status, "{query}: {body}");
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
    }
    let (s, body) = app.get("/api/search?q=%22%27*%3A%26%7C!()").await;
    assert_eq!((s, &body["auctions"]), (200, &json!([])), "{body}");

    let r = app
        .post(
            "/api/auctions",
            Some(ADMIN),
            json!({"title": "x", "starting_price": 100, "increment": 10,
                   "duration_ms": 60000, "category": "Not A Slug"}),
        )
        .await;
    assert_eq!(r.0, 422, "{}", r.1);
    assert_eq!(r.1["error"]["code"], "invalid_auction");
    app.stop().await;
}
