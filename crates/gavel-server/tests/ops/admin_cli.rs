//! The admin CLI (`gavel auctions …`, `gavel bids export`) run as the real binary against
//! a real server: amounts typed as decimals arrive as exact minor units, tables and JSON
//! show what the server holds, and a wrong token, an unreachable server and bad input each
//! fail with their own exit code and a clear message, changing nothing.

use crate::support::{free_port, gavel, run, serve_cmd, start, stderr, stdout, Isolation, Server};
use serde_json::{json, Value};
use std::process::{Command, Output};
use std::time::Duration;

const ADMIN: &str = "admin-cli-test-admin-token";

/// `gavel <args>` against `server` with the admin token in the environment.
async fn cli(server: &Server, args: &[&str]) -> Output {
    cli_with(server, args, |_| {}).await
}

async fn cli_with(server: &Server, args: &[&str], tweak: impl FnOnce(&mut Command)) -> Output {
    let mut cmd = gavel();
    cmd.args(args)
        .env("GAVEL_SERVER", &server.base)
        .env("GAVEL_ADMIN_TOKEN", ADMIN);
    tweak(&mut cmd);
    tokio::task::spawn_blocking(move || run(&mut cmd))
        .await
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        stderr(out)
    );
    stdout(out)
}

/// Where the server under test keeps its state: the CLI only speaks HTTP, so every test
/// runs against both modes.
#[derive(Clone, Copy)]
enum Mode {
    Embedded,
    Distributed,
}

/// A server (and what it needs kept alive: its data directory, its Redis prefix and
/// PostgreSQL schema, removed when dropped).
async fn server(mode: Mode) -> (Server, (tempfile::TempDir, Option<Isolation>)) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = serve_cmd(dir.path(), port, ADMIN);
    let isolation = match mode {
        Mode::Embedded => None,
        Mode::Distributed => {
            let isolation = Isolation::new().await;
            cmd.args(isolation.serve_args());
            Some(isolation)
        }
    };
    let server = start(cmd, port).await;
    (server, (dir, isolation))
}

