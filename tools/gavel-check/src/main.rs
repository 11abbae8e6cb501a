//! `gavel-check HISTORY.jsonl`: checks a recorded history (see `docs/verification.md`).
//!
//! Exit status: 0 when every auction is linearizable, 2 on a violation, 1 when the history
//! cannot be read or an auction cannot be checked.

use clap::Parser;
use std::io::Write;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "gavel-check",
    version,
    about = "Checks that a recorded history of Gavel operations is linearizable under the auction rules"
)]
struct Cli {
    /// The history (JSON Lines; `-` for standard input).
    history: PathBuf,
    /// The most the server's clock may differ from the recorder's (ms); overrides the
    /// history's `clock_skew_ms`.
    #[arg(long)]
    skew_ms: Option<i64>,
    /// States the search for unknown outcomes may visit per auction.
    #[arg(long, default_value_t = 1_000_000)]
    max_steps: u64,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let read = if cli.history.as_os_str() == "-" {
        gavel_check::History::read(std::io::stdin().lock())
    } else {
        std::fs::File::open(&cli.history)
            .map_err(gavel_check::HistoryError::from)
            .and_then(|f| gavel_check::History::read(std::io::BufReader::new(f)))
    };
    let history = match read {
        Ok(h) => h,
        Err(e) => {
            eprintln!("gavel-check: {}: {e}", cli.history.display());
            return std::process::ExitCode::from(1);
        }
    };
    let options = gavel_check::Options {
        skew_ms: cli.skew_ms,
        max_steps: cli.max_steps,
    };
    let report = gavel_check::check(&history, options);
    let text = if cli.json {
        serde_json::to_string_pretty(&report).expect("reports serialize") + "\n"
    } else {
        report.text()
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    if !report.violations.is_empty() {
        std::process::ExitCode::from(2)
    } else if report.ok() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}
