//! Command line and environment configuration (`gavel serve --help` documents each).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "gavel",
    version,
    about = "Gavel: a real-time auction bidding server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// `Serve` is much larger than the others; the command is parsed once, at start.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (embedded mode unless --redis and --database are given).
    Serve(ServeConfig),
    /// Check an auction's verifiable log and receipts against the server's public key
    /// (docs/verification.md). Exits non-zero on the first broken link.
    Verify(crate::verify::VerifyArgs),
    /// Check a configuration file (see docs/configuration.md).
    #[command(subcommand)]
    Config(crate::cli::config_check::ConfigCommand),
    /// Copy the embedded archive to a file while the server runs (SQLite online backup).
    Backup(crate::cli::backup::BackupArgs),
    /// Restore the embedded archive from a `gavel backup` file (the server stopped).
    Restore(crate::cli::backup::RestoreArgs),
    /// Admin CLI: create, list, show, cancel and end auctions on a running server.
    Auctions(crate::cli::admin::AuctionsArgs),
    /// Admin CLI: export an auction's bids from a running server.
    Bids(crate::cli::admin::BidsArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Clone, Debug)]
pub struct ServeConfig {
    /// TOML file of settings: every flag of `gavel serve` is also a key, named as the flag
    /// (`batch-max = 1000`). A flag or environment variable beats the file; the file
    /// beats the default (see docs/configuration.md).
    #[arg(long, env = "GAVEL_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address to listen on.
    #[arg(long, env = "GAVEL_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Directory for the SQLite archive and the generated token secret (embedded mode).
    #[arg(long, env = "GAVEL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Seed a few sample auctions ending within minutes (only when none exist yet).
    #[arg(long, env = "GAVEL_DEMO")]
    pub demo: bool,

    /// Bearer token that acts as admin (may create, cancel and end auctions). Unset: no
    /// admin token is accepted.
    #[arg(long, env = "GAVEL_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Secret for signing session tokens (HS256). Unset: generated on first start and
    /// stored in <data-dir>/jwt-secret.
    #[arg(long, env = "GAVEL_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Allow `POST /api/session` to sign guests in as bidders. Default: true, or false when
    /// external identity is configured (--jwt-hmac-secret, --jwt-public-key or --jwks-url).
    #[arg(long, env = "GAVEL_GUEST_SESSIONS", action = clap::ArgAction::Set)]
    pub guest_sessions: Option<bool>,

    /// Lifetime of a session token, in seconds.
    #[arg(long, env = "GAVEL_SESSION_TTL_SECS", default_value_t = 86_400)]
    pub session_ttl_secs: u64,

    /// Group commit: a batch of accepted bids closes at this many changes... Under load the
    /// next batch fills while one commits, so a larger cap means fewer, larger transactions;
    /// at 100, a CPU-starved writer capped decisions near 8,000/s on a 2-core machine.
    #[arg(long, env = "GAVEL_BATCH_MAX", default_value_t = 1000)]
    pub batch_max: usize,

    /// ...or after this many milliseconds. Confirmations wait for the commit, so keep it short.
    #[arg(long, env = "GAVEL_BATCH_WINDOW_MS", default_value_t = 2)]
    pub batch_window_ms: u64,

    /// Largest WebSocket message accepted from a client, in bytes.
    #[arg(long, env = "GAVEL_MAX_MESSAGE_BYTES", default_value_t = 4096)]
    pub max_message_bytes: usize,

    /// Auctions one WebSocket connection may subscribe to.
    #[arg(long, env = "GAVEL_MAX_SUBSCRIPTIONS", default_value_t = 100)]
    pub max_subscriptions: usize,

    /// Bids per second per user (HTTP and WebSocket together); bursts of twice this pass.
    #[arg(long, env = "GAVEL_BIDS_PER_SECOND", default_value_t = 10)]
    pub bids_per_second: u32,

    /// Guest sign-ins (`POST /api/session`) per client IP address per minute (0: unlimited).
    #[arg(long, env = "GAVEL_SESSIONS_PER_MINUTE_PER_IP", default_value_t = 120)]
    pub sessions_per_minute_per_ip: u32,

