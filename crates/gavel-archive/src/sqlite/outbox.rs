//! The webhook outbox on SQLite: endpoints, events written with their batch, deliveries.
//!
//! One process owns the file, so a claim is a plain `UPDATE … RETURNING` on the writer
//! connection; the lease still matters, since a claim outlives a crash of the process that
//! made it only until `leased_until`.

use super::SqliteError;
use crate::webhooks::{
    AttemptOutcome, DeliveryRecord, DeliveryStatus, DueDelivery, EndpointSource, EventType,
    OutboxEvent, WebhookEndpoint,
};
use crate::ArchiveError;
use gavel_core::Millis;
use rusqlite::{params, Connection, Transaction};

/// Skips an event already stored, and one no enabled endpoint wants.
const INSERT_EVENT: &str = "\
    INSERT INTO webhook_events (id, type, auction_id, payload, created_at)
    SELECT ?1, ?2, ?3, ?4, ?5
     WHERE EXISTS (SELECT 1 FROM webhook_endpoints
                    WHERE disabled_at IS NULL AND (?6 = 0 OR bid_events = 1))
    ON CONFLICT DO NOTHING";

/// One pending delivery per enabled endpoint that wants the event.
const FAN_OUT: &str = "\
    INSERT INTO webhook_deliveries (event_id, endpoint_id, status, next_attempt_at, created_at)
    SELECT ?1, id, 'pending', ?2, ?2 FROM webhook_endpoints
     WHERE disabled_at IS NULL AND (?3 = 0 OR bid_events = 1)
    ON CONFLICT DO NOTHING";

/// Writes the outbox part of a batch inside its transaction.
pub(super) fn write_events(
    tx: &Transaction<'_>,
    events: &[OutboxEvent],
    now: Millis,
) -> Result<(), SqliteError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut insert = tx.prepare_cached(INSERT_EVENT)?;
    let mut fan_out = tx.prepare_cached(FAN_OUT)?;
    for e in events {
        let bids_only = i64::from(e.event_type == EventType::BidAccepted);
        let n = insert.execute(params![
            e.id,
            e.event_type.as_str(),
            e.auction_id,
            e.payload,
            now,
            bids_only
        ])?;
        // Only a newly stored event fans out: a redelivered change adds no deliveries.
        if n == 1 {
            fan_out.execute(params![e.id, now, bids_only])?;
        }
    }
    Ok(())
}

pub(super) fn put_endpoint(conn: &Connection, e: &WebhookEndpoint) -> Result<(), SqliteError> {
    conn.execute(
        "INSERT INTO webhook_endpoints (id, url, secret, bid_events, source, description,
                                        created_at, disabled_at, disabled_reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, NULL)
         ON CONFLICT (id) DO UPDATE SET
             url = excluded.url, secret = excluded.secret, bid_events = excluded.bid_events,
             source = excluded.source, description = excluded.description,
             disabled_at = NULL, disabled_reason = NULL",
        params![
            e.id,
            e.url,
            e.secret,
            e.bid_events,
            e.source.as_str(),
            e.description,
            e.created_at
        ],
    )?;
    Ok(())
}

pub(super) fn endpoints(conn: &Connection) -> Result<Vec<WebhookEndpoint>, SqliteError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, url, secret, bid_events, source, description, created_at, disabled_at,
                disabled_reason
           FROM webhook_endpoints ORDER BY created_at, id",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let source: String = r.get(4)?;
        out.push(WebhookEndpoint {
            id: r.get(0)?,
            url: r.get(1)?,
            secret: r.get(2)?,
            bid_events: r.get::<_, i64>(3)? != 0,
            source: EndpointSource::parse(&source)?,
            description: r.get(5)?,
            created_at: r.get(6)?,
            disabled_at: r.get(7)?,
            disabled_reason: r.get(8)?,
        });
    }
    Ok(out)
}

pub(super) fn delete_endpoint(conn: &mut Connection, id: &str) -> Result<bool, SqliteError> {
    let tx = conn.transaction()?;
    tx.execute(
        "DELETE FROM webhook_deliveries WHERE endpoint_id = ?1",
        [id],
    )?;
    let n = tx.execute("DELETE FROM webhook_endpoints WHERE id = ?1", [id])?;
    tx.commit()?;
    Ok(n == 1)
}

pub(super) fn set_secret(conn: &Connection, id: &str, secret: &str) -> Result<bool, SqliteError> {
    let n = conn.execute(
        "UPDATE webhook_endpoints SET secret = ?2 WHERE id = ?1",
        params![id, secret],
    )?;
    Ok(n == 1)
}

pub(super) fn enqueue(
    conn: &mut Connection,
    e: &OutboxEvent,
    endpoint_id: &str,
    now: Millis,
) -> Result<bool, SqliteError> {
    let tx = conn.transaction()?;
    let known: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = ?1)",
        [endpoint_id],
        |r| r.get(0),
    )?;
    if !known {
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO webhook_events (id, type, auction_id, payload, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        params![e.id, e.event_type.as_str(), e.auction_id, e.payload, now],
    )?;
    tx.execute(
        "INSERT INTO webhook_deliveries (event_id, endpoint_id, status, next_attempt_at,
                                         created_at)
         VALUES (?1, ?2, 'pending', ?3, ?3) ON CONFLICT DO NOTHING",
        params![e.id, endpoint_id, now],
    )?;
    tx.commit()?;
    Ok(true)
}

