//! Property: nothing addressed to a user ever contains a proxy maximum that is not their own
//! (issue 10, item 1).
//!
//! Random sequences of bids (plain, max, buy-now; request ids reused, so many are retries),
//! subscriptions, history reads, lobby reads, clock moves and restarts run against a real
//! engine with the server's own fan-out hub and views. Every answer, update, snapshot,
//! history page and lobby a user receives is checked: a `your_max` and any "maximum"
//! named in a message must be one the user set. Every log line written meanwhile is
//! checked to name no maximum at all. A retried request that was accepted must get its
//! first answer again (same outcome, same message, the same auction state), before and
//! after a restart.
//!
//! Engine-generic: the memory engine (restarts on the same SQLite file) always, and the
//! Redis engine (restarts on the same key prefix) on the local Redis.

use gavel_archive::Archive;
use gavel_core::{
    Auction, AuctionId, AuctionSpec, BidKind, BidRequest, Bidder, BidderId, Currency,
    IncrementPolicy, Money, RequestId, SoftClose,
};
use gavel_engine::memory::{MemoryConfig, MemoryEngine};
use gavel_engine::redis::{RedisConfig, RedisEngine};
use gavel_engine::{Clock, Engine};
use gavel_server::fanout::{Hub, SharedFrame, Start, Watch};
use gavel_server::views;
use proptest::prelude::*;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

const T0: i64 = 1_767_225_600_000;
const USERS: usize = 4;

// ------------------------------------------------------------------------- the checker

/// Every maximum a message names: `your_max` values and amounts after "maximum is" /
/// "maximum of" in its strings (in minor units).
fn maximums_named(v: &Value) -> Vec<i64> {
    let mut out = Vec::new();
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "your_max" {
                    if let Some(n) = x.as_i64() {
                        out.push(n);
                    }
                }
                out.extend(maximums_named(x));
            }
        }
        Value::Array(a) => a.iter().for_each(|x| out.extend(maximums_named(x))),
        Value::String(s) => {
            for marker in ["maximum is ", "maximum of "] {
                for (at, _) in s.match_indices(marker) {
                    // "<CUR> <units>.<cents>"
                    let rest = &s[at + marker.len()..];
                    let amount: String = rest
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("")
                        .trim_end_matches(['.', ';', ','])
                        .to_string();
                    let mut parts = amount.split('.');
                    let units = parts.next().and_then(|u| u.parse::<i64>().ok());
                    let cents = parts.next().and_then(|c| c.parse::<i64>().ok());
                    match (units, cents) {
                        (Some(u), Some(c)) => out.push(u * 100 + c),
                        // A maximum named in a form we cannot read counts as a leak.
                        _ => out.push(-1),
                    }
                }
            }
        }
        _ => {}
    }
    out
}

/// Why a message addressed to a user with these maximums leaks someone else's, if it does.
fn leak(message: &Value, own: &BTreeSet<i64>) -> Option<String> {
    let foreign: Vec<i64> = maximums_named(message)
        .into_iter()
        .filter(|m| !own.contains(m))
        .collect();
    (!foreign.is_empty()).then(|| format!("names maximum(s) {foreign:?} (own: {own:?}): {message}"))
}

/// Whether a log line names a maximum (none should: maximums are nobody's business but
/// their owner's, and logs are read by operators).
fn log_leak(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    lower.contains("leader_max") || lower.contains("your_max") || lower.contains("maximum")
}

#[test]
fn the_checker_catches_a_leaked_maximum() {
    let own: BTreeSet<i64> = [20_000].into();
    let leaked = serde_json::json!({
        "outcome": "accepted",
        "message": "You lead at USD 110.00; your maximum is USD 500.00.",
        "auction": {"your_max": null}
    });
    assert!(
        leak(&leaked, &own).is_some(),
        "a foreign maximum in a message"
    );
    let field = serde_json::json!({"auction": {"your_max": 50000}});
    assert!(leak(&field, &own).is_some(), "a foreign maximum in a field");
    let nested = serde_json::json!({"auctions": [{"your_max": 50000}]});
    assert!(leak(&nested, &own).is_some(), "a foreign maximum in a list");
    let mine = serde_json::json!({
        "message": "You lead at USD 110.00; your maximum is USD 200.00.",
        "auction": {"your_max": 20000}
    });
    assert_eq!(leak(&mine, &own), None, "one's own maximum is fine");
    let refused = serde_json::json!({
        "message": "Your new maximum must be above your current maximum of USD 500.00."
    });
    assert!(leak(&refused, &own).is_some());
    assert!(log_leak(
        "bid decided auction=a leader_max=Some(Money(50000))"
    ));
    assert!(!log_leak("bid decided auction=a outcome=accepted"));
}

