//! The published contract against the running server: the OpenAPI document has exactly the
//! routes the router serves, is the one in `docs/openapi.json`, accepts the HTTP examples of
//! `docs/protocol.md`; and what a real session sends is valid against the schemas.
//!
//! `GAVEL_WRITE_SCHEMAS=1 cargo test -p gavel-server --test api -- contract` rewrites
//! `docs/openapi.json` (scripts/gen-contract.sh does it with the other generated files).

use crate::helpers::*;
use gavel_protocol::doc_examples::{self, Example};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn document() -> Value {
    gavel_server::http::openapi::document()
}

/// The paths of the router, read from its `Debug` form (axum lists them as
/// `paths: {RouteId(1): "/healthz", ...}`); fails loudly if that form changes.
fn router_paths() -> BTreeSet<String> {
    let debug = format!("{:?}", gavel_server::http::routes());
    let start = debug
        .find("paths: {")
        .unwrap_or_else(|| panic!("axum's Router Debug form changed: {debug:.300}"))
        + "paths: {".len();
    // The quoted strings up to the map's closing brace (paths hold braces: `{id}`).
    let mut paths = BTreeSet::new();
    let mut quoted: Option<String> = None;
    for c in debug[start..].chars() {
        match (&mut quoted, c) {
            (None, '"') => quoted = Some(String::new()),
            (None, '}') => break,
            (Some(p), '"') => {
                paths.insert(std::mem::take(p));
                quoted = None;
            }
            (Some(p), c) => p.push(c),
            _ => {}
        }
    }
    assert!(
        paths.contains("/api/openapi.json") && paths.contains("/api/auctions/{id}/bids"),
        "paths not read from the router's Debug form: {paths:?}"
    );
    paths
}

/// (METHOD, path) of every operation of the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_the_router_serves_is_in_the_openapi_document_and_nothing_else() {
    let app = spawn_app().await;
    let auction = app.create_auction(json!({})).await;
    let id = auction["id"].as_str().unwrap();
    // Every method the router answers on every path it has (405 = not routed).
    let mut served = BTreeSet::new();
    for path in router_paths() {
        let url = app.url(&path.replace("{id}", id));
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let r = app.http.request(m, &url).send().await.unwrap();
            if r.status() != 405 {
                served.insert((method.to_string(), path.clone()));
            }
        }
    }
    let documented = documented(&document());
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "routes missing from the OpenAPI document: {undocumented:?}; documented but not served: {unserved:?}"
    );
    // The fallback (the web client's files) answers anything else: not a route.
    let (status, body) = app.get("/api/no-such-route").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_openapi_document_is_the_published_one() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let served = r.text().await.unwrap();
    assert_eq!(served, gavel_server::http::openapi::text());
    app.stop().await;
    if !only_in(
        Mode::Embedded,
        "the published file does not depend on the mode",
    ) {
        return;
    }
    let path = repo().join("docs/openapi.json");
    if std::env::var_os("GAVEL_WRITE_SCHEMAS").is_some() {
        std::fs::write(&path, &served).unwrap();
    }
    let published = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        published == served,
        "docs/openapi.json is out of date: run scripts/gen-contract.sh (or GAVEL_WRITE_SCHEMAS=1 cargo test -p gavel-server --test api -- contract)"
    );
    // Its schemas are the ones published for the WebSocket and the HTTP bodies.
    let doc: Value = serde_json::from_str(&served).unwrap();
    let http: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/schemas/http.schema.json")).unwrap(),
    )
    .unwrap();
    for (name, schema) in http["$defs"].as_object().unwrap() {
        let text = schema
            .to_string()
            .replace("#/$defs/", "#/components/schemas/");
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            doc["components"]["schemas"][name],
            "{name}"
        );
    }
}

/// A validator for one schema of the OpenAPI document (references resolve inside it).
fn validator_for(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let mut root = schema.clone();
    root["components"] = doc["components"].clone();
    jsonschema::draft202012::new(&root).unwrap_or_else(|e| panic!("{schema}: {e}"))
}

/// The schema an example's label names: `METHOD /path request`, `METHOD /path STATUS`, or a
/// component name.
fn labelled_schema(doc: &Value, label: &str) -> Result<Value, String> {
    let parts: Vec<&str> = label.split(' ').collect();
    let content = match parts.as_slice() {
        [name] => {
            return doc["components"]["schemas"]
                .get(*name)
                .map(|_| json!({"$ref": format!("#/components/schemas/{name}")}))
                .ok_or_else(|| format!("no component schema {name}"))
        }
        [method, path, "request"] => &doc["paths"][*path][method.to_lowercase()]["requestBody"],
        [method, path, status] => &doc["paths"][*path][method.to_lowercase()]["responses"][*status],
        _ => return Err(format!("a label that names nothing: {label:?}")),
    };
    content["content"]["application/json"]["schema"]
        .as_object()
        .map(|s| Value::Object(s.clone()))
        .ok_or_else(|| format!("the document has no JSON body for {label:?}"))
}

