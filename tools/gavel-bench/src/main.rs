//! `gavel-bench`: drives Gavel servers over the real WebSocket protocol and measures
//! glass-to-glass latency, bid round trips, throughput and server cost, while checking that
//! every watcher sees a correct stream and the archive holds exactly the accepted bids.
//!
//! Exit status: 0 when every check passed, 2 on a correctness violation, 1 when the run
//! could not be made. Timings never change the exit status.

mod bench;
mod bidder;
mod check;
mod cli;
mod ctx;
mod floor;
mod pool;
mod record;
mod render;
mod report;
mod scenario;
mod stats;
mod sys;
mod target;
mod watcher;
mod worker;

use clap::Parser;
use cli::{Cli, Command};
use scenario::Scenario;
use std::io::Write;

/// Exit status of a subcommand that runs no scenario: 0, or 1 with the error.
fn exit_status(command: &str, result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gavel-bench {command}: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let (scenario, opts) = match cli.command {
        Command::Render(args) => return exit_status("render", render::render(&args)),
        Command::Floor(args) => return exit_status("floor", floor::run(&args)),
        Command::Worker => return worker::main(),
        Command::FloorWorker(args) => return exit_status("floor worker", floor::worker(&args)),
        Command::Ladder(o) => (Scenario::Ladder, o),
        Command::FinalSecond(o) => (Scenario::FinalSecond, o),
        Command::Sustained(o) => (Scenario::Sustained, o),
        Command::ManyAuctions(o) => (Scenario::ManyAuctions, o),
        Command::Idle(o) => (Scenario::Idle, o),
        Command::Custom(o) => (Scenario::Custom, o),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let json = opts.json.clone();
    match rt.block_on(scenario::run(scenario, opts)) {
        Ok(report) => {
            eprintln!("{}", report.table());
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&report).expect("reports serialize");
                let written = if path.as_os_str() == "-" {
                    writeln!(std::io::stdout(), "{text}")
                } else {
                    std::fs::write(&path, text + "\n")
                };
                if let Err(e) = written {
                    eprintln!("gavel-bench: writing {}: {e}", path.display());
                    return std::process::ExitCode::from(1);
                }
            }
            // Connection tasks may still be winding down: do not wait for them.
            rt.shutdown_background();
            if report.ok {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(2)
            }
        }
        Err(e) => {
            eprintln!("gavel-bench: {e:#}");
            rt.shutdown_background();
            std::process::ExitCode::from(1)
        }
    }
}