// ------------------------------------------------------------------------- the world

/// Log lines written by the code under test.
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        logs().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("trace,h2=off,hyper=off,tokio_postgres=off,redis=off")
            .with_writer(|| LogWriter)
            .with_ansi(false)
            .try_init();
    });
}

/// Takes the captured log and fails on any line naming a maximum.
fn check_logs() -> Result<(), TestCaseError> {
    let text = String::from_utf8(std::mem::take(&mut *logs().lock().unwrap())).unwrap();
    match text.lines().find(|l| log_leak(l)) {
        Some(line) => Err(TestCaseError::fail(format!(
            "a log line names a maximum: {line}"
        ))),
        None => Ok(()),
    }
}

type Stopped = Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Clone)]
enum Backend {
    /// The memory engine on a SQLite file in this directory.
    Memory(Arc<tempfile::TempDir>),
    /// The Redis engine under this key prefix.
    Redis(String),
}

struct Node {
    engine: Arc<dyn Engine>,
    history: Option<Arc<dyn Archive>>,
    hub: Arc<Hub>,
    stop: CancellationToken,
    stopped: Option<Stopped>,
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

impl Backend {
    async fn start(&self, clock: &Clock) -> Node {
        let (engine, history, stopped): (Arc<dyn Engine>, _, Option<Stopped>) = match self {
            Backend::Memory(dir) => {
                let archive = gavel_archive::build_sqlite(dir.path()).unwrap();
                let engine =
                    MemoryEngine::start(archive.clone(), clock.clone(), MemoryConfig::default())
                        .await
                        .unwrap();
                let stopped: Stopped = Box::pin(engine.stopped());
                (Arc::new(engine), Some(archive), Some(stopped))
            }
            Backend::Redis(prefix) => {
                let mut config = RedisConfig::new(redis_url(), prefix.clone());
                config.test_clock = Some(clock.clone());
                let engine = RedisEngine::connect(config).await.unwrap();
                (Arc::new(engine), None, None)
            }
        };
        let hub = Hub::new(engine.clone(), history.clone());
        let stop = CancellationToken::new();
        let feed = engine.take_changes().expect("a fresh engine's feed");
        tokio::spawn(hub.clone().run(feed, stop.clone()));
        Node {
            engine,
            history,
            hub,
            stop,
            stopped,
        }
    }
}

impl Node {
    async fn shut_down(self) {
        self.stop.cancel();
        let Node {
            engine,
            history,
            hub,
            stopped,
            ..
        } = self;
        drop((engine, history, hub));
        if let Some(stopped) = stopped {
            tokio::time::timeout(Duration::from_secs(10), stopped)
                .await
                .expect("the memory engine stops once nothing holds it");
        }
    }
}

// ------------------------------------------------------------------------- operations

#[derive(Clone, Debug)]
enum Op {
    Bid {
        user: usize,
        auction: usize,
        /// Amount in increments above the starting price.
        steps: i64,
        kind: BidKind,
        /// Request ids repeat, so many bids are retries (of bids with other amounts, too).
        request: u8,
    },
    Subscribe {
        user: usize,
        auction: usize,
    },
    History {
        user: usize,
        auction: usize,
    },
    Lobby {
        user: usize,
    },
    Clock {
        ms: i64,
    },
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        4 => Just(BidKind::Plain),
        4 => Just(BidKind::Max),
        1 => Just(BidKind::BuyNow),
    ];
    prop_oneof![
        10 => (0..USERS, 0..2usize, 0..40i64, kind, 0..6u8).prop_map(
            |(user, auction, steps, kind, request)| Op::Bid { user, auction, steps, kind, request }
        ),
        2 => (0..USERS, 0..2usize).prop_map(|(user, auction)| Op::Subscribe { user, auction }),
        1 => (0..USERS, 0..2usize).prop_map(|(user, auction)| Op::History { user, auction }),
        1 => (0..USERS).prop_map(|user| Op::Lobby { user }),
        1 => (0..25_000i64).prop_map(|ms| Op::Clock { ms }),
        1 => Just(Op::Restart),
    ]
}

