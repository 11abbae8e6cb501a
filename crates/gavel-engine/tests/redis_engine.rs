//! What only the Redis engine has to prove: replies recorded as decided and read back by
//! another node, the auction's clock (monotonic; the real `TIME` at the end boundary),
//! exact storage of extreme values, and listings that survive one unreadable auction.
//! Real local Redis, one key prefix per test.

use gavel_core::{
    Auction, AuctionId, AuctionSpec, BidKind, BidRequest, Bidder, BidderId, Money, Rejection,
    RequestId,
};
use gavel_engine::conformance::{spec, T0};
use gavel_engine::redis::{RedisConfig, RedisEngine};
use gavel_engine::{AdminAction, BidReply, Clock, Engine};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn prefix() -> String {
    gavel_engine::conformance::redis_test_prefix(&redis_url(), "gtest").await
}

async fn engine(prefix: &str, setup: impl FnOnce(&mut RedisConfig)) -> RedisEngine {
    let mut config = RedisConfig::new(redis_url(), prefix);
    setup(&mut config);
    RedisEngine::connect(config)
        .await
        .expect("Redis is reachable")
}

/// A connection to REDIS_URL's server, or its cluster when it is a cluster node.
async fn redis() -> gavel_engine::redis::conn::Conn {
    gavel_engine::redis::conn::connect(&redis_url())
        .await
        .unwrap()
}

async fn redis_time() -> i64 {
    let (secs, micros): (i64, i64) = redis::cmd("TIME")
        .query_async(&mut redis().await)
        .await
        .unwrap();
    secs * 1000 + micros / 1000
}

fn new_id() -> AuctionId {
    AuctionId::parse(format!("e-{}", uuid::Uuid::new_v4().simple())).unwrap()
}

fn req(who: &str, amount: i64, kind: BidKind) -> BidRequest {
    BidRequest {
        bidder: Bidder {
            id: BidderId::parse(format!("u-{who}")).unwrap(),
            name: who.into(),
        },
        amount: Money::new(amount).unwrap(),
        kind,
        expected_seq: None,
    }
}

async fn bid(e: &RedisEngine, id: &AuctionId, r: &str, q: BidRequest) -> BidReply {
    e.place_bid(id, &RequestId::parse(r).unwrap(), q)
        .await
        .expect("answered")
}

