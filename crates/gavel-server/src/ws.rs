//! The WebSocket API (`/ws`): one task per connection.
//!
//! The task owns the socket and the connection's subscriptions (per-auction `broadcast`
//! receivers). It reads client messages, answers them, and forwards its rooms' frames. The
//! fan-out never waits for this socket: if this client lags behind a room's buffer it is
//! sent the latest snapshot instead (conflation), and if its socket accepts nothing for
//! `slow_client_secs` it is closed as too slow. Frames already waiting are written with one
//! flush. Bids run as futures owned by the connection (a set created at its first bid, so a
//! connection that only watches holds none): each is decided at once and answered when its
//! group commit lands, without a task, a queue or a cross-thread hand-off per bid.

use crate::auth::{AuthError, Principal};
use crate::bidding::{self, RawBid};
use crate::fanout::{SharedFrame, Start, Watch};
use crate::http::serve::SlotHandoff;
use crate::http::session::user_view;
use crate::http::{ApiError, Query};
use crate::limits::ConnectionSlot;
use crate::AppState;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, SinkExt, StreamExt};
use gavel_core::AuctionId;
use gavel_engine::EngineError;
use gavel_protocol::{ClientMessage, ErrorCode, Limits, ReconnectReason, ServerMessage};
use serde::Deserialize;
use serde_json::Value;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tokio_stream::wrappers::{errors::BroadcastStreamRecvError, BroadcastStream};
use tokio_stream::StreamMap;
use tokio_util::sync::WaitForCancellationFutureOwned;
use tokio_util::task::task_tracker::TaskTrackerToken;

/// Close codes (RFC 6455, and 1012 from the IANA registry).
const PROTOCOL_ERROR: u16 = 1002;
const INVALID_PAYLOAD: u16 = 1007;
const POLICY_VIOLATION: u16 = 1008;
const MESSAGE_TOO_BIG: u16 = 1009;
/// "Service restart": sent after `reconnect` when the node drains.
const SERVICE_RESTART: u16 = 1012;

/// Bids one connection may have waiting for a decision at once.
const BIDS_IN_FLIGHT: usize = 32;

/// The shortest time between two latency reports of one connection (clients send one
/// every 30 s).
const REPORT_INTERVAL_MIN: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
pub struct WsQuery {
    token: Option<String>,
}

pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Query(q): Query<WsQuery>,
    handoff: Option<Extension<SlotHandoff>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return ApiError::new(ErrorCode::BadRequest, e.body_text()).into_response(),
    };
    // Only a connection opened before the drain can still ask (new ones are refused).
    if state.drain.is_draining() {
        return ApiError::new(
            ErrorCode::Unavailable,
            "this node is shutting down: connect again (another node will answer)",
        )
        .into_response();
    }
    // The connection's slot (taken when it was accepted) goes with the upgrade; a router
    // served some other way takes one here.
    let slot = match handoff {
        Some(Extension(h)) => h.take(),
        None => state.limits.connect(addr.ip()),
    };
    let Some(slot) = slot else {
        metrics::counter!("gavel_ws_refused_total").increment(1);
        return ApiError::new(
            ErrorCode::TooManyConnections,
            "too many WebSocket connections from this address",
        )
        .into_response();
    };
    // A bad token does not stop anyone from watching: the connection starts anonymous and
    // is told why (bidding needs a valid token).
    let (user, refused) = match q.token.as_deref() {
        None | Some("") => (None, None),
        Some(t) => match state.authenticate(t, addr.ip(), state.engine.now()).await {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        },
    };
    // Messages up to our limit are read whole and refused politely with 1009; the
    // WebSocket layer drops only the absurd (over 16 times the limit, at least 64 KiB).
    let hard_limit = (state.config.max_message_bytes * 16).max(64 * 1024);
    let track = state.tracker.token();
    ws.max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        // Client messages are small (a bid is ~150 bytes): a 256-byte read buffer. It does not
        // limit message size: a longer message reserves its full length when its header arrives.
        .read_buffer_size(256)
        // Frames collect in the write buffer until the connection flushes a batch.
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(1024 * 1024)
        .on_upgrade(move |socket| {
            let conn = Conn {
                shutdown: Box::pin(state.shutdown.clone().cancelled_owned()),
                timer: Box::pin(tokio::time::sleep_until(Instant::now())),
                last_sent: Instant::now(),
                last_received: Instant::now(),
                pinged: false,
                closing_at: None,
                state,
                socket,
                user: user.map(Box::new),
                outbox: Vec::new(),
                outbox_bytes: 0,
                measured: Vec::new(),
                last_report: None,
                subscriptions: StreamMap::with_capacity(1),
                lobby: None,
                personal: None,
                bids: None,
                _slot: slot,
                _track: track,
            };
            // Boxed, and served through `&mut`: the task holds one pointer and the box one
            // copy of the connection's state (a by-value `self` would be stored twice).
            let mut conn = conn;
            Box::pin(async move { conn.serve(refused).await })
        })
}