fn money(v: i64) -> Money {
    Money::new(v).unwrap()
}

fn bidder(user: usize) -> Bidder {
    Bidder {
        id: BidderId::parse(format!("u-{user}")).unwrap(),
        name: format!("User {user}").into(),
    }
}

/// Two auctions: one with a reserve and buy-now, one with soft close.
fn specs() -> [AuctionSpec; 2] {
    let base = AuctionSpec {
        title: "Lot".into(),
        description: String::new(),
        currency: Currency::parse("USD").unwrap(),
        category: None,
        starting_price: money(10_000),
        increment: IncrementPolicy::Fixed {
            amount: money(1_000),
        },
        starts_at: T0,
        ends_at: T0 + 60_000,
        reserve: Some(money(25_000)),
        buy_now: Some(money(45_000)),
        soft_close: None,
    };
    let soft = AuctionSpec {
        reserve: None,
        buy_now: None,
        soft_close: Some(SoftClose {
            window_ms: 10_000,
            extend_ms: 10_000,
            max_extension_ms: Some(30_000),
        }),
        ..base.clone()
    };
    [base, soft]
}

/// What each user received, checked as it arrives.
struct Inbox {
    /// Amounts each user has bid (their own, whatever became of them).
    own: Vec<BTreeSet<i64>>,
    /// Each user's subscriptions' receivers.
    subscriptions: Vec<Vec<(Watch, broadcast::Receiver<SharedFrame>)>>,
}

impl Inbox {
    fn check(&self, user: usize, message: &Value) -> Result<(), TestCaseError> {
        match leak(message, &self.own[user]) {
            Some(why) => Err(TestCaseError::fail(format!("to user {user}: {why}"))),
            None => Ok(()),
        }
    }

    fn check_text(&self, user: usize, text: &str) -> Result<(), TestCaseError> {
        let v: Value = serde_json::from_str(text).expect("the server sends JSON");
        self.check(user, &v)
    }

    /// Checks every update waiting in the users' subscriptions.
    fn drain(&mut self) -> Result<(), TestCaseError> {
        for user in 0..USERS {
            for i in 0..self.subscriptions[user].len() {
                loop {
                    match self.subscriptions[user][i].1.try_recv() {
                        Ok(frame) => {
                            let text = frame.text.to_string();
                            self.check_text(user, &text)?;
                        }
                        Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    }
                }
            }
        }
        Ok(())
    }
}

/// The parts of an answer that do not depend on when it is read (the status and buy-now
/// availability are placed at the time of reading).
fn timeless(answer: &Value) -> Value {
    let mut a = answer.clone();
    if let Some(view) = a.get_mut("auction").and_then(Value::as_object_mut) {
        view.remove("status");
        view.remove("buy_now_available");
    }
    a
}

