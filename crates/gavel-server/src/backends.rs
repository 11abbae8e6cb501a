//! Chooses the engine and the archive once, at start-up, from the configuration.
//!
//! Embedded mode (the default): the in-memory engine with group commit into SQLite.

use crate::config::ServeConfig;
use anyhow::Context;
use gavel_archive::Archive;
use gavel_engine::memory::{MemoryConfig, MemoryEngine};
use gavel_engine::{Clock, Engine};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The engine and archive a node runs on.
pub struct Backends {
    pub engine: Arc<dyn Engine>,
    /// Where bid history is read from.
    pub archive: Arc<dyn Archive>,
}

/// Builds the backends. `stop` is cancelled when the server stops, for any background
/// tasks the backends need.
pub async fn build(
    config: &ServeConfig,
    clock: Clock,
    _stop: CancellationToken,
) -> anyhow::Result<Backends> {
    let archive = gavel_archive::build_sqlite(&config.data_dir).context("opening the archive")?;
    let engine: Arc<dyn Engine> = Arc::new(
        MemoryEngine::start(
            archive.clone(),
            clock,
            MemoryConfig {
                batch_max: config.batch_max.max(1),
                batch_window: Duration::from_millis(config.batch_window_ms),
                ..MemoryConfig::default()
            },
        )
        .await
        .context("starting the engine")?,
    );
    Ok(Backends { engine, archive })
}
