//! JSON Schemas of the wire types, generated from the types themselves (schemars).
//!
//! They are published in `docs/schemas/` (`client-message`, `server-message`, `http`) and
//! feed the OpenAPI document (`GET /api/openapi.json`) and the TypeScript client's types, so
//! the contract is read off the code instead of copied. `tests/schemas.rs` regenerates the
//! files and fails when the published ones differ (`GAVEL_WRITE_SCHEMAS=1` rewrites them).
//!
//! Two contracts: what a client sends is described as the server **reads** it (a field with
//! a default is optional; unknown fields are refused), what the server sends as it is
//! **written** (a `null` field is always there). A type used both ways must come out the
//! same in both, which [`definitions`] checks.
//!
//! String fields whose values are a core enum's names (`status`, `kind`, `reason`, ...) stay
//! `String` in the Rust types; their schemas list the names from the enum that owns them.

use crate::{ClientMessage, ServerMessage, MAX_AMOUNT};
use schemars::generate::{Contract, SchemaSettings};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// A generator for one contract, with definitions under `definitions_path`
/// (`/$defs` for the published files, `/components/schemas` for OpenAPI).
pub fn generator(contract: Contract, definitions_path: &str) -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|s| {
            s.contract = contract;
            s.definitions_path = definitions_path.to_string().into();
        })
        .into_generator()
}

/// Every HTTP body a client sends (read by the server).
pub fn http_requests(g: &mut SchemaGenerator) -> Vec<(&'static str, Schema)> {
    vec![
        ("SessionRequest", g.subschema_for::<crate::SessionRequest>()),
        ("CreateAuction", g.subschema_for::<crate::CreateAuction>()),
        ("PlaceBid", g.subschema_for::<crate::PlaceBid>()),
        ("AdminAction", g.subschema_for::<crate::AdminAction>()),
        ("CreateWebhook", g.subschema_for::<crate::CreateWebhook>()),
    ]
}

/// Every HTTP body the server sends.
pub fn http_responses(g: &mut SchemaGenerator) -> Vec<(&'static str, Schema)> {
    vec![
        (
            "SessionResponse",
            g.subschema_for::<crate::SessionResponse>(),
        ),
        ("UserView", g.subschema_for::<crate::UserView>()),
        ("TimeResponse", g.subschema_for::<crate::TimeResponse>()),
        ("Health", g.subschema_for::<crate::Health>()),
        ("Readiness", g.subschema_for::<crate::Readiness>()),
        ("AuctionList", g.subschema_for::<crate::AuctionList>()),
        ("SearchResults", g.subschema_for::<crate::SearchResults>()),
        ("CategoryList", g.subschema_for::<crate::CategoryList>()),
        ("AuctionView", g.subschema_for::<crate::AuctionView>()),
        ("BidHistory", g.subschema_for::<crate::BidHistory>()),
        ("ServerStats", g.subschema_for::<crate::ServerStats>()),
        ("LatencyStats", g.subschema_for::<crate::LatencyStats>()),
        ("BidResult", g.subschema_for::<crate::BidResult>()),
        ("LogPage", g.subschema_for::<crate::LogPage>()),
        ("KeysResponse", g.subschema_for::<crate::KeysResponse>()),
        ("ErrorBody", g.subschema_for::<crate::ErrorBody>()),
        ("WebhookList", g.subschema_for::<crate::WebhookList>()),
        ("WebhookView", g.subschema_for::<crate::WebhookView>()),
        (
            "WebhookWithSecret",
            g.subschema_for::<crate::WebhookWithSecret>(),
        ),
        (
            "WebhookDeliveryList",
            g.subschema_for::<crate::WebhookDeliveryList>(),
        ),
        (
            "WebhookTestQueued",
            g.subschema_for::<crate::WebhookTestQueued>(),
        ),
    ]
}

/// The definitions of every wire type (HTTP bodies and WebSocket messages, both ways), with
/// references under `definitions_path`.
///
/// # Panics
/// When a type shared by both directions would be described differently by each (then
/// one name would mean two shapes); `tests/schemas.rs` runs this.
pub fn definitions(definitions_path: &str) -> Map<String, Value> {
    definitions_of(definitions_path, true)
}

/// [`definitions`], of the HTTP bodies only (and what they refer to) unless `websocket`.
fn definitions_of(definitions_path: &str, websocket: bool) -> Map<String, Value> {
    let mut read = generator(Contract::Deserialize, definitions_path);
    http_requests(&mut read);
    let mut written = generator(Contract::Serialize, definitions_path);
    http_responses(&mut written);
    if websocket {
        read.subschema_for::<ClientMessage>();
        written.subschema_for::<ServerMessage>();
    }
    let mut all = read.take_definitions(true);
    for (name, schema) in written.take_definitions(true) {
        if let Some(other) = all.get(&name) {
            assert_eq!(
                other, &schema,
                "{name} is described differently when read and when written"
            );
        }
        all.insert(name, schema);
    }
    all.sort_keys();
    all
}