async fn run_case(backend: Backend, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let clock = Clock::system();
    clock.freeze_at(T0 + 1);
    let mut node = backend.start(&clock).await;
    let mut ids: Vec<AuctionId> = Vec::new();
    for spec in specs() {
        let id = AuctionId::parse(format!("p-{}", uuid::Uuid::new_v4().simple())).unwrap();
        let a = Auction::new(id.clone(), spec).unwrap();
        node.engine.create_auction(a).await.unwrap();
        ids.push(id);
    }
    let mut inbox = Inbox {
        own: vec![BTreeSet::new(); USERS],
        subscriptions: (0..USERS).map(|_| Vec::new()).collect(),
    };
    // The first accepted answer to each (user, request id, auction).
    let mut accepted: HashMap<(usize, u8, usize), Value> = HashMap::new();
    let _ = check_logs(); // drop what earlier cases logged
    for op in ops {
        match op {
            Op::Bid {
                user,
                auction,
                steps,
                kind,
                request,
            } => {
                let amount = match kind {
                    BidKind::BuyNow => 45_000,
                    // Maximums end in 1 cent so they are never a price a plain bid sets.
                    BidKind::Max => 10_000 + steps * 1_000 + 1,
                    BidKind::Plain => 10_000 + steps * 1_000,
                };
                let request_id = RequestId::parse(format!("r{request}-a{auction}")).unwrap();
                let req = BidRequest {
                    bidder: bidder(user),
                    amount: money(amount),
                    kind,
                    expected_seq: None,
                };
                let reply = node
                    .engine
                    .place_bid(&ids[auction], &request_id, req)
                    .await
                    .expect("the engine answers");
                // Whatever a user sends is theirs to hear again (a leader's plain bid is
                // also "their current maximum" when they raise it).
                inbox.own[user].insert(amount);
                let answer = serde_json::to_value(views::bid_result(
                    &request_id,
                    &reply,
                    &bidder(user).id,
                    node.engine.now(),
                ))
                .unwrap();
                inbox.check(user, &answer)?;
                match accepted.get(&(user, request, auction)) {
                    Some(first) => prop_assert_eq!(
                        timeless(&answer),
                        timeless(first),
                        "a retry of an accepted request gets its first answer"
                    ),
                    None if answer["outcome"] == "accepted" => {
                        accepted.insert((user, request, auction), answer);
                    }
                    None => {}
                }
            }
            Op::Subscribe { user, auction } => {
                let (watch, start, rx) = node.hub.subscribe(&ids[auction], None).await.unwrap();
                match start {
                    Start::Snapshot(text) => inbox.check_text(user, &text)?,
                    Start::Replay(frames) => {
                        for f in frames {
                            inbox.check_text(user, &f.text)?;
                        }
                    }
                }
                inbox.subscriptions[user].push((watch, rx));
            }
            Op::History { user, auction } => {
                let bids = match &node.history {
                    Some(archive) => archive.bids(&ids[auction], None, 200).await.unwrap(),
                    None => node.engine.recent_bids(&ids[auction], 200).await.unwrap(),
                };
                let page: Vec<_> = bids.iter().map(views::bid_view).collect();
                inbox.check(user, &serde_json::to_value(page).unwrap())?;
            }
            Op::Lobby { user } => {
                let (lobby, _rx) = node.hub.lobby().await.unwrap();
                inbox.check_text(user, &lobby)?;
            }
            Op::Clock { ms } => {
                clock.advance(ms);
                node.engine.advance().await.unwrap();
            }
            Op::Restart => {
                inbox.drain()?;
                for subs in &mut inbox.subscriptions {
                    subs.clear();
                }
                node.shut_down().await;
                node = backend.start(&clock).await;
            }
        }
        inbox.drain()?;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    inbox.drain()?;
    node.shut_down().await;
    check_logs()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Cases per engine; `GAVEL_PROPTEST_CASES` runs more.
fn cases(default: u32) -> u32 {
    std::env::var("GAVEL_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(48), ..ProptestConfig::default() })]

    #[test]
    fn memory_engine_never_tells_anyone_another_users_maximum(
        ops in proptest::collection::vec(op(), 1..40)
    ) {
        capture_logs();
        let dir = Arc::new(tempfile::tempdir().unwrap());
        runtime().block_on(run_case(Backend::Memory(dir), ops))?;
    }

    #[test]
    fn redis_engine_never_tells_anyone_another_users_maximum(
        ops in proptest::collection::vec(op(), 1..40)
    ) {
        capture_logs();
        let rt = runtime();
        let prefix = rt.block_on(gavel_engine::conformance::redis_test_prefix(&redis_url(), "gprop"));
        rt.block_on(run_case(Backend::Redis(prefix), ops))?;
    }
}