/// The common case, parsed in one pass: a message with no escape sequences and no key that
/// could name a bidder goes straight into its type. Anything else (including any message that
/// fails here) takes [`parse_checked`], which explains what is wrong.
fn parse_plain(raw: &str) -> Option<ClientMessage> {
    const IDENTITY_KEYS: [&str; 4] = ["\"bidder\"", "\"bidder_id\"", "\"user\"", "\"user_id\""];
    debug_assert_eq!(IDENTITY_KEYS.len(), gavel_protocol::IDENTITY_FIELDS.len());
    if raw.contains('\\') || IDENTITY_KEYS.iter().any(|k| raw.contains(k)) {
        return None;
    }
    serde_json::from_str(raw).ok()
}

/// Parses a message through a JSON value, so each problem gets its own error code: not JSON,
/// an identity field, an unknown type, or a malformed message of a known type.
fn parse_checked(raw: &str) -> Result<ClientMessage, Utf8Bytes> {
    let v: Value = match serde_json::from_str(raw) {
        Ok(v) => v,
        Err(e) => {
            return Err(error(ErrorCode::BadJson, format!("not JSON: {e}"), None));
        }
    };
    let request_id = v
        .get("request_id")
        .and_then(Value::as_str)
        .map(|s| s.chars().take(64).collect::<String>());
    if let Err(e) = bidding::check_identity_fields(&v) {
        return Err(error(e.code, e.message, request_id));
    }
    let known_type = v
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| ClientMessage::TYPES.contains(&t));
    if !known_type {
        let message = format!("type must be one of {}", ClientMessage::TYPES.join(", "));
        return Err(error(ErrorCode::UnknownType, message, request_id));
    }
    // Read from the text, not from `v`: a JSON value keeps only the last of repeated keys,
    // while reading into the message type sees (and refuses) every one.
    serde_json::from_str(raw)
        .map_err(|e| error(ErrorCode::InvalidMessage, e.to_string(), request_id))
}

/// The frames counter, looked up once: the recorder is installed before any connection, and
/// a lookup per flush would be paid once per watcher for every update.
fn frames_sent() -> &'static metrics::Counter {
    static FRAMES_SENT: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();
    FRAMES_SENT.get_or_init(|| metrics::counter!("gavel_ws_frames_sent_total"))
}

fn text(msg: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(msg.to_json())
}

fn error(code: ErrorCode, message: impl Into<String>, request_id: Option<String>) -> Utf8Bytes {
    text(&ServerMessage::Error {
        code,
        message: message.into(),
        request_id,
        auction_id: None,
    })
}

fn ok(what: &str) -> Utf8Bytes {
    text(&ServerMessage::Ok { what: what.into() })
}

fn not_found(auction_id: &str) -> Utf8Bytes {
    text(&ServerMessage::Error {
        code: ErrorCode::NotFound,
        message: "no such auction".into(),
        request_id: None,
        auction_id: Some(auction_id.chars().take(64).collect()),
    })
}

/// The `error` for a token that was refused (the connection stays, anonymous).
fn refused(e: &AuthError) -> Utf8Bytes {
    let message = match e {
        AuthError::Expired => {
            "your session has expired: you can watch; send auth with a fresh token to bid"
        }
        AuthError::RateLimited => {
            "too many failed sign-ins from this address; try again in a minute"
        }
        AuthError::NotYetValid => "the token is not valid yet: you can watch, but not bid",
        AuthError::BadIssuer(_)
        | AuthError::BadAudience(_)
        | AuthError::BadSignature(_)
        | AuthError::UnknownKey(_)
        | AuthError::Malformed(_) => {
            return error(e.code(), format!("{e}: you can watch, but not bid"), None)
        }
        _ => "invalid token: you can watch, but sign in again to bid",
    };
    error(e.code(), message, None)
}

