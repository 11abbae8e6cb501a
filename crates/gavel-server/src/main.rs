//! The `gavel` binary: parse the configuration, set up logging, run.

use clap::Parser;
use gavel_server::config::{Cli, Command};
use tokio_util::sync::CancellationToken;

/// mimalloc instead of glibc's allocator: the bid and fan-out paths allocate small,
/// short-lived buffers on several threads, where glibc's arenas showed up as ~20 % of the
/// server's CPU (free, consolidation, arena lock contention) in `perf`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli { command } = Cli::parse();
    let config = match command {
        Command::Serve(config) => config,
        Command::Verify(args) => {
            let verified = gavel_server::verify::run(args).await?;
            std::process::exit(if verified { 0 } else { 1 });
        }
    };
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
