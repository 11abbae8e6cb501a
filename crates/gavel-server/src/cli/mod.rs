//! The `gavel` subcommands other than `serve`: each in its own file, each returning the
//! process exit code (0: done; see each command for the others).

pub mod admin;
pub mod backup;
pub mod config_check;

use crate::config::Command;

/// Runs a subcommand other than `serve` and returns the process exit code.
pub async fn run(command: Command) -> i32 {
    match command {
        Command::Serve(_) => unreachable!("`gavel serve` runs the server, not a CLI command"),
        Command::Config(c) => config_check::run(c),
        Command::Backup(a) => backup::run_backup(a).await,
        Command::Restore(a) => backup::run_restore(a).await,
        Command::Auctions(a) => admin::run_auctions(a).await,
        Command::Bids(a) => admin::run_bids(a).await,
        Command::Verify(a) => match crate::verify::run(a).await {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(e) => {
                eprintln!("error: {e:#}");
                2
            }
        },
    }
}