fn hello(state: &AppState, user: Option<&Principal>) -> Utf8Bytes {
    text(&ServerMessage::Hello {
        heartbeat_ms: state.config.heartbeat_ms,
        user: user.map(user_view),
        server_time: state.engine.now(),
        limits: Limits {
            max_message_bytes: state.config.max_message_bytes,
            max_subscriptions: state.config.max_subscriptions,
            bids_per_second: state.config.bids_per_second,
        },
    })
}

/// Messages taken from what is already waiting before the socket is flushed once.
const WRITE_BATCH: usize = 64;
/// Bytes of messages queued before the socket is flushed: a batch stops taking inputs past
/// this, so what one connection holds waiting for its socket is bounded in bytes as well as
/// in messages (64 large snapshots would otherwise queue megabytes).
const WRITE_BATCH_BYTES: usize = 256 * 1024;
/// What the connection reacts to.
enum Input {
    Client(Option<Result<Message, axum::Error>>),
    BidAnswer(Utf8Bytes),
    Room(AuctionId, Result<SharedFrame, BroadcastStreamRecvError>),
    Lobby(Result<SharedFrame, BroadcastStreamRecvError>),
    Personal(Result<Utf8Bytes, tokio::sync::broadcast::error::RecvError>),
    /// A heartbeat or the session's expiry may be due.
    Timer,
    Shutdown,
}

/// Whether the connection goes on after an input.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// A bid being decided (or waiting for its group commit), yielding its answer.
type PendingBid = Pin<Box<dyn std::future::Future<Output = Utf8Bytes> + Send>>;

/// One subscription: its place in the room (dropping it leaves the room) and its frames.
struct Subscription {
    watch: Watch,
    frames: BroadcastStream<SharedFrame>,
}

impl futures::Stream for Subscription {
    type Item = Result<SharedFrame, BroadcastStreamRecvError>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        match self.frames.poll_next_unpin(cx) {
            // A watched room lives as long as the hub: an ended channel means the server is
            // stopping.
            // Never end, so the subscription stays listed until the connection lets it go.
            std::task::Poll::Ready(None) => std::task::Poll::Pending,
            other => other,
        }
    }
}

/// One WebSocket connection's state. Its task's future holds this and little else, so what
/// an idle watcher costs is mostly here: every rarely taken path (subscribing, parsing a
/// message, closing) runs in a boxed future that exists only while it runs.
struct Conn {
    state: Arc<AppState>,
    socket: WebSocket,
    /// Made once: creating a wait on the shared shutdown token takes its lock, which every
    /// connection would otherwise do for every frame.
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Boxed: most watchers never sign in, and this struct is in every connection.
    user: Option<Box<Principal>>,
    /// Fires when a heartbeat or the session's expiry may be due (one timer for both; it is
    /// not reset by every write, `last_sent` is checked when it fires).
    timer: Pin<Box<Sleep>>,
    /// When the last frame was written.
    last_sent: Instant,
    /// When the client last sent anything (a message, a ping or a pong).
    last_received: Instant,
    /// Whether the client has been pinged since it last sent anything.
    pinged: bool,
    /// Draining: when this connection closes with 1012 (the delay its `reconnect` gave).
    closing_at: Option<Instant>,
    /// Messages written with the next flush.
    outbox: Vec<Message>,
    /// Bytes of the text messages in `outbox`.
    outbox_bytes: usize,
    /// The updates in `outbox` whose delivery latency is recorded once they are written.
    measured: Vec<SharedFrame>,
    /// When the client last sent a latency report.
    last_report: Option<Instant>,
    /// The subscribed rooms, keyed by auction.
    subscriptions: StreamMap<AuctionId, Subscription>,
    lobby: Option<BroadcastStream<SharedFrame>>,
    /// The personal channel (`subscribe_personal`), boxed: most connections never have one.
    personal: Option<Box<crate::personal::PersonalSub>>,
    /// The bids waiting for an answer (at most `BIDS_IN_FLIGHT`).
    bids: Option<Box<FuturesUnordered<PendingBid>>>,
    /// Held for the connection's life: its per-IP slot and its place in the shutdown wait.
    _slot: ConnectionSlot,
    _track: TaskTrackerToken,
}

