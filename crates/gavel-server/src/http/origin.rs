//! `--allowed-origins`: which browser pages may open a WebSocket or call the API from
//! another origin (CORS).
//!
//! A request without `Origin` (curl, a server, a native app) is not a browser page's and
//! passes. A WebSocket upgrade or a CORS preflight from an origin that is not allowed is
//! refused with `403 origin_not_allowed` and a logged reason. Any other request from such an
//! origin is served without CORS headers, so the browser does not let the page read it.
//! An allowed origin gets `Access-Control-Allow-Origin` (no credentials: the API takes
//! bearer tokens, never cookies).

use super::ApiError;
use crate::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gavel_protocol::ErrorCode;
use std::net::SocketAddr;
use std::sync::Arc;

/// The allowed origins.
#[derive(Clone, Debug, Default)]
pub struct Origins {
    /// `scheme://host[:port]`, lower case.
    exact: Vec<String>,
    /// `scheme://host` of `scheme://host:*` entries.
    any_port: Vec<String>,
    any: bool,
}

impl Origins {
    /// From `--allowed-origins`, plus `http://localhost:*` and `http://127.0.0.1:*` in
    /// `--demo`. (The server's own origin is always allowed; it is not known here.)
    pub fn new(listed: &[String], demo: bool) -> Self {
        let mut o = Origins::default();
        let demo_entries = ["http://localhost:*", "http://127.0.0.1:*"];
        let entries = listed
            .iter()
            .map(String::as_str)
            .chain(demo.then_some(demo_entries).into_iter().flatten());
        for entry in entries {
            let e = entry.trim().trim_end_matches('/').to_ascii_lowercase();
            if e.is_empty() {
                continue;
            }
            if e == "*" {
                o.any = true;
            } else if let Some(base) = e.strip_suffix(":*") {
                o.any_port.push(base.to_string());
            } else {
                o.exact.push(e);
            }
        }
        o
    }

    /// Whether a page of `origin` may call a server reached as `host` (the `Host` header).
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if self.any && origin != "null" {
            return true;
        }
        // The server's own origin (same scheme-less authority as the Host it was reached at).
        let authority = origin.split_once("://").map(|(_, a)| a);
        if let (Some(a), Some(h)) = (authority, host) {
            if a.eq_ignore_ascii_case(h.trim()) {
                return true;
            }
        }
        if self.exact.contains(&origin) {
            return true;
        }
        self.any_port.iter().any(|base| {
            origin == *base
                || origin
                    .strip_prefix(base.as_str())
                    .and_then(|rest| rest.strip_prefix(':'))
                    .is_some_and(|port| {
                        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                    })
        })
    }
}

/// The middleware (see the module documentation).
pub async fn check(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    else {
        return next.run(req).await;
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    let allowed = state.origins.allows(&origin, host);
    let websocket = req
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if !allowed {
        if websocket || preflight {
            let peer = req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string())
                .unwrap_or_default();
            let what = if websocket {
                "WebSocket upgrade"
            } else {
                "CORS preflight"
            };
            metrics::counter!("gavel_origin_refused_total").increment(1);
            tracing::warn!(
                origin = %origin.chars().take(200).collect::<String>(),
                path = %req.uri().path(),
                client = %peer,
                "{what} refused: the origin is not in --allowed-origins"
            );
            return ApiError::new(
                ErrorCode::OriginNotAllowed,
                format!(
                    "pages from {} may not use this server (--allowed-origins)",
                    origin.chars().take(200).collect::<String>()
                ),
            )
            .into_response();
        }
        return next.run(req).await;
    }
    let value = HeaderValue::from_str(&origin).ok();
    if preflight {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        if let Some(v) = value {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, idempotency-key"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        h.insert(header::VARY, HeaderValue::from_static("origin"));
        return r;
    }
    let mut r = next.run(req).await;
    if let Some(v) = value {
        r.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        r.headers_mut()
            .append(header::VARY, HeaderValue::from_static("origin"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_own_and_demo_origins_are_allowed_and_others_not() {
        let o = Origins::new(
            &["https://shop.example".into(), "http://dev.local:*".into()],
            false,
        );
        assert!(o.allows("https://shop.example", Some("gavel.example")));
        assert!(o.allows("HTTPS://Shop.Example/", None));
        assert!(!o.allows("http://shop.example", None), "another scheme");
        assert!(!o.allows("https://shop.example.evil.com", None));
        assert!(o.allows("http://dev.local:5173", None));
        assert!(o.allows("http://dev.local", None));
        assert!(!o.allows("http://dev.local:5173x", None));
        assert!(!o.allows("http://dev.localhost:5173", None));
        assert!(
            o.allows("https://gavel.example", Some("gavel.example")),
            "own origin"
        );
        assert!(
            o.allows("http://127.0.0.1:3000", Some("127.0.0.1:3000")),
            "own origin"
        );
        assert!(!o.allows("http://127.0.0.1:3001", Some("127.0.0.1:3000")));
        assert!(
            !o.allows("http://localhost:5173", Some("127.0.0.1:3000")),
            "not in demo"
        );
        assert!(!o.allows("null", Some("127.0.0.1:3000")));
        let demo = Origins::new(&[], true);
        assert!(demo.allows("http://localhost:5173", None));
        assert!(demo.allows("http://127.0.0.1:8080", None));
        assert!(!demo.allows("https://localhost:5173", None));
        let any = Origins::new(&["*".into()], false);
        assert!(any.allows("https://anything.example", None));
        assert!(!any.allows("null", None));
    }
}
