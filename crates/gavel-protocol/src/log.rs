//! The verifiable bid log on the wire: `GET /api/auctions/{id}/log`, signed receipts in
//! accepted bid results, and the server's public keys (`GET /api/keys`).
//! `docs/verification.md` explains how to check them; `gavel verify` does it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A signed receipt for an accepted bid: proof that the server accepted `bidder_id`'s bid
/// at `seq`, leading at `amount`, at `at`, with the auction's log hash `hash` after it.
/// `signature` is Ed25519 (hex) by the key `key_id` over the bytes documented in
/// `docs/verification.md`. Never carries a proxy maximum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Receipt {
    pub auction_id: String,
    pub seq: u64,
    /// The price the bidder leads at after the bid (minor units).
    pub amount: i64,
    pub currency: String,
    pub bidder_id: String,
    /// Server UTC ms of the change.
    pub at: i64,
    /// hash_seq of the auction's log, 64 lowercase hex digits.
    pub hash: String,
    /// Which of the server's keys signed it (see `GET /api/keys`).
    pub key_id: String,
    /// Ed25519 signature, 128 hex digits.
    pub signature: String,
}

/// One entry of an auction's log, with its chain hash. The fields are those of the
/// canonical encoding (`docs/verification.md`); absent ones are not part of this kind of
/// entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogEntryView {
    pub seq: u64,
    /// Server UTC ms of the change.
    pub at: i64,
    /// `created`, `opened`, `bid`, `auto`, `buy_now`, `max_raised` or `closed`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bidder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    pub bid_count: u64,
    pub ends_at: i64,
    #[serde(default)]
    pub extended: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_price: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_price: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buy_now: Option<i64>,
    /// hash_seq = SHA-256(hash_{seq-1} ‖ canonical encoding of this entry), hex.
    pub hash: String,
}

/// The head of an auction's log as the authority holds it, signed: `hash` is hash_seq.
/// `signature` is Ed25519 (hex) by `key_id` over the bytes documented in
/// `docs/verification.md`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SignedHead {
    pub auction_id: String,
    pub seq: u64,
    pub hash: String,
    pub key_id: String,
    pub signature: String,
}

/// `GET /api/auctions/{id}/log?after_seq=N&limit=M`: entries with `seq > after_seq`, oldest
/// first. `next_after_seq` is set when more entries may follow (pass it as `after_seq`).
/// `head` is the authority's current head, signed; the entries served end there once the
/// archive has them all (in distributed mode the drainer writes them shortly after).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogPage {
    pub auction_id: String,
    pub entries: Vec<LogEntryView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<SignedHead>,
}

/// One public key of the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PublicKeyView {
    /// Names the key in receipts and heads: the first 16 hex digits of SHA-256(public key).
    pub key_id: String,
    /// Always `ed25519`.
    pub algorithm: String,
    /// The 32-byte public key, hex.
    pub public_key: String,
}

/// `GET /api/keys`: the keys receipts and log heads are signed with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeysResponse {
    pub keys: Vec<PublicKeyView>,
}
