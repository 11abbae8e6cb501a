//! The WebSocket API (`/ws`): one reader loop and one writer task per connection.
//!
//! The reader parses client messages and answers them through a small bounded queue to the
//! writer. The writer owns the socket's send half and the connection's subscriptions
//! (per-auction `broadcast` receivers), so the fan-out never waits for this socket: if this
//! client lags behind a room's buffer it is sent the latest snapshot instead (conflation),
//! and if its socket accepts nothing for `slow_client_secs` it is closed as too slow.

use crate::auth::Principal;
use crate::bidding::{self, RawBid};
use crate::fanout::{Room, SharedFrame, Start};
use crate::http::session::user_view;
use crate::AppState;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::{FutureExt, SinkExt, StreamExt};
use gavel_core::AuctionId;
use gavel_engine::EngineError;
use gavel_protocol::{ClientMessage, Limits, ServerMessage};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, Semaphore};
use tokio_stream::wrappers::{errors::BroadcastStreamRecvError, BroadcastStream};
use tokio_stream::StreamMap;

/// Close codes (RFC 6455).
const GOING_AWAY: u16 = 1001;
const POLICY_VIOLATION: u16 = 1008;
const MESSAGE_TOO_BIG: u16 = 1009;

/// Messages queued from the reader (and bid tasks) to the writer.
const OUTBOUND_QUEUE: usize = 64;
/// Bids one connection may have waiting for a decision at once.
const BIDS_IN_FLIGHT: usize = 32;

#[derive(Deserialize)]
pub struct WsQuery {
    token: Option<String>,
}

pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Query(q): Query<WsQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(slot) = state.limits.connect(addr.ip()) else {
        metrics::counter!("gavel_ws_refused_total").increment(1);
        return crate::http::ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections",
            "too many WebSocket connections from this address",
        )
        .into_response();
    };
    // A bad token does not stop anyone from watching: the connection starts anonymous and
    // is told why (bidding needs a valid token).
    let (user, token_refused) = match q.token.as_deref() {
        None | Some("") => (None, false),
        Some(t) => match state.auth.verify(t) {
            Ok(p) => (Some(p), false),
            Err(_) => (None, true),
        },
    };
    // Messages up to our limit are read whole and refused politely with 1009; the
    // WebSocket layer drops only the absurd (over 16 times the limit, at least 64 KiB).
    let hard_limit = (state.config.max_message_bytes * 16).max(64 * 1024);
    let track = state.tracker.token();
    ws.max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        // Client messages are small: a 1 KiB read buffer (it does not limit message size).
        .read_buffer_size(1024)
        // Frames collect in the write buffer until the writer flushes a batch.
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(1024 * 1024)
        .on_upgrade(move |socket| async move {
            connection(state, socket, user, token_refused).await;
            drop(slot);
            drop(track);
        })
}

