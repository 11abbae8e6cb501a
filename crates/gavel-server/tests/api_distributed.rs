//! The black-box API suite (`tests/api/`) against a distributed node: the same modules,
//! each test on the Redis engine and a PostgreSQL archive with its own key prefix and schema
//! (see `tests/api/helpers.rs`).

const MODE: helpers::Mode = helpers::Mode::Distributed;

#[path = "api/main.rs"]
mod api;

use api::helpers;
