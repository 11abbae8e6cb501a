//! The drainer never acknowledges what it did not archive: a real `gavel` node on the local
//! Redis (`REDIS_URL`, default 127.0.0.1:6379) and PostgreSQL (`DATABASE_URL`, default
//! postgres://postgres@127.0.0.1:5432/test), its change logs damaged or made unreadable by
//! the test. Each test has its own key prefix and schema (removed at the end) and its own
//! node process (so its metrics are its own), and is bounded in time.

use gavel_core::{Auction, AuctionId, AuctionSpec, BidKind, BidRequest, Bidder, BidderId};
use gavel_engine::Engine;
use redis::AsyncCommands;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ADMIN: &str = "drainer-test-admin-token";
const LIMIT: Duration = Duration::from_secs(90);

mod common;
use common::isolation::database_url;
use common::nodes::{Deployment, Node};

async fn deployment() -> Deployment {
    Deployment::new("gdrain", ADMIN).await
}

impl Deployment {
    /// A node (always `n1`: its metrics are its own) draining every 100 ms.
    async fn drainer_node(&self) -> Node {
        self.node("n1", &["--drain-interval-ms", "100"]).await
    }

    /// (amount, bidder id) of every stored bid of `auction`, by seq.
    async fn stored_bids(&self, auction: &str) -> Vec<(i64, String)> {
        let (client, conn) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let rows = client
            .query(
                &format!(
                    "SELECT amount, bidder_id FROM {}.bids WHERE auction_id = $1 ORDER BY seq",
                    self.schema()
                ),
                &[&auction],
            )
            .await
            .unwrap_or_default();
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    }

