//! A live auction's slot moves to another master of a Redis Cluster while bids arrive
//! through two engines (two nodes): no bid is lost, duplicated or decided twice, and the
//! other node's change feed converges on the final state.
//!
//! Needs a Redis Cluster (`scripts/redis-cluster.sh`), so it is `#[ignore]`d in the plain
//! run and run by `scripts/test.sh` as
//! `REDIS_URL=redis://127.0.0.1:7001 cargo test -p gavel-engine --test redis_cluster_reshard -- --ignored`.
//! The slot is moved by hand, as `redis-cli --cluster reshard` does it: `CLUSTER SETSLOT
//! IMPORTING`/`MIGRATING`, `MIGRATE` key by key (slowly, so bids land while the slot is
//! half-moved and meet `ASK`/`TRYAGAIN`), then `CLUSTER SETSLOT NODE` on every master.

use gavel_core::{AuctionId, BidKind, BidRequest, Bidder, BidderId, Money, RequestId};
use gavel_engine::conformance::{spec, T0};
use gavel_engine::redis::{RedisConfig, RedisEngine};
use gavel_engine::{Clock, Engine, EngineError};
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:7001".into())
}

/// One master of the cluster: its id and a direct connection.
struct Master {
    id: String,
    host: String,
    port: u16,
    conn: redis::aio::MultiplexedConnection,
}

async fn direct(host: &str, port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://{host}:{port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The masters, and which one owns `slot`.
async fn masters(slot: u16) -> (Vec<Master>, usize) {
    let url = redis_url();
    let addr = url.trim_start_matches("redis://").trim_end_matches('/');
    let (host, port) = addr.split_once(':').unwrap();
    let mut seed = direct(host, port.parse().unwrap()).await;
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut seed)
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut owner = None;
    for line in nodes.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if !f[2].split(',').any(|x| x == "master") || f[2].contains("fail") {
            continue;
        }
        let hp = f[1].split('@').next().unwrap();
        let (h, p) = hp.rsplit_once(':').unwrap();
        for range in &f[8..] {
            let (lo, hi) = match range.split_once('-') {
                Some((lo, hi)) => (lo.parse::<u16>(), hi.parse::<u16>()),
                None => (range.parse::<u16>(), range.parse::<u16>()),
            };
            if let (Ok(lo), Ok(hi)) = (lo, hi) {
                if (lo..=hi).contains(&slot) {
                    owner = Some(out.len());
                }
            }
        }
        out.push(Master {
            id: f[0].to_string(),
            host: h.to_string(),
            port: p.parse().unwrap(),
            conn: direct(h, p.parse().unwrap()).await,
        });
    }
    assert!(out.len() >= 2, "a cluster of at least two masters: {nodes}");
    (out, owner.expect("the slot is served"))
}

async fn setslot(m: &mut Master, slot: u16, args: &[&str]) {
    let mut c = redis::cmd("CLUSTER");
    c.arg("SETSLOT").arg(slot);
    for a in args {
        c.arg(*a);
    }
    let _: () = c.query_async(&mut m.conn).await.unwrap();
}

