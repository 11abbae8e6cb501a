//! The webhook admin API's bodies (`/api/webhooks`, admin only). The events themselves are
//! described in docs/integration.md#webhooks (they are built by `gavel_archive::webhooks`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `POST /api/webhooks`: a new endpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Absolute `http` or `https` URL the events are posted to.
    pub url: String,
    /// `whsec_` + base64 of 24 to 64 bytes; generated when absent (and returned once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Also send `bid.accepted` (one event per accepted bid).
    #[serde(default)]
    pub bid_events: bool,
    #[serde(default)]
    pub description: String,
}

/// An endpoint as listed (never with its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub bid_events: bool,
    /// `config` (from `--webhook`, managed by the configuration) or `api`.
    pub source: String,
    pub description: String,
    pub created_at: i64,
    /// Set when the receiver answered 410 Gone; nothing more is sent to it.
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
}

/// `POST /api/webhooks` and `POST /api/webhooks/{id}/rotate`: the endpoint and its
/// secret (the only answers that ever show it).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct WebhookWithSecret {
    pub endpoint: WebhookView,
    pub secret: String,
}

/// `GET /api/webhooks`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct WebhookList {
    pub endpoints: Vec<WebhookView>,
}

/// One (event, endpoint) delivery.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct WebhookDeliveryView {
    /// The event's id: `webhook-id` of every attempt.
    pub event_id: String,
    pub event_type: String,
    pub endpoint_id: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_attempt_at: Option<i64>,
    /// The receiver's HTTP status on the last attempt, if it answered.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub finished_at: Option<i64>,
    pub created_at: i64,
}

/// `GET /api/webhooks/deliveries`, newest first.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct WebhookDeliveryList {
    pub deliveries: Vec<WebhookDeliveryView>,
}

/// `POST /api/webhooks/{id}/test`: the test event queued for the endpoint.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct WebhookTestQueued {
    pub event_id: String,
}
