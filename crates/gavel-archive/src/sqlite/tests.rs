//! The conformance suite on SQLite, plus what only SQLite has: pragmas, the file, the
//! results table, rollback of a failing batch.

use super::*;
use crate::conformance::{fixture::Fixture, Harness};
use crate::{build_sqlite, ArchiveError};
use tempfile::TempDir;

/// A fresh data directory per test; `open` reopens the same file.
struct SqliteHarness {
    dir: TempDir,
}

impl SqliteHarness {
    fn new() -> Self {
        SqliteHarness {
            dir: tempfile::tempdir().expect("a temp dir"),
        }
    }

    fn db_path(&self) -> PathBuf {
        self.dir.path().join("gavel.db")
    }

    fn open_sqlite(&self) -> SqliteArchive {
        SqliteArchive::open(&self.db_path()).expect("the archive opens")
    }

    /// A plain connection to the same file, as another process would have.
    fn raw(&self) -> Connection {
        Connection::open(self.db_path()).expect("a raw connection")
    }
}

#[async_trait]
impl Harness for SqliteHarness {
    async fn open(&self) -> Arc<dyn Archive> {
        build_sqlite(self.dir.path()).expect("the archive opens")
    }
}

crate::archive_conformance_tests!(SqliteHarness::new());

fn pragma(conn: &Connection, name: &str) -> String {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| {
        r.get_ref(0).map(|v| match v {
            rusqlite::types::ValueRef::Integer(i) => i.to_string(),
            other => String::from_utf8_lossy(other.as_bytes().unwrap_or_default()).into_owned(),
        })
    })
    .expect("a pragma value")
}

#[test]
fn the_writer_commits_durably_in_wal_mode() {
    let h = SqliteHarness::new();
    let archive = h.open_sqlite();
    let writer = lock(&archive.inner.writer);
    assert_eq!(pragma(&writer, "journal_mode"), "wal");
    assert_eq!(pragma(&writer, "synchronous"), "2", "2 is FULL");
    assert_eq!(pragma(&writer, "foreign_keys"), "1");
    assert_eq!(
        pragma(&writer, "user_version"),
        schema::latest_version().to_string()
    );
    for reader in &archive.inner.readers {
        assert_eq!(pragma(&lock(reader), "query_only"), "1");
    }
    drop(writer);
    assert_eq!(
        pragma(&h.raw(), "journal_mode"),
        "wal",
        "stored in the file"
    );
}

#[test]
fn build_sqlite_creates_a_missing_data_directory() {
    let h = SqliteHarness::new();
    let nested = h.dir.path().join("a").join("b");
    build_sqlite(&nested).expect("the archive opens");
    assert!(nested.join("gavel.db").is_file());
}

#[test]
fn reopening_applies_no_migration_twice() {
    let h = SqliteHarness::new();
    drop(h.open_sqlite());
    drop(h.open_sqlite());
    assert_eq!(
        pragma(&h.raw(), "user_version"),
        schema::latest_version().to_string()
    );
}

#[test]
fn a_database_from_a_newer_build_is_refused() {
    let h = SqliteHarness::new();
    drop(h.open_sqlite());
    h.raw()
        .pragma_update(None, "user_version", schema::latest_version() + 1)
        .unwrap();
    match SqliteArchive::open(&h.db_path()) {
        Err(ArchiveError::Storage(msg)) => assert!(msg.contains("newer"), "{msg}"),
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("a newer schema was opened"),
    }
}

#[tokio::test]
async fn a_committed_batch_is_visible_to_another_connection_at_once() {
    let h = SqliteHarness::new();
    let archive = h.open_sqlite();
    let mut a = Fixture::new("visible");
    archive.create_auction(a.auction()).await.unwrap();
    archive
        .record_batch(&[a.open(), a.bid(), a.bid()])
        .await
        .unwrap();

    let count: i64 = h
        .raw()
        .query_row("SELECT count(*) FROM bids", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 2);
}

