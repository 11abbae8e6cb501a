//! Distributed-mode archive on PostgreSQL (tokio-postgres behind a deadpool pool).
//!
//! # One statement per batch
//!
//! `record_batch` turns the batch into rows with the same mapping as SQLite
//! (`rows.rs`), then writes all of it with **one** SQL statement: the rows travel as
//! arrays (`UNNEST($1::text[], …)`) into four data-modifying CTEs (auction upsert, bid
//! insert, result insert, reply insert). A single statement is its own transaction, so a batch is
//! stored whole or not at all, and costs one round trip and one WAL flush however many
//! bids it holds. [`ArchiveStats::batches`] counts these statements.
//!
//! # Idempotency
//!
//! Bids are keyed by the server-generated `bid_id`; `(auction_id, seq)` is unique too, and
//! both conflicts are skipped (`ON CONFLICT DO NOTHING`), so redelivered changes store
//! nothing twice. The same statement reports bids skipped because *another* bid id holds
//! their `(auction, seq)` (the authority handed a seq out twice, e.g. Redis lost recent
//! writes): those are logged as errors and counted in `gavel_archive_seq_conflicts_total`.
//! The auction upsert only applies a higher `seq`; a result is written once.
//!
//! # Schema
//!
//! Migrations are `migrations/postgres/NNN_name.sql`, applied at start-up in one
//! transaction each under an advisory lock, recorded in `gavel_migrations`. An optional
//! schema name isolates deployments (and tests) sharing one database.

mod outbox;
#[cfg(test)]
mod tests;

use crate::rows::{decode_auction, decode_reply, AuctionRow, BatchRows, LogRow, StoredBid};
use crate::webhooks::{
    AttemptOutcome, DeliveryRecord, DeliveryStatus, DueDelivery, OutboxEvent, WebhookEndpoint,
};
use crate::{
    Archive, ArchiveError, ArchiveStats, ArchivedChange, LogRecord, NextSteps, StoredReply,
};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use gavel_core::{Auction, AuctionId, BidEntry, BidderId, Millis, RequestId};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_postgres::NoTls;

/// One schema step, applied when `gavel_migrations` does not have its version yet.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order: versions 1, 2, 3, … without gaps.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/postgres/001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "replies",
        sql: include_str!("../migrations/postgres/002_replies.sql"),
    },
    Migration {
        version: 3,
        name: "listing",
        sql: include_str!("../migrations/postgres/003_listing.sql"),
    },
    Migration {
        version: 4,
        name: "webhooks",
        sql: include_str!("../migrations/postgres/004_webhooks.sql"),
    },
    Migration {
        version: 5,
        name: "webhook_pruning",
        sql: include_str!("../migrations/postgres/005_webhook_pruning.sql"),
    },
    Migration {
        version: 6,
        name: "log",
        sql: include_str!("../migrations/postgres/006_log.sql"),
    },
    Migration {
        version: 7,
        name: "personal",
        sql: include_str!("../migrations/postgres/007_personal.sql"),
    },
    Migration {
        version: 8,
        name: "search",
        sql: include_str!("../migrations/postgres/008_search.sql"),
    },
];

/// Connections kept by the pool (the drainer writes on one; history reads use the rest).
const POOL_SIZE: usize = 8;

