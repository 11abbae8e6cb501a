//! Test support: a TCP proxy on a loopback port that a test can cut (every connection
//! dropped, nothing accepted) and restore on the same port, or pause (connections stay open
//! and new ones are accepted, but no byte moves either way, as when the server process is
//! stopped with SIGSTOP) and resume, to take Redis or PostgreSQL away from the code under
//! test without touching the machine's own servers.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

pub struct CutProxy {
    /// The loopback port clients connect to.
    pub port: u16,
    upstream: String,
    tasks: Option<JoinSet<()>>,
    /// `true` while paused; every pump waits on it before moving bytes.
    paused: watch::Sender<bool>,
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
            paused: watch::Sender::new(false),
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
        let paused = self.paused.subscribe();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let mut paused = paused.clone();
                conns.spawn(async move {
                    // A connection made while paused reaches the server only on resume.
                    if paused.wait_for(|p| !*p).await.is_err() {
                        return;
                    }
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (client_r, client_w) = client.into_split();
                    let (server_r, server_w) = server.into_split();
                    // Either direction ending ends the connection (both halves dropped).
                    tokio::select! {
                        _ = pump(client_r, server_w, paused.clone()) => {}
                        _ = pump(server_r, client_w, paused) => {}
                    }
                });
            }
        });
        self.tasks = Some(tasks);
    }

    /// Stops moving bytes on every connection, open or new, until [`CutProxy::resume`].
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    /// Drops the listener and every proxied connection (the inner set goes with them).
    pub fn down(&mut self) {
        self.tasks = None;
    }
}

/// Copies `from` to `to`, holding each chunk while the proxy is paused.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut paused: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if paused.wait_for(|p| !*p).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// An upstream that echoes every byte back.
    async fn echo_server() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn echo(conn: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
        conn.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        tokio::time::timeout(within, conn.read_exact(&mut buf))
            .await
            .ok()
            .map(|r| r.map(|_| buf.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_paused_proxy_holds_bytes_on_open_and_new_connections_until_resumed() {
        let proxy = CutProxy::start(echo_server().await).await;
        let mut open = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
        assert_eq!(
            echo(&mut open, Duration::from_secs(5)).await.unwrap(),
            b"ping"
        );

        proxy.pause();
        let mut new = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
        let short = Duration::from_millis(300);
        assert_eq!(
            echo(&mut open, short).await,
            None,
            "no byte moves while paused"
        );
        assert_eq!(echo(&mut new, short).await, None, "nor on a new connection");

        proxy.resume();
        // Each connection now gets both pings back (the held one and another).
        for conn in [&mut open, &mut new] {
            let mut buf = [0u8; 8];
            conn.write_all(b"ping").await.unwrap();
            tokio::time::timeout(Duration::from_secs(5), conn.read_exact(&mut buf))
                .await
                .expect("bytes move again after resume")
                .unwrap();
            assert_eq!(&buf, b"pingping");
        }
    }
}
