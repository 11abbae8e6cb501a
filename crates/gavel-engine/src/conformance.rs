//! The engine conformance suite: written once, run against every `Engine`.
//!
//! Each check takes a fresh [`Harness`] (an engine plus the clock it decides by, frozen by
//! the check where timing matters). `engine_conformance_tests!` expands into one
//! `#[tokio::test]` per check for a given harness factory, so the memory engine and the
//! Redis engine run exactly the same assertions.

use crate::{AdminAction, Clock, Engine, EngineError};
use gavel_core::{
    Auction, AuctionId, AuctionSpec, BidKind, BidRequest, Bidder, BidderId, CloseReason, Currency,
    Event, IncrementPolicy, Money, Rejection, RequestId, SoftClose, Status,
};
use std::sync::Arc;
use std::time::Duration;

/// An engine under test and the clock its decisions use.
pub struct Harness {
    pub engine: Arc<dyn Engine>,
    pub clock: Clock,
}

/// A round base time so assertions read easily (2026-01-01T00:00:00Z).
pub const T0: i64 = 1_767_225_600_000;

pub fn money(v: i64) -> Money {
    Money::new(v).expect("test amounts are valid")
}

pub fn bidder(name: &str) -> Bidder {
    Bidder {
        id: BidderId::parse(format!("u-{name}")).expect("valid id"),
        name: name.into(),
    }
}

pub fn rid(s: &str) -> RequestId {
    RequestId::parse(s).expect("valid request id")
}

/// A spec open from `T0` to `T0 + 60 s`, starting at 100.00 with 10.00 increments.
pub fn spec() -> AuctionSpec {
    AuctionSpec {
        title: "Vintage camera".into(),
        description: "Leica M3".into(),
        currency: Currency::parse("USD").expect("valid"),
        category: None,
        starting_price: money(10_000),
        increment: IncrementPolicy::Fixed {
            amount: money(1_000),
        },
        starts_at: T0,
        ends_at: T0 + 60_000,
        reserve: None,
        buy_now: None,
        soft_close: None,
    }
}

fn unique_id(prefix: &str) -> AuctionId {
    AuctionId::parse(format!("{prefix}-{}", uuid::Uuid::new_v4().simple())).expect("valid")
}

/// Creates an auction from `spec` with a fresh id.
pub async fn create(h: &Harness, spec: AuctionSpec) -> Auction {
    let a = Auction::new(unique_id("c"), spec).expect("valid spec");
    h.engine.create_auction(a).await.expect("create")
}

pub fn plain(who: &str, amount: i64) -> BidRequest {
    BidRequest {
        bidder: bidder(who),
        amount: money(amount),
        kind: BidKind::Plain,
        expected_seq: None,
    }
}

pub fn max(who: &str, amount: i64) -> BidRequest {
    BidRequest {
        kind: BidKind::Max,
        ..plain(who, amount)
    }
}

async fn bid(h: &Harness, a: &Auction, r: &str, req: BidRequest) -> crate::BidReply {
    h.engine
        .place_bid(&a.id, &rid(r), req)
        .await
        .expect("engine answers")
}

pub async fn creates_lists_and_refuses_duplicates(h: Harness) {
    h.clock.freeze_at(T0 + 1);
    let a = create(&h, spec()).await;
    assert_eq!(a.state.seq, 1);
    let got = h.engine.auction(&a.id).await.unwrap().expect("stored");
    assert_eq!(got.spec, a.spec);
    assert!(h.engine.list().await.unwrap().iter().any(|x| x.id == a.id));
    let dup = h.engine.create_auction(a.clone()).await;
    assert!(matches!(dup, Err(EngineError::AlreadyExists(_))), "{dup:?}");
    let missing = AuctionId::parse("no-such-auction").unwrap();
    assert!(h.engine.auction(&missing).await.unwrap().is_none());
    let r = h
        .engine
        .place_bid(&missing, &rid("r1"), plain("a", 10_000))
        .await;
    assert!(matches!(r, Err(EngineError::NotFound)), "{r:?}");
}

pub async fn a_first_bid_at_the_starting_price_leads(h: Harness) {
    h.clock.freeze_at(T0 + 1);
    let a = create(&h, spec()).await;
    let r = bid(&h, &a, "r1", plain("alice", 10_000)).await;
    assert_eq!(r.outcome, Ok(()));
    assert_eq!(r.auction.state.price, Some(money(10_000)));
    assert_eq!(r.auction.state.leader, Some(bidder("alice")));
    assert_eq!(r.auction.state.seq, 2);
    assert_eq!(r.auction.state.bid_count, 1);
    let stored = h.engine.auction(&a.id).await.unwrap().unwrap();
    assert_eq!(stored.state, r.auction.state);
    let recent = h.engine.recent_bids(&a.id, 10).await.unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].amount, money(10_000));
}

