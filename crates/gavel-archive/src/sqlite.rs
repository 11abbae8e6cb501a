//! Embedded archive on SQLite: one file, one writer connection, a few reader connections.
//!
//! # Write ratio: one transaction per batch
//!
//! The engine's group committer hands `record_batch` up to 100 changes at a time (a batch
//! also closes after a few milliseconds, because confirmations wait for it). Each batch is
//! exactly **one** write transaction and so one WAL fsync, however many bids it holds:
//! under load the archive commits about once per 100 bids, and when bids trickle in, once
//! per bid that arrives alone. [`ArchiveStats`] counts both sides (`batches` and `bids`), so
//! tests and benchmarks can read the ratio instead of guessing it. Inside the transaction
//! the work is also kept small: one cached-statement insert per bid, one upsert per
//! *auction* (its newest state in the batch, not one per change), one insert per result.
//!
//! # Durability
//!
//! WAL journal with `synchronous=FULL` (see `schema::configure_writer` for why `NORMAL`
//! is not enough): when `record_batch` returns `Ok`, the batch is on disk and survives a
//! crash of the process, the OS or the power.
//!
//! # Threads
//!
//! rusqlite is blocking, so every call runs on tokio's blocking pool
//! (`spawn_blocking`) and never stalls the async workers. The writer connection sits behind
//! a std `Mutex` (nothing is awaited while it is held, and there is one writer task anyway);
//! reads use their own connections, which WAL lets run alongside the writer, each reading
//! the last committed snapshot. A `record_batch` future that is dropped does not cancel the
//! blocking transaction: it commits or rolls back on its own.
//!
//! # Idempotency
//!
//! Bids are keyed by the server-generated `bid_id` and unique on `(auction_id, seq)`; both
//! inserts use `ON CONFLICT DO NOTHING`, the auction upsert only applies a higher `seq`,
//! and a result is written once. Redelivering a batch after a crash stores nothing twice.

pub mod backup;
mod outbox;
mod schema;
#[cfg(test)]
mod tests;

use crate::rows::{decode_auction, decode_reply, AuctionRow, BatchRows, BidRow, LogRow, StoredBid};
use crate::webhooks::{
    AttemptOutcome, DeliveryRecord, DeliveryStatus, DueDelivery, OutboxEvent, WebhookEndpoint,
};
use crate::{
    Archive, ArchiveError, ArchiveStats, ArchivedChange, LogRecord, NextSteps, StoredReply,
};
use async_trait::async_trait;
use gavel_core::{Auction, AuctionId, BidEntry, BidderId, Millis, RequestId};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

/// Reader connections kept open. Reads are short (one auction, one page of history), so
/// a handful covers many concurrent HTTP requests; each costs a page cache.
const READERS: usize = 4;

