//! The fan-out hub on real engines: the lobby is encoded once and shared (issue 10 item 11,
//! hub part), and a room nobody watches is dropped and unwatched in the engine (item 3).

use gavel_core::{Auction, AuctionId, AuctionSpec, Currency, IncrementPolicy, Money};
use gavel_engine::memory::{MemoryConfig, MemoryEngine};
use gavel_engine::redis::{RedisConfig, RedisEngine};
use gavel_engine::{Clock, Engine};
use gavel_server::fanout::Hub;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn spec(now: i64) -> AuctionSpec {
    AuctionSpec {
        title: "Lot with a long description".into(),
        description: "x".repeat(4_000),
        currency: Currency::parse("USD").unwrap(),
        starting_price: Money::new(100).unwrap(),
        increment: IncrementPolicy::Fixed {
            amount: Money::new(10).unwrap(),
        },
        starts_at: now,
        ends_at: now + 600_000,
        reserve: None,
        buy_now: None,
        soft_close: None,
    }
}

async fn create(engine: &dyn Engine, n: usize) -> Vec<AuctionId> {
    let now = engine.now();
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = AuctionId::parse(format!("h-{}", uuid::Uuid::new_v4().simple())).unwrap();
        engine
            .create_auction(Auction::new_at(id.clone(), spec(now), now).unwrap())
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lobby_is_encoded_once_and_shared_until_something_changes() {
    let dir = tempfile::tempdir().unwrap();
    let archive = gavel_archive::build_sqlite(dir.path()).unwrap();
    let engine: Arc<dyn Engine> = Arc::new(
        MemoryEngine::start(archive.clone(), Clock::system(), MemoryConfig::default())
            .await
            .unwrap(),
    );
    let ids = create(engine.as_ref(), 60).await;
    let hub = Hub::new(engine.clone(), Some(archive));
    let stop = CancellationToken::new();
    tokio::spawn(
        hub.clone()
            .run(engine.take_changes().unwrap(), stop.clone()),
    );
    tokio::time::sleep(Duration::from_millis(100)).await; // the creations reach the hub

    let mut lobbies = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let hub = hub.clone();
        tasks.spawn(async move { hub.lobby().await.unwrap().0 });
    }
    while let Some(lobby) = tasks.join_next().await {
        lobbies.push(lobby.unwrap());
    }
    let first = lobbies[0].as_str();
    assert!(first.len() > 60 * 4_000, "the lobby holds every auction");
    assert!(
        lobbies
            .iter()
            .all(|l| l.as_str().as_ptr() == first.as_ptr()),
        "200 subscribers share one encoded lobby"
    );

    // A change makes a new one, shared again.
    let bidder = gavel_core::Bidder {
        id: gavel_core::BidderId::parse("u-1").unwrap(),
        name: "One".into(),
    };
    let reply = engine
        .place_bid(
            &ids[0],
            &gavel_core::RequestId::parse("r1").unwrap(),
            gavel_core::BidRequest {
                bidder,
                amount: Money::new(100).unwrap(),
                kind: gavel_core::BidKind::Plain,
                expected_seq: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(reply.outcome, Ok(()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (after, _) = hub.lobby().await.unwrap();
    assert_ne!(
        after.as_str().as_ptr(),
        first.as_ptr(),
        "rebuilt after a change"
    );
    assert!(after.as_str().contains("\"bid_count\":1"));
    let (again, _) = hub.lobby().await.unwrap();
    assert_eq!(again.as_str().as_ptr(), after.as_str().as_ptr());
    stop.cancel();
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_nobody_watches_goes_and_the_engine_stops_following_it() {
    let prefix = gavel_engine::conformance::redis_test_prefix(&redis_url(), "ghub").await;
    let engine: Arc<dyn Engine> = Arc::new(
        RedisEngine::connect(RedisConfig::new(redis_url(), prefix))
            .await
            .unwrap(),
    );
    let ids = create(engine.as_ref(), 3).await;
    let hub = Hub::with_room_idle(engine.clone(), None, Duration::from_millis(200));
    let watched = || engine.stats().watched_auctions;
    let (a, _, _) = hub.subscribe(&ids[0], None).await.unwrap();
    let (b, _, _) = hub.subscribe(&ids[1], None).await.unwrap();
    let (b2, _, _) = hub.subscribe(&ids[1], None).await.unwrap();
    assert_eq!((hub.rooms(), watched()), (2, Some(2)));
    assert!(hub
        .subscribe(&AuctionId::parse("nope").unwrap(), None)
        .await
        .is_err());
    assert_eq!(hub.rooms(), 2, "no room for an unknown auction");

    drop(a);
    drop(b);
    hub.sweep();
    assert_eq!(
        hub.rooms(),
        2,
        "kept while idle for less than the idle time"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    hub.sweep();
    assert_eq!(
        (hub.rooms(), watched()),
        (1, Some(1)),
        "the unwatched room went, and the engine no longer follows it; the one still watched stays"
    );
    drop(b2);
    tokio::time::sleep(Duration::from_millis(250)).await;
    hub.sweep();
    assert_eq!((hub.rooms(), watched()), (0, Some(0)));
}
