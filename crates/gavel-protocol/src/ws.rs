//! WebSocket messages: JSON text frames tagged by `type`.

use crate::schema;
use crate::{AuctionView, BidResult, BidView, ErrorCode, UserRef, UserView};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Fields a client may never send: the bidder is always the authenticated user.
pub const IDENTITY_FIELDS: &[&str] = &["bidder", "bidder_id", "user", "user_id"];

/// Client → server. Unknown fields and repeated keys are refused (a misspelled
/// `expected_seq` must not silently drop the stale check).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Authenticate (instead of `?token=` in the URL).
    Auth {
        token: String,
    },
    /// Watch an auction. With `since_seq` the server sends what was missed (or a snapshot).
    Subscribe {
        auction_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since_seq: Option<u64>,
    },
    Unsubscribe {
        auction_id: String,
    },
    /// Watch every auction's price (the lobby). (Braced, so extra fields are refused: serde
    /// lets a unit variant of a tagged enum ignore them.)
    SubscribeLobby {},
    UnsubscribeLobby {},
    /// Signed-in users: receive `notification`s (`outbid`, `won`, `lost`, `ending_soon`)
    /// for every auction on the watchlist or bid on, on any node, whether or not a room is
    /// open. Answered with `personal` (where the user stands in each); sending it again
    /// re-reads the watchlist and answers with a fresh `personal`.
    SubscribePersonal {},
    UnsubscribePersonal {},
    /// Place a bid. `amount` is raw JSON so each bad amount gets a precise error.
    Bid {
        auction_id: String,
        #[schemars(schema_with = "schema::amount")]
        amount: Value,
        request_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected_seq: Option<u64>,
        /// `plain` (default), `max` or `buy_now`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(with = "Option<schema::BidKind>")]
        kind: Option<String>,
        /// `true`: the client holds the auction's view already (a subscription, a GET), so
        /// the `bid_result` carries only `state`, what a decision can change, instead of the
        /// whole `auction` (title, description and the rest of its settings).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lean: Option<bool>,
    },
    /// Clock sync: the server echoes `client_time` with its own time.
    Ping {
        client_time: f64,
    },
    /// Delivery latency as this client saw it since its last report (sent about every
    /// 30 s): per watched auction, how many updates arrived how long after the authority
    /// decided them, in the buckets of [`LATENCY_BOUNDS_MS`]. Bounded by
    /// [`LatencyReport::MAX_AUCTIONS`] and [`LatencyReport::MAX_SAMPLES`].
    LatencyReport(LatencyReport),
}

/// Upper bounds (inclusive, milliseconds) of the delivery-latency buckets shared by the
/// server's histograms and the clients' reports; one more bucket holds everything slower.
pub const LATENCY_BOUNDS_MS: &[u64] =
    &[1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/// A client's delivery-latency report (`latency_report`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyReport {
    /// The error bound of the client's clock offset: half the round trip of the clock
    /// sample it uses (milliseconds). Every latency in the report is ± this much.
    pub clock_error_ms: u64,
    /// One entry per watched auction that received updates since the last report.
    pub auctions: Vec<AuctionLatency>,
}

/// How one auction's updates reached a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuctionLatency {
    pub auction_id: String,
    /// Updates per bucket: `counts[i]` arrived at most `LATENCY_BOUNDS_MS[i]` ms after the
    /// decision (and more than the bound before it); the last entry counts the slower ones.
    /// Exactly `LATENCY_BOUNDS_MS.len() + 1` entries.
    pub counts: Vec<u64>,
}

impl LatencyReport {
    /// Auctions one report may list.
    pub const MAX_AUCTIONS: usize = 64;
    /// Updates one report may count in all.
    pub const MAX_SAMPLES: u64 = 100_000;
    /// The largest clock error a report may claim (a minute).
    pub const MAX_CLOCK_ERROR_MS: u64 = 60_000;

    /// Checks the report's bounds, saying what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.auctions.len() > Self::MAX_AUCTIONS {
            return Err(format!(
                "a latency report lists at most {} auctions",
                Self::MAX_AUCTIONS
            ));
        }
        if self.clock_error_ms > Self::MAX_CLOCK_ERROR_MS {
            return Err(format!(
                "clock_error_ms must be at most {}",
                Self::MAX_CLOCK_ERROR_MS
            ));
        }
        let mut total: u64 = 0;
        for a in &self.auctions {
            if a.counts.len() != LATENCY_BOUNDS_MS.len() + 1 {
                return Err(format!(
                    "counts must have exactly {} entries (one per bucket)",
                    LATENCY_BOUNDS_MS.len() + 1
                ));
            }
            for c in &a.counts {
                total = total.saturating_add(*c);
            }
        }
        if total > Self::MAX_SAMPLES {
            return Err(format!(
                "a latency report counts at most {} updates",
                Self::MAX_SAMPLES
            ));
        }
        Ok(())
    }
}