/// What the reader (and bid tasks) ask the writer to do. Kept small: the per-connection
/// queue allocates its slots up front.
enum Outbound {
    Text(Utf8Bytes),
    Watch(Box<Watch>),
    Unwatch(AuctionId),
    Lobby(Option<Box<(Utf8Bytes, broadcast::Receiver<SharedFrame>)>>),
    Close(u16, &'static str),
}

/// A new subscription: what to send first, then the room's live frames.
struct Watch {
    id: AuctionId,
    room: Arc<Room>,
    start: Start,
    rx: broadcast::Receiver<SharedFrame>,
}

fn text(msg: &ServerMessage) -> Outbound {
    Outbound::Text(Utf8Bytes::from(msg.to_json()))
}

fn error(code: &str, message: impl Into<String>, request_id: Option<String>) -> Outbound {
    text(&ServerMessage::Error {
        code: code.into(),
        message: message.into(),
        request_id,
        auction_id: None,
    })
}

async fn connection(
    state: Arc<AppState>,
    socket: WebSocket,
    mut user: Option<Principal>,
    token_refused: bool,
) {
    let (sink, mut stream) = socket.split();
    let (out, out_rx) = mpsc::channel::<Outbound>(OUTBOUND_QUEUE);
    let writer = tokio::spawn(writer(state.clone(), sink, out_rx));
    let _ = out
        .send(text(&ServerMessage::Hello {
            user: user.as_ref().map(user_view),
            server_time: state.engine.now(),
            limits: Limits {
                max_message_bytes: state.config.max_message_bytes,
                max_subscriptions: state.config.max_subscriptions,
                bids_per_second: state.config.bids_per_second,
            },
        }))
        .await;
    if token_refused {
        let _ = out
            .send(error(
                "unauthorized",
                "invalid or expired token: you can watch, but sign in again to bid",
                None,
            ))
            .await;
    }
    let mut subs: HashSet<AuctionId> = HashSet::new();
    let bids = Arc::new(Semaphore::new(BIDS_IN_FLIGHT));
    loop {
        let msg = tokio::select! {
            m = stream.next() => m,
            // The writer gave up on this client (too slow, or the socket failed).
            _ = out.closed() => break,
            _ = state.shutdown.cancelled() => {
                let _ = out.send(Outbound::Close(GOING_AWAY, "server shutting down")).await;
                break;
            }
        };
        match msg {
            None | Some(Ok(Message::Close(_))) => break,
            Some(Ok(Message::Text(t))) if t.len() > state.config.max_message_bytes => {
                refuse_too_large(&state, &out).await;
                break;
            }
            Some(Ok(Message::Text(t))) => {
                // Boxed: the parsing state lives only while a message is handled, not in
                // every idle connection's task.
                Box::pin(handle_text(
                    &state,
                    &out,
                    &mut user,
                    &mut subs,
                    &bids,
                    t.as_str(),
                ))
                .await;
            }
            Some(Ok(Message::Binary(_))) => {
                let _ = out
                    .send(error("invalid_message", "send JSON text frames", None))
                    .await;
            }
            Some(Ok(_)) => {} // Ping/Pong are answered by the WebSocket layer.
            Some(Err(e)) => {
                let too_big = e
                    .into_inner()
                    .downcast::<tungstenite::Error>()
                    .is_ok_and(|e| matches!(*e, tungstenite::Error::Capacity(_)));
                if too_big {
                    refuse_too_large(&state, &out).await;
                }
                break;
            }
        }
        if out.is_closed() {
            break;
        }
    }
    drop(out);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
}

async fn handle_text(
    state: &Arc<AppState>,
    out: &mpsc::Sender<Outbound>,
    user: &mut Option<Principal>,
    subs: &mut HashSet<AuctionId>,
    bids: &Arc<Semaphore>,
    raw: &str,
) {
    let v: Value = match serde_json::from_str(raw) {
        Ok(v) => v,
        Err(e) => {
            let _ = out
                .send(error("bad_json", format!("not JSON: {e}"), None))
                .await;
            return;
        }
    };
    let request_id = v
        .get("request_id")
        .and_then(Value::as_str)
        .map(|s| s.chars().take(64).collect::<String>());
    if let Err(e) = bidding::check_identity_fields(&v) {
        let _ = out.send(error(e.code, e.message, request_id)).await;
        return;
    }
    let known_type = v.get("type").and_then(Value::as_str).is_some_and(|t| {
        matches!(
            t,
            "auth"
                | "subscribe"
                | "unsubscribe"
                | "subscribe_lobby"
                | "unsubscribe_lobby"
                | "bid"
                | "ping"
        )
    });
    let msg: ClientMessage = match serde_json::from_value(v) {
        Ok(m) => m,
        Err(e) => {
            let (code, message) = if known_type {
                ("invalid_message", e.to_string())
            } else {
                (
                    "unknown_type",
                    "type must be one of auth, subscribe, unsubscribe, subscribe_lobby, unsubscribe_lobby, bid, ping".to_string(),
                )
            };
            let _ = out.send(error(code, message, request_id)).await;
            return;
        }
    };
    match msg {
        ClientMessage::Ping { client_time } => {
            let _ = out
                .send(text(&ServerMessage::Pong {
                    client_time,
                    server_time: state.engine.now(),
                }))
                .await;
        }
        ClientMessage::Auth { token } => match state.auth.verify(&token) {
            Ok(p) => {
                let _ = out
                    .send(text(&ServerMessage::Hello {
                        user: Some(user_view(&p)),
                        server_time: state.engine.now(),
                        limits: Limits {
                            max_message_bytes: state.config.max_message_bytes,
                            max_subscriptions: state.config.max_subscriptions,
                            bids_per_second: state.config.bids_per_second,
                        },
                    }))
                    .await;
                *user = Some(p);
            }
            Err(_) => {
                let _ = out
                    .send(error("unauthorized", "invalid or expired token", None))
                    .await;
            }
        },
        ClientMessage::Subscribe {
            auction_id,
            since_seq,
        } => {
            let Ok(id) = AuctionId::parse(auction_id.as_str()) else {
                let _ = out.send(not_found(&auction_id)).await;
                return;
            };
            if !subs.contains(&id) && subs.len() >= state.config.max_subscriptions {
                let _ = out
                    .send(error(
                        "too_many_subscriptions",
                        format!(
                            "at most {} subscriptions per connection",
                            state.config.max_subscriptions
                        ),
                        None,
                    ))
                    .await;
                return;
            }
            if subs.contains(&id) {
                let _ = out.send(Outbound::Unwatch(id.clone())).await;
            }
            match state.hub.subscribe(&id, since_seq).await {
                Ok((room, start, rx)) => {
                    subs.insert(id.clone());
                    let watch = Outbound::Watch(Box::new(Watch {
                        id,
                        room,
                        start,
                        rx,
                    }));
                    if let Err(mpsc::error::SendError(Outbound::Watch(w))) = out.send(watch).await {
                        // The writer is gone: this subscription never started.
                        state.hub.unsubscribed(&w.room);
                    }
                }
                Err(EngineError::NotFound) => {
                    subs.remove(&id);
                    let _ = out.send(not_found(&auction_id)).await;
                }
                Err(e) => {
                    subs.remove(&id);
                    let _ = out.send(error("unavailable", e.to_string(), None)).await;
                }
            }
        }
        ClientMessage::Unsubscribe { auction_id } => {
            if let Ok(id) = AuctionId::parse(auction_id) {
                if subs.remove(&id) {
                    let _ = out.send(Outbound::Unwatch(id)).await;
                }
            }
            let _ = out.send(ok("unsubscribe")).await;
        }
        ClientMessage::SubscribeLobby => match state.hub.lobby().await {
            Ok(l) => {
                let _ = out.send(Outbound::Lobby(Some(Box::new(l)))).await;
            }
            Err(e) => {
                let _ = out.send(error("unavailable", e.to_string(), None)).await;
            }
        },
        ClientMessage::UnsubscribeLobby => {
            let _ = out.send(Outbound::Lobby(None)).await;
            let _ = out.send(ok("unsubscribe_lobby")).await;
        }
        ClientMessage::Bid {
            auction_id,
            amount,
            request_id,
            expected_seq,
            kind,
        } => {
            let Some(who) = user.clone() else {
                let _ = out
                    .send(error(
                        "unauthorized",
                        "sign in to bid: connect with ?token= or send an auth message",
                        Some(request_id),
                    ))
                    .await;
                return;
            };
            let Ok(permit) = bids.clone().try_acquire_owned() else {
                let _ = out
                    .send(error(
                        "rate_limited",
                        "too many bids waiting for an answer on this connection",
                        Some(request_id),
                    ))
                    .await;
                return;
            };
            let state = state.clone();
            let out = out.clone();
            tokio::spawn(async move {
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
                let msg = match result {
                    Ok(r) => text(&ServerMessage::BidResult(r)),
                    Err(e) => error(e.code, e.message, Some(request_id)),
                };
                let _ = out.send(msg).await;
                drop(permit);
            });
        }
    }
}

async fn refuse_too_large(state: &AppState, out: &mpsc::Sender<Outbound>) {
    let _ = out
        .send(error(
            "message_too_large",
            format!(
                "messages are limited to {} bytes",
                state.config.max_message_bytes
            ),
            None,
        ))
        .await;
    let _ = out
        .send(Outbound::Close(MESSAGE_TOO_BIG, "message too large"))
        .await;
}

fn ok(what: &str) -> Outbound {
    text(&ServerMessage::Ok { what: what.into() })
}

fn not_found(auction_id: &str) -> Outbound {
    text(&ServerMessage::Error {
        code: "not_found".into(),
        message: "no such auction".into(),
        request_id: None,
        auction_id: Some(auction_id.chars().take(64).collect()),
    })
}

type Sink = futures::stream::SplitSink<WebSocket, Message>;

/// Messages a writer takes from what is already waiting before it flushes the socket once.
const WRITE_BATCH: usize = 64;

/// The socket's send half: messages are fed into the WebSocket's write buffer and flushed
/// together, so a backlog of frames costs one system call rather than one per frame.
struct SocketOut {
    sink: Sink,
    limit: Duration,
    unflushed: u64,
    frames_sent: metrics::Counter,
}

impl SocketOut {
    async fn feed(&mut self, msg: Message) -> Result<(), &'static str> {
        match tokio::time::timeout(self.limit, self.sink.feed(msg)).await {
            Ok(Ok(())) => {
                self.unflushed += 1;
                Ok(())
            }
            Ok(Err(_)) => Err("closed"),
            Err(_) => Err("too_slow"),
        }
    }