impl Conn {
    /// Serves the connection until it ends; its subscriptions leave their rooms when the
    /// connection (and with it each `Watch`) is dropped.
    async fn serve(&mut self, refused: Option<AuthError>) {
        let outcome = self.run(refused).await;
        if outcome == Err(ErrorCode::TooSlow) {
            metrics::counter!("gavel_ws_too_slow_total").increment(1);
            tracing::info!("closing a client that cannot keep up");
            let limit = Duration::from_secs(1);
            let close = self.socket.send(Message::Close(Some(CloseFrame {
                code: POLICY_VIOLATION,
                reason: Utf8Bytes::from_static(ErrorCode::TooSlow.as_str()),
            })));
            let _ = Box::pin(tokio::time::timeout(limit, close)).await;
        }
    }

    async fn run(&mut self, refused: Option<AuthError>) -> Result<(), ErrorCode> {
        self.push(hello(&self.state, self.user.as_deref()));
        if let Some(e) = refused {
            self.push(self::refused(&e));
        }
        self.flush().await?;
        self.arm_timer();
        loop {
            let input = self.next().await;
            let mut flow = self.handle(input).await;
            // Take whatever else is already waiting, then write it all at once.
            let mut taken = 1;
            while flow == Flow::Continue
                && taken < WRITE_BATCH
                && self.outbox_bytes < WRITE_BATCH_BYTES
            {
                let Some(input) = self.next().now_or_never() else {
                    break;
                };
                flow = self.handle(input).await;
                taken += 1;
            }
            self.flush().await?;
            if flow == Flow::Stop {
                return Ok(());
            }
        }
    }