/// The auction's clock as stored (`t`).
async fn stored_clock(e: &RedisEngine, id: &AuctionId) -> i64 {
    let t: String = redis::cmd("HGET")
        .arg(e.keys().hash(id))
        .arg("t")
        .query_async(&mut redis().await)
        .await
        .unwrap();
    t.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_gets_the_answer_as_decided_with_no_other_bidders_maximum_on_any_node() {
    let p = prefix().await;
    let clock = Clock::system();
    clock.freeze_at(T0 + 1);
    let first_node = engine(&p, |c| c.test_clock = Some(clock.clone())).await;
    let a = Auction::new(new_id(), spec()).unwrap();
    first_node.create_auction(a.clone()).await.unwrap();
    let alice = bid(
        &first_node,
        &a.id,
        "r1",
        req("alice", 10_000, BidKind::Plain),
    )
    .await;
    assert_eq!(alice.outcome, Ok(()));
    let bob = bid(&first_node, &a.id, "rb", req("bob", 50_000, BidKind::Max)).await;
    assert_eq!(bob.outcome, Ok(()));
    assert_eq!(
        bob.auction.state.leader_max,
        Some(Money::new(50_000).unwrap())
    );
    // Carol is outbid by Bob's proxy: she learns the new price, never Bob's maximum.
    let carol = bid(
        &first_node,
        &a.id,
        "rc",
        req("carol", 20_000, BidKind::Plain),
    )
    .await;
    assert_eq!(
        carol.outcome,
        Err(Rejection::Outbid {
            min_bid: Money::new(22_000).unwrap()
        })
    );
    assert_eq!(carol.auction.state.price, Some(Money::new(21_000).unwrap()));
    assert_eq!(
        carol.auction.state.leader_max, None,
        "Bob's maximum stays his"
    );
    // Alice's retry is answered as it was decided: accepted, leading at 100.00.
    let again = bid(
        &first_node,
        &a.id,
        "r1",
        req("alice", 10_000, BidKind::Plain),
    )
    .await;
    assert_eq!(again, alice);
    // Another node (or this one restarted) answers from the same records.
    drop(first_node);
    let second_node = engine(&p, |c| c.test_clock = Some(clock.clone())).await;
    let r = |who: &'static str, r: &'static str, amount, kind| {
        let e = second_node.clone();
        let id = a.id.clone();
        async move { bid(&e, &id, r, req(who, amount, kind)).await }
    };
    assert_eq!(r("alice", "r1", 10_000, BidKind::Plain).await, alice);
    assert_eq!(r("bob", "rb", 50_000, BidKind::Max).await, bob);
    assert_eq!(r("carol", "rc", 20_000, BidKind::Plain).await, carol);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auctions_clock_never_runs_backwards_across_its_end() {
    let p = prefix().await;
    let clock = Clock::system();
    clock.freeze_at(T0 + 1);
    let e = engine(&p, |c| c.test_clock = Some(clock.clone())).await;
    let a = Auction::new(new_id(), spec()).unwrap();
    let end = a.spec.ends_at;
    e.create_auction(a.clone()).await.unwrap();
    assert_eq!(
        bid(&e, &a.id, "r1", req("alice", 10_000, BidKind::Plain))
            .await
            .outcome,
        Ok(())
    );
    clock.freeze_at(end + 10);
    let late = bid(&e, &a.id, "r2", req("bob", 20_000, BidKind::Plain)).await;
    assert_eq!(late.outcome, Err(Rejection::Closed));
    assert_eq!(stored_clock(&e, &a.id).await, end + 10);
    // The authority's clock steps back across the end (a wall-clock adjustment, a
    // failover to a Redis whose clock is behind): the auction stays ended.
    clock.freeze_at(end - 10);
    let back = bid(&e, &a.id, "r3", req("bob", 20_000, BidKind::Plain)).await;
    assert_eq!(back.outcome, Err(Rejection::Closed));
    assert_eq!(back.auction.state.seq, 2, "nothing was accepted");
    // So it does for a node that never saw the late bid.
    let other_clock = Clock::system();
    other_clock.freeze_at(end - 10);
    let other = engine(&p, |c| c.test_clock = Some(other_clock.clone())).await;
    let fresh = bid(&other, &a.id, "r4", req("carol", 30_000, BidKind::Plain)).await;
    assert_eq!(fresh.outcome, Err(Rejection::Closed));
    assert_eq!(
        other
            .admin_close(&a.id, AdminAction::EndEarly, "admin")
            .await
            .unwrap(),
        Err(Rejection::Closed)
    );
    let stored = other.auction(&a.id).await.unwrap().unwrap();
    assert_eq!((stored.state.seq, stored.state.bid_count), (2, 1));
}

/// Sets the auction's clock `t` (the script decides at `max(TIME, t)`): Redis `TIME` cannot
/// be set, so this is how a test puts the authority's clock exactly at a boundary, as a
/// decision made there followed by `TIME` stepping back would. The script still reads the
/// real `TIME`.
async fn set_clock(e: &RedisEngine, id: &AuctionId, t: i64) {
    let _: () = redis::cmd("HSET")
        .arg(e.keys().hash(id))
        .arg("t")
        .arg(t)
        .query_async(&mut redis().await)
        .await
        .unwrap();
}

/// Through the real `TIME` path (no test clock): at end − 1 a bid is accepted and stamped
/// end − 1; at end + 1 it is closed, and that answer holds for every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_the_authoritys_clock_a_bid_at_end_minus_1_is_accepted_and_one_at_end_plus_1_is_closed()
{
    let p = prefix().await;
    let node = engine(&p, |_| {}).await;
    let now = redis_time().await;
    let a = Auction::new(
        new_id(),
        AuctionSpec {
            starts_at: now - 10_000,
            ends_at: now + 60_000,
            ..spec()
        },
    )
    .unwrap();
    let end = a.spec.ends_at;
    node.create_auction(a.clone()).await.unwrap();
    set_clock(&node, &a.id, end - 1).await;
    let r = bid(&node, &a.id, "r1", req("alice", 10_000, BidKind::Plain)).await;
    assert_eq!(r.outcome, Ok(()), "the clock is at end - 1");
    let entry = node.recent_bids(&a.id, 1).await.unwrap()[0].clone();
    assert_eq!(
        entry.at,
        end - 1,
        "stamped with the clock the script ran at"
    );
    set_clock(&node, &a.id, end + 1).await;
    let r = bid(&node, &a.id, "r2", req("bob", 20_000, BidKind::Plain)).await;
    assert_eq!(r.outcome, Err(Rejection::Closed));
    assert_eq!((r.auction.state.seq, r.auction.state.bid_count), (2, 1));
    // Another node, whose own estimate follows Redis TIME (a minute before the end):
    let other = engine(&p, |_| {}).await;
    let r = bid(&other, &a.id, "r3", req("carol", 30_000, BidKind::Plain)).await;
    assert!(
        redis_time().await < end,
        "Redis TIME is still before the end"
    );
    assert_eq!(r.outcome, Err(Rejection::Closed));
    assert_eq!(stored_clock(&other, &a.id).await, end + 1);
}

/// Through the real `TIME` path, nothing set: bids sent continuously across an auction's
/// end. Every accepted one is stamped before the end, and every one sent after Redis
/// `TIME` passed the end is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_redis_time_bids_across_the_end_are_accepted_before_it_and_closed_after_it() {
    let p = prefix().await;
    let node = engine(&p, |_| {}).await;
    let now = redis_time().await;
    let a = Auction::new(
        new_id(),
        AuctionSpec {
            starts_at: now - 10_000,
            ends_at: now + 400,
            ..spec()
        },
    )
    .unwrap();
    let end = a.spec.ends_at;
    node.create_auction(a.clone()).await.unwrap();
    let (mut accepted, mut closed_after) = (0, 0);
    for i in 0..10_000 {
        let sent = redis_time().await;
        let who = ["ann", "bob"][i % 2];
        let current = node.auction(&a.id).await.unwrap().unwrap();
        let r = bid(
            &node,
            &a.id,
            &format!("x{i}"),
            req(who, current.min_bid().minor_units(), BidKind::Plain),
        )
        .await;
        match r.outcome {
            Ok(()) => {
                accepted += 1;
                let entry = node.recent_bids(&a.id, 1).await.unwrap()[0].clone();
                assert!(
                    entry.at < end,
                    "accepted at {} with the end at {end}",
                    entry.at
                );
            }
            Err(Rejection::Closed) if sent >= end => closed_after += 1,
            Err(Rejection::Closed) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
        if sent > end + 100 {
            break;
        }
    }
    assert!(
        accepted > 0 && closed_after > 0,
        "{accepted} accepted, {closed_after} closed"
    );
}

/// Through the real `TIME` path: a node decides "accepted" just before the end (its
/// estimate is pinned at end − 1) but the commit reaches Redis after the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_redis_time_a_decision_just_before_the_end_that_arrives_after_it_is_closed() {
    let p = prefix().await;
    let production = engine(&p, |_| {}).await;
    let now = redis_time().await;
    let a = Auction::new(
        new_id(),
        AuctionSpec {
            starts_at: now - 10_000,
            ends_at: now + 200,
            ..spec()
        },
    )
    .unwrap();
    let end = a.spec.ends_at;
    production.create_auction(a.clone()).await.unwrap();
    while redis_time().await < end + 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pin = Clock::system();
    pin.freeze_at(end - 1);
    let node = engine(&p, |c| c.estimate_clock = Some(pin.clone())).await;
    let r = bid(&node, &a.id, "late", req("bob", 10_000, BidKind::Plain)).await;
    assert_eq!(r.outcome, Err(Rejection::Closed), "refused, decided again");
    assert_eq!((r.auction.state.seq, r.auction.state.bid_count), (1, 0));
    assert!(stored_clock(&node, &a.id).await > end);
    assert!(node.recent_bids(&a.id, 10).await.unwrap().is_empty());
    // The answer was recorded: a retry gets it again.
    let again = bid(&node, &a.id, "late", req("bob", 10_000, BidKind::Plain)).await;
    assert_eq!(again, r);
}

/// A counter recorder for one thread (`metrics::with_local_recorder`).
#[derive(Default)]
struct Counters(std::sync::Mutex<Vec<(String, Arc<AtomicU64>)>>);

impl Counters {
    fn get(&self, name: &str) -> u64 {
        let all = self.0.lock().unwrap();
        all.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, c)| c.load(Ordering::Relaxed))
            .sum()
    }
}

