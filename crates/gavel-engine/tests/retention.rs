//! A closed auction's hot state leaves the memory engine after `closed_retention`, and
//! everything about it is then answered from the archive, exactly as before (issue 10,
//! item 3).

use gavel_archive::Archive;
use gavel_core::{AuctionId, BidRequest, Rejection};
use gavel_engine::conformance::{create, max, plain, rid, spec, Harness, T0};
use gavel_engine::memory::{MemoryConfig, MemoryEngine};
use gavel_engine::{AdminAction, BidReply, Clock, Engine};
use std::sync::Arc;
use std::time::Duration;

const RETENTION: Duration = Duration::from_secs(3600);

async fn engine_on(archive: Arc<dyn Archive>, clock: &Clock) -> (Harness, MemoryEngine) {
    let engine = MemoryEngine::start(
        archive,
        clock.clone(),
        MemoryConfig {
            closed_retention: RETENTION,
            ..MemoryConfig::default()
        },
    )
    .await
    .unwrap();
    (
        Harness {
            engine: Arc::new(engine.clone()),
            clock: clock.clone(),
        },
        engine,
    )
}

/// Everything a client can ask about one closed auction.
#[derive(Debug, PartialEq)]
struct Answers {
    view: gavel_core::Auction,
    recent: Vec<gavel_core::BidEntry>,
    retries: Vec<BidReply>,
    /// `Engine::replay` of each accepted request (what a rate-limited retry gets).
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

fn hot(engine: &MemoryEngine) -> u64 {
    engine.stats().hot_auctions.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_auction_leaves_memory_after_its_retention_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let archive = gavel_archive::build_sqlite(dir.path()).unwrap();
    let clock = Clock::system();
    clock.freeze_at(T0 + 1);
    let (h, engine) = engine_on(archive.clone(), &clock).await;
    let a = create(&h, spec()).await;
    let mut long = spec();
    long.ends_at = T0 + 10 * RETENTION.as_millis() as i64;
    let other = create(&h, long).await;
    let accepted = [
        ("a1", plain("alice", 10_000)),
        ("b1", max("bob", 30_000)),
        ("b2", max("bob", 40_000)), // a max raise
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
    h.clock.freeze_at(T0 + 60_000);
    h.engine.advance().await.unwrap();
    let while_hot = ask(&h, &a.id, &accepted).await;
    assert_eq!(while_hot.retries, first, "retries get their first answers");
    assert_eq!(
        while_hot.replays,
        first.iter().cloned().map(Some).collect::<Vec<_>>()
    );
    assert_eq!(while_hot.new_bid.outcome, Err(Rejection::Closed));
    assert_eq!(while_hot.admin, Err(Rejection::Closed));
    assert_eq!(
        while_hot.recent.len(),
        3,
        "Alice's bid, Bob's automatic bid, Carol's bid"
    );
    assert_eq!(hot(&engine), 2);

    // Just before the retention ends it stays; then it goes, the open one stays.
    h.clock
        .freeze_at(T0 + 60_000 + RETENTION.as_millis() as i64 - 1);
    h.engine.advance().await.unwrap();
    assert_eq!(hot(&engine), 2, "kept for the whole retention period");
    h.clock
        .freeze_at(T0 + 60_000 + RETENTION.as_millis() as i64);
    h.engine.advance().await.unwrap();
    assert_eq!(hot(&engine), 1, "the closed auction left memory");
    assert!(h.engine.auction(&other.id).await.unwrap().is_some());

    let from_archive = ask(&h, &a.id, &accepted).await;
    assert_eq!(
        from_archive, while_hot,
        "the archive answers exactly as memory did"
    );
    assert!(h
        .engine
        .list_live(None, 100)
        .await
        .unwrap()
        .iter()
        .all(|x| x.id != a.id));
    h.engine.watch(&a.id).await.expect("still watchable");
    let ghost = AuctionId::parse("never-created").unwrap();
    assert!(h.engine.auction(&ghost).await.unwrap().is_none());
    assert!(matches!(
        h.engine
            .place_bid(&ghost, &rid("x"), plain("x", 10_000))
            .await,
        Err(gavel_engine::EngineError::NotFound)
    ));

    // A restart does not bring it back into memory, and answers the same.
    let stopped = engine.stopped();
    drop((h, engine));
    tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .unwrap();
    let (h, engine) = engine_on(archive, &clock).await;
    assert_eq!(hot(&engine), 1, "only the open auction is loaded");
    assert_eq!(ask(&h, &a.id, &accepted).await, while_hot);
}