    async fn next(&mut self) -> Input {
        let lobby = async {
            match self.lobby.as_mut() {
                Some(l) => l.next().await,
                None => std::future::pending().await,
            }
        };
        let personal = async {
            match self.personal.as_mut() {
                Some(p) => p.rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let answer = async {
            match self.bids.as_mut() {
                Some(b) if !b.is_empty() => b.next().await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = &mut self.shutdown, if self.closing_at.is_none() => Input::Shutdown,
            Some(a) = answer => Input::BidAnswer(a),
            m = self.socket.next() => Input::Client(m),
            Some((id, item)) = self.subscriptions.next(), if !self.subscriptions.is_empty() => Input::Room(id, item),
            Some(item) = lobby => Input::Lobby(item),
            item = personal => Input::Personal(item),
            () = &mut self.timer => Input::Timer,
        }
    }

    /// Sets the timer to the next heartbeat (from the last write) or the session's expiry,
    /// whichever comes first; far away when neither applies.
    fn arm_timer(&mut self) {
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        let heartbeat = match self.state.config.heartbeat_ms {
            0 => far,
            ms => self.last_sent + Duration::from_millis(ms),
        };
        let quiet = Duration::from_secs(self.state.config.client_timeout_secs.max(1));
        let probe = match self.pinged {
            false => self.last_received + quiet,
            true => self.last_received + 2 * quiet,
        };
        let expiry = match self.user.as_ref().and_then(|u| u.expires_at()) {
            None => far,
            Some(at) => {
                let left = at.saturating_sub(self.state.engine.now()).max(0) as u64;
                Instant::now() + Duration::from_millis(left)
            }
        };
        let closing = self.closing_at.unwrap_or(far);
        self.timer
            .as_mut()
            .reset(heartbeat.min(expiry).min(probe).min(closing));
    }

    /// Ends a session whose token has expired (the connection stays, watch-only), sends a
    /// heartbeat if nothing else was sent for a whole interval, pings a client that has
    /// been quiet, and closes one that did not answer the ping: a client stalled in the
    /// middle of a frame cannot (a control frame cannot cut into a frame), and it holds
    /// the frame's buffer until it is closed.
    fn on_timer(&mut self) -> Flow {
        let quiet = Duration::from_secs(self.state.config.client_timeout_secs.max(1));
        let silent = self.last_received.elapsed();
        if self.pinged && silent >= 2 * quiet {
            metrics::counter!("gavel_ws_stalled_total").increment(1);
            tracing::debug!("closing a client that did not answer a ping");
            return self.close(POLICY_VIOLATION, "no answer to ping");
        }
        if !self.pinged && silent >= quiet {
            self.pinged = true;
            self.outbox.push(Message::Ping(Default::default()));
        }
        let expired = self
            .user
            .as_ref()
            .and_then(|u| u.expires_at())
            .is_some_and(|at| self.state.engine.now() >= at);
        if expired {
            self.user = None;
            // The personal channel belongs to a signed-in user only.
            self.personal = None;
            self.push(refused(&AuthError::Expired));
        }
        let hb = self.state.config.heartbeat_ms;
        if self.outbox.is_empty() && hb > 0 && self.last_sent.elapsed() >= Duration::from_millis(hb)
        {
            let beat = text(&ServerMessage::Heartbeat {
                server_time: self.state.engine.now(),
            });
            self.push(beat);
        }
        if !self.outbox.is_empty() {
            // Counted from the write this flush is about to do.
            self.last_sent = Instant::now();
        }
        self.arm_timer();
        Flow::Continue
    }

    /// Queues a text message for the next flush.
    fn push(&mut self, t: Utf8Bytes) {
        self.outbox_bytes += t.len();
        self.outbox.push(Message::Text(t));
    }

    /// Writes the queued messages with one flush. A socket that accepts nothing for
    /// `slow_client_secs` makes the client too slow.
    /// `Err(TooSlow)` for a client too slow, `Err(BadRequest)` for a socket that failed.
    async fn flush(&mut self) -> Result<(), ErrorCode> {
        if self.outbox.is_empty() {
            return Ok(());
        }
        let count = self.outbox.len() as u64;
        let limit = Duration::from_secs(self.state.config.slow_client_secs.max(1));
        let (socket, outbox) = (&mut self.socket, &mut self.outbox);
        let write = async move {
            for msg in outbox.drain(..) {
                socket.feed(msg).await?;
            }
            socket.flush().await
        };
        let written = tokio::time::timeout(limit, write).await;
        self.last_sent = Instant::now();
        // Released after every flush: an idle watcher then holds no outbox at all (0.2 KiB
        // each), and an active one pays one allocation per flush, beside a system call.
        self.outbox = Vec::new();
        self.outbox_bytes = 0;
        match written {
            Ok(Ok(())) => {
                frames_sent().increment(count);
                self.record_delivery();
                Ok(())
            }
            Ok(Err(_)) => Err(ErrorCode::BadRequest),
            Err(_) => Err(ErrorCode::TooSlow),
        }
    }

    /// Records decision → written for the updates just written (overall and per auction).
    fn record_delivery(&mut self) {
        if self.measured.is_empty() {
            return;
        }
        let now = self.state.engine.now();
        for frame in self.measured.drain(..) {
            if let Some(at) = frame.decided_at {
                let ms = now - at;
                crate::latency::OVERALL.server.record_ms(ms);
                if let Some(room) = &frame.latency {
                    room.server.record_ms(ms);
                }
            }
        }
        self.measured = Vec::new();
    }

    /// A `latency_report`: refused with `invalid_message` when out of bounds and with
    /// `rate_limited` when sooner than [`REPORT_INTERVAL_MIN`] after the last one. Entries for
    /// auctions this connection does not watch count only in the totals.
    fn latency_report(&mut self, report: gavel_protocol::LatencyReport) {
        if self
            .last_report
            .is_some_and(|at| at.elapsed() < REPORT_INTERVAL_MIN)
        {
            return self.push(error(
                ErrorCode::RateLimited,
                format!(
                    "at most one latency report every {} s",
                    REPORT_INTERVAL_MIN.as_secs()
                ),
                None,
            ));
        }
        if let Err(e) = crate::latency::accept_report(&report) {
            return self.push(error(ErrorCode::InvalidMessage, e, None));
        }
        self.last_report = Some(Instant::now());
        for a in &report.auctions {
            let Ok(id) = AuctionId::parse(a.auction_id.as_str()) else {
                continue;
            };
            if let Some((_, sub)) = self.subscriptions.iter().find(|(k, _)| *k == id) {
                sub.watch
                    .room()
                    .latency()
                    .add_report(&a.counts, report.clock_error_ms);
            }
        }
        self.push(ok("latency_report"))
    }

    fn close(&mut self, code: u16, reason: &'static str) -> Flow {
        self.outbox.push(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })));
        Flow::Stop
    }

