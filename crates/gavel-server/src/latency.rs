//! Delivery latency as users see it: how long after the authority decided a change its
//! update reached them.
//!
//! Two measurements, both from the authority's time of the change (`decided_at`):
//! - **server**: decision → frame written to the socket, measured here for every update
//!   of every connection (the writer records it after a successful flush);
//! - **client**: decision → received, reported by the clients every 30 s as bucket counts
//!   (`latency_report`), computed with their measured server-clock offset (± half the round
//!   trip of their best clock sample, which they send along).
//!
//! Both are fixed-bucket histograms over [`LATENCY_BOUNDS_MS`] made of atomic counters: an
//! update fanned out to 100 000 watchers costs 100 000 atomic adds and no memory (the
//! `metrics` crate's histograms keep every sample until the next upkeep). They are exported
//! overall in `/metrics` (`gavel_delivery_seconds`, `gavel_client_delivery_seconds`, no
//! per-auction label) and per watched auction through `GET /api/admin/latency`.

use gavel_protocol::{LatencyHistogram, LatencyPair, LatencyReport, LATENCY_BOUNDS_MS};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Buckets: one per bound and one for everything slower.
pub const BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// The bucket a latency of `ms` falls in (negative latencies, from clock error, in the first).
fn bucket_of(ms: i64) -> usize {
    let ms = ms.max(0) as u64;
    LATENCY_BOUNDS_MS
        .iter()
        .position(|b| ms <= *b)
        .unwrap_or(LATENCY_BOUNDS_MS.len())
}

/// A stand-in for the updates a client counted in bucket `i`, for the histogram's sum:
/// the middle of the bucket (the last one: twice its lower bound).
fn representative_ms(i: usize) -> u64 {
    let low = if i == 0 { 0 } else { LATENCY_BOUNDS_MS[i - 1] };
    match LATENCY_BOUNDS_MS.get(i) {
        Some(high) => (low + high) / 2,
        None => low * 2,
    }
}

/// A fixed-bucket histogram of milliseconds.
pub struct Histogram {
    counts: [AtomicU64; BUCKETS],
    sum_ms: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub const fn new() -> Self {
        Histogram {
            counts: [const { AtomicU64::new(0) }; BUCKETS],
            sum_ms: AtomicU64::new(0),
        }
    }

    pub fn record_ms(&self, ms: i64) {
        self.counts[bucket_of(ms)].fetch_add(1, Ordering::Relaxed);
        self.sum_ms.fetch_add(ms.max(0) as u64, Ordering::Relaxed);
    }

    /// Adds a client's bucket counts (exactly [`BUCKETS`] of them; checked by
    /// [`LatencyReport::validate`]). The sum grows by each bucket's middle: only the buckets
    /// and the count are exact for client reports.
    pub fn add_counts(&self, counts: &[u64]) {
        for (i, c) in counts.iter().enumerate().take(BUCKETS) {
            if *c > 0 {
                self.counts[i].fetch_add(*c, Ordering::Relaxed);
                self.sum_ms
                    .fetch_add(c.saturating_mul(representative_ms(i)), Ordering::Relaxed);
            }
        }
    }

