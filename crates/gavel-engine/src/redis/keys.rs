//! The Redis key layout, in one place.
//!
//! Per auction (every key a script touches carries the hash tag `{<auction id>}`, so one
//! auction's keys share a Cluster slot and each script stays single-slot):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<p>:{<id>}:a` | hash | `spec`, `seq`, `t` (the auction's clock), `last` (the last change, with the full state), `final` (set once closed) |
//! | `<p>:{<id>}:log` | stream | one entry per committed change (field `c`), group `drainers` |
//! | `<p>:{<id>}:recent` | list | the 50 newest history entries, newest first |
//! | `<p>:{<id>}:req:<n>:<bidder>:<request>` | string, TTL | the reply to that request, as it was given (`<n>`: the bidder id's length) |
//! | `<p>:{<id>}:dead` | stream | change-log entries the drainer could not decode (dead letters) |
//! | `<p>:{<id>}:reqs` | sorted set | the names of the auction's request records (score: when each expires), so retirement can delete them without a scan |
//!
//! Every key above leaves Redis together (`scripts/retire.lua`) once the auction is closed,
//! fully archived in PostgreSQL, without dead letters, and `closed_retention` has passed
//! since it closed (see `retire.rs`).
//!
//! Node-wide indexes, never written by a script (a script may only touch its own slot);
//! each is written before the auction exists and corrected lazily by `advance` and the
//! drainer, so a stale entry is harmless:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<p>:auctions` | sorted set | every auction id (score: registration time) |
//! | `<p>:deadlines` | sorted set | open/scheduled auction id → a deadline at or before its next start/end |
//! | `<p>:active` | sorted set | auctions whose change log may still hold unarchived entries |
//! | `<p>:dead` | sorted set | auctions with a dead-letter stream (score: first dead letter) |
//! | `<p>:live` | sorted set | auctions not closed yet (score: current end time), what listings page through |
//! | `<p>:retire` | sorted set | closed, fully archived auctions → when their keys may leave Redis |
//!
//! Pub/Sub channel of an auction: on one Redis `<p>:ch:<id>`, nodes subscribe to the pattern
//! `<p>:ch:*`; on a Redis Cluster the sharded channel `<p>:{<id>}:ch` (`SPUBLISH` from the
//! commit script, which may only name its own slot; nodes `SSUBSCRIBE` per auction, see
//! `shard_feed.rs`).

use gavel_core::{AuctionId, BidderId, RequestId};

/// The consumer group every drainer reads the change logs with.
pub const DRAIN_GROUP: &str = "drainers";

/// Why a key prefix cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("Redis key prefix must be 1 to 64 characters of A-Z a-z 0-9 - _ . : (got {0:?})")]
pub struct PrefixError(pub String);

