//! Turns a bid from the wire (HTTP or WebSocket) into an engine call and back.

use crate::auth::{Credential, Principal};
use crate::views;
use crate::AppState;
use axum::http::StatusCode;
use gavel_core::{
    outcome_code, AuctionId, BidKind, BidRequest, Bidder, BidderId, Money, RequestId,
};
use gavel_engine::{BidReply, EngineError};
use gavel_protocol::{parse_amount, BidResult, ErrorCode};
use serde_json::Value;

/// A bid refused before any decision, with its wire error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BidError {
    pub code: ErrorCode,
    pub message: String,
}

impl BidError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        BidError {
            code,
            message: message.into(),
        }
    }
}

/// The answer to a bid that reached a decision (or found no such auction).
pub struct Answer {
    pub result: BidResult,
    /// `200` for an accepted bid, `409` for a rejection, `404` for no such auction.
    pub http_status: StatusCode,
}

/// The parts of a bid message, still unvalidated.
pub struct RawBid<'a> {
    pub auction_id: &'a str,
    pub amount: Option<&'a Value>,
    pub request_id: &'a str,
    pub expected_seq: Option<u64>,
    pub kind: Option<&'a str>,
}

/// Refuses a message that names a bidder: identity comes from the session only.
pub fn check_identity_fields(v: &Value) -> Result<(), BidError> {
    if let Some(obj) = v.as_object() {
        if let Some(f) = gavel_protocol::IDENTITY_FIELDS
            .iter()
            .find(|f| obj.contains_key(**f))
        {
            return Err(BidError::new(
                ErrorCode::IdentityField,
                format!("the field {f:?} is not allowed: the bidder is always the signed-in user"),
            ));
        }
    }
    Ok(())
}

/// Validates and places a bid for `who`. `Ok` carries the result with a `not_found` outcome
/// too; `Err` means nothing was decided.
pub async fn place(state: &AppState, who: &Principal, raw: RawBid<'_>) -> Result<Answer, BidError> {
    let amount = parse_amount(raw.amount).map_err(|e| BidError::new(e.code(), e.to_string()))?;
    let amount =
        Money::new(amount).map_err(|e| BidError::new(ErrorCode::InvalidAmount, e.to_string()))?;
    let request_id = RequestId::parse(raw.request_id)
        .map_err(|e| BidError::new(ErrorCode::InvalidRequestId, e.to_string()))?;
    let kind = match raw.kind {
        None => BidKind::default(),
        Some(k) => k
            .parse::<BidKind>()
            .map_err(|e| BidError::new(ErrorCode::InvalidKind, e.to_string()))?,
    };
    let not_found = || Answer {
        result: BidResult {
            request_id: request_id.to_string(),
            auction_id: raw.auction_id.chars().take(AuctionId::MAX_LEN).collect(),
            outcome: ErrorCode::NotFound.as_str().into(),
            message: "No such auction.".into(),
            auction: None,
            state: None,
            receipt: None,
        },
        http_status: StatusCode::NOT_FOUND,
    };
    if who.credential == Credential::AdminToken {
        return Err(BidError::new(
            ErrorCode::AdminCannotBid,
            "the admin token administers auctions but cannot bid: sign in as a user to bid",
        ));
    }
    if who.expires_at().is_some_and(|e| state.engine.now() >= e) {
        return Err(BidError::new(
            ErrorCode::TokenExpired,
            "your session has expired: refresh or sign in again to bid",
        ));
    }
    let Ok(auction_id) = AuctionId::parse(raw.auction_id) else {
        return Ok(not_found());
    };
    let bidder = Bidder {
        id: BidderId::parse(who.id.as_str())
            .map_err(|e| BidError::new(ErrorCode::Unauthorized, e.to_string()))?,
        name: who.name.as_str().into(),
    };
    if !state.limits.allow_bid(&who.id) {
        // A retry of a request already decided is not a new bid: it gets its first answer
        // whatever the rate, so a client retrying after a lost answer is never told
        // `rate_limited` about a bid that was placed.
        let replayed = match state
            .engine
            .replay(&auction_id, &bidder.id, &request_id)
            .await
        {
            Ok(r) => r,
            Err(e) => return Err(engine_error(e, &auction_id)),
        };
        let Some(reply) = replayed else {
            metrics::counter!("gavel_bids_rate_limited_total").increment(1);
            return Err(BidError::new(
                ErrorCode::RateLimited,
                format!(
                    "too many bids: at most {} per second",
                    state.config.bids_per_second
                ),
            ));
        };
        return Ok(answer(state, &bidder.id, &request_id, reply));
    }
    let req_bidder = bidder.id.clone();
    let req = BidRequest {
        bidder,
        amount,
        kind,
        expected_seq: raw.expected_seq,
    };
    let started = std::time::Instant::now();
    match state.engine.place_bid(&auction_id, &request_id, req).await {
        Ok(reply) => {
            metrics::histogram!("gavel_bid_decision_seconds")
                .record(started.elapsed().as_secs_f64());
            tracing::debug!(auction = %auction_id, bidder = %who.id, outcome = outcome_code(&reply.outcome), "bid decided");
            Ok(answer(state, &req_bidder, &request_id, reply))
        }
        Err(EngineError::NotFound) => Ok(not_found()),
        Err(e) => Err(engine_error(e, &auction_id)),
    }
}

/// The answer to a decided bid (or a replayed one), as `bidder` may see it.
fn answer(state: &AppState, bidder: &BidderId, request_id: &RequestId, reply: BidReply) -> Answer {
    let mut result = views::bid_result(request_id, &reply, bidder, state.engine.now());
    if reply.outcome.is_ok() {
        // Ed25519 signatures are deterministic: a repeated request gets the same receipt.
        result.receipt = gavel_core::chain::Receipt::for_accepted(&reply.auction, bidder)
            .map(|r| Box::new(state.signer.receipt(&r)));
    }
    Answer {
        result,
        http_status: if reply.outcome.is_ok() {
            StatusCode::OK
        } else {
            StatusCode::CONFLICT
        },
    }
}

/// An engine failure as the bidder's error (nothing decided, or outcome unknown).
/// The error for a bid the engine could not decide (or answer), counted in
/// `gavel_bid_errors_total{code}` (the bid error rate alerts watch it).
fn engine_error(e: EngineError, auction_id: &AuctionId) -> BidError {
    let error = engine_error_of(e, auction_id);
    metrics::counter!("gavel_bid_errors_total", "code" => error.code.as_str()).increment(1);
    error
}

fn engine_error_of(e: EngineError, auction_id: &AuctionId) -> BidError {
    match e {
        EngineError::Unavailable(cause) => BidError::new(
            ErrorCode::Unavailable,
            format!("{cause}; nothing was decided, so retrying is safe"),
        ),
        EngineError::OutcomeUnknown(cause) => {
            tracing::warn!(error = %cause, auction = %auction_id, "bid outcome unknown");
            BidError::new(ErrorCode::OutcomeUnknown, format!("{cause}; the bid may have been decided: retry with the same request_id to learn its outcome"))
        }
        e => {
            tracing::error!(error = %e, "bid failed");
            BidError::new(ErrorCode::Internal, "internal error")
        }
    }
}
