//! The `gavel` server: HTTP + WebSocket API over an engine and an archive.
//!
//! `main.rs` only parses the configuration and calls [`run`]; tests call the same `run` on
//! `127.0.0.1:0`.

pub mod auth;
mod backends;
mod bidding;
pub mod cli;
mod closer;
pub mod config;
pub mod config_file;
mod demo;
mod drainer;
pub mod fanout;
pub mod http;
pub mod identity;
pub mod latency;
mod limits;
mod listing;
pub mod personal;
pub mod proxy;
pub mod readiness;
pub mod signing;
pub mod telemetry;
pub mod verify;
pub mod views;
pub mod webhooks;
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
    /// The node's personal channels (`subscribe_personal`).
    pub personal: Arc<personal::Personal>,
    pub auth: Auth,
    /// Tokens of the marketplace's identity provider (`--jwt-hmac-secret`,
    /// `--jwt-public-key`, `--jwks-url`), when configured.
    pub identity: Option<Arc<identity::ExternalIdentity>>,
    pub config: ServeConfig,
    /// Signs bid receipts and log heads (`docs/verification.md`).
    pub signer: Arc<signing::Signer>,
    limits: Limits,
    /// `--allowed-origins`.
    pub origins: http::origin::Origins,
    /// `--trusted-proxies`.
    pub proxies: proxy::TrustedProxies,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Cancelled on shutdown (SIGTERM): the node drains (see [`run`]).
    pub shutdown: CancellationToken,
    /// Whether the node drains, and until when.
    pub drain: readiness::Drain,
    /// Tracks WebSocket connections so shutdown can wait for their close frames.
    pub tracker: TaskTracker,
}