pub async fn every_rejection_carries_the_current_state(h: Harness) {
    h.clock.freeze_at(T0 + 1);
    let a = create(&h, spec()).await;
    bid(&h, &a, "r1", plain("alice", 10_000)).await;
    let low = bid(&h, &a, "r2", plain("bob", 10_500)).await;
    assert_eq!(
        low.outcome,
        Err(Rejection::Outbid {
            min_bid: money(11_000)
        })
    );
    assert_eq!(low.auction.state.seq, 2);
    let again = bid(&h, &a, "r3", plain("alice", 12_000)).await;
    assert_eq!(again.outcome, Err(Rejection::AlreadyLeading));
    let stale = bid(
        &h,
        &a,
        "r4",
        BidRequest {
            expected_seq: Some(1),
            ..plain("bob", 11_000)
        },
    )
    .await;
    assert_eq!(stale.outcome, Err(Rejection::Stale { seq: 2 }));
    let fresh = bid(
        &h,
        &a,
        "r5",
        BidRequest {
            expected_seq: Some(2),
            ..plain("bob", 11_000)
        },
    )
    .await;
    assert_eq!(fresh.outcome, Ok(()));
    assert_eq!(fresh.auction.state.seq, 3);
}

pub async fn the_clock_decides_the_open_window(h: Harness) {
    h.clock.freeze_at(T0 - 1);
    let a = create(&h, spec()).await;
    let early = bid(&h, &a, "r1", plain("alice", 10_000)).await;
    assert_eq!(early.outcome, Err(Rejection::NotOpen));
    h.clock.freeze_at(T0 + 60_000 - 1);
    let last_ms = bid(&h, &a, "r2", plain("alice", 10_000)).await;
    assert_eq!(
        last_ms.outcome,
        Ok(()),
        "a bid 1 ms before the end is accepted"
    );
    h.clock.freeze_at(T0 + 60_000);
    let late = bid(&h, &a, "r3", plain("bob", 20_000)).await;
    assert_eq!(
        late.outcome,
        Err(Rejection::Closed),
        "a bid at the end time is refused even before the close is announced"
    );
    h.clock.freeze_at(T0 + 60_001);
    let later = bid(&h, &a, "r4", plain("bob", 20_000)).await;
    assert_eq!(later.outcome, Err(Rejection::Closed));
}

pub async fn a_repeated_request_id_is_decided_once(h: Harness) {
    h.clock.freeze_at(T0 + 1);
    let a = create(&h, spec()).await;
    let first = bid(&h, &a, "same", plain("alice", 10_000)).await;
    let again = bid(&h, &a, "same", plain("alice", 50_000)).await;
    assert_eq!(first, again, "the repeat gets the first answer verbatim");
    // `replay` returns the same stored answer without deciding anything.
    let alice = BidderId::parse("u-alice").unwrap();
    let replayed = h.engine.replay(&a.id, &alice, &rid("same")).await.unwrap();
    assert_eq!(replayed, Some(first.clone()));
    assert_eq!(
        h.engine.replay(&a.id, &alice, &rid("never")).await.unwrap(),
        None
    );
    let bob = BidderId::parse("u-bob").unwrap();
    assert_eq!(
        h.engine.replay(&a.id, &bob, &rid("same")).await.unwrap(),
        None
    );
    let nowhere = AuctionId::parse("no-such-auction").unwrap();
    assert_eq!(
        h.engine
            .replay(&nowhere, &alice, &rid("same"))
            .await
            .unwrap(),
        None
    );
    let stored = h.engine.auction(&a.id).await.unwrap().unwrap();
    assert_eq!(stored.state.seq, 2);
    assert_eq!(stored.state.bid_count, 1);
    // The key is per bidder: another bidder's identical request id is its own bid.
    let other = bid(&h, &a, "same", plain("bob", 11_000)).await;
    assert_eq!(other.outcome, Ok(()));
    // Concurrent repeats: still one decision.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let e = h.engine.clone();
        let id = a.id.clone();
        tasks.push(tokio::spawn(async move {
            e.place_bid(&id, &rid("burst"), plain("carol", 12_000))
                .await
        }));
    }
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.unwrap().unwrap());
    }
    assert!(replies.windows(2).all(|w| w[0] == w[1]));
    let stored = h.engine.auction(&a.id).await.unwrap().unwrap();
    assert_eq!(stored.state.bid_count, 3);
}

