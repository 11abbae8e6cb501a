//! Black-box tests: a real server over real HTTP and WebSocket connections.
//!
//! This target runs them in embedded mode; `tests/api_distributed.rs` includes this file
//! and runs every module below against a distributed node (see `helpers.rs`).

/// This target's mode (unused when this file is a module of `api_distributed`).
#[allow(dead_code)]
const MODE: helpers::Mode = helpers::Mode::Embedded;

pub(crate) mod helpers;

mod bad_input;
mod bidding;
mod closing;
mod contract;
mod durability;
mod http_api;
mod http_timeouts;
mod latency;
mod listing;
mod modes;
mod replay;
mod rooms;
mod search;
mod sessions;
mod slow_consumers;
mod strict_input;
mod verification;
mod webhooks;
mod websocket;
mod ws_protocol;