/// Server → client.
// A `bid_result` (with a lean answer's state) is larger than most messages, but each
// message is built, encoded once and dropped: boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First message on every connection.
    Hello {
        user: Option<UserView>,
        server_time: i64,
        /// Limits the server enforces on this connection.
        limits: Limits,
        /// The longest the server stays silent: after this many milliseconds without any
        /// other message it sends a `heartbeat` (0: no heartbeats). A client that hears
        /// nothing for a few intervals may take the connection as dead.
        heartbeat_ms: u64,
    },
    /// Sent when the connection has been sent nothing for `heartbeat_ms`.
    Heartbeat {
        server_time: i64,
    },
    /// Full state of one auction: on subscribe, on resync and after conflation.
    Snapshot {
        auction: AuctionView,
        server_time: i64,
        /// Most recent bids, newest first (at most 20).
        recent_bids: Vec<BidView>,
        /// True when this replaces updates the client missed (gap, lag, reconnect).
        resync: bool,
    },
    /// A small delta: only what changed.
    Update(Update),
    BidResult(BidResult),
    Closed(Closed),
    /// Lobby subscription: the live auctions (scheduled or open) by end time, then the most
    /// recently closed ones, newest first. Both parts are bounded (`docs/protocol.md`);
    /// `GET /api/auctions` pages through everything.
    Lobby {
        auctions: Vec<AuctionView>,
        /// More live auctions exist than the lobby lists.
        #[serde(default)]
        more: bool,
        server_time: i64,
    },
    /// A new auction appeared (lobby subscribers).
    AuctionCreated {
        auction: AuctionView,
    },
    /// Answer to `subscribe_personal`: every auction the user watches or bid on, with where
    /// they stand, and the `ending_soon` threshold. `notification`s follow.
    Personal {
        auctions: Vec<crate::MyAuction>,
        /// `ending_soon` fires when an auction has at most this long left.
        ending_soon_ms: u64,
        server_time: i64,
    },
    /// A personal event (after `subscribe_personal`).
    Notification(crate::Notification),
    /// Answer to `unsubscribe`, `subscribe_lobby` and `unsubscribe_lobby`.
    Ok {
        what: String,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auction_id: Option<String>,
    },
    Pong {
        client_time: f64,
        server_time: i64,
    },
    /// How many connections watch an auction (sent when it changes, at most every second).
    Watchers {
        auction_id: String,
        count: u64,
    },
    /// The node is going away (a rolling restart): open a new connection to the same URL
    /// after `delay_ms` (behind a load balancer it reaches another node), subscribe again
    /// with `since_seq`, and let this one go. The server keeps serving this connection
    /// until then and closes it with code 1012 (service restart) at `delay_ms`, after the
    /// answers to the bids it was deciding. Each connection gets its own delay, spread over
    /// a few seconds, so the clients of a node do not all reconnect at once. Not an error:
    /// show nothing.
    Reconnect {
        delay_ms: u64,
        reason: ReconnectReason,
    },
}

/// Why the server asks a client to reconnect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReconnectReason {
    /// The node is shutting down (SIGTERM): a restart, a deploy, a scale-in.
    Draining,
}

impl ReconnectReason {
    /// The reason on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReconnectReason::Draining => "draining",
        }
    }
}

impl std::str::FromStr for ReconnectReason {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "draining" => Ok(ReconnectReason::Draining),
            _ => Err(format!(
                "not a reconnect reason: {:?}",
                s.chars().take(40).collect::<String>()
            )),
        }
    }
}

/// Limits announced in `hello`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_subscriptions: usize,
    pub bids_per_second: u32,
}

/// A state change of one auction. Fields that did not change are absent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Update {
    pub auction_id: String,
    pub seq: u64,
    /// `bid`, `max_raised` or `opened`.
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<UserRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bid_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_bid: Option<i64>,
    /// New end time after a soft-close extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<schema::AuctionStatus>")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserve_met: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buy_now_available: Option<bool>,
    /// The new history entry, for `bid` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bid: Option<BidView>,
    /// The authority's time of the change (server UTC ms): what delivery latency is measured
    /// from. Absent for `max_raised` (a change that carries no time of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<i64>,
}

/// The auction has ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Closed {
    pub auction_id: String,
    pub seq: u64,
    /// `ended`, `buy_now`, `ended_early` or `cancelled`.
    #[schemars(with = "schema::CloseReason")]
    pub reason: String,
    pub winner: Option<UserRef>,
    pub final_price: Option<i64>,
    pub closed_at: i64,
    pub bid_count: u64,
    pub reserve_met: Option<bool>,
    /// The final hash of the auction's verifiable log (hex; `GET /api/auctions/{id}/log`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_hash: Option<String>,
}

