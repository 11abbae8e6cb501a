//! `/api/webhooks` (admin): endpoints (create, list, delete, rotate the secret, send a test
//! event) and deliveries (pending, delivered, failed). See docs/integration.md#webhooks.

use super::{Admin, ApiError, JsonBody, Path, Query, RequestBody};
use crate::webhooks::{check_url, signing::Secret};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use gavel_archive::webhooks::{
    test_event, DeliveryRecord, DeliveryStatus, EndpointSource, WebhookEndpoint,
};
use gavel_archive::ArchiveError;
use gavel_protocol::{
    CreateWebhook, ErrorCode, WebhookDeliveryList, WebhookDeliveryView, WebhookList,
    WebhookTestQueued, WebhookView, WebhookWithSecret,
};
use serde::Deserialize;
use std::sync::Arc;

impl RequestBody for CreateWebhook {}

/// Most deliveries one listing returns.
const MAX_LIMIT: u32 = 500;

fn view(e: &WebhookEndpoint) -> WebhookView {
    WebhookView {
        id: e.id.clone(),
        url: e.url.clone(),
        bid_events: e.bid_events,
        source: e.source.as_str().into(),
        description: e.description.clone(),
        created_at: e.created_at,
        disabled_at: e.disabled_at,
        disabled_reason: e.disabled_reason.clone(),
    }
}

fn delivery_view(d: DeliveryRecord) -> WebhookDeliveryView {
    WebhookDeliveryView {
        event_id: d.event_id,
        event_type: d.event_type,
        endpoint_id: d.endpoint_id,
        status: d.status.as_str().into(),
        attempts: d.attempts,
        next_attempt_at: d.next_attempt_at,
        last_attempt_at: d.last_attempt_at,
        last_status: d.last_status,
        last_error: d.last_error,
        finished_at: d.finished_at,
        created_at: d.created_at,
    }
}

fn storage(e: ArchiveError) -> ApiError {
    tracing::warn!(error = %e, "webhook admin request: archive failed");
    ApiError::new(
        ErrorCode::Unavailable,
        "the archive cannot be reached; nothing was changed, so retrying is safe",
    )
}

async fn find(state: &AppState, id: &str) -> Result<WebhookEndpoint, ApiError> {
    state
        .archive
        .webhook_endpoints()
        .await
        .map_err(storage)?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such webhook endpoint"))
}

fn from_config(e: &WebhookEndpoint) -> Result<(), ApiError> {
    if e.source == EndpointSource::Config {
        return Err(ApiError::new(
            ErrorCode::WebhookFromConfig,
            "this endpoint comes from --webhook/--webhook-secret: change the configuration instead",
        ));
    }
    Ok(())
}

/// `GET /api/webhooks`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    _: Admin,
) -> Result<Json<WebhookList>, ApiError> {
    let endpoints = state.archive.webhook_endpoints().await.map_err(storage)?;
    Ok(Json(WebhookList {
        endpoints: endpoints.iter().map(view).collect(),
    }))
}

/// `POST /api/webhooks` → 201 with the secret (shown only here and on rotation).
pub async fn create(
    State(state): State<Arc<AppState>>,
    _: Admin,
    JsonBody(body): JsonBody<CreateWebhook>,
) -> Result<(StatusCode, Json<WebhookWithSecret>), ApiError> {
    check_url(&body.url).map_err(|m| ApiError::new(ErrorCode::InvalidWebhook, m))?;
    let secret = match body.secret {
        Some(s) => {
            Secret::parse(&s)
                .map_err(|e| ApiError::new(ErrorCode::InvalidWebhook, e.to_string()))?;
            s
        }
        None => Secret::generate(),
    };
    if body.description.chars().count() > 500 {
        return Err(ApiError::new(
            ErrorCode::InvalidWebhook,
            "description must be at most 500 characters",
        ));
    }
    let endpoint = WebhookEndpoint {
        id: format!("wh_{}", uuid::Uuid::new_v4().simple()),
        url: body.url,
        secret: secret.clone(),
        bid_events: body.bid_events,
        source: EndpointSource::Api,
        description: body.description,
        created_at: state.engine.now(),
        disabled_at: None,
        disabled_reason: None,
    };
    state
        .archive
        .put_webhook_endpoint(&endpoint)
        .await
        .map_err(storage)?;
    tracing::info!(endpoint = %endpoint.id, url = %endpoint.url, "webhook endpoint created");
    Ok((
        StatusCode::CREATED,
        Json(WebhookWithSecret {
            endpoint: view(&endpoint),
            secret,
        }),
    ))
}

/// `DELETE /api/webhooks/{id}` → 204; its pending deliveries go with it.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let endpoint = find(&state, &id).await?;
    from_config(&endpoint)?;
    state
        .archive
        .delete_webhook_endpoint(&id)
        .await
        .map_err(storage)?;
    tracing::info!(endpoint = %id, "webhook endpoint deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/webhooks/{id}/rotate`: a new secret, used from the next attempt on.
pub async fn rotate(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<WebhookWithSecret>, ApiError> {
    let mut endpoint = find(&state, &id).await?;
    from_config(&endpoint)?;
    let secret = Secret::generate();
    if !state
        .archive
        .set_webhook_secret(&id, &secret)
        .await
        .map_err(storage)?
    {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "no such webhook endpoint",
        ));
    }
    endpoint.secret = secret.clone();
    tracing::info!(endpoint = %id, "webhook secret rotated");
    Ok(Json(WebhookWithSecret {
        endpoint: view(&endpoint),
        secret,
    }))
}

/// `POST /api/webhooks/{id}/enable`: sends to an endpoint disabled by a 410 again (events
/// from now on; the deliveries failed by the 410 stay failed).
pub async fn enable(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    let mut endpoint = find(&state, &id).await?;
    // Storing it again clears `disabled_at` (see `Archive::put_webhook_endpoint`).
    state
        .archive
        .put_webhook_endpoint(&endpoint)
        .await
        .map_err(storage)?;
    endpoint.disabled_at = None;
    endpoint.disabled_reason = None;
    tracing::info!(endpoint = %id, "webhook endpoint enabled");
    Ok(Json(view(&endpoint)))
}

/// `POST /api/webhooks/{id}/test` → 202: a `webhook.test` event for this endpoint only.
pub async fn send_test(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<WebhookTestQueued>), ApiError> {
    let event = test_event(
        format!("msg_test_{}", uuid::Uuid::new_v4().simple()),
        &id,
        state.engine.now(),
    );
    if !state
        .archive
        .enqueue_webhook_event(&event, &id)
        .await
        .map_err(storage)?
    {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "no such webhook endpoint",
        ));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(WebhookTestQueued { event_id: event.id }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    endpoint: Option<String>,
    status: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/webhooks/deliveries?endpoint=&status=&limit=`, newest first.
pub async fn deliveries(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Query(q): Query<DeliveryQuery>,
) -> Result<Json<WebhookDeliveryList>, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(str::parse::<DeliveryStatus>)
        .transpose()
        .map_err(|e| ApiError::new(ErrorCode::InvalidStatus, e))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidLimit,
            format!("limit must be 1 to {MAX_LIMIT}"),
        ));
    }
    let found = state
        .archive
        .webhook_deliveries(q.endpoint.as_deref(), status, limit)
        .await
        .map_err(storage)?;
    Ok(Json(WebhookDeliveryList {
        deliveries: found.into_iter().map(delivery_view).collect(),
    }))
}
