//! The verifiable bid log over HTTP: `GET /api/auctions/{id}/log` (paged entries and the
//! signed head) and `GET /api/keys` (the public key receipts and heads are signed with).

use super::ApiError;
use crate::http::auctions::load;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use gavel_archive::LogRecord;
use gavel_core::chain;
use gavel_protocol::{ErrorCode, KeysResponse, LogEntryView, LogPage, PublicKeyView};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
pub struct LogQuery {
    limit: Option<u32>,
    after_seq: Option<u64>,
}

/// The wire form of a stored entry: the same fields, names spelled by their enums.
pub fn entry_view(r: &LogRecord) -> LogEntryView {
    let e = &r.entry;
    let id = |b: &gavel_core::BidderId| b.to_string();
    LogEntryView {
        seq: e.seq,
        at: e.at,
        kind: e.kind.as_str().into(),
        bidder: e.bidder.as_ref().map(id),
        amount: e.amount.map(|m| m.minor_units()),
        price: e.price.map(|m| m.minor_units()),
        leader: e.leader.as_ref().map(id),
        bid_count: e.bid_count,
        ends_at: e.ends_at,
        extended: e.extended,
        close_reason: e.close_reason.map(|r| r.as_str().into()),
        winner: e.winner.as_ref().map(id),
        final_price: e.final_price.map(|m| m.minor_units()),
        currency: e.currency.map(|c| c.to_string()),
        starting_price: e.starting_price.map(|m| m.minor_units()),
        starts_at: e.starts_at,
        buy_now: e.buy_now.map(|m| m.minor_units()),
        hash: r.hash.to_hex(),
    }
}

pub async fn log(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Json<LogPage>, ApiError> {
    let a = load(&state, &id).await?;
    let limit = q.limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidLimit,
            "limit must be 1 to 1000",
        ));
    }
    let records = state
        .archive
        .log(&a.id, q.after_seq.unwrap_or(0), limit + 1)
        .await
        .map_err(ApiError::internal)?;
    let more = records.len() > limit as usize;
    let entries: Vec<LogEntryView> = records
        .iter()
        .take(limit as usize)
        .map(entry_view)
        .collect();
    let next_after_seq = if more {
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    let head = chain::head(&a).map(|h| state.signer.head(&a.id, a.state.seq, &h));
    Ok(Json(LogPage {
        auction_id: a.id.to_string(),
        entries,
        next_after_seq,
        head,
    }))
}

pub async fn keys(State(state): State<Arc<AppState>>) -> Json<KeysResponse> {
    Json(KeysResponse {
        keys: vec![PublicKeyView {
            key_id: state.signer.key_id().to_string(),
            algorithm: "ed25519".into(),
            public_key: chain::hex(state.signer.public_key().as_bytes()),
        }],
    })
}
