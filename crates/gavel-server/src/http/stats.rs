//! `GET /api/admin/stats`: what this node holds (rooms, hot auctions), for operators and
//! the tests that prove state is bounded. `GET /api/admin/latency`: delivery latency on this
//! node, overall and for the most watched auctions (`crate::latency`).

use super::{Admin, ApiError, Query};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use gavel_protocol::{
    AuctionLatencyStats, ErrorCode, LatencyStats, ServerStats, LATENCY_BOUNDS_MS,
};
use serde::Deserialize;
use std::sync::Arc;

/// Auctions `GET /api/admin/latency` lists by default, and at most.
pub const LATENCY_DEFAULT_LIMIT: usize = 10;
pub const LATENCY_MAX_LIMIT: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyQuery {
    limit: Option<usize>,
}

pub async fn latency(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
    Query(q): Query<LatencyQuery>,
) -> Result<Json<LatencyStats>, ApiError> {
    let limit = q.limit.unwrap_or(LATENCY_DEFAULT_LIMIT);
    if !(1..=LATENCY_MAX_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidLimit,
            format!("limit must be 1 to {LATENCY_MAX_LIMIT}"),
        ));
    }
    let auctions = state
        .hub
        .most_watched(limit)
        .into_iter()
        .map(|(id, room)| AuctionLatencyStats {
            auction_id: id.to_string(),
            watchers: room.watchers(),
            latency: room.latency().view(),
        })
        .collect();
    Ok(Json(LatencyStats {
        bounds_ms: LATENCY_BOUNDS_MS.to_vec(),
        overall: crate::latency::OVERALL.view(),
        auctions,
    }))
}

pub async fn get(State(state): State<Arc<AppState>>, _admin: Admin) -> Json<ServerStats> {
    let engine = state.engine.stats();
    Json(ServerStats {
        rooms: state.hub.rooms() as u64,
        hot_auctions: engine.hot_auctions,
        watched_auctions: engine.watched_auctions,
    })
}
