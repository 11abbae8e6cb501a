//! Start-up check: Redis must not be allowed to evict Gavel's keys.
//!
//! Under `maxmemory` pressure, an evicting policy deletes keys silently: with `allkeys-*`
//! any key (an auction's state, its change log before the drainer archived it, its
//! history); with `volatile-*` every key that has a time to live, which in Gavel are the
//! idempotency records (a retried bid could then be decided twice, and a repeat would no
//! longer get its first answer). Only `noeviction` keeps every guarantee: Redis then
//! refuses writes when full, and Gavel answers `unavailable` instead of losing anything.
//! So a node refuses to start under any other policy unless the operator accepted the risk
//! (`--allow-redis-eviction`).
//!
//! The policy comes from `CONFIG GET maxmemory-policy`; managed services often refuse
//! `CONFIG` to clients, so `INFO memory` (its `maxmemory_policy` line) is the fallback.
//! A policy that can be read neither way is refused too: it cannot be vouched for. The
//! policy can be changed while Gavel runs; this check only covers the start.

use super::conn::Conn;
use super::map_err;
use crate::{Cause, EngineError};
use redis::RedisError;
use std::collections::HashMap;

/// The one policy that never deletes a key.
pub const SAFE_POLICY: &str = "noeviction";

/// Why a node will not start on this Redis.
#[derive(Debug, thiserror::Error)]
pub enum EvictionError {
    #[error(
        "Redis's maxmemory-policy is {policy}: {risk}. Set `maxmemory-policy noeviction` \
         (in redis.conf, or `CONFIG SET maxmemory-policy noeviction` and `CONFIG REWRITE`; \
         on a managed Redis, in its parameter group) and give Redis the memory it needs, or \
         start Gavel with --allow-redis-eviction (GAVEL_ALLOW_REDIS_EVICTION=true) to accept \
         the risk"
    )]
    Evicting { policy: String, risk: &'static str },
    #[error(
        "cannot read Redis's maxmemory-policy (CONFIG GET: {config}; INFO memory: {info}), \
         so Gavel cannot tell whether Redis may evict its keys. Allow the client CONFIG GET \
         or INFO, or start Gavel with --allow-redis-eviction \
         (GAVEL_ALLOW_REDIS_EVICTION=true) to accept the risk"
    )]
    Unknown { config: String, info: String },
}

/// What `policy` would delete, or `None` for `noeviction`.
pub fn risk_of(policy: &str) -> Option<&'static str> {
    if policy == SAFE_POLICY {
        None
    } else if policy.starts_with("allkeys-") {
        Some(
            "under memory pressure Redis would delete any key, including an auction's \
             state, its change log before it is archived, and idempotency records, losing \
             confirmed bids",
        )
    } else if policy.starts_with("volatile-") {
        Some(
            "under memory pressure Redis would delete keys that have a time to live, which \
             are Gavel's idempotency records: a retried bid could be decided twice",
        )
    } else {
        Some("Gavel does not know this policy and cannot vouch that it keeps every key")
    }
}

/// Refuses (unless `allow`) a Redis whose policy may evict Gavel's keys. A connection
/// failure is returned as such (the node cannot start anyway).
pub(super) async fn check(cmd: &Conn, allow: bool) -> Result<(), EngineError> {
    let policy = match read_policy(&mut cmd.clone()).await {
        Ok(p) => p,
        Err(Unread::Redis(e)) => return Err(e),
        Err(Unread::Refused { config, info }) => {
            let e = EvictionError::Unknown { config, info };
            if allow {
                tracing::warn!(error = %e, "starting anyway (--allow-redis-eviction)");
                return Ok(());
            }
            return Err(EngineError::Internal(Cause::msg(e.to_string())));
        }
    };
    match risk_of(&policy) {
        None => {
            tracing::debug!(%policy, "Redis never evicts keys");
            Ok(())
        }
        Some(risk) => {
            let e = EvictionError::Evicting { policy, risk };
            if allow {
                tracing::warn!(error = %e, "starting anyway (--allow-redis-eviction)");
                Ok(())
            } else {
                Err(EngineError::Internal(Cause::msg(e.to_string())))
            }
        }
    }
}

enum Unread {
    /// Redis could not be reached (not a refusal).
    Redis(EngineError),
    /// Both ways were refused or gave no policy.
    Refused { config: String, info: String },
}

async fn read_policy(cmd: &mut Conn) -> Result<String, Unread> {
    let config: Result<HashMap<String, String>, RedisError> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async(cmd)
        .await;
    let config = match config {
        Ok(m) => match m.get("maxmemory-policy") {
            Some(p) => return Ok(p.clone()),
            None => "no maxmemory-policy in the reply".to_string(),
        },
        Err(e) if e.code().is_some() => e.to_string(),
        Err(e) => return Err(Unread::Redis(map_err(e))),
    };
    let info: Result<String, RedisError> = redis::cmd("INFO").arg("memory").query_async(cmd).await;
    let info = match info {
        Ok(text) => match policy_in_info(&text) {
            Some(p) => return Ok(p),
            None => "no maxmemory_policy line".to_string(),
        },
        Err(e) if e.code().is_some() => e.to_string(),
        Err(e) => return Err(Unread::Redis(map_err(e))),
    };
    Err(Unread::Refused { config, info })
}

/// The `maxmemory_policy:<policy>` line of `INFO memory`.
pub fn policy_in_info(info: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.trim().strip_prefix("maxmemory_policy:"))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_noeviction_is_without_risk() {
        assert_eq!(risk_of("noeviction"), None);
        for p in ["allkeys-lru", "allkeys-lfu", "allkeys-random"] {
            assert!(risk_of(p).unwrap().contains("any key"), "{p}");
        }
        for p in [
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
        ] {
            assert!(risk_of(p).unwrap().contains("idempotency"), "{p}");
        }
        assert!(risk_of("some-future-policy")
            .unwrap()
            .contains("does not know"));
    }

    #[test]
    fn the_policy_is_found_in_info_memory() {
        let info = "# Memory\r\nused_memory:1\r\nmaxmemory_policy:volatile-lru\r\nx:y\r\n";
        assert_eq!(policy_in_info(info).as_deref(), Some("volatile-lru"));
        assert_eq!(policy_in_info("# Memory\r\nused_memory:1\r\n"), None);
        assert_eq!(policy_in_info("maxmemory_policy:\r\n"), None);
    }
}
