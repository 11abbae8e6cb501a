//! `gavel config check FILE [FLAGS...]`: validates a configuration file and prints the
//! effective configuration of `gavel serve` (flags, environment, file and defaults
//! applied), secrets masked.

use crate::config_file;
use clap::{CommandFactory, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate FILE and print the effective configuration of `gavel serve --config FILE`
    /// (with the environment and any FLAGS given after FILE applied), secrets masked. Exit
    /// code 0 when valid, 2 when not.
    Check {
        /// The TOML configuration file.
        file: PathBuf,
        /// Flags of `gavel serve` to apply on top, as on its command line.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        flags: Vec<OsString>,
    },
}

/// Exit code of an invalid configuration.
pub const INVALID: i32 = 2;

pub fn run(command: ConfigCommand) -> i32 {
    let ConfigCommand::Check { file, flags } = command;
    match check(&file, flags) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(message) => {
            eprintln!("error: {message}");
            INVALID
        }
    }
}

/// The effective configuration as [`config_file::render_effective`] prints it, or why the
/// file (or flags, or environment) is refused.
pub fn check(file: &std::path::Path, flags: Vec<OsString>) -> Result<String, String> {
    let mut args: Vec<OsString> = vec!["gavel".into(), "serve".into(), "--config".into()];
    args.push(file.into());
    args.extend(flags);
    let parsed = config_file::parse_args(args).map_err(|e| match e {
        config_file::ConfigError::Clap(e) => e.render().to_string().trim().to_string(),
        other => other.to_string(),
    })?;
    let cmd = crate::config::Cli::command();
    let serve_cmd = cmd
        .find_subcommand("serve")
        .expect("the serve subcommand exists");
    let (_, serve) = parsed
        .matches
        .subcommand()
        .expect("`gavel serve` parses as the serve subcommand");
    Ok(config_file::render_effective(
        serve_cmd,
        serve,
        &parsed.from_file,
        Some(file),
    ))
}
