//! The Redis engine when Redis goes away: calls answer `unavailable` (never hang, never
//! guess), and the engine recovers by itself when Redis is back: commands reconnect, the
//! Pub/Sub feed resubscribes and resends what it missed. Redis is cut with a TCP proxy in
//! this process; the machine's Redis itself is never touched.

use gavel_core::{Auction, AuctionId, BidKind, BidRequest, Bidder, BidderId, Money, RequestId};
use gavel_engine::conformance::{spec, T0};
use gavel_engine::cut_proxy::CutProxy;
use gavel_engine::redis::{RedisConfig, RedisEngine};
use gavel_engine::{Clock, Engine, EngineError};
use std::time::{Duration, Instant};

fn redis_addr() -> String {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    url.trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:6379")
        .to_string()
}

fn plain(who: &str, amount: i64) -> BidRequest {
    BidRequest {
        bidder: Bidder {
            id: BidderId::parse(format!("u-{who}")).unwrap(),
            name: who.into(),
        },
        amount: Money::new(amount).unwrap(),
        kind: BidKind::Plain,
        expected_seq: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_unavailable_and_the_engine_recovers_by_itself() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut proxy = CutProxy::start(redis_addr()).await;
        let clock = Clock::system();
        clock.freeze_at(T0 + 1);
        let mut config = RedisConfig::new(
            format!("redis://127.0.0.1:{}", proxy.port),
            format!("gfail-{}", uuid::Uuid::new_v4().simple()),
        );
        config.test_clock = Some(clock.clone());
        config.response_timeout = Duration::from_secs(2);
        let engine = RedisEngine::connect(config).await.unwrap();
        let mut feed = engine.take_changes().unwrap();
        let a = Auction::new(
            AuctionId::parse(format!("f-{}", uuid::Uuid::new_v4().simple())).unwrap(),
            spec(),
        )
        .unwrap();
        engine.create_auction(a.clone()).await.unwrap();
        let r1 = RequestId::parse("r1").unwrap();
        let first = engine.place_bid(&a.id, &r1, plain("ann", 10_000)).await;
        assert_eq!(first.as_ref().unwrap().outcome, Ok(()));

        proxy.down();
        let started = Instant::now();
        let down = engine
            .place_bid(
                &a.id,
                &RequestId::parse("r2").unwrap(),
                plain("bob", 11_000),
            )
            .await;
        // Cut mid-connection, the engine cannot know whether Redis ran the script (a write
        // lost on a broken pipe may have been delivered): either failure is honest, and
        // the retry below with the same request id settles it.
        assert!(
            matches!(
                down,
                Err(EngineError::Unavailable(_) | EngineError::OutcomeUnknown(_))
            ),
            "{down:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "answered promptly"
        );
        assert!(matches!(
            engine.auction(&a.id).await,
            Err(EngineError::Unavailable(_))
        ));

        proxy.up().await;
        // The engine reconnects on its own; the retry of r2 is decided once.
        let deadline = Instant::now() + Duration::from_secs(20);
        let reply = loop {
            match engine
                .place_bid(
                    &a.id,
                    &RequestId::parse("r2").unwrap(),
                    plain("bob", 11_000),
                )
                .await
            {
                Ok(reply) => break reply,
                Err(EngineError::Unavailable(_) | EngineError::OutcomeUnknown(_))
                    if Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("did not recover: {e:?}"),
            }
        };
        assert_eq!(reply.outcome, Ok(()));
        assert_eq!(reply.auction.state.seq, 3);
        // A repeat of the first request still gets its first answer.
        let again = engine
            .place_bid(&a.id, &r1, plain("ann", 10_000))
            .await
            .unwrap();
        assert_eq!(again, first.unwrap());
        // The feed resubscribed: it delivers seq 3 (live or by resync), in order.
        let mut seqs = Vec::new();
        while let Ok(Some(c)) = tokio::time::timeout(Duration::from_secs(10), feed.recv()).await {
            if c.auction.id == a.id {
                seqs.push(c.auction.state.seq);
                if c.auction.state.seq == 3 {
                    break;
                }
            }
        }
        assert_eq!(seqs.last(), Some(&3), "feed after recovery: {seqs:?}");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "in order, once: {seqs:?}"
        );
    })
    .await
    .expect("bounded in time");
}
