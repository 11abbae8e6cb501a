//! What the Redis engine stores and publishes, and how it maps to `gavel-core` values.
//!
//! Everything is JSON written and read by Rust only, with the core types' own serde
//! encoding (one owner per name: `Event`, `Rejection`, `AuctionState` spell themselves).
//! The commit script never parses any of it: it compares and stores strings, so no amount,
//! time or `seq` ever passes through a Lua double. Integers are exact decimal digits in the
//! JSON text and parse back exactly (`serde_json` reads `i64`/`u64` without rounding).

use gavel_core::{
    Auction, AuctionId, AuctionSpec, AuctionState, BidderId, Change, Event, Millis, Rejection,
    RequestId,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Why stored data could not be read back: a bug or foreign data, never a rule.
#[derive(Debug, thiserror::Error)]
#[error("unreadable Redis data: {0}")]
pub struct WireError(pub String);

fn bad(what: impl std::fmt::Display) -> WireError {
    WireError(what.to_string())
}

/// A committed change: published on the auction's channel, appended to its change log and
/// kept as the hash's `last` (which is also where the current state is read from).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireChange {
    pub id: AuctionId,
    /// The state's version: unique per committed change, what the commit script compares
    /// (`seq` alone is not: two nodes may each propose their own `seq + 1`).
    pub v: String,
    /// The auction's clock when the change was committed (see `docs/distributed.md`, Time).
    pub t: Millis,
    pub event: Event,
    /// The full new state, the leader's proxy maximum included (nodes are trusted; the
    /// edge shows the maximum to its owner only).
    pub state: AuctionState,
    /// Server-generated bid id (bids only): the archive's key for the bid row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bid: Option<String>,
    /// The request that placed the bid, when it was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req: Option<RequestId>,
}

/// A decoded change plus what the archive needs to store it exactly once.
#[derive(Clone, Debug)]
pub struct DecodedChange {
    pub change: Change,
    pub bid_id: Option<String>,
    pub request_id: Option<RequestId>,
    /// The auction's clock at the change.
    pub at: Millis,
    /// The state's version.
    pub version: String,
}

impl WireChange {
    pub fn new(
        change: &Change,
        version: &str,
        at: Millis,
        bid: Option<String>,
        req: Option<RequestId>,
    ) -> Self {
        WireChange {
            id: change.auction.id.clone(),
            v: version.to_string(),
            t: at,
            event: change.event.clone(),
            state: change.auction.state.clone(),
            bid,
            req,
        }
    }

    pub fn parse(json: &str) -> Result<Self, WireError> {
        serde_json::from_str(json).map_err(bad)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a change always encodes")
    }

    /// The full change, given the auction's (immutable) spec.
    pub fn decode(self, spec: &Arc<AuctionSpec>) -> DecodedChange {
        DecodedChange {
            change: Change {
                auction: Auction {
                    id: self.id,
                    spec: spec.clone(),
                    state: self.state,
                },
                event: self.event,
            },
            bid_id: self.bid,
            request_id: self.req,
            at: self.t,
            version: self.v,
        }
    }
}

/// A decided bid as stored under its idempotency key: the answer exactly as it was given,
/// returned to every repeat. The state is the one the bid was decided at, with the proxy
/// maximum kept only when it is the requester's own (see [`for_requester`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireReply {
    /// `None` when accepted.
    pub outcome: Option<Rejection>,
    pub state: AuctionState,
}

impl WireReply {
    pub fn parse(json: &str) -> Result<Self, WireError> {
        serde_json::from_str(json).map_err(bad)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a reply always encodes")
    }

    pub fn outcome(&self) -> Result<(), Rejection> {
        match self.outcome {
            None => Ok(()),
            Some(r) => Err(r),
        }
    }
}

/// The auction as a bid's requester may see it: another bidder's secret maximum removed.
/// Applied to every reply, live and stored, so a repeat is answered exactly like the first.
pub fn for_requester(mut auction: Auction, requester: &BidderId) -> Auction {
    let own = auction
        .state
        .leader
        .as_ref()
        .is_some_and(|l| &l.id == requester);
    if !own {
        auction.state.leader_max = None;
    }
    auction
}