    /// Failed admin-token attempts (HTTP bearer, WebSocket `auth`, admin sign-in) per client
    /// IP address per minute; past it, that address gets `rate_limited` (0: unlimited).
    #[arg(
        long,
        env = "GAVEL_AUTH_FAILURES_PER_MINUTE_PER_IP",
        default_value_t = 10
    )]
    pub auth_failures_per_minute_per_ip: u32,

    /// Connections (HTTP and WebSocket) per client IP address (0: unlimited).
    #[arg(long, env = "GAVEL_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,

    /// Seconds an HTTP client has to send a request's headers; also how long an idle
    /// keep-alive connection stays open.
    #[arg(long, env = "GAVEL_HTTP_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub http_header_timeout_secs: u64,

    /// Seconds an HTTP client has to send a request's body.
    #[arg(long, env = "GAVEL_HTTP_BODY_TIMEOUT_SECS", default_value_t = 10)]
    pub http_body_timeout_secs: u64,

    /// A WebSocket client that has sent nothing for this many seconds is pinged, and closed
    /// if it does not answer within as long again (a client stalled in the middle of a
    /// frame cannot answer).
    #[arg(long, env = "GAVEL_CLIENT_TIMEOUT_SECS", default_value_t = 30)]
    pub client_timeout_secs: u64,

    /// Connections (HTTP and WebSocket) in total.
    #[arg(long, env = "GAVEL_MAX_CONNECTIONS", default_value_t = 200_000)]
    pub max_connections: usize,

    /// A WebSocket connection sent nothing for this many milliseconds gets a `heartbeat`
    /// (announced in `hello`; 0: none), so clients can tell a quiet auction from a dead link.
    #[arg(long, env = "GAVEL_HEARTBEAT_MS", default_value_t = 1000)]
    pub heartbeat_ms: u64,

    /// The personal channel sends `ending_soon` when a followed auction has at most this
    /// many seconds left (once per auction and user; announced in `personal`).
    #[arg(long, env = "GAVEL_ENDING_SOON_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub ending_soon_secs: u64,

    /// Seconds a client's socket may accept nothing before it is closed as too slow.
    #[arg(long, env = "GAVEL_SLOW_CLIENT_SECS", default_value_t = 10)]
    pub slow_client_secs: u64,

    /// How long a closed auction's state stays in the authority (embedded: the engine's
    /// memory; distributed: Redis) after it closed. Afterwards it is read from the archive
    /// with the same answers. A number and a unit: ms, s, m, h or d (e.g. 90s, 24h, 7d).
    #[arg(long, env = "GAVEL_CLOSED_RETENTION", default_value = "24h", value_parser = parse_duration)]
    pub closed_retention: Duration,

    /// Log format.
    #[arg(long, env = "GAVEL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Distributed mode: Redis URL (the authority), e.g. `redis://127.0.0.1:6379`. Needs
    /// `--database` too. Unset (with `--database` unset): embedded mode. Also read from
    /// REDIS_URL when both REDIS_URL and DATABASE_URL are set and neither flag is given.
    #[arg(long, env = "GAVEL_REDIS_URL", hide_env_values = true)]
    pub redis: Option<String>,

    /// Distributed mode on a Redis Cluster: more seed nodes (comma-separated URLs) the
    /// cluster client may start from besides `--redis`. Not needed when `--redis` names a
    /// cluster node (Gavel detects it with `INFO cluster`); given, the deployment is a
    /// cluster even if `INFO` is not allowed to the user.
    #[arg(
        long,
        env = "GAVEL_REDIS_CLUSTER",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub redis_cluster: Vec<String>,

    /// Distributed mode: PostgreSQL URL (the archive), e.g.
    /// `postgres://postgres@127.0.0.1:5432/gavel`. Needs `--redis` too.
    #[arg(long, env = "GAVEL_DATABASE_URL", hide_env_values = true)]
    pub database: Option<String>,

    /// Distributed mode: prefix of every Redis key and channel (nodes of one deployment
    /// share it).
    #[arg(long, env = "GAVEL_REDIS_PREFIX", default_value = "gavel")]
    pub redis_prefix: String,

    /// Distributed mode: start even when Redis's `maxmemory-policy` is not `noeviction`.
    /// Any other policy lets Redis delete Gavel's keys under memory pressure (auction
    /// state, change logs, idempotency records), so by default such a Redis is refused.
    #[arg(long, env = "GAVEL_ALLOW_REDIS_EVICTION")]
    pub allow_redis_eviction: bool,

    /// Distributed mode: PostgreSQL schema for the archive (created if missing). Unset:
    /// the connection's default (`public`).
    #[arg(long, env = "GAVEL_DATABASE_SCHEMA")]
    pub database_schema: Option<String>,

    /// Distributed mode: the drainer writes its batch to PostgreSQL when it holds
    /// `--drain-batch` change-log entries or this many milliseconds after the first one.
    #[arg(long, env = "GAVEL_DRAIN_INTERVAL_MS", default_value_t = 60_000)]
    pub drain_interval_ms: u64,

    /// Distributed mode: change-log entries per PostgreSQL statement.
    #[arg(long, env = "GAVEL_DRAIN_BATCH", default_value_t = 100)]
    pub drain_batch: usize,

    /// Distributed mode: entries another drainer has held this long are claimed (its node
    /// is presumed dead). Default: twice the drain interval plus 30 s.
    #[arg(long, env = "GAVEL_DRAIN_CLAIM_IDLE_MS")]
    pub drain_claim_idle_ms: Option<u64>,

    /// File holding the Ed25519 key that signs bid receipts and log heads (64 hex digits,
    /// e.g. from `openssl rand -hex 32`). Unset: embedded mode generates it on first start
    /// into <data-dir>/signing-key; distributed mode generates one for the deployment and
    /// shares it through Redis (<prefix>:signing-key). Give every node the same file to
    /// keep the key out of Redis.
    #[arg(long, env = "GAVEL_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,

    /// Distributed mode: this node's name in the drainers' consumer group. Keep it stable
    /// across restarts so a restarted node re-reads its own pending entries first.
    /// Default: `<hostname>-<listen port>`.
    #[arg(long, env = "GAVEL_NODE_ID")]
    pub node_id: Option<String>,

    /// Seconds a node has, from SIGTERM, to shut down: it stops accepting connections,
    /// reports not ready, asks each WebSocket client to reconnect (spread over a third of
    /// this, at most 5 s), closes them with 1012, finishes its in-flight bids, flushes the
    /// archive and exits, all within this time.
    #[arg(long, env = "GAVEL_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    // --- Identity from the marketplace (docs/security.md, docs/integration.md#identity) ---
    /// External identity: HMAC secret (HS256/384/512) of the identity provider's tokens,
    /// at least 32 bytes. Its tokens must name the first --jwt-issuer.
    #[arg(long, env = "GAVEL_JWT_HMAC_SECRET", hide_env_values = true)]
    pub jwt_hmac_secret: Option<String>,

    /// External identity: PEM file of the identity provider's public key(s) (RSA: RS256/384/
    /// 512; EC P-256: ES256; P-384: ES384; Ed25519: EdDSA), for the first --jwt-issuer.
    #[arg(long, env = "GAVEL_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,

    /// External identity: JWKS URL(s), comma-separated; the n-th holds the keys of the n-th
    /// --jwt-issuer. Cached; fetched again on an unknown `kid` (at most once per
    /// --jwks-min-refresh-secs) and every 15 minutes.
    #[arg(long, env = "GAVEL_JWKS_URL", value_delimiter = ',')]
    pub jwks_url: Vec<String>,

    /// External identity: accepted token issuer(s) (`iss`), comma-separated. Required when
    /// external identity is on.
    #[arg(long, env = "GAVEL_JWT_ISSUER", value_delimiter = ',')]
    pub jwt_issuer: Vec<String>,

    /// External identity: this server's audience(s) (`aud`), comma-separated; a token must
    /// name one. Required when external identity is on.
    #[arg(long, env = "GAVEL_JWT_AUDIENCE", value_delimiter = ',')]
    pub jwt_audience: Vec<String>,

    /// External identity: clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    #[arg(long, env = "GAVEL_JWT_LEEWAY_SECS", default_value_t = 30)]
    pub jwt_leeway_secs: u64,

    /// External identity: the claim holding the display name (then `preferred_username`,
    /// then the user id). Dots reach into nested objects.
    #[arg(long, env = "GAVEL_JWT_NAME_CLAIM", default_value = "name")]
    pub jwt_name_claim: String,

    /// External identity: the claim holding the user's role(s), a string or an array. Dots
    /// reach into nested objects (Keycloak: `realm_access.roles`).
    #[arg(long, env = "GAVEL_JWT_ROLE_CLAIM", default_value = "role")]
    pub jwt_role_claim: String,

    /// External identity: the role (in --jwt-role-claim) that makes a user an admin.
    #[arg(long, env = "GAVEL_JWT_ADMIN_ROLE", default_value = "gavel:admin")]
    pub jwt_admin_role: String,

    /// External identity: the shortest time between two fetches of one JWKS URL caused by
    /// unknown key ids, in seconds.
    #[arg(long, env = "GAVEL_JWKS_MIN_REFRESH_SECS", default_value_t = 60)]
    pub jwks_min_refresh_secs: u64,

    // --- Browser and proxy boundaries (docs/security.md) ---
    /// Browser origins allowed to open WebSockets and call the API cross-origin (CORS),
    /// comma-separated: `https://shop.example`, `http://localhost:*` (any port), or `*`.
    /// The server's own origin is always allowed; with --demo so are http://localhost:*
    /// and http://127.0.0.1:*. Others get 403 origin_not_allowed.
    #[arg(long, env = "GAVEL_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Peers (CIDR ranges or addresses, comma-separated) whose `Forwarded` /
    /// `X-Forwarded-For` headers name the client (for per-IP limits and logs). From any
    /// other peer those headers are ignored.
    #[arg(long, env = "GAVEL_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_cidr)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    // --- Webhooks (docs/integration.md#webhooks) ---
    /// Webhook receiver URL (repeatable; the environment variable takes a comma list). Each
    /// needs a `--webhook-secret`, paired by position.
    #[arg(long = "webhook", env = "GAVEL_WEBHOOK", value_delimiter = ',')]
    pub webhook: Vec<String>,

    /// Signing secret (`whsec_` + base64 of 24 to 64 bytes) of each `--webhook`, in the same
    /// order (repeatable; the environment variable takes a comma list).
    #[arg(
        long = "webhook-secret",
        env = "GAVEL_WEBHOOK_SECRET",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub webhook_secret: Vec<String>,

    /// Also send `bid.accepted` to the `--webhook` endpoints (one event per accepted bid).
    #[arg(long, env = "GAVEL_WEBHOOK_BID_EVENTS")]
    pub webhook_bid_events: bool,

    /// Waits between webhook delivery attempts, comma-separated durations; after the last
    /// one the delivery is marked failed. Each wait varies by ±20 % (jitter). The default
    /// retries for about 27.5 hours.
    #[arg(
        long,
        env = "GAVEL_WEBHOOK_RETRY_SCHEDULE",
        default_value = "5s,5m,30m,2h,5h,10h,10h",
        value_parser = parse_duration,
        value_delimiter = ','
    )]
    pub webhook_retry_schedule: Vec<Duration>,

    /// Time a webhook receiver has to answer one attempt.
    #[arg(long, env = "GAVEL_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub webhook_timeout: Duration,

    /// How often the webhook outbox is checked for due deliveries.
    #[arg(long, env = "GAVEL_WEBHOOK_POLL", default_value = "1s", value_parser = parse_duration)]
    pub webhook_poll: Duration,

    /// How long finished webhook deliveries (delivered or failed) stay in the outbox, for
    /// the admin API, before they are removed (pending ones always stay).
    #[arg(long, env = "GAVEL_WEBHOOK_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub webhook_retention: Duration,
}

