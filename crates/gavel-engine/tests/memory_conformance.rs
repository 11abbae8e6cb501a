//! The engine conformance suite against the memory engine on a real SQLite archive.

use gavel_engine::conformance::Harness;
use gavel_engine::memory::{MemoryConfig, MemoryEngine};
use gavel_engine::Clock;
use std::sync::Arc;

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let archive = gavel_archive::build_sqlite(dir.path()).expect("sqlite archive");
    // The directory must outlive the test; leak it (the OS temp dir is cleaned anyway).
    std::mem::forget(dir);
    let clock = Clock::system();
    let engine = MemoryEngine::start(archive, clock.clone(), MemoryConfig::default())
        .await
        .expect("engine starts");
    Harness {
        engine: Arc::new(engine),
        clock,
    }
}

gavel_engine::engine_conformance_tests!(harness);

mod live {
    use super::harness;
    gavel_engine::engine_conformance_live_tests!(harness);
}
