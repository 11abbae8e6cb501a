//! Announces openings and closings when their time comes.
//!
//! The clock already decides inside every bid whether an auction is open, so a late
//! closer can never let a late bid in; this task only records and announces what the clock
//! decided, within milliseconds of the deadline.

use gavel_engine::Engine;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The longest the closer sleeps without looking for new deadlines.
const MAX_SLEEP: Duration = Duration::from_millis(50);

pub async fn run(engine: Arc<dyn Engine>, stop: CancellationToken) {
    loop {
        let sleep = match engine.next_deadline().await {
            Ok(Some(at)) => {
                let wait = (at - engine.now()).max(0) as u64;
                Duration::from_millis(wait).min(MAX_SLEEP)
            }
            Ok(None) => MAX_SLEEP,
            Err(e) => {
                tracing::warn!(error = %e, "closer cannot read deadlines");
                Duration::from_millis(500)
            }
        };
        if !sleep.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = stop.cancelled() => return,
            }
        }
        match engine.advance().await {
            Ok(changes) => {
                for c in changes {
                    tracing::info!(auction = %c.auction.id, seq = c.auction.state.seq, status = c.auction.state.status.as_str(), "auction advanced");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "closer could not advance auctions");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stop.cancelled() => return,
                }
            }
        }
        if stop.is_cancelled() {
            return;
        }
    }
}
