//! The change logs as the drainer reads them, on the real local Redis (`REDIS_URL`,
//! default 127.0.0.1:6379): how an entry that cannot be decoded is typed (damaged → dead
//! letter; Redis could not give what decoding needs → try again), the move to the
//! dead-letter stream, and the operator's replay command from `docs/distributed.md`.
//! Each test has its own key prefix.

use gavel_archive::ArchivedChange;
use gavel_core::{Auction, AuctionId, BidKind, BidRequest, Bidder, BidderId, Money, RequestId};
use gavel_engine::conformance::{spec, T0};
use gavel_engine::redis::log::DecodeError;
use gavel_engine::redis::{ChangeLog, LogEntry, RedisConfig, RedisEngine};
use gavel_engine::{Clock, Engine, EngineError};
use redis::AsyncCommands;
use std::collections::HashMap;
use std::time::Duration;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// An engine on a fresh prefix, deciding at `T0 + 1` (the fixture auction is open).
async fn engine_on(prefix: &str) -> RedisEngine {
    let clock = Clock::system();
    clock.freeze_at(T0 + 1);
    let mut config = RedisConfig::new(redis_url(), prefix);
    config.test_clock = Some(clock);
    RedisEngine::connect(config)
        .await
        .expect("Redis is reachable")
}

/// A connection to REDIS_URL's server, or its cluster when it is a cluster node.
async fn conn() -> gavel_engine::redis::conn::Conn {
    gavel_engine::redis::conn::connect(&redis_url())
        .await
        .unwrap()
}

async fn create(engine: &RedisEngine, name: &str) -> AuctionId {
    let id = AuctionId::parse(format!("{name}-{}", uuid::Uuid::new_v4().simple())).unwrap();
    engine
        .create_auction(Auction::new(id.clone(), spec()).unwrap())
        .await
        .unwrap();
    id
}

