//! A memory engine rebuilt from its archive keeps every committed state and answer, and the
//! old engine is really gone before a new one opens the same file.

use gavel_archive::Archive;
use gavel_core::{BidKind, BidRequest, Money};
use gavel_engine::conformance::{create, max, plain, rid, spec, Harness, T0};
use gavel_engine::memory::{MemoryConfig, MemoryEngine};
use gavel_engine::{BidReply, Clock};
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// A running engine, what resolves once it has stopped, and a weak handle on its archive
/// (gone once nothing holds the archive, i.e. its SQLite connections are closed).
struct Running {
    h: Harness,
    stopped: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    archive: Weak<dyn Archive>,
}

async fn engine_on(dir: &std::path::Path, clock: &Clock) -> Running {
    let archive = gavel_archive::build_sqlite(dir).unwrap();
    let weak = Arc::downgrade(&archive);
    let engine = MemoryEngine::start(archive, clock.clone(), MemoryConfig::default())
        .await
        .unwrap();
    Running {
        stopped: Box::pin(engine.stopped()),
        h: Harness {
            engine: Arc::new(engine),
            clock: clock.clone(),
        },
        archive: weak,
    }
}

impl Running {
    /// Drops every handle and waits until the engine has stopped and let go of its
    /// archive. Only then may another engine open the same file.
    async fn shut_down(self) {
        drop(self.h);
        tokio::time::timeout(Duration::from_secs(5), self.stopped)
            .await
            .expect("the engine stops once its last handle is dropped");
        assert!(
            self.archive.upgrade().is_none(),
            "the stopped engine no longer holds the archive (its SQLite connections are closed)"
        );
    }
}

async fn bid(h: &Harness, id: &gavel_core::AuctionId, r: &str, req: BidRequest) -> BidReply {
    h.engine.place_bid(id, &rid(r), req).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_after_a_restart_get_the_first_answer_even_once_closed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::system();
    clock.freeze_at(T0 + 1);
    let running = engine_on(dir.path(), &clock).await;
    let h = &running.h;
    let mut s = spec();
    s.buy_now = Some(Money::new(50_000).unwrap());
    let bought = create(h, s).await;
    let buy = BidRequest {
        kind: BidKind::BuyNow,
        ..plain("alice", 50_000)
    };
    let first_buy = bid(h, &bought.id, "buy", buy.clone()).await;
    assert_eq!(first_buy.outcome, Ok(()));

    let open = create(h, spec()).await;
    let first_max = bid(h, &open.id, "b1", max("bob", 30_000)).await;
    assert_eq!(first_max.outcome, Ok(()));
    let first_raise = bid(h, &open.id, "b2", max("bob", 40_000)).await;
    assert_eq!(
        first_raise.outcome,
        Ok(()),
        "the leader raises their maximum"
    );
    // The auction moves on after each answer: a repeat must not see that.
    let carol = bid(h, &open.id, "c1", plain("carol", 20_000)).await;
    assert!(carol.outcome.is_err(), "Bob's maximum answers Carol");
    let carol_max = bid(h, &open.id, "c2", max("carol", 60_000)).await;
    assert_eq!(carol_max.outcome, Ok(()), "Carol's maximum takes the lead");
    running.shut_down().await;

    let running = engine_on(dir.path(), &clock).await;
    let h = &running.h;
    assert_eq!(bid(h, &bought.id, "buy", buy).await, first_buy);
    assert_eq!(
        bid(h, &open.id, "b1", max("bob", 30_000)).await,
        first_max,
        "the whole first answer: the auction as it was when Bob's maximum was accepted"
    );
    assert_eq!(
        bid(h, &open.id, "b2", max("bob", 40_000)).await,
        first_raise,
        "an accepted max raise is answered the same after a restart"
    );
    assert_eq!(
        bid(h, &open.id, "c2", max("carol", 60_000)).await,
        carol_max
    );
    let state = h.engine.auction(&open.id).await.unwrap().unwrap().state;
    assert_eq!(
        state.bid_count, carol_max.auction.state.bid_count,
        "the retries placed nothing"
    );
    assert_eq!(
        state.leader_max,
        Some(Money::new(60_000).unwrap()),
        "the proxy maximum survived"
    );
    running.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_engine_is_gone_before_a_new_one_opens_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::system();
    clock.freeze_at(T0 + 1);
    let running = engine_on(dir.path(), &clock).await;
    let a = create(&running.h, spec()).await;
    // Decided but perhaps not yet committed when the handles go: the committer finishes it.
    let engine = running.h.engine.clone();
    let id = a.id.clone();
    let pending = tokio::spawn(async move {
        engine
            .place_bid(&id, &rid("r1"), plain("alice", 10_000))
            .await
    });
    assert_eq!(pending.await.unwrap().unwrap().outcome, Ok(()));
    running.shut_down().await;

    let running = engine_on(dir.path(), &clock).await;
    let stored = running.h.engine.auction(&a.id).await.unwrap().unwrap();
    assert_eq!(stored.state.bid_count, 1);
    running.shut_down().await;
}