pub async fn of_many_identical_simultaneous_bids_exactly_one_wins(h: Harness) {
    h.clock.freeze_at(T0 + 1);
    let a = create(&h, spec()).await;
    bid(&h, &a, "r0", plain("seed", 10_000)).await;
    let before = h.engine.auction(&a.id).await.unwrap().unwrap().state.seq;
    let n = 1000;
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let e = h.engine.clone();
        let id = a.id.clone();
        let b = barrier.clone();
        tasks.push(tokio::spawn(async move {
            b.wait().await;
            e.place_bid(
                &id,
                &rid(&format!("r{i}")),
                BidRequest {
                    expected_seq: Some(before),
                    ..plain(&format!("bidder{i}"), 11_000)
                },
            )
            .await
        }));
    }
    let mut accepted = 0;
    let mut rejected = 0;
    for t in tasks {
        match t.await.unwrap().unwrap().outcome {
            Ok(()) => accepted += 1,
            Err(Rejection::Stale { .. }) | Err(Rejection::Outbid { .. }) => rejected += 1,
            Err(other) => panic!("unexpected rejection {other:?}"),
        }
    }
    assert_eq!((accepted, rejected), (1, n - 1));
    let after = h.engine.auction(&a.id).await.unwrap().unwrap();
    assert_eq!(after.state.seq, before + 1, "seq moved by exactly one");
    assert_eq!(after.state.price, Some(money(11_000)));
}

pub async fn many_auctions_make_progress_together(h: Harness) {
    h.clock.freeze_at(T0 + 1);
    let mut auctions = Vec::new();
    for _ in 0..20 {
        auctions.push(create(&h, spec()).await);
    }
    let mut tasks = Vec::new();
    for a in &auctions {
        for round in 0..10i64 {
            let e = h.engine.clone();
            let id = a.id.clone();
            tasks.push(tokio::spawn(async move {
                // Alternate bidders so each round can lead; amounts leave room for all.
                let who = if round % 2 == 0 { "even" } else { "odd" };
                e.place_bid(
                    &id,
                    &rid(&format!("p{round}")),
                    plain(who, 10_000 + round * 1_000),
                )
                .await
            }));
        }
    }
    for t in tasks {
        t.await.unwrap().expect("answered");
    }
    for a in &auctions {
        let s = h.engine.auction(&a.id).await.unwrap().unwrap();
        assert!(s.state.bid_count >= 1, "every auction moved");
        assert_eq!(s.state.seq, 1 + s.state.bid_count);
    }
}

pub async fn advance_closes_once_with_the_winner(h: Harness) {
    let mut feed = h
        .engine
        .take_changes()
        .expect("a fresh engine hands out its change feed");
    h.clock.freeze_at(T0 + 1);
    let a = create(&h, spec()).await;
    bid(&h, &a, "r1", plain("alice", 10_000)).await;
    bid(&h, &a, "r2", plain("bob", 12_000)).await;
    assert!(h.engine.next_deadline().await.unwrap().is_some());
    h.clock.freeze_at(T0 + 59_999);
    let none = h.engine.advance().await.unwrap();
    assert!(none.iter().all(|c| c.auction.id != a.id));
    h.clock.freeze_at(T0 + 60_000);
    let closed: Vec<_> = h
        .engine
        .advance()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.auction.id == a.id)
        .collect();
    assert_eq!(closed.len(), 1);
    let closing = closed[0].auction.state.closing.clone().expect("closed");
    assert_eq!(closing.reason, CloseReason::Ended);
    assert_eq!(closing.winner, Some(bidder("bob")));
    assert_eq!(closing.final_price, Some(money(12_000)));
    assert_eq!(closing.closed_at, T0 + 60_000);
    let again = h.engine.advance().await.unwrap();
    assert!(again.iter().all(|c| c.auction.id != a.id), "closed once");
    let stored = h.engine.auction(&a.id).await.unwrap().unwrap();
    assert_eq!(stored.state.status, Status::Closed);
    assert_eq!(stored.state.seq, 4);
    let mut seen = Vec::new();
    while let Ok(Some(c)) = tokio::time::timeout(Duration::from_millis(500), feed.recv()).await {
        if c.auction.id == a.id {
            seen.push((c.auction.state.seq, c.event.clone()));
        }
        if seen.len() == 4 {
            break;
        }
    }
    let seqs: Vec<u64> = seen.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        vec![1, 2, 3, 4],
        "the feed delivers every change in order"
    );
    assert!(matches!(seen[0].1, Event::Created));
    assert!(matches!(seen[3].1, Event::Closed));
}