/// A CIDR range, or a single address (`10.0.0.1` is `10.0.0.1/32`).
pub fn parse_cidr(raw: &str) -> Result<ipnet::IpNet, String> {
    let raw = raw.trim();
    raw.parse::<ipnet::IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{raw:?} is neither a CIDR range (10.0.0.0/8) nor an address"))
}

impl ServeConfig {
    /// The whole shutdown's budget (at least 1 s).
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs.max(1))
    }

    /// Over how long the WebSocket clients are sent away when the node drains: a third of
    /// the grace period, at most 5 s (what remains is for the bids in flight and the
    /// archive).
    pub fn reconnect_spread(&self) -> Duration {
        (self.shutdown_grace() / 3).min(Duration::from_secs(5))
    }
}

impl ServeConfig {
    /// The defaults, with a data directory: what tests start from.
    pub fn for_data_dir(data_dir: PathBuf) -> Self {
        let mut c = Self::defaults();
        c.data_dir = data_dir;
        // Embedded mode whatever the environment says.
        c.redis = None;
        c.database = None;
        c
    }

    /// `gavel serve` with no flag (the environment still applies).
    fn defaults() -> Self {
        match Cli::parse_from(["gavel", "serve"]).command {
            Command::Serve(c) => c,
            _ => unreachable!("`gavel serve` parses as Command::Serve"),
        }
    }

