//! Black-box tests: a real server over real HTTP and WebSocket connections.

mod helpers;

mod bad_input;
mod bidding;
mod closing;
mod durability;
mod http_api;
mod http_timeouts;
mod listing;
mod replay;
mod rooms;
mod sessions;
mod slow_consumers;
mod strict_input;
mod websocket;
mod ws_protocol;
