//! `gavel backup` and `gavel restore`: a consistent online copy of the embedded archive,
//! and putting one back (see `gavel_archive::sqlite::backup` for how, and
//! docs/deployment.md#backups for when).

use clap::Args;
use gavel_archive::sqlite::backup::{self, Summary};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The server's data directory (holding gavel.db). The server may be running.
    #[arg(long, env = "GAVEL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The backup file to write (refused if it exists, unless --force).
    #[arg(long)]
    pub to: PathBuf,
    /// Replace an existing backup file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The backup file (made by `gavel backup`) to restore.
    #[arg(long)]
    pub from: PathBuf,
    /// The data directory to restore into (created if missing). Its server must be stopped.
    #[arg(long, env = "GAVEL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Replace an archive that already holds auctions.
    #[arg(long)]
    pub force: bool,
}

fn describe(s: &Summary) -> String {
    format!(
        "archive schema {}, {} auction(s), {} bid(s), {} result(s), {} bytes",
        s.schema_version, s.auctions, s.bids, s.results, s.bytes
    )
}

/// Exit codes: 0 done, 1 refused or failed (the reason on stderr).
pub async fn run_backup(args: BackupArgs) -> i32 {
    let BackupArgs {
        data_dir,
        to,
        force,
    } = args;
    let (shown_dir, shown_to) = (data_dir.display().to_string(), to.display().to_string());
    let result = tokio::task::spawn_blocking(move || backup::backup(&data_dir, &to, force)).await;
    match result {
        Ok(Ok(summary)) => {
            println!(
                "backed up {shown_dir}/{} to {shown_to}: {}",
                backup::ARCHIVE_FILE,
                describe(&summary)
            );
            0
        }
        Ok(Err(e)) => {
            eprintln!("error: backup failed: {e}");
            1
        }
        Err(e) => {
            eprintln!("error: backup failed: {e}");
            1
        }
    }
}

/// Exit codes: 0 done, 1 refused or failed (the reason on stderr).
pub async fn run_restore(args: RestoreArgs) -> i32 {
    let RestoreArgs {
        from,
        data_dir,
        force,
    } = args;
    let (shown_from, shown_dir) = (from.display().to_string(), data_dir.display().to_string());
    let result =
        tokio::task::spawn_blocking(move || backup::restore(&from, &data_dir, force)).await;
    match result {
        Ok(Ok(summary)) => {
            println!(
                "restored {shown_from} into {shown_dir}/{}: {}",
                backup::ARCHIVE_FILE,
                describe(&summary)
            );
            0
        }
        Ok(Err(e)) => {
            eprintln!("error: restore refused: {e}");
            1
        }
        Err(e) => {
            eprintln!("error: restore failed: {e}");
            1
        }
    }
}
