//! Real `gavel serve` processes on 127.0.0.1 for the multi-node tests: a [`Deployment`]
//! (data directory, Redis prefix, PostgreSQL schema) starts [`Node`]s, each killed when
//! dropped; the logs are kept (and their path printed) when a test fails.

#![allow(dead_code)] // each test binary uses part of it

use super::isolation::{database_url, redis_url, Isolation};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// The JWT secret every node of a deployment shares.
pub const JWT_SECRET: &str = "multi-node-test-secret-0123456789abcdef";

/// A port free at the time of the call.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `url` with its host and port replaced by 127.0.0.1:`port` (to go through a proxy).
pub fn via_port(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, rest) = match rest.rsplit_once('@') {
        Some((u, r)) => (format!("{u}@"), r),
        None => (String::new(), rest),
    };
    let path = rest
        .split_once('/')
        .map_or(String::new(), |(_, p)| format!("/{p}"));
    format!("{scheme}://{user}127.0.0.1:{port}{path}")
}

/// `host:port` of a `scheme://[user@]host:port/...` URL.
pub fn host_port(url: &str, default_port: u16) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let hp = rest.split('/').next().unwrap_or("127.0.0.1");
    if hp.contains(':') {
        hp.to_string()
    } else {
        format!("{hp}:{default_port}")
    }
}

/// What the nodes of one test share: a data directory (one subdirectory and one log a
/// node), an admin token, and a Redis prefix and PostgreSQL schema (removed when dropped).
pub struct Deployment {
    pub iso: Isolation,
    pub admin: String,
    dir: Option<tempfile::TempDir>,
}

impl Deployment {
    /// `family` names the prefix and schema (see [`Isolation::for_family`]).
    pub async fn new(family: &str, admin: &str) -> Self {
        Deployment {
            iso: Isolation::for_family(family).await,
            admin: admin.to_string(),
            dir: Some(tempfile::tempdir().unwrap()),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.iso.prefix
    }

    pub fn schema(&self) -> &str {
        &self.iso.schema
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("present until drop").path()
    }

    /// The flags of a distributed node on this deployment, through the given URLs.
    pub fn distributed(&self, redis: &str, database: &str) -> Vec<String> {
        [
            "--redis",
            redis,
            "--database",
            database,
            "--redis-prefix",
            &self.iso.prefix,
            "--database-schema",
            &self.iso.schema,
        ]
        .map(String::from)
        .to_vec()
    }

    /// A distributed node on the local Redis and PostgreSQL with `extra` flags, on a free
    /// port.
    pub async fn node(&self, name: &str, extra: &[&str]) -> Node {
        self.node_via(name, &redis_url(), &database_url(), extra)
            .await
    }

    /// [`Deployment::node`] through other URLs (a proxy).
    pub async fn node_via(&self, name: &str, redis: &str, database: &str, extra: &[&str]) -> Node {
        let mut flags = self.distributed(redis, database);
        flags.extend(extra.iter().map(|s| s.to_string()));
        self.spawn(name, free_port(), &flags).await
    }

    /// Starts `gavel serve` named `name` on `port` with `flags` (besides the common ones:
    /// data directory, node id, admin token, JWT secret, no rate limits) and waits for
    /// `/healthz`. Its output is appended to `{name}.log`, so a restart keeps the history.
    pub async fn spawn(&self, name: &str, port: u16, flags: &[String]) -> Node {
        let data = self.path().join(name);
        std::fs::create_dir_all(&data).unwrap();
        let log = self.path().join(format!("{name}.log"));
        let mut node = Node {
            child: None,
            name: name.to_string(),
            port,
            base: format!("http://127.0.0.1:{port}"),
            ws: format!("ws://127.0.0.1:{port}/ws"),
            log,
            data,
            admin: self.admin.clone(),
            flags: flags.to_vec(),
        };
        node.start().await;
        node
    }

    /// A PostgreSQL client on the local server (the deployment's schema is `schema()`).
    pub async fn pg(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }

    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(redis_url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// An in-process Redis engine on the deployment's prefix (Redis is the authority, so
    /// its bids are the cluster's like any other).
    pub async fn engine(&self) -> gavel_engine::redis::RedisEngine {
        gavel_engine::redis::RedisEngine::connect(gavel_engine::redis::RedisConfig::new(
            redis_url(),
            self.iso.prefix.clone(),
        ))
        .await
        .unwrap()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                eprintln!("node logs kept in {}", dir.keep().display());
            }
        }
    }
}

/// A `gavel serve` process (killed with SIGKILL when dropped), restartable on the same port,
/// data directory and flags.
pub struct Node {
    child: Option<Child>,
    pub name: String,
    pub port: u16,
    /// `http://127.0.0.1:{port}`
    pub base: String,
    /// `ws://127.0.0.1:{port}/ws`
    pub ws: String,
    pub log: PathBuf,
    data: PathBuf,
    admin: String,
    flags: Vec<String>,
}

impl Node {
    /// Spawns the process (appending to its log) and waits up to 30 s for `/healthz`.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "node {} already runs", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gavel"))
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--data-dir")
            .arg(&self.data)
            .args(["--node-id", &self.name])
            .args(["--admin-token", &self.admin])
            .args(["--jwt-secret", JWT_SECRET])
            .args(["--bids-per-second", "100000"])
            .args(["--max-connections-per-ip", "0"])
            .args(["--sessions-per-minute-per-ip", "0"])
            .args(&self.flags)
            .env_remove("REDIS_URL")
            .env_remove("DATABASE_URL")
            .env_remove("GAVEL_REDIS_URL")
            .env_remove("GAVEL_DATABASE_URL")
            .env("RUST_LOG", "info,tower_http=warn")
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the gavel binary starts");
        self.child = Some(child);
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{}/healthz", self.base)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "node {} exited at start ({status}):\n{}",
                    self.name,
                    self.log_text()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "node {} did not start:\n{}",
                self.name,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process id (panics when the node is not running).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the node runs").id()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`: no clean-up of any kind, as in a crash.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }

    pub fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
    }

    /// Waits (up to `within`) for the process to exit; its exit status, `None` if it runs.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.as_mut().expect("started").try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The sum of a Prometheus metric's series (`None` when it has none yet).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let values: Vec<f64> = text
            .lines()
            .filter(|l| l.split([' ', '{']).next() == Some(name))
            .filter_map(|l| l.split_whitespace().last()?.parse().ok())
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    }

    /// [`Node::metric`] as a count (0 when it has no series yet).
    pub async fn count(&self, name: &str) -> u64 {
        self.metric(name).await.unwrap_or(0.0) as u64
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}
