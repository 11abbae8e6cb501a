//! The accept loop: every TCP connection, HTTP or WebSocket, holds a connection slot of its
//! client address, and a plain HTTP connection has read deadlines.
//!
//! `axum::serve` has neither: a client sending half a request line held a descriptor
//! forever, and only WebSockets were counted per address. Here each accepted socket first
//! takes a slot from [`Limits::connect`] (over the cap it is answered `429
//! too_many_connections` and closed), then is served by hyper with a header read timeout
//! (which also closes an idle keep-alive connection: hyper starts it whenever it waits for
//! a request head). Bodies have their own deadline where they are read (`JsonBody`). A
//! WebSocket upgrade takes the connection's slot with it (see [`SlotHandoff`]), so an
//! upgraded connection is counted once, for as long as it lives.
//!
//! A connection from a `--trusted-proxies` peer is different (see `proxy.rs`): it counts in
//! the total but not against the proxy's own per-address cap, and each of its requests is
//! given the address the proxy names (`ConnectInfo`, so limits and logs see the client) and
//! takes a slot of that address while it runs; over the client's cap the request is
//! answered `429 too_many_connections`. A WebSocket upgrade keeps the request's slot.

use crate::limits::ConnectionSlot;
use crate::AppState;
use axum::extract::ConnectInfo;
use axum::Router;
use futures::FutureExt;
use gavel_protocol::{ErrorBody, ErrorCode, ErrorDetail};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// The connection's slot, in every request's extensions until a WebSocket upgrade takes it.
#[derive(Clone)]
pub struct SlotHandoff(Arc<Mutex<Option<ConnectionSlot>>>);

impl SlotHandoff {
    /// Takes the slot (once): the upgraded connection holds it from now on.
    pub fn take(&self) -> Option<ConnectionSlot> {
        self.0.lock().take()
    }
}

/// Serves `app` on `listener` until `shutdown`, then closes the listener at once (a new
/// connection is refused, so a load balancer moves on to another node) and keeps serving
/// the open HTTP connections, each response saying `connection: close`, until
/// `close_http`; then lets open HTTP exchanges finish (bounded) and returns.
pub async fn run(
    listener: TcpListener,
    app: Router,
    state: Arc<AppState>,
    shutdown: CancellationToken,
    close_http: CancellationToken,
) -> std::io::Result<()> {
    let connections = TaskTracker::new();
    loop {
        let (tcp, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: not fatal.
                    metrics::counter!("gavel_accept_errors_total").increment(1);
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        // A trusted proxy carries many clients: its connections count in the total only,
        // and each of its requests takes a slot of the client it names (see `serve_one`).
        let slot = if state.proxies.trusts(addr.ip()) {
            state.limits.connect_proxy(addr.ip())
        } else {
            state.limits.connect(addr.ip())
        };
        let Some(slot) = slot else {
            metrics::counter!("gavel_connections_refused_total").increment(1);
            connections.spawn(refuse(tcp));
            continue;
        };
        let _ = tcp.set_nodelay(true);
        connections.spawn(serve_one(
            tcp,
            addr,
            slot,
            app.clone(),
            state.clone(),
            close_http.clone(),
        ));
    }
    // Refuse from now on, including what waits in the kernel's accept queue.
    drop(listener);
    connections.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), connections.wait()).await;
    Ok(())
}

async fn serve_one(
    tcp: TcpStream,
    addr: SocketAddr,
    slot: ConnectionSlot,
    app: Router,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) {
    let proxied = state.proxies.trusts(addr.ip());
    // A proxied connection's own slot (total count only) lives as long as the connection.
    let (own, _proxy_slot) = if proxied {
        (None, Some(slot))
    } else {
        (Some(slot), None)
    };
    let handoff = SlotHandoff(Arc::new(Mutex::new(own)));
    let limits_state = state.clone();
    let draining = state.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let app = app.clone();
        let draining = draining.clone();
        let mut handoff = handoff.clone();
        // Through a trusted proxy: the client it names is the request's address (limits,
        // logs), and the request holds a connection slot of that client while it runs (a
        // WebSocket upgrade keeps it).
        let client = if proxied {
            let client = limits_state.proxies.client_addr(addr, req.headers());
            match limits_state.limits.connect(client.ip()) {
                Some(slot) => handoff = SlotHandoff(Arc::new(Mutex::new(Some(slot)))),
                None => {
                    metrics::counter!("gavel_connections_refused_total").increment(1);
                    tracing::info!(client = %client.ip(), proxy = %addr.ip(), "request refused: too many connections from the client");
                    let refused = super::ApiError::new(
                        ErrorCode::TooManyConnections,
                        "too many connections from this address",
                    );
                    return futures::future::Either::Left(std::future::ready(Ok(
                        axum::response::IntoResponse::into_response(refused),
                    )));
                }
            }
            client
        } else {
            addr
        };
        req.extensions_mut().insert(ConnectInfo(client));
        req.extensions_mut().insert(handoff);
        futures::future::Either::Right(app.oneshot(req.map(axum::body::Body::new)).map(
            move |res| {
                res.map(|mut res| {
                    // A draining node answers what it is asked, then lets the connection go.
                    if draining.drain.is_draining() {
                        res.headers_mut().insert(
                            axum::http::header::CONNECTION,
                            axum::http::HeaderValue::from_static("close"),
                        );
                    }
                    res
                })
            },
        ))
    });

    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(
            state.config.http_header_timeout_secs.max(1),
        ))
        .keep_alive(true);
    let conn = http
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "HTTP connection ended");
            }
        }
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

/// Answers a connection over the per-address or total cap with a JSON 429, then closes it.
async fn refuse(mut tcp: TcpStream) {
    let body = serde_json::to_string(&ErrorBody {
        error: ErrorDetail {
            code: ErrorCode::TooManyConnections,
            message: "too many connections from this address".into(),
        },
    })
    .expect("an error body always serializes");
    let response = format!(
        "HTTP/1.1 {} Too Many Requests\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        ErrorCode::TooManyConnections.http_status(),
        body.len()
    );
    let write = async {
        tcp.write_all(response.as_bytes()).await?;
        tcp.shutdown().await
    };
    if tokio::time::timeout(Duration::from_secs(1), write)
        .await
        .is_err()
    {
        return;
    }
    // Read what the client already sent before closing: closing with unread bytes resets
    // the connection, and the client may then never see the answer.
    let drain = async {
        let mut buf = [0u8; 4096];
        let mut left: usize = 64 * 1024;
        while left > 0 {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left -= n.min(left),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(200), drain).await;
}
