//! The webhook outbox on PostgreSQL. Batch events are written by `WRITE_BATCH` itself
//! (same statement as the changes); this module holds the rest: endpoints, the claim
//! (`FOR UPDATE SKIP LOCKED` + a lease, so each delivery is posted by one node at a time)
//! and the outcome.

use super::PgError;
use crate::webhooks::{
    AttemptOutcome, DeliveryRecord, DeliveryStatus, DueDelivery, EndpointSource, EventType,
    OutboxEvent, WebhookEndpoint,
};
use crate::ArchiveError;
use deadpool_postgres::GenericClient;
use gavel_core::Millis;

pub(super) fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Writes events (each once, only if an enabled endpoint wants it) and their deliveries.
pub(super) async fn write_events(
    client: &impl GenericClient,
    events: &[OutboxEvent],
) -> Result<(), PgError> {
    let now = now_ms();
    for e in events {
        let bids_only = e.event_type == EventType::BidAccepted;
        let n = client
            .execute(
                "INSERT INTO webhook_events (id, type, auction_id, payload, created_at)
                 SELECT $1, $2, $3, $4, $5
                  WHERE EXISTS (SELECT 1 FROM webhook_endpoints
                                 WHERE disabled_at IS NULL AND (NOT $6 OR bid_events))
                 ON CONFLICT DO NOTHING",
                &[
                    &e.id,
                    &e.event_type.as_str(),
                    &e.auction_id,
                    &e.payload,
                    &now,
                    &bids_only,
                ],
            )
            .await?;
        if n == 1 {
            client
                .execute(
                    "INSERT INTO webhook_deliveries (event_id, endpoint_id, status,
                                                     next_attempt_at, created_at)
                     SELECT $1, id, 'pending', $2, $2 FROM webhook_endpoints
                      WHERE disabled_at IS NULL AND (NOT $3 OR bid_events)
                     ON CONFLICT DO NOTHING",
                    &[&e.id, &now, &bids_only],
                )
                .await?;
        }
    }
    Ok(())
}

pub(super) async fn put_endpoint(
    client: &impl GenericClient,
    e: &WebhookEndpoint,
) -> Result<(), PgError> {
    client
        .execute(
            "INSERT INTO webhook_endpoints (id, url, secret, bid_events, source, description,
                                            created_at, disabled_at, disabled_reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL)
             ON CONFLICT (id) DO UPDATE SET
                 url = excluded.url, secret = excluded.secret,
                 bid_events = excluded.bid_events, source = excluded.source,
                 description = excluded.description, disabled_at = NULL,
                 disabled_reason = NULL",
            &[
                &e.id,
                &e.url,
                &e.secret,
                &e.bid_events,
                &e.source.as_str(),
                &e.description,
                &e.created_at,
            ],
        )
        .await?;
    Ok(())
}

pub(super) async fn endpoints(
    client: &impl GenericClient,
) -> Result<Vec<WebhookEndpoint>, PgError> {
    let rows = client
        .query(
            "SELECT id, url, secret, bid_events, source, description, created_at, disabled_at,
                    disabled_reason
               FROM webhook_endpoints ORDER BY created_at, id",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(WebhookEndpoint {
                id: r.get(0),
                url: r.get(1),
                secret: r.get(2),
                bid_events: r.get(3),
                source: EndpointSource::parse(r.get(4))?,
                description: r.get(5),
                created_at: r.get(6),
                disabled_at: r.get(7),
                disabled_reason: r.get(8),
            })
        })
        .collect()
}

pub(super) async fn delete_endpoint(
    client: &mut deadpool_postgres::Object,
    id: &str,
) -> Result<bool, PgError> {
    let tx = client.transaction().await?;
    tx.execute(
        "DELETE FROM webhook_deliveries WHERE endpoint_id = $1",
        &[&id],
    )
    .await?;
    let n = tx
        .execute("DELETE FROM webhook_endpoints WHERE id = $1", &[&id])
        .await?;
    tx.commit().await?;
    Ok(n == 1)
}

pub(super) async fn set_secret(
    client: &impl GenericClient,
    id: &str,
    secret: &str,
) -> Result<bool, PgError> {
    let n = client
        .execute(
            "UPDATE webhook_endpoints SET secret = $2 WHERE id = $1",
            &[&id, &secret],
        )
        .await?;
    Ok(n == 1)
}

