//! Differential test: the Lua restatement of the rules must not drift from `gavel-core`.
//!
//! Proptest generates random auctions (increment tables, reserves, buy-now, soft close,
//! prices near the 2^53 − 1 cap) and random sequences of bids (plain, max, buy-now, with
//! and without `expected_seq`, repeated request ids), clock moves, `advance` calls and
//! admin closes. The same sequence runs on the memory engine (on a SQLite archive in a
//! temp dir) and on the Redis engine (real Redis, own key prefix), both on one frozen
//! clock; every reply, every transition and the final states must be identical.

use gavel_core::{
    Auction, AuctionId, AuctionSpec, BidKind, BidRequest, Bidder, BidderId, Currency,
    IncrementBand, IncrementPolicy, Money, RequestId, SoftClose, MAX_AMOUNT,
};
use gavel_engine::memory::{MemoryConfig, MemoryEngine};
use gavel_engine::redis::{RedisConfig, RedisEngine};
use gavel_engine::{AdminAction, Clock, Engine};
use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;

const T0: i64 = 1_767_225_600_000;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

#[derive(Clone, Debug)]
enum Op {
    /// `amount` is `min_bid + step * increment` at the time of the bid (clamped to the
    /// valid range), or the buy-now price when `exact_buy_now`.
    Bid {
        auction: usize,
        who: usize,
        kind: BidKind,
        step: i64,
        exact_buy_now: bool,
        expected: Option<i64>,
        request: u8,
    },
    Tick(i64),
    /// Moves the clock (forward only) to a boundary of an auction, give or take 1 ms:
    /// its start, its current end, the start of its soft-close window, or its cap.
    Boundary {
        auction: usize,
        which: u8,
        delta: i64,
    },
    Advance,
    Admin {
        auction: usize,
        cancel: bool,
    },
}

fn money(v: i64) -> Money {
    Money::new(v.clamp(1, MAX_AMOUNT)).unwrap()
}

fn spec_strategy() -> impl Strategy<Value = AuctionSpec> {
    let start = prop_oneof![
        Just(100i64),
        1_000i64..5_000,
        Just(MAX_AMOUNT - 300),
        Just(MAX_AMOUNT)
    ];
    let increment = prop_oneof![
        (1i64..500).prop_map(|a| IncrementPolicy::Fixed { amount: money(a) }),
        (
            1i64..50,
            1i64..300,
            100i64..3_000,
            1i64..900,
            3_000i64..8_000
        )
            .prop_map(|(a, b, from_b, c, from_c)| IncrementPolicy::Table {
                bands: vec![
                    IncrementBand {
                        from: 0,
                        increment: money(a),
                    },
                    IncrementBand {
                        from: from_b,
                        increment: money(b),
                    },
                    IncrementBand {
                        from: from_c,
                        increment: money(c),
                    },
                ],
            }),
    ];
    let soft_close = prop_oneof![
        Just(None),
        (
            1i64..20_000,
            1i64..20_000,
            prop_oneof![Just(None), (0i64..30_000).prop_map(Some)]
        )
            .prop_map(|(w, e, m)| Some(SoftClose {
                window_ms: w,
                extend_ms: e,
                max_extension_ms: m,
            })),
    ];
    (
        start,
        increment,
        prop::option::of(0i64..3_000),
        prop::option::of(0i64..5_000),
        soft_close,
    )
        .prop_map(|(start, increment, reserve, buy_now, soft_close)| {
            let reserve = reserve.map(|r| money(start.saturating_add(r)));
            let floor = reserve.map_or(start, |r| r.minor_units().max(start));
            AuctionSpec {
                title: "Differential lot".into(),
                description: String::new(),
                currency: Currency::parse("USD").unwrap(),
                starting_price: money(start),
                increment,
                starts_at: T0,
                ends_at: T0 + 60_000,
                reserve,
                buy_now: buy_now.map(|b| money(floor.saturating_add(b))),
                soft_close,
            }
        })
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        4 => Just(BidKind::Plain),
        3 => Just(BidKind::Max),
        1 => Just(BidKind::BuyNow),
    ];
    prop_oneof![
        8 => (0usize..2, 0usize..4, kind, -2i64..8, any::<bool>(),
              prop::option::of(-1i64..2), 0u8..6)
            .prop_map(|(auction, who, kind, step, exact_buy_now, expected, request)| Op::Bid {
                auction, who, kind, step, exact_buy_now, expected, request,
            }),
        2 => (0i64..15_000).prop_map(Op::Tick),
        2 => (0usize..2, 0u8..4, -1i64..=1)
            .prop_map(|(auction, which, delta)| Op::Boundary { auction, which, delta }),
        1 => Just(Op::Advance),
        1 => (0usize..2, any::<bool>()).prop_map(|(auction, cancel)| Op::Admin { auction, cancel }),
    ]
}

fn bidder(i: usize) -> Bidder {
    Bidder {
        id: BidderId::parse(format!("u-{i}")).unwrap(),
        name: format!("Bidder \"{i}\" ü").into(),
    }
}

struct Pair {
    memory: Arc<dyn Engine>,
    redis: Arc<dyn Engine>,
    clock: Clock,
    _dir: tempfile::TempDir,
}