    async fn flush(&mut self) -> Result<(), &'static str> {
        if self.unflushed == 0 {
            return Ok(());
        }
        match tokio::time::timeout(self.limit, self.sink.flush()).await {
            Ok(Ok(())) => {
                self.frames_sent.increment(self.unflushed);
                self.unflushed = 0;
                Ok(())
            }
            Ok(Err(_)) => Err("closed"),
            Err(_) => Err("too_slow"),
        }
    }
}

/// What the writer reacts to.
enum Input {
    Command(Option<Outbound>),
    Room(AuctionId, Result<SharedFrame, BroadcastStreamRecvError>),
    Lobby(Result<SharedFrame, BroadcastStreamRecvError>),
}

/// Whether the writer goes on after an input.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// The connection's writer: owns the send half and the subscriptions.
struct Writer {
    state: Arc<AppState>,
    out: SocketOut,
    rx: mpsc::Receiver<Outbound>,
    streams: StreamMap<AuctionId, BroadcastStream<SharedFrame>>,
    rooms: HashMap<AuctionId, Arc<Room>>,
    lobby: Option<BroadcastStream<SharedFrame>>,
}

impl Writer {
    async fn next(&mut self) -> Input {
        let lobby = async {
            match self.lobby.as_mut() {
                Some(l) => l.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            cmd = self.rx.recv() => Input::Command(cmd),
            Some((id, item)) = self.streams.next(), if !self.streams.is_empty() => Input::Room(id, item),
            Some(item) = lobby => Input::Lobby(item),
        }
    }

    async fn handle(&mut self, input: Input) -> Result<Flow, &'static str> {
        match input {
            Input::Command(None) => return Ok(Flow::Stop),
            Input::Command(Some(cmd)) => match cmd {
                Outbound::Text(t) => self.out.feed(Message::Text(t)).await?,
                Outbound::Watch(w) => {
                    let Watch {
                        id,
                        room,
                        start,
                        rx,
                    } = *w;
                    match start {
                        Start::Snapshot(t) => self.out.feed(Message::Text(t)).await?,
                        Start::Replay(frames) => {
                            for f in frames {
                                self.out.feed(Message::Text(f.text.clone())).await?;
                            }
                        }
                    }
                    self.streams.insert(id.clone(), BroadcastStream::new(rx));
                    if let Some(old) = self.rooms.insert(id, room) {
                        self.state.hub.unsubscribed(&old);
                    }
                }
                Outbound::Unwatch(id) => {
                    self.streams.remove(&id);
                    if let Some(room) = self.rooms.remove(&id) {
                        self.state.hub.unsubscribed(&room);
                    }
                }
                Outbound::Lobby(Some(l)) => {
                    let (snapshot, rx) = *l;
                    self.out.feed(Message::Text(snapshot)).await?;
                    self.lobby = Some(BroadcastStream::new(rx));
                    self.out
                        .feed(Message::Text(Utf8Bytes::from(
                            ServerMessage::Ok {
                                what: "subscribe_lobby".into(),
                            }
                            .to_json(),
                        )))
                        .await?;
                }
                Outbound::Lobby(None) => self.lobby = None,
                Outbound::Close(code, reason) => {
                    let _ = self
                        .out
                        .feed(Message::Close(Some(CloseFrame {
                            code,
                            reason: Utf8Bytes::from_static(reason),
                        })))
                        .await;
                    return Ok(Flow::Stop);
                }
            },
            Input::Room(_, Ok(frame)) | Input::Lobby(Ok(frame)) => {
                self.out.feed(Message::Text(frame.text.clone())).await?
            }
            Input::Room(id, Err(BroadcastStreamRecvError::Lagged(skipped))) => {
                metrics::counter!("gavel_ws_conflated_total").increment(1);
                tracing::debug!(auction = %id, skipped, "watcher lagged; sending snapshot");
                if let Some(room) = self.rooms.get(&id) {
                    let (snap, rx) = self.state.hub.resync(room);
                    self.streams.insert(id, BroadcastStream::new(rx));
                    self.out.feed(Message::Text(snap)).await?;
                }
            }
            Input::Lobby(Err(BroadcastStreamRecvError::Lagged(_))) => {
                metrics::counter!("gavel_ws_conflated_total").increment(1);
                if let Ok((snapshot, rx)) = self.state.hub.lobby().await {
                    self.out.feed(Message::Text(snapshot)).await?;
                    self.lobby = Some(BroadcastStream::new(rx));
                }
            }
        }
        Ok(Flow::Continue)
    }

