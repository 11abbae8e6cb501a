//! The JSON examples of a protocol document (`docs/protocol.md`), for the tests that hold
//! them against the generated schemas and OpenAPI document. Test support: behind the
//! `doc-examples` feature.
//!
//! What counts as an example:
//! - every fenced ```` ```json ```` block (one or more JSON values, e.g. one message a line);
//! - every inline code span that starts with `{"type"` (a WebSocket message in the prose).
//!
//! A block may be labelled by an HTML comment on the line before it,
//! `<!-- example: LABEL -->`: `POST /api/session request`, `POST /api/session 200` (an
//! HTTP operation's body) or a type name such as `AuctionView`. A labelled type example also
//! fills the placeholders `{AuctionView}` / `{AuctionView after the bid}` elsewhere, and
//! `, ...` before a closing `]` stands for "more of the same" and is dropped.

use serde_json::Value;
use std::collections::BTreeMap;

/// One JSON value found in the document.
#[derive(Clone, Debug)]
pub struct Example {
    /// 1-based line of the block or span.
    pub line: usize,
    /// The `<!-- example: ... -->` label of its block, if any.
    pub label: Option<String>,
    /// Whether it came from an inline code span.
    pub inline: bool,
    pub value: Value,
}

/// Reads every example of `doc`. An example that is not JSON after its placeholders are
/// filled is an error naming its line, so a broken example cannot be skipped silently.
pub fn extract(doc: &str) -> Result<Vec<Example>, String> {
    let blocks = fenced_blocks(doc);
    // Type examples first: they fill the placeholders of the others.
    let mut named: BTreeMap<String, String> = BTreeMap::new();
    for b in &blocks {
        if let Some(label) = &b.label {
            if !label.contains(' ') {
                named.insert(label.clone(), b.text.trim().to_string());
            }
        }
    }
    let mut out = Vec::new();
    for b in &blocks {
        let text = fill(&b.text, &named, b.line)?;
        let values = serde_json::Deserializer::from_str(&text)
            .into_iter::<Value>()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("line {}: the json block is not JSON: {e}\n{text}", b.line))?;
        if values.is_empty() {
            return Err(format!("line {}: an empty json block", b.line));
        }
        for value in values {
            out.push(Example {
                line: b.line,
                label: b.label.clone(),
                inline: false,
                value,
            });
        }
    }
    let mut in_fence = false;
    for (i, line) in doc.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        for span in line.split('`').skip(1).step_by(2) {
            if !span.starts_with("{\"type\"") {
                continue;
            }
            let text = fill(span, &named, i + 1)?;
            let value = serde_json::from_str(&text)
                .map_err(|e| format!("line {}: `{span}` is not JSON: {e}", i + 1))?;
            out.push(Example {
                line: i + 1,
                label: None,
                inline: true,
                value,
            });
        }
    }
    Ok(out)
}

struct Block {
    line: usize,
    label: Option<String>,
    text: String,
}

fn fenced_blocks(doc: &str) -> Vec<Block> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_start();
        if fence.starts_with("```") {
            let is_json = fence.trim_start_matches('`').trim() == "json";
            let start = i;
            i += 1;
            let mut text = String::new();
            while i < lines.len() && !lines[i].trim_start().starts_with("```") {
                text.push_str(lines[i]);
                text.push('\n');
                i += 1;
            }
            if is_json {
                let label = start
                    .checked_sub(1)
                    .and_then(|p| lines[p].trim().strip_prefix("<!-- example:"))
                    .and_then(|l| l.strip_suffix("-->"))
                    .map(|l| l.trim().to_string());
                out.push(Block {
                    line: start + 1,
                    label,
                    text,
                });
            }
        }
        i += 1;
    }
    out
}

/// Replaces `{Name}` / `{Name words}` with the example labelled `Name`, and drops `, ...`
/// before `]`.
fn fill(text: &str, named: &BTreeMap<String, String>, line: usize) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('{') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let starts_upper = name.chars().next().is_some_and(|c| c.is_ascii_uppercase());
        match after.find('}') {
            Some(end) if starts_upper && !after[..end].contains(['"', '{']) => {
                let example = named.get(&name).ok_or_else(|| {
                    format!("line {line}: placeholder {{{name}}} has no `<!-- example: {name} -->` block")
                })?;
                out.push_str(example);
                rest = &after[end + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out.replace(", ...]", "]").replace(",...]", "]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_spans_labels_and_placeholders_are_read() {
        let doc = "text `{\"type\": \"ok\", \"what\": \"x\"}` and `{\"id\": 1}`\n\
                   <!-- example: Thing -->\n```json\n{\"a\": 1}\n```\n\
                   <!-- example: GET /x 200 -->\n```json\n{\"things\": [{Thing}, ...], \"b\": {Thing after}}\n```\n\
                   ```json\n{\"type\": \"p\"}\n{\"type\": \"q\"}\n```\n";
        let ex = extract(doc).unwrap();
        let values: Vec<String> = ex.iter().map(|e| e.value.to_string()).collect();
        assert_eq!(
            values,
            [
                r#"{"a":1}"#,
                r#"{"b":{"a":1},"things":[{"a":1}]}"#,
                r#"{"type":"p"}"#,
                r#"{"type":"q"}"#,
                r#"{"type":"ok","what":"x"}"#,
            ]
        );
        let labels: Vec<Option<&str>> = ex.iter().map(|e| e.label.as_deref()).collect();
        assert_eq!(
            labels,
            [Some("Thing"), Some("GET /x 200"), None, None, None]
        );
        assert!(ex[4].inline && ex[4].line == 1);
    }

    #[test]
    fn a_broken_example_or_an_unknown_placeholder_is_an_error() {
        let e = extract("x\n```json\n{\"a\": 1,}\n```\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = extract("```json\n{\"a\": {Nothing}}\n```\n").unwrap_err();
        assert!(e.contains("{Nothing}"), "{e}");
        let e = extract("see `{\"type\": \"x\", ...}`\n").unwrap_err();
        assert!(e.starts_with("line 1:"), "{e}");
    }
}