impl metrics::Recorder for Counters {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let c = Arc::new(AtomicU64::new(0));
        self.0
            .lock()
            .unwrap()
            .push((key.name().to_string(), c.clone()));
        metrics::Counter::from_arc(c)
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

#[test]
fn extreme_times_stay_exact_and_one_unreadable_auction_does_not_fail_a_listing() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let p = rt.block_on(prefix());
    let (far, cancelled, broken, fine) = rt.block_on(async {
        let e = engine(&p, |_| {}).await;
        // The example: a start near i64::MAX. The old scripts wrote it back through
        // a Lua double as 9223372036854775808 (after any decision), unreadable by every node.
        let far = Auction::new(
            new_id(),
            AuctionSpec {
                starts_at: i64::MAX - 100,
                ends_at: i64::MAX,
                ..spec()
            },
        )
        .unwrap();
        e.create_auction(far.clone()).await.unwrap();
        let r = bid(&e, &far.id, "r1", req("alice", 10_000, BidKind::Plain)).await;
        assert_eq!(r.outcome, Err(Rejection::NotOpen));
        let cancelled = e
            .admin_close(&far.id, AdminAction::Cancel, "admin")
            .await
            .unwrap()
            .expect("cancelled");
        assert_eq!(cancelled.state.ends_at, i64::MAX);
        let broken = Auction::new(new_id(), spec()).unwrap();
        e.create_auction(broken.clone()).await.unwrap();
        let fine = Auction::new(new_id(), spec()).unwrap();
        e.create_auction(fine.clone()).await.unwrap();
        let _: () = redis::cmd("HSET")
            .arg(e.keys().hash(&broken.id))
            .arg("spec")
            .arg("{\"not\": a spec")
            .query_async(&mut redis().await)
            .await
            .unwrap();
        (far, cancelled, broken, fine)
    });
    // Another node, which has cached nothing: it reads every auction from Redis.
    let other = rt.block_on(engine(&p, |_| {}));
    let counters = Counters::default();
    let listed = metrics::with_local_recorder(&counters, || rt.block_on(other.list())).unwrap();
    let ids: Vec<&AuctionId> = listed.iter().map(|a| &a.id).collect();
    assert!(ids.contains(&&far.id) && ids.contains(&&fine.id), "{ids:?}");
    assert!(!ids.contains(&&broken.id));
    assert_eq!(counters.get("gavel_redis_unreadable_auctions_total"), 1);
    let listed_far = listed.iter().find(|a| a.id == far.id).unwrap();
    assert_eq!(listed_far, &cancelled, "every time exact");
    assert_eq!(listed_far.spec, far.spec);
}

