//! What the Lua scripts read and write, and its mapping to and from `gavel-core` values.
//!
//! Every value is a string (amounts, times, seqs as decimal digits), so cjson in the
//! scripts only ever encodes strings and never rounds a number. Absent fields are `None`.
//! One decoder serves the script replies, the Pub/Sub messages and the change-log entries.

use gavel_core::{
    Auction, AuctionId, AuctionSpec, AuctionState, BidEntry, Bidder, BidderId, CloseReason,
    Closing, EntryKind, Event, IncrementPolicy, Money, Rejection, RequestId, Status,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Why a script's output could not be read back: a bug or foreign data, never a rule.
#[derive(Debug, thiserror::Error)]
#[error("unreadable Redis data: {0}")]
pub struct WireError(pub String);

fn bad(what: impl std::fmt::Display) -> WireError {
    WireError(what.to_string())
}

/// `AuctionState` as the scripts store it (the `state` field of the auction hash).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireState {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// Leader id and display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lname: Option<String>,
    /// Leader's proxy maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lmax: Option<String>,
    /// Bid count.
    pub count: String,
    pub seq: String,
    /// Current end.
    pub ends: String,
    /// Closing: reason, closed_at, winner id and name, final price, admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cat: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// What the rules need of an `AuctionSpec` (the `rules` field of the auction hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WireRules {
    /// Starting price.
    pub sp: String,
    /// Increment bands: starts and increments, comma-separated (a fixed increment is one
    /// band from 0).
    pub incf: String,
    pub inca: String,
    /// Start, and the original end (the soft-close cap counts from it).
    pub sa: String,
    pub oe: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub res: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bn: Option<String>,
    /// Soft close: window, extension, cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scw: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scm: Option<String>,
}

/// A history entry as the scripts write it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct WireEntry {
    pub seq: String,
    pub lid: String,
    pub lname: String,
    pub amt: String,
    pub kind: String,
    pub at: String,
}

/// A committed change: published on the auction's channel, appended to its change log and
/// kept as the hash's `last`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct WireChange {
    pub id: String,
    pub ev: String,
    pub st: WireState,
    #[serde(default)]
    pub e: Option<WireEntry>,
    #[serde(default)]
    pub ext: Option<String>,
    /// Server-generated bid id (for bids).
    #[serde(default)]
    pub bid: Option<String>,
    /// The request that placed the bid, when it was accepted.
    #[serde(default)]
    pub req: Option<String>,
}

/// A decided bid as stored under its idempotency key and returned to repeats verbatim.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct WireReply {
    /// `ok` or a rejection code.
    pub o: String,
    /// The rejection's parameter (min_bid, seq, price or current_max).
    #[serde(default)]
    pub p: Option<String>,
    pub st: WireState,
}

fn int(s: &str, what: &str) -> Result<i64, WireError> {
    s.parse::<i64>().map_err(|_| bad(format!("{what}: {s:?}")))
}

fn uint(s: &str, what: &str) -> Result<u64, WireError> {
    s.parse::<u64>().map_err(|_| bad(format!("{what}: {s:?}")))
}

fn money(s: &str, what: &str) -> Result<Money, WireError> {
    Money::new(int(s, what)?).map_err(|e| bad(format!("{what}: {e}")))
}

fn opt_money(s: &Option<String>, what: &str) -> Result<Option<Money>, WireError> {
    s.as_deref().map(|s| money(s, what)).transpose()
}

fn bidder(id: &str, name: Option<&str>) -> Result<Bidder, WireError> {
    Ok(Bidder {
        id: BidderId::parse(id).map_err(bad)?,
        name: name.unwrap_or_default().into(),
    })
}

fn status_str(s: Status) -> &'static str {
    s.as_str()
}

fn parse_status(s: &str) -> Result<Status, WireError> {
    Ok(match s {
        "scheduled" => Status::Scheduled,
        "open" => Status::Open,
        "closed" => Status::Closed,
        other => return Err(bad(format!("status {other:?}"))),
    })
}

