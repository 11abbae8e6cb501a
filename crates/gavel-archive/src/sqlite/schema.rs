//! Connection settings and the schema migrations of the SQLite archive.
//!
//! Migrations are plain SQL files in `migrations/sqlite/NNN_name.sql`, compiled in with
//! `include_str!`. The database's `PRAGMA user_version` holds the number of the last one
//! applied; each pending migration runs in its own transaction together with the bump of
//! `user_version`, so a crash mid-migration leaves the database at the previous version.

use rusqlite::{Connection, TransactionBehavior};
use std::time::Duration;

/// One schema step: applied when the database's `user_version` is below `version`.
#[derive(Clone, Copy)]
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. Versions are 1, 2, 3, … without gaps.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../../migrations/sqlite/001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "replies",
        sql: include_str!("../../migrations/sqlite/002_replies.sql"),
    },
    Migration {
        version: 3,
        name: "listing",
        sql: include_str!("../../migrations/sqlite/003_listing.sql"),
    },
    Migration {
        version: 4,
        name: "webhooks",
        sql: include_str!("../../migrations/sqlite/004_webhooks.sql"),
    },
    Migration {
        version: 5,
        name: "webhook_pruning",
        sql: include_str!("../../migrations/sqlite/005_webhook_pruning.sql"),
    },
    Migration {
        version: 6,
        name: "log",
        sql: include_str!("../../migrations/sqlite/006_log.sql"),
    },
    Migration {
        version: 7,
        name: "personal",
        sql: include_str!("../../migrations/sqlite/007_personal.sql"),
    },
    Migration {
        version: 8,
        name: "search",
        sql: include_str!("../../migrations/sqlite/008_search.sql"),
    },
];

/// The schema version this build writes.
#[cfg(test)]
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// How long a connection waits for another one's lock before failing with `SQLITE_BUSY`.
///
/// Within one process there is one writer, so this only matters when another process (a
/// backup, an operator's `sqlite3` shell) holds the database for a moment.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of the one writer connection.
///
/// - `journal_mode=WAL`: readers never block the writer, nor the writer the readers, and a
///   commit appends to the log instead of rewriting pages. The mode is stored in the file.
/// - `synchronous=FULL`: every commit fsyncs the WAL before returning. In embedded mode a
///   bid is confirmed to its bidder only after its batch commits, so the commit must be on
///   disk: with `NORMAL` the WAL is synced only at checkpoints, and a power loss or OS crash
///   can take back commits already reported (a `kill -9` of the process cannot, which is why
///   `NORMAL` would pass a process-crash test and still break the promise). The cost is one
///   fsync per batch, which group commit spreads over up to a whole batch of bids.
/// - `foreign_keys=ON`: a bid or result must belong to a stored auction.
pub(crate) fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "SQLite refused WAL journal mode");
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Settings of a reader connection: it may only read (`query_only`), so a bug in a query
/// path can never write around the batching writer.
pub(crate) fn configure_reader(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", "ON")?;
    Ok(())
}

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MigrateError {
    #[error("database schema version {found} is newer than this build's {latest}")]
    TooNew { found: i64, latest: i64 },
    #[error("migration {version} ({name}) failed: {source}")]
    Step {
        version: i64,
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// Applies every migration newer than the database's `user_version`. Returns the number
/// applied (0 on an up-to-date database).
pub(crate) fn migrate(conn: &mut Connection) -> Result<usize, MigrateError> {
    run(conn, MIGRATIONS)
}

/// Applies only `migrations` (a prefix of [`MIGRATIONS`]): a database as an older build left it.
#[cfg(test)]
pub(crate) fn run_for_test(
    conn: &mut Connection,
    migrations: &[Migration],
) -> Result<usize, MigrateError> {
    run(conn, migrations)
}

fn run(conn: &mut Connection, migrations: &[Migration]) -> Result<usize, MigrateError> {
    let latest = migrations.last().map_or(0, |m| m.version);
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > latest {
        return Err(MigrateError::TooNew { found, latest });
    }
    let mut applied = 0;
    for m in migrations.iter().filter(|m| m.version > found) {
        let step = |source| MigrateError::Step {
            version: m.version,
            name: m.name,
            source,
        };
        // IMMEDIATE takes the write lock up front, so two processes opening the same new
        // file cannot both decide to run the same migration.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(step)?;
        let current: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(step)?;
        if current >= m.version {
            continue; // another process applied it meanwhile
        }
        tx.execute_batch(m.sql).map_err(step)?;
        tx.pragma_update(None, "user_version", m.version)
            .map_err(step)?;
        tx.commit().map_err(step)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied archive migration"
        );
        applied += 1;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_versions_count_up_from_one_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "migration {}", m.name);
        }
    }

    #[test]
    fn migrations_run_once_and_record_the_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), MIGRATIONS.len());
        assert_eq!(migrate(&mut conn).unwrap(), 0);
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, latest_version());
    }

    #[test]
    fn a_later_migration_applies_on_top_of_an_earlier_one() {
        let mut conn = Connection::open_in_memory().unwrap();
        let first = [Migration {
            version: 1,
            name: "one",
            sql: "CREATE TABLE t (a INTEGER);",
        }];
        assert_eq!(run(&mut conn, &first).unwrap(), 1);
        let both = [
            first[0],
            Migration {
                version: 2,
                name: "two",
                sql: "ALTER TABLE t ADD COLUMN b INTEGER; INSERT INTO t VALUES (1, 2);",
            },
        ];
        assert_eq!(run(&mut conn, &both).unwrap(), 1);
        let b: i64 = conn.query_row("SELECT b FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(b, 2);
    }

    #[test]
    fn a_failing_migration_leaves_the_previous_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        let broken = [Migration {
            version: 1,
            name: "broken",
            sql: "CREATE TABLE t (a INTEGER); THIS IS NOT SQL;",
        }];
        assert!(matches!(
            run(&mut conn, &broken),
            Err(MigrateError::Step { version: 1, .. })
        ));
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 0);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 't'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "the half-applied migration was rolled back");
    }

    #[test]
    fn a_database_from_a_newer_build_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", latest_version() + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(MigrateError::TooNew { .. })
        ));
    }
}
