//! Micro-benchmarks of the embedded bid path: `cargo bench -p gavel-server --bench bid_path`.
//!
//! - the SQLite archive's batch insert (one transaction per group commit);
//! - the memory engine's `place_bid`, many bids in flight at once, through group commit;
//! - the fan-out: one committed change encoded once and published to 1,000 watchers;
//! - encoding one `update` frame.
//!
//! The Redis engine's bid path joins here once it lands (same `Engine` trait).

use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use gavel_archive::ArchivedChange;
use gavel_core::{
    rules, Auction, AuctionId, AuctionSpec, BidKind, BidRequest, Bidder, BidderId, Change,
    Currency, IncrementPolicy, Money, RequestId,
};
use gavel_engine::memory::{MemoryConfig, MemoryEngine};
use gavel_engine::{Clock, Engine};
use gavel_protocol::ServerMessage;
use gavel_server::fanout::Hub;
use gavel_server::views;
use std::sync::Arc;

fn main() {
    divan::main();
}

fn money(v: i64) -> Money {
    Money::new(v).expect("valid amount")
}

fn spec(now: i64) -> AuctionSpec {
    AuctionSpec {
        title: "Vintage camera".into(),
        description: "Leica M3".into(),
        currency: Currency::parse("USD").expect("valid"),
        category: None,
        starting_price: money(100),
        increment: IncrementPolicy::Fixed { amount: money(1) },
        starts_at: now - 1_000,
        ends_at: now + 3_600_000,
        reserve: None,
        buy_now: None,
        soft_close: None,
    }
}

fn bidder(i: u64) -> Bidder {
    Bidder {
        id: BidderId::parse(format!("u-{}", i % 16)).expect("valid id"),
        name: format!("Bidder {}", i % 16).into(),
    }
}

fn plain(i: u64, amount: i64) -> BidRequest {
    BidRequest {
        bidder: bidder(i),
        amount: money(amount),
        kind: BidKind::Plain,
        expected_seq: None,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The next `n` accepted bids on `a` (advancing it), as the archive receives them.
fn next_changes(a: &mut Auction, n: usize, counter: &mut u64) -> Vec<ArchivedChange> {
    let now = gavel_engine::clock::system_now();
    (0..n)
        .map(|_| {
            *counter += 1;
            let amount = a.min_bid().minor_units();
            let d = rules::place_bid(a, &plain(*counter, amount), now);
            let change: Change = d.change.expect("a bid at the minimum leads");
            *a = change.auction.clone();
            ArchivedChange {
                auction: change.auction,
                event: change.event,
                bid_id: Some(format!("bid-{counter}")),
                request_id: Some(RequestId::parse(format!("r-{counter}")).expect("valid")),
            }
        })
        .collect()
}

#[divan::bench(args = [1, 10, 100])]
fn archive_record_batch(b: Bencher, n: usize) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temp dir");
    let archive = gavel_archive::build_sqlite(dir.path()).expect("the archive opens");
    let now = gavel_engine::clock::system_now();
    let mut a = Auction::new(AuctionId::parse("bench").expect("valid"), spec(now)).expect("valid");
    rt.block_on(archive.create_auction(&a)).expect("created");
    let mut counter = 0u64;
    b.counter(ItemsCount::new(n))
        .with_inputs(|| next_changes(&mut a, n, &mut counter))
        .bench_local_refs(|changes| {
            rt.block_on(archive.record_batch(changes))
                .expect("committed")
        });
}

/// `n` bids in flight at once on one auction, each answered after its group commit.
#[divan::bench(args = [1, 100, 1000], sample_count = 20)]
fn memory_engine_place_bid(b: Bencher, n: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temp dir");
    let engine = rt.block_on(async {
        let archive = gavel_archive::build_sqlite(dir.path()).expect("the archive opens");
        let engine = MemoryEngine::start(archive, Clock::system(), MemoryConfig::default())
            .await
            .expect("the engine starts");
        let mut feed = engine.take_changes().expect("the change feed");
        tokio::spawn(async move { while feed.recv().await.is_some() {} });
        engine
    });
    let now = gavel_engine::clock::system_now();
    let id = AuctionId::parse("bench").expect("valid");
    rt.block_on(engine.create_auction(Auction::new(id.clone(), spec(now)).expect("valid")))
        .expect("created");
    let engine = Arc::new(engine);
    let next = std::cell::Cell::new(0u64);
    b.counter(ItemsCount::new(n)).bench_local(|| {
        let first = next.get();
        next.set(first + n);
        rt.block_on(async {
            let tasks: Vec<_> = (first..first + n)
                .map(|i| {
                    let engine = engine.clone();
                    let id = id.clone();
                    tokio::spawn(async move {
                        let rid = RequestId::parse(format!("r-{i}")).expect("valid");
                        engine
                            .place_bid(&id, &rid, plain(i, 100 + i as i64))
                            .await
                            .expect("decided")
                    })
                })
                .collect();
            for t in tasks {
                black_box(t.await.expect("joined"));
            }
        })
    });
}

/// One committed bid encoded once and published to `watchers` subscribers.
#[divan::bench(args = [1, 1000])]
fn hub_apply(b: Bencher, watchers: usize) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temp dir");
    let (engine, hub, id) = rt.block_on(async {
        let archive = gavel_archive::build_sqlite(dir.path()).expect("the archive opens");
        let engine: Arc<dyn Engine> = Arc::new(
            MemoryEngine::start(archive, Clock::system(), MemoryConfig::default())
                .await
                .expect("the engine starts"),
        );
        let now = engine.now();
        let id = AuctionId::parse("bench").expect("valid");
        engine
            .create_auction(Auction::new(id.clone(), spec(now)).expect("valid"))
            .await
            .expect("created");
        (engine.clone(), Hub::new(engine, None), id)
    });
    let mut receivers = Vec::new();
    for _ in 0..watchers {
        let (_, _, rx) = rt.block_on(hub.subscribe(&id, None)).expect("subscribed");
        receivers.push(rx);
    }
    let mut a = rt
        .block_on(engine.auction(&id))
        .expect("read")
        .expect("exists");
    let mut counter = 0u64;
    b.with_inputs(|| {
        let c = next_changes(&mut a, 1, &mut counter).remove(0);
        Change {
            auction: c.auction,
            event: c.event,
        }
    })
    .bench_local_refs(|change| hub.apply(change));
    drop(receivers);
}

#[divan::bench]
fn encode_update_frame(b: Bencher) {
    let now = gavel_engine::clock::system_now();
    let mut a = Auction::new(AuctionId::parse("bench").expect("valid"), spec(now)).expect("valid");
    let mut counter = 0u64;
    let prev = {
        next_changes(&mut a, 3, &mut counter);
        a.clone()
    };
    let c = next_changes(&mut a, 1, &mut counter).remove(0);
    let entry = match &c.event {
        gavel_core::Event::Bid { entry, .. } => entry.clone(),
        _ => unreachable!("a bid"),
    };
    b.bench(|| {
        ServerMessage::Update(views::update(
            black_box(&prev),
            black_box(&c.auction),
            "bid",
            Some(&entry),
        ))
        .to_json()
    });
}