pub(crate) fn close_reason_str(r: CloseReason) -> &'static str {
    match r {
        CloseReason::Ended => "ended",
        CloseReason::BuyNow => "buy_now",
        CloseReason::EndedEarly => "ended_early",
        CloseReason::Cancelled => "cancelled",
    }
}

fn parse_close_reason(s: &str) -> Result<CloseReason, WireError> {
    Ok(match s {
        "ended" => CloseReason::Ended,
        "buy_now" => CloseReason::BuyNow,
        "ended_early" => CloseReason::EndedEarly,
        "cancelled" => CloseReason::Cancelled,
        other => return Err(bad(format!("close reason {other:?}"))),
    })
}

fn parse_entry_kind(s: &str) -> Result<EntryKind, WireError> {
    Ok(match s {
        "bid" => EntryKind::Bid,
        "auto" => EntryKind::Auto,
        "buy_now" => EntryKind::BuyNow,
        other => return Err(bad(format!("entry kind {other:?}"))),
    })
}

impl WireRules {
    pub fn from_spec(spec: &AuctionSpec) -> Self {
        let (from, inc): (Vec<String>, Vec<String>) = match &spec.increment {
            IncrementPolicy::Fixed { amount } => (vec!["0".into()], vec![amount.to_string()]),
            IncrementPolicy::Table { bands } => bands
                .iter()
                .map(|b| (b.from.to_string(), b.increment.to_string()))
                .unzip(),
        };
        let sc = spec.soft_close;
        WireRules {
            sp: spec.starting_price.to_string(),
            incf: from.join(","),
            inca: inc.join(","),
            sa: spec.starts_at.to_string(),
            oe: spec.ends_at.to_string(),
            res: spec.reserve.map(|m| m.to_string()),
            bn: spec.buy_now.map(|m| m.to_string()),
            scw: sc.map(|s| s.window_ms.to_string()),
            sce: sc.map(|s| s.extend_ms.to_string()),
            scm: sc.and_then(|s| s.max_extension_ms).map(|m| m.to_string()),
        }
    }
}

impl WireState {
    pub fn from_state(s: &AuctionState) -> Self {
        let closing = s.closing.as_ref();
        let winner = closing.and_then(|c| c.winner.as_ref());
        WireState {
            status: status_str(s.status).to_string(),
            price: s.price.map(|m| m.to_string()),
            lid: s.leader.as_ref().map(|l| l.id.to_string()),
            lname: s.leader.as_ref().map(|l| l.name.to_string()),
            lmax: s.leader_max.map(|m| m.to_string()),
            count: s.bid_count.to_string(),
            seq: s.seq.to_string(),
            ends: s.ends_at.to_string(),
            cr: closing.map(|c| close_reason_str(c.reason).to_string()),
            cat: closing.map(|c| c.closed_at.to_string()),
            wid: winner.map(|w| w.id.to_string()),
            wname: winner.map(|w| w.name.to_string()),
            fp: closing.and_then(|c| c.final_price).map(|m| m.to_string()),
            by: closing.and_then(|c| c.by.clone()),
        }
    }

    pub fn to_state(&self) -> Result<AuctionState, WireError> {
        let leader = self
            .lid
            .as_deref()
            .map(|id| bidder(id, self.lname.as_deref()))
            .transpose()?;
        let closing = match self.cr.as_deref() {
            None => None,
            Some(reason) => Some(Closing {
                reason: parse_close_reason(reason)?,
                closed_at: int(self.cat.as_deref().unwrap_or(""), "closed_at")?,
                winner: self
                    .wid
                    .as_deref()
                    .map(|id| bidder(id, self.wname.as_deref()))
                    .transpose()?,
                final_price: opt_money(&self.fp, "final price")?,
                by: self.by.clone(),
            }),
        };
        Ok(AuctionState {
            status: parse_status(&self.status)?,
            price: opt_money(&self.price, "price")?,
            leader,
            leader_max: opt_money(&self.lmax, "leader max")?,
            bid_count: uint(&self.count, "bid count")?,
            seq: uint(&self.seq, "seq")?,
            ends_at: int(&self.ends, "ends_at")?,
            closing,
        })
    }
}