/// Key names under one prefix. Several Gavel deployments (or tests) share a Redis by using
/// different prefixes.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// The prefix may not contain `{`, `}` (hash tags) or glob characters (the channel
    /// pattern).
    pub fn new(prefix: &str) -> Result<Self, PrefixError> {
        let ok = !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        if ok {
            Ok(Keys {
                prefix: prefix.to_string(),
            })
        } else {
            Err(PrefixError(prefix.to_string()))
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn hash(&self, id: &AuctionId) -> String {
        format!("{}:{{{}}}:a", self.prefix, id)
    }

    pub fn log(&self, id: &AuctionId) -> String {
        format!("{}:{{{}}}:log", self.prefix, id)
    }

    pub fn recent(&self, id: &AuctionId) -> String {
        format!("{}:{{{}}}:recent", self.prefix, id)
    }

    /// The idempotency record of (bidder, request id). Both ids may contain `:`, so the
    /// bidder id is length-prefixed: `a:b` + `c` and `a` + `b:c` get different keys.
    pub fn request(&self, id: &AuctionId, bidder: &BidderId, request: &RequestId) -> String {
        format!(
            "{}:{{{}}}:req:{}:{}:{}",
            self.prefix,
            id,
            bidder.as_str().len(),
            bidder,
            request
        )
    }

    /// The auction's dead-letter stream: in the log's slot, so one script can move an entry.
    pub fn dead(&self, id: &AuctionId) -> String {
        format!("{}:{{{}}}:dead", self.prefix, id)
    }

    /// The names of the auction's request records, scored by when each expires.
    pub fn reqs(&self, id: &AuctionId) -> String {
        format!("{}:{{{}}}:reqs", self.prefix, id)
    }

    pub fn channel(&self, id: &AuctionId) -> String {
        format!("{}:ch:{}", self.prefix, id)
    }

    /// The auction's sharded channel (Redis Cluster): in the auction's slot, so the commit
    /// script may `SPUBLISH` to it and the message stays on the shard owning the auction.
    pub fn shard_channel(&self, id: &AuctionId) -> String {
        format!("{}:{{{}}}:ch", self.prefix, id)
    }

    /// The auction id of a sharded channel, if it is one of ours.
    pub fn auction_of_shard_channel(&self, channel: &str) -> Option<AuctionId> {
        let rest = channel.strip_prefix(&self.prefix)?.strip_prefix(":{")?;
        AuctionId::parse(rest.strip_suffix("}:ch")?).ok()
    }

    pub fn channel_pattern(&self) -> String {
        format!("{}:ch:*", self.prefix)
    }

    /// The auction id of a change-log key, if it is one of ours.
    pub fn auction_of_log(&self, key: &str) -> Option<AuctionId> {
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix(":{")?;
        let id = rest.strip_suffix("}:log")?;
        AuctionId::parse(id).ok()
    }

    pub fn auctions(&self) -> String {
        format!("{}:auctions", self.prefix)
    }

    pub fn deadlines(&self) -> String {
        format!("{}:deadlines", self.prefix)
    }

    pub fn active(&self) -> String {
        format!("{}:active", self.prefix)
    }

    /// Live (scheduled or open) auctions by current end time.
    pub fn live(&self) -> String {
        format!("{}:live", self.prefix)
    }

    /// Closed auctions whose change log is fully archived, by when they may be retired.
    pub fn retire(&self) -> String {
        format!("{}:retire", self.prefix)
    }

    /// Auctions whose dead-letter stream may hold entries (what an operator looks at).
    pub fn dead_index(&self) -> String {
        format!("{}:dead", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_an_auction_shares_its_hash_tag() {
        let k = Keys::new("gavel").unwrap();
        let id = AuctionId::parse("lot-7").unwrap();
        let bidder = BidderId::parse("u-1").unwrap();
        let req = RequestId::parse("r:1").unwrap();
        for key in [
            k.hash(&id),
            k.log(&id),
            k.recent(&id),
            k.request(&id, &bidder, &req),
            k.dead(&id),
            k.reqs(&id),
            k.shard_channel(&id),
        ] {
            assert!(key.starts_with("gavel:{lot-7}:"), "{key}");
        }
        assert_eq!(k.auction_of_log(&k.log(&id)), Some(id.clone()));
        assert_eq!(k.auction_of_log("other:{lot-7}:log"), None);
        assert_eq!(k.auction_of_shard_channel(&k.shard_channel(&id)), Some(id));
        assert_eq!(k.auction_of_shard_channel("gavel:{lot-7}:log"), None);
    }

    #[test]
    fn request_keys_cannot_collide_when_ids_contain_colons() {
        let k = Keys::new("gavel").unwrap();
        let id = AuctionId::parse("lot-7").unwrap();
        let key = |b: &str, r: &str| {
            k.request(
                &id,
                &BidderId::parse(b).unwrap(),
                &RequestId::parse(r).unwrap(),
            )
        };
        assert_ne!(key("a:b", "c"), key("a", "b:c"));
        assert_ne!(key("a:b:c", "d"), key("a:b", "c:d"));
        assert_eq!(key("a:b", "c"), "gavel:{lot-7}:req:3:a:b:c");
    }

    #[test]
    fn prefixes_with_braces_or_globs_are_refused() {
        for bad in ["", "a{b}", "a*", "a b", "x?"] {
            assert!(Keys::new(bad).is_err(), "{bad:?}");
        }
        assert!(Keys::new("gavel-test_1.x:y").is_ok());
    }
}
