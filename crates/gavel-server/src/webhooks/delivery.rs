//! The deliverer: claims due deliveries from the archive's outbox, signs and posts them,
//! and records each outcome.
//!
//! - **At least once.** A delivery is claimed with a lease longer than the HTTP timeout.
//!   A process killed mid-delivery never records the outcome; the lease expires and the
//!   delivery is claimed again (by this node restarted, or by another): the receiver may see
//!   it twice, always with the same `webhook-id`.
//! - **One node at a time.** In distributed mode every node runs a deliverer on the shared
//!   PostgreSQL outbox; the claim (`FOR UPDATE SKIP LOCKED` + lease) gives each delivery
//!   to one of them.
//! - **Retries.** A non-2xx answer, a timeout or a connection error is retried after the
//!   next step of the schedule (±20 % jitter, so receivers coming back are not hit by every
//!   event at once); when the schedule is spent the delivery is marked failed. 410 Gone
//!   fails it at once and disables the endpoint.

use super::signing::Secret;
use super::WebhookSettings;
use gavel_archive::webhooks::{AttemptOutcome, DueDelivery};
use gavel_archive::Archive;
use gavel_core::Millis;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often finished deliveries past the retention are removed.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Deliveries claimed per round.
const CLAIM_BATCH: u32 = 32;
/// The longest an answer body is read (receivers should answer quickly and briefly).
const MAX_LOGGED_BODY: usize = 200;

/// Outcome labels of `gavel_webhook_deliveries_total{outcome}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricOutcome {
    Delivered,
    Retry,
    Failed,
    Gone,
}

impl MetricOutcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricOutcome::Delivered => "delivered",
            MetricOutcome::Retry => "retry",
            MetricOutcome::Failed => "failed",
            MetricOutcome::Gone => "gone",
        }
    }
}

fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Runs until `stop`: claims, posts, records; sleeps `settings.poll` when nothing is due.
pub async fn run(archive: Arc<dyn Archive>, settings: WebhookSettings, stop: CancellationToken) {
    let client = match reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
        // A redirect could send a signed event somewhere the operator never configured.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Gavel-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook HTTP client; no webhooks are delivered");
            return;
        }
    };
    // The lease outlives the longest attempt, so a live deliverer's claim never expires
    // under it.
    let lease = settings.timeout * 2 + Duration::from_secs(5);
    let mut failures = 0u32;
    let mut pruned_at: Option<std::time::Instant> = None;
    loop {
        if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            pruned_at = Some(std::time::Instant::now());
            let before = now_ms() - settings.retention.as_millis() as i64;
            match archive.prune_webhook_outbox(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deliveries = n, "pruned finished webhook deliveries"),
                Err(e) => tracing::warn!(error = %e, "cannot prune the webhook outbox"),
            }
        }
        let now = now_ms();
        let lease_until = now + lease.as_millis() as i64;
        let claimed = tokio::select! {
            r = archive.claim_webhook_deliveries(now, lease_until, &settings.owner, CLAIM_BATCH) => r,
            _ = stop.cancelled() => return,
        };
        let wait = match claimed {
            Ok(due) if due.is_empty() => {
                failures = 0;
                settings.poll
            }
            Ok(due) => {
                failures = 0;
                let full = due.len() as u32 == CLAIM_BATCH;
                let attempts = due
                    .into_iter()
                    .map(|d| attempt(&client, archive.as_ref(), &settings, d));
                // Stopping mid-flight is safe: unrecorded deliveries are claimed again
                // after their lease.
                tokio::select! {
                    _ = futures::future::join_all(attempts) => {}
                    _ = stop.cancelled() => return,
                }
                if full {
                    Duration::ZERO
                } else {
                    settings.poll
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, "cannot read the webhook outbox; retrying");
                (settings.poll * failures.min(10)).min(Duration::from_secs(30))
            }
        };
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}

