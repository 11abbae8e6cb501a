//! Support shared by the test targets that run real `gavel` processes: the test's own
//! Redis prefix and PostgreSQL schema ([`isolation`]) and node processes ([`nodes`]).
//! A top-level target takes it with `mod common;`, a directory target with
//! `#[path = "../common/mod.rs"] mod common;`.

pub mod isolation;
pub mod nodes;
