//! Guest sign-in and "who am I".

use super::{ApiError, JsonBody, User};
use crate::auth::{Principal, Role};
use crate::AppState;
use axum::extract::{ConnectInfo, State};
use axum::Json;
use gavel_protocol::{ErrorCode, SessionRequest, SessionResponse, UserView};
use std::net::SocketAddr;
use std::sync::Arc;

pub fn user_view(p: &Principal) -> UserView {
    UserView {
        id: p.id.clone(),
        name: p.name.clone(),
        role: p.role.as_str().into(),
    }
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    JsonBody(req): JsonBody<SessionRequest>,
) -> Result<Json<SessionResponse>, ApiError> {
    if !state.limits.allow_session(addr.ip()) {
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            "too many sign-ins from this address; try again in a minute",
        ));
    }
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 40 || name.chars().any(char::is_control) {
        return Err(ApiError::new(
            ErrorCode::InvalidName,
            "name must be 1 to 40 printable characters",
        ));
    }
    let role = match req.admin_token.as_deref() {
        Some(t) if state.auth.is_admin_token(t) => Role::Admin,
        Some(_) => return Err(ApiError::new(ErrorCode::Forbidden, "wrong admin token")),
        None if !state.config.guest_sessions => {
            return Err(ApiError::new(
                ErrorCode::GuestSessionsDisabled,
                "guest sign-in is switched off on this server",
            ))
        }
        None => Role::Bidder,
    };
    let principal = Principal {
        id: format!("u-{}", uuid::Uuid::now_v7().simple()),
        name: name.to_string(),
        role,
    };
    let (token, expires_at) = state.auth.issue(&principal, state.engine.now());
    tracing::info!(user = %principal.id, role = role.as_str(), "session created");
    Ok(Json(SessionResponse {
        token,
        user: user_view(&principal),
        expires_at,
    }))
}

pub async fn me(User(p): User) -> Json<UserView> {
    Json(user_view(&p))
}
