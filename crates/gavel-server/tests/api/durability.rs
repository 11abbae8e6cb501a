//! A confirmed bid survives `kill -9` of the server process (embedded: the SQLite archive;
//! distributed: Redis, with the node's drainer killed mid-stream too).

use crate::helpers::{backends, free_port, start_process, Mode, ServerProcess, MODE};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const ADMIN: &str = "kill-test-admin-token";

/// Starts `gavel serve`; `backends` are the distributed mode's flags (none: embedded).
async fn start(data_dir: &std::path::Path, port: u16, backends: &[String]) -> ServerProcess {
    start_process(data_dir, port, ADMIN, backends).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confirmed_bids_survive_kill_9_and_nothing_is_duplicated() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_isolation, backends) = backends().await;
    let mut server = start(dir.path(), port, &backends).await;
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{}/api/auctions", server.base))
        .bearer_auth(ADMIN)
        .json(&json!({"title": "Durable", "starting_price": 100, "increment": 1, "duration_ms": 600000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let mut tokens = Vec::new();
    for name in ["A", "B", "C", "D"] {
        let r: Value = http
            .post(format!("{}/api/session", server.base))
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push(r["token"].as_str().unwrap().to_string());
    }
    // Four bidders outbid each other as fast as they can; every confirmation is recorded.
    let confirmed = Arc::new(parking_lot::Mutex::new(Vec::<(u64, i64)>::new()));
    let mut tasks = Vec::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let http = http.clone();
        let base = server.base.clone();
        let id = id.clone();
        let confirmed = confirmed.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..10_000u64 {
                let view: Value = match http.get(format!("{base}/api/auctions/{id}")).send().await {
                    Ok(r) => match r.json().await {
                        Ok(v) => v,
                        Err(_) => return,
                    },
                    Err(_) => return,
                };
                let amount = view["min_bid"].as_i64().unwrap_or(100) + i as i64;
                let r = http
                    .post(format!("{base}/api/auctions/{id}/bids"))
                    .bearer_auth(&token)
                    .json(&json!({"amount": amount, "request_id": format!("b{i}-{n}")}))
                    .send()
                    .await;
                let Ok(r) = r else { return };
                let Ok(body) = r.json::<Value>().await else {
                    return;
                };
                if body["outcome"] == "accepted" {
                    let seq = body["auction"]["seq"].as_u64().unwrap();
                    confirmed.lock().push((seq, amount));
                }
            }
        }));
    }
    // Let bids flow, then kill the server mid-stream without any chance to flush.
    while confirmed.lock().len() < 50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.child.kill().expect("kill -9"); // SIGKILL
    server.child.wait().unwrap();
    for t in tasks {
        let _ = t.await;
    }
    let confirmed = confirmed.lock().clone();
    assert!(confirmed.len() >= 50);
    assert_eq!(
        dir.path().join("gavel.db").exists(),
        MODE == Mode::Embedded,
        "the bids were kept by the backends of this mode"
    );

    let server = start(dir.path(), port, &backends).await;
    let view: Value = http
        .get(format!("{}/api/auctions/{id}", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut history = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let url = match before {
            Some(b) => format!(
                "{}/api/auctions/{id}/bids?limit=200&before_seq={b}",
                server.base
            ),
            None => format!("{}/api/auctions/{id}/bids?limit=200", server.base),
        };
        let page: Value = http.get(url).send().await.unwrap().json().await.unwrap();
        for b in page["bids"].as_array().unwrap() {
            history.push((b["seq"].as_u64().unwrap(), b["amount"].as_i64().unwrap()));
        }
        match page["next_before_seq"].as_u64() {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    // Every confirmed bid is there, exactly once.
    for c in &confirmed {
        assert_eq!(
            history.iter().filter(|h| *h == c).count(),
            1,
            "confirmed bid {c:?} stored once"
        );
    }
    let mut seqs: Vec<u64> = history.iter().map(|h| h.0).collect();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), history.len(), "no duplicate seq");
    // The rebuilt state is the latest stored bid.
    let top = history.iter().max_by_key(|h| h.0).unwrap();
    assert_eq!(view["seq"].as_u64().unwrap(), top.0);
    assert_eq!(view["price"].as_i64().unwrap(), top.1);
    assert_eq!(view["bid_count"].as_u64().unwrap() as usize, history.len());
    // Bidding continues from the rebuilt state.
    let r: Value = http
        .post(format!("{}/api/session", server.base))
        .json(&json!({"name": "After"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = r["token"].as_str().unwrap();
    let res: Value = http
        .post(format!("{}/api/auctions/{id}/bids", server.base))
        .bearer_auth(token)
        .json(&json!({"amount": view["min_bid"], "request_id": "after-restart"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(res["outcome"], "accepted");
    assert_eq!(res["auction"]["seq"].as_u64().unwrap(), top.0 + 1);
    drop(server);
}
