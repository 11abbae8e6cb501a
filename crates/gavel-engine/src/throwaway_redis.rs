//! Test support: a throwaway `redis-server` on a free loopback port, for tests that need
//! settings the shared Redis must never get (an eviction policy, commands refused to the
//! client). Nothing is persisted; the process is killed when the handle is dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct ThrowawayRedis {
    child: Child,
    /// The loopback port it listens on.
    pub port: u16,
}

impl ThrowawayRedis {
    /// Starts `redis-server` (or `$REDIS_SERVER`) with `args` added to a no-persistence,
    /// loopback-only configuration, and waits until it answers `PING`.
    pub async fn start(args: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        let server = ThrowawayRedis { child, port };
        let client = redis::Client::open(server.url()).expect("valid URL");
        let started = Instant::now();
        loop {
            // A user-less PING is refused (NOAUTH) when the default user is off: still up.
            match client.get_multiplexed_async_connection().await {
                Ok(_) => return server,
                Err(e) if e.code().is_some() => return server,
                Err(_) => {}
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{bin} did not start on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The URL as `user` (with the password `pass`).
    pub fn url_as(&self, user: &str, pass: &str) -> String {
        format!("redis://{user}:{pass}@127.0.0.1:{}", self.port)
    }
}

impl Drop for ThrowawayRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