async fn bid(engine: &RedisEngine, id: &AuctionId, who: &str, amount: i64, request: &str) {
    let reply = engine
        .place_bid(
            id,
            &RequestId::parse(request).unwrap(),
            BidRequest {
                bidder: Bidder {
                    id: BidderId::parse(format!("u-{who}")).unwrap(),
                    name: who.into(),
                },
                amount: Money::new(amount).unwrap(),
                kind: BidKind::Plain,
                expected_seq: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(reply.outcome, Ok(()));
}

/// Every entry of `ids`' logs not yet delivered to the group, by entry id.
async fn read_all(log: &mut ChangeLog, ids: &[AuctionId]) -> Vec<LogEntry> {
    log.read_new(ids, 1000, Duration::from_millis(10))
        .await
        .unwrap()
}

fn same_change(a: &ArchivedChange, b: &ArchivedChange) {
    assert_eq!(a.auction, b.auction);
    assert_eq!(a.event, b.event);
    assert_eq!(a.bid_id, b.bid_id);
    assert_eq!(a.request_id, b.request_id);
}

/// The stream entry `id` of `key` as a field map (empty if absent).
async fn entry_fields(
    c: &mut gavel_engine::redis::conn::Conn,
    key: &str,
    id: &str,
) -> HashMap<String, String> {
    let r: redis::streams::StreamRangeReply = c.xrange(key, id, id).await.unwrap();
    r.ids
        .first()
        .map(|e| {
            e.map
                .iter()
                .map(|(k, v)| (k.clone(), redis::from_redis_value_ref(v).unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

async fn pending(c: &mut gavel_engine::redis::conn::Conn, log: &str) -> i64 {
    let r: redis::streams::StreamPendingReply = c.xpending(log, "drainers").await.unwrap();
    r.count() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_entries_are_undecodable_and_an_unreadable_spec_is_transient_until_fixed() {
    let prefix = gavel_engine::conformance::redis_test_prefix(&redis_url(), "gdead").await;
    let creator = engine_on(&prefix).await;
    let a = create(&creator, "a").await;
    let b = create(&creator, "b").await;
    bid(&creator, &b, "bo", 10_000, "b1").await;
    let keys = creator.keys().clone();
    let mut c = conn().await;
    // A valid change of auction `b`, to slip into `a`'s log.
    let b_entries: redis::streams::StreamRangeReply = c.xrange_all(keys.log(&b)).await.unwrap();
    let b_change: String = redis::from_redis_value_ref(&b_entries.ids[1].map["c"]).unwrap();
    let no_c: String = c.xadd(keys.log(&a), "*", &[("x", "1")]).await.unwrap();
    let not_json: String = c
        .xadd(keys.log(&a), "*", &[("c", "not json")])
        .await
        .unwrap();
    let foreign: String = c
        .xadd(keys.log(&a), "*", &[("c", b_change.as_str())])
        .await
        .unwrap();
    let not_a_change: String = c
        .xadd(keys.log(&a), "*", &[("c", r#"{"id":"x"}"#)])
        .await
        .unwrap();

    // A reader with an empty spec cache (another node), while `b`'s hash is the wrong type.
    let reader = engine_on(&prefix).await;
    let mut log = reader.change_log("reader").await.unwrap();
    let backup = format!("{}-backup", keys.hash(&b));
    let _: () = c.rename(keys.hash(&b), &backup).await.unwrap();
    let _: () = c.set(keys.hash(&b), "not a hash").await.unwrap();

    let got = read_all(&mut log, &[a.clone(), b.clone()]).await;
    // Entry ids are per stream: two logs can hold the same id (same millisecond).
    let by_id: HashMap<&str, &LogEntry> = got
        .iter()
        .filter(|e| e.auction == a)
        .map(|e| (e.entry_id.as_str(), e))
        .collect();
    assert_eq!(got.len(), 7, "a: created + 4 injected; b: created + bid");
    for damaged in [&no_c, &not_json, &foreign, &not_a_change] {
        match &by_id[damaged.as_str()].change {
            Err(DecodeError::Undecodable(_)) => {}
            other => panic!("entry {damaged} should be undecodable, got {other:?}"),
        }
    }
    let reason = |id: &str| match &by_id[id].change {
        Err(DecodeError::Undecodable(r)) => r.clone(),
        _ => unreachable!(),
    };
    assert_eq!(reason(&no_c), "no change field `c`");
    assert!(
        reason(&foreign).contains(&format!("a change of auction {b} in the log of {a}")),
        "{}",
        reason(&foreign)
    );
    let b_ids: Vec<&LogEntry> = got.iter().filter(|e| e.auction == b).collect();
    assert_eq!(b_ids.len(), 2);
    for e in &b_ids {
        match &e.change {
            Err(DecodeError::Transient(EngineError::Internal(cause))) => {
                assert!(cause.to_string().contains("WRONGTYPE"), "{cause}")
            }
            other => panic!("a WRONGTYPE spec read is transient, got {other:?}"),
        }
    }
    let a_created = got.iter().find(|e| e.auction == a).unwrap();
    assert!(
        a_created.change.is_ok(),
        "a's creation decodes: {a_created:?}"
    );

    // The spec missing altogether, then present but not JSON: still transient.
    let _: () = c.del(keys.hash(&b)).await.unwrap();
    let again = log
        .own_pending(std::slice::from_ref(&b), 100)
        .await
        .unwrap();
    assert_eq!(again.len(), 2, "b's entries are still pending");
    for e in &again {
        match &e.change {
            Err(DecodeError::Transient(e)) => {
                assert!(e.to_string().contains("missing"), "{e}")
            }
            other => panic!("a missing spec is transient, got {other:?}"),
        }
    }
    let _: () = c.rename(&backup, keys.hash(&b)).await.unwrap();
    let spec_json: String = c.hget(keys.hash(&b), "spec").await.unwrap();
    let _: () = c.hset(keys.hash(&b), "spec", "{").await.unwrap();
    for e in log
        .own_pending(std::slice::from_ref(&b), 100)
        .await
        .unwrap()
    {
        assert!(
            matches!(e.change, Err(DecodeError::Transient(_))),
            "an unparsable spec is transient: {:?}",
            e.change
        );
    }

    // Fixed: the same pending entries now decode, the bid with its id and request.
    let _: () = c.hset(keys.hash(&b), "spec", spec_json).await.unwrap();
    let fixed = log
        .own_pending(std::slice::from_ref(&b), 100)
        .await
        .unwrap();
    assert_eq!(fixed.len(), 2);
    let changes: Vec<&ArchivedChange> = fixed.iter().map(|e| e.change.as_ref().unwrap()).collect();
    assert_eq!(changes[1].auction.state.seq, 2);
    assert_eq!(
        changes[1].request_id.as_ref().map(|r| r.as_str()),
        Some("b1")
    );
    assert!(changes[1].bid_id.is_some());
    assert_eq!(
        pending(&mut c, &keys.log(&b)).await,
        2,
        "nothing acknowledged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_moved_whole_once_and_the_documented_replay_puts_it_back() {
    let prefix = gavel_engine::conformance::redis_test_prefix(&redis_url(), "gdead").await;
    let engine = engine_on(&prefix).await;
    let id = create(&engine, "d").await;
    bid(&engine, &id, "al", 10_000, "r1").await;
    let keys = engine.keys().clone();
    let mut c = conn().await;
    let mut log = engine.change_log("node-x").await.unwrap();
    let got = read_all(&mut log, std::slice::from_ref(&id)).await;
    assert_eq!(got.len(), 2);
    let bid_entry = got[1].clone();
    let original = entry_fields(&mut c, &keys.log(&id), &bid_entry.entry_id).await;

    // As if this version could not read it: moved once, never twice.
    assert!(log
        .dead_letter(&bid_entry, "test: unreadable")
        .await
        .unwrap());
    assert!(
        !log.dead_letter(&bid_entry, "test: unreadable")
            .await
            .unwrap(),
        "an entry no longer pending is not moved again"
    );
    assert_eq!(
        pending(&mut c, &keys.log(&id)).await,
        1,
        "only the creation"
    );
    assert!(
        entry_fields(&mut c, &keys.log(&id), &bid_entry.entry_id)
            .await
            .is_empty(),
        "gone from the log"
    );
    let dead: redis::streams::StreamRangeReply = c.xrange_all(keys.dead(&id)).await.unwrap();
    assert_eq!(dead.ids.len(), 1);
    let fields = entry_fields(&mut c, &keys.dead(&id), &dead.ids[0].id).await;
    let at: i64 = fields["dead.at"].parse().unwrap();
    assert!((at - gavel_engine::clock::system_now()).abs() < 60_000);
    let mut want = original.clone();
    want.insert("dead.entry".into(), bid_entry.entry_id.clone());
    want.insert("dead.reason".into(), "test: unreadable".into());
    want.insert("dead.consumer".into(), "node-x".into());
    want.insert("dead.at".into(), at.to_string());
    assert_eq!(fields, want, "the original fields and why");
    assert_eq!(log.dead_lettered().await.unwrap(), vec![id.clone()]);
    let score: Option<i64> = c.zscore(keys.dead_index(), id.as_str()).await.unwrap();
    assert!(score.is_some());

    // The operator's replay, exactly as docs/distributed.md writes it.
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/redis/scripts/replay_dead.lua"
    );
    let out = std::process::Command::new("redis-cli")
        .args(["-c", "-u", &redis_url(), "--eval", script])
        .args([keys.dead(&id), keys.log(&id)])
        .arg(",")
        .output()
        .expect("redis-cli runs");
    assert!(out.status.success(), "{out:?}");
    // (redis-cli prints "(integer) 1" on a terminal, "1" into a pipe.)
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1",
        "one replayed"
    );
    let dead_left: i64 = c.xlen(keys.dead(&id)).await.unwrap();
    assert_eq!(dead_left, 0);
    let back = read_all(&mut log, std::slice::from_ref(&id)).await;
    assert_eq!(back.len(), 1, "the replayed entry is new to the group");
    same_change(
        back[0].change.as_ref().unwrap(),
        bid_entry.change.as_ref().unwrap(),
    );
    let replayed = entry_fields(&mut c, &keys.log(&id), &back[0].entry_id).await;
    assert_eq!(replayed, original, "the original fields, nothing else");
}
