//! The HTTP API (JSON) and the embedded web client.

mod assets;
mod auctions;
mod log;
pub mod openapi;
pub mod origin;
pub mod serve;
pub(crate) mod session;
mod stats;
mod webhooks;

use crate::auth::{AuthError, Principal, Role};
use crate::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use gavel_protocol::{ErrorBody, ErrorCode, ErrorDetail, Health, Readiness, TimeResponse};
use std::sync::Arc;
use std::time::Duration;

pub fn router(state: Arc<AppState>) -> Router {
    routes()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            origin::check,
        ))
        .with_state(state)
}

/// Every route, before the state is given (`tests/api/openapi.rs` reads the paths from it).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/api/openapi.json", get(openapi::serve))
        .route("/api/time", get(time))
        .route("/api/session", post(session::create))
        .route("/api/session/refresh", post(session::refresh))
        .route("/api/me", get(session::me))
        .route("/api/auctions", get(auctions::list).post(auctions::create))
        .route("/api/search", get(auctions::search))
        .route("/api/categories", get(auctions::categories))
        .route("/api/auctions/{id}", get(auctions::get_one))
        .route(
            "/api/auctions/{id}/bids",
            get(auctions::history).post(auctions::bid),
        )
        .route("/api/auctions/{id}/log", get(log::log))
        .route("/api/keys", get(log::keys))
        .route("/api/auctions/{id}/cancel", post(auctions::cancel))
        .route("/api/auctions/{id}/end", post(auctions::end_early))
        .route("/api/admin/stats", get(stats::get))
        .route("/api/admin/latency", get(stats::latency))
        .route("/api/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/api/webhooks/deliveries", get(webhooks::deliveries))
        .route("/api/webhooks/{id}", delete(webhooks::delete))
        .route("/api/webhooks/{id}/rotate", post(webhooks::rotate))
        .route("/api/webhooks/{id}/enable", post(webhooks::enable))
        .route("/api/webhooks/{id}/test", post(webhooks::send_test))
        .route("/ws", get(crate::ws::upgrade))
        .fallback(assets::serve)
        .method_not_allowed_fallback(method_not_allowed)
        // Enforced where a body is read (`JsonBody`), so an oversized body gets our JSON 413.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// The largest request body read, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// 200 when the node should get traffic, 503 with every reason otherwise
/// (`crate::readiness`).
async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Readiness>) {
    let r = crate::readiness::check(&state).await;
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(r))
}

async fn time(State(state): State<Arc<AppState>>) -> Json<TimeResponse> {
    Json(TimeResponse {
        server_time: state.engine.now(),
    })
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], {
        let mut text = state.metrics.render();
        crate::latency::render(&mut text);
        text
    })
}

/// Every HTTP error: `{"error": {"code", "message"}}` with the code's own status.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "request failed");
        Self::new(ErrorCode::Internal, "internal error")
    }

    /// The HTTP status of the code.
    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }
}

/// The HTTP status that goes with a wire error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        (status, Json(body)).into_response()
    }
}

impl From<gavel_engine::EngineError> for ApiError {
    fn from(e: gavel_engine::EngineError) -> Self {
        use gavel_engine::EngineError::*;
        match e {
            NotFound => ApiError::new(ErrorCode::NotFound, "no such auction"),
            AlreadyExists(id) => {
                ApiError::new(ErrorCode::AlreadyExists, format!("auction {id} already exists"))
            }
            Unavailable(cause) => ApiError::new(
                ErrorCode::Unavailable,
                format!("{cause}; nothing was decided, so retrying is safe"),
            ),
            OutcomeUnknown(cause) => ApiError::new(
                ErrorCode::OutcomeUnknown,
                format!("{cause}; the request may have been decided: retry with the same request_id to learn its outcome"),
            ),
            Internal(cause) => ApiError::internal(cause.to_string()),
        }
    }
}

/// A request body type: parsed strictly (unknown fields, repeated keys and wrong types are
/// `invalid_message`), after an optional look at the raw JSON for what deserves its own code.
pub trait RequestBody: serde::de::DeserializeOwned {
    /// Checks the parsed JSON before the body is read into its type.
    fn check(_raw: &serde_json::Value) -> Result<(), ApiError> {
        Ok(())
    }
}

impl RequestBody for gavel_protocol::SessionRequest {}
impl RequestBody for gavel_protocol::CreateAuction {}
impl RequestBody for gavel_protocol::PlaceBid {
    fn check(raw: &serde_json::Value) -> Result<(), ApiError> {
        crate::bidding::check_identity_fields(raw).map_err(ApiError::from)
    }
}

/// A JSON body with our error format instead of axum's plain-text rejections: `413
/// body_too_large` over the limit, `400 bad_json` if it is not JSON, `422 invalid_message`
/// if it is not this body (unknown or repeated fields included).
pub struct JsonBody<T>(pub T);

impl<T: RequestBody> axum::extract::FromRequest<Arc<AppState>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(
        req: axum::extract::Request,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let too_large = || {
            ApiError::new(
                ErrorCode::BodyTooLarge,
                format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
            )
        };
        // Refused before reading when the length is announced: nobody waits for a body
        // that would be refused anyway.
        let announced = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if announced.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err(too_large());
        }
        // A client that stops sending its body holds a connection: it gets a deadline.
        let limit = Duration::from_secs(state.config.http_body_timeout_secs.max(1));
        let read = axum::body::Bytes::from_request(req, state);
        let bytes = tokio::time::timeout(limit, read)
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::RequestTimeout,
                    format!(
                        "the request body did not arrive within {}s",
                        limit.as_secs()
                    ),
                )
            })?
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    ApiError::new(ErrorCode::BadRequest, e.body_text())
                }
            })?;
        let raw: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::new(ErrorCode::BadJson, format!("malformed JSON: {e}")))?;
        T::check(&raw)?;
        // Read again from the bytes, not from `raw`: a JSON value keeps only the last of
        // repeated keys, while reading into the type sees (and refuses) every one.
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::new(ErrorCode::InvalidMessage, e.to_string()))
    }
}

/// A query string read into `T`, refused as `400 invalid_query` (JSON) when it does not fit.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        axum::extract::Query::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(q)| Query(q))
            .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))
    }
}

/// Path parameters, refused as `400 bad_request` (JSON) when they cannot be read (a
/// percent-encoded byte that is not UTF-8, such as `%ff`).
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(p)| Path(p))
            .map_err(|e| ApiError::new(ErrorCode::BadRequest, e.body_text()))
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Secret(_) | AuthError::Weak(_) => ApiError::internal(e),
            AuthError::Invalid => ApiError::new(e.code(), "invalid token: sign in again"),
            _ => ApiError::new(e.code(), e.to_string()),
        }
    }
}

/// The peer's address (the server is always served with connect info).
pub fn client_ip(parts: &Parts) -> std::net::IpAddr {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |c| c.0.ip())
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
        let ip = client_ip(parts);
        state
            .authenticate(token, ip, state.engine.now())
            .await
            .map(User)
            .map_err(ApiError::from)
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
                ErrorCode::Forbidden,
                "only an admin may do this",
            ));
        }
        Ok(Admin(p))
    }
}
