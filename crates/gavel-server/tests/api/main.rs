//! Black-box tests: a real server over real HTTP and WebSocket connections.

mod helpers;

mod bad_input;
mod bidding;
mod closing;
mod durability;
mod http_api;
mod listing;
mod replay;
mod rooms;
mod slow_consumers;
mod strict_input;
mod websocket;
