//! Servers for the concurrent tests: an embedded server in this process (port 0, own data
//! directory), or real `gavel` processes in distributed mode sharing the local Redis
//! (`REDIS_URL`) and PostgreSQL (`DATABASE_URL`) under their own key prefix and schema.

#![allow(dead_code)] // each test binary uses part of it

use crate::workload::Node;
use gavel_server::config::ServeConfig;
use std::time::Duration;
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

/// One Redis prefix and PostgreSQL schema shared by a test's nodes; removed when dropped.
pub struct Deployment(crate::common::nodes::Deployment);

/// A `gavel` process, killed when dropped.
pub type Process = crate::common::nodes::Node;

/// The workload's view of a node.
pub fn client(process: &Process) -> Node {
    Node {
        base: process.base.clone(),
    }
}

impl Deployment {
    pub async fn new() -> Self {
        Deployment(crate::common::nodes::Deployment::new("glin", ADMIN).await)
    }

    pub async fn node(&self, name: &str) -> Process {
        self.0.node(name, &[]).await
    }
}