    async fn handle(&mut self, input: Input) -> Flow {
        if let Input::Client(Some(Ok(_))) = input {
            self.last_received = Instant::now();
            self.pinged = false;
        }
        match input {
            Input::Shutdown => self.send_elsewhere(),
            Input::Client(None) | Input::Client(Some(Ok(Message::Close(_)))) => return Flow::Stop,
            Input::Client(Some(Ok(Message::Text(t)))) => {
                if t.len() > self.state.config.max_message_bytes {
                    return self.refuse_too_large();
                }
                // Boxed: the parsing state lives only while a message is handled, not in
                // every idle connection's task.
                Box::pin(self.handle_text(t.as_str())).await;
            }
            Input::Client(Some(Ok(Message::Binary(_)))) => self.push(error(
                ErrorCode::InvalidMessage,
                "send JSON text frames",
                None,
            )),
            // Ping/Pong are answered by the WebSocket layer.
            Input::Client(Some(Ok(_))) => {}
            Input::Client(Some(Err(e))) => {
                // A protocol violation is answered with its close code (RFC 6455 7.4.1)
                // rather than a dropped connection, so the client can tell what it did.
                return match e.into_inner().downcast::<tungstenite::Error>().map(|e| *e) {
                    Ok(tungstenite::Error::Capacity(_)) => self.refuse_too_large(),
                    Ok(tungstenite::Error::Utf8(_)) => {
                        self.close(INVALID_PAYLOAD, "text frames must be valid UTF-8")
                    }
                    Ok(tungstenite::Error::Protocol(p)) => {
                        tracing::debug!(error = %p, "WebSocket protocol violation");
                        self.close(PROTOCOL_ERROR, "protocol error")
                    }
                    _ => Flow::Stop,
                };
            }
            Input::BidAnswer(t) => self.push(t),
            Input::Timer if self.closing_at.is_some_and(|at| Instant::now() >= at) => {
                return Box::pin(self.close_for_restart()).await;
            }
            Input::Timer => return self.on_timer(),
            Input::Room(_, Ok(frame)) | Input::Lobby(Ok(frame)) => {
                self.push(frame.text.clone());
                if frame.decided_at.is_some() {
                    self.measured.push(frame);
                }
            }
            Input::Room(id, Err(BroadcastStreamRecvError::Lagged(skipped))) => {
                metrics::counter!("gavel_ws_conflated_total").increment(1);
                tracing::debug!(auction = %id, skipped, "watcher lagged; sending snapshot");
                let hub = self.state.hub.clone();
                let resynced = self
                    .subscriptions
                    .iter_mut()
                    .find(|(k, _)| *k == id)
                    .and_then(|(_, sub)| {
                        let (snap, rx) = hub.resync(sub.watch.room());
                        sub.frames = BroadcastStream::new(rx);
                        snap
                    });
                if let Some(snap) = resynced {
                    self.push(snap);
                }
            }
            Input::Personal(Ok(t)) => self.push(t),
            Input::Personal(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                // Missed notifications: a fresh `personal` tells where the user stands now.
                metrics::counter!("gavel_ws_conflated_total").increment(1);
                Box::pin(self.subscribe_personal()).await;
            }
            Input::Personal(Err(tokio::sync::broadcast::error::RecvError::Closed)) => {
                self.personal = None;
            }
            Input::Lobby(Err(BroadcastStreamRecvError::Lagged(_))) => {
                metrics::counter!("gavel_ws_conflated_total").increment(1);
                if let Ok((snapshot, rx)) = Box::pin(self.state.hub.lobby()).await {
                    self.lobby = Some(BroadcastStream::new(rx));
                    self.push(snapshot);
                }
            }
        }
        Flow::Continue
    }

    /// The node drains: tells the client to reconnect after a delay of its own (spread
    /// over [`ServeConfig::reconnect_spread`](crate::config::ServeConfig::reconnect_spread)
    /// so a node's clients do not all land on the others at once) and keeps serving it
    /// until then.
    fn send_elsewhere(&mut self) {
        let spread = self.state.config.reconnect_spread().as_millis() as u64;
        let delay_ms = rand::random_range(0..=spread);
        self.push(text(&ServerMessage::Reconnect {
            delay_ms,
            reason: ReconnectReason::Draining,
        }));
        self.closing_at = Some(Instant::now() + Duration::from_millis(delay_ms));
        metrics::counter!("gavel_ws_reconnects_sent_total").increment(1);
        self.arm_timer();
    }