    /// Whether guests may sign in (see `--guest-sessions`).
    pub fn guest_sessions_allowed(&self) -> bool {
        self.guest_sessions
            .unwrap_or_else(|| !self.identity_settings().enabled())
    }

    /// The external identity flags.
    pub fn identity_settings(&self) -> crate::identity::IdentitySettings {
        crate::identity::IdentitySettings {
            hmac_secret: self.jwt_hmac_secret.clone(),
            public_key_file: self.jwt_public_key.clone(),
            jwks_urls: self
                .jwks_url
                .iter()
                .filter(|u| !u.is_empty())
                .cloned()
                .collect(),
            issuers: self
                .jwt_issuer
                .iter()
                .filter(|u| !u.is_empty())
                .cloned()
                .collect(),
            audiences: self
                .jwt_audience
                .iter()
                .filter(|u| !u.is_empty())
                .cloned()
                .collect(),
            leeway_secs: self.jwt_leeway_secs,
            name_claim: self.jwt_name_claim.clone(),
            role_claim: self.jwt_role_claim.clone(),
            admin_role: self.jwt_admin_role.clone(),
            jwks_min_refresh: Duration::from_secs(self.jwks_min_refresh_secs),
        }
    }

    /// Takes the conventional `REDIS_URL` and `DATABASE_URL` when both are set and neither
    /// `--redis`/`GAVEL_REDIS_URL` nor `--database`/`GAVEL_DATABASE_URL` was given. (Only
    /// both together select distributed mode, so one stray variable changes nothing.)
    pub fn with_conventional_env(mut self) -> Self {
        if self.redis.is_none() && self.database.is_none() {
            if let (Ok(r), Ok(d)) = (std::env::var("REDIS_URL"), std::env::var("DATABASE_URL")) {
                if !r.is_empty() && !d.is_empty() {
                    self.redis = Some(r);
                    self.database = Some(d);
                }
            }
        }
        self
    }
}

/// Parses `<number><unit>` with unit `ms`, `s`, `m`, `h` or `d` (e.g. `90s`, `24h`).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let digits = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(digits);
    let n: u64 = number.parse().map_err(|_| {
        format!("{raw:?} is not a duration: expected a number and a unit, e.g. 90s or 24h")
    })?;
    let ms_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{raw:?}: the unit must be ms, s, m, h or d")),
    };
    n.checked_mul(ms_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{raw:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_their_unit() {
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1_500)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in [
            "",
            "24",
            "h",
            "-1h",
            "1.5h",
            "24 hours",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn closed_retention_defaults_to_a_day_and_reads_the_flag() {
        let c = ServeConfig::defaults();
        assert_eq!(c.closed_retention, Duration::from_secs(86_400));
        let cli = Cli::parse_from(["gavel", "serve", "--closed-retention", "5m"]);
        let Command::Serve(c) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(c.closed_retention, Duration::from_secs(300));
    }
}