/// `list_live` pages through the index `<p>:live` (end time → id), which every commit that
/// moves an end time or closes an auction keeps right: it holds exactly the live auctions,
/// each at its current end time. An entry the index holds wrongly (a node that died
/// between its commit and the index write) is skipped and corrected by the next listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_index_holds_exactly_the_live_auctions_at_their_current_end_times() {
    let p = prefix().await;
    let clock = Clock::system();
    clock.freeze_at(T0 + 1);
    let e = engine(&p, |c| c.test_clock = Some(clock.clone())).await;
    let score = |id: AuctionId| {
        let key = e.keys().live();
        async move {
            let s: Option<f64> = redis::cmd("ZSCORE")
                .arg(key)
                .arg(id.as_str())
                .query_async(&mut redis().await)
                .await
                .unwrap();
            s.map(|s| s as i64)
        }
    };
    let make = |s: AuctionSpec| {
        let e = e.clone();
        async move {
            let a = Auction::new(new_id(), s).unwrap();
            e.create_auction(a.clone()).await.unwrap();
            a.id
        }
    };
    let plain = make(spec()).await;
    let soft = make(AuctionSpec {
        ends_at: T0 + 20_000,
        soft_close: Some(gavel_core::SoftClose {
            window_ms: 30_000,
            extend_ms: 75_000,
            max_extension_ms: None,
        }),
        ..spec()
    })
    .await;
    let buy = make(AuctionSpec {
        buy_now: Some(Money::new(50_000).unwrap()),
        ..spec()
    })
    .await;
    let cancel = make(spec()).await;
    let scheduled = make(AuctionSpec {
        starts_at: T0 + 30_000,
        ends_at: T0 + 90_000,
        ..spec()
    })
    .await;
    for id in [&plain, &cancel, &buy] {
        assert_eq!(
            score(id.clone()).await,
            Some(T0 + 60_000),
            "created: listed"
        );
    }
    assert_eq!(score(scheduled.clone()).await, Some(T0 + 90_000));

    let r = bid(&e, &soft, "r1", req("alice", 10_000, BidKind::Plain)).await;
    assert_eq!(r.auction.state.ends_at, T0 + 75_001);
    assert_eq!(
        score(soft.clone()).await,
        Some(T0 + 75_001),
        "moved by soft close"
    );
    let r = bid(&e, &buy, "r1", req("bob", 50_000, BidKind::BuyNow)).await;
    assert_eq!(r.outcome, Ok(()));
    assert_eq!(score(buy.clone()).await, None, "bought now: out");
    e.admin_close(&cancel, AdminAction::Cancel, "admin")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(score(cancel.clone()).await, None, "cancelled: out");
    clock.freeze_at(T0 + 60_000);
    e.advance().await.unwrap();
    assert_eq!(score(plain.clone()).await, None, "ended: out");
    assert_eq!(score(scheduled.clone()).await, Some(T0 + 90_000));
    let live: Vec<AuctionId> = e
        .list_live(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(live, [soft.clone(), scheduled.clone()]);

    // Wrong entries: a closed auction put back, a live one at a wrong end time. The
    // listing is still right, and corrects the index.
    let _: () = redis::cmd("ZADD")
        .arg(e.keys().live())
        .arg(T0)
        .arg(plain.as_str())
        .arg(T0 + 1)
        .arg(scheduled.as_str())
        .query_async(&mut redis().await)
        .await
        .unwrap();
    let live: Vec<(i64, AuctionId)> = e
        .list_live(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.state.ends_at, a.id))
        .collect();
    assert_eq!(
        live,
        [(T0 + 75_001, soft), (T0 + 90_000, scheduled.clone())]
    );
    assert_eq!(score(plain).await, None, "the closed one was dropped");
    assert_eq!(
        score(scheduled).await,
        Some(T0 + 90_000),
        "the score corrected"
    );
}