/// The Rust type of a component, to read an example back through (a field the type does not
/// have would be lost: the schemas accept unknown fields in what the server sends).
fn round_trip(name: &str, v: &Value) -> Result<Value, String> {
    use gavel_protocol::*;
    fn rt<T: serde::de::DeserializeOwned + serde::Serialize>(v: &Value) -> Result<Value, String> {
        serde_json::from_value::<T>(v.clone())
            .map(|t| serde_json::to_value(t).unwrap())
            .map_err(|e| e.to_string())
    }
    match name {
        "SessionRequest" => rt::<SessionRequest>(v),
        "SessionResponse" => rt::<SessionResponse>(v),
        "UserView" => rt::<UserView>(v),
        "TimeResponse" => rt::<TimeResponse>(v),
        "Health" => rt::<Health>(v),
        "Readiness" => rt::<Readiness>(v),
        "AuctionList" => rt::<AuctionList>(v),
        "SearchResults" => rt::<SearchResults>(v),
        "CategoryList" => rt::<CategoryList>(v),
        "AuctionView" => rt::<AuctionView>(v),
        "BidView" => rt::<BidView>(v),
        "BidHistory" => rt::<BidHistory>(v),
        "CreateAuction" => rt::<CreateAuction>(v),
        "PlaceBid" => rt::<PlaceBid>(v),
        "BidResult" => rt::<BidResult>(v),
        "AdminAction" => rt::<AdminAction>(v),
        "ErrorBody" => rt::<ErrorBody>(v),
        "LogPage" => rt::<LogPage>(v),
        "KeysResponse" => rt::<KeysResponse>(v),
        "LatencyStats" => rt::<LatencyStats>(v),
        other => Err(format!("no Rust type known for {other}")),
    }
}

