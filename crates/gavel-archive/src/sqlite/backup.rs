//! Online backup and restore of the embedded archive (`gavel backup`, `gavel restore`).
//!
//! # A consistent copy while the server writes
//!
//! [`backup`] uses SQLite's online backup API from a connection of its own (another
//! process than the server, typically). The whole copy is one backup *step*, so it runs
//! inside a single read transaction: the copy is exactly the database as of one commit,
//! however many batches the server commits meanwhile. In WAL mode a reader never blocks the
//! writer, so the server keeps committing during the copy (checkpoints just cannot pass the
//! copy's snapshot until it ends). A copy taken page range by page range would instead
//! restart whenever another process wrote, and might never finish under load.
//!
//! The copy is written to a temporary file beside the destination, switched to the
//! rollback journal (one self-contained file, no `-wal`), checked (`integrity_check`, and
//! that it is a Gavel archive), synced and only then renamed into place.
//!
//! # Restore
//!
//! [`restore`] checks the file first (integrity, a Gavel archive, a schema this build
//! knows), refuses a data directory whose archive is open in a running server, and one
//! that holds any auction unless told to overwrite it; then copies the file in next to
//! the target and renames it over (removing the old archive's `-wal` and `-shm`).

use super::schema::{self, MIGRATIONS};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The archive's file name inside a data directory.
pub const ARCHIVE_FILE: &str = "gavel.db";

/// The tables every Gavel archive has (from the first migration on).
const TABLES: [&str; 3] = ["auctions", "bids", "results"];

/// Why a backup or restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no archive at {}: is --data-dir the server's data directory? (In distributed mode the archive is PostgreSQL: back it up with pg_dump, see docs/deployment.md#backups.)", .0.display())]
    NoArchive(PathBuf),
    #[error("{} already exists (pass --force to replace it)", .0.display())]
    DestinationExists(PathBuf),
    #[error("{} is not a Gavel archive: {reason}", path.display())]
    NotAnArchive { path: PathBuf, reason: String },
    #[error("{} is damaged: {report}", path.display())]
    Damaged { path: PathBuf, report: String },
    #[error("{} has archive schema version {found}, newer than this build's {latest}: restore it with a newer gavel", path.display())]
    TooNew {
        path: PathBuf,
        found: i64,
        latest: i64,
    },
    #[error("the archive {} is open in a running server (or another process): stop the server first", .0.display())]
    Live(PathBuf),
    #[error("the archive {} already holds {auctions} auction(s) (pass --force to replace it)", path.display())]
    NotEmpty { path: PathBuf, auctions: i64 },
    #[error("SQLite ({}): {source}", path.display())]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a backup or restore copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The archive schema version of the copy.
    pub schema_version: i64,
    pub auctions: i64,
    pub bids: i64,
    pub results: i64,
    /// Size of the copy in bytes.
    pub bytes: u64,
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> BackupError + '_ {
    move |source| BackupError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Copies the archive of `data_dir` to the file `to` while a server may be using it.
/// Refuses an existing `to` unless `overwrite`.
pub fn backup(data_dir: &Path, to: &Path, overwrite: bool) -> Result<Summary, BackupError> {
    let source = data_dir.join(ARCHIVE_FILE);
    if !source.is_file() {
        return Err(BackupError::NoArchive(source));
    }
    if to.exists() && !overwrite {
        return Err(BackupError::DestinationExists(to.to_path_buf()));
    }
    // Read-only: a backup can never write to the live archive. (It still takes part in the
    // WAL's read locks, which is what makes its snapshot consistent.)
    let src = Connection::open_with_flags(
        &source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite(&source))?;
    src.busy_timeout(schema::BUSY_TIMEOUT)
        .map_err(sqlite(&source))?;
    check_archive(&src, &source)?;

    let tmp = temp_path(to);
    let _cleanup = RemoveOnDrop(tmp.clone());
    let _ = std::fs::remove_file(&tmp);
    {
        let mut dst = Connection::open(&tmp).map_err(sqlite(&tmp))?;
        copy_whole(&src, &mut dst, &tmp)?;
        // One self-contained file: no WAL beside it.
        dst.pragma_update(None, "journal_mode", "DELETE")
            .map_err(sqlite(&tmp))?;
        check_integrity(&dst, &tmp)?;
    }
    sync_file(&tmp)?;
    std::fs::rename(&tmp, to).map_err(io(to))?;
    sync_parent(to);
    summarize(to)
}

