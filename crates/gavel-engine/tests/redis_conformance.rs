//! The engine conformance suite against the Redis engine on the real local Redis
//! (127.0.0.1:6379, or `REDIS_URL`). Each test runs under its own key prefix, so tests run
//! in parallel, and twice in a row, without seeing each other.

use gavel_engine::conformance::Harness;
use gavel_engine::redis::{RedisConfig, RedisEngine};
use gavel_engine::Clock;
use std::sync::Arc;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn harness() -> Harness {
    let clock = Clock::system();
    let prefix = format!("gtest-{}", uuid::Uuid::new_v4().simple());
    let mut config = RedisConfig::new(redis_url(), prefix);
    config.test_clock = Some(clock.clone());
    let engine = RedisEngine::connect(config)
        .await
        .expect("Redis at REDIS_URL (default 127.0.0.1:6379) is reachable");
    Harness {
        engine: Arc::new(engine),
        clock,
    }
}

gavel_engine::engine_conformance_tests!(harness);