/// The batch write: rows in as arrays, one statement, the number of bids inserted and the
/// `(auction, seq)` collisions out.
const WRITE_BATCH: &str = "\
WITH a_in AS (
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::int8[],
                         $29::int8[])
        AS t(id, spec, state, seq, status, ends_at, closed_at)
), b_in AS (
    SELECT * FROM UNNEST($7::text[], $8::text[], $9::int8[], $10::text[], $11::text[],
                         $12::int8[], $13::text[], $14::int8[], $15::text[])
        AS t(bid_id, auction_id, seq, bidder_id, bidder_name, amount, kind, placed_at, request_id)
), r_in AS (
    SELECT * FROM UNNEST($16::text[], $17::int8[], $18::text[], $19::text[], $20::text[],
                         $21::int8[], $22::int8[], $23::text[])
        AS t(auction_id, seq, reason, winner_id, winner_name, final_price, closed_at, by_admin)
), p_in AS (
    SELECT * FROM UNNEST($24::text[], $25::text[], $26::text[], $27::int8[], $28::text[])
        AS t(auction_id, bidder_id, request_id, seq, state)
), l_in AS (
    SELECT * FROM UNNEST($34::text[], $35::int8[], $36::text[], $37::int8[], $38::text[],
                         $39::text[])
        AS t(auction_id, seq, kind, at, entry, hash)
), upserted AS (
    -- A NULL spec: this archive wrote the row before (see `written`), so the spec is not
    -- sent again; the row's own spec stands in (a row that is somehow missing then fails
    -- NOT NULL, and the retry sends every spec).
    INSERT INTO auctions (id, spec, state, seq, status, ends_at, closed_at)
    SELECT id, coalesce(spec::jsonb, (SELECT x.spec FROM auctions x WHERE x.id = a_in.id)),
           state::jsonb, seq, status, ends_at, closed_at FROM a_in
    -- Every node's drainer locks auction rows in id order, so two batches touching the
    -- same auctions wait for each other instead of deadlocking.
    ORDER BY id
    ON CONFLICT (id) DO UPDATE SET
        state = excluded.state, seq = excluded.seq, status = excluded.status,
        ends_at = excluded.ends_at, closed_at = excluded.closed_at
    WHERE excluded.seq > auctions.seq
    RETURNING 1
), inserted AS (
    INSERT INTO bids (bid_id, auction_id, seq, bidder_id, bidder_name, amount, kind,
                      placed_at, request_id)
    SELECT * FROM b_in
    ON CONFLICT DO NOTHING
    RETURNING 1
), results_in AS (
    INSERT INTO results (auction_id, seq, reason, winner_id, winner_name, final_price,
                         closed_at, by_admin)
    SELECT * FROM r_in
    ON CONFLICT (auction_id) DO NOTHING
    RETURNING 1
), replies_in AS (
    -- The first reply stored for a request stays.
    INSERT INTO replies (auction_id, bidder_id, request_id, seq, state, stored_at)
    SELECT auction_id, bidder_id, request_id, seq, state::jsonb,
           (extract(epoch FROM clock_timestamp()) * 1000)::int8
      FROM p_in
    ON CONFLICT DO NOTHING
    RETURNING 1
), e_in AS (
    SELECT * FROM UNNEST($30::text[], $31::text[], $32::text[], $33::text[])
        AS t(id, type, auction_id, payload)
), events_in AS (
    -- The webhook outbox: each event once (by its stable id), and only if an enabled
    -- endpoint wants it; only a newly stored event fans out into deliveries.
    INSERT INTO webhook_events (id, type, auction_id, payload, created_at)
    SELECT id, type, auction_id, payload, (extract(epoch FROM clock_timestamp()) * 1000)::int8
      FROM e_in
     WHERE EXISTS (SELECT 1 FROM webhook_endpoints w
                    WHERE w.disabled_at IS NULL AND (e_in.type <> 'bid.accepted' OR w.bid_events))
    ON CONFLICT DO NOTHING
    RETURNING id, type, created_at
), deliveries_in AS (
    INSERT INTO webhook_deliveries (event_id, endpoint_id, status, next_attempt_at, created_at)
    SELECT ev.id, w.id, 'pending', ev.created_at, ev.created_at
      FROM events_in ev
      JOIN webhook_endpoints w
        ON w.disabled_at IS NULL AND (ev.type <> 'bid.accepted' OR w.bid_events)
    ON CONFLICT DO NOTHING
    RETURNING 1
), log_in AS (
    -- A redelivered change keeps the entry stored first.
    INSERT INTO log_entries (auction_id, seq, kind, at, entry, hash)
    SELECT * FROM l_in
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted) AS inserted,
       (SELECT count(*) FROM deliveries_in) AS deliveries,
       (SELECT count(*) FROM log_in) AS logged,
       (SELECT count(*) FROM upserted) AS upserted,
       (SELECT count(*) FROM results_in) AS results,
       (SELECT count(*) FROM replies_in) AS replies,
       (SELECT coalesce(json_agg(json_build_array(b.auction_id, b.seq, s.bid_id, b.bid_id)), '[]')::text
          FROM b_in b JOIN bids s ON s.auction_id = b.auction_id AND s.seq = b.seq
         WHERE s.bid_id <> b.bid_id) AS clashes";