async fn pair() -> Pair {
    let clock = Clock::system();
    clock.freeze_at(T0 - 500);
    let dir = tempfile::tempdir().unwrap();
    let archive = gavel_archive::build_sqlite(dir.path()).unwrap();
    let memory = MemoryEngine::start(
        archive,
        clock.clone(),
        MemoryConfig {
            batch_window: Duration::from_micros(200),
            ..MemoryConfig::default()
        },
    )
    .await
    .unwrap();
    let prefix = gavel_engine::conformance::redis_test_prefix(&redis_url(), "gdiff").await;
    let mut config = RedisConfig::new(redis_url(), prefix);
    config.test_clock = Some(clock.clone());
    let redis = RedisEngine::connect(config)
        .await
        .expect("Redis is reachable");
    Pair {
        memory: Arc::new(memory),
        redis: Arc::new(redis),
        clock,
        _dir: dir,
    }
}

fn transitions(changes: &[gavel_engine::ChangeNotice]) -> Vec<(String, u64, String)> {
    let mut v: Vec<_> = changes
        .iter()
        .map(|c| {
            (
                c.auction.id.to_string(),
                c.auction.state.seq,
                format!("{:?}", c.event),
            )
        })
        .collect();
    v.sort();
    v
}

async fn run_case(specs: Vec<AuctionSpec>, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let p = pair().await;
    let mut ids = Vec::new();
    for (n, spec) in specs.into_iter().enumerate() {
        let a = Auction::new(
            AuctionId::parse(format!("d{n}-{}", uuid::Uuid::new_v4().simple())).unwrap(),
            spec,
        )
        .unwrap();
        p.memory.create_auction(a.clone()).await.unwrap();
        p.redis.create_auction(a.clone()).await.unwrap();
        ids.push(a.id);
    }
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Bid {
                auction,
                who,
                kind,
                step,
                exact_buy_now,
                expected,
                request,
            } => {
                let id = &ids[*auction % ids.len()];
                let current = p.memory.auction(id).await.unwrap().unwrap();
                let amount = match (kind, exact_buy_now, current.spec.buy_now) {
                    (BidKind::BuyNow, true, Some(price)) => price,
                    _ => {
                        let base = current.min_bid().minor_units();
                        let inc = current.increment().minor_units();
                        money(base.saturating_add(step.saturating_mul(inc)))
                    }
                };
                let req = BidRequest {
                    bidder: bidder(*who),
                    amount,
                    kind: *kind,
                    expected_seq: expected
                        .map(|off| (current.state.seq as i64 + off).max(0) as u64),
                };
                let rid = RequestId::parse(format!("r{who}-{request}")).unwrap();
                let m = p.memory.place_bid(id, &rid, req.clone()).await;
                let r = p.redis.place_bid(id, &rid, req.clone()).await;
                prop_assert_eq!(
                    m.as_ref().ok(),
                    r.as_ref().ok(),
                    "op {}: {:?} on {:?}",
                    i,
                    req,
                    current.state
                );
                prop_assert!(m.is_ok(), "engines answered: {:?}", m);
            }
            Op::Tick(ms) => p.clock.advance(*ms),
            Op::Boundary {
                auction,
                which,
                delta,
            } => {
                let id = &ids[*auction % ids.len()];
                let a = p.memory.auction(id).await.unwrap().unwrap();
                let sc = a.spec.soft_close;
                let target = match which {
                    0 => a.spec.starts_at,
                    1 => a.state.ends_at,
                    2 => a.state.ends_at - sc.map_or(0, |s| s.window_ms),
                    _ => a.spec.ends_at + sc.and_then(|s| s.max_extension_ms).unwrap_or(0),
                } + delta;
                if target > p.clock.now() {
                    p.clock.freeze_at(target);
                }
            }
            Op::Advance => {
                let m = p.memory.advance().await.unwrap();
                let r = p.redis.advance().await.unwrap();
                prop_assert_eq!(transitions(&m), transitions(&r), "op {}: advance", i);
                for (a, b) in m.iter().zip(r.iter()) {
                    if a.auction.id == b.auction.id {
                        prop_assert_eq!(&a.auction, &b.auction);
                    }
                }
            }
            Op::Admin { auction, cancel } => {
                let id = &ids[*auction % ids.len()];
                let action = if *cancel {
                    AdminAction::Cancel
                } else {
                    AdminAction::EndEarly
                };
                let m = p.memory.admin_close(id, action, "admin-9").await.unwrap();
                let r = p.redis.admin_close(id, action, "admin-9").await.unwrap();
                prop_assert_eq!(m, r, "op {}: admin {:?}", i, action);
            }
        }
    }
    for id in &ids {
        let m = p.memory.auction(id).await.unwrap();
        let r = p.redis.auction(id).await.unwrap();
        prop_assert_eq!(&m, &r, "final state of {}", id);
        let mb = p.memory.recent_bids(id, 20).await.unwrap();
        let rb = p.redis.recent_bids(id, 20).await.unwrap();
        prop_assert_eq!(mb, rb, "recent bids of {}", id);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_redis_engine_decides_exactly_like_the_memory_engine(
        specs in prop::collection::vec(spec_strategy(), 1..=2),
        ops in prop::collection::vec(op_strategy(), 1..40),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run_case(specs, ops))?;
    }
}
