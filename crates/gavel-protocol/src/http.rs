//! HTTP request and response bodies.

use crate::schema;
use crate::{AuctionView, BidView, ErrorDetail, IncrementBandView, SoftCloseView, UserView};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /api/session`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// Display name, 1–40 characters.
    pub name: String,
    /// When it matches the server's admin token, the session gets the `admin` role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SessionResponse {
    pub token: String,
    pub user: UserView,
    pub expires_at: i64,
}

/// `GET /healthz`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// `GET /readyz`: 200 with `ready: true` when the node can take traffic, 503 with
/// `ready: false` and every reason otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Readiness {
    pub ready: bool,
    /// Why the node is not ready (empty when it is).
    pub reasons: Vec<NotReady>,
}

/// One reason a node is not ready.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NotReady {
    pub code: NotReadyCode,
    /// What failed, in words (for logs and operators; not stable).
    pub message: String,
}

/// Why a node is not ready: the one owner of these names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotReadyCode {
    /// The node is shutting down (SIGTERM): it takes no new connections and sends its
    /// WebSocket clients elsewhere.
    Draining,
    /// The authority cannot decide bids: embedded, the engine's archive commits fail;
    /// distributed, Redis does not answer (or cannot load Gavel's scripts).
    AuthorityUnavailable,
    /// The archive does not answer: SQLite (embedded) or PostgreSQL (distributed).
    ArchiveUnavailable,
}

impl NotReadyCode {
    /// Every code, in declaration order.
    pub const ALL: &'static [NotReadyCode] = &[
        NotReadyCode::Draining,
        NotReadyCode::AuthorityUnavailable,
        NotReadyCode::ArchiveUnavailable,
    ];

    /// The code on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            NotReadyCode::Draining => "draining",
            NotReadyCode::AuthorityUnavailable => "authority_unavailable",
            NotReadyCode::ArchiveUnavailable => "archive_unavailable",
        }
    }
}

impl std::str::FromStr for NotReadyCode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        NotReadyCode::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "not a readiness code: {:?}",
                    s.chars().take(40).collect::<String>()
                )
            })
    }
}

/// `GET /api/time`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct TimeResponse {
    pub server_time: i64,
}

/// `GET /api/auctions`: one page.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct AuctionList {
    pub auctions: Vec<AuctionView>,
    pub server_time: i64,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// `GET /api/search`: one page of the auctions a search finds, in its order.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SearchResults {
    pub auctions: Vec<AuctionView>,
    pub server_time: i64,
    /// Pass as `offset` (with the same query) for the next page; `null` on the last page.
    #[serde(default)]
    pub next_offset: Option<u32>,
}

/// One category with the number of auctions in it that have not closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CategoryCount {
    pub category: String,
    pub live: u64,
}

/// `GET /api/categories`: the categories of auctions not closed yet, by name.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct CategoryList {
    pub categories: Vec<CategoryCount>,
}

/// `GET /api/admin/stats` (admin): what this node holds, for operators and the
/// bounded-state (soak) tests.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ServerStats {
    /// Fan-out rooms on this node (auctions watched now or within the last few seconds).
    pub rooms: u64,
    /// Auctions whose state the engine keeps in this process (embedded mode).
    pub hot_auctions: Option<u64>,
    /// Auctions this node's engine follows for its watchers (where tracked).
    pub watched_auctions: Option<u64>,
}

/// `GET /api/admin/latency` (admin): delivery latency on this node, decision → frame
/// written (server) and decision → received (as clients report it), overall and for the
/// auctions with the most watchers here.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct LatencyStats {
    /// Upper bounds of the buckets (milliseconds, inclusive); `counts` have one more entry
    /// for everything slower.
    pub bounds_ms: Vec<u64>,
    pub overall: LatencyPair,
    /// The watched auctions with the most watchers on this node, most first.
    pub auctions: Vec<AuctionLatencyStats>,
}

/// Server-measured and client-reported latency of one scope.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct LatencyPair {
    /// Decision → frame written to the socket, for every update this node sent.
    pub server: LatencyHistogram,
    /// Decision → received, as the clients' reports say.
    pub client: LatencyHistogram,
    /// Latency reports received.
    pub reports: u64,
    /// The largest clock error (half a round trip) any of those reports claimed, ms.
    pub max_clock_error_ms: u64,
}

/// One latency histogram.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct LatencyHistogram {
    /// Per bucket, not cumulative.
    pub counts: Vec<u64>,
    pub count: u64,
    /// The bucket bounds under which half / 95 % / 99 % of the updates arrived (`null`
    /// without samples, or when that share was slower than the last bound).
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    pub p99_ms: Option<u64>,
}

/// The latency of one auction's updates.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct AuctionLatencyStats {
    pub auction_id: String,
    /// Connections watching it on this node.
    pub watchers: u64,
    pub latency: LatencyPair,
}

/// `GET /api/auctions/{id}/bids`, newest first.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct BidHistory {
    pub bids: Vec<BidView>,
    /// Pass as `before_seq` to get the next (older) page; `null` on the last page.
    pub next_before_seq: Option<u64>,
}

/// `POST /api/auctions` (admin). Amounts are integer minor units.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAuction {
    /// Optional id (1–64 of `A-Za-z0-9-_.:`); generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Catalogue section: 1–40 characters of `a-z`, `0-9`, `-` (e.g. `watches`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// ISO 4217 code; defaults to `USD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[schemars(schema_with = "schema::amount")]
    pub starting_price: Value,
    /// Fixed increment (minor units). Give this or `increment_table`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_amount")]
    pub increment: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub increment_table: Option<Vec<IncrementBandView>>,
    /// Start (server UTC ms); defaults to now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<i64>,
    /// End (server UTC ms). Give this or `duration_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_amount")]
    pub reserve: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_amount")]
    pub buy_now: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_close: Option<SoftCloseView>,
}

/// `POST /api/auctions/{id}/bids`. The bidder is the session's user, never a field here.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceBid {
    #[schemars(schema_with = "schema::amount")]
    pub amount: Value,
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_seq: Option<u64>,
    /// `plain` (default), `max` (proxy bid up to `amount`) or `buy_now`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<schema::BidKind>")]
    pub kind: Option<String>,
}

/// Every HTTP error: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// `POST /api/auctions/{id}/cancel` and `/end` (admin).
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct AdminAction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_readiness_code_reads_back_and_is_written_as_its_name() {
        for code in NotReadyCode::ALL {
            assert_eq!(code.as_str().parse::<NotReadyCode>(), Ok(*code));
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::from(code.as_str()));
        }
        assert!("ready".parse::<NotReadyCode>().is_err());
    }
}