/// Replaces the archive of `data_dir` with the backup `from` (the server must be stopped).
/// Refuses an archive that holds auctions unless `overwrite`.
pub fn restore(from: &Path, data_dir: &Path, overwrite: bool) -> Result<Summary, BackupError> {
    if !from.is_file() {
        return Err(BackupError::Io {
            path: from.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    {
        let src = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sqlite(from))?;
        check_archive(&src, from)?;
        check_integrity(&src, from)?;
    }
    std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    let target = data_dir.join(ARCHIVE_FILE);
    if target.exists() {
        check_replaceable(&target, overwrite)?;
    }
    let tmp = temp_path(&target);
    let _cleanup = RemoveOnDrop(tmp.clone());
    let _ = std::fs::remove_file(&tmp);
    {
        let src = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sqlite(from))?;
        let mut dst = Connection::open(&tmp).map_err(sqlite(&tmp))?;
        copy_whole(&src, &mut dst, &tmp)?;
        dst.pragma_update(None, "journal_mode", "DELETE")
            .map_err(sqlite(&tmp))?;
        check_integrity(&dst, &tmp)?;
    }
    sync_file(&tmp)?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", target.display()));
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&side)(e)),
        }
    }
    std::fs::rename(&tmp, &target).map_err(io(&target))?;
    sync_parent(&target);
    summarize(&target)
}

/// The whole database in one backup step: one read transaction on `src`, so one
/// consistent snapshot, never restarted by concurrent commits.
fn copy_whole(src: &Connection, dst: &mut Connection, dst_path: &Path) -> Result<(), BackupError> {
    use rusqlite::backup::{Backup, StepResult};
    let backup = Backup::new(src, dst).map_err(sqlite(dst_path))?;
    loop {
        match backup.step(-1).map_err(sqlite(dst_path))? {
            StepResult::Done => return Ok(()),
            // The source was locked for a moment (a checkpoint, a migration): wait, retry.
            StepResult::Busy | StepResult::Locked => std::thread::sleep(Duration::from_millis(20)),
            // `More` cannot follow a step of every page; keep going if it ever does.
            _ => {}
        }
    }
}

/// `conn` is a Gavel archive: a schema version this build knows and its tables.
fn check_archive(conn: &Connection, path: &Path) -> Result<i64, BackupError> {
    let not = |reason: String| BackupError::NotAnArchive {
        path: path.to_path_buf(),
        reason,
    };
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| not(e.to_string()))?;
    let latest = MIGRATIONS.last().map_or(0, |m| m.version);
    if version < 1 {
        return Err(not("it has no archive schema (user_version 0)".into()));
    }
    if version > latest {
        return Err(BackupError::TooNew {
            path: path.to_path_buf(),
            found: version,
            latest,
        });
    }
    for table in TABLES {
        let found: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .map_err(|e| not(e.to_string()))?;
        if found != 1 {
            return Err(not(format!("it has no {table} table")));
        }
    }
    Ok(version)
}

fn check_integrity(conn: &Connection, path: &Path) -> Result<(), BackupError> {
    let report: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(sqlite(path))?;
    let fk: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .map_err(sqlite(path))?;
    if report != ["ok"] || fk != 0 {
        let mut report = report.join("; ");
        if fk != 0 {
            report.push_str(&format!("; {fk} row(s) refer to a missing auction"));
        }
        return Err(BackupError::Damaged {
            path: path.to_path_buf(),
            report,
        });
    }
    Ok(())
}

/// The existing archive `target` may be replaced: no other process has it open (switching
/// it out of WAL mode needs the only connection), and it holds no auction unless
/// `overwrite`.
fn check_replaceable(target: &Path, overwrite: bool) -> Result<(), BackupError> {
    let conn = Connection::open(target).map_err(sqlite(target))?;
    conn.busy_timeout(Duration::ZERO).map_err(sqlite(target))?;
    let mode: Result<String, _> =
        conn.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get(0));
    match mode {
        Ok(m) if m.eq_ignore_ascii_case("delete") => {}
        Ok(_) => return Err(BackupError::Live(target.to_path_buf())),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            return Err(BackupError::Live(target.to_path_buf()))
        }
        Err(e) => return Err(sqlite(target)(e)),
    }
    if overwrite {
        return Ok(());
    }
    // Not live, so this connection is alone: put the journal mode back before refusing.
    let auctions: i64 = conn
        .query_row("SELECT count(*) FROM auctions", [], |r| r.get(0))
        .unwrap_or(0);
    let _ = conn.pragma_update(None, "journal_mode", "WAL");
    if auctions > 0 {
        return Err(BackupError::NotEmpty {
            path: target.to_path_buf(),
            auctions,
        });
    }
    Ok(())
}

/// Counts of what the archive file at `path` holds.
pub fn summarize(path: &Path) -> Result<Summary, BackupError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(sqlite(path))?;
    let schema_version = check_archive(&conn, path)?;
    let count = |table: &str| -> Result<i64, BackupError> {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(sqlite(path))
    };
    Ok(Summary {
        schema_version,
        auctions: count("auctions")?,
        bids: count("bids")?,
        results: count("results")?,
        bytes: std::fs::metadata(path).map_err(io(path))?.len(),
    })
}

fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "gavel-backup".into());
    target.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

fn sync_file(path: &Path) -> Result<(), BackupError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))
}

/// Makes a rename durable (best effort: not every platform can open a directory).
fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Removes a temporary file unless it was renamed away.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert_auction(conn: &Connection, id: &str) {
        conn.execute(
            "INSERT INTO auctions (id, spec, state, seq, status, ends_at, created_at)
             VALUES (?1, '{}', '{}', 0, 'open', 1, 1)",
            [id],
        )
        .unwrap();
    }

    /// A data directory with a migrated archive, as a server leaves it.
    fn archive_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        drop(super::super::SqliteArchive::open(&dir.path().join(ARCHIVE_FILE)).unwrap());
        dir
    }

    #[test]
    fn a_backup_holds_what_was_committed_and_nothing_uncommitted() {
        let dir = archive_dir();
        let writer = Connection::open(dir.path().join(ARCHIVE_FILE)).unwrap();
        insert_auction(&writer, "committed");
        writer.execute_batch("BEGIN IMMEDIATE").unwrap();
        insert_auction(&writer, "in-flight");
        let out = tempfile::tempdir().unwrap();
        let first = out.path().join("first.db");
        let summary = backup(dir.path(), &first, false).unwrap();
        assert_eq!(summary.auctions, 1);
        writer.execute_batch("COMMIT").unwrap();
        let second = out.path().join("second.db");
        assert_eq!(backup(dir.path(), &second, false).unwrap().auctions, 2);
        // One self-contained file each, and no temporary file left behind.
        let names: Vec<String> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // An existing destination is refused, then replaced with `overwrite`.
        assert!(matches!(
            backup(dir.path(), &first, false),
            Err(BackupError::DestinationExists(_))
        ));
        assert_eq!(backup(dir.path(), &first, true).unwrap().auctions, 2);
        // A directory without an archive (a distributed node's): refused, saying where
        // the archive of that mode is.
        let empty = tempfile::tempdir().unwrap();
        let err = backup(empty.path(), &out.path().join("x.db"), false).unwrap_err();
        assert!(matches!(err, BackupError::NoArchive(_)));
        assert!(err.to_string().contains("pg_dump"), "{err}");
    }

    #[test]
    fn restore_refuses_files_that_are_not_archives_of_a_known_schema() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("data");
        // An SQLite database that is not Gavel's.
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (a INTEGER)")
            .unwrap();
        assert!(matches!(
            restore(&other, &target, true),
            Err(BackupError::NotAnArchive { .. })
        ));
        // A Gavel archive from a newer build.
        let src = archive_dir();
        let newer = dir.path().join("newer.db");
        backup(src.path(), &newer, false).unwrap();
        let latest = MIGRATIONS.last().unwrap().version;
        Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", latest + 1)
            .unwrap();
        assert!(matches!(
            restore(&newer, &target, true),
            Err(BackupError::TooNew { found, .. }) if found == latest + 1
        ));
        assert!(!target.join(ARCHIVE_FILE).exists());
        // A missing file.
        assert!(matches!(
            restore(&dir.path().join("nope.db"), &target, true),
            Err(BackupError::Io { .. })
        ));
    }

    #[test]
    fn restore_replaces_an_archive_with_auctions_only_when_forced() {
        let src = archive_dir();
        insert_auction(
            &Connection::open(src.path().join(ARCHIVE_FILE)).unwrap(),
            "from-backup",
        );
        let file = tempfile::tempdir().unwrap();
        let backup_file = file.path().join("b.db");
        backup(src.path(), &backup_file, false).unwrap();

        let target = archive_dir();
        insert_auction(
            &Connection::open(target.path().join(ARCHIVE_FILE)).unwrap(),
            "already-here",
        );
        assert!(matches!(
            restore(&backup_file, target.path(), false),
            Err(BackupError::NotEmpty { auctions: 1, .. })
        ));
        // A refused restore leaves the archive as it was (still in WAL mode).
        let conn = Connection::open(target.path().join(ARCHIVE_FILE)).unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(conn);
        // Open elsewhere (a running server): refused even with --force.
        let holder = super::super::SqliteArchive::open(&target.path().join(ARCHIVE_FILE)).unwrap();
        assert!(matches!(
            restore(&backup_file, target.path(), true),
            Err(BackupError::Live(_))
        ));
        drop(holder);
        let summary = restore(&backup_file, target.path(), true).unwrap();
        assert_eq!(summary.auctions, 1);
        let id: String = Connection::open(target.path().join(ARCHIVE_FILE))
            .unwrap()
            .query_row("SELECT id FROM auctions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(id, "from-backup");
    }
}
