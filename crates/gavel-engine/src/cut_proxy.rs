//! Test support: a TCP proxy on a loopback port that a test can cut (every connection
//! dropped, nothing accepted) and restore on the same port, to take Redis or PostgreSQL
//! away from the code under test without touching the machine's own servers.

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub struct CutProxy {
    /// The loopback port clients connect to.
    pub port: u16,
    upstream: String,
    tasks: Option<JoinSet<()>>,
}

impl CutProxy {
    /// Starts forwarding a free loopback port to `upstream` (`host:port`).
    pub async fn start(upstream: impl Into<String>) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut p = CutProxy {
            port,
            upstream: upstream.into(),
            tasks: None,
        };
        p.up().await;
        p
    }

    /// Accepts and forwards again, on the same port.
    pub async fn up(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("the proxy's port is free again");
        let upstream = self.upstream.clone();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                conns.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        self.tasks = Some(tasks);
    }

    /// Drops the listener and every proxied connection (the inner set goes with them).
    pub fn down(&mut self) {
        self.tasks = None;
    }
}