/// Whether any pending delivery is due at `now` (its lease free).
pub(super) fn any_due(conn: &Connection, now: Millis) -> Result<bool, SqliteError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM webhook_deliveries
                             WHERE status = 'pending' AND next_attempt_at <= ?1
                               AND (leased_until IS NULL OR leased_until <= ?1))",
        )?
        .query_row([now], |r| r.get(0))?)
}

pub(super) fn claim(
    conn: &mut Connection,
    now: Millis,
    lease_until: Millis,
    owner: &str,
    limit: u32,
) -> Result<Vec<DueDelivery>, SqliteError> {
    let tx = conn.transaction()?;
    let mut claimed = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "UPDATE webhook_deliveries SET leased_until = ?2, lease_owner = ?3
              WHERE rowid IN (
                    SELECT d.rowid FROM webhook_deliveries d
                      JOIN webhook_endpoints e ON e.id = d.endpoint_id
                     WHERE d.status = 'pending' AND d.next_attempt_at <= ?1
                       AND (d.leased_until IS NULL OR d.leased_until <= ?1)
                       AND e.disabled_at IS NULL
                     ORDER BY d.next_attempt_at LIMIT ?4)
             RETURNING event_id, endpoint_id, attempts",
        )?;
        let mut rows = stmt.query(params![now, lease_until, owner, limit])?;
        while let Some(r) = rows.next()? {
            claimed.push((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ));
        }
    }
    let mut out = Vec::with_capacity(claimed.len());
    {
        let mut details = tx.prepare_cached(
            "SELECT e.url, e.secret, v.payload FROM webhook_endpoints e, webhook_events v
              WHERE e.id = ?1 AND v.id = ?2",
        )?;
        for (event_id, endpoint_id, attempts) in claimed {
            let (url, secret, payload): (String, String, String) = details
                .query_row(params![endpoint_id, event_id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
            out.push(DueDelivery {
                event_id,
                endpoint_id,
                url,
                secret,
                payload,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            });
        }
    }
    tx.commit()?;
    Ok(out)
}

pub(super) fn finish(
    conn: &mut Connection,
    event_id: &str,
    endpoint_id: &str,
    now: Millis,
    outcome: &AttemptOutcome,
) -> Result<(), SqliteError> {
    let tx = conn.transaction()?;
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
    tx.execute(
        "UPDATE webhook_deliveries
            SET status = ?3, attempts = attempts + 1,
                next_attempt_at = coalesce(?4, next_attempt_at),
                leased_until = NULL, lease_owner = NULL, last_attempt_at = ?5,
                last_status = ?6, last_error = ?7,
                finished_at = CASE WHEN ?8 THEN ?5 END
          WHERE event_id = ?1 AND endpoint_id = ?2 AND status = 'pending'",
        params![
            event_id,
            endpoint_id,
            status,
            next,
            now,
            http,
            error,
            finished
        ],
    )?;
    if matches!(outcome, AttemptOutcome::Gone) {
        tx.execute(
            "UPDATE webhook_endpoints SET disabled_at = ?2,
                    disabled_reason = 'the receiver answered 410 Gone'
              WHERE id = ?1 AND disabled_at IS NULL",
            params![endpoint_id, now],
        )?;
        tx.execute(
            "UPDATE webhook_deliveries
                SET status = 'failed', leased_until = NULL, lease_owner = NULL,
                    last_error = 'endpoint disabled (410 Gone)', finished_at = ?2
              WHERE endpoint_id = ?1 AND status = 'pending'",
            params![endpoint_id, now],
        )?;
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn deliveries(
    conn: &Connection,
    endpoint_id: Option<&str>,
    status: Option<DeliveryStatus>,
    limit: u32,
) -> Result<Vec<DeliveryRecord>, SqliteError> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.event_id, v.type, d.endpoint_id, d.status, d.attempts, d.next_attempt_at,
                d.last_attempt_at, d.last_status, d.last_error, d.finished_at, d.created_at
           FROM webhook_deliveries d JOIN webhook_events v ON v.id = d.event_id
          WHERE (?1 IS NULL OR d.endpoint_id = ?1) AND (?2 IS NULL OR d.status = ?2)
          ORDER BY d.created_at DESC, d.event_id DESC LIMIT ?3",
    )?;
    let mut rows = stmt.query(params![endpoint_id, status.map(|s| s.as_str()), limit])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let status: String = r.get(3)?;
        out.push(DeliveryRecord {
            event_id: r.get(0)?,
            event_type: r.get(1)?,
            endpoint_id: r.get(2)?,
            status: status
                .parse()
                .map_err(|e: String| ArchiveError::Corrupt(e))?,
            attempts: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(u32::MAX),
            next_attempt_at: r.get(5)?,
            last_attempt_at: r.get(6)?,
            last_status: r
                .get::<_, Option<i64>>(7)?
                .and_then(|s| u16::try_from(s).ok()),
            last_error: r.get(8)?,
            finished_at: r.get(9)?,
            created_at: r.get(10)?,
        });
    }
    Ok(out)
}

pub(super) fn prune(conn: &mut Connection, before: Millis) -> Result<u64, SqliteError> {
    let tx = conn.transaction()?;
    let n = tx.execute(
        "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND finished_at < ?1",
        [before],
    )?;
    tx.execute(
        "DELETE FROM webhook_events WHERE created_at < ?1
            AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)",
        [before],
    )?;
    tx.commit()?;
    Ok(n as u64)
}