impl ClientMessage {
    /// Every client message `type`, in declaration order.
    pub const TYPES: &'static [&'static str] = &[
        "auth",
        "subscribe",
        "unsubscribe",
        "subscribe_lobby",
        "unsubscribe_lobby",
        "subscribe_personal",
        "unsubscribe_personal",
        "bid",
        "ping",
        "latency_report",
    ];
}

impl ServerMessage {
    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_are_tagged_by_type() {
        let m: ClientMessage = serde_json::from_str(
            r#"{"type":"bid","auction_id":"a1","amount":11000,"request_id":"r1","expected_seq":4}"#,
        )
        .unwrap();
        assert!(matches!(
            m,
            ClientMessage::Bid {
                expected_seq: Some(4),
                ..
            }
        ));
        let m: ClientMessage = serde_json::from_str(r#"{"type":"subscribe_lobby"}"#).unwrap();
        assert!(matches!(m, ClientMessage::SubscribeLobby {}));
    }

    #[test]
    fn every_listed_type_is_a_client_message_type() {
        for t in ClientMessage::TYPES {
            let e = serde_json::from_str::<ClientMessage>(&format!(r#"{{"type":"{t}"}}"#))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(!e.contains("unknown variant"), "{t}: {e}");
        }
        let e = serde_json::from_str::<ClientMessage>(r#"{"type":"shout"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown variant"), "{e}");
    }

    #[test]
    fn unknown_fields_and_repeated_keys_are_refused() {
        for raw in [
            r#"{"type":"bid","auction_id":"a1","amount":1,"request_id":"r1","expected_Seq":4}"#,
            r#"{"type":"bid","auction_id":"a1","amount":1,"amount":2,"request_id":"r1"}"#,
            r#"{"type":"bid","auction_id":"a1","amount":1,"request_id":"r1","expected_seq":4,"expected_seq":5}"#,
            r#"{"type":"subscribe","type":"bid","auction_id":"a1"}"#,
            r#"{"type":"subscribe_lobby","extra":1}"#,
            r#"{"type":"ping","client_time":1,"client_time":2}"#,
        ] {
            assert!(serde_json::from_str::<ClientMessage>(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn reconnect_carries_its_delay_and_reason() {
        let m = ServerMessage::Reconnect {
            delay_ms: 1250,
            reason: ReconnectReason::Draining,
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!({"type": "reconnect", "delay_ms": 1250, "reason": "draining"})
        );
        assert_eq!("draining".parse(), Ok(ReconnectReason::Draining));
        assert_eq!(ReconnectReason::Draining.as_str(), "draining");
        assert!("restart".parse::<ReconnectReason>().is_err());
    }

    #[test]
    fn latency_reports_are_bounded() {
        let ok = |n: usize| AuctionLatency {
            auction_id: "a1".into(),
            counts: vec![1; n],
        };
        let good = LatencyReport {
            clock_error_ms: 12,
            auctions: vec![ok(LATENCY_BOUNDS_MS.len() + 1)],
        };
        assert_eq!(good.validate(), Ok(()));
        let m: ClientMessage = serde_json::from_str(
            &serde_json::json!({"type": "latency_report", "clock_error_ms": 12,
                "auctions": [{"auction_id": "a1", "counts": vec![1; LATENCY_BOUNDS_MS.len() + 1]}]})
            .to_string(),
        )
        .unwrap();
        assert!(matches!(m, ClientMessage::LatencyReport(r) if r == good));
        let short = LatencyReport {
            auctions: vec![ok(3)],
            ..good.clone()
        };
        assert!(short.validate().unwrap_err().contains("exactly"));
        let many = LatencyReport {
            auctions: vec![ok(LATENCY_BOUNDS_MS.len() + 1); LatencyReport::MAX_AUCTIONS + 1],
            ..good.clone()
        };
        assert!(many.validate().unwrap_err().contains("at most"));
        let mut huge = good.clone();
        huge.auctions[0].counts[0] = LatencyReport::MAX_SAMPLES;
        assert!(huge.validate().unwrap_err().contains("updates"));
        let vague = LatencyReport {
            clock_error_ms: LatencyReport::MAX_CLOCK_ERROR_MS + 1,
            ..good
        };
        assert!(vague.validate().unwrap_err().contains("clock_error_ms"));
    }

    #[test]
    fn updates_leave_out_what_did_not_change() {
        let u = ServerMessage::Update(Update {
            auction_id: "a1".into(),
            seq: 7,
            event: "bid".into(),
            price: Some(12000),
            ..Default::default()
        });
        assert_eq!(
            u.to_json(),
            r#"{"type":"update","auction_id":"a1","seq":7,"event":"bid","price":12000}"#
        );
    }
}