    async fn run(&mut self) -> Result<(), &'static str> {
        loop {
            let input = self.next().await;
            let mut flow = self.handle(input).await?;
            // Take whatever else is already waiting, then write it all at once.
            let mut taken = 1;
            while flow == Flow::Continue && taken < WRITE_BATCH {
                let Some(input) = self.next().now_or_never() else {
                    break;
                };
                flow = self.handle(input).await?;
                taken += 1;
            }
            self.out.flush().await?;
            if flow == Flow::Stop {
                return Ok(());
            }
        }
    }
}

async fn writer(state: Arc<AppState>, sink: Sink, rx: mpsc::Receiver<Outbound>) {
    let mut w = Writer {
        out: SocketOut {
            sink,
            limit: Duration::from_secs(state.config.slow_client_secs.max(1)),
            unflushed: 0,
            frames_sent: metrics::counter!("gavel_ws_frames_sent_total"),
        },
        state,
        rx,
        streams: StreamMap::new(),
        rooms: HashMap::new(),
        lobby: None,
    };
    let outcome = w.run().await;
    if outcome == Err("too_slow") {
        metrics::counter!("gavel_ws_too_slow_total").increment(1);
        tracing::info!("closing a client that cannot keep up");
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            w.out.sink.send(Message::Close(Some(CloseFrame {
                code: POLICY_VIOLATION,
                reason: Utf8Bytes::from_static("too_slow"),
            }))),
        )
        .await;
    }
    for room in w.rooms.values() {
        w.state.hub.unsubscribed(room);
    }
}