pub(super) async fn enqueue(
    client: &mut deadpool_postgres::Object,
    e: &OutboxEvent,
    endpoint_id: &str,
) -> Result<bool, PgError> {
    let now = now_ms();
    let tx = client.transaction().await?;
    let known: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $1)",
            &[&endpoint_id],
        )
        .await?
        .get(0);
    if !known {
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO webhook_events (id, type, auction_id, payload, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        &[
            &e.id,
            &e.event_type.as_str(),
            &e.auction_id,
            &e.payload,
            &now,
        ],
    )
    .await?;
    tx.execute(
        "INSERT INTO webhook_deliveries (event_id, endpoint_id, status, next_attempt_at,
                                         created_at)
         VALUES ($1, $2, 'pending', $3, $3) ON CONFLICT DO NOTHING",
        &[&e.id, &endpoint_id, &now],
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// One statement: lock due rows no other node holds (`SKIP LOCKED`), lease them, return
/// them with what posting needs.
const CLAIM: &str = "\
WITH due AS (
    SELECT d.event_id, d.endpoint_id FROM webhook_deliveries d
      JOIN webhook_endpoints e ON e.id = d.endpoint_id
     WHERE d.status = 'pending' AND d.next_attempt_at <= $1
       AND (d.leased_until IS NULL OR d.leased_until <= $1)
       AND e.disabled_at IS NULL
     ORDER BY d.next_attempt_at
     LIMIT $4
       FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d SET leased_until = $2, lease_owner = $3
  FROM due
 WHERE d.event_id = due.event_id AND d.endpoint_id = due.endpoint_id
RETURNING d.event_id, d.endpoint_id, d.attempts,
          (SELECT e.url FROM webhook_endpoints e WHERE e.id = d.endpoint_id),
          (SELECT e.secret FROM webhook_endpoints e WHERE e.id = d.endpoint_id),
          (SELECT v.payload FROM webhook_events v WHERE v.id = d.event_id)";

pub(super) async fn claim(
    client: &impl GenericClient,
    now: Millis,
    lease_until: Millis,
    owner: &str,
    limit: u32,
) -> Result<Vec<DueDelivery>, PgError> {
    let limit = i64::from(limit);
    let rows = client
        .query(CLAIM, &[&now, &lease_until, &owner, &limit])
        .await?;
    Ok(rows
        .iter()
        .map(|r| DueDelivery {
            event_id: r.get(0),
            endpoint_id: r.get(1),
            attempts: u32::try_from(r.get::<_, i32>(2)).unwrap_or(0),
            url: r.get(3),
            secret: r.get(4),
            payload: r.get(5),
        })
        .collect())
}

pub(super) async fn finish(
    client: &mut deadpool_postgres::Object,
    event_id: &str,
    endpoint_id: &str,
    now: Millis,
    outcome: &AttemptOutcome,
) -> Result<(), PgError> {
    let (status, next, http, error, finished): (
        &str,
        Option<Millis>,
        Option<u16>,
        Option<&str>,
        bool,
    ) = match outcome {
        AttemptOutcome::Delivered { status } => ("delivered", None, Some(*status), None, true),
        AttemptOutcome::Retry {
            status,
            error,
            next_attempt_at,
        } => (
            "pending",
            Some(*next_attempt_at),
            *status,
            Some(error),
            false,
        ),
        AttemptOutcome::Failed { status, error } => ("failed", None, *status, Some(error), true),
        AttemptOutcome::Gone => (
            "failed",
            None,
            Some(410),
            Some("the receiver answered 410 Gone: endpoint disabled"),
            true,
        ),
    };
    let http = http.map(i32::from);
    let tx = client.transaction().await?;
    tx.execute(
        "UPDATE webhook_deliveries
            SET status = $3, attempts = attempts + 1,
                next_attempt_at = coalesce($4::int8, next_attempt_at),
                leased_until = NULL, lease_owner = NULL, last_attempt_at = $5::int8,
                last_status = $6, last_error = $7,
                finished_at = CASE WHEN $8::bool THEN $5::int8 END
          WHERE event_id = $1 AND endpoint_id = $2 AND status = 'pending'",
        &[
            &event_id,
            &endpoint_id,
            &status,
            &next,
            &now,
            &http,
            &error,
            &finished,
        ],
    )
    .await?;
    if matches!(outcome, AttemptOutcome::Gone) {
        tx.execute(
            "UPDATE webhook_endpoints SET disabled_at = $2,
                    disabled_reason = 'the receiver answered 410 Gone'
              WHERE id = $1 AND disabled_at IS NULL",
            &[&endpoint_id, &now],
        )
        .await?;
        tx.execute(
            "UPDATE webhook_deliveries
                SET status = 'failed', leased_until = NULL, lease_owner = NULL,
                    last_error = 'endpoint disabled (410 Gone)', finished_at = $2
              WHERE endpoint_id = $1 AND status = 'pending'",
            &[&endpoint_id, &now],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn deliveries(
    client: &impl GenericClient,
    endpoint_id: Option<&str>,
    status: Option<DeliveryStatus>,
    limit: u32,
) -> Result<Vec<DeliveryRecord>, PgError> {
    let status = status.map(|s| s.as_str());
    let limit = i64::from(limit);
    let rows = client
        .query(
            "SELECT d.event_id, v.type, d.endpoint_id, d.status, d.attempts,
                    d.next_attempt_at, d.last_attempt_at, d.last_status, d.last_error,
                    d.finished_at, d.created_at
               FROM webhook_deliveries d JOIN webhook_events v ON v.id = d.event_id
              WHERE ($1::text IS NULL OR d.endpoint_id = $1)
                AND ($2::text IS NULL OR d.status = $2)
              ORDER BY d.created_at DESC, d.event_id DESC LIMIT $3",
            &[&endpoint_id, &status, &limit],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let status: &str = r.get(3);
            Ok(DeliveryRecord {
                event_id: r.get(0),
                event_type: r.get(1),
                endpoint_id: r.get(2),
                status: status.parse().map_err(ArchiveError::Corrupt)?,
                attempts: u32::try_from(r.get::<_, i32>(4)).unwrap_or(0),
                next_attempt_at: r.get(5),
                last_attempt_at: r.get(6),
                last_status: r
                    .get::<_, Option<i32>>(7)
                    .and_then(|s| u16::try_from(s).ok()),
                last_error: r.get(8),
                finished_at: r.get(9),
                created_at: r.get(10),
            })
        })
        .collect()
}

pub(super) async fn prune(
    client: &mut deadpool_postgres::Object,
    before: Millis,
) -> Result<u64, PgError> {
    let tx = client.transaction().await?;
    let n = tx
        .execute(
            "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND finished_at < $1",
            &[&before],
        )
        .await?;
    tx.execute(
        "DELETE FROM webhook_events e WHERE e.created_at < $1
            AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id)",
        &[&before],
    )
    .await?;
    tx.commit().await?;
    Ok(n)
}
