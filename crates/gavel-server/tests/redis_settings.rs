//! A distributed node refuses a Redis that may evict its keys, says why and how to fix it,
//! and starts anyway with `--allow-redis-eviction` (or `GAVEL_ALLOW_REDIS_EVICTION`).
//! Redis is a throwaway `redis-server` on a free loopback port (the shared one is never
//! reconfigured); PostgreSQL is the local one (`DATABASE_URL`), with a schema per test.

use gavel_engine::throwaway_redis::ThrowawayRedis;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

struct Node {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `gavel serve` on `redis` with `extra` flags and `env`.
fn spawn(redis: &str, schema: &str, extra: &[&str], env: &[(&str, &str)]) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = dir.path().join("node.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gavel"));
    cmd.arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--redis", redis, "--database", &database_url()])
        .args(["--redis-prefix", "gsettings", "--database-schema", schema])
        .args(extra)
        .env_remove("GAVEL_ALLOW_REDIS_EVICTION")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Node {
        child: cmd.spawn().expect("gavel starts"),
        port,
        log,
        _dir: dir,
    }
}

impl Node {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status if the process ends within `within`.
    async fn exited(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    async fn healthy(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let url = format!("http://127.0.0.1:{}/healthz", self.port);
            if reqwest::get(url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return true;
            }
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

/// A schema name, dropped when the guard goes.
struct Schema(String);

impl Drop for Schema {
    fn drop(&mut self) {
        let name = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((c, conn)) =
                    tokio_postgres::connect(&database_url(), tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = c
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_an_evicting_redis_with_the_reason_and_starts_when_allowed() {
    let redis = ThrowawayRedis::start(&["--maxmemory-policy", "allkeys-lru"]).await;
    let schema = Schema(format!("gsettings_{}", uuid::Uuid::new_v4().simple()));

    let mut refused = spawn(&redis.url(), &schema.0, &[], &[]);
    let status = refused
        .exited(Duration::from_secs(30))
        .await
        .expect("the node stops by itself");
    assert!(!status.success());
    let log = refused.log_text();
    assert!(
        log.contains(
            "Redis's maxmemory-policy is allkeys-lru: under memory pressure Redis would delete \
             any key, including an auction's state, its change log before it is archived, and \
             idempotency records, losing confirmed bids. Set `maxmemory-policy noeviction`"
        ),
        "{log}"
    );
    assert!(
        log.contains("or start Gavel with --allow-redis-eviction (GAVEL_ALLOW_REDIS_EVICTION=true) to accept the risk"),
        "{log}"
    );

    let mut flag = spawn(&redis.url(), &schema.0, &["--allow-redis-eviction"], &[]);
    assert!(
        flag.healthy(Duration::from_secs(30)).await,
        "{}",
        flag.log_text()
    );
    assert!(
        flag.log_text()
            .contains("starting anyway (--allow-redis-eviction)"),
        "the risk is logged: {}",
        flag.log_text()
    );
    drop(flag);

    let mut env = spawn(
        &redis.url(),
        &schema.0,
        &[],
        &[("GAVEL_ALLOW_REDIS_EVICTION", "true")],
    );
    assert!(
        env.healthy(Duration::from_secs(30)).await,
        "{}",
        env.log_text()
    );
}