pub async fn a_scheduled_auction_opens_by_itself(h: Harness) {
    h.clock.freeze_at(T0 - 10_000);
    let a = create(&h, spec()).await;
    assert_eq!(h.engine.next_deadline().await.unwrap(), Some(T0));
    h.clock.freeze_at(T0);
    let opened: Vec<_> = h
        .engine
        .advance()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.auction.id == a.id)
        .collect();
    assert_eq!(opened.len(), 1);
    assert!(matches!(opened[0].event, Event::Opened));
    assert_eq!(opened[0].auction.state.status, Status::Open);
}

pub async fn admins_cancel_and_end_early(h: Harness) {
    h.clock.freeze_at(T0 + 1);
    let a = create(&h, spec()).await;
    bid(&h, &a, "r1", plain("alice", 10_000)).await;
    let ended = h
        .engine
        .admin_close(&a.id, AdminAction::EndEarly, "admin-1")
        .await
        .unwrap()
        .expect("ended");
    let c = ended.state.closing.expect("closing");
    assert_eq!(c.reason, CloseReason::EndedEarly);
    assert_eq!(c.winner, Some(bidder("alice")));
    assert_eq!(c.by.as_deref(), Some("admin-1"));
    let twice = h
        .engine
        .admin_close(&a.id, AdminAction::Cancel, "admin-1")
        .await
        .unwrap();
    assert_eq!(twice, Err(Rejection::Closed));
    let late = bid(&h, &a, "r2", plain("bob", 20_000)).await;
    assert_eq!(late.outcome, Err(Rejection::Closed));

    let b = create(&h, spec()).await;
    bid(&h, &b, "r1", plain("alice", 10_000)).await;
    let cancelled = h
        .engine
        .admin_close(&b.id, AdminAction::Cancel, "admin-2")
        .await
        .unwrap()
        .expect("cancelled");
    let c = cancelled.state.closing.expect("closing");
    assert_eq!(c.reason, CloseReason::Cancelled);
    assert_eq!(c.winner, None);
}

pub async fn proxy_maximums_bid_only_as_far_as_needed(h: Harness) {
    h.clock.freeze_at(T0 + 1);
    let a = create(&h, spec()).await;
    let r = bid(&h, &a, "r1", max("alice", 50_000)).await;
    assert_eq!(r.outcome, Ok(()));
    assert_eq!(r.auction.state.price, Some(money(10_000)));
    assert_eq!(r.auction.state.leader_max, Some(money(50_000)));
    // A plain bid below the maximum is outbid at once, and the price moves up.
    let r = bid(&h, &a, "r2", plain("bob", 20_000)).await;
    assert_eq!(
        r.outcome,
        Err(Rejection::Outbid {
            min_bid: money(22_000)
        })
    );
    assert_eq!(r.auction.state.price, Some(money(21_000)));
    assert_eq!(r.auction.state.leader, Some(bidder("alice")));
    // A higher maximum takes the lead at the old maximum plus one increment.
    let r = bid(&h, &a, "r3", max("carol", 80_000)).await;
    assert_eq!(r.outcome, Ok(()));
    assert_eq!(r.auction.state.price, Some(money(51_000)));
    assert_eq!(r.auction.state.leader, Some(bidder("carol")));
    // The leader raises their own maximum without moving the price.
    let r = bid(&h, &a, "r4", max("carol", 90_000)).await;
    assert_eq!(r.outcome, Ok(()));
    assert_eq!(r.auction.state.price, Some(money(51_000)));
    let r = bid(&h, &a, "r5", max("carol", 85_000)).await;
    assert!(matches!(r.outcome, Err(Rejection::MaxNotRaised { .. })));
    // Equal maximums: the earlier one wins.
    let r = bid(&h, &a, "r6", max("dave", 90_000)).await;
    assert!(matches!(r.outcome, Err(Rejection::Outbid { .. })));
    assert_eq!(r.auction.state.price, Some(money(90_000)));
    assert_eq!(r.auction.state.leader, Some(bidder("carol")));
    let recent = h.engine.recent_bids(&a.id, 20).await.unwrap();
    assert!(recent.windows(2).all(|w| w[0].amount > w[1].amount));
}

