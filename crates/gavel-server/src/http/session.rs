//! Guest sign-in and "who am I".

use super::{ApiError, JsonBody, User};
use crate::auth::{AuthError, Credential, Principal, Role};
use crate::AppState;
use axum::extract::{ConnectInfo, State};
use axum::Json;
use gavel_core::text::NameError;
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
    let checked = gavel_core::text::display_name(&req.name);
    let role = match req.admin_token.as_deref() {
        Some(t) => match state.auth.check_admin_token(t, addr.ip()) {
            Ok(()) => Role::Admin,
            Err(AuthError::Invalid) => {
                return Err(ApiError::new(ErrorCode::Forbidden, "wrong admin token"))
            }
            Err(e) => return Err(e.into()),
        },
        None if !state.config.guest_sessions_allowed() => {
            return Err(ApiError::new(
                ErrorCode::GuestSessionsDisabled,
                "guest sign-in is switched off on this server",
            ))
        }
        None => Role::Bidder,
    };
    // Names that read as the operator's are reserved for the operator: someone who holds
    // the admin token may sign in as "Admin"; a guest may not.
    let name = match checked {
        Ok(name) => name,
        Err(NameError::Reserved(name)) if role == Role::Admin => name,
        Err(e) => return Err(ApiError::new(ErrorCode::InvalidName, e.to_string())),
    };
    // Beside the marketplace's users (named by their provider), a guest is marked as one,
    // so "Alice (guest)" never passes for the marketplace's Alice.
    let name = if role == Role::Bidder && state.identity.is_some() {
        format!("{name}{}", crate::identity::GUEST_SUFFIX)
    } else {
        name
    };
    let principal = Principal {
        id: format!("u-{}", uuid::Uuid::now_v7().simple()),
        name,
        role,
        credential: Credential::Session { expires_at: 0 },
    };
    tracing::info!(user = %principal.id, role = role.as_str(), "session created");
    Ok(Json(issue(&state, &principal)))
}

/// `POST /api/session/refresh`: a valid (not yet expired) session token buys a new one for
/// the same user, with a new expiry. The raw admin token is not a session and cannot be.
pub async fn refresh(
    State(state): State<Arc<AppState>>,
    User(p): User,
) -> Result<Json<SessionResponse>, ApiError> {
    if let Credential::External { .. } = p.credential {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "an external token is renewed by its identity provider, not by Gavel",
        ));
    }
    if p.credential == Credential::AdminToken {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "the admin token is not a session: sign in with it (POST /api/session) instead",
        ));
    }
    tracing::debug!(user = %p.id, "session refreshed");
    Ok(Json(issue(&state, &p)))
}

fn issue(state: &AppState, p: &Principal) -> SessionResponse {
    let (token, expires_at) = state.auth.issue(p, state.engine.now());
    SessionResponse {
        token,
        user: user_view(p),
        expires_at,
    }
}

pub async fn me(User(p): User) -> Json<UserView> {
    Json(user_view(&p))
}
