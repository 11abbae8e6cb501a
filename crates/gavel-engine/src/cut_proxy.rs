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
        // Bound once and kept: picking a free port and binding it again later races with
        // the other tests' outgoing connections, which may take it in between.
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port");
        let port = listener.local_addr().expect("a bound port").port();
        let mut p = CutProxy {
            port,
            upstream: upstream.into(),
            tasks: None,
        };
        p.serve(listener);
        p
    }

    /// Accepts and forwards again, on the same port. Another socket may hold the port for
    /// a moment after [`CutProxy::down`] (an outgoing connection of a parallel test given
    /// it as its local port): retried for a few seconds.
    pub async fn up(&mut self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(e) if tries < 100 => {
                    tries += 1;
                    if tries == 1 {
                        eprintln!("cut proxy: port {} busy ({e}); retrying", self.port);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => panic!("the proxy's port {} is not free again: {e}", self.port),
            }
        };
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
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
