//! Test support: a throwaway `redis-server` on a free loopback port, for tests that need
//! settings the shared Redis must never get (an eviction policy, commands refused to the
//! client), or that a test kills and restarts (the chaos run: `--appendonly yes` and a
//! `--dir` of its own in `args` make it persist across [`ThrowawayRedis::restart`]).
//! By default nothing is persisted; the process is killed when the handle is dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct ThrowawayRedis {
    child: Option<Child>,
    /// The loopback port it listens on.
    pub port: u16,
    args: Vec<String>,
}

impl ThrowawayRedis {
    /// Starts `redis-server` (or `$REDIS_SERVER`) with `args` added to a no-persistence,
    /// loopback-only configuration, and waits until it answers `PING`.
    pub async fn start(args: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut server = ThrowawayRedis {
            child: None,
            port,
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        server.run().await;
        server
    }

    /// Kills the process with SIGKILL (a crash: only what its AOF holds survives).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same arguments.
    pub async fn restart(&mut self) {
        self.kill();
        self.run().await;
    }

    async fn run(&mut self) {
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let port = self.port;
        let spawn = || {
            Command::new(&bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(std::env::temp_dir())
                .args(&self.args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {bin}: {e}"))
        };
        let mut child = spawn();
        let client = redis::Client::open(self.url()).expect("valid URL");
        let started = Instant::now();
        loop {
            // A user-less PING is refused (NOAUTH) when the default user is off: still up.
            match client.get_multiplexed_async_connection().await {
                Ok(_) => break,
                Err(e) if e.code().is_some() => break,
                Err(_) => {}
            }
            // The port may still be held for a moment after a kill: start it again.
            if let Ok(Some(_)) = child.try_wait() {
                child = spawn();
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{bin} did not start on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.child = Some(child);
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
        self.kill();
    }
}
