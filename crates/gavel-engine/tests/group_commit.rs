//! Group commit: concurrent bids share archive transactions, and nothing is released early.

use gavel_engine::conformance::{create, plain, rid, spec, Harness, T0};
use gavel_engine::memory::{MemoryConfig, MemoryEngine};
use gavel_engine::Clock;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_bids_are_committed_in_far_fewer_transactions_than_bids() {
    let dir = tempfile::tempdir().unwrap();
    let archive = gavel_archive::build_sqlite(dir.path()).unwrap();
    let clock = Clock::system();
    clock.freeze_at(T0 + 1);
    let engine = MemoryEngine::start(
        archive.clone(),
        clock.clone(),
        MemoryConfig {
            batch_window: Duration::from_millis(20),
            ..MemoryConfig::default()
        },
    )
    .await
    .unwrap();
    let h = Harness {
        engine: Arc::new(engine),
        clock,
    };
    let mut ids = Vec::new();
    for _ in 0..200 {
        ids.push(create(&h, spec()).await.id);
    }
    let before = archive.stats();
    let mut tasks = Vec::new();
    for id in ids {
        let e = h.engine.clone();
        tasks.push(tokio::spawn(async move {
            e.place_bid(&id, &rid("first"), plain("alice", 10_000))
                .await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().outcome, Ok(()));
    }
    let after = archive.stats();
    let bids = after.bids - before.bids;
    let batches = after.batches - before.batches;
    assert_eq!(bids, 200, "every accepted bid is archived");
    assert!(
        batches * 4 <= bids,
        "200 concurrent bids took {batches} transactions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reply_is_released_only_after_its_batch_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let archive = gavel_archive::build_sqlite(dir.path()).unwrap();
    let clock = Clock::system();
    clock.freeze_at(T0 + 1);
    let engine = MemoryEngine::start(
        archive.clone(),
        clock.clone(),
        MemoryConfig {
            batch_window: Duration::from_millis(300),
            batch_max: 1000,
            ..MemoryConfig::default()
        },
    )
    .await
    .unwrap();
    let h = Harness {
        engine: Arc::new(engine),
        clock,
    };
    let a = create(&h, spec()).await;
    let started = std::time::Instant::now();
    let reply = h
        .engine
        .place_bid(&a.id, &rid("r1"), plain("alice", 10_000))
        .await
        .unwrap();
    assert_eq!(reply.outcome, Ok(()));
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "the reply waited for the batch window to close and commit"
    );
    // By the time the bidder hears "accepted", the archive has it.
    let stored = archive.bids(&a.id, None, 10).await.unwrap();
    assert_eq!(stored.len(), 1);
}