async fn api(server: &Server, path: &str) -> Value {
    reqwest::get(format!("{}{path}", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn auctions_are_created_listed_shown_cancelled_and_ended_with_exact_amounts() {
    auctions_are_created_listed_shown_cancelled_and_ended_with_exact_amounts_on(Mode::Embedded)
        .await;
}

#[tokio::test]
async fn auctions_are_created_listed_shown_cancelled_and_ended_with_exact_amounts_distributed() {
    auctions_are_created_listed_shown_cancelled_and_ended_with_exact_amounts_on(Mode::Distributed)
        .await;
}

async fn auctions_are_created_listed_shown_cancelled_and_ended_with_exact_amounts_on(mode: Mode) {
    let (server, _keep) = server(mode).await;
    let out = cli(
        &server,
        &[
            "auctions",
            "create",
            "--id",
            "lot-1",
            "--title",
            "Leica M3",
            "--starting-price",
            "1250.10",
            "--increment",
            "0.05",
            "--reserve",
            "1500",
            "--buy-now",
            "2000.99",
            "--duration",
            "1h",
            "--soft-close-window",
            "2m",
            "--soft-close-extend",
            "1m",
        ],
    )
    .await;
    let text = ok(&out);
    assert!(text.starts_with("created auction lot-1\n"), "{text}");
    assert!(text.contains("starting price  1250.10 USD"), "{text}");
    let a = api(&server, "/api/auctions/lot-1").await;
    assert_eq!(a["starting_price"], 125_010);
    assert_eq!(a["increment"], 5);
    assert_eq!(a["buy_now"], 200_099);
    assert_eq!(a["has_reserve"], true);
    assert_eq!(a["soft_close"]["window_ms"], 120_000);
    assert_eq!(a["soft_close"]["extend_ms"], 60_000);
    let ends = a["ends_at"].as_i64().unwrap() - a["starts_at"].as_i64().unwrap();
    assert_eq!(ends, 3_600_000);

    // A zero-decimal currency, an end time in RFC 3339 (two days ahead, whole seconds),
    // JSON output.
    let end = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap()
        + time::Duration::days(2);
    let end_rfc3339 = end
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let end_ms = end.unix_timestamp() * 1000;
    let out = cli(
        &server,
        &[
            "auctions",
            "create",
            "--json",
            "--id",
            "lot-2",
            "--title",
            "Netsuke",
            "--currency",
            "JPY",
            "--starting-price",
            "15000",
            "--increment",
            "500",
            "--ends-at",
            &end_rfc3339,
        ],
    )
    .await;
    let created: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(created["id"], "lot-2");
    assert_eq!(created["starting_price"], 15_000);
    assert_eq!(created["ends_at"], end_ms);

    // List: a table with both, and JSON with the server's objects.
    let table = ok(&cli(&server, &["auctions", "list"]).await);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID"), "{table}");
    assert!(lines[0].contains("STATUS") && lines[0].contains("TITLE"));
    assert_eq!(lines.len(), 3, "{table}");
    assert!(table.contains("Leica M3") && table.contains("Netsuke"));
    let listed: Value =
        serde_json::from_str(&ok(&cli(&server, &["auctions", "list", "--json"]).await)).unwrap();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"lot-1") && ids.contains(&"lot-2"));
    let closed = ok(&cli(&server, &["auctions", "list", "--status", "closed"]).await);
    assert_eq!(closed, "no auctions\n");
    let limited: Value = serde_json::from_str(&ok(&cli(
        &server,
        &["auctions", "list", "--json", "--limit", "1"],
    )
    .await))
    .unwrap();
    assert_eq!(limited.as_array().unwrap().len(), 1);

    // Show.
    let shown = ok(&cli(&server, &["auctions", "show", "lot-2"]).await);
    assert!(shown.contains("starting price  15000 JPY"), "{shown}");
    let end_shown = end_rfc3339.trim_end_matches('Z').to_string() + ".000Z";
    assert!(
        shown.contains(&format!("ends            {end_shown}")),
        "{shown}"
    );
    let shown: Value =
        serde_json::from_str(&ok(
            &cli(&server, &["auctions", "show", "lot-2", "--json"]).await
        ))
        .unwrap();
    assert_eq!(shown, api(&server, "/api/auctions/lot-2").await);

    // Cancel and end.
    let text = ok(&cli(&server, &["auctions", "cancel", "lot-1"]).await);
    assert!(text.starts_with("cancelled auction lot-1"), "{text}");
    assert_eq!(
        api(&server, "/api/auctions/lot-1").await["closing"]["reason"],
        "cancelled"
    );
    let text = ok(&cli(&server, &["auctions", "end", "lot-2", "--json"]).await);
    let ended: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(ended["closing"]["reason"], "ended_early");
    // Ending it again: the server refuses, exit 1.
    let out = cli(&server, &["auctions", "end", "lot-2"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("closed: the auction has already ended"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn a_wrong_token_an_unreachable_server_and_bad_input_fail_clearly_and_change_nothing() {
    a_wrong_token_an_unreachable_server_and_bad_input_fail_clearly_and_change_nothing_on(
        Mode::Embedded,
    )
    .await;
}

#[tokio::test]
async fn a_wrong_token_an_unreachable_server_and_bad_input_fail_clearly_and_change_nothing_distributed(
) {
    a_wrong_token_an_unreachable_server_and_bad_input_fail_clearly_and_change_nothing_on(
        Mode::Distributed,
    )
    .await;
}

async fn a_wrong_token_an_unreachable_server_and_bad_input_fail_clearly_and_change_nothing_on(
    mode: Mode,
) {
    let (server, _keep) = server(mode).await;
    let create = [
        "auctions",
        "create",
        "--title",
        "T",
        "--starting-price",
        "10",
        "--increment",
        "1",
        "--duration",
        "1h",
    ];
    // Wrong token: exit 3.
    let out = cli_with(&server, &create, |c| {
        c.env("GAVEL_ADMIN_TOKEN", "not-the-admin-token-at-all");
    })
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not accept this admin token"),
        "{}",
        stderr(&out)
    );
    // No token: exit 3, nothing sent.
    let out = cli_with(&server, &create, |c| {
        c.env_remove("GAVEL_ADMIN_TOKEN");
    })
    .await;
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("no admin token"), "{}", stderr(&out));
    // A bidder's token is not an admin's: exit 3.
    let session: Value = reqwest::Client::new()
        .post(format!("{}/api/session", server.base))
        .json(&json!({"name": "Mallory"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bidder_token = session["token"].as_str().unwrap().to_string();
    let out = cli_with(&server, &create, |c| {
        c.env("GAVEL_ADMIN_TOKEN", &bidder_token);
    })
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("not an admin"), "{}", stderr(&out));

    // Unreachable server: exit 4, naming it.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let out = cli(&server, &["auctions", "list", "--server", &dead]).await;
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains(&format!("cannot reach the Gavel server at {dead}")));
    let out = cli_with(&server, &["auctions", "list"], |c| {
        c.env("GAVEL_SERVER", "gavel.example:3000");
    })
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("must be an http:// or https:// URL"));

    // Bad input: exit 2 before anything is sent.
    let bad_inputs: [(&[&str], &str); 9] = [
        (
            &["--starting-price", "12.345"],
            "more decimals than USD has (2)",
        ),
        (&["--starting-price", "1e3"], "is not an amount"),
        (&["--starting-price", "-5"], "is not an amount"),
        (&["--starting-price", "1,000"], "is not an amount"),
        (&["--starting-price", "0"], "must be more than zero"),
        (
            &["--currency", "JPY", "--starting-price", "10.5"],
            "more decimals than JPY has (0)",
        ),
        (&["--currency", "usd"], "three-letter ISO 4217"),
        (&["--duration", "1 hour"], "--duration"),
        (&["--id", "no spaces"], "--id"),
    ];
    for (extra, expected) in bad_inputs {
        let mut args: Vec<&str> = vec!["auctions", "create", "--title", "T", "--increment", "1"];
        if !extra.contains(&"--starting-price") {
            args.extend(["--starting-price", "10"]);
        }
        if !extra.contains(&"--duration") {
            args.extend(["--duration", "1h"]);
        }
        args.extend(extra);
        let out = cli(&server, &args).await;
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{extra:?}: {}",
            stderr(&out)
        );
    }
    let out = cli(&server, &["auctions", "list", "--status", "finished"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("possible values: live, scheduled, open, closed"));
    let out = cli(&server, &["auctions", "show", "no/such"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // Refused by the server's rules (an end in the past): exit 1.
    let out = cli(
        &server,
        &[
            "auctions",
            "create",
            "--title",
            "T",
            "--starting-price",
            "10",
            "--increment",
            "1",
            "--ends-at",
            "2001-01-01T00:00:00Z",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("invalid_auction"), "{}", stderr(&out));
    // Unknown auction: exit 1.
    let out = cli(&server, &["auctions", "cancel", "nope"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not_found"));

    // Nothing was created by any of it.
    let list = api(&server, "/api/auctions").await;
    assert_eq!(list["auctions"].as_array().unwrap().len(), 0, "{list}");
}

#[tokio::test]
async fn bids_export_as_csv_and_json_all_or_a_time_range() {
    bids_export_as_csv_and_json_all_or_a_time_range_on(Mode::Embedded).await;
}

#[tokio::test]
async fn bids_export_as_csv_and_json_all_or_a_time_range_distributed() {
    bids_export_as_csv_and_json_all_or_a_time_range_on(Mode::Distributed).await;
}

async fn bids_export_as_csv_and_json_all_or_a_time_range_on(mode: Mode) {
    let (server, _keep) = server(mode).await;
    ok(&cli(
        &server,
        &[
            "auctions",
            "create",
            "--id",
            "lot-x",
            "--title",
            "Clock",
            "--starting-price",
            "10.00",
            "--increment",
            "0.25",
            "--duration",
            "1h",
        ],
    )
    .await);
    let http = reqwest::Client::new();
    let mut seqs = Vec::new();
    for (i, (name, amount)) in [("Ann", 1000), ("Bob, Jr.", 1025), ("=cmd()", 1050)]
        .into_iter()
        .enumerate()
    {
        let s: Value = http
            .post(format!("{}/api/session", server.base))
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let r: Value = http
            .post(format!("{}/api/auctions/lot-x/bids", server.base))
            .bearer_auth(s["token"].as_str().unwrap())
            .json(&json!({"amount": amount, "request_id": format!("r{i}")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["outcome"], "accepted", "{r}");
        seqs.push(r["auction"]["seq"].as_u64().unwrap());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let history = api(&server, "/api/auctions/lot-x/bids").await;
    let at: Vec<i64> = history["bids"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|b| b["at"].as_i64().unwrap())
        .collect();
    assert_eq!(at.len(), 3);

    // CSV, everything, oldest first; names with commas quoted, formulas defused.
    let csv = ok(&cli(
        &server,
        &["bids", "export", "--auction", "lot-x", "--format", "csv"],
    )
    .await);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "auction_id,seq,time,at_ms,bidder_id,bidder_name,amount_minor,amount,currency,kind"
    );
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[1].contains(",Ann,1000,10.00,USD,bid"), "{}", lines[1]);
    assert!(
        lines[2].contains(",\"Bob, Jr.\",1025,10.25,USD,bid"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].contains(",'=cmd(),1050,10.50,USD,bid"),
        "{}",
        lines[3]
    );
    assert!(lines[1].starts_with(&format!("lot-x,{},", seqs[0])));

    // JSON, a time range: only the middle bid.
    let out = cli(
        &server,
        &[
            "bids",
            "export",
            "--auction",
            "lot-x",
            "--format",
            "json",
            "--since",
            &at[1].to_string(),
            "--until",
            &at[2].to_string(),
        ],
    )
    .await;
    let bids: Value = serde_json::from_str(&ok(&out)).unwrap();
    let bids = bids.as_array().unwrap();
    assert_eq!(bids.len(), 1, "{bids:?}");
    assert_eq!(bids[0]["bidder_name"], "Bob, Jr.");
    assert_eq!(bids[0]["amount_minor"], 1025);
    assert_eq!(bids[0]["amount"], "10.25");
    assert_eq!(bids[0]["at_ms"], at[1]);
    // --since alone: the last two; RFC 3339 accepted.
    let out = cli(
        &server,
        &[
            "bids",
            "export",
            "--auction",
            "lot-x",
            "--format",
            "json",
            "--since",
            &at[1].to_string(),
        ],
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&ok(&out))
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let out = cli(
        &server,
        &[
            "bids",
            "export",
            "--auction",
            "lot-x",
            "--until",
            "2000-01-01T00:00:00Z",
        ],
    )
    .await;
    assert_eq!(ok(&out).lines().count(), 1, "header only");
    // To a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bids.csv");
    let out = cli(
        &server,
        &[
            "bids",
            "export",
            "--auction",
            "lot-x",
            "--output",
            file.to_str().unwrap(),
        ],
    )
    .await;
    assert!(ok(&out).contains("exported 3 bid(s) of auction lot-x"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), csv);
    // Bad range and unknown auction.
    let out = cli(
        &server,
        &[
            "bids",
            "export",
            "--auction",
            "lot-x",
            "--since",
            "2",
            "--until",
            "1",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let out = cli(
        &server,
        &[
            "bids",
            "export",
            "--auction",
            "lot-x",
            "--since",
            "yesterday",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("RFC 3339"));
    let out = cli(&server, &["bids", "export", "--auction", "nope"]).await;
    assert_eq!(out.status.code(), Some(1));
}