/// `commit.lua` trims the recent list in steps (one `LTRIM` per 50 pushes, not one per bid):
/// the list never holds more than twice what is read, and a reader still gets exactly the
/// newest 50 entries, newest first, whatever limit it asks for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recent_list_is_trimmed_in_steps_and_reads_exactly_the_newest_fifty() {
    let p = prefix().await;
    let clock = Clock::system();
    clock.freeze_at(T0 + 1);
    let e = engine(&p, |c| c.test_clock = Some(clock.clone())).await;
    let a = Auction::new(new_id(), spec()).unwrap();
    e.create_auction(a.clone()).await.unwrap();
    let len = || async {
        let n: usize = redis::cmd("LLEN")
            .arg(e.keys().recent(&a.id))
            .query_async(&mut redis().await)
            .await
            .unwrap();
        n
    };
    let mut longest = 0;
    let mut placed = Vec::new();
    for i in 0..130i64 {
        let who = if i % 2 == 0 { "alice" } else { "bob" };
        let r = bid(
            &e,
            &a.id,
            &format!("r{i}"),
            req(who, 10_000 + i * 1_000, BidKind::Plain),
        )
        .await;
        assert_eq!(r.outcome, Ok(()), "bid {i}");
        placed.push(r.auction.state.seq);
        longest = longest.max(len().await);
    }
    assert_eq!(
        longest, 100,
        "the list grows to twice the kept size, then is trimmed"
    );
    assert_eq!(
        len().await,
        79,
        "trimmed to 50 at the 101st push, 29 pushed since"
    );
    for limit in [1000, 50] {
        let recent = e.recent_bids(&a.id, limit).await.unwrap();
        let seqs: Vec<u64> = recent.iter().map(|b| b.seq).collect();
        let newest: Vec<u64> = placed.iter().rev().take(50).copied().collect();
        assert_eq!(seqs, newest, "limit {limit}");
    }
    let three: Vec<u64> = e
        .recent_bids(&a.id, 3)
        .await
        .unwrap()
        .iter()
        .map(|b| b.seq)
        .collect();
    assert_eq!(
        three,
        placed.iter().rev().take(3).copied().collect::<Vec<_>>()
    );
}
