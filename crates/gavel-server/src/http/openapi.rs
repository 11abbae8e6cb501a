//! The OpenAPI 3.1 document of the HTTP API, served at `GET /api/openapi.json` and
//! published as `docs/openapi.json`.
//!
//! Its schemas are generated from the wire types (`gavel_protocol::schema`, the same ones
//! as `docs/schemas/`); its operations are the table below. `tests/api/openapi.rs` holds the
//! table against the router (every path the router has, every method it answers) and the
//! examples of `docs/protocol.md` against the schemas, so neither side can drift unseen.

use axum::http::header;
use axum::response::IntoResponse;
use gavel_protocol::{schema, ErrorCode};
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// Who may call an operation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    Anyone,
    /// A session token (or the admin token).
    Bearer,
    /// The admin token, or an admin session.
    Admin,
}

/// A response body.
#[derive(Clone, Copy)]
enum Body {
    /// JSON of a component schema.
    Json(&'static str),
    /// Any other media type, with a description.
    Other(&'static str, &'static str),
    /// No body.
    Empty,
}

struct Param {
    name: &'static str,
    location: &'static str,
    description: &'static str,
    schema: fn() -> Value,
}

struct Op {
    method: &'static str,
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    description: &'static str,
    auth: Auth,
    params: &'static [Param],
    /// The request body's schema and whether it is required.
    request: Option<(&'static str, bool)>,
    /// Answers besides the error codes: (status, body, description).
    responses: &'static [(u16, Body, &'static str)],
    /// Error codes this operation answers with (each with its own status).
    errors: &'static [ErrorCode],
}

fn id_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9._:-]+$"})
}
fn listing_status_schema() -> Value {
    json!({"type": "string", "enum": ["live", "scheduled", "open", "closed"]})
}
fn limit_schema() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": 200, "default": 50})
}
fn log_limit_schema() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 200})
}
fn latency_limit_schema() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 10})
}
fn search_status_schema() -> Value {
    json!({"type": "string", "enum": ["any", "live", "scheduled", "open", "closed"], "default": "any"})
}
fn search_sort_schema() -> Value {
    json!({"type": "string", "enum": ["ending", "newest", "price_asc", "price_desc"], "default": "ending"})
}
fn search_limit_schema() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 24})
}
fn offset_schema() -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": 9999, "default": 0})
}
fn text_schema() -> Value {
    json!({"type": "string", "maxLength": 1000})
}
fn category_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 40, "pattern": "^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$"})
}
fn price_schema() -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": 9_007_199_254_740_991_i64})
}
fn within_schema() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": 31_536_000_000_i64})
}
fn seq_schema() -> Value {
    json!({"type": "integer", "minimum": 0})
}

const AUCTION_ID: Param = Param {
    name: "id",
    location: "path",
    description: "The auction's id.",
    schema: id_schema,
};

const WEBHOOK_ID: Param = Param {
    name: "id",
    location: "path",
    description: "The webhook endpoint's id.",
    schema: id_schema,
};

fn delivery_status_schema() -> Value {
    json!({"type": "string", "enum": ["pending", "delivered", "failed"]})
}
fn delivery_limit_schema() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": 500, "default": 100})
}

use ErrorCode::*;

/// Codes any request can get from the HTTP layer itself.
const EVERY_REQUEST: &[ErrorCode] = &[
    BadRequest,
    MethodNotAllowed,
    RequestTimeout,
    TooManyConnections,
    Internal,
];

