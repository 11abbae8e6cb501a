//! The web client, embedded in the binary from `web/dist` at build time.

use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use gavel_protocol::ErrorCode;

#[derive(rust_embed::Embed)]
#[folder = "../../web/dist"]
struct WebDist;

/// `Cache-Control` of `/embed/*` (the `<gavel-auction>` script): five minutes, then revalidated.
pub const EMBED_CACHE: &str = "public, max-age=300, must-revalidate";

pub async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") {
        return not_found();
    }
    let path = if path.is_empty() { "index.html" } else { path };
    match WebDist::get(path) {
        Some(file) => {
            let mime = mime_guess::from_path(path).first_or_octet_stream();
            let embed = path.starts_with("embed/");
            let cache = if path.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else if embed {
                // The embeddable bid box keeps its name across releases (shops link to it):
                // cached for a while, then revalidated by its ETag.
                EMBED_CACHE
            } else {
                "no-cache"
            };
            let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
            let mut response = (
                [
                    (header::CONTENT_TYPE, mime.as_ref().to_string()),
                    (header::CACHE_CONTROL, cache.to_string()),
                    (header::ETAG, etag.clone()),
                ],
                file.data,
            )
                .into_response();
            if embed {
                // Shop pages on any origin load it (also with `crossorigin` / integrity checks).
                response.headers_mut().insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    header::HeaderValue::from_static("*"),
                );
            }
            if if_none_match
                .as_deref()
                .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
            {
                let headers = response.headers().clone();
                let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
                for name in [
                    header::CACHE_CONTROL,
                    header::ETAG,
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                ] {
                    if let Some(v) = headers.get(&name) {
                        not_modified.headers_mut().insert(name, v.clone());
                    }
                }
                return not_modified;
            }
            response
        }
        None => not_found(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn not_found() -> Response {
    super::ApiError::new(ErrorCode::NotFound, "no such endpoint or file").into_response()
}