    pub fn counts(&self) -> [u64; BUCKETS] {
        std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed))
    }

    /// The histogram as the admin API shows it.
    pub fn view(&self) -> LatencyHistogram {
        let counts = self.counts();
        let count: u64 = counts.iter().sum();
        let quantile = |q: f64| -> Option<u64> {
            if count == 0 {
                return None;
            }
            let want = (q * count as f64).ceil() as u64;
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= want {
                    return LATENCY_BOUNDS_MS.get(i).copied();
                }
            }
            None
        };
        LatencyHistogram {
            counts: counts.to_vec(),
            count,
            p50_ms: quantile(0.5),
            p95_ms: quantile(0.95),
            p99_ms: quantile(0.99),
        }
    }

    /// Appends the histogram in the Prometheus text format, in seconds.
    fn render(&self, name: &str, help: &str, out: &mut String) {
        let counts = self.counts();
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, c) in counts.iter().enumerate() {
            cumulative += c;
            match LATENCY_BOUNDS_MS.get(i) {
                Some(b) => {
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{le=\"{}\"}} {cumulative}",
                        *b as f64 / 1000.0
                    );
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let sum = self.sum_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// Server-measured and client-reported latency of one scope (this node, or one auction).
#[derive(Default)]
pub struct Stats {
    pub server: Histogram,
    pub client: Histogram,
    reports: AtomicU64,
    max_clock_error_ms: AtomicU64,
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stats").finish_non_exhaustive()
    }
}

impl Stats {
    pub const fn new() -> Self {
        Stats {
            server: Histogram::new(),
            client: Histogram::new(),
            reports: AtomicU64::new(0),
            max_clock_error_ms: AtomicU64::new(0),
        }
    }

    /// Counts one client report's entry for this scope.
    pub fn add_report(&self, counts: &[u64], clock_error_ms: u64) {
        self.client.add_counts(counts);
        self.reports.fetch_add(1, Ordering::Relaxed);
        self.max_clock_error_ms
            .fetch_max(clock_error_ms, Ordering::Relaxed);
    }

    pub fn view(&self) -> LatencyPair {
        LatencyPair {
            server: self.server.view(),
            client: self.client.view(),
            reports: self.reports.load(Ordering::Relaxed),
            max_clock_error_ms: self.max_clock_error_ms.load(Ordering::Relaxed),
        }
    }
}

/// This process's totals (what `/metrics` exports).
pub static OVERALL: Stats = Stats::new();

/// Reports received, and refused as invalid.
static REPORTS: AtomicU64 = AtomicU64::new(0);
static REPORTS_REFUSED: AtomicU64 = AtomicU64::new(0);

/// Checks one client report and records it into the totals (every entry; the caller adds
/// the entries to their auctions' scopes); refuses one out of bounds, saying why.
pub fn accept_report(report: &LatencyReport) -> Result<(), String> {
    if let Err(e) = report.validate() {
        REPORTS_REFUSED.fetch_add(1, Ordering::Relaxed);
        return Err(e);
    }
    REPORTS.fetch_add(1, Ordering::Relaxed);
    let mut total = [0u64; BUCKETS];
    for a in &report.auctions {
        for (t, c) in total.iter_mut().zip(&a.counts) {
            *t += c;
        }
    }
    OVERALL.add_report(&total, report.clock_error_ms);
    Ok(())
}

/// Appends the latency metrics to a `/metrics` page.
pub fn render(out: &mut String) {
    OVERALL.server.render(
        "gavel_delivery_seconds",
        "Decision (authority time of the change) to update frame written, every update sent.",
        out,
    );
    OVERALL.client.render(
        "gavel_client_delivery_seconds",
        "Decision to update received, as clients report it (clock error in gavel_client_clock_error_seconds_max; _sum approximated by bucket middles).",
        out,
    );
    let counter = |out: &mut String, name: &str, help: &str, v: u64| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {v}");
    };
    counter(
        out,
        "gavel_latency_reports_total",
        "Client latency reports accepted.",
        REPORTS.load(Ordering::Relaxed),
    );
    counter(
        out,
        "gavel_latency_reports_refused_total",
        "Client latency reports refused as out of bounds.",
        REPORTS_REFUSED.load(Ordering::Relaxed),
    );
    let _ = writeln!(
        out,
        "# HELP gavel_client_clock_error_seconds_max The largest clock error bound (half a round trip) a client report claimed."
    );
    let _ = writeln!(out, "# TYPE gavel_client_clock_error_seconds_max gauge");
    let _ = writeln!(
        out,
        "gavel_client_clock_error_seconds_max {}",
        OVERALL.max_clock_error_ms.load(Ordering::Relaxed) as f64 / 1000.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_the_bucket_of_their_upper_bound() {
        assert_eq!(bucket_of(-5), 0);
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(2), 1);
        assert_eq!(bucket_of(3), 2);
        assert_eq!(bucket_of(10_000), LATENCY_BOUNDS_MS.len() - 1);
        assert_eq!(bucket_of(10_001), LATENCY_BOUNDS_MS.len());
    }

    #[test]
    fn quantiles_are_the_bound_of_the_bucket_that_reaches_them() {
        let h = Histogram::new();
        assert_eq!(h.view().p50_ms, None);
        for _ in 0..90 {
            h.record_ms(4);
        }
        for _ in 0..10 {
            h.record_ms(200);
        }
        let v = h.view();
        assert_eq!(v.count, 100);
        assert_eq!(
            (v.p50_ms, v.p95_ms, v.p99_ms),
            (Some(5), Some(250), Some(250))
        );
        h.record_ms(60_000);
        h.record_ms(60_000);
        assert_eq!(h.view().p99_ms, None, "slower than the last bound");
    }

    #[test]
    fn the_prometheus_text_is_cumulative_and_in_seconds() {
        let h = Histogram::new();
        h.record_ms(3);
        h.record_ms(3);
        h.record_ms(20_000);
        let mut out = String::new();
        h.render("x_seconds", "help", &mut out);
        assert!(out.contains("x_seconds_bucket{le=\"0.002\"} 0\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"10\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_sum 20.006\n"), "{out}");
        assert!(out.contains("x_seconds_count 3\n"), "{out}");
    }

    #[test]
    fn client_counts_add_to_their_buckets() {
        let s = Stats::new();
        let mut counts = vec![0; BUCKETS];
        counts[3] = 4;
        counts[BUCKETS - 1] = 1;
        s.add_report(&counts, 7);
        s.add_report(&counts, 3);
        let v = s.view();
        assert_eq!(v.reports, 2);
        assert_eq!(v.max_clock_error_ms, 7);
        assert_eq!(v.client.count, 10);
        assert_eq!(v.client.counts[3], 8);
        assert_eq!(v.server.count, 0);
    }
}
