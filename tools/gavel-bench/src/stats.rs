//! Measurements: HDR histograms in microseconds and counters, sharded so thousands of
//! connection tasks on several threads rarely touch the same lock; and the list of
//! correctness violations.

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

const SHARDS: usize = 16;
/// Latencies above a minute are recorded as a minute.
const MAX_US: u64 = 60_000_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

/// What one shard accumulates between two [`Recorder::take`]s.
pub struct Tally {
    /// Scheduled bid send time → a watcher received the matching `update`.
    pub g2g: Histogram<u64>,
    /// Scheduled bid send time → the bidder received its `bid_result` (or error).
    pub rtt: Histogram<u64>,
    /// Scheduled send time → the frame was handed to the socket: the tool's own lateness.
    pub send_lag: Histogram<u64>,
    /// `update` frames received by watchers.
    pub updates: u64,
    /// Updates carrying a bid this run did not schedule (another client's, or a proxy's).
    pub unmatched: u64,
    /// Bids handed to sockets.
    pub sent: u64,
    /// Answers by outcome (`accepted`, `outbid`, …) or error code (`rate_limited`, …).
    pub outcomes: BTreeMap<String, u64>,
    /// Time of the last answer, µs since the run's epoch.
    pub last_answer_us: u64,
}

impl Tally {
    fn new() -> Self {
        Tally {
            g2g: histogram(),
            rtt: histogram(),
            send_lag: histogram(),
            updates: 0,
            unmatched: 0,
            sent: 0,
            outcomes: BTreeMap::new(),
            last_answer_us: 0,
        }
    }

    fn absorb(&mut self, other: &Tally) {
        self.g2g.add(&other.g2g).expect("same bounds");
        self.rtt.add(&other.rtt).expect("same bounds");
        self.send_lag.add(&other.send_lag).expect("same bounds");
        self.updates += other.updates;
        self.unmatched += other.unmatched;
        self.sent += other.sent;
        for (k, v) in &other.outcomes {
            *self.outcomes.entry(k.clone()).or_default() += v;
        }
        self.last_answer_us = self.last_answer_us.max(other.last_answer_us);
    }

    pub fn answers(&self) -> u64 {
        self.outcomes.values().sum()
    }

    pub fn accepted(&self) -> u64 {
        self.outcomes.get("accepted").copied().unwrap_or(0)
    }
}

/// Sharded tallies: a connection always records into the shard of its own number.
pub struct Recorder {
    shards: Vec<Mutex<Tally>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            shards: (0..SHARDS).map(|_| Mutex::new(Tally::new())).collect(),
        }
    }
}

impl Recorder {
    pub fn with<R>(&self, conn: usize, f: impl FnOnce(&mut Tally) -> R) -> R {
        f(&mut self.shards[conn % SHARDS].lock())
    }

    /// Everything recorded since the last take; the shards start again from zero.
    pub fn take(&self) -> Tally {
        let mut all = Tally::new();
        for s in &self.shards {
            let mut s = s.lock();
            all.absorb(&s);
            *s = Tally::new();
        }
        all
    }

    /// Everything recorded since the last take, leaving it in place (for the progress line).
    pub fn peek(&self) -> Tally {
        let mut all = Tally::new();
        for s in &self.shards {
            all.absorb(&s.lock());
        }
        all
    }
}

/// Percentiles of one histogram, in microseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// Correctness violations: counted, with the first few described.
#[derive(Default)]
pub struct Violations {
    count: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl Violations {
    pub fn report(&self, what: impl FnOnce() -> String) {
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        if n < 50 {
            self.samples.lock().push(what());
        }
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn samples(&self) -> Vec<String> {
        self.samples.lock().clone()
    }
}

/// Events counted by kind (connection failures, server errors, resyncs, …).
#[derive(Default)]
pub struct Events(Mutex<BTreeMap<String, u64>>);

impl Events {
    pub fn add(&self, kind: &str) {
        *self.0.lock().entry(kind.to_string()).or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().clone()
    }

    pub fn total(&self) -> u64 {
        self.0.lock().values().sum()
    }
}
