//! The verifiable bid log end to end: receipts on accepted bids, `GET /api/auctions/{id}/log`,
//! the final hash in `closed` and the view, and the `gavel verify` command (the real
//! binary) accepting an honest log and naming the entry of every kind of tampering.

use crate::helpers::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::process::Command;

/// Runs `gavel verify` with `args`; returns (exit success, stdout + stderr). Async: the
/// server under test runs on this test's runtime.
async fn verify(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gavel"))
        .arg("verify")
        .args(args)
        .env_remove("GAVEL_VERIFY_SERVER")
        .output()
        .await
        .expect("running gavel verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn bid(app: &TestApp, token: &str, id: &str, body: Value) -> Value {
    let (status, r) = app
        .post(&format!("/api/auctions/{id}/bids"), Some(token), body)
        .await;
    assert!(status == 200 || status == 409, "{status} {r}");
    r
}

/// The whole log once every entry up to the signed head has been archived (distributed
/// mode: once the drainer has written them).
async fn complete_log(app: &TestApp, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, page) = app.get(&format!("/api/auctions/{id}/log?limit=1000")).await;
        assert_eq!(status, 200, "{page}");
        let n = page["entries"].as_array().unwrap().len() as u64;
        if Some(n) == page["head"]["seq"].as_u64() {
            return page;
        }
        assert!(Instant::now() < deadline, "the log never caught up: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An auction with a few bids of every kind; returns (auction id, receipts of the
/// accepted bids, the maximums that must never be published).
async fn auction_with_bids(app: &TestApp, duration_ms: i64) -> (String, Vec<Value>) {
    let a = app
        .create_auction(json!({"duration_ms": duration_ms, "soft_close": {"window_ms": 500, "extend_ms": 1000}}))
        .await;
    let id = a["id"].as_str().unwrap().to_string();
    let (ann, _) = app.session("Ann").await;
    let (bob, _) = app.session("Bob").await;
    let mut receipts = Vec::new();
    let r = bid(app, &ann, &id, json!({"amount": 10000, "request_id": "a1"})).await;
    assert_eq!(r["outcome"], "accepted", "{r}");
    receipts.push(r["receipt"].clone());
    // A proxy maximum of 43210: published nowhere but in Bob's own answers.
    let r = bid(
        app,
        &bob,
        &id,
        json!({"amount": 43210, "request_id": "b1", "kind": "max"}),
    )
    .await;
    assert_eq!(r["outcome"], "accepted", "{r}");
    assert!(!r["receipt"].to_string().contains("43210"), "{r}");
    receipts.push(r["receipt"].clone());
    // Outbid by Bob's proxy: no receipt, but a log entry (the automatic bid).
    let r = bid(app, &ann, &id, json!({"amount": 20000, "request_id": "a2"})).await;
    assert_eq!(r["outcome"], "outbid", "{r}");
    assert!(r.get("receipt").is_none(), "{r}");
    let r = bid(app, &ann, &id, json!({"amount": 50000, "request_id": "a3"})).await;
    assert_eq!(r["outcome"], "accepted", "{r}");
    receipts.push(r["receipt"].clone());
    // A repeat gets the same receipt, signature included.
    let again = bid(app, &ann, &id, json!({"amount": 50000, "request_id": "a3"})).await;
    assert_eq!(again["receipt"], r["receipt"]);
    (id, receipts)
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

#[tokio::test]
async fn receipts_and_the_log_verify_across_a_restart_and_the_close_publishes_the_final_hash() {
    let app = spawn_app().await;
    let (id, mut receipts) = auction_with_bids(&app, 3000).await;
    // Over the WebSocket too.
    let (cy, _) = app.session("Cy").await;
    let mut ws = app.ws(Some(&cy)).await;
    let r = ws.bid(&id, json!(60000), "c1").await;
    assert_eq!(r["outcome"], "accepted", "{r}");
    receipts.push(r["receipt"].clone());
    for r in &receipts {
        assert_eq!(r["auction_id"], id.as_str());
        assert_eq!(r["signature"].as_str().unwrap().len(), 128, "{r}");
        assert_eq!(r["hash"].as_str().unwrap().len(), 64, "{r}");
    }
    let (_, keys) = app.get("/api/keys").await;
    let key = keys["keys"][0]["public_key"].as_str().unwrap().to_string();
    assert_eq!(keys["keys"][0]["algorithm"], "ed25519");
    assert_eq!(keys["keys"][0]["key_id"], receipts[0]["key_id"]);

    let mut watcher = app.ws(None).await;
    watcher.subscribe(&id).await;
    let closed = watcher.recv_type("closed").await;
    let final_hash = closed["log_hash"]
        .as_str()
        .expect("closed carries the log hash");
    let (_, view) = app.get(&format!("/api/auctions/{id}")).await;
    assert_eq!(view["log_hash"], final_hash);

    let page = complete_log(&app, &id).await;
    let entries = page["entries"].as_array().unwrap();
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"created"));
    assert_eq!(kinds.last(), Some(&"closed"));
    assert!(kinds.contains(&"auto"), "{kinds:?}");
    assert_eq!(entries.last().unwrap()["hash"], final_hash);
    assert_eq!(page["head"]["hash"], final_hash);
    assert!(
        !page.to_string().contains("43210"),
        "a proxy maximum in the log: {page}"
    );
    // Paging: two entries at a time gives the same entries.
    let (_, first) = app.get(&format!("/api/auctions/{id}/log?limit=2")).await;
    assert_eq!(first["entries"].as_array().unwrap().len(), 2);
    assert_eq!(first["next_after_seq"], 2);
    let (_, second) = app
        .get(&format!("/api/auctions/{id}/log?limit=2&after_seq=2"))
        .await;
    assert_eq!(second["entries"][0], entries[2]);
    let (status, bad) = app.get(&format!("/api/auctions/{id}/log?limit=0")).await;
    assert_eq!(
        (status, &bad["error"]["code"]),
        (400, &json!("invalid_limit"))
    );
    let (status, _) = app.get("/api/auctions/nope/log").await;
    assert_eq!(status, 404);

    let dir = tempfile::tempdir().unwrap();
    let receipts_file = dir.path().join("receipts.json");
    write_json(&receipts_file, &Value::Array(receipts.clone()));
    let saved = dir.path().join("log.json");
    let server = format!("http://{}", app.addr);
    let (ok, out) = verify(&[
        "--server",
        &server,
        "--auction",
        &id,
        "--receipt",
        receipts_file.to_str().unwrap(),
        "--save",
        saved.to_str().unwrap(),
    ])
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("signed head"), "{out}");
    assert_eq!(out.matches("receipt: ").count(), 4, "{out}");

    // After a restart: the same log, the same key, the same receipts, and a retried
    // request answered with its first receipt.
    let app = app.restart().await;
    let server = format!("http://{}", app.addr);
    let (ok, out) = verify(&[
        "--server",
        &server,
        "--auction",
        &id,
        "--public-key",
        &key,
        "--receipt",
        receipts_file.to_str().unwrap(),
    ])
    .await;
    assert!(ok, "{out}");
    // The saved file verifies offline with the key alone.
    let (ok, out) = verify(&[
        "--log",
        saved.to_str().unwrap(),
        "--auction",
        &id,
        "--public-key",
        &key,
        "--receipt",
        receipts_file.to_str().unwrap(),
    ])
    .await;
    assert!(ok, "{out}");
    // Without a key the file cannot be checked; with another key it fails.
    let (ok, _) = verify(&["--log", saved.to_str().unwrap(), "--auction", &id]).await;
    assert!(!ok);
    let other_pk = {
        let s = gavel_server::signing::Signer::from_seed([0x11; 32]);
        gavel_core::chain::hex(s.public_key().as_bytes())
    };
    assert_ne!(other_pk, key);
    let (ok, out) = verify(&[
        "--log",
        saved.to_str().unwrap(),
        "--auction",
        &id,
        "--public-key",
        &other_pk,
    ])
    .await;
    assert!(!ok, "{out}");
    assert!(out.contains("FAILED"), "{out}");
}

