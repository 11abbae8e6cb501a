//! The `gavel` binary: parse the configuration (flags, environment, `--config` file), set
//! up logging, run the server or a CLI command.

use clap::FromArgMatches;
use gavel_server::config::{Cli, Command, ServeConfig};
use gavel_server::config_file::{self, ConfigError};
use tokio_util::sync::CancellationToken;

/// mimalloc instead of glibc's allocator: the bid and fan-out paths allocate small,
/// short-lived buffers on several threads, where glibc's arenas showed up as ~20 % of the
/// server's CPU (free, consolidation, arena lock contention) in `perf`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let parsed = match config_file::parse_args(std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(ConfigError::Clap(e)) => e.exit(),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let Cli { command } = Cli::from_arg_matches(&parsed.matches).unwrap_or_else(|e| e.exit());
    match command {
        Command::Serve(config) => serve(config).await,
        other => std::process::exit(gavel_server::cli::run(other).await),
    }
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let config = config.with_conventional_env();
    gavel_server::telemetry::init_tracing(config.log_format);
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    gavel_server::run(config, listener, shutdown).await
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
    shutdown.cancel();
}