pub async fn soft_close_extends_inside_the_same_step(h: Harness) {
    let mut s = spec();
    s.soft_close = Some(SoftClose {
        window_ms: 10_000,
        extend_ms: 30_000,
        max_extension_ms: Some(45_000),
    });
    h.clock.freeze_at(T0 + 1);
    let a = create(&h, s).await;
    let r = bid(&h, &a, "r1", plain("alice", 10_000)).await;
    assert_eq!(r.auction.state.ends_at, T0 + 60_000, "outside the window");
    h.clock.freeze_at(T0 + 59_000);
    let r = bid(&h, &a, "r2", plain("bob", 11_000)).await;
    assert_eq!(r.auction.state.ends_at, T0 + 89_000);
    h.clock.freeze_at(T0 + 88_000);
    let r = bid(&h, &a, "r3", plain("alice", 12_000)).await;
    assert_eq!(r.auction.state.ends_at, T0 + 105_000, "capped at +45 s");
    h.clock.freeze_at(T0 + 104_999);
    let r = bid(&h, &a, "r4", plain("bob", 13_000)).await;
    assert_eq!(r.outcome, Ok(()));
    assert_eq!(r.auction.state.ends_at, T0 + 105_000);
    h.clock.freeze_at(T0 + 105_000);
    let r = bid(&h, &a, "r5", plain("alice", 14_000)).await;
    assert_eq!(r.outcome, Err(Rejection::Closed));
}

pub async fn reserve_and_buy_now(h: Harness) {
    let mut s = spec();
    s.reserve = Some(money(30_000));
    s.buy_now = Some(money(100_000));
    h.clock.freeze_at(T0 + 1);
    let a = create(&h, s.clone()).await;
    let r = bid(&h, &a, "r1", plain("alice", 10_000)).await;
    assert_eq!(r.auction.reserve_met(), Some(false));
    // A maximum reaching the reserve jumps the price to it.
    let r = bid(&h, &a, "r2", max("bob", 40_000)).await;
    assert_eq!(r.outcome, Ok(()));
    assert_eq!(r.auction.state.price, Some(money(30_000)));
    assert_eq!(r.auction.reserve_met(), Some(true));
    // Reserve met: buy-now is no longer offered.
    let r = bid(
        &h,
        &a,
        "r3",
        BidRequest {
            kind: BidKind::BuyNow,
            ..plain("carol", 100_000)
        },
    )
    .await;
    assert_eq!(r.outcome, Err(Rejection::BuyNowUnavailable));

    let b = create(&h, s.clone()).await;
    let wrong = bid(
        &h,
        &b,
        "r1",
        BidRequest {
            kind: BidKind::BuyNow,
            ..plain("carol", 90_000)
        },
    )
    .await;
    assert!(matches!(wrong.outcome, Err(Rejection::BuyNowPrice { .. })));
    let r = bid(
        &h,
        &b,
        "r2",
        BidRequest {
            kind: BidKind::BuyNow,
            ..plain("carol", 100_000)
        },
    )
    .await;
    assert_eq!(r.outcome, Ok(()));
    let closing = r.auction.state.closing.expect("buy-now closes at once");
    assert_eq!(closing.reason, CloseReason::BuyNow);
    assert_eq!(closing.winner, Some(bidder("carol")));
    let after = bid(&h, &b, "r3", plain("dave", 200_000)).await;
    assert_eq!(after.outcome, Err(Rejection::Closed));

    // Closing below the reserve: no winner.
    let c = create(&h, s).await;
    bid(&h, &c, "r1", plain("alice", 10_000)).await;
    h.clock.freeze_at(T0 + 60_000);
    let closed = h.engine.advance().await.unwrap();
    let mine = closed
        .iter()
        .find(|x| x.auction.id == c.id)
        .expect("closed");
    let closing = mine.auction.state.closing.clone().unwrap();
    assert_eq!(closing.winner, None);
    assert_eq!(closing.final_price, None);
}

/// Expands into one `#[tokio::test]` per conformance check for `$factory`, an async fn
/// returning a fresh [`Harness`].
#[macro_export]
macro_rules! engine_conformance_tests {
    ($factory:path) => {
        $crate::engine_conformance_tests!(@each $factory;
            creates_lists_and_refuses_duplicates,
            a_first_bid_at_the_starting_price_leads,
            every_rejection_carries_the_current_state,
            the_clock_decides_the_open_window,
            a_repeated_request_id_is_decided_once,
            of_many_identical_simultaneous_bids_exactly_one_wins,
            many_auctions_make_progress_together,
            advance_closes_once_with_the_winner,
            a_scheduled_auction_opens_by_itself,
            admins_cancel_and_end_early,
            proxy_maximums_bid_only_as_far_as_needed,
            soft_close_extends_inside_the_same_step,
            reserve_and_buy_now,
            request_keys_do_not_collide_when_ids_contain_colons,
            live_auctions_page_by_end_time,
            the_decision_clock_never_steps_back,
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                $crate::conformance::$name($factory().await).await;
            }
        )*
    };
}

