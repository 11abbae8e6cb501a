//! A closed auction's keys leave Redis after `closed_retention`, only once PostgreSQL holds
//! all of it, and everything about it is then answered from PostgreSQL exactly as Redis
//! answered (issue 10, item 3; the Redis twin of gavel-engine's `tests/retention.rs`).
//!
//! The real local Redis (`REDIS_URL`) and PostgreSQL (`DATABASE_URL`), a key prefix and
//! schema of its own (removed at the end), the engine with a frozen test clock; the test
//! drains the change logs itself through the same `ChangeLog` the drainer uses, so it
//! decides exactly what PostgreSQL holds at each step.

use gavel_archive::{Archive, ArchivedChange};
use gavel_core::{AuctionId, BidRequest, Rejection};
use gavel_engine::conformance::{create, max, plain, rid, spec, Harness, T0};
use gavel_engine::redis::{RedisConfig, RedisEngine};
use gavel_engine::{AdminAction, BidReply, Clock, Engine, EngineError};
use redis::AsyncCommands;
use std::sync::Arc;
use std::time::{Duration, Instant};

const RETENTION: Duration = Duration::from_secs(3600);

#[path = "common/isolation.rs"]
mod isolation;
use isolation::{database_url, redis_url, Isolation};

async fn engine(d: &Isolation, archive: &Arc<dyn Archive>, clock: &Clock) -> RedisEngine {
    let mut config = RedisConfig::new(redis_url(), d.prefix.clone());
    config.test_clock = Some(clock.clone());
    config.closed_retention = RETENTION;
    RedisEngine::connect_with_archive(config, archive.clone())
        .await
        .expect("Redis is reachable")
}

async fn conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Keys under the prefix that belong to `id` (its hash tag).
async fn keys_of(prefix: &str, id: &AuctionId) -> Vec<String> {
    let mut c = conn().await;
    let mut keys: Vec<String> = c.keys(format!("{prefix}:{{{id}}}:*")).await.unwrap();
    keys.sort();
    keys
}

/// Moves every change-log entry into the archive, as the drainer does (except the
/// auctions in `skip`, whose entries stay pending). Damaged entries are dead-lettered.
async fn drain(engine: &RedisEngine, archive: &Arc<dyn Archive>, skip: &[&AuctionId]) {
    let mut log = engine.change_log("retention-test").await.unwrap();
    let ids: Vec<AuctionId> = log
        .active()
        .await
        .unwrap()
        .into_iter()
        .filter(|id| !skip.contains(&id))
        .collect();
    let mut entries = log.own_pending(&ids, 10_000).await.unwrap();
    entries.extend(
        log.read_new(&ids, 10_000, Duration::from_millis(10))
            .await
            .unwrap(),
    );
    let mut good = Vec::new();
    for e in entries {
        match &e.change {
            Ok(_) => good.push(e),
            Err(err) => {
                assert!(log.dead_letter(&e, &err.to_string()).await.unwrap());
            }
        }
    }
    let changes: Vec<ArchivedChange> = good.iter().filter_map(|e| e.change.clone().ok()).collect();
    archive.record_batch(&changes).await.unwrap();
    log.ack(&good).await.unwrap();
}

