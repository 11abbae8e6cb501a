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
#[derive(Debug)]
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

impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
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

    /// Adds another tally (another shard's, or a worker process's) to this one.
    pub fn absorb(&mut self, other: &Tally) {
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

    /// The tally as a worker process sends it to its parent: histograms in HDR's V2 format.
    pub fn to_wire(&self) -> TallyWire {
        TallyWire {
            g2g: encode(&self.g2g),
            rtt: encode(&self.rtt),
            send_lag: encode(&self.send_lag),
            updates: self.updates,
            unmatched: self.unmatched,
            sent: self.sent,
            outcomes: self.outcomes.clone(),
            last_answer_us: self.last_answer_us,
        }
    }
}

/// A [`Tally`] on the wire between a worker and its parent (JSON, histograms as base64 of
/// HDR's V2 serialization).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TallyWire {
    pub g2g: String,
    pub rtt: String,
    pub send_lag: String,
    pub updates: u64,
    pub unmatched: u64,
    pub sent: u64,
    pub outcomes: BTreeMap<String, u64>,
    pub last_answer_us: u64,
}

fn encode(h: &Histogram<u64>) -> String {
    use base64::Engine as _;
    use hdrhistogram::serialization::Serializer as _;
    let mut bytes = Vec::new();
    hdrhistogram::serialization::V2Serializer::new()
        .serialize(h, &mut bytes)
        .expect("serializing a histogram into memory");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn decode(name: &str, text: &str) -> Result<Histogram<u64>, String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("{name} histogram: not base64 ({e})"))?;
    let h: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("{name} histogram: not an HDR V2 histogram ({e:?})"))?;
    let mine = histogram();
    if (h.low(), h.high(), h.sigfig()) != (mine.low(), mine.high(), mine.sigfig()) {
        return Err(format!(
            "{name} histogram: bounds ({}, {}, {} digits), expected ({}, {}, {})",
            h.low(),
            h.high(),
            h.sigfig(),
            mine.low(),
            mine.high(),
            mine.sigfig()
        ));
    }
    Ok(h)
}

impl TallyWire {
    /// Decodes a worker's tally and checks that it holds together: every update is either
    /// timed (one g2g sample) or unmatched, every bid sent has its send-lag sample, and no
    /// more round trips were timed than answers counted. A worker whose figures do not add
    /// up is not merged.
    pub fn decode(&self) -> Result<Tally, String> {
        let t = Tally {
            g2g: decode("g2g", &self.g2g)?,
            rtt: decode("rtt", &self.rtt)?,
            send_lag: decode("send-lag", &self.send_lag)?,
            updates: self.updates,
            unmatched: self.unmatched,
            sent: self.sent,
            outcomes: self.outcomes.clone(),
            last_answer_us: self.last_answer_us,
        };
        if t.g2g.len() + t.unmatched != t.updates {
            return Err(format!(
                "{} updates, of which {} unmatched, but {} g2g samples",
                t.updates,
                t.unmatched,
                t.g2g.len()
            ));
        }
        if t.send_lag.len() != t.sent {
            return Err(format!(
                "{} bids sent but {} send-lag samples",
                t.sent,
                t.send_lag.len()
            ));
        }
        if t.rtt.len() > t.answers() {
            return Err(format!(
                "{} answers but {} round trips timed",
                t.answers(),
                t.rtt.len()
            ));
        }
        Ok(t)
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

    /// Updates received since the last take (no histograms: cheap enough to poll).
    pub fn updates(&self) -> u64 {
        self.shards.iter().map(|s| s.lock().updates).sum()
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

    /// Adds violations found elsewhere (a worker process): `n` of them, described by
    /// `samples` (the first few).
    pub fn absorb(&self, n: u64, samples: &[String]) {
        let before = self.count.fetch_add(n, Ordering::Relaxed);
        let mut mine = self.samples.lock();
        let room = 50usize.saturating_sub(before as usize).min(samples.len());
        mine.extend(samples[..room].iter().cloned());
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

    pub fn add_n(&self, kind: &str, n: u64) {
        *self.0.lock().entry(kind.to_string()).or_default() += n;
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().clone()
    }

    pub fn total(&self) -> u64 {
        self.0.lock().values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally() -> Tally {
        let mut t = Tally::new();
        for v in [900, 1_200, 35_000, 1_400_000] {
            t.g2g.record(v).unwrap();
        }
        t.updates = 5;
        t.unmatched = 1;
        t.sent = 2;
        t.send_lag.record(10).unwrap();
        t.send_lag.record(20).unwrap();
        t.rtt.record(3_000).unwrap();
        t.outcomes.insert("accepted".into(), 1);
        t.outcomes.insert("outbid".into(), 1);
        t
    }

    #[test]
    fn a_tally_survives_the_trip_from_a_worker() {
        let t = tally();
        let wire: TallyWire =
            serde_json::from_str(&serde_json::to_string(&t.to_wire()).unwrap()).unwrap();
        let back = wire.decode().unwrap();
        assert_eq!(back.g2g, t.g2g);
        assert_eq!(back.rtt, t.rtt);
        assert_eq!(back.send_lag, t.send_lag);
        assert_eq!(
            (
                back.updates,
                back.unmatched,
                back.sent,
                back.outcomes.clone()
            ),
            (5, 1, 2, t.outcomes.clone())
        );
        // Two workers' tallies merge into the sum of both.
        let mut merged = Tally::new();
        merged.absorb(&back);
        merged.absorb(&wire.decode().unwrap());
        assert_eq!(merged.g2g.len(), 8);
        assert_eq!(merged.updates, 10);
        assert_eq!(merged.g2g.max(), t.g2g.max());
    }

    #[test]
    fn a_tally_whose_counts_do_not_add_up_is_refused() {
        let mut w = tally().to_wire();
        w.updates += 1;
        assert!(w.decode().unwrap_err().contains("g2g samples"));
        let mut w = tally().to_wire();
        w.sent = 3;
        assert!(w.decode().unwrap_err().contains("send-lag"));
        let mut w = tally().to_wire();
        w.outcomes.clear();
        assert!(w.decode().unwrap_err().contains("round trips"));
    }

    #[test]
    fn a_histogram_that_is_not_hdr_v2_or_has_other_bounds_is_refused() {
        let mut w = tally().to_wire();
        w.g2g = "not base64!".into();
        assert!(w.decode().unwrap_err().contains("not base64"));
        let mut w = tally().to_wire();
        w.g2g = "AAAAAAAAAAAAAAAA".into();
        assert!(w.decode().unwrap_err().contains("not an HDR V2"));
        let mut w = tally().to_wire();
        w.rtt = encode(&Histogram::<u64>::new_with_bounds(1, 1_000, 2).unwrap());
        assert!(w.decode().unwrap_err().contains("bounds"));
    }

    #[test]
    fn violations_from_elsewhere_add_to_the_count_and_keep_fifty_samples() {
        let v = Violations::default();
        v.report(|| "here".into());
        v.absorb(3, &["a".into(), "b".into(), "c".into()]);
        assert_eq!(v.count(), 4);
        assert_eq!(v.samples(), ["here", "a", "b", "c"]);
        v.absorb(100, &vec!["x".to_string(); 100]);
        assert_eq!(v.count(), 104);
        assert_eq!(v.samples().len(), 50);
    }
}
