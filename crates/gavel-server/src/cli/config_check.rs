//! `gavel config check FILE [FLAGS...]`: validates a configuration file and prints the
//! effective configuration of `gavel serve` (flags, environment, file and defaults
//! applied), secrets masked.

use crate::auth::Auth;
use crate::config::ServeConfig;
use crate::config_file;
use clap::{CommandFactory, FromArgMatches, Subcommand};
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
    let config = ServeConfig::from_arg_matches(serve)
        .map_err(|e| e.render().to_string().trim().to_string())?
        .with_conventional_env();
    let problems = start_checks(&config);
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    let mut text = config_file::render_effective(serve_cmd, serve, &parsed.from_file, Some(file));
    // The conventional REDIS_URL/DATABASE_URL pair, taken when nothing else set either.
    if serve.get_raw("redis").is_none() && serve.get_raw("database").is_none() {
        for (key, var, value) in [
            ("redis", "REDIS_URL", &config.redis),
            ("database", "DATABASE_URL", &config.database),
        ] {
            if let Some(v) = value {
                let masked = toml::Value::String(config_file::mask(key, v)).to_string();
                text = text.replace(
                    &format!("# {key} is unset\n"),
                    &format!("{key} = {masked}  # environment ({var})\n"),
                );
            }
        }
    }
    Ok(text)
}

/// What `gavel serve` would refuse at start from the settings alone (no file or network
/// access): the distributed mode's pair of URLs, the admin token's and JWT secret's
/// lengths. Reachability of Redis and PostgreSQL is found out by `gavel serve` itself.
fn start_checks(config: &ServeConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if config.redis.is_some() != config.database.is_some() {
        problems.push(
            "distributed mode needs both redis (--redis, GAVEL_REDIS_URL) and database \
             (--database, GAVEL_DATABASE_URL), or neither for embedded mode"
                .to_string(),
        );
    }
    // Without --jwt-secret the server generates (or reads) one of the right length.
    let placeholder = [0u8; crate::auth::MIN_JWT_SECRET_BYTES];
    let secret = config
        .jwt_secret
        .as_deref()
        .map_or(&placeholder[..], str::as_bytes);
    if let Err(e) = Auth::new(secret, config.admin_token.clone(), 1, 0) {
        problems.push(e.to_string());
    }
    problems
}
