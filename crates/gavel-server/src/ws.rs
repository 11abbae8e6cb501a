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
use futures::{SinkExt, StreamExt};
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
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
        .on_upgrade(move |socket| async move {
            connection(state, socket, user, token_refused).await;
            drop(slot);
            drop(track);
        })
}

enum Outbound {
    Text(Utf8Bytes),
    Watch {
        id: AuctionId,
        room: Arc<Room>,
        start: Start,
        rx: broadcast::Receiver<SharedFrame>,
    },
    Unwatch(AuctionId),
    Lobby(Option<(Utf8Bytes, broadcast::Receiver<SharedFrame>)>),
    Close(u16, &'static str),
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
                handle_text(&state, &out, &mut user, &mut subs, &bids, t.as_str()).await;
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
    let msg: ClientMessage = match serde_json::from_value(v.clone()) {
        Ok(m) => m,
        Err(e) => {
            let known = v.get("type").and_then(Value::as_str).is_some_and(|t| {
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
            let (code, message) = if known {
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
                    let watch = Outbound::Watch {
                        id,
                        room,
                        start,
                        rx,
                    };
                    if let Err(mpsc::error::SendError(Outbound::Watch { room, .. })) =
                        out.send(watch).await
                    {
                        // The writer is gone: this subscription never started.
                        state.hub.unsubscribed(&room);
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
                let _ = out.send(Outbound::Lobby(Some(l))).await;
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

/// Sends one message, or gives up on a client that accepts nothing for too long.
async fn send(sink: &mut Sink, limit: Duration, msg: Message) -> Result<(), &'static str> {
    match tokio::time::timeout(limit, sink.send(msg)).await {
        Ok(Ok(())) => {
            metrics::counter!("gavel_ws_frames_sent_total").increment(1);
            Ok(())
        }
        Ok(Err(_)) => Err("closed"),
        Err(_) => Err("too_slow"),
    }
}

async fn writer(state: Arc<AppState>, mut sink: Sink, mut rx: mpsc::Receiver<Outbound>) {
    let limit = Duration::from_secs(state.config.slow_client_secs.max(1));
    let mut streams: StreamMap<AuctionId, BroadcastStream<SharedFrame>> = StreamMap::new();
    let mut rooms: HashMap<AuctionId, Arc<Room>> = HashMap::new();
    let mut lobby: Option<BroadcastStream<SharedFrame>> = None;
    let outcome: Result<(), &'static str> = async {
        loop {
            tokio::select! {
                biased;
                cmd = rx.recv() => match cmd {
                    None => return Ok(()),
                    Some(Outbound::Text(t)) => send(&mut sink, limit, Message::Text(t)).await?,
                    Some(Outbound::Watch { id, room, start, rx }) => {
                        match start {
                            Start::Snapshot(t) => send(&mut sink, limit, Message::Text(t)).await?,
                            Start::Replay(frames) => {
                                for f in frames {
                                    send(&mut sink, limit, Message::Text(f.text.clone())).await?;
                                }
                            }
                        }
                        streams.insert(id.clone(), BroadcastStream::new(rx));
                        if let Some(old) = rooms.insert(id, room) {
                            state.hub.unsubscribed(&old);
                        }
                    }
                    Some(Outbound::Unwatch(id)) => {
                        streams.remove(&id);
                        if let Some(room) = rooms.remove(&id) {
                            state.hub.unsubscribed(&room);
                        }
                    }
                    Some(Outbound::Lobby(Some((snapshot, rx)))) => {
                        send(&mut sink, limit, Message::Text(snapshot)).await?;
                        lobby = Some(BroadcastStream::new(rx));
                        send(&mut sink, limit, Message::Text(Utf8Bytes::from(
                            ServerMessage::Ok { what: "subscribe_lobby".into() }.to_json(),
                        ))).await?;
                    }
                    Some(Outbound::Lobby(None)) => lobby = None,
                    Some(Outbound::Close(code, reason)) => {
                        let _ = send(&mut sink, limit, Message::Close(Some(CloseFrame {
                            code,
                            reason: Utf8Bytes::from_static(reason),
                        }))).await;
                        return Ok(());
                    }
                },
                Some((id, item)) = streams.next(), if !streams.is_empty() => match item {
                    Ok(frame) => send(&mut sink, limit, Message::Text(frame.text.clone())).await?,
                    Err(BroadcastStreamRecvError::Lagged(skipped)) => {
                        metrics::counter!("gavel_ws_conflated_total").increment(1);
                        tracing::debug!(auction = %id, skipped, "watcher lagged; sending snapshot");
                        if let Some(room) = rooms.get(&id) {
                            let (snap, rx) = state.hub.resync(room);
                            streams.insert(id.clone(), BroadcastStream::new(rx));
                            send(&mut sink, limit, Message::Text(snap)).await?;
                        }
                    }
                },
                Some(item) = async {
                    match lobby.as_mut() {
                        Some(l) => l.next().await,
                        None => std::future::pending().await,
                    }
                } => match item {
                    Ok(frame) => send(&mut sink, limit, Message::Text(frame.text.clone())).await?,
                    Err(BroadcastStreamRecvError::Lagged(_)) => {
                        metrics::counter!("gavel_ws_conflated_total").increment(1);
                        if let Ok((snapshot, rx)) = state.hub.lobby().await {
                            send(&mut sink, limit, Message::Text(snapshot)).await?;
                            lobby = Some(BroadcastStream::new(rx));
                        }
                    }
                },
            }
        }
    }
    .await;
    if outcome == Err("too_slow") {
        metrics::counter!("gavel_ws_too_slow_total").increment(1);
        tracing::info!("closing a client that cannot keep up");
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            sink.send(Message::Close(Some(CloseFrame {
                code: POLICY_VIOLATION,
                reason: Utf8Bytes::from_static("too_slow"),
            }))),
        )
        .await;
    }
    for room in rooms.values() {
        state.hub.unsubscribed(room);
    }
}
