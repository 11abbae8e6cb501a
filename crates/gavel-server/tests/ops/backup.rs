//! `gavel backup` under load and `gavel restore`: every bid confirmed before the backup
//! started is in the restored archive, which is consistent (each auction's stored state
//! agrees with its stored bids); restores that would destroy data are refused.

use crate::support::{free_port, gavel, run, serve_cmd, start, stderr, stdout, Server};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ADMIN: &str = "backup-test-admin-token";

/// A confirmed bid: (auction, seq) → (amount, when its confirmation arrived).
type Confirmed = Arc<Mutex<BTreeMap<(String, u64), (i64, Instant)>>>;

async fn create_auction(http: &reqwest::Client, base: &str, title: &str) -> String {
    let r = http
        .post(format!("{base}/api/auctions"))
        .bearer_auth(ADMIN)
        .json(
            &json!({"title": title, "starting_price": 100, "increment": 1, "duration_ms": 600_000}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn session(http: &reqwest::Client, base: &str, name: &str) -> String {
    let r: Value = http
        .post(format!("{base}/api/session"))
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["token"].as_str().unwrap().to_string()
}

/// Bids on `auctions` in turn until `stop`, each at the auction's minimum.
async fn bidder(
    base: String,
    name: String,
    auctions: Vec<String>,
    confirmed: Confirmed,
    stop: Arc<AtomicBool>,
) {
    let http = reqwest::Client::new();
    let token = session(&http, &base, &name).await;
    let mut next: BTreeMap<String, i64> = auctions.iter().map(|a| (a.clone(), 100)).collect();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let auction = &auctions[(n as usize) % auctions.len()];
        n += 1;
        let amount = next[auction];
        let Ok(r) = http
            .post(format!("{base}/api/auctions/{auction}/bids"))
            .bearer_auth(&token)
            .json(&json!({"amount": amount, "request_id": format!("{name}-{n}")}))
            .send()
            .await
        else {
            continue;
        };
        let Ok(body) = r.json::<Value>().await else {
            continue;
        };
        if body["outcome"] == "accepted" {
            let seq = body["auction"]["seq"].as_u64().unwrap();
            confirmed
                .lock()
                .unwrap()
                .insert((auction.clone(), seq), (amount, Instant::now()));
        }
        if let Some(min) = body["auction"]["min_bid"].as_i64() {
            next.insert(auction.clone(), min.max(amount));
        }
    }
}

/// Every bid of `auction` in the server's history (newest first, all pages).
async fn history(http: &reqwest::Client, base: &str, auction: &str) -> Vec<Value> {
    let mut bids = Vec::new();
    let mut before = None::<u64>;
    loop {
        let mut url = format!("{base}/api/auctions/{auction}/bids?limit=200");
        if let Some(b) = before {
            url.push_str(&format!("&before_seq={b}"));
        }
        let page: Value = http.get(url).send().await.unwrap().json().await.unwrap();
        bids.extend(page["bids"].as_array().unwrap().iter().cloned());
        match page["next_before_seq"].as_u64() {
            Some(b) => before = Some(b),
            None => return bids,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_under_load_restores_every_bid_confirmed_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let live_dir = dir.path().join("live");
    let port = free_port();
    let server = start(serve_cmd(&live_dir, port, ADMIN), port).await;
    let http = reqwest::Client::new();
    let mut auctions = Vec::new();
    for t in ["Backup lot 1", "Backup lot 2"] {
        auctions.push(create_auction(&http, &server.base, t).await);
    }

    let confirmed: Confirmed = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let bidders: Vec<_> = (0..4)
        .map(|i| {
            tokio::spawn(bidder(
                server.base.clone(),
                format!("bidder{i}"),
                auctions.clone(),
                confirmed.clone(),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The backup, while the bidders keep going.
    let backup_file = dir.path().join("gavel-backup.db");
    let started = Instant::now();
    let before = confirmed.lock().unwrap().len();
    let out = tokio::task::spawn_blocking({
        let (live_dir, backup_file) = (live_dir.clone(), backup_file.clone());
        move || {
            run(gavel()
                .args(["backup", "--data-dir"])
                .arg(&live_dir)
                .arg("--to")
                .arg(&backup_file))
        }
    })
    .await
    .unwrap();
    assert!(out.status.success(), "backup: {}", stderr(&out));
    assert!(stdout(&out).contains("archive schema"), "{}", stdout(&out));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let during_and_after = confirmed.lock().unwrap().len() - before;
    stop.store(true, Ordering::Relaxed);
    for b in bidders {
        b.await.unwrap();
    }
    assert!(
        before >= 20,
        "too little load before the backup: {before} bids"
    );
    assert!(
        during_and_after >= 10,
        "the bidders stalled during the backup: {during_and_after} bids"
    );

    // Refused: restoring into the live server's directory...
    let out = run(gavel()
        .args(["restore", "--force", "--from"])
        .arg(&backup_file)
        .arg("--data-dir")
        .arg(&live_dir));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("running server"), "{}", stderr(&out));
    stop_server(server);
    // ...and, stopped, without --force (it holds auctions)...
    let out = run(gavel()
        .args(["restore", "--from"])
        .arg(&backup_file)
        .arg("--data-dir")
        .arg(&live_dir));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    // ...and a file that is not a Gavel archive.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database at all, just some bytes of text").unwrap();
    let out = run(gavel()
        .args(["restore", "--from"])
        .arg(&junk)
        .arg("--data-dir")
        .arg(dir.path().join("other")));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a Gavel archive"),
        "{}",
        stderr(&out)
    );

    // Restore into a fresh directory and start a server on it.
    let fresh = dir.path().join("restored");
    let out = run(gavel()
        .args(["restore", "--from"])
        .arg(&backup_file)
        .arg("--data-dir")
        .arg(&fresh));
    assert!(out.status.success(), "restore: {}", stderr(&out));
    let port = free_port();
    let restored = start(serve_cmd(&fresh, port, ADMIN), port).await;

    let confirmed = confirmed.lock().unwrap().clone();
    let mut checked = 0;
    for auction in &auctions {
        let bids = history(&http, &restored.base, auction).await;
        let stored: BTreeMap<u64, i64> = bids
            .iter()
            .map(|b| (b["seq"].as_u64().unwrap(), b["amount"].as_i64().unwrap()))
            .collect();
        for ((a, seq), (amount, at)) in &confirmed {
            if a != auction {
                continue;
            }
            if *at < started {
                assert_eq!(
                    stored.get(seq),
                    Some(amount),
                    "{auction}: bid seq {seq} ({amount}) confirmed before the backup is missing"
                );
                checked += 1;
            } else if let Some(s) = stored.get(seq) {
                // A later bid may be in the copy; if it is, it is that bid.
                assert_eq!(s, amount, "{auction}: seq {seq}");
            }
        }
        // Consistent: the stored auction's state is that of its newest stored bid.
        let view: Value = http
            .get(format!("{}/api/auctions/{auction}", restored.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let newest = &bids[0];
        assert_eq!(view["price"], newest["amount"], "{auction}: {view}");
        assert!(view["seq"].as_u64() >= newest["seq"].as_u64(), "{auction}");
        assert_eq!(
            view["bid_count"].as_u64(),
            Some(bids.len() as u64),
            "{auction}"
        );
        // Amounts only rise with seq.
        let amounts: Vec<i64> = stored.values().copied().collect();
        assert!(amounts.windows(2).all(|w| w[0] < w[1]), "{auction}");
    }
    assert_eq!(checked, before_count(&confirmed, started));
    assert!(checked >= 20);
}

fn before_count(confirmed: &BTreeMap<(String, u64), (i64, Instant)>, started: Instant) -> usize {
    confirmed.values().filter(|(_, at)| *at < started).count()
}

fn stop_server(server: Server) {
    server.stop();
}
