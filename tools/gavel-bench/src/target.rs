//! The servers under test: started by the tool (`--spawn`) or given by URL, and the HTTP
//! calls the tool makes to them (sign-in, auction creation, state, metrics, bid retries).

use anyhow::{bail, Context};
use gavel_check::history::Answer;
use gavel_protocol::{
    AuctionList, AuctionView, BidResult, CreateAuction, ErrorBody, PlaceBid, SessionRequest,
    SessionResponse,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// One node.
#[derive(Clone, Debug)]
pub struct Server {
    /// `http://host:port`
    pub base: String,
    /// `host:port` for the WebSocket URL.
    pub authority: String,
    pub addr: SocketAddr,
}

impl Server {
    pub async fn parse(url: &str) -> anyhow::Result<Self> {
        let trimmed = url.trim_end_matches('/');
        let authority = trimmed
            .strip_prefix("http://")
            .or_else(|| trimmed.strip_prefix("ws://"))
            .with_context(|| format!("{url}: expected http://host:port (TLS is not supported)"))?
            .to_string();
        let addr = tokio::net::lookup_host(&authority)
            .await
            .with_context(|| format!("resolving {authority}"))?
            .next()
            .with_context(|| format!("{authority} resolves to nothing"))?;
        Ok(Server {
            base: format!("http://{authority}"),
            authority,
            addr,
        })
    }
}

/// A server process this tool started; stopped with SIGTERM when dropped via [`Spawned::stop`].
pub struct Spawned {
    child: tokio::process::Child,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl Spawned {
    pub async fn start(
        binary: &PathBuf,
        extra: &[String],
        admin_token: &str,
        run: &str,
    ) -> anyhow::Result<(Self, Server)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        // Per process: two runs at once (parallel tests, or two shells) must not share one
        // server's archive.
        let dir = std::env::temp_dir().join(format!("gavel-bench-{run}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let log = dir.join("server.log");
        let out = std::fs::File::create(&log)?;
        let mut cmd = tokio::process::Command::new(binary);
        cmd.arg("serve")
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg(format!("--data-dir={}", dir.display()))
            .arg("--max-connections-per-ip=0")
            .arg("--bids-per-second=1000000")
            .arg("--sessions-per-minute-per-ip=0")
            .args(extra)
            .env("GAVEL_ADMIN_TOKEN", admin_token)
            .env_remove("REDIS_URL")
            .env_remove("DATABASE_URL")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let server = Server::parse(&format!("http://127.0.0.1:{port}")).await?;
        let spawned = Spawned { child, dir, log };
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = http.get(format!("{}/healthz", server.base)).send().await {
                if r.status().is_success() {
                    return Ok((spawned, server));
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "the spawned server did not answer /healthz within 10 s; see {}",
            spawned.log.display()
        )
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub fn archive(&self) -> PathBuf {
        self.dir.join("gavel.db")
    }

    /// SIGTERM, then up to 10 s for a clean exit (the server flushes its archive).
    pub async fn stop(mut self, keep: bool) {
        if let Some(pid) = self.child.id() {
            // SAFETY: sending a signal to our own child.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        if keep {
            eprintln!("server data and log kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The HTTP side of the protocol.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    admin_token: String,
}

async fn json_or_error<T: serde::de::DeserializeOwned>(r: reqwest::Response) -> anyhow::Result<T> {
    let status = r.status();
    let body = r.bytes().await?;
    match serde_json::from_slice::<T>(&body) {
        Ok(v) => Ok(v),
        Err(_) => match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(e) => bail!("{status}: {} ({})", e.error.code, e.error.message),
            Err(_) => bail!("{status}: {}", String::from_utf8_lossy(&body)),
        },
    }
}

impl Api {
    pub fn new(admin_token: String) -> Self {
        Api {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
            admin_token,
        }
    }

    pub async fn session(&self, s: &Server, name: &str) -> anyhow::Result<SessionResponse> {
        let r = self
            .http
            .post(format!("{}/api/session", s.base))
            .json(&SessionRequest {
                name: name.into(),
                admin_token: None,
            })
            .send()
            .await?;
        json_or_error(r).await
    }

    pub async fn create_auction(
        &self,
        s: &Server,
        body: &CreateAuction,
    ) -> anyhow::Result<AuctionView> {
        let r = self
            .http
            .post(format!("{}/api/auctions", s.base))
            .bearer_auth(&self.admin_token)
            .json(body)
            .send()
            .await?;
        json_or_error(r).await
    }

    /// Every auction, following the listing's pages (`GET /api/auctions` serves at most 200
    /// at a time).
    pub async fn list(&self, s: &Server) -> anyhow::Result<AuctionList> {
        let mut auctions = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{}/api/auctions?limit=200", s.base);
            if let Some(c) = &cursor {
                url.push_str("&cursor=");
                url.push_str(c);
            }
            let page: AuctionList = json_or_error(self.http.get(url).send().await?).await?;
            auctions.extend(page.auctions);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => {
                    return Ok(AuctionList {
                        auctions,
                        server_time: page.server_time,
                        next_cursor: None,
                    })
                }
            }
        }
    }

    /// Re-sends a bid with its original request id: the server answers the first decision
    /// again (or decides it now if it never was). The answer as a client sees it: a result,
    /// an error body, or nothing readable.
    pub async fn bid(
        &self,
        s: &Server,
        token: &str,
        auction: &str,
        body: &PlaceBid,
    ) -> Answer<BidResult> {
        let sent = self
            .http
            .post(format!("{}/api/auctions/{auction}/bids", s.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await;
        let r = match sent {
            Ok(r) => r,
            Err(e) => return Answer::Lost(format!("request failed: {e}")),
        };
        let status = r.status();
        let body = match r.bytes().await {
            Ok(b) => b,
            Err(e) => return Answer::Lost(format!("{status}: reading the body: {e}")),
        };
        if let Ok(result) = serde_json::from_slice::<BidResult>(&body) {
            return Answer::Ok(result);
        }
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(v) if v["error"].is_object() => {
                Answer::Error(crate::record::error_detail(&v["error"]))
            }
            _ => Answer::Lost(format!("{status}: {}", String::from_utf8_lossy(&body))),
        }
    }

    /// Prometheus counters and gauges, summed over their labels.
    pub async fn metrics(&self, s: &Server) -> anyhow::Result<HashMap<String, f64>> {
        let text = self
            .http
            .get(format!("{}/metrics", s.base))
            .send()
            .await?
            .text()
            .await?;
        let mut out = HashMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let name = name.split('{').next().unwrap_or(name).to_string();
            if let Ok(v) = value.parse::<f64>() {
                *out.entry(name).or_default() += v;
            }
        }
        Ok(out)
    }
}