/// A key prefix for one test on a shared Redis: `{family}-{unix ms}-{random}`. The first call
/// in a process also deletes the keys of this family's prefixes that are more than ten
/// minutes old (earlier test runs), so running the suites again and again does not fill the
/// shared Redis. A run still going (in another process) is younger than that and untouched.
pub async fn redis_test_prefix(url: &str, family: &str) -> String {
    static SWEPT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let first = {
        let mut swept = SWEPT.lock().unwrap_or_else(|p| p.into_inner());
        let first = !swept.iter().any(|f| f == family);
        if first {
            swept.push(family.to_string());
        }
        first
    };
    if first {
        if let Err(e) = sweep(url, family, now - 600_000).await {
            eprintln!("could not sweep old {family} test keys: {e}");
        }
    }
    format!("{family}-{now}-{}", uuid::Uuid::new_v4().simple())
}

async fn sweep(url: &str, family: &str, before_ms: i64) -> redis::RedisResult<()> {
    let mut conn = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    let pattern = format!("{family}-*");
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        let stale: Vec<&String> = keys
            .iter()
            .filter(|k| {
                k[family.len() + 1..]
                    .split('-')
                    .next()
                    .and_then(|ms| ms.parse::<i64>().ok())
                    .is_some_and(|ms| ms < before_ms)
            })
            .collect();
        if !stale.is_empty() {
            let _: () = redis::cmd("DEL").arg(stale).query_async(&mut conn).await?;
        }
        cursor = next;
        if cursor == 0 {
            return Ok(());
        }
    }
}

pub async fn request_keys_do_not_collide_when_ids_contain_colons(h: Harness) {
    h.clock.freeze_at(T0 + 1);
    let a = create(&h, spec()).await;
    let named = |id: &str, amount: i64| BidRequest {
        bidder: Bidder {
            id: BidderId::parse(id).expect("valid id"),
            name: id.into(),
        },
        ..plain("x", amount)
    };
    // (bidder `a:b`, request `c`) and (bidder `a`, request `b:c`) are different requests.
    let first = bid(&h, &a, "c", named("a:b", 10_000)).await;
    assert_eq!(first.outcome, Ok(()));
    let second = bid(&h, &a, "b:c", named("a", 11_000)).await;
    assert_eq!(second.outcome, Ok(()), "decided, not answered as a repeat");
    assert_eq!(second.auction.state.seq, 3);
    assert_eq!(
        second
            .auction
            .state
            .leader
            .as_ref()
            .map(|l| l.id.to_string()),
        Some("a".into())
    );
    // And each still gets its own first answer.
    assert_eq!(bid(&h, &a, "c", named("a:b", 10_000)).await, first);
    assert_eq!(bid(&h, &a, "b:c", named("a", 11_000)).await, second);
}

// Checks on a running clock: nothing is frozen, auctions are placed around the engine's
// own `now()`. They run against the Redis engine over its production clock path (Redis
// `TIME`, no test clock), where the frozen-clock checks above cannot.

/// A spec open from one second ago for `ms` more, by the engine's clock.
fn live_spec(h: &Harness, ms: i64) -> AuctionSpec {
    let now = h.engine.now();
    AuctionSpec {
        starts_at: now - 1_000,
        ends_at: now + ms,
        ..spec()
    }
}

async fn live_create(h: &Harness, spec: AuctionSpec) -> Auction {
    let id = unique_id("l");
    let a = Auction::new_at(id, spec, h.engine.now()).expect("valid spec");
    h.engine.create_auction(a).await.expect("create")
}