/// Runs `advance` (which starts retirement in a task of its own, at most once a second)
/// until `done` holds, or 10 s.
async fn advance_until<F, Fut>(h: &Harness, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        h.engine.advance().await.unwrap();
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Everything a client can ask about one closed auction.
#[derive(Debug, PartialEq)]
struct Answers {
    view: gavel_core::Auction,
    recent: Vec<gavel_core::BidEntry>,
    retries: Vec<BidReply>,
    replays: Vec<Option<BidReply>>,
    new_bid: BidReply,
    admin: Result<gavel_core::Auction, Rejection>,
}

async fn ask(h: &Harness, id: &AuctionId, accepted: &[(&str, BidRequest)]) -> Answers {
    let e = &h.engine;
    let mut retries = Vec::new();
    let mut replays = Vec::new();
    for (r, req) in accepted {
        replays.push(e.replay(id, &req.bidder.id, &rid(r)).await.unwrap());
        retries.push(e.place_bid(id, &rid(r), req.clone()).await.unwrap());
    }
    Answers {
        replays,
        view: e.auction(id).await.unwrap().expect("still readable"),
        recent: e.recent_bids(id, 100).await.unwrap(),
        retries,
        new_bid: e
            .place_bid(id, &rid("late"), plain("dave", 90_000))
            .await
            .unwrap(),
        admin: e
            .admin_close(id, AdminAction::Cancel, "admin-1")
            .await
            .unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_auction_leaves_redis_once_archived_and_answers_the_same() {
    let d = Isolation::for_family("gretain").await;
    let archive = gavel_archive::build_postgres(&database_url(), Some(&d.schema))
        .await
        .expect("PostgreSQL is reachable");
    let clock = Clock::system();
    clock.freeze_at(T0 + 1);
    let node = engine(&d, &archive, &clock).await;
    let h = Harness {
        engine: Arc::new(node.clone()),
        clock: clock.clone(),
    };
    // A second node that has the auction in its own copy when it leaves Redis.
    let other_node = engine(&d, &archive, &clock).await;

    let a = create(&h, spec()).await;
    let undrained = create(&h, spec()).await;
    let damaged = create(&h, spec()).await;
    let mut long = spec();
    long.ends_at = T0 + 10 * RETENTION.as_millis() as i64;
    let open = create(&h, long).await;
    let accepted = [
        ("a1", plain("alice", 10_000)),
        ("b1", max("bob", 30_000)),
        ("b2", max("bob", 40_000)),
        ("c1", plain("carol", 41_000)),
    ];
    let mut first = Vec::new();
    for (r, req) in &accepted {
        let reply = h
            .engine
            .place_bid(&a.id, &rid(r), req.clone())
            .await
            .unwrap();
        assert_eq!(reply.outcome, Ok(()), "{r}");
        first.push(reply);
    }
    for id in [&undrained.id, &damaged.id] {
        let r = h
            .engine
            .place_bid(id, &rid("x1"), plain("erin", 10_000))
            .await
            .unwrap();
        assert_eq!(r.outcome, Ok(()));
    }
    // A damaged entry in one log: the drainer dead-letters it.
    let _: String = conn()
        .await
        .xadd(node.keys().log(&damaged.id), "*", &[("c", "{not a change")])
        .await
        .unwrap();
    h.clock.freeze_at(T0 + 60_000);
    h.engine.advance().await.unwrap();
    assert!(other_node.auction(&a.id).await.unwrap().is_some());
    let while_in_redis = ask(&h, &a.id, &accepted).await;
    assert_eq!(
        while_in_redis.retries, first,
        "retries get their first answers"
    );
    assert_eq!(
        while_in_redis.replays,
        first.iter().cloned().map(Some).collect::<Vec<_>>()
    );
    assert_eq!(while_in_redis.new_bid.outcome, Err(Rejection::Closed));
    assert_eq!(while_in_redis.admin, Err(Rejection::Closed));
    assert_eq!(while_in_redis.recent.len(), 3);
    let a_keys = keys_of(&d.prefix, &a.id).await;
    assert!(
        a_keys.iter().any(|k| k.contains(":req:")),
        "request records exist: {a_keys:?}"
    );

    drain(&node, &archive, &[&undrained.id]).await;
    // As if the follow-up of its last acknowledgement had failed: still listed as active,
    // not scheduled. The drainer's claim round settles it.
    let mut c = conn().await;
    let scheduled: Option<f64> = c.zscore(node.keys().retire(), a.id.as_str()).await.unwrap();
    assert_eq!(
        scheduled.map(|s| s as i64),
        Some(T0 + 60_000 + RETENTION.as_millis() as i64),
        "drained whole: scheduled at closed_at + retention"
    );
    let _: () = c.zrem(node.keys().retire(), a.id.as_str()).await.unwrap();
    let _: () = c
        .zadd(node.keys().active(), a.id.as_str(), T0)
        .await
        .unwrap();
    let log = node.change_log("retention-test").await.unwrap();
    log.settle(&[a.id.clone(), open.id.clone(), undrained.id.clone()])
        .await
        .unwrap();
    let scheduled: Option<f64> = c.zscore(node.keys().retire(), a.id.as_str()).await.unwrap();
    assert!(scheduled.is_some(), "settled: scheduled again");
    let active: Option<f64> = c.zscore(node.keys().active(), a.id.as_str()).await.unwrap();
    assert_eq!(active, None, "and no longer active");
    for id in [&open.id, &undrained.id] {
        let s: Option<f64> = c.zscore(node.keys().retire(), id.as_str()).await.unwrap();
        assert_eq!(s, None, "an open or undrained auction is not scheduled");
    }
    // The undrained auction is scheduled as if it were drained (an index entry written by
    // mistake, or by a node that was wrong): retirement must still refuse, since PostgreSQL
    // does not hold its close.
    let _: () = conn()
        .await
        .zadd(node.keys().retire(), undrained.id.as_str(), T0)
        .await
        .unwrap();
    let _: () = conn()
        .await
        .zadd(node.keys().retire(), damaged.id.as_str(), T0)
        .await
        .unwrap();

    // Just before the retention ends everything stays.
    let end = T0 + 60_000 + RETENTION.as_millis() as i64;
    h.clock.freeze_at(end - 1);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    h.engine.advance().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        keys_of(&d.prefix, &a.id).await,
        a_keys,
        "kept for the whole retention period"
    );

    // Then the archived one goes, with every key under its tag; the others stay.
    h.clock.freeze_at(end);
    let gone = advance_until(&h, || async { keys_of(&d.prefix, &a.id).await.is_empty() }).await;
    assert!(gone, "left Redis: {:?}", keys_of(&d.prefix, &a.id).await);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    h.engine.advance().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        keys_of(&d.prefix, &undrained.id)
            .await
            .iter()
            .any(|k| k.ends_with(":a")),
        "an auction PostgreSQL does not hold stays in Redis"
    );
    assert!(
        keys_of(&d.prefix, &damaged.id)
            .await
            .iter()
            .any(|k| k.ends_with(":dead")),
        "an auction with dead letters stays in Redis"
    );
    assert!(keys_of(&d.prefix, &damaged.id)
        .await
        .iter()
        .any(|k| k.ends_with(":a")));
    for index in [
        node.keys().auctions(),
        node.keys().live(),
        node.keys().deadlines(),
        node.keys().retire(),
        node.keys().active(),
    ] {
        let score: Option<f64> = c.zscore(&index, a.id.as_str()).await.unwrap();
        assert_eq!(score, None, "{index} forgot it");
    }
    assert!(h.engine.auction(&open.id).await.unwrap().is_some());

    // Answered from PostgreSQL exactly as from Redis, on this node and on one that still
    // had its own copy; a late commit writes nothing back.
    assert_eq!(ask(&h, &a.id, &accepted).await, while_in_redis);
    let other = Harness {
        engine: Arc::new(other_node.clone()),
        clock: clock.clone(),
    };
    assert_eq!(ask(&other, &a.id, &accepted).await, while_in_redis);
    assert!(
        keys_of(&d.prefix, &a.id).await.is_empty(),
        "late bids, retries and admin actions recreate nothing"
    );
    h.engine.watch(&a.id).await.expect("still watchable");
    assert!(h
        .engine
        .list_live(None, 100)
        .await
        .unwrap()
        .iter()
        .all(|x| x.id != a.id));
    assert!(matches!(
        h.engine
            .create_auction(gavel_core::Auction::new(a.id.clone(), spec()).unwrap())
            .await,
        Err(EngineError::AlreadyExists(_))
    ));
    let ghost = AuctionId::parse("never-created").unwrap();
    assert!(h.engine.auction(&ghost).await.unwrap().is_none());
    assert!(matches!(
        h.engine
            .place_bid(&ghost, &rid("x"), plain("x", 10_000))
            .await,
        Err(EngineError::NotFound)
    ));
    assert!(matches!(
        h.engine.recent_bids(&ghost, 10).await,
        Err(EngineError::NotFound)
    ));

    // Once drained, the held-back auction goes too (when it is looked at again: an
    // auction that could not go is looked at 10 s later).
    drain(&node, &archive, &[]).await;
    h.clock.freeze_at(end + 20_000);
    let gone = advance_until(&h, || async {
        keys_of(&d.prefix, &undrained.id).await.is_empty()
    })
    .await;
    assert!(gone, "drained, it leaves Redis");
}
