//! `GET /api/admin/stats`: what this node holds (rooms, hot auctions), for operators and
//! the tests that prove state is bounded.

use super::Admin;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use gavel_protocol::ServerStats;
use std::sync::Arc;

pub async fn get(State(state): State<Arc<AppState>>, _admin: Admin) -> Json<ServerStats> {
    let engine = state.engine.stats();
    Json(ServerStats {
        rooms: state.hub.rooms() as u64,
        hot_auctions: engine.hot_auctions,
        watched_auctions: engine.watched_auctions,
    })
}