/// Errors of this backend, mapped into [`ArchiveError`] at the trait boundary.
#[derive(Debug, thiserror::Error)]
enum PgError {
    #[error("PostgreSQL: {0}")]
    Pg(#[from] tokio_postgres::Error),
    #[error("PostgreSQL pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("migration {version} ({name}) failed: {source}")]
    Migrate {
        version: i32,
        name: &'static str,
        source: tokio_postgres::Error,
    },
    #[error("database schema version {found} is newer than this build's {latest}")]
    TooNew { found: i32, latest: i32 },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

impl From<PgError> for ArchiveError {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Archive(e) => e,
            // tokio-postgres prints only "db error"; the server's code and text are what
            // an operator needs.
            PgError::Pg(ref pg) | PgError::Migrate { source: ref pg, .. } => {
                match pg.as_db_error() {
                    Some(db) => ArchiveError::Storage(format!(
                        "{e} ({} {}: {})",
                        db.severity(),
                        db.code().code(),
                        db.message()
                    )),
                    None => ArchiveError::Storage(e.to_string()),
                }
            }
            other => ArchiveError::Storage(other.to_string()),
        }
    }
}

/// The distributed archive.
pub struct PostgresArchive {
    pool: Pool,
    batches: AtomicU64,
    bids: AtomicU64,
    /// Auctions whose row this archive has written (a batch with them committed): later
    /// batches leave their spec out, since a spec never changes and can be kilobytes.
    /// Cleared when it grows past `WRITTEN_MAX`, and on any failed batch.
    written: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Specs sent in batch statements (for tests).
    specs_sent: AtomicU64,
}

/// Auction rows remembered as written; past this the set starts again (the cost is one
/// spec per auction sent again).
const WRITTEN_MAX: usize = 100_000;

