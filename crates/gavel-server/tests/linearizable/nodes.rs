//! Servers for the concurrent tests: an embedded server in this process (port 0, own data
//! directory), or real `gavel` processes in distributed mode sharing the local Redis
//! (`REDIS_URL`) and PostgreSQL (`DATABASE_URL`) under their own key prefix and schema.

#![allow(dead_code)] // each test binary uses part of it

use crate::workload::Node;
use gavel_server::config::ServeConfig;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub const ADMIN: &str = "linearizable-admin";

/// A server running in this process.
pub struct Embedded {
    base: String,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Embedded {
    pub async fn start() -> Embedded {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServeConfig::for_data_dir(dir.path().to_path_buf());
        config.admin_token = Some(ADMIN.into());
        config.bids_per_second = 100_000;
        config.sessions_per_minute_per_ip = 0;
        config.max_connections_per_ip = 0;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(gavel_server::run(config, listener, shutdown.clone()));
        Embedded {
            base,
            shutdown,
            handle,
            _dir: dir,
        }
    }

    pub fn node(&self) -> Node {
        Node {
            base: self.base.clone(),
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.handle).await;
    }
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn unique(tag: &str) -> String {
    format!(
        "{tag}_{}_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        uuid::Uuid::new_v4().simple()
    )
}

/// One Redis prefix and PostgreSQL schema shared by a test's nodes; removed when dropped.
pub struct Deployment {
    prefix: String,
    schema: String,
    dir: Option<tempfile::TempDir>,
}

/// A `gavel` process, killed when dropped.
pub struct Process {
    child: Child,
    base: String,
}

impl Process {
    pub fn node(&self) -> Node {
        Node {
            base: self.base.clone(),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Deployment {
    pub fn new() -> Self {
        Deployment {
            prefix: unique("glin").replace('_', "-"),
            schema: unique("glin"),
            dir: Some(tempfile::tempdir().unwrap()),
        }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.as_ref().expect("present until drop").path()
    }

    pub async fn node(&self, name: &str) -> Process {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = self.path().join(name);
        std::fs::create_dir_all(&data).unwrap();
        let log_path = self.path().join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gavel"))
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(&data)
            .args(["--redis", &redis_url()])
            .args(["--database", &database_url()])
            .args(["--redis-prefix", &self.prefix])
            .args(["--database-schema", &self.schema])
            .args(["--node-id", name])
            .args(["--admin-token", ADMIN])
            .args([
                "--jwt-secret",
                "linearizable-test-secret-of-32-bytes-or-more",
            ])
            .args(["--bids-per-second", "100000"])
            .args(["--max-connections-per-ip", "0"])
            .args(["--sessions-per-minute-per-ip", "0"])
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the gavel binary starts");
        let process = Process {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{}/healthz", process.base)).send().await {
                if r.status().is_success() {
                    return process;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "node {name} did not start:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                eprintln!("node logs kept in {}", dir.keep().display());
            }
        }
        // Leave Redis and PostgreSQL as we found them: this test's keys and schema only.
        let (prefix, schema) = (self.prefix.clone(), self.schema.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(client) = redis::Client::open(redis_url()) {
                if let Ok(mut c) = client.get_connection() {
                    let keys: Vec<String> = redis::cmd("KEYS")
                        .arg(format!("{prefix}:*"))
                        .query(&mut c)
                        .unwrap_or_default();
                    for k in keys {
                        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(k).query(&mut c);
                    }
                }
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&database_url(), tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}
