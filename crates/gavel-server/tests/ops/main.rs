//! Operator-facing commands run as the real `gavel` binary: the configuration file and
//! `gavel config check`, the configuration reference's drift check, backups and restores,
//! the admin CLI against a running server.

mod admin_cli;
mod backup;
mod config;
mod config_doc;
#[allow(dead_code)] // parts used only by some test groups
mod support;