/// A schema name we are willing to put into SQL: lower-case letters, digits, `_`.
fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl PostgresArchive {
    /// Connects to `url` (`postgres://user@host:port/db`), using `schema` (created if
    /// missing) when given, and brings the schema up to date.
    pub async fn connect(url: &str, schema: Option<&str>) -> Result<Self, ArchiveError> {
        Ok(Self::connect_inner(url, schema).await?)
    }

    async fn connect_inner(url: &str, schema: Option<&str>) -> Result<Self, PgError> {
        let mut config = tokio_postgres::Config::from_str(url).map_err(PgError::Pg)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(3));
        }
        config.application_name("gavel");
        if schema.is_none() {
            config.options("-c client_min_messages=warning");
        }
        if let Some(schema) = schema {
            if !valid_schema(schema) {
                return Err(ArchiveError::Storage(format!(
                    "schema name must be lower-case letters, digits and _ (got {schema:?})"
                ))
                .into());
            }
            // Quiet: "schema already exists, skipping" is not news on every start.
            config.options(format!(
                "-c search_path={schema} -c client_min_messages=warning"
            ));
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| ArchiveError::Storage(format!("PostgreSQL pool: {e}")))?;
        let archive = PostgresArchive {
            pool,
            batches: AtomicU64::new(0),
            bids: AtomicU64::new(0),
            written: Default::default(),
            specs_sent: AtomicU64::new(0),
        };
        archive.migrate(schema).await?;
        tracing::info!(
            schema = schema.unwrap_or("(default)"),
            "PostgreSQL archive open"
        );
        Ok(archive)
    }

    /// Applies every pending migration, each in its own transaction, under an advisory
    /// lock so concurrent nodes do not race. Returns how many ran.
    async fn migrate(&self, schema: Option<&str>) -> Result<usize, PgError> {
        let mut conn = self.pool.get().await?;
        let tx = conn.transaction().await?;
        let lock_name = format!("gavel-migrations:{}", schema.unwrap_or(""));
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&lock_name])
            .await?;
        if let Some(schema) = schema {
            tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await?;
        }
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS gavel_migrations (
                version    INT         PRIMARY KEY,
                name       TEXT        NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await?;
        let found: i32 = tx
            .query_one(
                "SELECT coalesce(max(version), 0)::int4 FROM gavel_migrations",
                &[],
            )
            .await?
            .get(0);
        let latest = MIGRATIONS.last().map_or(0, |m| m.version);
        if found > latest {
            return Err(PgError::TooNew { found, latest });
        }
        let mut applied = 0;
        for m in MIGRATIONS.iter().filter(|m| m.version > found) {
            let step = |source| PgError::Migrate {
                version: m.version,
                name: m.name,
                source,
            };
            tx.batch_execute(m.sql).await.map_err(step)?;
            tx.execute(
                "INSERT INTO gavel_migrations (version, name) VALUES ($1, $2)",
                &[&m.version, &m.name],
            )
            .await
            .map_err(step)?;
            tracing::info!(
                version = m.version,
                name = m.name,
                "applied archive migration"
            );
            applied += 1;
        }
        tx.commit().await?;
        Ok(applied)
    }

    async fn write_batch(&self, rows: &BatchRows) -> Result<u64, PgError> {
        let conn = self.pool.get().await?;
        let a = &rows.auctions;
        let b = &rows.bids;
        let r = &rows.results;
        let col = |f: fn(&AuctionRow) -> String| a.iter().map(f).collect::<Vec<_>>();
        let a_id = col(|x| x.id.clone());
        let a_spec: Vec<Option<&str>> = {
            let written = self.written.lock().unwrap_or_else(|e| e.into_inner());
            a.iter()
                .map(|x| (!written.contains(&x.id)).then_some(x.spec.as_str()))
                .collect()
        };
        self.specs_sent.fetch_add(
            a_spec.iter().filter(|s| s.is_some()).count() as u64,
            Ordering::Relaxed,
        );
        let a_state = col(|x| x.state.clone());
        let a_status = col(|x| x.status.to_string());
        let a_seq: Vec<i64> = a.iter().map(|x| x.seq).collect();
        let a_ends: Vec<i64> = a.iter().map(|x| x.ends_at).collect();
        let a_closed: Vec<Option<i64>> = a.iter().map(|x| x.closed_at).collect();
        let b_id: Vec<&str> = b.iter().map(|x| x.bid_id.as_str()).collect();
        let b_auction: Vec<&str> = b.iter().map(|x| x.auction_id.as_str()).collect();
        let b_seq: Vec<i64> = b.iter().map(|x| x.seq).collect();
        let b_bidder: Vec<&str> = b.iter().map(|x| x.bidder_id.as_str()).collect();
        let b_name: Vec<&str> = b.iter().map(|x| x.bidder_name.as_str()).collect();
        let b_amount: Vec<i64> = b.iter().map(|x| x.amount).collect();
        let b_kind: Vec<&str> = b.iter().map(|x| x.kind).collect();
        let b_at: Vec<i64> = b.iter().map(|x| x.placed_at).collect();
        let b_req: Vec<Option<&str>> = b.iter().map(|x| x.request_id.as_deref()).collect();
        let r_auction: Vec<&str> = r.iter().map(|x| x.auction_id.as_str()).collect();
        let r_seq: Vec<i64> = r.iter().map(|x| x.seq).collect();
        let r_reason: Vec<&str> = r.iter().map(|x| x.reason).collect();
        let r_wid: Vec<Option<&str>> = r.iter().map(|x| x.winner_id.as_deref()).collect();
        let r_wname: Vec<Option<&str>> = r.iter().map(|x| x.winner_name.as_deref()).collect();
        let r_price: Vec<Option<i64>> = r.iter().map(|x| x.final_price).collect();
        let r_at: Vec<i64> = r.iter().map(|x| x.closed_at).collect();
        let r_by: Vec<Option<&str>> = r.iter().map(|x| x.by_admin.as_deref()).collect();
        let p = &rows.replies;
        let p_auction: Vec<&str> = p.iter().map(|x| x.auction_id.as_str()).collect();
        let p_bidder: Vec<&str> = p.iter().map(|x| x.bidder_id.as_str()).collect();
        let p_request: Vec<&str> = p.iter().map(|x| x.request_id.as_str()).collect();
        let p_seq: Vec<i64> = p.iter().map(|x| x.seq).collect();
        let p_state: Vec<&str> = p.iter().map(|x| x.state.as_str()).collect();
        let ev = &rows.events;
        let e_id: Vec<&str> = ev.iter().map(|x| x.id.as_str()).collect();
        let e_type: Vec<&str> = ev.iter().map(|x| x.event_type.as_str()).collect();
        let e_auction: Vec<Option<&str>> = ev.iter().map(|x| x.auction_id.as_deref()).collect();
        let e_payload: Vec<&str> = ev.iter().map(|x| x.payload.as_str()).collect();
        let l = &rows.log;
        let l_auction: Vec<&str> = l.iter().map(|x| x.auction_id.as_str()).collect();
        let l_seq: Vec<i64> = l.iter().map(|x| x.seq).collect();
        let l_kind: Vec<&str> = l.iter().map(|x| x.kind).collect();
        let l_at: Vec<i64> = l.iter().map(|x| x.at).collect();
        let l_entry: Vec<&str> = l.iter().map(|x| x.entry.as_str()).collect();
        let l_hash: Vec<&str> = l.iter().map(|x| x.hash.as_str()).collect();
        let stmt = conn.prepare_cached(WRITE_BATCH).await?;
        let row = conn
            .query_one(
                &stmt,
                &[
                    &a_id, &a_spec, &a_state, &a_seq, &a_status, &a_ends, &b_id, &b_auction,
                    &b_seq, &b_bidder, &b_name, &b_amount, &b_kind, &b_at, &b_req, &r_auction,
                    &r_seq, &r_reason, &r_wid, &r_wname, &r_price, &r_at, &r_by, &p_auction,
                    &p_bidder, &p_request, &p_seq, &p_state, &a_closed, &e_id, &e_type, &e_auction,
                    &e_payload, &l_auction, &l_seq, &l_kind, &l_at, &l_entry, &l_hash,
                ],
            )
            .await?;
        {
            let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
            if written.len() + a_id.len() > WRITTEN_MAX {
                written.clear();
            }
            written.extend(a_id.iter().cloned());
        }
        let inserted: i64 = row.get("inserted");
        let clashes: String = row.get("clashes");
        if clashes != "[]" {
            report_clashes(&clashes);
        }
        Ok(inserted as u64)
    }
}

