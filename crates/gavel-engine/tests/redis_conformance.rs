//! The engine conformance suite against the Redis engine on the real local Redis
//! (127.0.0.1:6379, or `REDIS_URL`). Each test runs under its own key prefix, so tests run
//! in parallel, and twice in a row, without seeing each other. The frozen-clock checks use
//! a test clock; the running-clock checks (`production_clock::*`) use none: the commit
//! script reads Redis `TIME`, as in production.

use gavel_engine::conformance::Harness;
use gavel_engine::redis::{RedisConfig, RedisEngine};
use gavel_engine::Clock;
use std::sync::Arc;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn harness() -> Harness {
    let clock = Clock::system();
    let prefix = gavel_engine::conformance::redis_test_prefix(&redis_url(), "gtest").await;
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

/// The production clock path: no test clock, the commit script reads Redis `TIME`.
async fn production_clock() -> Harness {
    let prefix = gavel_engine::conformance::redis_test_prefix(&redis_url(), "gtest").await;
    let engine = RedisEngine::connect(RedisConfig::new(redis_url(), prefix))
        .await
        .expect("Redis at REDIS_URL (default 127.0.0.1:6379) is reachable");
    Harness {
        engine: Arc::new(engine),
        clock: Clock::system(),
    }
}

mod production_clock {
    use super::production_clock;
    gavel_engine::engine_conformance_live_tests!(production_clock);
}

#[tokio::test]
async fn old_test_prefixes_are_swept_and_recent_ones_kept() {
    // A cluster-aware connection when REDIS_URL is a cluster node.
    let mut conn = gavel_engine::redis::conn::connect(&redis_url())
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let tag = uuid::Uuid::new_v4().simple();
    let old = format!("gsweep-1000-{tag}:{{a}}:a");
    let recent = format!("gsweep-{now}-{tag}:{{a}}:a");
    let other = format!("gsweepx-1000-{tag}:{{a}}:a");
    for k in [&old, &recent, &other] {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg(1)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let prefix = gavel_engine::conformance::redis_test_prefix(&redis_url(), "gsweep").await;
    assert!(prefix.starts_with("gsweep-"));
    let exists = |k: String| {
        let mut conn = conn.clone();
        async move {
            let n: i64 = redis::cmd("EXISTS")
                .arg(k)
                .query_async(&mut conn)
                .await
                .unwrap();
            n == 1
        }
    };
    assert!(!exists(old).await, "a ten-minute-old prefix is swept");
    assert!(exists(recent.clone()).await, "a recent prefix is kept");
    assert!(exists(other.clone()).await, "another family is left alone");
    let _: () = redis::cmd("DEL")
        .arg(&recent)
        .arg(&other)
        .query_async(&mut conn)
        .await
        .unwrap();
}