fn check_http_example(doc: &Value, ex: &Example) -> Result<(), String> {
    let label = ex.label.as_deref().unwrap();
    let at = format!("docs/protocol.md line {} ({label})", ex.line);
    let schema = labelled_schema(doc, label).map_err(|e| format!("{at}: {e}"))?;
    let errors: Vec<String> = validator_for(doc, &schema)
        .iter_errors(&ex.value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if !errors.is_empty() {
        return Err(format!("{at}: refused by the OpenAPI document: {errors:?}"));
    }
    let name = schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .ok_or_else(|| format!("{at}: not a component: {schema}"))?;
    let back = round_trip(name, &ex.value).map_err(|e| format!("{at}: {e}"))?;
    if back != ex.value {
        return Err(format!(
            "{at}: does not read back as itself through {name} (got {back})"
        ));
    }
    Ok(())
}

fn http_failures(protocol_md: &str) -> (usize, Vec<String>) {
    let doc = document();
    let examples: Vec<Example> = doc_examples::extract(protocol_md)
        .unwrap()
        .into_iter()
        .filter(|e| e.label.is_some())
        .collect();
    let failures = examples
        .iter()
        .filter_map(|ex| check_http_example(&doc, ex).err())
        .collect();
    (examples.len(), failures)
}

fn protocol_md() -> String {
    std::fs::read_to_string(repo().join("docs/protocol.md")).unwrap()
}

#[test]
fn the_http_examples_of_the_protocol_doc_validate_against_the_openapi_document() {
    if !only_in(Mode::Embedded, "the document does not depend on the mode") {
        return;
    }
    let (count, failures) = http_failures(&protocol_md());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(count >= 11, "only {count} labelled HTTP examples found");
}

#[test]
fn the_http_example_check_refuses_broken_examples() {
    if !only_in(Mode::Embedded, "the document does not depend on the mode") {
        return;
    }
    let doc = protocol_md();
    for (good, bad) in [
        // A wrong type, a misspelled field, a status that is not one, a float amount, a
        // label naming no operation.
        (
            r#""expires_at": 1764100000000}"#,
            r#""expires_at": "soon"}"#,
        ),
        (r#""bid_count": 2,"#, r#""bid_counts": 2,"#),
        (r#""status": "open","#, r#""status": "live","#),
        (
            r#"{"amount": 12000, "request_id""#,
            r#"{"amount": 120.5, "request_id""#,
        ),
        (
            "<!-- example: GET /api/me 200 -->",
            "<!-- example: GET /api/you 200 -->",
        ),
    ] {
        assert!(doc.contains(good), "the doc no longer holds {good:?}");
        let (_, failures) = http_failures(&doc.replacen(good, bad, 1));
        assert!(!failures.is_empty(), "{bad:?} was not caught");
    }
}

/// Collects every message a connection receives until `until` (a type) arrives.
async fn collect_until(ws: &mut Ws, until: &str, seen: &mut Vec<Value>) -> Value {
    loop {
        let m = ws.recv_any().await;
        seen.push(m.clone());
        if m["type"] == until {
            return m;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_real_session_receives_is_valid_against_the_published_schemas() {
    let app = spawn_app_with(|c| c.heartbeat_ms = 100).await;
    let doc = document();
    let server_schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/schemas/server-message.schema.json")).unwrap(),
    )
    .unwrap();
    let ws_validator = jsonschema::validator_for(&server_schema).unwrap();
    let mut seen = Vec::new();
    let (token, _) = app.session("Alice").await;
    let a = app
        .create_auction(json!({"reserve": 20000, "buy_now": 90000, "soft_close": {"window_ms": 1000, "extend_ms": 1000}}))
        .await;
    let id = a["id"].as_str().unwrap();
    let mut ws = app.ws(Some(&token)).await;
    let mut lobby = app.ws(None).await;
    lobby.send(json!({"type": "subscribe_lobby"})).await;
    collect_until(&mut lobby, "ok", &mut seen).await;
    ws.send(json!({"type": "subscribe", "auction_id": id}))
        .await;
    collect_until(&mut ws, "snapshot", &mut seen).await;
    // A second watcher changes the count: `watchers` follows (at most once a second).
    lobby
        .send(json!({"type": "subscribe", "auction_id": id}))
        .await;
    collect_until(&mut lobby, "snapshot", &mut seen).await;
    ws.send(json!({"type": "bid", "auction_id": id, "amount": 10000, "request_id": "c-1"}))
        .await;
    collect_until(&mut ws, "bid_result", &mut seen).await;
    ws.send(json!({"type": "bid", "auction_id": id, "amount": 50000, "request_id": "c-2", "kind": "max"}))
        .await;
    collect_until(&mut ws, "bid_result", &mut seen).await;
    ws.send(json!({"type": "bid", "auction_id": id, "amount": 1, "request_id": "c-3", "expected_seq": 1}))
        .await;
    collect_until(&mut ws, "bid_result", &mut seen).await;
    ws.send(json!({"type": "bid", "auction_id": id, "amount": 1.5, "request_id": "c-4"}))
        .await;
    collect_until(&mut ws, "error", &mut seen).await;
    ws.send(json!({"type": "ping", "client_time": 1.5})).await;
    collect_until(&mut ws, "pong", &mut seen).await;
    collect_until(&mut ws, "heartbeat", &mut seen).await;
    let (status, _) = app
        .post(&format!("/api/auctions/{id}/end"), Some(ADMIN), json!({}))
        .await;
    assert_eq!(status, 200);
    collect_until(&mut ws, "closed", &mut seen).await;
    collect_until(&mut lobby, "closed", &mut seen).await;
    if !seen.iter().any(|m| m["type"] == "watchers") {
        collect_until(&mut ws, "watchers", &mut seen).await;
    }
    ws.send(json!({"type": "unsubscribe", "auction_id": id}))
        .await;
    collect_until(&mut ws, "ok", &mut seen).await;
    app.create_auction(json!({})).await;
    collect_until(&mut lobby, "auction_created", &mut seen).await;
    let types: BTreeSet<&str> = seen.iter().filter_map(|m| m["type"].as_str()).collect();
    for t in [
        "snapshot",
        "update",
        "bid_result",
        "error",
        "pong",
        "heartbeat",
        "closed",
        "lobby",
        "ok",
        "auction_created",
        "watchers",
    ] {
        assert!(types.contains(t), "no {t} seen: {types:?}");
    }
    for m in &seen {
        let errors: Vec<String> = ws_validator.iter_errors(m).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{m} refused by server-message.schema.json: {errors:?}"
        );
    }
    // And the HTTP answers, against the operations' response schemas.
    for (path, label) in [
        ("/api/auctions".to_string(), "GET /api/auctions 200"),
        (format!("/api/auctions/{id}"), "GET /api/auctions/{id} 200"),
        (
            format!("/api/auctions/{id}/bids"),
            "GET /api/auctions/{id}/bids 200",
        ),
        ("/api/time".to_string(), "GET /api/time 200"),
        ("/healthz".to_string(), "GET /healthz 200"),
        (
            "/api/auctions/nope".to_string(),
            "GET /api/auctions/{id} 404",
        ),
    ] {
        let (_, body) = app.get(&path).await;
        let schema = labelled_schema(&doc, label).unwrap();
        let errors: Vec<String> = validator_for(&doc, &schema)
            .iter_errors(&body)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{path}: {body} refused as {label}: {errors:?}"
        );
    }
    app.stop().await;
}