    /// Waits until PostgreSQL holds `n` bids of `auction`.
    async fn wait_stored(&self, auction: &str, n: usize, within: Duration) -> Vec<(i64, String)> {
        let deadline = Instant::now() + within;
        loop {
            let bids = self.stored_bids(auction).await;
            if bids.len() >= n || Instant::now() > deadline {
                return bids;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Node {
    async fn post(&self, path: &str, token: &str, body: Value) -> Value {
        reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn session(&self, name: &str) -> (String, String) {
        let r: Value = reqwest::Client::new()
            .post(format!("{}/api/session", self.base))
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            r["token"].as_str().unwrap().to_string(),
            r["user"]["id"].as_str().unwrap().to_string(),
        )
    }
}

async fn pending(c: &mut redis::aio::MultiplexedConnection, log: &str) -> usize {
    let r: redis::streams::StreamPendingReply = c.xpending(log, "drainers").await.unwrap();
    r.count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_entry_lands_in_the_dead_letter_stream_and_is_counted_while_the_bids_around_it_are_archived(
) {
    tokio::time::timeout(LIMIT, async {
        let d = deployment().await;
        let node = d.drainer_node().await;
        let created = node
            .post(
                "/api/auctions",
                ADMIN,
                json!({"title": "Lot", "starting_price": 10000, "increment": 1000, "duration_ms": 600000}),
            )
            .await;
        let id = created["id"].as_str().unwrap().to_string();
        let auction = AuctionId::parse(id.as_str()).unwrap();
        let (alice, alice_id) = node.session("Alice").await;
        let (bob, bob_id) = node.session("Bob").await;
        let path = format!("/api/auctions/{id}/bids");
        let r = node.post(&path, &alice, json!({"amount": 10000, "request_id": "a1"})).await;
        assert_eq!(r["outcome"], "accepted", "{r}");

        let keys = gavel_engine::redis::Keys::new(d.prefix()).unwrap();
        let mut c = d.redis().await;
        let not_json: String = c.xadd(keys.log(&auction), "*", &[("c", "{not json")]).await.unwrap();
        let no_change: String = c.xadd(keys.log(&auction), "*", &[("x", "1")]).await.unwrap();
        let r = node.post(&path, &bob, json!({"amount": 11000, "request_id": "b1"})).await;
        assert_eq!(r["outcome"], "accepted", "{r}");

        let stored = d.wait_stored(&id, 2, Duration::from_secs(20)).await;
        assert_eq!(stored, vec![(10000, alice_id), (11000, bob_id)], "both bids archived");
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.xlen::<_, usize>(keys.dead(&auction)).await.unwrap() < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let dead: redis::streams::StreamRangeReply = c.xrange_all(keys.dead(&auction)).await.unwrap();
        let moved: Vec<(String, Option<String>, String)> = dead
            .ids
            .iter()
            .map(|e| {
                let get = |k: &str| e.get::<String>(k);
                (get("dead.entry").unwrap(), get("c"), get("dead.consumer").unwrap())
            })
            .collect();
        assert_eq!(
            moved,
            vec![
                (not_json.clone(), Some("{not json".to_string()), "n1".to_string()),
                (no_change.clone(), None, "n1".to_string()),
            ],
            "both damaged entries, whole, in the dead-letter stream"
        );
        for e in &dead.ids {
            let reason: String = e.get("dead.reason").unwrap();
            assert!(!reason.is_empty());
        }
        let indexed: Vec<String> = c.zrange(keys.dead_index(), 0, -1).await.unwrap();
        assert_eq!(indexed, vec![id.clone()]);
        assert_eq!(pending(&mut c, &keys.log(&auction)).await, 0, "nothing left pending");
        let left: redis::streams::StreamRangeReply = c.xrange_all(keys.log(&auction)).await.unwrap();
        assert!(
            left.ids.iter().all(|e| e.id != not_json && e.id != no_change),
            "the damaged entries left the log"
        );
        assert_eq!(node.count("gavel_drainer_dead_letters_total").await, 2);
        let log = node.log_text();
        assert_eq!(
            log.lines()
                .filter(|l| l.contains("ERROR") && l.contains("dead-letter stream"))
                .count(),
            2,
            "{log}"
        );
        // A node starting later says that dead letters wait.
        drop(node);
        let next = d.drainer_node().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !next.log_text().contains("change-log entries wait in dead-letter streams") {
            assert!(Instant::now() < deadline, "{}", next.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("bounded in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_whose_auction_cannot_be_read_for_a_while_is_retried_and_then_archived() {
    tokio::time::timeout(LIMIT, async {
        let d = deployment().await;
        // Created and bid on before the node starts, so the node has nothing cached.
        let engine = d.engine().await;
        let now = engine.now();
        let spec = AuctionSpec {
            starts_at: now - 1_000,
            ends_at: now + 600_000,
            ..gavel_engine::conformance::spec()
        };
        let auction = AuctionId::parse(format!("retry-{}", uuid::Uuid::new_v4().simple())).unwrap();
        engine
            .create_auction(Auction::new(auction.clone(), spec).unwrap())
            .await
            .unwrap();
        let bidder = Bidder {
            id: BidderId::parse("u-carol").unwrap(),
            name: "Carol".into(),
        };
        let reply = engine
            .place_bid(
                &auction,
                &gavel_core::RequestId::parse("c1").unwrap(),
                BidRequest {
                    bidder,
                    amount: gavel_core::Money::new(10_000).unwrap(),
                    kind: BidKind::Plain,
                    expected_seq: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(reply.outcome, Ok(()));
        drop(engine);

        // The auction's hash becomes a string: every read of its spec fails with WRONGTYPE.
        let keys = gavel_engine::redis::Keys::new(d.prefix()).unwrap();
        let mut c = d.redis().await;
        let backup = format!("{}:backup", d.prefix());
        let _: () = c.rename(keys.hash(&auction), &backup).await.unwrap();
        let _: () = c.set(keys.hash(&auction), "not a hash").await.unwrap();
        let node = d.drainer_node().await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while node.count("gavel_drainer_decode_retries_total").await < 4
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            d.stored_bids(auction.as_str()).await,
            vec![],
            "nothing archived yet"
        );
        assert_eq!(
            pending(&mut c, &keys.log(&auction)).await,
            2,
            "the creation and the bid wait, unacknowledged"
        );
        assert!(
            node.count("gavel_drainer_decode_retries_total").await >= 4,
            "read again and again:\n{}",
            node.log_text()
        );

        // Fixed: the next retry archives the bid, and nothing is dead-lettered.
        let _: () = c.del(keys.hash(&auction)).await.unwrap();
        let _: () = c.rename(&backup, keys.hash(&auction)).await.unwrap();
        let stored = d
            .wait_stored(auction.as_str(), 1, Duration::from_secs(30))
            .await;
        assert_eq!(
            stored,
            vec![(10_000, "u-carol".to_string())],
            "{}",
            node.log_text()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while pending(&mut c, &keys.log(&auction)).await > 0 {
            assert!(Instant::now() < deadline, "entries left pending");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(node.count("gavel_drainer_dead_letters_total").await, 0);
        let dead: usize = c.xlen(keys.dead(&auction)).await.unwrap();
        assert_eq!(dead, 0);
    })
    .await
    .expect("bounded in time");
}