/// The operator holds the key, so they could rewrite the log without a bid and sign the new
/// head. The bidder's receipt still catches it.
#[tokio::test]
async fn a_receipt_for_a_bid_missing_from_a_rewritten_log_is_reported() {
    if !only_in(
        Mode::Embedded,
        "reads the generated key from the data directory",
    ) {
        return;
    }
    let app = spawn_app().await;
    let (id, receipts) = auction_with_bids(&app, 600_000).await;
    let page = complete_log(&app, &id).await;
    let seed_hex = std::fs::read_to_string(app.config.data_dir.join("signing-key")).unwrap();
    let seed: [u8; 32] = gavel_core::chain::unhex(seed_hex.trim())
        .unwrap()
        .try_into()
        .unwrap();
    let signer = gavel_server::signing::Signer::from_seed(seed);
    let pk = gavel_core::chain::hex(signer.public_key().as_bytes());
    // Drop Bob's accepted bid (receipt 1) and rebuild every later hash and the head.
    let dropped = receipts[1]["seq"].as_u64().unwrap();
    let auction = gavel_core::AuctionId::parse(&id).unwrap();
    let mut prev = gavel_core::chain::genesis(&auction);
    let mut forged = Vec::new();
    for e in page["entries"].as_array().unwrap() {
        let seq = e["seq"].as_u64().unwrap();
        if seq == dropped {
            continue;
        }
        let mut e = e.clone();
        e["seq"] = json!(forged.len() as u64 + 1);
        let mut entry: gavel_core::chain::LogEntry = serde_json::from_value(e.clone()).unwrap();
        entry.seq = forged.len() as u64 + 1;
        prev = gavel_core::chain::link(&prev, &entry);
        e["hash"] = json!(prev.to_hex());
        forged.push(e);
    }
    let head = signer.head(&auction, forged.len() as u64, &prev);
    let forged_page = json!({"auction_id": id, "entries": forged, "head": head});
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("forged.json");
    write_json(&log, &forged_page);
    let bob_receipt = dir.path().join("bob.json");
    write_json(&bob_receipt, &receipts[1]);
    // The forged log alone checks out (it is signed and its hashes link) ...
    let (ok, out) = verify(&[
        "--log",
        log.to_str().unwrap(),
        "--auction",
        &id,
        "--public-key",
        &pk,
    ])
    .await;
    assert!(ok, "{out}");
    // ... but not with Bob's receipt, which names the entry.
    let (ok, out) = verify(&[
        "--log",
        log.to_str().unwrap(),
        "--auction",
        &id,
        "--public-key",
        &pk,
        "--receipt",
        bob_receipt.to_str().unwrap(),
    ])
    .await;
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("FAILED: receipt for seq {dropped}:")),
        "{out}"
    );
    // A receipt whose signed fields were edited does not verify either.
    let mut edited = receipts[1].clone();
    edited["amount"] = json!(99_900);
    write_json(&bob_receipt, &edited);
    let server = format!("http://{}", app.addr);
    let (ok, out) = verify(&[
        "--server",
        &server,
        "--auction",
        &id,
        "--receipt",
        bob_receipt.to_str().unwrap(),
    ])
    .await;
    assert!(!ok, "{out}");
    assert!(out.contains("altered or not issued"), "{out}");
}

