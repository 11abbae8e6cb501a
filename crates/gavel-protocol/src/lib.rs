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
pub mod personal;
pub mod schema;
pub mod webhooks;
pub mod ws;

pub use amount::{parse_amount, AmountError, MAX_AMOUNT};
pub use error::{ErrorCode, UnknownErrorCode};
pub use http::*;
pub use log::{KeysResponse, LogEntryView, LogPage, PublicKeyView, Receipt, SignedHead};
pub use personal::{
    MyAuction, MyAuctions, MyStatus, NextStepsView, Notification, NotificationKind,
};
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

/// What a decision can change in an auction's [`AuctionView`]: everything but its
/// description (id, title, description, currency, starting price, increment table, start,
/// original end, reserve and buy-now settings, soft-close settings), which never changes
/// once bidding can start. What a lean `bid_result` carries (`lean: true` on the `bid`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuctionStateView {
    /// The increment at the current price.
    pub increment: i64,
    pub ends_at: i64,
    #[schemars(with = "schema::AuctionStatus")]
    pub status: String,
    pub price: Option<i64>,
    pub leader: Option<UserRef>,
    pub bid_count: u64,
    pub seq: u64,
    pub min_bid: i64,
    pub reserve_met: Option<bool>,
    pub buy_now_available: bool,
    pub closing: Option<ClosingView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub your_max: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_hash: Option<String>,
}

impl AuctionView {
    /// The parts of this view a decision can change.
    pub fn state(&self) -> AuctionStateView {
        AuctionStateView {
            increment: self.increment,
            ends_at: self.ends_at,
            status: self.status.clone(),
            price: self.price,
            leader: self.leader.clone(),
            bid_count: self.bid_count,
            seq: self.seq,
            min_bid: self.min_bid,
            reserve_met: self.reserve_met,
            buy_now_available: self.buy_now_available,
            closing: self.closing.clone(),
            your_max: self.your_max,
            log_hash: self.log_hash.clone(),
        }
    }

    /// This view with `state` merged in: the full view a lean answer stands for.
    pub fn with_state(&self, state: AuctionStateView) -> AuctionView {
        AuctionView {
            increment: state.increment,
            ends_at: state.ends_at,
            status: state.status,
            price: state.price,
            leader: state.leader,
            bid_count: state.bid_count,
            seq: state.seq,
            min_bid: state.min_bid,
            reserve_met: state.reserve_met,
            buy_now_available: state.buy_now_available,
            closing: state.closing,
            your_max: state.your_max,
            log_hash: state.log_hash,
            ..self.clone()
        }
    }
}

impl BidResult {
    /// The lean form of this answer: `state` instead of the full `auction`.
    pub fn lean(mut self) -> BidResult {
        if let Some(a) = self.auction.take() {
            self.state = Some(a.state());
        }
        self
    }
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
    /// The auction as of the moment the bid was decided (absent for `not_found`, and for a
    /// WebSocket bid sent with `lean: true`, which gets `state` instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auction: Option<AuctionView>,
    /// Only in the answer to a WebSocket bid sent with `lean: true` (not for `not_found`):
    /// the parts of the auction a decision can change, as of the moment the bid was decided.
    /// The client merges it into the AuctionView it holds ([`AuctionView::with_state`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<AuctionStateView>,
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
