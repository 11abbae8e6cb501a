//! The core promise: no stale-state wins, over real sockets.

use crate::helpers::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_users_bidding_the_same_amount_at_once_get_exactly_one_acceptance() {
    let app = spawn_app().await;
    let a = app.create_auction(json!({})).await;
    let id = a["id"].as_str().unwrap();
    // Someone bids $100, so both A and B see $100 and the same seq.
    let (seed, _) = app.session("Seeder").await;
    let (s, seeded) = app
        .post(
            &format!("/api/auctions/{id}/bids"),
            Some(&seed),
            json!({"amount": 10000, "request_id": "seed"}),
        )
        .await;
    assert_eq!(s, 200);
    let seq = seeded["auction"]["seq"].as_u64().unwrap();

    let (ta, _) = app.session("Alice").await;
    let (tb, _) = app.session("Bob").await;
    let mut wa = app.ws(Some(&ta)).await;
    let mut wb = app.ws(Some(&tb)).await;
    let mut watcher = app.ws(None).await;
    for w in [&mut wa, &mut wb, &mut watcher] {
        assert_eq!(w.subscribe_until(id, seq).await, (seq, json!(10000)));
    }

    let bid = |rid: &str| json!({"type": "bid", "auction_id": id, "amount": 11000, "request_id": rid, "expected_seq": seq});
    // Both send before either reads anything.
    wa.send(bid("a-1")).await;
    wb.send(bid("b-1")).await;
    let ra = wa.recv_type("bid_result").await;
    let rb = wb.recv_type("bid_result").await;
    let outcomes = [
        ra["outcome"].as_str().unwrap(),
        rb["outcome"].as_str().unwrap(),
    ];
    assert_eq!(
        outcomes.iter().filter(|o| **o == "accepted").count(),
        1,
        "{outcomes:?}"
    );
    let loser = outcomes.iter().find(|o| **o != "accepted").unwrap();
    assert!(matches!(*loser, "outbid" | "stale"), "{loser}");
    // The loser is told the new state.
    let loser_result = if ra["outcome"] == "accepted" {
        &rb
    } else {
        &ra
    };
    assert_eq!(loser_result["auction"]["price"], 11000);
    assert_eq!(loser_result["auction"]["seq"], seq + 1);

    // The third watcher sees exactly one update, to seq + 1.
    let u = watcher.recv_type("update").await;
    assert_eq!(u["seq"], seq + 1);
    assert_eq!(u["price"], 11000);
    assert!(watcher.try_recv(300).await.is_none(), "exactly one update");

    // Everybody ends on the same state.
    let (_, view) = app.get(&format!("/api/auctions/{id}")).await;
    assert_eq!(view["seq"], seq + 1);
    assert_eq!(view["price"], 11000);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repeated_request_id_places_one_bid_even_on_two_connections() {
    let app = spawn_app().await;
    let a = app.create_auction(json!({})).await;
    let id = a["id"].as_str().unwrap();
    let (t, _) = app.session("Alice").await;
    let mut c1 = app.ws(Some(&t)).await;
    let mut c2 = app.ws(Some(&t)).await;
    let r1 = c1.bid(id, json!(10000), "same-request").await;
    let r2 = c2.bid(id, json!(10000), "same-request").await;
    assert_eq!(r1["outcome"], "accepted");
    assert_eq!(r1, r2, "the repeat gets the first answer");
    // And over HTTP too.
    let (status, r3) = app
        .post(
            &format!("/api/auctions/{id}/bids"),
            Some(&t),
            json!({"amount": 10000, "request_id": "same-request"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(r3["outcome"], "accepted");
    let (_, view) = app.get(&format!("/api/auctions/{id}")).await;
    assert_eq!(view["bid_count"], 1);
    let (_, hist) = app.get(&format!("/api/auctions/{id}/bids")).await;
    assert_eq!(hist["bids"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn proxy_bidders_fight_and_watchers_see_each_step() {
    let app = spawn_app().await;
    let a = app.create_auction(json!({})).await;
    let id = a["id"].as_str().unwrap();
    let (ta, _) = app.session("Alice").await;
    let (tb, _) = app.session("Bob").await;
    let mut watcher = app.ws(None).await;
    watcher.subscribe(id).await;
    let (s, r) = app
        .post(
            &format!("/api/auctions/{id}/bids"),
            Some(&ta),
            json!({"amount": 30000, "request_id": "a", "kind": "max"}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        r["auction"]["your_max"], 30000,
        "the leader sees their own maximum"
    );
    let (s, r) = app
        .post(
            &format!("/api/auctions/{id}/bids"),
            Some(&tb),
            json!({"amount": 20000, "request_id": "b"}),
        )
        .await;
    assert_eq!(s, 409);
    assert_eq!(r["outcome"], "outbid");
    assert_eq!(r["auction"]["price"], 21000);
    assert!(
        r["auction"].get("your_max").is_none(),
        "a maximum is never shown to others"
    );
    let first = watcher.recv_type("update").await;
    assert_eq!(first["price"], 10000);
    let second = watcher.recv_type("update").await;
    assert_eq!(second["price"], 21000);
    assert_eq!(second["bid"]["kind"], "auto");
    assert!(
        !second.to_string().contains("30000"),
        "no maximum in updates"
    );
    // Bob now sets a maximum too: the two maximums fight, one visible step per change.
    let (s, r) = app
        .post(
            &format!("/api/auctions/{id}/bids"),
            Some(&tb),
            json!({"amount": 25000, "request_id": "b2", "kind": "max"}),
        )
        .await;
    assert_eq!((s, r["outcome"].as_str()), (409, Some("outbid")));
    assert_eq!(
        r["auction"]["price"], 26000,
        "Alice's maximum answers one increment above Bob's"
    );
    let third = watcher.recv_type("update").await;
    assert_eq!(third["price"], 26000);
    assert!(third.get("leader").is_none(), "the leader did not change");
    let (s, r) = app
        .post(
            &format!("/api/auctions/{id}/bids"),
            Some(&tb),
            json!({"amount": 40000, "request_id": "b3", "kind": "max"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        r["auction"]["price"], 31000,
        "Bob leads one increment above Alice's maximum"
    );
    assert_eq!(r["auction"]["your_max"], 40000);
    let fourth = watcher.recv_type("update").await;
    assert_eq!(fourth["price"], 31000);
    assert_eq!(fourth["leader"]["name"], "Bob");
    assert!(
        !fourth.to_string().contains("40000"),
        "no maximum in updates"
    );
    let (_, hist) = app.get(&format!("/api/auctions/{id}/bids")).await;
    assert!(!hist.to_string().contains("30000"), "no maximum in history");
    assert!(!hist.to_string().contains("40000"), "no maximum in history");
    let amounts: Vec<i64> = hist["bids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(
        amounts,
        vec![31000, 26000, 21000, 10000],
        "each step is in the history"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bid_below_the_starting_price_is_told_the_minimum_in_words() {
    let app = spawn_app().await;
    let a = app.create_auction(json!({})).await;
    let id = a["id"].as_str().unwrap();
    let (t, _) = app.session("Alice").await;
    let bids = format!("/api/auctions/{id}/bids");
    let (s, r) = app
        .post(
            &bids,
            Some(&t),
            json!({"amount": 5000, "request_id": "low"}),
        )
        .await;
    assert_eq!((s, r["outcome"].as_str()), (409, Some("outbid")), "{r}");
    assert_eq!(
        r["message"],
        "Too low: nobody has bid yet, and the first bid must be at least USD 100.00."
    );
    app.post(
        &bids,
        Some(&t),
        json!({"amount": 10000, "request_id": "first"}),
    )
    .await;
    let (bob, _) = app.session("Bob").await;
    let (_, r) = app
        .post(
            &bids,
            Some(&bob),
            json!({"amount": 10500, "request_id": "b"}),
        )
        .await;
    assert_eq!(
        r["message"],
        "Outbid: the price is USD 100.00; the next bid must be at least USD 110.00."
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_over_the_rate_limit_gets_its_first_answer_not_rate_limited() {
    let app = spawn_app_with(|c| c.bids_per_second = 1).await;
    let a = app.create_auction(json!({})).await;
    let id = a["id"].as_str().unwrap();
    let (t, _) = app.session("Alice").await;
    let bids = format!("/api/auctions/{id}/bids");
    let first = app
        .post(
            &bids,
            Some(&t),
            json!({"amount": 10000, "request_id": "r1"}),
        )
        .await;
    assert_eq!(
        (first.0, first.1["outcome"].as_str()),
        (200, Some("accepted"))
    );
    // Spend the burst (twice the rate) until the limiter refuses a new request.
    let mut n = 0;
    loop {
        n += 1;
        let (s, r) = app
            .post(
                &bids,
                Some(&t),
                json!({"amount": 20000 + n, "request_id": format!("x{n}")}),
            )
            .await;
        if s == 429 {
            assert_eq!(r["error"]["code"], "rate_limited");
            break;
        }
        assert!(n < 10, "never limited");
    }
    // The retry of r1, over the limit, is answered exactly as the first time.
    let again = app
        .post(
            &bids,
            Some(&t),
            json!({"amount": 10000, "request_id": "r1"}),
        )
        .await;
    assert_eq!(again, first);
    // And over WebSocket.
    let mut ws = app.ws(Some(&t)).await;
    let r = ws.bid(id, json!(10000), "r1").await;
    let mut expected = first.1.clone();
    expected["type"] = json!("bid_result");
    assert_eq!(r, expected);
    app.stop().await;
}

/// A bid sent with `lean: true` is answered with `state` (what a decision can change)
/// instead of the full auction view: merged into the view the client holds, it is exactly
/// the full answer, and the title and description are not sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lean_bid_result_carries_only_the_state_and_merges_into_the_full_answer() {
    let app = spawn_app().await;
    let a = app
        .create_auction(json!({"description": "a long description ".repeat(40)}))
        .await;
    let id = a["id"].as_str().unwrap();
    let (token, _) = app.session("Alice").await;
    let mut ws = app.ws(Some(&token)).await;
    let held = ws.subscribe(id).await["auction"].clone();
    let lean = |rid: &str, amount: i64| json!({"type": "bid", "auction_id": id, "amount": amount, "request_id": rid, "lean": true});
    ws.send(lean("r1", 10000)).await;
    let r = ws.recv_type("bid_result").await;
    assert_eq!(r["outcome"], "accepted", "{r}");
    assert!(r.get("auction").is_none(), "{r}");
    let state = r["state"]
        .as_object()
        .expect("a lean answer has state")
        .clone();
    for gone in ["title", "description", "currency", "starts_at", "id"] {
        assert!(!state.contains_key(gone), "{gone} in {r}");
    }
    assert_eq!(state["price"], 10000);
    // The same request again, without lean: the first answer, in full.
    let full = ws.bid(id, json!(10000), "r1").await;
    assert_eq!(full["outcome"], "accepted");
    let mut merged = held.clone();
    for (k, v) in &state {
        merged[k] = v.clone();
    }
    assert_eq!(merged, full["auction"], "held view + state = the full view");
    assert!(
        r.to_string().len() + 500 < full.to_string().len(),
        "lean {} bytes, full {}",
        r.to_string().len(),
        full.to_string().len()
    );
    // A rejection is lean too; an unknown auction has neither view nor state.
    ws.send(lean("r2", 10000)).await;
    let r2 = ws.recv_type("bid_result").await;
    assert_eq!(r2["outcome"], "already_leading", "{r2}");
    assert!(
        r2.get("auction").is_none() && r2["state"]["seq"] == full["auction"]["seq"],
        "{r2}"
    );
    ws.send(json!({"type": "bid", "auction_id": "no-such-auction", "amount": 100, "request_id": "r3", "lean": true})).await;
    let r3 = ws.recv_type("bid_result").await;
    assert_eq!(r3["outcome"], "not_found");
    assert!(
        r3.get("auction").is_none() && r3.get("state").is_none(),
        "{r3}"
    );
    app.stop().await;
}