    /// The connection's `reconnect` delay has passed: answers the bids it is still
    /// deciding (until the drain's WebSocket time is up), then closes with 1012.
    async fn close_for_restart(&mut self) -> Flow {
        let grace = self.state.config.shutdown_grace();
        let until = self
            .state
            .drain
            .deadline()
            .map_or_else(|| Instant::now() + grace / 3, |d| d - grace / 3);
        if let Some(bids) = self.bids.as_mut() {
            while !bids.is_empty() {
                match tokio::time::timeout_at(until, bids.next()).await {
                    Ok(Some(answer)) => {
                        self.outbox_bytes += answer.len();
                        self.outbox.push(Message::Text(answer));
                    }
                    Ok(None) => break,
                    Err(_) => {
                        tracing::warn!(
                            left = bids.len(),
                            "bids still undecided when their connection had to close"
                        );
                        break;
                    }
                }
            }
        }
        self.close(SERVICE_RESTART, "service restart")
    }

    fn refuse_too_large(&mut self) -> Flow {
        let limit = self.state.config.max_message_bytes;
        self.push(error(
            ErrorCode::MessageTooLarge,
            format!("messages are limited to {limit} bytes"),
            None,
        ));
        self.close(MESSAGE_TOO_BIG, "message too large")
    }

    /// Leaves the auction's room (dropping the subscription's `Watch`).
    fn unwatch(&mut self, id: &AuctionId) -> bool {
        self.subscriptions.remove(id).is_some()
    }

    async fn handle_text(&mut self, raw: &str) {
        let msg = match parse_plain(raw) {
            Some(msg) => msg,
            None => match parse_checked(raw) {
                Ok(msg) => msg,
                Err(reply) => return self.push(reply),
            },
        };
        self.dispatch(msg).await
    }

    async fn dispatch(&mut self, msg: ClientMessage) {
        match msg {
            ClientMessage::Ping { client_time } => {
                let pong = text(&ServerMessage::Pong {
                    client_time,
                    server_time: self.state.engine.now(),
                });
                self.push(pong)
            }
            ClientMessage::Auth { token } => {
                let ip = self._slot.ip();
                let now = self.state.engine.now();
                // A failed `auth` leaves the connection anonymous: it never keeps an
                // identity the client no longer proves.
                self.user = None;
                // Nor its personal channel: subscribe again as whoever signs in now.
                self.personal = None;
                match self.state.authenticate(&token, ip, now).await {
                    Ok(p) => {
                        let hello = hello(&self.state, Some(&p));
                        self.user = Some(Box::new(p));
                        self.push(hello)
                    }
                    Err(e) => self.push(refused(&e)),
                }
                self.arm_timer();
            }
            ClientMessage::Subscribe {
                auction_id,
                since_seq,
            } => self.subscribe(&auction_id, since_seq).await,
            ClientMessage::LatencyReport(report) => self.latency_report(report),
            ClientMessage::Unsubscribe { auction_id } => {
                if let Ok(id) = AuctionId::parse(auction_id) {
                    self.unwatch(&id);
                }
                self.push(ok("unsubscribe"))
            }
            // Already subscribed: the lobby it has stays current through its updates, so a
            // repeat gets only the acknowledgement, never another copy of the lobby.
            ClientMessage::SubscribeLobby {} if self.lobby.is_some() => {
                self.push(ok("subscribe_lobby"))
            }
            ClientMessage::SubscribeLobby {} => match self.state.hub.lobby().await {
                Ok((snapshot, rx)) => {
                    self.lobby = Some(BroadcastStream::new(rx));
                    self.push(snapshot);
                    self.push(ok("subscribe_lobby"))
                }
                Err(e) => self.push(error(ErrorCode::Unavailable, e.to_string(), None)),
            },
            ClientMessage::SubscribePersonal {} => self.subscribe_personal().await,
            ClientMessage::UnsubscribePersonal {} => {
                self.personal = None;
                self.push(ok("unsubscribe_personal"))
            }
            ClientMessage::UnsubscribeLobby {} => {
                self.lobby = None;
                self.push(ok("unsubscribe_lobby"))
            }
            ClientMessage::Bid {
                auction_id,
                amount,
                request_id,
                expected_seq,
                kind,
                lean,
            } => {
                let lean = lean == Some(true);
                let Some(who) = self.user.as_deref().cloned() else {
                    return self.push(error(
                        ErrorCode::Unauthorized,
                        "sign in to bid: connect with ?token= or send an auth message",
                        Some(request_id),
                    ));
                };
                let bids = self.bids.get_or_insert_with(Default::default);
                if bids.len() >= BIDS_IN_FLIGHT {
                    return self.push(error(
                        ErrorCode::RateLimited,
                        "too many bids waiting for an answer on this connection",
                        Some(request_id),
                    ));
                }
                let state = self.state.clone();
                bids.push(Box::pin(async move {
                    let result = bidding::place(
                        &state,
                        &who,
                        RawBid {
                            auction_id: &auction_id,
                            amount: Some(&amount),
                            request_id: &request_id,
                            expected_seq,
                            kind: kind.as_deref(),
                        },
                    )
                    .await;
                    match result {
                        // The client holds the auction's view: only what the decision can
                        // change goes back (no title, description or settings).
                        Ok(a) if lean => text(&ServerMessage::BidResult(a.result.lean())),
                        Ok(a) => text(&ServerMessage::BidResult(a.result)),
                        Err(e) => error(e.code, e.message, Some(request_id)),
                    }
                }));
            }
        }
    }