#[tokio::test]
async fn a_failing_batch_stores_nothing_and_can_be_retried() {
    let h = SqliteHarness::new();
    let archive = h.open_sqlite();
    let mut a = Fixture::new("rollback");
    archive.create_auction(a.auction()).await.unwrap();
    let batch = vec![a.open(), a.bid(), a.bid(), a.bid(), a.close()];
    let last_bid = batch[3].bid_id.clone().unwrap();
    // Make the third bid fail, as a full disk or an I/O error would.
    h.raw()
        .execute_batch(&format!(
            "CREATE TRIGGER fail_once BEFORE INSERT ON bids WHEN NEW.bid_id = '{last_bid}'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
        ))
        .unwrap();
    let before = archive.stats();

    let err = archive.record_batch(&batch).await.unwrap_err();
    assert!(
        matches!(&err, ArchiveError::Storage(m) if m.contains("injected")),
        "{err:?}"
    );
    assert_eq!(archive.stats(), before, "nothing counted");
    let stored = archive.auction(a.id()).await.unwrap().unwrap();
    assert_eq!(stored.state.seq, 1, "the state did not move");
    assert!(archive.bids(a.id(), None, 10).await.unwrap().is_empty());
    let results: i64 = h
        .raw()
        .query_row("SELECT count(*) FROM results", [], |r| r.get(0))
        .unwrap();
    assert_eq!(results, 0);

    h.raw().execute_batch("DROP TRIGGER fail_once").unwrap();
    archive.record_batch(&batch).await.unwrap();
    assert_eq!(
        archive.auction(a.id()).await.unwrap().as_ref(),
        Some(a.auction())
    );
    assert_eq!(archive.bids(a.id(), None, 10).await.unwrap().len(), 3);
}