impl WireEntry {
    pub fn to_entry(&self) -> Result<BidEntry, WireError> {
        Ok(BidEntry {
            seq: uint(&self.seq, "entry seq")?,
            bidder: bidder(&self.lid, Some(&self.lname))?,
            amount: money(&self.amt, "entry amount")?,
            kind: parse_entry_kind(&self.kind)?,
            at: int(&self.at, "entry time")?,
        })
    }
}

/// A decoded change plus what the archive needs to store it exactly once.
#[derive(Clone, Debug)]
pub struct DecodedChange {
    pub change: gavel_core::Change,
    pub bid_id: Option<String>,
    pub request_id: Option<RequestId>,
}

impl WireChange {
    pub fn parse(json: &str) -> Result<Self, WireError> {
        serde_json::from_str(json).map_err(bad)
    }

    pub fn auction_id(&self) -> Result<AuctionId, WireError> {
        AuctionId::parse(self.id.as_str()).map_err(bad)
    }

    pub fn seq(&self) -> Result<u64, WireError> {
        uint(&self.st.seq, "seq")
    }

    /// The full change, given the auction's (immutable) spec.
    pub fn decode(&self, spec: &Arc<AuctionSpec>) -> Result<DecodedChange, WireError> {
        let auction = Auction {
            id: self.auction_id()?,
            spec: spec.clone(),
            state: self.st.to_state()?,
        };
        let event = match self.ev.as_str() {
            "bid" => Event::Bid {
                entry: self
                    .e
                    .as_ref()
                    .ok_or_else(|| bad("a bid change without its entry"))?
                    .to_entry()?,
                extended: self.ext.as_deref() == Some("1"),
            },
            "max_raised" => Event::MaxRaised,
            "opened" => Event::Opened,
            "closed" => Event::Closed,
            "created" => Event::Created,
            other => return Err(bad(format!("event {other:?}"))),
        };
        Ok(DecodedChange {
            change: gavel_core::Change { auction, event },
            bid_id: self.bid.clone(),
            request_id: self
                .req
                .as_deref()
                .map(RequestId::parse)
                .transpose()
                .map_err(bad)?,
        })
    }
}

impl WireReply {
    pub fn parse(json: &str) -> Result<Self, WireError> {
        serde_json::from_str(json).map_err(bad)
    }

    pub fn outcome(&self) -> Result<Result<(), Rejection>, WireError> {
        let p = || self.p.as_deref().unwrap_or("");
        Ok(Err(match self.o.as_str() {
            "ok" => return Ok(Ok(())),
            "outbid" => Rejection::Outbid {
                min_bid: money(p(), "min_bid")?,
            },
            "stale" => Rejection::Stale {
                seq: uint(p(), "seq")?,
            },
            "already_leading" => Rejection::AlreadyLeading,
            "not_open" => Rejection::NotOpen,
            "closed" => Rejection::Closed,
            "buy_now_unavailable" => Rejection::BuyNowUnavailable,
            "buy_now_price" => Rejection::BuyNowPrice {
                price: money(p(), "price")?,
            },
            "max_not_raised" => Rejection::MaxNotRaised {
                current_max: money(p(), "current_max")?,
            },
            other => return Err(bad(format!("outcome {other:?}"))),
        }))
    }
}