/// Edits the archived log in the SQLite file behind the server's back; `gavel verify`
/// names the entry every time, and passes again once the row is put back.
#[tokio::test]
async fn tampering_with_any_archived_log_row_is_named_by_gavel_verify() {
    if !only_in(Mode::Embedded, "edits the SQLite archive file") {
        return;
    }
    let app = spawn_app().await;
    let (id, _) = auction_with_bids(&app, 600_000).await;
    let page = complete_log(&app, &id).await;
    let n = page["entries"].as_array().unwrap().len();
    assert!(n >= 5, "{page}");
    let server = format!("http://{}", app.addr);
    let check = || async { verify(&["--server", &server, "--auction", &id]).await };
    let (ok, out) = check().await;
    assert!(ok, "{out}");

    let db = rusqlite::Connection::open(app.config.data_dir.join("gavel.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let snapshot: Vec<(i64, String, String, i64, String, String)> = db
        .prepare(
            "SELECT seq, kind, entry, at, hash, auction_id FROM log_entries
             WHERE auction_id = ?1 ORDER BY seq",
        )
        .unwrap()
        .query_map([&id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let restore = |db: &rusqlite::Connection| {
        db.execute("DELETE FROM log_entries WHERE auction_id = ?1", [&id])
            .unwrap();
        for (seq, kind, entry, at, hash, auction) in &snapshot {
            db.execute(
                "INSERT INTO log_entries (auction_id, seq, kind, at, entry, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![auction, seq, kind, at, entry, hash],
            )
            .unwrap();
        }
    };
    let cases: [(&str, &str, &str); 4] = [
        (
            "amount",
            "UPDATE log_entries SET entry = json_set(entry, '$.amount', 12345)
             WHERE auction_id = ?1 AND seq = 3",
            "FAILED: entry seq 3: its hash",
        ),
        (
            "order",
            "UPDATE log_entries SET seq = -3 WHERE auction_id = ?1 AND seq = 3;
             UPDATE log_entries SET seq = 3, entry = json_set(entry, '$.seq', 3)
              WHERE auction_id = ?1 AND seq = 4;
             UPDATE log_entries SET seq = 4, entry = json_set(entry, '$.seq', 4)
              WHERE auction_id = ?1 AND seq = -3",
            "FAILED: entry seq 3: its hash",
        ),
        (
            "deletion",
            "DELETE FROM log_entries WHERE auction_id = ?1 AND seq = 3",
            "FAILED: entry seq 3: missing",
        ),
        (
            "insertion",
            "INSERT INTO log_entries (auction_id, seq, kind, at, entry, hash)
             SELECT auction_id, seq + 1000, kind, at, entry, hash FROM log_entries
              WHERE auction_id = ?1 AND seq >= 3;
             DELETE FROM log_entries WHERE auction_id = ?1 AND seq >= 3 AND seq < 1000;
             UPDATE log_entries SET seq = seq - 1000 + 1,
                    entry = json_set(entry, '$.seq', seq - 1000 + 1)
              WHERE auction_id = ?1 AND seq >= 1000;
             INSERT INTO log_entries (auction_id, seq, kind, at, entry, hash)
             SELECT auction_id, 3, kind, at, json_set(entry, '$.seq', 3, '$.amount', 99999), hash
               FROM log_entries WHERE auction_id = ?1 AND seq = 4",
            "FAILED: entry seq 3: its hash",
        ),
    ];
    for (what, sql, expected) in cases {
        let tx = db.unchecked_transaction().unwrap();
        for statement in sql.split(';') {
            tx.execute(statement, [&id]).unwrap();
        }
        tx.commit().unwrap();
        let (ok, out) = check().await;
        assert!(!ok, "{what}: {out}");
        assert!(
            out.contains(expected),
            "{what}: expected {expected:?} in {out}"
        );
        restore(&db);
        let (ok, out) = check().await;
        assert!(ok, "{what} restored: {out}");
    }
    // Appending an entry past the signed head is reported too.
    let last = snapshot.last().unwrap();
    db.execute(
        "INSERT INTO log_entries (auction_id, seq, kind, at, entry, hash)
         VALUES (?1, ?2, ?3, ?4, json_set(?5, '$.seq', ?2), ?6)",
        rusqlite::params![id, last.0 + 1, last.1, last.3, last.2, last.4],
    )
    .unwrap();
    let (ok, out) = check().await;
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("FAILED: entry seq {}:", last.0 + 1)),
        "{out}"
    );
}
