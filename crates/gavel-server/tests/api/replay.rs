//! A retried request gets the answer it was given the first time, before and after a
//! restart, and never anything private to another user (issue 10, item 1).

use crate::helpers::*;
use serde_json::{json, Value};

async fn bid(app: &TestApp, token: &str, id: &str, body: Value) -> (u16, Value) {
    app.post(&format!("/api/auctions/{id}/bids"), Some(token), body)
        .await
}

/// Every amount a JSON value mentions as a maximum: `your_max` fields and "maximum is/of"
/// in messages.
fn maximums_in(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "your_max" && !x.is_null() {
                    out.push(x.to_string());
                }
                out.extend(maximums_in(x));
            }
        }
        Value::Array(a) => a.iter().for_each(|x| out.extend(maximums_in(x))),
        Value::String(s) if s.contains("maximum") => out.push(s.clone()),
        _ => {}
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_after_a_restart_gets_its_first_answer_and_no_one_elses_maximum() {
    let app = spawn_app().await;
    let a = app.create_auction(json!({})).await;
    let id = a["id"].as_str().unwrap().to_string();
    let (alice, _) = app.session("Alice").await;
    let (bob, _) = app.session("Bob").await;

    let alice_bid = json!({"amount": 10000, "request_id": "r1"});
    let (status, alice_first) = bid(&app, &alice, &id, alice_bid.clone()).await;
    assert_eq!(status, 200, "{alice_first}");
    assert_eq!(alice_first["outcome"], "accepted");
    assert_eq!(alice_first["message"], "Your bid of USD 100.00 leads.");

    // Bob sets a secret maximum of 500.00 and leads at 110.00; then raises it to 600.00.
    let (_, bob_first) = bid(
        &app,
        &bob,
        &id,
        json!({"amount": 50000, "request_id": "b1", "kind": "max"}),
    )
    .await;
    assert_eq!(bob_first["outcome"], "accepted");
    assert_eq!(
        bob_first["message"],
        "You lead at USD 110.00; your maximum is USD 500.00."
    );
    let raise = json!({"amount": 60000, "request_id": "b2", "kind": "max"});
    let (_, bob_raise) = bid(&app, &bob, &id, raise.clone()).await;
    assert_eq!(bob_raise["outcome"], "accepted", "{bob_raise}");
    assert_eq!(bob_raise["auction"]["your_max"], 60000);

    // Before a restart: the whole first answer again.
    let (status, again) = bid(&app, &alice, &id, alice_bid.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(again, alice_first, "a retry gets the first answer verbatim");

    let app = app.restart().await;

    let (status, again) = bid(&app, &alice, &id, alice_bid.clone()).await;
    assert_eq!(status, 200, "{again}");
    assert!(
        maximums_in(&again).is_empty(),
        "Alice's retry mentions a maximum: {again}"
    );
    assert_eq!(
        again, alice_first,
        "after a restart a retry still gets the first answer verbatim"
    );
    // The same amount sent with another request id is a new bid, decided now.
    let (_, fresh) = bid(
        &app,
        &alice,
        &id,
        json!({"amount": 12000, "request_id": "r2"}),
    )
    .await;
    assert_eq!(fresh["outcome"], "outbid");
    assert!(maximums_in(&fresh).is_empty(), "{fresh}");

    // The leader's own retries get their own first answers, maximum included.
    let (_, again) = bid(
        &app,
        &bob,
        &id,
        json!({"amount": 50000, "request_id": "b1", "kind": "max"}),
    )
    .await;
    assert_eq!(again, bob_first);
    let (status, again) = bid(&app, &bob, &id, raise).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        again, bob_raise,
        "an accepted max raise is answered the same after a restart"
    );
    app.stop().await;
}