/// Errors of this backend, mapped into [`ArchiveError`] at the trait boundary.
#[derive(Debug, thiserror::Error)]
enum SqliteError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("archive schema: {0}")]
    Migrate(#[from] schema::MigrateError),
    #[error("cannot create the data directory {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

impl From<SqliteError> for ArchiveError {
    fn from(e: SqliteError) -> Self {
        match e {
            SqliteError::Archive(e) => e,
            other => ArchiveError::Storage(other.to_string()),
        }
    }
}

/// The embedded archive. Cheap to share: clone the `Arc<dyn Archive>` it is handed out as.
pub struct SqliteArchive {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    batches: AtomicU64,
    bids: AtomicU64,
}

impl SqliteArchive {
    /// Opens (or creates) the archive file at `path`, creating its directory if missing,
    /// and brings the schema up to date. Blocking: call it at start-up, before serving.
    pub fn open(path: &Path) -> Result<Self, ArchiveError> {
        Ok(Self::open_inner(path)?)
    }

    fn open_inner(path: &Path) -> Result<Self, SqliteError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| SqliteError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let mut writer = Connection::open(path)?;
        schema::configure_writer(&writer)?;
        schema::migrate(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| {
                let conn = Connection::open(path)?;
                schema::configure_reader(&conn)?;
                Ok(Mutex::new(conn))
            })
            .collect::<Result<_, SqliteError>>()?;
        tracing::info!(path = %path.display(), "SQLite archive open");
        Ok(SqliteArchive {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
                batches: AtomicU64::new(0),
                bids: AtomicU64::new(0),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs blocking database work on tokio's blocking pool.
    async fn run<T, F>(&self, work: F) -> Result<T, ArchiveError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, SqliteError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        match tokio::task::spawn_blocking(move || work(&inner)).await {
            Ok(result) => result.map_err(ArchiveError::from),
            Err(e) => Err(ArchiveError::Storage(format!("archive task failed: {e}"))),
        }
    }
}

/// A poisoned lock only means another call panicked while holding the connection. An open
/// transaction is rolled back when its guard unwinds, so the connection is still sound.
fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Inner {
    fn write<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, SqliteError>,
    ) -> Result<T, SqliteError> {
        f(&mut lock(&self.writer))
    }

    /// Runs `f` on a free reader connection (or waits for one, round robin).
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, SqliteError>,
    ) -> Result<T, SqliteError> {
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            match self.readers[(start + i) % n].try_lock() {
                Ok(conn) => return f(&conn),
                Err(TryLockError::Poisoned(p)) => return f(&p.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        f(&lock(&self.readers[start]))
    }
}

const INSERT_AUCTION: &str = "\
    INSERT INTO auctions (id, spec, state, seq, status, ends_at, created_at, closed_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// The state only moves forward: an older (or the same) seq leaves the row alone.
const UPSERT_STATE: &str = "\
    INSERT INTO auctions (id, spec, state, seq, status, ends_at, created_at, closed_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
    ON CONFLICT (id) DO UPDATE SET
        state = excluded.state,
        seq = excluded.seq,
        status = excluded.status,
        ends_at = excluded.ends_at,
        closed_at = excluded.closed_at
    WHERE excluded.seq > auctions.seq";

/// Skips a bid whose `bid_id` or `(auction_id, seq)` is already stored.
const INSERT_BID: &str = "\
    INSERT INTO bids (bid_id, auction_id, seq, bidder_id, bidder_name, amount, kind,
                      placed_at, request_id)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
    ON CONFLICT DO NOTHING";

const INSERT_RESULT: &str = "\
    INSERT INTO results (auction_id, seq, reason, winner_id, winner_name, final_price,
                         closed_at, by_admin)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
    ON CONFLICT (auction_id) DO NOTHING";

/// The first entry stored for a seq stays (a redelivered change).
const INSERT_LOG: &str = "\
    INSERT INTO log_entries (auction_id, seq, kind, at, entry, hash)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)
    ON CONFLICT DO NOTHING";

fn insert_log(conn: &Connection, l: &LogRow) -> Result<(), SqliteError> {
    conn.prepare_cached(INSERT_LOG)?.execute(params![
        l.auction_id,
        l.seq,
        l.kind,
        l.at,
        l.entry,
        l.hash
    ])?;
    Ok(())
}