/// The published schema documents: (file name under `docs/schemas/`, JSON text).
pub fn documents() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    // No `$id`: the files refer to each other by relative path (`http.schema.json#/$defs/X`).
    let root = |title: &str, mut schema: Schema| {
        let obj = schema.ensure_object();
        obj.insert("title".into(), title.into());
        if let Some(Value::Object(defs)) = obj.get_mut("$defs") {
            defs.sort_keys();
        }
        schema
    };
    let client = generator(Contract::Deserialize, "/$defs").into_root_schema_for::<ClientMessage>();
    out.push((
        "client-message.schema.json",
        root("Gavel WebSocket: a message from the client", client),
    ));
    let server = generator(Contract::Serialize, "/$defs").into_root_schema_for::<ServerMessage>();
    out.push((
        "server-message.schema.json",
        root("Gavel WebSocket: a message from the server", server),
    ));
    // The HTTP bodies: a document of definitions only (refer to `http.schema.json#/$defs/X`).
    let mut http = json_schema!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "description": "Gavel's HTTP request and response bodies (see openapi.json for the routes).",
    });
    http.insert(
        "$defs".into(),
        Value::Object(definitions_of("/$defs", false)),
    );
    out.push(("http.schema.json", root("Gavel HTTP bodies", http)));
    out.into_iter()
        .map(|(name, schema)| {
            let mut text = serde_json::to_string_pretty(&schema).expect("schemas serialize");
            text.push('\n');
            (name, text)
        })
        .collect()
}

/// An amount: integer minor units in `1..=2^53-1` (anything else is `invalid_amount`).
pub fn amount(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_AMOUNT,
        "description": "Integer minor units (cents for USD), 1 to 2^53-1."
    })
}

/// An optional amount (`null` reads as absent).
pub fn optional_amount(g: &mut SchemaGenerator) -> Schema {
    let mut s = amount(g);
    s.insert("type".into(), serde_json::json!(["integer", "null"]));
    s
}

/// A string schema listing `names`, defined once under `name`.
fn names_schema(description: &str, names: &[&str]) -> Schema {
    json_schema!({
        "type": "string",
        "enum": names,
        "description": description,
    })
}

/// Declares a schema-only type whose schema is the list of an owner's names.
macro_rules! named_strings {
    ($(#[$doc:meta])* $ty:ident, $description:literal, $names:expr) => {
        $(#[$doc])*
        pub struct $ty;

        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                stringify!($ty).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                names_schema($description, &$names)
            }
        }
    };
}

named_strings!(
    /// `gavel_core::Status`'s names.
    AuctionStatus,
    "An auction's status by the server's clock.",
    gavel_core::Status::NAMES
);
named_strings!(
    /// `gavel_core::CloseReason`'s names.
    CloseReason,
    "How an auction ended.",
    gavel_core::CloseReason::NAMES
);
named_strings!(
    /// `gavel_core::EntryKind`'s names.
    EntryKind,
    "How a history entry came about: `bid` (placed at that amount), `auto` (placed for a proxy maximum), `buy_now`.",
    gavel_core::EntryKind::NAMES
);
named_strings!(
    /// `gavel_core::BidKind`'s names.
    BidKind,
    "`plain` (default), `max` (proxy bid: bid for me up to `amount`), `buy_now`.",
    gavel_core::BidKind::NAMES
);
named_strings!(
    /// `accepted`, every `gavel_core::Rejection` code, and `not_found`.
    BidOutcome,
    "The outcome of a bid: `accepted`, a rejection, or `not_found`.",
    bid_outcomes()
);

/// `accepted`, every rejection's code, then `not_found` (an unknown auction over HTTP).
pub fn bid_outcomes() -> Vec<&'static str> {
    use gavel_core::Rejection::*;
    let m = gavel_core::Money::new(1).expect("1 is an amount");
    let rejections = [
        Outbid { min_bid: m },
        Stale { seq: 0 },
        AlreadyLeading,
        NotOpen,
        Closed,
        BuyNowUnavailable,
        BuyNowPrice { price: m },
        MaxNotRaised { current_max: m },
    ];
    // A new rejection stops this from compiling until it is listed above.
    for r in &rejections {
        match r {
            Outbid { .. }
            | Stale { .. }
            | AlreadyLeading
            | NotOpen
            | Closed
            | BuyNowUnavailable
            | BuyNowPrice { .. }
            | MaxNotRaised { .. } => {}
        }
    }
    let mut out = vec![gavel_core::outcome_code(&Ok(()))];
    out.extend(rejections.iter().map(|r| r.code()));
    out.push(crate::ErrorCode::NotFound.as_str());
    out
}

impl JsonSchema for crate::ErrorCode {
    fn schema_name() -> Cow<'static, str> {
        "ErrorCode".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<_> = crate::ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        names_schema(
            "A wire error code (docs/protocol.md, \"Error codes\").",
            &names,
        )
    }
}