/// Runs the server on `listener` until `shutdown` is cancelled, then drains within
/// `--shutdown-grace-secs`: stops accepting connections (the listener is closed at once),
/// reports not ready, sends each WebSocket client a `reconnect` (its delay spread over
/// [`ServeConfig::reconnect_spread`]) and closes it with 1012 at that delay after the
/// answers to its bids in flight, lets open HTTP exchanges finish, flushes the archive
/// and returns.
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
    let identity = identity::ExternalIdentity::build(config.identity_settings())
        .await?
        .map(Arc::new);
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
    let personal = personal::Personal::new(
        engine.clone(),
        archive.clone(),
        (config.ending_soon_secs * 1000) as i64,
    );
    let mut tasks = tokio::task::JoinSet::new();
    {
        let personal = personal.clone();
        tasks.spawn(
            hub.clone()
                .run_with(feed, background.clone(), move |c| personal.apply(c)),
        );
    }
    tasks.spawn(personal.clone().run_ticker(background.clone()));
    if config.demo {
        demo::seed(engine.as_ref()).await?;
    }
    let state = Arc::new(AppState {
        engine: engine.clone(),
        archive,
        hub: hub.clone(),
        personal,
        limits: Limits::with_sessions(
            config.bids_per_second,
            config.max_connections_per_ip,
            config.max_connections,
            config.sessions_per_minute_per_ip,
        ),
        auth,
        identity,
        origins: http::origin::Origins::new(&config.allowed_origins, config.demo),
        proxies: proxy::TrustedProxies::new(config.trusted_proxies.clone()),
        signer,
        metrics: telemetry::metrics_handle(),
        shutdown: shutdown.clone(),
        drain: readiness::Drain::default(),
        tracker: TaskTracker::new(),
        config,
    });
    tasks.spawn(closer::run(engine.clone(), background.clone()));
    webhooks::apply_config(&state.config, state.archive.as_ref()).await?;
    tasks.spawn(webhooks::delivery::run(
        state.archive.clone(),
        webhooks::WebhookSettings::from_config(
            &state.config,
            webhooks::deliverer_name(&state.config),
        ),
        background.clone(),
    ));
    tasks.spawn(housekeeping(state.clone(), background.clone()));
    if let Some(identity) = &state.identity {
        for jwks in identity.jwks() {
            tasks.spawn(refresh_jwks(jwks.clone(), background.clone()));
        }
    }

    tasks.spawn(readiness::monitor(state.clone(), background.clone()));

    let addr = listener.local_addr()?;
    tracing::info!(%addr, "gavel listening");
    let app = http::router(state.clone()).layer(telemetry::trace_layer());
    // HTTP connections outlive the start of a drain (answering `connection: close`), so a
    // load balancer's kept-alive probe sees `/readyz` turn 503; they are closed once the
    // WebSocket clients have gone.
    let close_http = CancellationToken::new();
    let mut serving = tokio::spawn(http::serve::run(
        listener,
        app,
        state.clone(),
        shutdown.clone(),
        close_http.clone(),
    ));
    let served = tokio::select! {
        () = shutdown.cancelled() => false,
        // The accept loop returns after `shutdown` (both may be seen at once), or with an
        // error, which is fatal.
        r = &mut serving => {
            r??;
            true
        }
    };
    shutdown.cancel();
    let grace = state.config.shutdown_grace();
    let deadline = tokio::time::Instant::now() + grace;
    state.drain.start(deadline);
    tracing::info!(
        grace_secs = grace.as_secs(),
        websockets = state.tracker.len(),
        "draining: no new connections; sending WebSocket clients elsewhere"
    );
    // Each connection sends its `reconnect`, closes at its delay and goes; what remains of
    // the grace period after the WebSockets (at least a third of it) is for the rest.
    state.tracker.close();
    let websockets_by = deadline - grace / 3;
    if tokio::time::timeout_at(websockets_by, state.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            left = state.tracker.len(),
            "WebSocket connections still open at the end of their drain time; leaving them"
        );
    }
    close_http.cancel();
    if !served {
        let _ = tokio::time::timeout_at(deadline, &mut serving).await;
    }
    background.cancel();
    if tokio::time::timeout_at(deadline, engine.flush())
        .await
        .is_err()
    {
        tracing::warn!("the engine's flush did not finish within the grace period");
    }
    // Let every holder of the engine go, then wait for it to stop (embedded mode: its
    // last batch committed and the archive closed).
    let joined = tokio::time::timeout_at(deadline, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if joined.is_err() {
        tasks.abort_all();
    }
    drop((state, hub, engine));
    if let Some(stopped) = stopped {
        // Past the deadline the archive still gets a moment to close its last commit: a
        // reply was only ever sent for what it committed, so nothing confirmed is at stake,
        // but a clean close spares the next start a recovery.
        let until = deadline.max(tokio::time::Instant::now() + Duration::from_millis(500));
        if tokio::time::timeout_at(until, stopped).await.is_err() {
            tracing::warn!(
                "the engine is still held at the end of the grace period; not waiting longer"
            );
        }
    }
    tracing::info!("gavel stopped");
    Ok(())
}

impl AppState {
    /// Authenticates a bearer token from `ip`: Gavel's own session token, else (when
    /// configured) the identity provider's JWT, else the admin token.
    pub async fn authenticate(
        &self,
        token: &str,
        ip: std::net::IpAddr,
        now_ms: i64,
    ) -> Result<auth::Principal, auth::AuthError> {
        match self.auth.verify_session(token, now_ms) {
            Err(auth::AuthError::Invalid) => {}
            other => return other,
        }
        if let Some(identity) = &self.identity {
            if identity::external::looks_like_jwt(token) {
                let result = identity.verify(token, now_ms).await;
                if let Err(e) = &result {
                    metrics::counter!("gavel_external_token_refused_total", "code" => e.code().as_str())
                        .increment(1);
                    tracing::info!(%ip, reason = %e, "external token refused");
                }
                return result;
            }
        }
        self.auth.admin(token, ip)
    }
}

/// Fetches a JWKS document again every [`identity::jwks::PERIODIC_REFRESH`].
async fn refresh_jwks(jwks: Arc<identity::jwks::Jwks>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(identity::jwks::PERIODIC_REFRESH) => {}
            () = stop.cancelled() => return,
        }
        let _ = jwks.fetch().await;
    }
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