/// Two different bids claim one `(auction, seq)`: the stored one stays, and the operator
/// must hear about it (the authority handed a seq out twice).
fn report_clashes(json: &str) {
    let clashes: Vec<(String, i64, String, String)> =
        serde_json::from_str(json).unwrap_or_default();
    for (auction, seq, stored, skipped) in &clashes {
        tracing::error!(
            auction = %auction,
            seq,
            stored_bid = %stored,
            skipped_bid = %skipped,
            "two different bids claim one seq; kept the stored one"
        );
    }
    metrics::counter!("gavel_archive_seq_conflicts_total").increment(clashes.len().max(1) as u64);
}

#[async_trait]
impl Archive for PostgresArchive {
    async fn create_auction(&self, auction: &Auction) -> Result<(), ArchiveError> {
        let row = AuctionRow::new(auction)?;
        let mut conn = self.pool.get().await.map_err(PgError::from)?;
        let tx = conn.transaction().await.map_err(PgError::from)?;
        let result = tx
            .execute(
                "INSERT INTO auctions (id, spec, state, seq, status, ends_at)
                 VALUES ($1, $2::text::jsonb, $3::text::jsonb, $4, $5, $6)",
                &[
                    &row.id,
                    &row.spec,
                    &row.state,
                    &row.seq,
                    &row.status,
                    &row.ends_at,
                ],
            )
            .await;
        match result {
            Ok(_) => {
                if let Some(l) = LogRow::of(auction)? {
                    tx.execute(
                        "INSERT INTO log_entries (auction_id, seq, kind, at, entry, hash)
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                        &[&l.auction_id, &l.seq, &l.kind, &l.at, &l.entry, &l.hash],
                    )
                    .await
                    .map_err(PgError::from)?;
                }
            }
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                return Err(ArchiveError::AlreadyExists(auction.id.clone()));
            }
            Err(e) => return Err(PgError::from(e).into()),
        }
        // The auction and its `auction.created` event commit together.
        let event = crate::webhooks::created_event(auction, Some(outbox::now_ms()));
        outbox::write_events(&tx, std::slice::from_ref(&event)).await?;
        tx.commit().await.map_err(PgError::from)?;
        Ok(())
    }

    async fn record_batch(&self, changes: &[ArchivedChange]) -> Result<(), ArchiveError> {
        if changes.is_empty() {
            return Ok(());
        }
        let rows = BatchRows::from_changes(changes)?;
        let inserted = match self.write_batch(&rows).await {
            Ok(n) => n,
            Err(e) => {
                // Whatever went wrong, the retry sends every spec.
                self.written
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clear();
                return Err(e.into());
            }
        };
        // Counted only once committed.
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.bids.fetch_add(inserted, Ordering::Relaxed);
        metrics::counter!("gavel_archive_statements_total").increment(1);
        Ok(())
    }

    async fn load_auctions(&self) -> Result<Vec<Auction>, ArchiveError> {
        let conn = self.pool.get().await.map_err(PgError::from)?;
        let rows = conn
            .query(
                "SELECT id, spec::text, state::text FROM auctions ORDER BY created_at, id",
                &[],
            )
            .await
            .map_err(PgError::from)?;
        rows.iter()
            .map(|r| decode_auction(r.get(0), r.get(1), r.get(2)))
            .collect()
    }

    async fn load_hot(&self, closed_since: Millis) -> Result<Vec<Auction>, ArchiveError> {
        let conn = self.pool.get().await.map_err(PgError::from)?;
        let rows = conn
            .query(
                "SELECT id, spec::text, state::text FROM auctions WHERE closed_at IS NULL
                 UNION ALL
                 SELECT id, spec::text, state::text FROM auctions WHERE closed_at >= $1",
                &[&closed_since],
            )
            .await
            .map_err(PgError::from)?;
        rows.iter()
            .map(|r| decode_auction(r.get(0), r.get(1), r.get(2)))
            .collect()
    }

    async fn closed_auctions(
        &self,
        before: Option<(Millis, AuctionId)>,
        limit: u32,
    ) -> Result<Vec<Auction>, ArchiveError> {
        let conn = self.pool.get().await.map_err(PgError::from)?;
        let limit = i64::from(limit);
        let rows = match before {
            None => {
                conn.query(
                    "SELECT id, spec::text, state::text FROM auctions
                     WHERE closed_at IS NOT NULL
                     ORDER BY closed_at DESC, id DESC LIMIT $1",
                    &[&limit],
                )
                .await
            }
            Some((at, id)) => {
                conn.query(
                    "SELECT id, spec::text, state::text FROM auctions
                     WHERE closed_at IS NOT NULL AND (closed_at, id) < ($1, $2)
                     ORDER BY closed_at DESC, id DESC LIMIT $3",
                    &[&at, &id.as_str(), &limit],
                )
                .await
            }
        }
        .map_err(PgError::from)?;
        rows.iter()
            .map(|r| decode_auction(r.get(0), r.get(1), r.get(2)))
            .collect()
    }

    async fn search(
        &self,
        query: &crate::search::SearchQuery,
    ) -> Result<Vec<Auction>, ArchiveError> {
        use crate::search::{statement, Dialect, Param};
        let (sql, params) = statement(query, Dialect::Postgres);
        let values: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> = params
            .into_iter()
            .map(|p| -> Box<dyn tokio_postgres::types::ToSql + Sync + Send> {
                match p {
                    Param::Int(i) => Box::new(i),
                    Param::Text(t) => Box::new(t),
                }
            })
            .collect();
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = values
            .iter()
            .map(|v| v.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let conn = self.pool.get().await.map_err(PgError::from)?;
        let rows = conn.query(&sql, &refs).await.map_err(PgError::from)?;
        rows.iter()
            .map(|r| decode_auction(r.get(0), r.get(1), r.get(2)))
            .collect()
    }

    async fn categories(&self) -> Result<Vec<(String, u64)>, ArchiveError> {
        let conn = self.pool.get().await.map_err(PgError::from)?;
        let rows = conn
            .query(crate::search::CATEGORIES, &[])
            .await
            .map_err(PgError::from)?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1).max(0) as u64))
            .collect())
    }

    async fn auction(&self, id: &AuctionId) -> Result<Option<Auction>, ArchiveError> {
        let conn = self.pool.get().await.map_err(PgError::from)?;
        let row = conn
            .query_opt(
                "SELECT spec::text, state::text FROM auctions WHERE id = $1",
                &[&id.as_str()],
            )
            .await
            .map_err(PgError::from)?;
        row.map(|r| decode_auction(id.as_str(), r.get(0), r.get(1)))
            .transpose()
    }

    async fn bids(
        &self,
        id: &AuctionId,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<BidEntry>, ArchiveError> {
        let before = before_seq.map_or(i64::MAX, |s| i64::try_from(s).unwrap_or(i64::MAX));
        let conn = self.pool.get().await.map_err(PgError::from)?;
        let rows = conn
            .query(
                "SELECT seq, bidder_id, bidder_name, amount, kind, placed_at FROM bids
                 WHERE auction_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
                &[&id.as_str(), &before, &i64::from(limit)],
            )
            .await
            .map_err(PgError::from)?;
        rows.iter()
            .map(|r| {
                StoredBid {
                    seq: r.get(0),
                    bidder_id: r.get(1),
                    bidder_name: r.get(2),
                    amount: r.get(3),
                    kind: r.get(4),
                    placed_at: r.get(5),
                }
                .decode()
            })
            .collect()
    }

    async fn log(
        &self,
        id: &AuctionId,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<LogRecord>, ArchiveError> {
        let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
        let conn = self.pool.get().await.map_err(PgError::from)?;
        let rows = conn
            .query(
                "SELECT entry, hash FROM log_entries
                 WHERE auction_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&id.as_str(), &after, &i64::from(limit)],
            )
            .await
            .map_err(PgError::from)?;
        rows.iter()
            .map(|r| LogRow::decode(r.get(0), r.get(1)))
            .collect()
    }

    async fn replies_since(&self, since: Millis) -> Result<Vec<StoredReply>, ArchiveError> {
        let conn = self.pool.get().await.map_err(PgError::from)?;
        let rows = conn
            .query(
                "SELECT auction_id, bidder_id, request_id, state::text, stored_at FROM replies
                 WHERE stored_at >= $1 ORDER BY stored_at, auction_id, seq",
                &[&since],
            )
            .await
            .map_err(PgError::from)?;
        rows.iter()
            .map(|r| decode_reply(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect()
    }

    async fn reply(
        &self,
        id: &AuctionId,
        bidder: &BidderId,
        request_id: &RequestId,
    ) -> Result<Option<StoredReply>, ArchiveError> {
        let conn = self.pool.get().await.map_err(PgError::from)?;
        let row = conn
            .query_opt(
                "SELECT auction_id, bidder_id, request_id, state::text, stored_at FROM replies
                 WHERE auction_id = $1 AND bidder_id = $2 AND request_id = $3",
                &[&id.as_str(), &bidder.as_str(), &request_id.as_str()],
            )
            .await
            .map_err(PgError::from)?;
        row.map(|r| decode_reply(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .transpose()
    }

    /// `SELECT 1` on a pooled connection (a dead one is replaced by the pool first).
    async fn check_ready(&self) -> Result<(), ArchiveError> {
        let conn = self.pool.get().await.map_err(PgError::from)?;
        conn.simple_query("SELECT 1").await.map_err(PgError::from)?;
        Ok(())
    }

    fn stats(&self) -> ArchiveStats {
        ArchiveStats {
            batches: self.batches.load(Ordering::Relaxed),
            bids: self.bids.load(Ordering::Relaxed),
        }
    }

    async fn set_watched(
        &self,
        bidder: &BidderId,
        auction: &AuctionId,
        watched: bool,
        at: Millis,
    ) -> Result<bool, ArchiveError> {
        let conn = self.pool.get().await.map_err(PgError::from)?;
        let changed = if watched {
            conn.execute(
                "INSERT INTO watchlist (bidder_id, auction_id, added_at)
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&bidder.as_str(), &auction.as_str(), &at],
            )
            .await
        } else {
            conn.execute(
                "DELETE FROM watchlist WHERE bidder_id = $1 AND auction_id = $2",
                &[&bidder.as_str(), &auction.as_str()],
            )
            .await
        }
        .map_err(PgError::from)?;
        Ok(changed > 0)
    }

    async fn watchlist(
        &self,
        bidder: &BidderId,
        limit: u32,
    ) -> Result<Vec<AuctionId>, ArchiveError> {
        let conn = self.pool.get().await.map_err(PgError::from)?;
        let rows = conn
            .query(
                "SELECT auction_id FROM watchlist WHERE bidder_id = $1
                 ORDER BY added_at DESC, auction_id DESC LIMIT $2",
                &[&bidder.as_str(), &i64::from(limit)],
            )
            .await
            .map_err(PgError::from)?;
        crate::rows::auction_ids(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn bid_auctions(
        &self,
        bidder: &BidderId,
        limit: u32,
    ) -> Result<Vec<AuctionId>, ArchiveError> {
        let conn = self.pool.get().await.map_err(PgError::from)?;
        let rows = conn
            .query(
                "SELECT auction_id FROM bids WHERE bidder_id = $1
                 GROUP BY auction_id ORDER BY max(placed_at) DESC, auction_id DESC LIMIT $2",
                &[&bidder.as_str(), &i64::from(limit)],
            )
            .await
            .map_err(PgError::from)?;
        crate::rows::auction_ids(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn set_next_steps(
        &self,
        auction: &AuctionId,
        steps: Option<&NextSteps>,
    ) -> Result<(), ArchiveError> {
        let conn = self.pool.get().await.map_err(PgError::from)?;
        match steps {
            Some(s) => {
                conn.execute(
                    "INSERT INTO next_steps (auction_id, text, url, updated_at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (auction_id) DO UPDATE SET
                         text = excluded.text, url = excluded.url,
                         updated_at = excluded.updated_at",
                    &[&auction.as_str(), &s.text, &s.url, &s.updated_at],
                )
                .await
            }
            None => {
                conn.execute(
                    "DELETE FROM next_steps WHERE auction_id = $1",
                    &[&auction.as_str()],
                )
                .await
            }
        }
        .map_err(PgError::from)?;
        Ok(())
    }

    async fn next_steps(&self, auction: &AuctionId) -> Result<Option<NextSteps>, ArchiveError> {
        let conn = self.pool.get().await.map_err(PgError::from)?;
        let row = conn
            .query_opt(
                "SELECT text, url, updated_at FROM next_steps WHERE auction_id = $1",
                &[&auction.as_str()],
            )
            .await
            .map_err(PgError::from)?;
        Ok(row.map(|r| NextSteps {
            text: r.get(0),
            url: r.get(1),
            updated_at: r.get(2),
        }))
    }

    async fn put_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), ArchiveError> {
        let conn = self.pool.get().await.map_err(PgError::from)?;
        Ok(outbox::put_endpoint(&conn, endpoint).await?)
    }

    async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, ArchiveError> {
        let conn = self.pool.get().await.map_err(PgError::from)?;
        Ok(outbox::endpoints(&conn).await?)
    }

    async fn delete_webhook_endpoint(&self, id: &str) -> Result<bool, ArchiveError> {
        let mut conn = self.pool.get().await.map_err(PgError::from)?;
        Ok(outbox::delete_endpoint(&mut conn, id).await?)
    }

    async fn set_webhook_secret(&self, id: &str, secret: &str) -> Result<bool, ArchiveError> {
        let conn = self.pool.get().await.map_err(PgError::from)?;
        Ok(outbox::set_secret(&conn, id, secret).await?)
    }

    async fn enqueue_webhook_event(
        &self,
        event: &OutboxEvent,
        endpoint_id: &str,
    ) -> Result<bool, ArchiveError> {
        let mut conn = self.pool.get().await.map_err(PgError::from)?;
        Ok(outbox::enqueue(&mut conn, event, endpoint_id).await?)
    }

    async fn claim_webhook_deliveries(
        &self,
        now: Millis,
        lease_until: Millis,
        owner: &str,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, ArchiveError> {
        let conn = self.pool.get().await.map_err(PgError::from)?;
        Ok(outbox::claim(&conn, now, lease_until, owner, limit).await?)
    }

    async fn finish_webhook_delivery(
        &self,
        event_id: &str,
        endpoint_id: &str,
        now: Millis,
        outcome: &AttemptOutcome,
    ) -> Result<(), ArchiveError> {
        let mut conn = self.pool.get().await.map_err(PgError::from)?;
        Ok(outbox::finish(&mut conn, event_id, endpoint_id, now, outcome).await?)
    }

    async fn prune_webhook_outbox(&self, finished_before: Millis) -> Result<u64, ArchiveError> {
        let mut conn = self.pool.get().await.map_err(PgError::from)?;
        Ok(outbox::prune(&mut conn, finished_before).await?)
    }

    async fn webhook_deliveries(
        &self,
        endpoint_id: Option<&str>,
        status: Option<DeliveryStatus>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, ArchiveError> {
        let conn = self.pool.get().await.map_err(PgError::from)?;
        Ok(outbox::deliveries(&conn, endpoint_id, status, limit).await?)
    }
}
