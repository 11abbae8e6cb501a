//! The authority's clock: wall-clock UTC milliseconds.
//!
//! Tests shift or freeze it (never the machine's clock) to put bids exactly one
//! millisecond before or after an end time.

use gavel_core::Millis;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

const NOT_FROZEN: i64 = i64::MIN;

/// System time plus an adjustable offset; optionally frozen. Clones share one setting.
#[derive(Clone, Debug)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
    frozen_at: Arc<AtomicI64>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            offset_ms: Arc::new(AtomicI64::new(0)),
            frozen_at: Arc::new(AtomicI64::new(NOT_FROZEN)),
        }
    }
}

impl Clock {
    /// The machine's wall clock.
    pub fn system() -> Self {
        Clock::default()
    }

    pub fn now(&self) -> Millis {
        let frozen = self.frozen_at.load(Ordering::Relaxed);
        if frozen != NOT_FROZEN {
            return frozen;
        }
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        wall + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Moves this clock forward by `ms` (frozen or not). For tests.
    pub fn advance(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
        let _ = self
            .frozen_at
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |f| {
                (f != NOT_FROZEN).then_some(f + ms)
            });
    }

    /// Stops the clock at `at`. For tests.
    pub fn freeze_at(&self, at: Millis) {
        self.frozen_at.store(at, Ordering::Relaxed);
    }
}

/// Wall-clock now, for code that has no engine at hand.
pub fn system_now() -> Millis {
    Clock::system().now()
}
