//! Running the `gavel` binary with a clean environment, and servers that stop on drop.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// `gavel` with no `GAVEL_*`, `REDIS_URL` or `DATABASE_URL` from the test's environment, so
/// only what a test sets applies.
pub fn gavel() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gavel"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("GAVEL_") || k == "REDIS_URL" || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    cmd.env("NO_COLOR", "1").stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to the end (at most 60 s).
pub fn run(cmd: &mut Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gavel runs");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("gavel finished within 60 s")
        .expect("gavel's output")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `gavel serve` process, killed on drop.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Stops the server with SIGTERM (a clean shutdown: the archive flushed and closed).
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut child = std::mem::replace(
            &mut self.child,
            Command::new("true").spawn().expect("spawn true"),
        );
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        rx.recv_timeout(Duration::from_secs(30))
            .expect("gavel stopped within 30 s of SIGTERM")
            .expect("wait");
    }
}

/// Starts `cmd` (a `gavel serve` command line listening on `port`) and waits until
/// `/healthz` answers.
pub async fn start(mut cmd: Command, port: u16) -> Server {
    #[allow(clippy::zombie_processes)] // `Server`'s Drop kills and waits for it.
    let child = cmd
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gavel");
    let mut server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if http
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return server;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("gavel serve exited at start: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not start");
}

/// `gavel serve` on `port` with its archive in `data_dir` and an admin token.
pub fn serve_cmd(data_dir: &Path, port: u16, admin_token: &str) -> Command {
    let mut cmd = gavel();
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--admin-token", admin_token, "--bids-per-second", "100000"]);
    cmd
}

#[path = "../common/isolation.rs"]
mod isolation;
pub use isolation::Isolation;