const OPS: &[Op] = &[
    Op {
        method: "get",
        path: "/healthz",
        id: "health",
        summary: "Liveness",
        description: "`{\"status\": \"ok\"}` while the process serves requests.",
        auth: Auth::Anyone,
        params: &[],
        request: None,
        responses: &[(200, Body::Json("Health"), "Serving.")],
        errors: &[],
    },
    Op {
        method: "get",
        path: "/readyz",
        id: "readiness",
        summary: "Readiness",
        description: "Whether a load balancer should send this node traffic: 200 when the \
            authority (memory engine / Redis with Gavel's scripts) and the archive (SQLite / \
            PostgreSQL) answer and the node is not draining; 503 with every reason \
            (`draining`, `authority_unavailable`, `archive_unavailable`) otherwise. Also \
            exported as the gauges `gavel_ready` and `gavel_draining`.",
        auth: Auth::Anyone,
        params: &[],
        request: None,
        responses: &[
            (200, Body::Json("Readiness"), "Ready."),
            (503, Body::Json("Readiness"), "Not ready; `reasons` says why."),
        ],
        errors: &[],
    },
    Op {
        method: "get",
        path: "/metrics",
        id: "metrics",
        summary: "Prometheus metrics",
        description: "The Prometheus text exposition format.",
        auth: Auth::Anyone,
        params: &[],
        request: None,
        responses: &[(
            200,
            Body::Other("text/plain", "Prometheus text format 0.0.4."),
            "The metrics.",
        )],
        errors: &[],
    },
    Op {
        method: "get",
        path: "/api/openapi.json",
        id: "openapi",
        summary: "This document",
        description: "The OpenAPI 3.1 document of the HTTP API (also `docs/openapi.json`).",
        auth: Auth::Anyone,
        params: &[],
        request: None,
        responses: &[(
            200,
            Body::Other("application/json", "An OpenAPI 3.1 document."),
            "The document.",
        )],
        errors: &[],
    },
    Op {
        method: "get",
        path: "/api/time",
        id: "serverTime",
        summary: "The server's clock",
        description: "Server UTC milliseconds (the WebSocket's `ping`/`pong` gives a better offset).",
        auth: Auth::Anyone,
        params: &[],
        request: None,
        responses: &[(200, Body::Json("TimeResponse"), "The server's time.")],
        errors: &[],
    },
    Op {
        method: "post",
        path: "/api/session",
        id: "createSession",
        summary: "Sign in as a guest",
        description: "A session token for a display name; with `admin_token` an admin session.",
        auth: Auth::Anyone,
        params: &[],
        request: Some(("SessionRequest", true)),
        responses: &[(200, Body::Json("SessionResponse"), "The session.")],
        errors: &[
            BadJson,
            InvalidMessage,
            InvalidName,
            Forbidden,
            GuestSessionsDisabled,
            BodyTooLarge,
            RateLimited,
        ],
    },
    Op {
        method: "post",
        path: "/api/session/refresh",
        id: "refreshSession",
        summary: "A new token for the same session",
        description: "Send the current (still valid) session token; the answer has a new token and a later `expires_at`. The body is ignored.",
        auth: Auth::Bearer,
        params: &[],
        request: None,
        responses: &[(200, Body::Json("SessionResponse"), "The renewed session.")],
        errors: &[Unauthorized, TokenExpired, TokenNotYetValid, Forbidden, RateLimited],
    },
    Op {
        method: "get",
        path: "/api/me",
        id: "me",
        summary: "Who am I",
        description: "The user of the token.",
        auth: Auth::Bearer,
        params: &[],
        request: None,
        responses: &[(200, Body::Json("UserView"), "The signed-in user.")],
        errors: &[Unauthorized, TokenExpired, TokenNotYetValid, RateLimited],
    },
    Op {
        method: "get",
        path: "/api/auctions",
        id: "listAuctions",
        summary: "List auctions, one page at a time",
        description: "Live auctions (scheduled or open) by current end time, then closed ones, most recently closed first; `status` narrows it. Pass `next_cursor` back as `cursor` (with the same `status`) for the next page; it is `null` on the last page.",
        auth: Auth::Anyone,
        params: &[
            Param {
                name: "status",
                location: "query",
                description: "`live` (scheduled and open), `scheduled`, `open` or `closed`.",
                schema: listing_status_schema,
            },
            Param {
                name: "limit",
                location: "query",
                description: "Page size.",
                schema: limit_schema,
            },
            Param {
                name: "cursor",
                location: "query",
                description: "The previous page's `next_cursor` (opaque).",
                schema: token_schema,
            },
        ],
        request: None,
        responses: &[(200, Body::Json("AuctionList"), "One page of auctions.")],
        errors: &[InvalidQuery, InvalidStatus, InvalidLimit],
    },
    Op {
        method: "get",
        path: "/api/search",
        id: "searchAuctions",
        summary: "Search auctions",
        description: "Free text over title and description (each word a prefix, all required; punctuation separates words), a category, a status, a range of current price (the price to beat: the leading price, or the starting price before the first bid) and an end time, sorted and paged by the archive's indexes (SQLite FTS5, PostgreSQL full text). Pass `next_offset` back as `offset` with the same query for the next page. Filters and order read the archived state: in distributed mode a live auction's price there is as of the drainer's last write, while the auction itself is shown as the engine holds it now.",
        auth: Auth::Anyone,
        params: &[
            Param {
                name: "q",
                location: "query",
                description: "Words to find (the first 200 characters, at most 8 words).",
                schema: text_schema,
            },
            Param {
                name: "category",
                location: "query",
                description: "Only this category.",
                schema: category_schema,
            },
            Param {
                name: "status",
                location: "query",
                description: "`live` (scheduled and open), `scheduled`, `open`, `closed` or `any`.",
                schema: search_status_schema,
            },
            Param {
                name: "min_price",
                location: "query",
                description: "Current price at least this (minor units).",
                schema: price_schema,
            },
            Param {
                name: "max_price",
                location: "query",
                description: "Current price at most this (minor units).",
                schema: price_schema,
            },
            Param {
                name: "ending_within_ms",
                location: "query",
                description: "Only live auctions ending within this many ms from now.",
                schema: within_schema,
            },
            Param {
                name: "sort",
                location: "query",
                description: "`ending` (live ones ending soonest first, then ended ones, latest end first), `newest` (latest start first), `price_asc`, `price_desc`. Ties go by id.",
                schema: search_sort_schema,
            },
            Param {
                name: "limit",
                location: "query",
                description: "Page size.",
                schema: search_limit_schema,
            },
            Param {
                name: "offset",
                location: "query",
                description: "Results to skip: the previous page's `next_offset`. `offset + limit` is at most 10000.",
                schema: offset_schema,
            },
        ],
        request: None,
        responses: &[(200, Body::Json("SearchResults"), "One page of results.")],
        errors: &[InvalidQuery, InvalidStatus, InvalidLimit],
    },
    Op {
        method: "get",
        path: "/api/categories",
        id: "listCategories",
        summary: "Categories of live auctions",
        description: "Every category that auctions not closed yet are in, by name, with how many each holds.",
        auth: Auth::Anyone,
        params: &[],
        request: None,
        responses: &[(200, Body::Json("CategoryList"), "The categories.")],
        errors: &[],
    },
    Op {
        method: "post",
        path: "/api/auctions",
        id: "createAuction",
        summary: "Create an auction (admin)",
        description: "Give `increment` or `increment_table`, and `ends_at` or `duration_ms`.",
        auth: Auth::Admin,
        params: &[],
        request: Some(("CreateAuction", true)),
        responses: &[(201, Body::Json("AuctionView"), "The new auction.")],
        errors: &[
            BadJson,
            InvalidMessage,
            InvalidAmount,
            InvalidAuction,
            Unauthorized,
            TokenExpired,
            Forbidden,
            AlreadyExists,
            BodyTooLarge,
            Unavailable,
        ],
    },
    Op {
        method: "get",
        path: "/api/auctions/{id}",
        id: "getAuction",
        summary: "One auction",
        description: "Its full public state.",
        auth: Auth::Anyone,
        params: &[AUCTION_ID],
        request: None,
        responses: &[(200, Body::Json("AuctionView"), "The auction.")],
        errors: &[NotFound, Unavailable],
    },
    Op {
        method: "get",
        path: "/api/auctions/{id}/bids",
        id: "bidHistory",
        summary: "Bid history, newest first",
        description: "Pages of at most `limit` entries; pass `next_before_seq` as `before_seq` for the next (older) page.",
        auth: Auth::Anyone,
        params: &[
            AUCTION_ID,
            Param {
                name: "limit",
                location: "query",
                description: "Page size.",
                schema: limit_schema,
            },
            Param {
                name: "before_seq",
                location: "query",
                description: "Only entries with a lower seq.",
                schema: seq_schema,
            },
        ],
        request: None,
        responses: &[(200, Body::Json("BidHistory"), "A page of the history.")],
        errors: &[InvalidQuery, InvalidLimit, NotFound],
    },
    Op {
        method: "post",
        path: "/api/auctions/{id}/bids",
        id: "placeBid",
        summary: "Bid",
        description: "A repeated `request_id` gets the first answer again and never places a second bid: after `503 outcome_unknown` (or no answer at all) retry with the **same** `request_id`; after `503 unavailable` nothing was decided.",
        auth: Auth::Bearer,
        params: &[AUCTION_ID],
        request: Some(("PlaceBid", true)),
        responses: &[
            (200, Body::Json("BidResult"), "Accepted."),
            (
                409,
                Body::Json("BidResult"),
                "Rejected: `outcome` says why (`outbid`, `stale`, `closed`, ...).",
            ),
            (404, Body::Json("BidResult"), "`outcome` `not_found`: no such auction."),
        ],
        errors: &[
            BadJson,
            InvalidMessage,
            InvalidAmount,
            InvalidRequestId,
            InvalidKind,
            IdentityField,
            Unauthorized,
            TokenExpired,
            TokenNotYetValid,
            AdminCannotBid,
            BodyTooLarge,
            RateLimited,
            Unavailable,
            OutcomeUnknown,
        ],
    },
    Op {
        method: "post",
        path: "/api/auctions/{id}/cancel",
        id: "cancelAuction",
        summary: "Cancel an auction (admin)",
        description: "Nobody wins. A body (`{\"reason\": \"...\"}`) may be sent but is not read yet.",
        auth: Auth::Admin,
        params: &[AUCTION_ID],
        request: Some(("AdminAction", false)),
        responses: &[(200, Body::Json("AuctionView"), "The closed auction.")],
        errors: &[Unauthorized, TokenExpired, Forbidden, NotFound, Closed, Unavailable],
    },
    Op {
        method: "post",
        path: "/api/auctions/{id}/end",
        id: "endAuction",
        summary: "End an auction now (admin)",
        description: "The leader wins if the reserve is met. A body (`{\"reason\": \"...\"}`) may be sent but is not read yet.",
        auth: Auth::Admin,
        params: &[AUCTION_ID],
        request: Some(("AdminAction", false)),
        responses: &[(200, Body::Json("AuctionView"), "The closed auction.")],
        errors: &[Unauthorized, TokenExpired, Forbidden, NotFound, Closed, Unavailable],
    },
    Op {
        method: "get",
        path: "/api/auctions/{id}/log",
        id: "auctionLog",
        summary: "The auction's verifiable log, oldest first",
        description: "Every accepted change (creation, opening, bids, automatic bids, a leader raising their maximum, the closing) with its SHA-256 chain hash, never a proxy maximum; and the authority's current head, signed with the server's Ed25519 key. Pages of at most `limit` entries; pass `next_after_seq` as `after_seq` for the next page. docs/verification.md describes the encoding; `gavel verify` checks it.",
        auth: Auth::Anyone,
        params: &[
            AUCTION_ID,
            Param {
                name: "limit",
                location: "query",
                description: "Page size (1 to 1000, default 200).",
                schema: log_limit_schema,
            },
            Param {
                name: "after_seq",
                location: "query",
                description: "Only entries with a higher seq.",
                schema: seq_schema,
            },
        ],
        request: None,
        responses: &[(200, Body::Json("LogPage"), "A page of the log and the signed head.")],
        errors: &[InvalidQuery, InvalidLimit, NotFound, Unavailable],
    },
    Op {
        method: "get",
        path: "/api/keys",
        id: "publicKeys",
        summary: "The server's public signing keys",
        description: "The Ed25519 key that signs bid receipts and log heads (docs/verification.md).",
        auth: Auth::Anyone,
        params: &[],
        request: None,
        responses: &[(200, Body::Json("KeysResponse"), "The keys.")],
        errors: &[],
    },
    Op {
        method: "get",
        path: "/api/admin/stats",
        id: "serverStats",
        summary: "What this node holds (admin)",
        description: "Fan-out rooms, auctions held in memory (embedded mode) and auctions followed for watchers (distributed mode); `null` where a mode does not track it.",
        auth: Auth::Admin,
        params: &[],
        request: None,
        responses: &[(200, Body::Json("ServerStats"), "The node's counts.")],
        errors: &[Unauthorized, TokenExpired, Forbidden],
    },
    Op {
        method: "get",
        path: "/api/admin/latency",
        id: "deliveryLatency",
        summary: "Delivery latency on this node (admin)",
        description: "Decision → frame written (measured by the server for every update) and decision → received (reported by clients every 30 s with `latency_report`), overall and for the auctions with the most watchers on this node. Histograms over `bounds_ms`; docs/deployment.md explains them.",
        auth: Auth::Admin,
        params: &[Param {
            name: "limit",
            location: "query",
            description: "How many of the most watched auctions to list (1–100, default 10).",
            schema: latency_limit_schema,
        }],
        request: None,
        responses: &[(200, Body::Json("LatencyStats"), "The node's delivery latency.")],
        errors: &[Unauthorized, TokenExpired, Forbidden, InvalidLimit, InvalidQuery],
    },
    Op {
        method: "get",
        path: "/api/webhooks",
        id: "listWebhooks",
        summary: "Webhook endpoints (admin)",
        description: "Every endpoint, oldest first, without secrets. `source` is `config` for `--webhook` endpoints (managed by the configuration) or `api`; `disabled_at` is set once a receiver answered 410 Gone. docs/integration.md#webhooks describes the events.",
        auth: Auth::Admin,
        params: &[],
        request: None,
        responses: &[(200, Body::Json("WebhookList"), "The endpoints.")],
        errors: &[Unauthorized, TokenExpired, Unavailable],
    },
    Op {
        method: "post",
        path: "/api/webhooks",
        id: "createWebhook",
        summary: "Add a webhook endpoint (admin)",
        description: "Events (Standard Webhooks 1.0, signed with the endpoint's `whsec_` secret) are posted to `url` from now on; `bid.accepted` only with `bid_events`. Without `secret` one is generated. The answer is the only place the secret is shown.",
        auth: Auth::Admin,
        params: &[],
        request: Some(("CreateWebhook", true)),
        responses: &[(201, Body::Json("WebhookWithSecret"), "The endpoint and its secret.")],
        errors: &[BadJson, InvalidMessage, InvalidWebhook, Unauthorized, TokenExpired, BodyTooLarge, Unavailable],
    },
    Op {
        method: "get",
        path: "/api/webhooks/deliveries",
        id: "listWebhookDeliveries",
        summary: "Webhook deliveries (admin)",
        description: "Newest first; optionally of one endpoint and in one status (`pending`, `delivered`, `failed`). A failed delivery has spent its retries (or its endpoint answered 410).",
        auth: Auth::Admin,
        params: &[
            Param {
                name: "endpoint",
                location: "query",
                description: "Only this endpoint's deliveries.",
                schema: id_schema,
            },
            Param {
                name: "status",
                location: "query",
                description: "Only deliveries in this status.",
                schema: delivery_status_schema,
            },
            Param {
                name: "limit",
                location: "query",
                description: "At most this many (1 to 500, default 100).",
                schema: delivery_limit_schema,
            },
        ],
        request: None,
        responses: &[(200, Body::Json("WebhookDeliveryList"), "The deliveries.")],
        errors: &[InvalidQuery, InvalidStatus, InvalidLimit, Unauthorized, TokenExpired, Unavailable],
    },
    Op {
        method: "delete",
        path: "/api/webhooks/{id}",
        id: "deleteWebhook",
        summary: "Remove a webhook endpoint (admin)",
        description: "Its pending deliveries are dropped. Endpoints from `--webhook` are managed by the configuration (`webhook_from_config`).",
        auth: Auth::Admin,
        params: &[WEBHOOK_ID],
        request: None,
        responses: &[(204, Body::Empty, "Removed.")],
        errors: &[Unauthorized, TokenExpired, NotFound, WebhookFromConfig, Unavailable],
    },
    Op {
        method: "post",
        path: "/api/webhooks/{id}/rotate",
        id: "rotateWebhookSecret",
        summary: "Give a webhook endpoint a new secret (admin)",
        description: "Attempts from now on are signed with the new secret (retries of earlier events included). The answer is the only place it is shown.",
        auth: Auth::Admin,
        params: &[WEBHOOK_ID],
        request: None,
        responses: &[(200, Body::Json("WebhookWithSecret"), "The endpoint and its new secret.")],
        errors: &[Unauthorized, TokenExpired, NotFound, WebhookFromConfig, Unavailable],
    },
    Op {
        method: "post",
        path: "/api/webhooks/{id}/enable",
        id: "enableWebhook",
        summary: "Enable a webhook endpoint again (admin)",
        description: "For an endpoint disabled by a 410 Gone answer: events from now on are sent to it again (deliveries failed by the 410 stay failed).",
        auth: Auth::Admin,
        params: &[WEBHOOK_ID],
        request: None,
        responses: &[(200, Body::Json("WebhookView"), "The endpoint, enabled.")],
        errors: &[Unauthorized, TokenExpired, NotFound, Unavailable],
    },
    Op {
        method: "post",
        path: "/api/webhooks/{id}/test",
        id: "sendWebhookTest",
        summary: "Send a test event (admin)",
        description: "Queues a `webhook.test` event for this endpoint only, delivered (and retried) like any other.",
        auth: Auth::Admin,
        params: &[WEBHOOK_ID],
        request: None,
        responses: &[(202, Body::Json("WebhookTestQueued"), "Queued.")],
        errors: &[Unauthorized, TokenExpired, NotFound, Unavailable],
    },
    Op {
        method: "get",
        path: "/ws",
        id: "websocket",
        summary: "The live WebSocket",
        description: "Upgrade to a WebSocket (`?token=` optional: watching needs none). Text frames, one JSON message each: `ClientMessage` from the client, `ServerMessage` from the server (components below; also `docs/schemas/`). docs/protocol.md describes the conversation.",
        auth: Auth::Anyone,
        params: &[Param {
            name: "token",
            location: "query",
            description: "A session token (or send `auth` first).",
            schema: token_schema,
        }],
        request: None,
        responses: &[(101, Body::Empty, "Switching to the WebSocket protocol.")],
        errors: &[],
    },
];

