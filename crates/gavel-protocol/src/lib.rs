//! Gavel's wire types: HTTP bodies and WebSocket messages (JSON).
//!
//! Shared by the server, the load generator and the tests so they cannot drift. Money is
//! always an integer number of minor units; times are server UTC milliseconds.
//! `docs/protocol.md` documents every message with an example.

pub mod amount;
#[cfg(feature = "doc-examples")]
pub mod doc_examples;
pub mod error;
pub mod http;
pub mod log;
pub mod schema;
pub mod webhooks;
pub mod ws;

pub use amount::{parse_amount, AmountError, MAX_AMOUNT};
pub use error::{ErrorCode, UnknownErrorCode};
pub use http::*;
pub use log::{KeysResponse, LogEntryView, LogPage, PublicKeyView, Receipt, SignedHead};
pub use webhooks::*;
pub use ws::*;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A user as others see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserRef {
    pub id: String,
    pub name: String,
}

/// The signed-in user, with their role (`bidder` or `admin`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserView {
    pub id: String,
    pub name: String,
    /// `bidder` or `admin`.
    pub role: String,
}

/// The final result of an auction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClosingView {
    /// `ended`, `buy_now`, `ended_early` or `cancelled`.
    #[schemars(with = "schema::CloseReason")]
    pub reason: String,
    pub closed_at: i64,
    pub winner: Option<UserRef>,
    pub final_price: Option<i64>,
}

/// One increment band: from `from` (minor units, inclusive) the increment is `increment`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IncrementBandView {
    pub from: i64,
    pub increment: i64,
}

/// Soft-close settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SoftCloseView {
    pub window_ms: i64,
    pub extend_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_extension_ms: Option<i64>,
}

/// Full public state of an auction (HTTP bodies and WebSocket snapshots).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuctionView {
    pub id: String,
    pub title: String,
    pub description: String,
    /// The catalogue section (a slug such as `watches`); absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub currency: String,
    pub starting_price: i64,
    /// The increment at the current price.
    pub increment: i64,
    /// Present when the auction uses a tiered increment table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub increment_table: Option<Vec<IncrementBandView>>,
    pub starts_at: i64,
    /// Current end time (soft close may have moved it).
    pub ends_at: i64,
    /// End time the auction was created with.
    pub original_ends_at: i64,
    /// `scheduled`, `open` or `closed`, by the server's clock.
    #[schemars(with = "schema::AuctionStatus")]
    pub status: String,
    /// Current price; `null` before the first bid.
    pub price: Option<i64>,
    pub leader: Option<UserRef>,
    pub bid_count: u64,
    pub seq: u64,
    /// Lowest amount a new bid may have now.
    pub min_bid: i64,
    pub has_reserve: bool,
    /// `null` without a reserve; otherwise whether the price has reached it.
    pub reserve_met: Option<bool>,
    pub buy_now: Option<i64>,
    pub buy_now_available: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_close: Option<SoftCloseView>,
    pub closing: Option<ClosingView>,
    /// The viewer's own proxy maximum, only in answers to the leader themself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub your_max: Option<i64>,
    /// Once closed: the final hash of the auction's verifiable log (hex; see
    /// `GET /api/auctions/{id}/log`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_hash: Option<String>,
}

/// One entry of the public bid history. Never carries a proxy maximum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BidView {
    pub seq: u64,
    pub bidder: UserRef,
    pub amount: i64,
    /// `bid`, `auto` (placed for a proxy maximum) or `buy_now`.
    #[schemars(with = "schema::EntryKind")]
    pub kind: String,
    pub at: i64,
}

/// The answer to a bid, over HTTP or WebSocket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BidResult {
    pub request_id: String,
    pub auction_id: String,
    /// `accepted`, or a rejection code (`outbid`, `stale`, `already_leading`, `not_open`,
    /// `closed`, `not_found`, `buy_now_unavailable`, `buy_now_price`, `max_not_raised`).
    #[schemars(with = "schema::BidOutcome")]
    pub outcome: String,
    pub message: String,
    /// The auction as of the moment the bid was decided (absent for `not_found`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auction: Option<AuctionView>,
    /// For `accepted`: the signed receipt (see `docs/verification.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Box<Receipt>>,
}

/// The error body of every failed HTTP request, and the fields of a WebSocket `error`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}
