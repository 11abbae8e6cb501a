//! The published JSON Schemas (`docs/schemas/`) are the ones the types generate, and every
//! WebSocket example of `docs/protocol.md` is a message they accept.
//!
//! `GAVEL_WRITE_SCHEMAS=1 cargo test -p gavel-protocol --test schemas` rewrites the files
//! (or run `scripts/gen-contract.sh`, which also regenerates the OpenAPI document and the
//! TypeScript types).

use gavel_protocol::doc_examples::{self, Example};
use gavel_protocol::{schema, ClientMessage, ServerMessage};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn schema_dir() -> PathBuf {
    repo().join("docs/schemas")
}

fn published(name: &str) -> Value {
    let text = std::fs::read_to_string(schema_dir().join(name))
        .unwrap_or_else(|e| panic!("docs/schemas/{name}: {e}"));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_published_schemas_are_the_generated_ones() {
    let docs = schema::documents();
    if std::env::var_os("GAVEL_WRITE_SCHEMAS").is_some() {
        std::fs::create_dir_all(schema_dir()).unwrap();
        for (name, text) in &docs {
            std::fs::write(schema_dir().join(name), text).unwrap();
        }
    }
    let mut stale = Vec::new();
    for (name, text) in &docs {
        let on_disk = std::fs::read_to_string(schema_dir().join(name)).unwrap_or_default();
        if &on_disk != text {
            stale.push(*name);
        }
    }
    let mut extra: Vec<String> = std::fs::read_dir(schema_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".schema.json") && !docs.iter().any(|(n, _)| n == f))
        .collect();
    extra.sort();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "docs/schemas is out of date (changed: {stale:?}; not generated any more: {extra:?}): \
         run scripts/gen-contract.sh (or GAVEL_WRITE_SCHEMAS=1 cargo test -p gavel-protocol --test schemas)"
    );
}

#[test]
fn the_two_directions_describe_shared_types_alike() {
    // Panics when a type read in requests and written in responses differs between the two.
    let defs = schema::definitions("/$defs");
    for name in [
        "AuctionView",
        "ClientMessage",
        "ServerMessage",
        "PlaceBid",
        "ErrorCode",
    ] {
        assert!(defs.contains_key(name), "{name} missing from {defs:?}");
    }
}

/// A validator for a published schema document.
fn validator(name: &str) -> jsonschema::Validator {
    jsonschema::validator_for(&published(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The `type` tags a message schema accepts (its `oneOf` branches' `const`s).
fn tags(schema: &Value) -> Vec<String> {
    schema["oneOf"]
        .as_array()
        .expect("a message schema is a oneOf")
        .iter()
        .map(|v| {
            v["properties"]["type"]["const"]
                .as_str()
                .unwrap_or_else(|| panic!("a branch without a const type: {v}"))
                .to_string()
        })
        .collect()
}

/// Checks one WebSocket example: it must be accepted by the schema of its direction and
/// read back through the Rust type unchanged (a field the type does not have would be lost,
/// so the schema's openness to new fields cannot hide a misspelled one).
fn check_ws_example(
    ex: &Example,
    client: &jsonschema::Validator,
    server: &jsonschema::Validator,
    client_tags: &[String],
    server_tags: &[String],
) -> Result<(), String> {
    let at = format!("docs/protocol.md line {}", ex.line);
    let tag = ex.value["type"]
        .as_str()
        .ok_or_else(|| format!("{at}: a WebSocket example without a \"type\": {}", ex.value))?;
    let errors: Vec<String>;
    let round_trip: Value;
    if client_tags.iter().any(|t| t == tag) {
        errors = client
            .iter_errors(&ex.value)
            .map(|e| e.to_string())
            .collect();
        round_trip = serde_json::from_value::<ClientMessage>(ex.value.clone())
            .map(|m| serde_json::to_value(m).unwrap())
            .unwrap_or_else(|e| json!({ "unreadable": e.to_string() }));
    } else if server_tags.iter().any(|t| t == tag) {
        errors = server
            .iter_errors(&ex.value)
            .map(|e| e.to_string())
            .collect();
        round_trip = serde_json::from_value::<ServerMessage>(ex.value.clone())
            .map(|m| serde_json::to_value(m).unwrap())
            .unwrap_or_else(|e| json!({ "unreadable": e.to_string() }));
    } else {
        return Err(format!("{at}: no message has type {tag:?}"));
    }
    if !errors.is_empty() {
        return Err(format!(
            "{at}: {} is refused by the schema: {errors:?}",
            ex.value
        ));
    }
    if round_trip != ex.value {
        return Err(format!(
            "{at}: {} does not read back as itself through the Rust type (got {round_trip})",
            ex.value
        ));
    }
    Ok(())
}

fn ws_examples(doc: &str) -> Vec<Example> {
    doc_examples::extract(doc)
        .unwrap()
        .into_iter()
        .filter(|e| e.label.is_none())
        .collect()
}

fn check_all(doc: &str) -> Vec<String> {
    let client_schema = published("client-message.schema.json");
    let server_schema = published("server-message.schema.json");
    let (client_tags, server_tags) = (tags(&client_schema), tags(&server_schema));
    let (client, server) = (
        validator("client-message.schema.json"),
        validator("server-message.schema.json"),
    );
    ws_examples(doc)
        .iter()
        .filter_map(|ex| check_ws_example(ex, &client, &server, &client_tags, &server_tags).err())
        .collect()
}

fn protocol_md() -> String {
    std::fs::read_to_string(repo().join("docs/protocol.md")).unwrap()
}

#[test]
fn every_websocket_example_in_the_protocol_doc_is_a_valid_message() {
    let doc = protocol_md();
    let examples = ws_examples(&doc);
    let failures = check_all(&doc);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every message type of both directions has at least one example.
    let shown: Vec<&str> = examples
        .iter()
        .filter_map(|e| e.value["type"].as_str())
        .collect();
    for name in ["client-message.schema.json", "server-message.schema.json"] {
        for tag in tags(&published(name)) {
            assert!(
                shown.contains(&tag.as_str()),
                "docs/protocol.md has no {tag:?} example"
            );
        }
    }
}

#[test]
fn the_example_check_refuses_broken_examples() {
    let doc = protocol_md();
    // A misspelled field, a float amount, an unknown message, a wrong enum name, a missing
    // field: each must be caught.
    for (good, bad) in [
        (
            r#""request_id": "r-17", "expected_seq": 3}"#,
            r#""request_id": "r-17", "expected_Seq": 3}"#,
        ),
        (
            r#""amount": 12000, "request_id": "r-17""#,
            r#""amount": 120.5, "request_id": "r-17""#,
        ),
        (
            r#"{"type": "ping", "client_time""#,
            r#"{"type": "pingg", "client_time""#,
        ),
        (
            r#""reason": "ended",
 "winner""#,
            r#""reason": "finished",
 "winner""#,
        ),
        (r#""count": 12}"#, r#""counts": 12}"#),
        (
            r#""bid_count": 7, "reserve_met": null}"#,
            r#""bid_count": 7}"#,
        ),
    ] {
        assert!(doc.contains(good), "the doc no longer holds {good:?}");
        let broken = doc.replacen(good, bad, 1);
        let failures = check_all(&broken);
        assert_eq!(failures.len(), 1, "{bad:?} gave {failures:?}");
    }
}