fn token_schema() -> Value {
    json!({"type": "string"})
}

fn body_content(b: Body) -> Option<Value> {
    match b {
        Body::Json(name) => Some(json!({
            "application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}
        })),
        Body::Other(mime, description) => Some(json!({
            mime: {"schema": {"type": "string", "description": description}}
        })),
        Body::Empty => None,
    }
}

fn operation(op: &Op) -> Value {
    let mut o = Map::new();
    o.insert("operationId".into(), op.id.into());
    o.insert("summary".into(), op.summary.into());
    o.insert("description".into(), op.description.into());
    if op.auth != Auth::Anyone {
        o.insert("security".into(), json!([{"bearer": []}]));
    }
    if !op.params.is_empty() {
        let params: Vec<Value> = op
            .params
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "in": p.location,
                    "required": p.location == "path",
                    "description": p.description,
                    "schema": (p.schema)(),
                })
            })
            .collect();
        o.insert("parameters".into(), params.into());
    }
    if let Some((name, required)) = op.request {
        o.insert(
            "requestBody".into(),
            json!({"required": required, "content": body_content(Body::Json(name))}),
        );
    }
    let mut responses = Map::new();
    for (status, body, description) in op.responses {
        let mut r = json!({"description": description});
        if let Some(content) = body_content(*body) {
            r["content"] = content;
        }
        responses.insert(status.to_string(), r);
    }
    // Error codes grouped by their status, each named in the description.
    let mut by_status: std::collections::BTreeMap<u16, Vec<&str>> = Default::default();
    let auth_errors: &[ErrorCode] = match op.auth {
        Auth::Admin => &[Forbidden, BadIssuer, BadAudience, BadSignature, UnknownKey],
        // External tokens (docs/security.md) are refused with their own codes.
        Auth::Bearer => &[BadIssuer, BadAudience, BadSignature, UnknownKey],
        _ => &[],
    };
    for code in op.errors.iter().chain(auth_errors).chain(EVERY_REQUEST) {
        let codes = by_status.entry(code.http_status()).or_default();
        if !codes.contains(&code.as_str()) {
            codes.push(code.as_str());
        }
    }
    for (status, codes) in by_status {
        if responses.contains_key(&status.to_string()) {
            continue;
        }
        responses.insert(
            status.to_string(),
            json!({
                "description": format!("`{}`", codes.join("`, `")),
                "content": body_content(Body::Json("ErrorBody")),
            }),
        );
    }
    o.insert("responses".into(), Value::Object(responses));
    if op.path == "/ws" {
        o.insert(
            "x-websocket-messages".into(),
            json!({
                "client": {"$ref": "#/components/schemas/ClientMessage"},
                "server": {"$ref": "#/components/schemas/ServerMessage"},
            }),
        );
    }
    Value::Object(o)
}

/// Builds the document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPS {
        let item = paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}));
        item[op.method] = operation(op);
    }
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Gavel",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "A real-time auction bidding server.",
            "description": "Money is integer minor units plus the auction's currency; times are server UTC milliseconds. Every error is `{\"error\": {\"code\", \"message\"}}` with the status of its code. docs/protocol.md explains each call with examples.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "paths": paths,
        "components": {
            "schemas": schema::definitions("/components/schemas"),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A session token (`POST /api/session`) or the server's admin token.",
                },
            },
        },
    })
}

/// The document as served (built once).
pub fn text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let mut t = serde_json::to_string_pretty(&document()).expect("the document serializes");
        t.push('\n');
        t
    })
}

/// `GET /api/openapi.json`.
pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], text())
}