/// The first reply stored for a request stays.
const INSERT_REPLY: &str = "\
    INSERT INTO replies (auction_id, bidder_id, request_id, seq, state, stored_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)
    ON CONFLICT DO NOTHING";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn insert_auction(conn: &Connection, row: &AuctionRow) -> Result<(), SqliteError> {
    let result = conn.execute(
        INSERT_AUCTION,
        params![
            row.id,
            row.spec,
            row.state,
            row.seq,
            row.status,
            row.ends_at,
            now_ms(),
            row.closed_at
        ],
    );
    match result {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            let id = AuctionId::parse(row.id.as_str())
                .map_err(|e| ArchiveError::Storage(format!("auction id {:?}: {e}", row.id)))?;
            Err(ArchiveError::AlreadyExists(id).into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Writes one batch in one transaction. Returns the number of bid rows inserted.
fn write_batch(conn: &mut Connection, rows: &BatchRows) -> Result<u64, SqliteError> {
    // IMMEDIATE: take the write lock now rather than upgrade mid-transaction.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let created_at = now_ms();
    let mut inserted = 0;
    {
        // Auctions first: the bids and results reference them.
        let mut upsert = tx.prepare_cached(UPSERT_STATE)?;
        for a in &rows.auctions {
            upsert.execute(params![
                a.id,
                a.spec,
                a.state,
                a.seq,
                a.status,
                a.ends_at,
                created_at,
                a.closed_at
            ])?;
        }
        let mut insert_bid = tx.prepare_cached(INSERT_BID)?;
        for b in &rows.bids {
            let n = insert_bid.execute(params![
                b.bid_id,
                b.auction_id,
                b.seq,
                b.bidder_id,
                b.bidder_name,
                b.amount,
                b.kind,
                b.placed_at,
                b.request_id,
            ])?;
            if n == 0 {
                warn_if_seq_clash(&tx, b)?;
            }
            inserted += n as u64;
        }
        let mut insert_result = tx.prepare_cached(INSERT_RESULT)?;
        for r in &rows.results {
            insert_result.execute(params![
                r.auction_id,
                r.seq,
                r.reason,
                r.winner_id,
                r.winner_name,
                r.final_price,
                r.closed_at,
                r.by_admin,
            ])?;
        }
        let mut insert_reply = tx.prepare_cached(INSERT_REPLY)?;
        for r in &rows.replies {
            insert_reply.execute(params![
                r.auction_id,
                r.bidder_id,
                r.request_id,
                r.seq,
                r.state,
                created_at
            ])?;
        }
        for l in &rows.log {
            insert_log(&tx, l)?;
        }
    }
    // The webhook events of these changes commit with them (the outbox).
    outbox::write_events(&tx, &rows.events, created_at)?;
    tx.commit()?;
    Ok(inserted)
}

/// A skipped bid is normally a redelivery of the same bid. If another bid id holds its
/// `(auction, seq)`, the authority handed a seq out twice (e.g. Redis lost recent writes):
/// the stored bid stays, and the operator must hear about it.
fn warn_if_seq_clash(conn: &Connection, bid: &BidRow) -> Result<(), SqliteError> {
    let holder: Option<String> = conn
        .prepare_cached("SELECT bid_id FROM bids WHERE auction_id = ?1 AND seq = ?2")?
        .query_row(params![bid.auction_id, bid.seq], |r| r.get(0))
        .optional()?;
    if let Some(holder) = holder.filter(|h| *h != bid.bid_id) {
        tracing::warn!(
            auction = %bid.auction_id,
            seq = bid.seq,
            stored_bid = %holder,
            skipped_bid = %bid.bid_id,
            "two different bids claim one seq; kept the stored one"
        );
    }
    Ok(())
}

/// Decodes `(id, spec, state)` rows into auctions.
fn decode_rows(mut rows: rusqlite::Rows<'_>) -> Result<Vec<Auction>, SqliteError> {
    let mut auctions = Vec::new();
    while let Some(r) = rows.next()? {
        let (id, spec, state): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
        auctions.push(decode_auction(&id, &spec, &state)?);
    }
    Ok(auctions)
}

type ReplyColumns = (String, String, String, String, i64);

fn reply_columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReplyColumns> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

#[async_trait]
impl Archive for SqliteArchive {
    async fn create_auction(&self, auction: &Auction) -> Result<(), ArchiveError> {
        let row = AuctionRow::new(auction)?;
        let log = LogRow::of(auction)?;
        let created_at = now_ms();
        let event = crate::webhooks::created_event(auction, Some(created_at));
        self.run(move |db| {
            db.write(|conn| {
                // The auction, its first log entry and its `auction.created` event commit
                // together.
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                insert_auction(&tx, &row)?;
                if let Some(log) = &log {
                    insert_log(&tx, log)?;
                }
                outbox::write_events(&tx, std::slice::from_ref(&event), created_at)?;
                tx.commit()?;
                Ok(())
            })
        })
        .await
    }

    async fn record_batch(&self, changes: &[ArchivedChange]) -> Result<(), ArchiveError> {
        if changes.is_empty() {
            return Ok(());
        }
        let rows = BatchRows::from_changes(changes)?;
        self.run(move |db| {
            let inserted = db.write(|conn| write_batch(conn, &rows))?;
            // Counted only once committed.
            db.batches.fetch_add(1, Ordering::Relaxed);
            db.bids.fetch_add(inserted, Ordering::Relaxed);
            Ok(())
        })
        .await
    }

    async fn load_auctions(&self) -> Result<Vec<Auction>, ArchiveError> {
        self.run(|db| {
            db.read(|conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id, spec, state FROM auctions ORDER BY created_at, id",
                )?;
                let rows = stmt.query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?;
                let mut auctions = Vec::new();
                for row in rows {
                    let (id, spec, state) = row?;
                    auctions.push(decode_auction(&id, &spec, &state)?);
                }
                Ok(auctions)
            })
        })
        .await
    }

    async fn load_hot(&self, closed_since: Millis) -> Result<Vec<Auction>, ArchiveError> {
        self.run(move |db| {
            db.read(|conn| {
                // Two index ranges (auctions_live, auctions_closed), never a table scan.
                let mut stmt = conn.prepare_cached(
                    "SELECT id, spec, state FROM auctions WHERE closed_at IS NULL
                     UNION ALL
                     SELECT id, spec, state FROM auctions WHERE closed_at >= ?1",
                )?;
                let auctions = decode_rows(stmt.query([closed_since])?)?;
                Ok(auctions)
            })
        })
        .await
    }

    async fn closed_auctions(
        &self,
        before: Option<(Millis, AuctionId)>,
        limit: u32,
    ) -> Result<Vec<Auction>, ArchiveError> {
        let before = before.map(|(at, id)| (at, id.to_string()));
        self.run(move |db| {
            db.read(|conn| {
                let auctions = match &before {
                    None => decode_rows(
                        conn.prepare_cached(
                            "SELECT id, spec, state FROM auctions WHERE closed_at IS NOT NULL
                             ORDER BY closed_at DESC, id DESC LIMIT ?1",
                        )?
                        .query([limit])?,
                    )?,
                    Some((at, id)) => decode_rows(
                        conn.prepare_cached(
                            "SELECT id, spec, state FROM auctions
                             WHERE closed_at IS NOT NULL AND (closed_at, id) < (?1, ?2)
                             ORDER BY closed_at DESC, id DESC LIMIT ?3",
                        )?
                        .query(params![at, id, limit])?,
                    )?,
                };
                Ok(auctions)
            })
        })
        .await
    }

    async fn auction(&self, id: &AuctionId) -> Result<Option<Auction>, ArchiveError> {
        let id = id.to_string();
        self.run(move |db| {
            db.read(|conn| {
                let row = conn
                    .prepare_cached("SELECT spec, state FROM auctions WHERE id = ?1")?
                    .query_row([&id], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                    })
                    .optional()?;
                match row {
                    Some((spec, state)) => Ok(Some(decode_auction(&id, &spec, &state)?)),
                    None => Ok(None),
                }
            })
        })
        .await
    }

    async fn search(
        &self,
        query: &crate::search::SearchQuery,
    ) -> Result<Vec<Auction>, ArchiveError> {
        use crate::search::{statement, Dialect, Param};
        let (sql, params) = statement(query, Dialect::Sqlite);
        self.run(move |db| {
            db.read(|conn| {
                let values = params.iter().map(|p| match p {
                    Param::Int(i) => rusqlite::types::Value::Integer(*i),
                    Param::Text(t) => rusqlite::types::Value::Text(t.clone()),
                });
                let mut stmt = conn.prepare_cached(&sql)?;
                let auctions = decode_rows(stmt.query(rusqlite::params_from_iter(values))?)?;
                Ok(auctions)
            })
        })
        .await
    }

    async fn categories(&self) -> Result<Vec<(String, u64)>, ArchiveError> {
        self.run(move |db| {
            db.read(|conn| {
                let mut stmt = conn.prepare_cached(crate::search::CATEGORIES)?;
                let rows = stmt
                    .query_map([], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
        })
        .await
    }

    async fn bids(
        &self,
        id: &AuctionId,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<BidEntry>, ArchiveError> {
        let id = id.to_string();
        // Seqs are far below i64::MAX, so clamping a larger bound changes nothing.
        let before = before_seq.map_or(i64::MAX, |s| i64::try_from(s).unwrap_or(i64::MAX));
        self.run(move |db| {
            db.read(|conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT seq, bidder_id, bidder_name, amount, kind, placed_at FROM bids
                     WHERE auction_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
                )?;
                let rows = stmt.query_map(params![id, before, limit], |r| {
                    Ok(StoredBid {
                        seq: r.get(0)?,
                        bidder_id: r.get(1)?,
                        bidder_name: r.get(2)?,
                        amount: r.get(3)?,
                        kind: r.get(4)?,
                        placed_at: r.get(5)?,
                    })
                })?;
                let mut bids = Vec::new();
                for row in rows {
                    bids.push(row?.decode()?);
                }
                Ok(bids)
            })
        })
        .await
    }

    async fn log(
        &self,
        id: &AuctionId,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<LogRecord>, ArchiveError> {
        let id = id.to_string();
        let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
        self.run(move |db| {
            db.read(|conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT entry, hash FROM log_entries
                     WHERE auction_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                )?;
                let rows = stmt.query_map(params![id, after, limit], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?;
                let mut out = Vec::new();
                for row in rows {
                    let (entry, hash) = row?;
                    out.push(LogRow::decode(&entry, &hash)?);
                }
                Ok(out)
            })
        })
        .await
    }

    async fn replies_since(&self, since: Millis) -> Result<Vec<StoredReply>, ArchiveError> {
        self.run(move |db| {
            db.read(|conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT auction_id, bidder_id, request_id, state, stored_at FROM replies
                     WHERE stored_at >= ?1 ORDER BY stored_at, auction_id, seq",
                )?;
                let rows = stmt.query_map([since], reply_columns)?;
                let mut out = Vec::new();
                for row in rows {
                    let (auction, bidder, request, state, at) = row?;
                    out.push(decode_reply(&auction, bidder, request, &state, at)?);
                }
                Ok(out)
            })
        })
        .await
    }

    async fn reply(
        &self,
        id: &AuctionId,
        bidder: &BidderId,
        request_id: &RequestId,
    ) -> Result<Option<StoredReply>, ArchiveError> {
        let key = (id.to_string(), bidder.to_string(), request_id.to_string());
        self.run(move |db| {
            db.read(|conn| {
                let row = conn
                    .prepare_cached(
                        "SELECT auction_id, bidder_id, request_id, state, stored_at FROM replies
                         WHERE auction_id = ?1 AND bidder_id = ?2 AND request_id = ?3",
                    )?
                    .query_row(params![key.0, key.1, key.2], reply_columns)
                    .optional()?;
                match row {
                    Some((auction, bidder, request, state, at)) => {
                        Ok(Some(decode_reply(&auction, bidder, request, &state, at)?))
                    }
                    None => Ok(None),
                }
            })
        })
        .await
    }

    /// A read of the schema on a reader connection: the file is open and readable.
    async fn check_ready(&self) -> Result<(), ArchiveError> {
        self.run(|db| {
            db.read(|conn| {
                conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                    r.get::<_, i64>(0)
                })?;
                Ok(())
            })
        })
        .await
    }

    fn stats(&self) -> ArchiveStats {
        ArchiveStats {
            batches: self.inner.batches.load(Ordering::Relaxed),
            bids: self.inner.bids.load(Ordering::Relaxed),
        }
    }

    async fn set_watched(
        &self,
        bidder: &BidderId,
        auction: &AuctionId,
        watched: bool,
        at: Millis,
    ) -> Result<bool, ArchiveError> {
        let (bidder, auction) = (bidder.to_string(), auction.to_string());
        self.run(move |db| {
            db.write(|conn| {
                let changed = if watched {
                    conn.prepare_cached(
                        "INSERT INTO watchlist (bidder_id, auction_id, added_at)
                         VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![bidder, auction, at])?
                } else {
                    conn.prepare_cached(
                        "DELETE FROM watchlist WHERE bidder_id = ?1 AND auction_id = ?2",
                    )?
                    .execute(params![bidder, auction])?
                };
                Ok(changed > 0)
            })
        })
        .await
    }

    async fn watchlist(
        &self,
        bidder: &BidderId,
        limit: u32,
    ) -> Result<Vec<AuctionId>, ArchiveError> {
        let bidder = bidder.to_string();
        let ids = self
            .run(move |db| {
                db.read(|conn| {
                    let mut stmt = conn.prepare_cached(
                        "SELECT auction_id FROM watchlist WHERE bidder_id = ?1
                         ORDER BY added_at DESC, auction_id DESC LIMIT ?2",
                    )?;
                    let rows = stmt.query_map(params![bidder, limit], |r| r.get::<_, String>(0))?;
                    Ok(rows.collect::<Result<Vec<_>, _>>()?)
                })
            })
            .await?;
        crate::rows::auction_ids(ids)
    }

    async fn bid_auctions(
        &self,
        bidder: &BidderId,
        limit: u32,
    ) -> Result<Vec<AuctionId>, ArchiveError> {
        let bidder = bidder.to_string();
        let ids = self
            .run(move |db| {
                db.read(|conn| {
                    let mut stmt = conn.prepare_cached(
                        "SELECT auction_id FROM bids WHERE bidder_id = ?1
                         GROUP BY auction_id ORDER BY max(placed_at) DESC, auction_id DESC
                         LIMIT ?2",
                    )?;
                    let rows = stmt.query_map(params![bidder, limit], |r| r.get::<_, String>(0))?;
                    Ok(rows.collect::<Result<Vec<_>, _>>()?)
                })
            })
            .await?;
        crate::rows::auction_ids(ids)
    }

    async fn set_next_steps(
        &self,
        auction: &AuctionId,
        steps: Option<&NextSteps>,
    ) -> Result<(), ArchiveError> {
        let auction = auction.to_string();
        let steps = steps.cloned();
        self.run(move |db| {
            db.write(|conn| {
                match &steps {
                    Some(s) => conn
                        .prepare_cached(
                            "INSERT INTO next_steps (auction_id, text, url, updated_at)
                             VALUES (?1, ?2, ?3, ?4)
                             ON CONFLICT (auction_id) DO UPDATE SET
                                 text = excluded.text, url = excluded.url,
                                 updated_at = excluded.updated_at",
                        )?
                        .execute(params![auction, s.text, s.url, s.updated_at])?,
                    None => conn
                        .prepare_cached("DELETE FROM next_steps WHERE auction_id = ?1")?
                        .execute([&auction])?,
                };
                Ok(())
            })
        })
        .await
    }

    async fn next_steps(&self, auction: &AuctionId) -> Result<Option<NextSteps>, ArchiveError> {
        let auction = auction.to_string();
        self.run(move |db| {
            db.read(|conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT text, url, updated_at FROM next_steps WHERE auction_id = ?1",
                    )?
                    .query_row([&auction], |r| {
                        Ok(NextSteps {
                            text: r.get(0)?,
                            url: r.get(1)?,
                            updated_at: r.get(2)?,
                        })
                    })
                    .optional()?)
            })
        })
        .await
    }

    async fn put_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), ArchiveError> {
        let endpoint = endpoint.clone();
        self.run(move |db| db.write(|conn| outbox::put_endpoint(conn, &endpoint)))
            .await
    }

    async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, ArchiveError> {
        self.run(|db| db.read(outbox::endpoints)).await
    }

    async fn delete_webhook_endpoint(&self, id: &str) -> Result<bool, ArchiveError> {
        let id = id.to_string();
        self.run(move |db| db.write(|conn| outbox::delete_endpoint(conn, &id)))
            .await
    }

    async fn set_webhook_secret(&self, id: &str, secret: &str) -> Result<bool, ArchiveError> {
        let (id, secret) = (id.to_string(), secret.to_string());
        self.run(move |db| db.write(|conn| outbox::set_secret(conn, &id, &secret)))
            .await
    }

    async fn enqueue_webhook_event(
        &self,
        event: &OutboxEvent,
        endpoint_id: &str,
    ) -> Result<bool, ArchiveError> {
        let (event, endpoint_id) = (event.clone(), endpoint_id.to_string());
        self.run(move |db| db.write(|conn| outbox::enqueue(conn, &event, &endpoint_id, now_ms())))
            .await
    }

    async fn claim_webhook_deliveries(
        &self,
        now: Millis,
        lease_until: Millis,
        owner: &str,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, ArchiveError> {
        let owner = owner.to_string();
        self.run(move |db| {
            // Polled every second or so: a reader answers "nothing due" without touching the
            // writer connection the group commit needs.
            if !db.read(|conn| outbox::any_due(conn, now))? {
                return Ok(Vec::new());
            }
            db.write(|conn| outbox::claim(conn, now, lease_until, &owner, limit))
        })
        .await
    }

    async fn finish_webhook_delivery(
        &self,
        event_id: &str,
        endpoint_id: &str,
        now: Millis,
        outcome: &AttemptOutcome,
    ) -> Result<(), ArchiveError> {
        let (event_id, endpoint_id, outcome) = (
            event_id.to_string(),
            endpoint_id.to_string(),
            outcome.clone(),
        );
        self.run(move |db| {
            db.write(|conn| outbox::finish(conn, &event_id, &endpoint_id, now, &outcome))
        })
        .await
    }

    async fn prune_webhook_outbox(&self, finished_before: Millis) -> Result<u64, ArchiveError> {
        self.run(move |db| db.write(|conn| outbox::prune(conn, finished_before)))
            .await
    }

    async fn webhook_deliveries(
        &self,
        endpoint_id: Option<&str>,
        status: Option<DeliveryStatus>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, ArchiveError> {
        let endpoint_id = endpoint_id.map(str::to_string);
        self.run(move |db| {
            db.read(|conn| outbox::deliveries(conn, endpoint_id.as_deref(), status, limit))
        })
        .await
    }
}
