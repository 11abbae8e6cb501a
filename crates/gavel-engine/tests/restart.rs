//! A memory engine rebuilt from its archive keeps every committed state and answer.

use gavel_core::{BidKind, BidRequest, Money};
use gavel_engine::conformance::{create, max, plain, rid, spec, Harness, T0};
use gavel_engine::memory::{MemoryConfig, MemoryEngine};
use gavel_engine::Clock;
use std::sync::Arc;

async fn engine_on(dir: &std::path::Path, clock: &Clock) -> Harness {
    let archive = gavel_archive::build_sqlite(dir).unwrap();
    let engine = MemoryEngine::start(archive, clock.clone(), MemoryConfig::default())
        .await
        .unwrap();
    Harness {
        engine: Arc::new(engine),
        clock: clock.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_after_a_restart_get_the_first_answer_even_once_closed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::system();
    clock.freeze_at(T0 + 1);
    let h = engine_on(dir.path(), &clock).await;
    let mut s = spec();
    s.buy_now = Some(Money::new(50_000).unwrap());
    let bought = create(&h, s).await;
    let buy = BidRequest {
        kind: BidKind::BuyNow,
        ..plain("alice", 50_000)
    };
    let first = h
        .engine
        .place_bid(&bought.id, &rid("buy"), buy.clone())
        .await
        .unwrap();
    assert_eq!(first.outcome, Ok(()));
    let open = create(&h, spec()).await;
    let bid = h
        .engine
        .place_bid(&open.id, &rid("b1"), max("bob", 30_000))
        .await
        .unwrap();
    assert_eq!(bid.outcome, Ok(()));
    drop(h);

    let h = engine_on(dir.path(), &clock).await;
    let again = h
        .engine
        .place_bid(&bought.id, &rid("buy"), buy)
        .await
        .unwrap();
    assert_eq!(again.outcome, Ok(()), "the buyer's retry is still accepted");
    assert_eq!(again.auction.state.closing, first.auction.state.closing);
    let again = h
        .engine
        .place_bid(&open.id, &rid("b1"), max("bob", 30_000))
        .await
        .unwrap();
    assert_eq!(again.outcome, Ok(()));
    let state = h.engine.auction(&open.id).await.unwrap().unwrap().state;
    assert_eq!(state.bid_count, 1, "the retry placed nothing");
    assert_eq!(
        state.leader_max,
        Some(Money::new(30_000).unwrap()),
        "the proxy maximum survived"
    );
}