/// Moves `slot` from `from` to `to`, one key at a time with a pause between keys.
async fn move_slot(slot: u16, from: usize, to: usize, pause: Duration) {
    let (mut ms, owner) = masters(slot).await;
    assert_eq!(owner, from);
    let (src_id, dst_id) = (ms[from].id.clone(), ms[to].id.clone());
    setslot(&mut ms[to], slot, &["IMPORTING", &src_id]).await;
    setslot(&mut ms[from], slot, &["MIGRATING", &dst_id]).await;
    let (dst_host, dst_port) = (ms[to].host.clone(), ms[to].port);
    loop {
        let keys: Vec<String> = redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(slot)
            .arg(1)
            .query_async(&mut ms[from].conn)
            .await
            .unwrap();
        let Some(key) = keys.first() else { break };
        let _: redis::Value = redis::cmd("MIGRATE")
            .arg(&dst_host)
            .arg(dst_port)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS")
            .arg(key)
            .query_async(&mut ms[from].conn)
            .await
            .unwrap();
        tokio::time::sleep(pause).await;
    }
    // As redis-cli does: the new owner first, then the old one, then everyone else.
    setslot(&mut ms[to], slot, &["NODE", &dst_id]).await;
    setslot(&mut ms[from], slot, &["NODE", &dst_id]).await;
    for (i, m) in ms.iter_mut().enumerate() {
        if i != from && i != to {
            setslot(m, slot, &["NODE", &dst_id]).await;
        }
    }
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
#[ignore = "needs a Redis Cluster: scripts/redis-cluster.sh, REDIS_URL=redis://127.0.0.1:7001"]
async fn a_live_auctions_slot_moves_while_bids_arrive_and_nothing_is_lost_or_decided_twice() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let prefix = gavel_engine::conformance::redis_test_prefix(&redis_url(), "gshard").await;
        let clock = Clock::system();
        clock.freeze_at(T0 + 1);
        let engine = |c: &Clock| {
            let mut config = RedisConfig::new(redis_url(), prefix.clone());
            config.test_clock = Some(c.clone());
            RedisEngine::connect(config)
        };
        let a = engine(&clock).await.expect("the cluster is reachable");
        let b = engine(&clock).await.expect("the cluster is reachable");
        let mut feed_b = b.take_changes().unwrap();
        let id = AuctionId::parse(format!("m-{}", uuid::Uuid::new_v4().simple())).unwrap();
        let auction = gavel_core::Auction::new(id.clone(), spec()).unwrap();
        a.create_auction(auction).await.unwrap();
        b.watch(&id).await.unwrap();
        let slot = {
            let key = a.keys().hash(&id);
            let mut c = gavel_engine::redis::conn::connect(&redis_url())
                .await
                .unwrap();
            let s: u16 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(&key)
                .query_async(&mut c)
                .await
                .unwrap();
            s
        };
        let (ms, from) = masters(slot).await;
        let to = (from + 1) % ms.len();
        drop(ms);

        // Bids: alternately through a and b, each 1,000 above the last, every one retried
        // with its request id until it has an answer (a retry of a bid that ran is a repeat).
        const BIDS: usize = 120;
        let bidding = {
            let (a, b, id) = (a.clone(), b.clone(), id.clone());
            tokio::spawn(async move {
                let mut retried = 0;
                for i in 0..BIDS {
                    let node = if i % 2 == 0 { &a } else { &b };
                    let who = if i % 2 == 0 { "ann" } else { "bob" };
                    let rid = RequestId::parse(format!("r{i}")).unwrap();
                    let amount = 10_000 + 1_000 * i as i64;
                    let started = Instant::now();
                    loop {
                        match node.place_bid(&id, &rid, plain(who, amount)).await {
                            Ok(reply) => {
                                assert_eq!(reply.outcome, Ok(()), "bid {i}: {reply:?}");
                                break;
                            }
                            Err(EngineError::Unavailable(_) | EngineError::OutcomeUnknown(_))
                                if started.elapsed() < Duration::from_secs(20) =>
                            {
                                retried += 1;
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            Err(e) => panic!("bid {i}: {e:?}"),
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                retried
            })
        };
        tokio::time::sleep(Duration::from_millis(150)).await;
        move_slot(slot, from, to, Duration::from_millis(40)).await;
        let retried = bidding.await.unwrap();
        eprintln!("bids retried after unavailable/unknown: {retried}");

        // The slot really moved.
        let (_, owner) = masters(slot).await;
        assert_eq!(owner, to, "the auction's slot is on its new master");

        // Decided once each: the state counts every bid once, the log holds one entry per
        // change with seqs 1..=BIDS+1, and no request appears twice in it.
        let state = a.auction(&id).await.unwrap().unwrap().state;
        assert_eq!(state.bid_count as usize, BIDS);
        assert_eq!(state.seq as usize, BIDS + 1);
        assert_eq!(
            state.price,
            Some(Money::new(10_000 + 1_000 * (BIDS as i64 - 1)).unwrap())
        );
        let mut c = gavel_engine::redis::conn::connect(&redis_url())
            .await
            .unwrap();
        let log: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(a.keys().log(&id))
            .arg("-")
            .arg("+")
            .query_async(&mut c)
            .await
            .unwrap();
        let mut seqs = Vec::new();
        let mut requests = HashSet::new();
        for e in &log.ids {
            let json: String = e.get("c").unwrap();
            let change = gavel_engine::redis::wire::WireChange::parse(&json).unwrap();
            seqs.push(change.state.seq);
            if let Some(r) = change.req {
                assert!(requests.insert(r.to_string()), "request {r} logged twice");
            }
        }
        assert_eq!(seqs, (1..=BIDS as u64 + 1).collect::<Vec<_>>());
        assert_eq!(requests.len(), BIDS, "every accepted request logged once");

        // The other node's feed converges: in seq order, never twice, ending at the end.
        let mut last = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while last < state.seq && Instant::now() < deadline {
            if let Ok(Some(change)) =
                tokio::time::timeout(Duration::from_millis(200), feed_b.recv()).await
            {
                if change.auction.id == id {
                    assert!(change.auction.state.seq > last, "delivered in order, once");
                    last = change.auction.state.seq;
                }
            }
        }
        assert_eq!(last, state.seq, "node b's feed reached the final state");
    })
    .await
    .expect("finishes within 90 s");
}
