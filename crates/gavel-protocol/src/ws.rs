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
    },
    /// Clock sync: the server echoes `client_time` with its own time.
    Ping {
        client_time: f64,
    },
}

/// Server → client.
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
        "bid",
        "ping",
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