/// Decodes a stored spec.
pub fn parse_spec(json: &str) -> Result<AuctionSpec, WireError> {
    serde_json::from_str(json).map_err(bad)
}

/// Decodes a recent-bids list element.
pub fn parse_entry(json: &str) -> Result<gavel_core::BidEntry, WireError> {
    serde_json::from_str(json).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gavel_core::{
        BidEntry, Bidder, CloseReason, Closing, Currency, EntryKind, IncrementPolicy, Money,
        Status, MAX_AMOUNT,
    };

    fn bidder(id: &str) -> Bidder {
        Bidder {
            id: BidderId::parse(id).unwrap(),
            name: "Zoë \"quoted\" /slash".into(),
        }
    }

    fn auction() -> Auction {
        let spec = AuctionSpec {
            title: "t".into(),
            description: String::new(),
            currency: Currency::parse("USD").unwrap(),
            category: None,
            starting_price: Money::new(100).unwrap(),
            increment: IncrementPolicy::Fixed {
                amount: Money::new(10).unwrap(),
            },
            starts_at: i64::MAX - 100,
            ends_at: i64::MAX,
            reserve: Some(Money::new(MAX_AMOUNT).unwrap()),
            buy_now: None,
            soft_close: None,
        };
        Auction::new(AuctionId::parse("a").unwrap(), spec).unwrap()
    }

    #[test]
    fn extreme_integers_round_trip_exactly() {
        let mut a = auction();
        a.state = AuctionState {
            status: Status::Closed,
            price: Some(Money::new(MAX_AMOUNT).unwrap()),
            leader: Some(bidder("u-1")),
            leader_max: Some(Money::new(MAX_AMOUNT).unwrap()),
            bid_count: u64::MAX,
            seq: u64::MAX,
            ends_at: i64::MAX,
            closing: Some(Closing {
                reason: CloseReason::EndedEarly,
                closed_at: i64::MAX - 1,
                winner: Some(bidder("u-1")),
                final_price: Some(Money::new(MAX_AMOUNT).unwrap()),
                by: Some("admin".into()),
            }),
            chain: None,
        };
        let change = Change {
            auction: a.clone(),
            event: Event::Bid {
                entry: BidEntry {
                    seq: u64::MAX,
                    bidder: bidder("u-1"),
                    amount: Money::new(MAX_AMOUNT).unwrap(),
                    kind: EntryKind::BuyNow,
                    at: i64::MAX,
                },
                extended: true,
            },
        };
        let json = WireChange::new(&change, "n.1", i64::MAX, Some("b".into()), None).to_json();
        assert!(json.contains("9223372036854775807"), "{json}");
        let back = WireChange::parse(&json).unwrap().decode(&a.spec);
        assert_eq!(back.change, change);
        assert_eq!(back.at, i64::MAX);
        assert_eq!(back.bid_id.as_deref(), Some("b"));
    }

    #[test]
    fn a_reply_keeps_only_the_requesters_own_maximum() {
        let mut a = auction();
        a.state.leader = Some(bidder("u-bob"));
        a.state.leader_max = Some(Money::new(50_000).unwrap());
        let alice = BidderId::parse("u-alice").unwrap();
        let bob = BidderId::parse("u-bob").unwrap();
        assert_eq!(for_requester(a.clone(), &alice).state.leader_max, None);
        assert_eq!(
            for_requester(a.clone(), &bob).state.leader_max,
            Some(Money::new(50_000).unwrap())
        );
        let reply = WireReply {
            outcome: Some(Rejection::Outbid {
                min_bid: Money::new(MAX_AMOUNT).unwrap(),
            }),
            state: for_requester(a, &alice).state,
        };
        let back = WireReply::parse(&reply.to_json()).unwrap();
        assert_eq!(back, reply);
        assert_eq!(
            back.outcome(),
            Err(Rejection::Outbid {
                min_bid: Money::new(MAX_AMOUNT).unwrap()
            })
        );
    }
}
