//! The WebSocket API (`/ws`): one task per connection.
//!
//! The task owns the socket and the connection's subscriptions (per-auction `broadcast`
//! receivers). It reads client messages, answers them, and forwards its rooms' frames. The
//! fan-out never waits for this socket: if this client lags behind a room's buffer it is
//! sent the latest snapshot instead (conflation), and if its socket accepts nothing for
//! `slow_client_secs` it is closed as too slow. Frames already waiting are written with one
//! flush. Bids are decided in their own tasks (they wait for the group commit) and their
//! answers come back through a small queue created at the connection's first bid, so a
//! connection that only watches holds no queue at all.

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
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio_stream::wrappers::{errors::BroadcastStreamRecvError, BroadcastStream};
use tokio_stream::StreamMap;
use tokio_util::sync::WaitForCancellationFutureOwned;

/// Close codes (RFC 6455).
const GOING_AWAY: u16 = 1001;
const POLICY_VIOLATION: u16 = 1008;
const MESSAGE_TOO_BIG: u16 = 1009;

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
        // Client messages are small: a 512-byte read buffer (it does not limit message size).
        .read_buffer_size(512)
        // Frames collect in the write buffer until the connection flushes a batch.
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(1024 * 1024)
        .on_upgrade(move |socket| async move {
            connection(state, socket, user, token_refused).await;
            drop(slot);
            drop(track);
        })
}

fn text(msg: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(msg.to_json())
}

fn error(code: &str, message: impl Into<String>, request_id: Option<String>) -> Utf8Bytes {
    text(&ServerMessage::Error {
        code: code.into(),
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
        code: "not_found".into(),
        message: "no such auction".into(),
        request_id: None,
        auction_id: Some(auction_id.chars().take(64).collect()),
    })
}

