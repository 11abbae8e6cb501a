//! State shared by every connection task: the run's auctions, the ledger of scheduled bids,
//! the recorder and the violation list.

use crate::stats::{Events, Recorder, Violations};
use crate::target::Server;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// What became of a scheduled bid.
pub mod outcome {
    /// Not answered yet.
    pub const PENDING: u8 = 0;
    pub const ACCEPTED: u8 = 1;
    /// Decided and refused (`outbid`, `already_leading`, …).
    pub const REJECTED: u8 = 2;
    /// Refused before any decision (`rate_limited`, `invalid_amount`, …): never placed.
    pub const REFUSED: u8 = 3;
    /// `unavailable` or no answer: may or may not have been placed.
    pub const UNKNOWN: u8 = 4;
}

/// One scheduled bid. Its request id is `<run>-<index in the ledger>`.
pub struct BidRecord {
    /// When it is due, µs since the run's epoch. Latencies are measured from here, not from
    /// when the tool got round to sending it, so a late tool cannot hide a slow server.
    pub at_us: u64,
    pub auction: u32,
    pub amount: i64,
    pub bidder: u32,
    pub outcome: AtomicU8,
    /// With `--record`: when it was written to its socket (system clock, µs; 0 = not yet).
    pub sent_wall_us: AtomicI64,
    /// With `--record`: its WebSocket attempt is in the history.
    pub recorded: AtomicBool,
}

/// Every bid of the run, and for each (auction, amount) when the first such bid was due: a
/// watcher matches an `update` to the bid that caused it by its amount.
#[derive(Default)]
pub struct Ledger {
    bids: RwLock<Vec<BidRecord>>,
    due: RwLock<HashMap<(u32, i64), u64>>,
}

impl Ledger {
    /// Appends bids (at, auction, amount, bidder); returns their index range.
    pub fn append(&self, plan: impl IntoIterator<Item = (u64, u32, i64, u32)>) -> Range<u32> {
        let mut bids = self.bids.write();
        let mut due = self.due.write();
        let start = bids.len() as u32;
        for (at_us, auction, amount, bidder) in plan {
            let e = due.entry((auction, amount)).or_insert(at_us);
            *e = (*e).min(at_us);
            bids.push(BidRecord {
                at_us,
                auction,
                amount,
                bidder,
                outcome: AtomicU8::new(outcome::PENDING),
                sent_wall_us: AtomicI64::new(0),
                recorded: AtomicBool::new(false),
            });
        }
        start..bids.len() as u32
    }

    pub fn due_at(&self, auction: u32, amount: i64) -> Option<u64> {
        self.due.read().get(&(auction, amount)).copied()
    }

    pub fn with<R>(&self, idx: u32, f: impl FnOnce(&BidRecord) -> R) -> Option<R> {
        self.bids.read().get(idx as usize).map(f)
    }

    /// (index, at, auction, amount, bidder) of a range, for the scheduler.
    pub fn jobs(&self, range: Range<u32>) -> Vec<(u32, u64, u32, i64, u32)> {
        let bids = self.bids.read();
        range
            .map(|i| {
                let b = &bids[i as usize];
                (i, b.at_us, b.auction, b.amount, b.bidder)
            })
            .collect()
    }

    /// Indices in `range` whose outcome is one of `which`.
    pub fn with_outcome(&self, range: Range<u32>, which: &[u8]) -> Vec<u32> {
        let bids = self.bids.read();
        range
            .filter(|&i| which.contains(&bids[i as usize].outcome.load(Ordering::Relaxed)))
            .collect()
    }

    pub fn len(&self) -> u32 {
        self.bids.read().len() as u32
    }
}

pub struct Ctx {
    /// Prefix of this run's auction ids and request ids.
    pub run: String,
    /// Zero of every timestamp (µs).
    pub epoch: Instant,
    pub servers: Vec<Server>,
    /// Auction ids; watchers and the ledger refer to them by index.
    pub auctions: Vec<String>,
    pub index: HashMap<String, u32>,
    pub ledger: Ledger,
    pub rec: Recorder,
    pub violations: Violations,
    pub events: Events,
    pub ws_config: WebSocketConfig,
    pub source_base: Ipv4Addr,
    pub conns_per_source: usize,
    conn_seq: AtomicUsize,
    /// Open WebSocket connections (watchers and bidders).
    pub open: AtomicU64,
    /// (watcher, auction) subscriptions that received their first snapshot.
    pub subscribed: AtomicU64,
    /// Set when the tool closes its connections on purpose.
    pub stopping: AtomicBool,
    /// `--record`: the history being written.
    pub recorder: Option<Arc<gavel_check::Recorder>>,
}

impl Ctx {
    pub fn new(
        run: String,
        servers: Vec<crate::target::Server>,
        auctions: Vec<String>,
        source_base: Ipv4Addr,
        conns_per_source: usize,
        recorder: Option<Arc<gavel_check::Recorder>>,
    ) -> Self {
        let index = auctions
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i as u32))
            .collect();
        Ctx {
            run,
            epoch: Instant::now(),
            servers,
            auctions,
            index,
            ledger: Ledger::default(),
            rec: Recorder::default(),
            violations: Violations::default(),
            events: Events::default(),
            // Small buffers: the tool holds as many connections as the server.
            ws_config: WebSocketConfig::default()
                .read_buffer_size(8 * 1024)
                .write_buffer_size(0)
                .max_write_buffer_size(1 << 20)
                .max_message_size(Some(4 << 20))
                .max_frame_size(Some(4 << 20)),
            source_base,
            conns_per_source: conns_per_source.max(1),
            conn_seq: AtomicUsize::new(0),
            open: AtomicU64::new(0),
            subscribed: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            recorder,
        }
    }

    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    pub fn request_id(&self, idx: u32) -> String {
        format!("{}-{idx}", self.run)
    }

    pub fn parse_request_id(&self, rid: &str) -> Option<u32> {
        let (run, idx) = rid.rsplit_once('-')?;
        (run == self.run).then(|| idx.parse().ok()).flatten()
    }

    /// Numbers the next connections from `n` on (a worker process holding watchers `n…`
    /// picks the source addresses a single process would have).
    pub fn number_connections_from(&self, n: usize) {
        self.conn_seq.store(n, Ordering::Relaxed);
    }

    /// The source address for the next connection.
    pub fn next_source(&self) -> Ipv4Addr {
        let n = self.conn_seq.fetch_add(1, Ordering::Relaxed);
        crate::sys::source_address(self.source_base, n / self.conns_per_source)
    }
}