/// Waits until the engine's clock has passed `at`.
async fn live_wait_past(h: &Harness, at: i64) {
    while h.engine.now() <= at {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub async fn live_bids_are_decided_by_the_running_clock(h: Harness) {
    let a = live_create(&h, live_spec(&h, 60_000)).await;
    let r = bid(&h, &a, "r1", plain("alice", 10_000)).await;
    assert_eq!(r.outcome, Ok(()));
    assert_eq!(r.auction.state.seq, 2);
    let low = bid(&h, &a, "r2", plain("bob", 10_500)).await;
    assert_eq!(
        low.outcome,
        Err(Rejection::Outbid {
            min_bid: money(11_000)
        })
    );
    let again = bid(&h, &a, "r1", plain("alice", 10_000)).await;
    assert_eq!(again, r, "a repeat gets the first answer");
    let stale = bid(
        &h,
        &a,
        "r3",
        BidRequest {
            expected_seq: Some(1),
            ..plain("bob", 11_000)
        },
    )
    .await;
    assert_eq!(stale.outcome, Err(Rejection::Stale { seq: 2 }));
    let r = bid(&h, &a, "r4", max("carol", 50_000)).await;
    assert_eq!(r.outcome, Ok(()));
    assert_eq!(r.auction.state.price, Some(money(11_000)));
    let r = bid(&h, &a, "r5", plain("bob", 20_000)).await;
    assert_eq!(
        r.outcome,
        Err(Rejection::Outbid {
            min_bid: money(22_000)
        })
    );
    assert_eq!(r.auction.state.price, Some(money(21_000)));
    // Simultaneous identical bids on the running clock: exactly one wins.
    let seq = r.auction.state.seq;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let e = h.engine.clone();
        let id = a.id.clone();
        tasks.push(tokio::spawn(async move {
            e.place_bid(
                &id,
                &rid(&format!("race{i}")),
                BidRequest {
                    expected_seq: Some(seq),
                    ..max(&format!("racer{i}"), 90_000)
                },
            )
            .await
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        if t.await.unwrap().unwrap().outcome.is_ok() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1);
    let ended = h
        .engine
        .admin_close(&a.id, AdminAction::EndEarly, "admin-1")
        .await
        .unwrap()
        .expect("ended");
    let c = ended.state.closing.expect("closing");
    assert_eq!(c.reason, CloseReason::EndedEarly);
    assert_eq!(c.final_price, Some(money(51_000)));
    let late = bid(&h, &a, "r6", plain("dave", 100_000)).await;
    assert_eq!(late.outcome, Err(Rejection::Closed));
}

pub async fn live_soft_close_extends_from_the_bids_own_time(h: Harness) {
    let mut s = live_spec(&h, 20_000);
    s.soft_close = Some(SoftClose {
        window_ms: 60_000,
        extend_ms: 30_000,
        max_extension_ms: None,
    });
    let a = live_create(&h, s).await;
    let before = h.engine.now();
    let r = bid(&h, &a, "r1", plain("alice", 10_000)).await;
    let after = h.engine.now();
    assert_eq!(r.outcome, Ok(()));
    let entry = h.engine.recent_bids(&a.id, 1).await.unwrap()[0].clone();
    assert_eq!(
        r.auction.state.ends_at,
        entry.at + 30_000,
        "extended from the bid's own time"
    );
    // The bid's time is the authority's at the commit: within the call, give or take how
    // well the engine's `now()` follows the authority's clock.
    assert!(
        entry.at >= before - 20 && entry.at <= after + 20,
        "{before} <= {} <= {after}",
        entry.at
    );
}

pub async fn live_an_auction_ends_by_the_clock_and_closes_once(h: Harness) {
    let a = live_create(&h, live_spec(&h, 400)).await;
    let r = bid(&h, &a, "r1", plain("alice", 10_000)).await;
    assert_eq!(r.outcome, Ok(()));
    live_wait_past(&h, a.spec.ends_at + 20).await;
    let late = bid(&h, &a, "r2", plain("bob", 20_000)).await;
    assert_eq!(
        late.outcome,
        Err(Rejection::Closed),
        "refused before any close"
    );
    assert_eq!(late.auction.state.seq, 2);
    let mut closed = Vec::new();
    for _ in 0..3 {
        closed.extend(
            h.engine
                .advance()
                .await
                .unwrap()
                .into_iter()
                .filter(|c| c.auction.id == a.id),
        );
    }
    assert_eq!(closed.len(), 1, "closed exactly once");
    let c = closed[0].auction.state.closing.clone().expect("closing");
    assert_eq!(c.closed_at, a.spec.ends_at);
    assert_eq!(c.winner, Some(bidder("alice")));
}

pub async fn live_a_scheduled_auction_opens_when_its_start_passes(h: Harness) {
    let now = h.engine.now();
    let a = live_create(
        &h,
        AuctionSpec {
            starts_at: now + 300,
            ends_at: now + 60_000,
            ..spec()
        },
    )
    .await;
    let early = bid(&h, &a, "r1", plain("alice", 10_000)).await;
    assert_eq!(early.outcome, Err(Rejection::NotOpen));
    live_wait_past(&h, a.spec.starts_at).await;
    let mut opened = Vec::new();
    for _ in 0..3 {
        opened.extend(
            h.engine
                .advance()
                .await
                .unwrap()
                .into_iter()
                .filter(|c| c.auction.id == a.id),
        );
    }
    assert_eq!(opened.len(), 1);
    assert!(matches!(opened[0].event, Event::Opened));
    let r = bid(&h, &a, "r2", plain("alice", 10_000)).await;
    assert_eq!(r.outcome, Ok(()));
}

/// Expands into one `#[tokio::test]` per running-clock check for `$factory`, whose harness
/// clock must not be frozen (for the Redis engine: no test clock, the production path).
#[macro_export]
macro_rules! engine_conformance_live_tests {
    ($factory:path) => {
        $crate::engine_conformance_tests!(@each $factory;
            live_bids_are_decided_by_the_running_clock,
            live_soft_close_extends_from_the_bids_own_time,
            live_an_auction_ends_by_the_clock_and_closes_once,
            live_a_scheduled_auction_opens_when_its_start_passes
        );
    };
}

/// The decision clock only moves forward: after a decision at some time, a clock that steps
/// back (a wall-clock adjustment, Redis `TIME` after a failover) must not reopen an auction
/// whose end that decision already passed. Both engines keep a per-engine floor: the
/// memory engine the latest decision time, the Redis engine the latest clock its commits
/// ran at (also put under `TIME` in the commit script).
pub async fn the_decision_clock_never_steps_back(h: Harness) {
    h.clock.freeze_at(T0 + 1);
    let a = create(&h, spec()).await;
    let first = bid(&h, &a, "r1", plain("alice", 10_000)).await;
    assert_eq!(first.outcome, Ok(()));
    h.clock.freeze_at(T0 + 60_001);
    let late = bid(&h, &a, "r2", plain("bob", 11_000)).await;
    assert_eq!(
        late.outcome,
        Err(Rejection::Closed),
        "decided after the end"
    );
    // The clock steps back across the end.
    h.clock.freeze_at(T0 + 59_000);
    assert!(
        h.engine.now() >= T0 + 60_001,
        "the engine's time does not step back"
    );
    let after_step = bid(&h, &a, "r3", plain("carol", 12_000)).await;
    assert_eq!(
        after_step.outcome,
        Err(Rejection::Closed),
        "a clock stepping back does not reopen a closed auction"
    );
    let closed: Vec<_> = h
        .engine
        .advance()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.auction.id == a.id)
        .collect();
    assert_eq!(closed.len(), 1, "advance still closes it");
    let closing = closed[0].auction.state.closing.clone().expect("closed");
    assert_eq!(closing.closed_at, T0 + 60_000);
    assert_eq!(closing.winner, Some(bidder("alice")));
    let stored = h.engine.auction(&a.id).await.unwrap().unwrap();
    assert_eq!(stored.state.bid_count, 1, "no bid got in after the end");
    // An auction created while the clock is behind is decided at the engine's time too.
    let b = create(&h, spec()).await;
    let on_b = bid(&h, &b, "r4", plain("dave", 10_000)).await;
    assert_eq!(on_b.outcome, Err(Rejection::Closed));
}

/// `list_live` pages the auctions not closed yet by current end time (then id), each once,
/// and never a closed one.
pub async fn live_auctions_page_by_end_time(h: Harness) {
    h.clock.freeze_at(T0 + 1);
    let mut mine = Vec::new();
    for (i, end) in [50_000, 30_000, 30_000, 70_000, 40_000]
        .into_iter()
        .enumerate()
    {
        let mut s = spec();
        s.ends_at = T0 + end;
        if i == 3 {
            s.starts_at = T0 + 10_000; // scheduled: live too
        }
        mine.push(create(&h, s).await);
    }
    let cancelled = create(&h, spec()).await;
    h.engine
        .admin_close(&cancelled.id, AdminAction::Cancel, "admin-1")
        .await
        .unwrap()
        .expect("cancelled");
    // A soft-close extension moves an auction's place in the order.
    let mut s = spec();
    s.ends_at = T0 + 20_000;
    s.soft_close = Some(SoftClose {
        window_ms: 30_000,
        extend_ms: 45_000,
        max_extension_ms: None,
    });
    let extended = create(&h, s).await;
    let r = bid(&h, &extended, "r1", plain("alice", 10_000)).await;
    assert_eq!(r.auction.state.ends_at, T0 + 45_001);
    mine.push(r.auction);

    let mut seen: Vec<(i64, AuctionId)> = Vec::new();
    loop {
        let page = h.engine.list_live(seen.last().cloned(), 2).await.unwrap();
        assert!(page.len() <= 2, "a page holds at most `limit`");
        if page.is_empty() {
            break;
        }
        seen.extend(page.into_iter().map(|a| (a.state.ends_at, a.id)));
    }
    let listed: Vec<(i64, AuctionId)> = seen
        .iter()
        .filter(|(_, id)| mine.iter().any(|a| a.id == *id) || *id == cancelled.id)
        .cloned()
        .collect();
    let mut expected: Vec<(i64, AuctionId)> = mine
        .iter()
        .map(|a| (a.state.ends_at, a.id.clone()))
        .collect();
    expected.sort();
    assert_eq!(
        listed, expected,
        "by end time then id, each once, no closed one"
    );
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "the whole listing is in order"
    );
    assert!(h.engine.list_live(None, 0).await.unwrap().is_empty());
}