/// Decodes a recent-bids list element.
pub fn parse_entry(json: &str) -> Result<BidEntry, WireError> {
    serde_json::from_str::<WireEntry>(json)
        .map_err(bad)?
        .to_entry()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gavel_core::{Currency, IncrementBand, SoftClose, MAX_AMOUNT};

    fn spec() -> AuctionSpec {
        AuctionSpec {
            title: "t".into(),
            description: String::new(),
            currency: Currency::parse("USD").unwrap(),
            starting_price: Money::new(100).unwrap(),
            increment: IncrementPolicy::Table {
                bands: vec![
                    IncrementBand {
                        from: 0,
                        increment: Money::new(10).unwrap(),
                    },
                    IncrementBand {
                        from: 5_000,
                        increment: Money::new(250).unwrap(),
                    },
                ],
            },
            starts_at: 1,
            ends_at: 2,
            reserve: Some(Money::new(MAX_AMOUNT).unwrap()),
            buy_now: None,
            soft_close: Some(SoftClose {
                window_ms: 5,
                extend_ms: 6,
                max_extension_ms: None,
            }),
        }
    }

    #[test]
    fn rules_carry_every_band_and_amounts_as_exact_digits() {
        let r = WireRules::from_spec(&spec());
        assert_eq!((r.incf.as_str(), r.inca.as_str()), ("0,5000", "10,250"));
        assert_eq!(r.res.as_deref(), Some("9007199254740991"));
        assert_eq!((r.scw.as_deref(), r.scm.as_deref()), (Some("5"), None));
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains(":9"), "no JSON numbers: {json}");
    }

    #[test]
    fn a_closed_state_with_a_winner_round_trips() {
        let state = AuctionState {
            status: Status::Closed,
            price: Some(Money::new(MAX_AMOUNT).unwrap()),
            leader: Some(Bidder {
                id: BidderId::parse("u-1").unwrap(),
                name: "Zoë \"quoted\" /slash".into(),
            }),
            leader_max: None,
            bid_count: 7,
            seq: 12,
            ends_at: 1_767_225_600_000,
            closing: Some(Closing {
                reason: CloseReason::EndedEarly,
                closed_at: 1_767_225_599_000,
                winner: Some(Bidder {
                    id: BidderId::parse("u-1").unwrap(),
                    name: "Zoë \"quoted\" /slash".into(),
                }),
                final_price: Some(Money::new(MAX_AMOUNT).unwrap()),
                by: Some("admin".into()),
            }),
        };
        let wire = WireState::from_state(&state);
        let json = serde_json::to_string(&wire).unwrap();
        let back: WireState = serde_json::from_str(&json).unwrap();
        assert_eq!(back.to_state().unwrap(), state);
    }

    #[test]
    fn every_rejection_code_reads_back() {
        let st = WireState::from_state(
            &gavel_core::Auction::new(
                AuctionId::parse("a").unwrap(),
                AuctionSpec {
                    reserve: None,
                    soft_close: None,
                    ..spec()
                },
            )
            .unwrap()
            .state,
        );
        for (o, p, want) in [
            (
                "outbid",
                Some("120"),
                Err(Rejection::Outbid {
                    min_bid: Money::new(120).unwrap(),
                }),
            ),
            ("stale", Some("4"), Err(Rejection::Stale { seq: 4 })),
            ("already_leading", None, Err(Rejection::AlreadyLeading)),
            ("not_open", None, Err(Rejection::NotOpen)),
            ("closed", None, Err(Rejection::Closed)),
            (
                "buy_now_unavailable",
                None,
                Err(Rejection::BuyNowUnavailable),
            ),
            (
                "buy_now_price",
                Some("900"),
                Err(Rejection::BuyNowPrice {
                    price: Money::new(900).unwrap(),
                }),
            ),
            (
                "max_not_raised",
                Some("300"),
                Err(Rejection::MaxNotRaised {
                    current_max: Money::new(300).unwrap(),
                }),
            ),
            ("ok", None, Ok(())),
        ] {
            let reply = WireReply {
                o: o.into(),
                p: p.map(String::from),
                st: st.clone(),
            };
            assert_eq!(reply.outcome().unwrap(), want, "{o}");
            if let Err(r) = want {
                assert_eq!(r.code(), o);
            }
        }
    }
}
