//! The HTTP API (JSON) and the embedded web client.

mod assets;
mod auctions;
pub(crate) mod session;

use crate::auth::{AuthError, Principal, Role};
use crate::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gavel_protocol::{ErrorBody, ErrorDetail, TimeResponse};
use std::sync::Arc;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/api/time", get(time))
        .route("/api/session", post(session::create))
        .route("/api/me", get(session::me))
        .route("/api/auctions", get(auctions::list).post(auctions::create))
        .route("/api/auctions/{id}", get(auctions::get_one))
        .route(
            "/api/auctions/{id}/bids",
            get(auctions::history).post(auctions::bid),
        )
        .route("/api/auctions/{id}/cancel", post(auctions::cancel))
        .route("/api/auctions/{id}/end", post(auctions::end_early))
        .route("/ws", get(crate::ws::upgrade))
        .fallback(assets::serve)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn time(State(state): State<Arc<AppState>>) -> Json<TimeResponse> {
    Json(TimeResponse {
        server_time: state.engine.now(),
    })
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Every HTTP error: a status and `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<gavel_engine::EngineError> for ApiError {
    fn from(e: gavel_engine::EngineError) -> Self {
        use gavel_engine::EngineError::*;
        match e {
            NotFound => ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such auction"),
            AlreadyExists(id) => ApiError::new(
                StatusCode::CONFLICT,
                "already_exists",
                format!("auction {id} already exists"),
            ),
            Unavailable(cause) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("{cause}; nothing was decided, so retrying is safe"),
            ),
            OutcomeUnknown(cause) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "outcome_unknown",
                format!("{cause}; the request may have been decided: retry with the same request_id to learn its outcome"),
            ),
            Internal(cause) => ApiError::internal(cause.to_string()),
        }
    }
}

/// JSON body parsing with our error format instead of axum's plain-text rejection.
pub struct JsonBody(pub serde_json::Value);

impl<S: Send + Sync> axum::extract::FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    e.body_text(),
                )
            })?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("malformed JSON: {e}"),
            )
        })
    }
}

/// Deserializes a checked JSON value into a body type, as a 422 on failure.
pub fn typed<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            e.to_string(),
        )
    })
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The signed-in user; rejects the request with 401 otherwise.
pub struct User(pub Principal);

impl FromRequestParts<Arc<AppState>> for User {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::unauthorized("sign in first: send Authorization: Bearer <token>")
        })?;
        state.auth.verify(token).map(User).map_err(|e| match e {
            AuthError::Missing => ApiError::unauthorized("missing token"),
            _ => ApiError::unauthorized("invalid or expired token"),
        })
    }
}

/// An admin; 401 without a valid token, 403 for a non-admin.
pub struct Admin(pub Principal);

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let User(p) = User::from_request_parts(parts, state).await?;
        if p.role != Role::Admin {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "only an admin may do this",
            ));
        }
        Ok(Admin(p))
    }
}
