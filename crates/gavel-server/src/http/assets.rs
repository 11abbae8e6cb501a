//! The web client, embedded in the binary from `web/dist` at build time.

use axum::http::{header, Uri};
use axum::response::{IntoResponse, Response};
use gavel_protocol::ErrorCode;

#[derive(rust_embed::Embed)]
#[folder = "../../web/dist"]
struct WebDist;

pub async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") {
        return not_found();
    }
    let path = if path.is_empty() { "index.html" } else { path };
    match WebDist::get(path) {
        Some(file) => {
            let mime = mime_guess::from_path(path).first_or_octet_stream();
            let cache = if path.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            (
                [
                    (header::CONTENT_TYPE, mime.as_ref().to_string()),
                    (header::CACHE_CONTROL, cache.to_string()),
                ],
                file.data,
            )
                .into_response()
        }
        None => not_found(),
    }
}

fn not_found() -> Response {
    super::ApiError::new(ErrorCode::NotFound, "no such endpoint or file").into_response()
}