    /// Starts (or restarts, re-reading the watchlist) the user's personal channel.
    async fn subscribe_personal(&mut self) {
        let Some(who) = self.user.as_deref().cloned() else {
            return self.push(error(
                ErrorCode::Unauthorized,
                "sign in to follow auctions: connect with ?token= or send an auth message",
                None,
            ));
        };
        // The old subscription goes first, so the user's channel is never counted twice.
        self.personal = None;
        match self.state.personal.subscribe(&who).await {
            Ok((text, sub)) => {
                self.personal = Some(Box::new(sub));
                self.push(text);
            }
            Err(crate::personal::PersonalError::NotAUser) => self.push(error(
                ErrorCode::Unauthorized,
                "sign in as a user to follow auctions",
                None,
            )),
            Err(e) => self.push(error(ErrorCode::Unavailable, e.to_string(), None)),
        }
    }

    async fn subscribe(&mut self, auction_id: &str, since_seq: Option<u64>) {
        let Ok(id) = AuctionId::parse(auction_id) else {
            return self.push(not_found(auction_id));
        };
        let max = self.state.config.max_subscriptions;
        if !self.subscriptions.contains_key(&id) && self.subscriptions.len() >= max {
            return self.push(error(
                ErrorCode::TooManySubscriptions,
                format!("at most {max} subscriptions per connection"),
                None,
            ));
        }
        // Subscribing again restarts the subscription (with the new since_seq).
        self.unwatch(&id);
        match self.state.hub.subscribe(&id, since_seq).await {
            Ok((watch, start, rx)) => {
                let frames = BroadcastStream::new(rx);
                self.subscriptions
                    .insert(id, Subscription { watch, frames });
                match start {
                    Start::Snapshot(t) => self.push(t),
                    Start::Replay(frames) => {
                        for f in frames {
                            self.push(f.text.clone());
                        }
                    }
                }
            }
            Err(EngineError::NotFound) => self.push(not_found(auction_id)),
            Err(e) => self.push(error(ErrorCode::Unavailable, e.to_string(), None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_bid_takes_the_one_pass_parse() {
        let raw = r#"{"type":"bid","auction_id":"a-1","amount":1250,"request_id":"r-1"}"#;
        assert!(matches!(
            parse_plain(raw),
            Some(ClientMessage::Bid { amount, .. }) if amount == 1250
        ));
    }

    #[test]
    fn identity_fields_never_take_the_one_pass_parse() {
        for raw in [
            r#"{"type":"bid","auction_id":"a","amount":1,"request_id":"r","bidder":"x"}"#,
            r#"{"type":"bid","auction_id":"a","amount":1,"request_id":"r","user_id":"x"}"#,
            // The same key spelled with an escape.
            r#"{"type":"bid","auction_id":"a","amount":1,"request_id":"r","bidd\u0065r":"x"}"#,
        ] {
            assert!(parse_plain(raw).is_none(), "{raw}");
            assert!(parse_checked(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn what_the_one_pass_parse_refuses_is_explained_by_the_checked_parse() {
        let refused = parse_checked(r#"{"type":"bid","auction_id":"a"}"#).unwrap_err();
        assert!(refused.as_str().contains("invalid_message"));
        let refused = parse_checked(r#"{"type":"shout"}"#).unwrap_err();
        assert!(refused.as_str().contains("unknown_type"));
        let refused = parse_checked("{").unwrap_err();
        assert!(refused.as_str().contains("bad_json"));
    }
}