/// Posts one delivery and records how it went.
async fn attempt(
    client: &reqwest::Client,
    archive: &dyn Archive,
    settings: &WebhookSettings,
    d: DueDelivery,
) {
    let started = std::time::Instant::now();
    let answer = post(client, &d).await;
    let now = now_ms();
    let attempt_no = d.attempts + 1;
    let (outcome, label) = match answer {
        Ok(status) if (200..300).contains(&status) => (
            AttemptOutcome::Delivered { status },
            MetricOutcome::Delivered,
        ),
        Ok(410) => (AttemptOutcome::Gone, MetricOutcome::Gone),
        other => {
            let (status, error) = match other {
                Ok(status) => (Some(status), format!("HTTP {status}")),
                Err(e) => (None, e),
            };
            match settings.schedule.get(d.attempts as usize) {
                Some(delay) => {
                    let next = now + jittered(*delay).as_millis() as i64;
                    tracing::info!(
                        event = %d.event_id, endpoint = %d.endpoint_id, attempt = attempt_no,
                        error = %error, retry_in_ms = next - now,
                        "webhook delivery failed; will retry"
                    );
                    (
                        AttemptOutcome::Retry {
                            status,
                            error,
                            next_attempt_at: next,
                        },
                        MetricOutcome::Retry,
                    )
                }
                None => {
                    tracing::error!(
                        event = %d.event_id, endpoint = %d.endpoint_id, attempts = attempt_no,
                        error = %error, "webhook delivery failed for good: retries spent"
                    );
                    (
                        AttemptOutcome::Failed { status, error },
                        MetricOutcome::Failed,
                    )
                }
            }
        }
    };
    if label == MetricOutcome::Gone {
        tracing::warn!(
            endpoint = %d.endpoint_id, url = %d.url,
            "webhook receiver answered 410 Gone: endpoint disabled"
        );
    }
    metrics::histogram!("gavel_webhook_attempt_seconds").record(started.elapsed().as_secs_f64());
    // Recording can fail (archive down): the lease then expires and the delivery is made
    // again, which at-least-once allows.
    match archive
        .finish_webhook_delivery(&d.event_id, &d.endpoint_id, now, &outcome)
        .await
    {
        Ok(()) => {
            metrics::counter!("gavel_webhook_deliveries_total", "outcome" => label.as_str())
                .increment(1);
            if matches!(label, MetricOutcome::Failed | MetricOutcome::Gone) {
                metrics::counter!("gavel_webhook_deliveries_failed_total").increment(1);
            }
        }
        Err(e) => tracing::warn!(
            event = %d.event_id, endpoint = %d.endpoint_id, error = %e,
            "cannot record a webhook attempt; it will be made again"
        ),
    }
}

/// Signs and posts; the receiver's status, or why there was none.
async fn post(client: &reqwest::Client, d: &DueDelivery) -> Result<u16, String> {
    let secret = Secret::parse(&d.secret).map_err(|e| format!("unusable secret: {e}"))?;
    let timestamp = now_ms() / 1000;
    let signature = secret.sign(&d.event_id, timestamp, d.payload.as_bytes());
    let response = client
        .post(&d.url)
        .header("content-type", "application/json")
        .header("webhook-id", &d.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(d.payload.clone())
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                format!("cannot connect: {e}")
            } else {
                format!("request failed: {e}")
            }
        })?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        // A little of the answer helps whoever reads the logs.
        if let Ok(body) = response.text().await {
            let body: String = body.chars().take(MAX_LOGGED_BODY).collect();
            tracing::debug!(event = %d.event_id, status, body = %body, "webhook receiver refused");
        }
    }
    Ok(status)
}

/// `delay` ±20 %.
pub fn jittered(delay: Duration) -> Duration {
    let factor: f64 = 0.8 + rand::random::<f64>() * 0.4;
    delay.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_a_fifth_of_the_delay() {
        let base = Duration::from_secs(100);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let d = jittered(base);
            assert!(
                d >= Duration::from_secs(80) && d <= Duration::from_secs(120),
                "{d:?}"
            );
            seen.insert(d.as_millis());
        }
        assert!(seen.len() > 10, "the delays vary");
    }
}