fn hello(state: &AppState, user: Option<&Principal>) -> Utf8Bytes {
    text(&ServerMessage::Hello {
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

/// What the connection reacts to.
enum Input {
    Client(Option<Result<Message, axum::Error>>),
    Reply(Utf8Bytes),
    Room(AuctionId, Result<SharedFrame, BroadcastStreamRecvError>),
    Lobby(Result<SharedFrame, BroadcastStreamRecvError>),
    Shutdown,
}

/// Whether the connection goes on after an input.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// Answers of this connection's bid tasks, and the cap on how many may be in flight.
struct BidReplies {
    tx: mpsc::Sender<Utf8Bytes>,
    rx: mpsc::Receiver<Utf8Bytes>,
    in_flight: Arc<Semaphore>,
}

struct Conn {
    state: Arc<AppState>,
    socket: WebSocket,
    /// Made once: creating a wait on the shared shutdown token takes its lock, which every
    /// connection would otherwise do for every frame.
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    user: Option<Principal>,
    /// How long the socket may accept nothing before the client is closed as too slow.
    limit: Duration,
    unflushed: u64,
    frames_sent: metrics::Counter,
    streams: StreamMap<AuctionId, BroadcastStream<SharedFrame>>,
    /// The subscribed rooms (also the set of subscriptions).
    rooms: HashMap<AuctionId, Arc<Room>>,
    lobby: Option<BroadcastStream<SharedFrame>>,
    replies: Option<BidReplies>,
}

async fn connection(
    state: Arc<AppState>,
    socket: WebSocket,
    user: Option<Principal>,
    token_refused: bool,
) {
    let mut conn = Conn {
        shutdown: Box::pin(state.shutdown.clone().cancelled_owned()),
        limit: Duration::from_secs(state.config.slow_client_secs.max(1)),
        frames_sent: metrics::counter!("gavel_ws_frames_sent_total"),
        state,
        socket,
        user,
        unflushed: 0,
        streams: StreamMap::new(),
        rooms: HashMap::new(),
        lobby: None,
        replies: None,
    };
    let outcome = conn.run(token_refused).await;
    if outcome == Err("too_slow") {
        metrics::counter!("gavel_ws_too_slow_total").increment(1);
        tracing::info!("closing a client that cannot keep up");
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            conn.socket.send(Message::Close(Some(CloseFrame {
                code: POLICY_VIOLATION,
                reason: Utf8Bytes::from_static("too_slow"),
            }))),
        )
        .await;
    }
    for room in conn.rooms.values() {
        conn.state.hub.unsubscribed(room);
    }
}

impl Conn {
    async fn run(&mut self, token_refused: bool) -> Result<(), &'static str> {
        let hello = hello(&self.state, self.user.as_ref());
        self.feed(hello).await?;
        if token_refused {
            self.feed(error(
                "unauthorized",
                "invalid or expired token: you can watch, but sign in again to bid",
                None,
            ))
            .await?;
        }
        self.flush().await?;
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
        let reply = async {
            match self.replies.as_mut() {
                Some(r) => r.rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = &mut self.shutdown => Input::Shutdown,
            Some(r) = reply => Input::Reply(r),
            m = self.socket.next() => Input::Client(m),
            Some((id, item)) = self.streams.next(), if !self.streams.is_empty() => Input::Room(id, item),
            Some(item) = lobby => Input::Lobby(item),
        }
    }

    async fn feed(&mut self, t: Utf8Bytes) -> Result<(), &'static str> {
        self.feed_message(Message::Text(t)).await
    }

    async fn feed_message(&mut self, msg: Message) -> Result<(), &'static str> {
        match tokio::time::timeout(self.limit, self.socket.feed(msg)).await {
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
        match tokio::time::timeout(self.limit, self.socket.flush()).await {
            Ok(Ok(())) => {
                self.frames_sent.increment(self.unflushed);
                self.unflushed = 0;
                Ok(())
            }
            Ok(Err(_)) => Err("closed"),
            Err(_) => Err("too_slow"),
        }
    }

    async fn close(&mut self, code: u16, reason: &'static str) -> Result<Flow, &'static str> {
        let _ = self
            .feed_message(Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            })))
            .await;
        Ok(Flow::Stop)
    }

    async fn handle(&mut self, input: Input) -> Result<Flow, &'static str> {
        match input {
            Input::Shutdown => return self.close(GOING_AWAY, "server shutting down").await,
            Input::Client(None) | Input::Client(Some(Ok(Message::Close(_)))) => {
                return Ok(Flow::Stop)
            }
            Input::Client(Some(Ok(Message::Text(t)))) => {
                if t.len() > self.state.config.max_message_bytes {
                    return self.refuse_too_large().await;
                }
                // Boxed: the parsing state lives only while a message is handled, not in
                // every idle connection's task.
                Box::pin(self.handle_text(t.as_str())).await?;
            }
            Input::Client(Some(Ok(Message::Binary(_)))) => {
                self.feed(error("invalid_message", "send JSON text frames", None))
                    .await?
            }
            // Ping/Pong are answered by the WebSocket layer.
            Input::Client(Some(Ok(_))) => {}
            Input::Client(Some(Err(e))) => {
                let too_big = e
                    .into_inner()
                    .downcast::<tungstenite::Error>()
                    .is_ok_and(|e| matches!(*e, tungstenite::Error::Capacity(_)));
                if too_big {
                    return self.refuse_too_large().await;
                }
                return Ok(Flow::Stop);
            }
            Input::Reply(t) => self.feed(t).await?,
            Input::Room(_, Ok(frame)) | Input::Lobby(Ok(frame)) => {
                self.feed(frame.text.clone()).await?
            }
            Input::Room(id, Err(BroadcastStreamRecvError::Lagged(skipped))) => {
                metrics::counter!("gavel_ws_conflated_total").increment(1);
                tracing::debug!(auction = %id, skipped, "watcher lagged; sending snapshot");
                if let Some(room) = self.rooms.get(&id) {
                    let (snap, rx) = self.state.hub.resync(room);
                    self.streams.insert(id, BroadcastStream::new(rx));
                    self.feed(snap).await?;
                }
            }
            Input::Lobby(Err(BroadcastStreamRecvError::Lagged(_))) => {
                metrics::counter!("gavel_ws_conflated_total").increment(1);
                if let Ok((snapshot, rx)) = self.state.hub.lobby().await {
                    self.lobby = Some(BroadcastStream::new(rx));
                    self.feed(snapshot).await?;
                }
            }
        }
        Ok(Flow::Continue)
    }

    async fn refuse_too_large(&mut self) -> Result<Flow, &'static str> {
        let limit = self.state.config.max_message_bytes;
        self.feed(error(
            "message_too_large",
            format!("messages are limited to {limit} bytes"),
            None,
        ))
        .await?;
        self.close(MESSAGE_TOO_BIG, "message too large").await
    }

    fn unwatch(&mut self, id: &AuctionId) -> bool {
        self.streams.remove(id);
        match self.rooms.remove(id) {
            Some(room) => {
                self.state.hub.unsubscribed(&room);
                true
            }
            None => false,
        }
    }

    async fn handle_text(&mut self, raw: &str) -> Result<(), &'static str> {
        let v: Value = match serde_json::from_str(raw) {
            Ok(v) => v,
            Err(e) => {
                return self
                    .feed(error("bad_json", format!("not JSON: {e}"), None))
                    .await
            }
        };
        let request_id = v
            .get("request_id")
            .and_then(Value::as_str)
            .map(|s| s.chars().take(64).collect::<String>());
        if let Err(e) = bidding::check_identity_fields(&v) {
            return self.feed(error(e.code, e.message, request_id)).await;
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
                return self.feed(error(code, message, request_id)).await;
            }
        };
        match msg {
            ClientMessage::Ping { client_time } => {
                let pong = text(&ServerMessage::Pong {
                    client_time,
                    server_time: self.state.engine.now(),
                });
                self.feed(pong).await
            }
            ClientMessage::Auth { token } => match self.state.auth.verify(&token) {
                Ok(p) => {
                    let hello = hello(&self.state, Some(&p));
                    self.user = Some(p);
                    self.feed(hello).await
                }
                Err(_) => {
                    self.feed(error("unauthorized", "invalid or expired token", None))
                        .await
                }
            },
            ClientMessage::Subscribe {
                auction_id,
                since_seq,
            } => self.subscribe(&auction_id, since_seq).await,
            ClientMessage::Unsubscribe { auction_id } => {
                if let Ok(id) = AuctionId::parse(auction_id) {
                    self.unwatch(&id);
                }
                self.feed(ok("unsubscribe")).await
            }
            ClientMessage::SubscribeLobby => match self.state.hub.lobby().await {
                Ok((snapshot, rx)) => {
                    self.lobby = Some(BroadcastStream::new(rx));
                    self.feed(snapshot).await?;
                    self.feed(ok("subscribe_lobby")).await
                }
                Err(e) => self.feed(error("unavailable", e.to_string(), None)).await,
            },
            ClientMessage::UnsubscribeLobby => {
                self.lobby = None;
                self.feed(ok("unsubscribe_lobby")).await
            }
            ClientMessage::Bid {
                auction_id,
                amount,
                request_id,
                expected_seq,
                kind,
            } => {
                let Some(who) = self.user.clone() else {
                    return self
                        .feed(error(
                            "unauthorized",
                            "sign in to bid: connect with ?token= or send an auth message",
                            Some(request_id),
                        ))
                        .await;
                };
                let replies = self.replies.get_or_insert_with(|| {
                    let (tx, rx) = mpsc::channel(BIDS_IN_FLIGHT);
                    BidReplies {
                        tx,
                        rx,
                        in_flight: Arc::new(Semaphore::new(BIDS_IN_FLIGHT)),
                    }
                });
                let Ok(permit) = replies.in_flight.clone().try_acquire_owned() else {
                    return self
                        .feed(error(
                            "rate_limited",
                            "too many bids waiting for an answer on this connection",
                            Some(request_id),
                        ))
                        .await;
                };
                let state = self.state.clone();
                let tx = replies.tx.clone();
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
                    // Capacity equals the in-flight cap, so this never waits.
                    let _ = tx.send(msg).await;
                    drop(permit);
                });
                Ok(())
            }
        }
    }

    async fn subscribe(
        &mut self,
        auction_id: &str,
        since_seq: Option<u64>,
    ) -> Result<(), &'static str> {
        let Ok(id) = AuctionId::parse(auction_id) else {
            return self.feed(not_found(auction_id)).await;
        };
        let max = self.state.config.max_subscriptions;
        if !self.rooms.contains_key(&id) && self.rooms.len() >= max {
            return self
                .feed(error(
                    "too_many_subscriptions",
                    format!("at most {max} subscriptions per connection"),
                    None,
                ))
                .await;
        }
        // Subscribing again restarts the subscription (with the new since_seq).
        self.unwatch(&id);
        match self.state.hub.subscribe(&id, since_seq).await {
            Ok((room, start, rx)) => {
                self.streams.insert(id.clone(), BroadcastStream::new(rx));
                self.rooms.insert(id, room);
                match start {
                    Start::Snapshot(t) => self.feed(t).await,
                    Start::Replay(frames) => {
                        for f in frames {
                            self.feed(f.text.clone()).await?;
                        }
                        Ok(())
                    }
                }
            }
            Err(EngineError::NotFound) => self.feed(not_found(auction_id)).await,
            Err(e) => self.feed(error("unavailable", e.to_string(), None)).await,
        }
    }
}
