//! The `gavel` server: HTTP + WebSocket API over an engine and an archive.
//!
//! `main.rs` only parses the configuration and calls [`run`]; tests call the same `run` on
//! `127.0.0.1:0`.

pub mod auth;
mod backends;
mod bidding;
mod closer;
pub mod config;
mod demo;
mod drainer;
pub mod fanout;
pub mod http;
mod limits;
mod listing;
pub mod signing;
pub mod telemetry;
pub mod verify;
pub mod views;
mod ws;

use anyhow::Context;
use auth::Auth;
use config::ServeConfig;
use fanout::Hub;
use gavel_archive::Archive;
use gavel_engine::{Clock, Engine};
use limits::Limits;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Everything a request handler needs.
pub struct AppState {
    pub engine: Arc<dyn Engine>,
    pub archive: Arc<dyn Archive>,
    pub hub: Arc<Hub>,
    pub auth: Auth,
    pub config: ServeConfig,
    /// Signs bid receipts and log heads (`docs/verification.md`).
    pub signer: Arc<signing::Signer>,
    limits: Limits,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Cancelled on shutdown: every connection closes with 1001.
    pub shutdown: CancellationToken,
    /// Tracks WebSocket connections so shutdown can wait for their close frames.
    pub tracker: TaskTracker,
}

/// Runs the server on `listener` until `shutdown` is cancelled, then closes every socket
/// with a close frame and flushes the archive.
pub async fn run(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_with_clock(config, listener, shutdown, Clock::system()).await
}

/// [`run`] with a given authority clock (tests shift it).
pub async fn run_with_clock(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
    clock: Clock,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let secret = Auth::load_secret(config.jwt_secret.as_deref(), &config.data_dir)?;
    let auth = Auth::new(
        &secret,
        config.admin_token.clone(),
        config.session_ttl_secs,
        config.auth_failures_per_minute_per_ip,
    )?;
    let background = CancellationToken::new();
    let backends::Backends {
        engine,
        archive,
        stopped,
    } = backends::build(&config, clock, background.clone()).await?;
    // After the backends: a wrong Redis URL is reported by them, in their words.
    let signer = Arc::new(
        signing::Signer::load(
            config.signing_key.as_deref(),
            &config.data_dir,
            config
                .redis
                .as_deref()
                .map(|url| (url, config.redis_prefix.as_str())),
        )
        .await
        .inspect_err(|_| background.cancel())?,
    );
    let hub = Hub::new(engine.clone(), Some(archive.clone()));
    let feed = engine
        .take_changes()
        .context("the engine's change feed was already taken")?;
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(hub.clone().run(feed, background.clone()));
    if config.demo {
        demo::seed(engine.as_ref()).await?;
    }
    let state = Arc::new(AppState {
        engine: engine.clone(),
        archive,
        hub: hub.clone(),
        limits: Limits::with_sessions(
            config.bids_per_second,
            config.max_connections_per_ip,
            config.max_connections,
            config.sessions_per_minute_per_ip,
        ),
        auth,
        signer,
        metrics: telemetry::metrics_handle(),
        shutdown: shutdown.clone(),
        tracker: TaskTracker::new(),
        config,
    });
    tasks.spawn(closer::run(engine.clone(), background.clone()));
    tasks.spawn(housekeeping(state.clone(), background.clone()));

    let addr = listener.local_addr()?;
    tracing::info!(%addr, "gavel listening");
    let app = http::router(state.clone()).layer(telemetry::trace_layer());
    http::serve::run(listener, app, state.clone(), shutdown.clone()).await?;
    // Every connection has been told to close; give them a moment to send their frames.
    state.tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), state.tracker.wait()).await;
    background.cancel();
    engine.flush().await;
    // Let every holder of the engine go, then wait for it to stop (embedded mode: its
    // last batch committed and the archive closed).
    while tasks.join_next().await.is_some() {}
    drop((state, hub, engine));
    if let Some(stopped) = stopped {
        if tokio::time::timeout(Duration::from_secs(10), stopped)
            .await
            .is_err()
        {
            tracing::warn!("the engine is still held 10 s after shutdown; not waiting longer");
        }
    }
    tracing::info!("gavel stopped");
    Ok(())
}

async fn housekeeping(state: Arc<AppState>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        n += 1;
        state.hub.announce_watchers();
        state.hub.sweep();
        if n.is_multiple_of(60) {
            state.limits.housekeeping();
            state.auth.housekeeping();
        }
        if n.is_multiple_of(10) {
            state.metrics.run_upkeep();
        }
    }
}
