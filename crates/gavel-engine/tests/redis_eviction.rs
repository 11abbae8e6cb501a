//! The Redis engine refuses to start on a Redis that may evict its keys (issue 10 item 8),
//! against throwaway `redis-server`s on free loopback ports (the shared Redis is never
//! reconfigured).

use gavel_engine::redis::{RedisConfig, RedisEngine};
use gavel_engine::throwaway_redis::ThrowawayRedis;
use gavel_engine::{Engine, EngineError};

/// Connects to `url`; the error's text when it refuses.
async fn start(url: &str, allow: bool) -> Result<RedisEngine, String> {
    let mut config = RedisConfig::new(url, "gevict");
    config.allow_eviction = allow;
    match RedisEngine::connect(config).await {
        Ok(e) => Ok(e),
        Err(EngineError::Internal(cause)) => Err(cause.to_string()),
        Err(other) => panic!("a refusal is a settings error, not {other:?}"),
    }
}

async fn set_policy(server: &ThrowawayRedis, policy: &str) {
    let mut c = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg(policy)
        .query_async(&mut c)
        .await
        .unwrap();
}

const FIX: &str = "Set `maxmemory-policy noeviction` (in redis.conf, or `CONFIG SET \
     maxmemory-policy noeviction` and `CONFIG REWRITE`; on a managed Redis, in its parameter \
     group) and give Redis the memory it needs, or start Gavel with --allow-redis-eviction \
     (GAVEL_ALLOW_REDIS_EVICTION=true) to accept the risk";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noeviction_starts_and_every_evicting_policy_is_refused_saying_why_and_how_to_fix() {
    let server = ThrowawayRedis::start(&["--maxmemory-policy", "noeviction"]).await;
    assert!(start(&server.url(), false).await.is_ok(), "noeviction");

    set_policy(&server, "allkeys-lru").await;
    assert_eq!(
        start(&server.url(), false).await.err().unwrap(),
        format!(
            "Redis's maxmemory-policy is allkeys-lru: under memory pressure Redis would delete \
             any key, including an auction's state, its change log before it is archived, and \
             idempotency records, losing confirmed bids. {FIX}"
        )
    );
    set_policy(&server, "volatile-lru").await;
    assert_eq!(
        start(&server.url(), false).await.err().unwrap(),
        format!(
            "Redis's maxmemory-policy is volatile-lru: under memory pressure Redis would delete \
             keys that have a time to live, which are Gavel's idempotency records: a retried \
             bid could be decided twice. {FIX}"
        )
    );
    for policy in [
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        set_policy(&server, policy).await;
        let refused = start(&server.url(), false).await.err().unwrap();
        assert!(
            refused.starts_with(&format!("Redis's maxmemory-policy is {policy}: ")),
            "{refused}"
        );
        assert!(refused.ends_with(FIX), "{refused}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_eviction_allowed_an_evicting_redis_is_used() {
    let server = ThrowawayRedis::start(&["--maxmemory-policy", "allkeys-lru"]).await;
    let engine = start(&server.url(), true).await.expect("allowed");
    assert_eq!(engine.list().await.unwrap(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_config_is_refused_the_policy_is_read_from_info_memory() {
    // A managed-Redis-like user: everything but CONFIG.
    let server = ThrowawayRedis::start(&[
        "--maxmemory-policy",
        "volatile-ttl",
        "--user",
        "gavel",
        "on",
        ">pw",
        "~*",
        "&*",
        "+@all",
        "-config",
    ])
    .await;
    let url = server.url_as("gavel", "pw");
    let refused = start(&url, false).await.err().unwrap();
    assert!(
        refused.starts_with("Redis's maxmemory-policy is volatile-ttl: "),
        "{refused}"
    );
    set_policy(&server, "noeviction").await;
    assert!(start(&url, false).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_cannot_be_read_is_refused_unless_allowed() {
    let server = ThrowawayRedis::start(&[
        "--maxmemory-policy",
        "noeviction",
        "--user",
        "gavel",
        "on",
        ">pw",
        "~*",
        "&*",
        "+@all",
        "-config",
        "-info",
    ])
    .await;
    let url = server.url_as("gavel", "pw");
    assert_eq!(
        start(&url, false).await.err().unwrap(),
        "cannot read Redis's maxmemory-policy (CONFIG GET: NoPerm: this user has no \
         permissions to run the 'config|get' command; INFO memory: NoPerm: this user has no \
         permissions to run the 'info' command), so Gavel cannot tell whether Redis may evict \
         its keys. Allow the client CONFIG GET or INFO, or start Gavel with \
         --allow-redis-eviction (GAVEL_ALLOW_REDIS_EVICTION=true) to accept the risk"
    );
    assert!(start(&url, true).await.is_ok(), "allowed");
}
