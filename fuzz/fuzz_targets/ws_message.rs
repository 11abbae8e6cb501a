//! The WebSocket client message parser (`gavel_protocol::ClientMessage`) on arbitrary bytes:
//! parsing never panics, and whatever parses serialises to JSON that parses back to the same
//! message (the same JSON, floats to within one unit in the last place).
#![no_main]

use gavel_protocol::ClientMessage;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Equal JSON, except that a float may come back one unit in the last place away:
/// serde_json (without its `float_roundtrip` feature) does not always read back the
/// shortest text it writes for a double exactly (found by this target: `client_time`
/// 11974342500815475670.5 echoes as ...475e19, reads back as ...477e19).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            let (x, y) = (x.as_f64().expect("f64"), y.as_f64().expect("f64"));
            x == y || x.to_bits().abs_diff(y.to_bits()) <= 1
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    // The server reads text frames only: bytes that are not UTF-8 never reach the parser,
    // but `from_slice` must refuse them without panicking either.
    let from_bytes = serde_json::from_slice::<ClientMessage>(data);
    let Ok(raw) = std::str::from_utf8(data) else {
        assert!(from_bytes.is_err(), "invalid UTF-8 parsed as a message");
        return;
    };
    let Ok(msg) = serde_json::from_str::<ClientMessage>(raw) else {
        assert!(
            from_bytes.is_err(),
            "from_slice and from_str disagree on {raw:?}"
        );
        return;
    };
    assert!(
        from_bytes.is_ok(),
        "from_slice and from_str disagree on {raw:?}"
    );
    if let ClientMessage::LatencyReport(report) = &msg {
        // Bounds are checked after parsing: never a panic, whatever the counts.
        let _ = report.validate();
    }
    let json = serde_json::to_string(&msg).expect("a parsed message serialises");
    let again: ClientMessage = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("{json} (from {raw:?}) does not parse back: {e}"));
    let v1 = serde_json::to_value(&msg).expect("serialises to a value");
    let v2 = serde_json::to_value(&again).expect("serialises to a value");
    assert!(
        same(&v1, &v2),
        "round trip changed the message: {v1} became {v2} (from {raw:?})"
    );
});