#[tokio::test]
async fn results_rows_hold_reason_winner_price_and_admin() {
    let h = SqliteHarness::new();
    let archive = h.open_sqlite();
    let mut cancelled = Fixture::new("res-cancel");
    let mut early = Fixture::new("res-early");
    let mut bought = Fixture::new("res-buy");
    let mut timed = Fixture::new("res-timed");
    for f in [&cancelled, &early, &bought, &timed] {
        archive.create_auction(f.auction()).await.unwrap();
    }
    let batch = vec![
        cancelled.open(),
        cancelled.bid(),
        cancelled.cancel("admin-7"),
        early.open(),
        early.bid(),
        early.end_early("admin-3"),
        bought.open(),
        bought.buy_now("carol"),
        timed.open(),
        timed.close(),
    ];
    archive.record_batch(&batch).await.unwrap();

    type Row = (i64, String, Option<String>, Option<i64>, Option<String>);
    let row = |f: &Fixture| -> Row {
        h.raw()
            .query_row(
                "SELECT seq, reason, winner_id, final_price, by_admin FROM results
                 WHERE auction_id = ?1",
                [f.id().as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap()
    };
    assert_eq!(
        row(&cancelled),
        (4, "cancelled".into(), None, None, Some("admin-7".into()))
    );
    let price = early.auction().state.price.unwrap().minor_units();
    assert_eq!(
        row(&early),
        (
            4,
            "ended_early".into(),
            Some("alice".into()),
            Some(price),
            Some("admin-3".into())
        )
    );
    let price = bought.auction().spec.buy_now.unwrap().minor_units();
    assert_eq!(
        row(&bought),
        (3, "buy_now".into(), Some("carol".into()), Some(price), None)
    );
    assert_eq!(row(&timed), (3, "ended".into(), None, None, None));
}

#[tokio::test]
async fn bid_rows_keep_amounts_as_integers_and_the_request_id() {
    let h = SqliteHarness::new();
    let archive = h.open_sqlite();
    let mut a = Fixture::new("columns");
    archive.create_auction(a.auction()).await.unwrap();
    let (open, bid) = (a.open(), a.bid());
    archive.record_batch(&[open, bid.clone()]).await.unwrap();

    let (amount_type, kind, request): (String, String, Option<String>) = h
        .raw()
        .query_row(
            "SELECT typeof(amount), kind, request_id FROM bids WHERE bid_id = ?1",
            [bid.bid_id.as_deref().unwrap()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(amount_type, "integer");
    assert_eq!(kind, "bid");
    assert_eq!(request, bid.request_id.map(String::from));
}

#[tokio::test]
async fn a_corrupt_state_row_is_reported_not_guessed() {
    let h = SqliteHarness::new();
    let archive = h.open_sqlite();
    let a = Fixture::new("corrupt");
    archive.create_auction(a.auction()).await.unwrap();
    h.raw()
        .execute(
            "UPDATE auctions SET state = '{\"seq\":' WHERE id = ?1",
            [a.id().as_str()],
        )
        .unwrap();

    assert!(matches!(
        archive.load_auctions().await,
        Err(ArchiveError::Corrupt(_))
    ));
    assert!(matches!(
        archive.auction(a.id()).await,
        Err(ArchiveError::Corrupt(_))
    ));
}

#[tokio::test]
async fn a_bid_without_a_bid_id_is_keyed_by_its_seq() {
    let h = SqliteHarness::new();
    let archive = h.open_sqlite();
    let mut a = Fixture::new("no-bid-id");
    archive.create_auction(a.auction()).await.unwrap();
    let (open, mut bid) = (a.open(), a.bid());
    bid.bid_id = None;
    archive.record_batch(&[open, bid.clone()]).await.unwrap();
    archive.record_batch(&[bid]).await.unwrap();

    assert_eq!(archive.stats().bids, 1);
    assert_eq!(archive.bids(a.id(), None, 10).await.unwrap().len(), 1);
}

/// The plan SQLite picks for a query, one line per step.
fn plan(conn: &Connection, sql: &str) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>();
    rows.join("\n")
}

#[test]
fn listings_are_served_from_indexes_not_a_scan() {
    let h = SqliteHarness::new();
    drop(h.open_sqlite());
    let conn = h.raw();
    let closed = plan(
        &conn,
        "SELECT id, spec, state FROM auctions WHERE closed_at IS NOT NULL
         AND (closed_at, id) < (1, 'x') ORDER BY closed_at DESC, id DESC LIMIT 10",
    );
    assert!(closed.contains("auctions_closed"), "{closed}");
    assert!(!closed.contains("TEMP B-TREE"), "no sort step: {closed}");
    let hot = plan(
        &conn,
        "SELECT id, spec, state FROM auctions WHERE closed_at IS NULL
         UNION ALL SELECT id, spec, state FROM auctions WHERE closed_at >= 1",
    );
    assert!(hot.contains("auctions_live"), "{hot}");
    assert!(hot.contains("auctions_closed"), "{hot}");
    assert!(
        !hot.lines().any(|l| l.trim() == "SCAN auctions"),
        "never a full scan: {hot}"
    );
}

#[test]
fn the_listing_migration_fills_closed_at_from_the_results() {
    let mut conn = Connection::open_in_memory().unwrap();
    schema::run_for_test(&mut conn, &schema::MIGRATIONS[..2]).unwrap();
    conn.execute_batch(
        "INSERT INTO auctions (id, spec, state, seq, status, ends_at, created_at)
             VALUES ('a', '{}', '{}', 3, 'closed', 100, 1), ('b', '{}', '{}', 2, 'open', 200, 1);
         INSERT INTO results (auction_id, seq, reason, closed_at) VALUES ('a', 3, 'ended', 99);",
    )
    .unwrap();
    schema::migrate(&mut conn).unwrap();
    let closed_at = |id: &str| -> Option<i64> {
        conn.query_row("SELECT closed_at FROM auctions WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap()
    };
    assert_eq!(closed_at("a"), Some(99));
    assert_eq!(closed_at("b"), None);
}
