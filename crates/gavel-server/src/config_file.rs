//! The configuration file layer: `gavel serve --config gavel.toml` (or `GAVEL_CONFIG`).
//!
//! Every flag of `gavel serve` is also a key of the file, spelled as the flag's long name
//! (`batch-max = 1000`). Precedence: **flag > environment (`GAVEL_*`) > file > default**.
//!
//! # How it is built on clap, generically
//!
//! Nothing here names a flag. The command line is parsed once as usual (flags, `GAVEL_*`
//! variables, defaults). [`ArgMatches::value_source`] then says, for each argument, where
//! its value came from; every file key whose argument still holds its default (or nothing)
//! is appended to the command line as `--key=value`, and the whole is parsed again. So a
//! flag added to [`ServeConfig`](crate::config::ServeConfig) tomorrow is a key of the file
//! with no change here, the file's values go through the very parsers the flags use, and a
//! flag or an environment variable always beats the file because the file only fills gaps.
//!
//! Before that, each key is checked on its own: a key that is no flag of `gavel serve`, or a
//! value of the wrong TOML type (a string where the flag takes a number, a list for a
//! single-valued flag) or that the flag's parser refuses, stops the start with an error
//! naming the file and the key.

use clap::builder::ValueParser;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, CommandFactory};
use std::any::TypeId;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The argument id of `--config` (the file itself is no key of the file).
const CONFIG_ARG: &str = "config";

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A command-line or environment error, or `--help`/`--version`: clap prints and exits.
    #[error(transparent)]
    Clap(#[from] clap::Error),
    #[error("cannot read the configuration file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not valid TOML: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("{}: unknown key {key:?}: `gavel serve` has no flag --{key} (keys are the flags' long names, e.g. batch-max = 1000){hint}", path.display())]
    UnknownKey {
        path: PathBuf,
        key: String,
        /// `; did you mean "batch-max"?` when a flag's name is close.
        hint: String,
    },
    #[error("{}: key {key:?}: {message}", path.display())]
    BadValue {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// A parsed command line with every layer applied.
pub struct Parsed {
    pub matches: ArgMatches,
    /// Ids of the `gavel serve` arguments whose value came from the file.
    pub from_file: Vec<String>,
}

/// Parses `args` (the binary's name first) with every layer applied: flags, `GAVEL_*`
/// environment variables, the `--config`/`GAVEL_CONFIG` file, defaults.
pub fn parse_args<I, T>(args: I) -> Result<Parsed, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cmd = crate::config::Cli::command();
    let first = cmd.clone().try_get_matches_from(&args)?;
    let unchanged = |matches| Parsed {
        matches,
        from_file: Vec::new(),
    };
    let Some(("serve", serve)) = first.subcommand() else {
        return Ok(unchanged(first));
    };
    let Some(path) = serve.get_one::<PathBuf>(CONFIG_ARG) else {
        return Ok(unchanged(first));
    };
    let serve_cmd = cmd
        .find_subcommand("serve")
        .expect("the serve subcommand exists");
    let (extra, from_file) = file_args(serve_cmd, serve, path)?;
    if extra.is_empty() {
        return Ok(unchanged(first));
    }
    let mut args = args;
    args.extend(extra);
    Ok(Parsed {
        matches: cmd.try_get_matches_from(args)?,
        from_file,
    })
}

/// The `--key=value` arguments that the file at `path` adds to a command line whose
/// `gavel serve` part parsed into `serve` (only keys not already set by a flag or the
/// environment). Checks every key, including those that do not apply.
fn file_args(
    serve_cmd: &clap::Command,
    serve: &ArgMatches,
    path: &Path,
) -> Result<(Vec<OsString>, Vec<String>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let at = e.span().map_or(String::new(), |span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!(" (line {line}, column {column})")
        });
        ConfigError::Syntax {
            path: path.to_path_buf(),
            message: format!("{}{at}", e.message().trim()),
        }
    })?;
    let mut extra = Vec::new();
    let mut from_file = Vec::new();
    for (key, value) in &table {
        if key == CONFIG_ARG {
            return Err(ConfigError::BadValue {
                path: path.to_path_buf(),
                key: key.clone(),
                message: "a configuration file cannot name another one".to_string(),
            });
        }
        let arg = key_arg(serve_cmd, key).ok_or_else(|| ConfigError::UnknownKey {
            path: path.to_path_buf(),
            key: key.clone(),
            hint: suggestion(serve_cmd, key)
                .map(|s| format!("; did you mean {s:?}?"))
                .unwrap_or_default(),
        })?;
        let bad = |message: String| ConfigError::BadValue {
            path: path.to_path_buf(),
            key: key.clone(),
            message,
        };
        let args = value_args(arg, key, value).map_err(bad)?;
        check_with_parser(arg, &args).map_err(bad)?;
        let from_default = matches!(
            serve.value_source(arg.get_id().as_str()),
            None | Some(ValueSource::DefaultValue)
        );
        if from_default {
            extra.extend(args);
            from_file.push(arg.get_id().to_string());
        }
    }
    Ok((extra, from_file))
}

/// The argument of `gavel serve` that file key `key` sets: a flag with that long name
/// (not `--config` itself, nor `--help`/`--version`).
fn key_arg<'a>(serve_cmd: &'a clap::Command, key: &str) -> Option<&'a Arg> {
    serve_cmd.get_arguments().find(|a| {
        a.get_long() == Some(key)
            && a.get_id() != CONFIG_ARG
            && !matches!(a.get_action(), ArgAction::Help | ArgAction::Version)
    })
}

/// The flag an unknown key was probably meant to be: the same name with `_` for `-` or in
/// another case, or the nearest name at most two edits away.
fn suggestion(serve_cmd: &clap::Command, key: &str) -> Option<String> {
    let wanted = key.to_ascii_lowercase().replace('_', "-");
    serve_cmd
        .get_arguments()
        .filter(|a| a.get_id() != CONFIG_ARG)
        .filter_map(|a| a.get_long())
        .map(|long| (edit_distance(&wanted, long), long))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, long)| long.to_string())
}

/// Levenshtein distance (the names are short ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// What a flag's values are, as far as the file's TOML types go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Integer,
    Float,
    Text,
}

impl Kind {
    fn of(parser: &ValueParser) -> Kind {
        let t = parser.type_id();
        if t == TypeId::of::<bool>() {
            Kind::Bool
        } else if [
            TypeId::of::<u8>(),
            TypeId::of::<u16>(),
            TypeId::of::<u32>(),
            TypeId::of::<u64>(),
            TypeId::of::<usize>(),
            TypeId::of::<i8>(),
            TypeId::of::<i16>(),
            TypeId::of::<i32>(),
            TypeId::of::<i64>(),
            TypeId::of::<isize>(),
        ]
        .iter()
        .any(|i| t == *i)
        {
            Kind::Integer
        } else if t == TypeId::of::<f64>() || t == TypeId::of::<f32>() {
            Kind::Float
        } else {
            Kind::Text
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Bool => "true or false",
            Kind::Integer => "an integer",
            Kind::Float => "a number",
            Kind::Text => "a string",
        }
    }

    /// The value as it would be written on the command line, or why it has the wrong type.
    fn render(self, v: &toml::Value) -> Result<String, String> {
        match (self, v) {
            (Kind::Bool, toml::Value::Boolean(b)) => Ok(b.to_string()),
            (Kind::Integer, toml::Value::Integer(i)) => Ok(i.to_string()),
            (Kind::Float, toml::Value::Float(f)) => Ok(f.to_string()),
            (Kind::Float, toml::Value::Integer(i)) => Ok(i.to_string()),
            (Kind::Text, toml::Value::String(s)) => Ok(s.clone()),
            (kind, other) => Err(format!(
                "expected {}, found {} {}",
                kind.name(),
                other.type_str(),
                other
            )),
        }
    }
}

/// The command-line arguments equivalent to `key = value`.
fn value_args(arg: &Arg, key: &str, value: &toml::Value) -> Result<Vec<OsString>, String> {
    match arg.get_action() {
        // A switch (`--demo`): true adds it, false leaves the default (off).
        ArgAction::SetTrue | ArgAction::SetFalse => match value {
            toml::Value::Boolean(b) => {
                let on = *b == matches!(arg.get_action(), ArgAction::SetTrue);
                Ok(if on {
                    vec![format!("--{key}").into()]
                } else {
                    Vec::new()
                })
            }
            other => Err(format!(
                "expected true or false, found {} {other}",
                other.type_str()
            )),
        },
        ArgAction::Set | ArgAction::Append => {
            let kind = Kind::of(arg.get_value_parser());
            let many = matches!(arg.get_action(), ArgAction::Append)
                || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
            let items: Vec<&toml::Value> = match value {
                toml::Value::Array(items) if many => items.iter().collect(),
                toml::Value::Array(_) => {
                    return Err(format!("expected {}, found a list", kind.name()))
                }
                single => vec![single],
            };
            items
                .into_iter()
                .map(|v| kind.render(v).map(|s| format!("--{key}={s}").into()))
                .collect()
        }
        ArgAction::Count => match value {
            toml::Value::Integer(n) if (0..=255).contains(n) => {
                Ok((0..*n).map(|_| format!("--{key}").into()).collect())
            }
            other => Err(format!(
                "expected a count (0 to 255), found {} {other}",
                other.type_str()
            )),
        },
        _ => Err("this flag cannot be set in a file".to_string()),
    }
}

/// Runs `args` through the flag's own parser (and nothing else: no environment, no other
/// flag), so a bad value is reported against its key rather than as a command-line error.
fn check_with_parser(arg: &Arg, args: &[OsString]) -> Result<(), String> {
    let probe = clap::Command::new("gavel-config")
        .no_binary_name(true)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(arg.clone().env(None).required(false));
    probe
        .try_get_matches_from(args)
        .map(|_| ())
        .map_err(|e| error_message(&e.render().to_string()))
}

/// A clap error's message without its `error: ` prefix and usage lines (the message and
/// any `[possible values: …]` line, joined).
fn error_message(rendered: &str) -> String {
    let text = rendered.strip_prefix("error: ").unwrap_or(rendered);
    text.lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The effective configuration of `gavel serve` as parsed into `serve`, as TOML that a
/// `--config` file could hold, each line saying which layer set it; secrets masked (see
/// [`mask`]).
pub fn render_effective(
    serve_cmd: &clap::Command,
    serve: &ArgMatches,
    from_file: &[String],
    file: Option<&Path>,
) -> String {
    let mut out = String::from(
        "# Effective configuration of `gavel serve` (flag > environment > file > default).\n\
         # Secrets are masked.\n",
    );
    for arg in serve_cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if arg.get_id() == CONFIG_ARG
            || matches!(arg.get_action(), ArgAction::Help | ArgAction::Version)
        {
            continue;
        }
        let id = arg.get_id().as_str();
        let source = match serve.value_source(id) {
            Some(_) if from_file.iter().any(|f| f == id) => match file {
                Some(f) => format!("file ({})", f.display()),
                None => "file".to_string(),
            },
            Some(ValueSource::CommandLine) => "flag".to_string(),
            Some(ValueSource::EnvVariable) => format!(
                "environment ({})",
                arg.get_env()
                    .map(|e| e.to_string_lossy())
                    .unwrap_or_default()
            ),
            Some(ValueSource::DefaultValue) => "default".to_string(),
            Some(_) => "flag".to_string(),
            None => {
                let _ = writeln!(out, "# {long} is unset");
                continue;
            }
        };
        let raw: Vec<String> = serve
            .get_raw(id)
            .map(|vals| vals.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let kind = match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse => Kind::Bool,
            _ => Kind::of(arg.get_value_parser()),
        };
        let shown: Vec<String> = raw
            .iter()
            .map(|v| toml_literal(kind, &mask(long, v)))
            .collect();
        let value = if matches!(arg.get_action(), ArgAction::Append) {
            format!("[{}]", shown.join(", "))
        } else {
            shown.join(" ")
        };
        let _ = writeln!(out, "{long} = {value}  # {source}");
    }
    out
}

/// `raw` written as a TOML value of `kind` (quoted unless it is a well-formed number or
/// boolean of a flag of that type).
fn toml_literal(kind: Kind, raw: &str) -> String {
    let bare = match kind {
        Kind::Bool => raw == "true" || raw == "false",
        Kind::Integer => raw.parse::<i64>().is_ok(),
        Kind::Float => raw.parse::<f64>().is_ok(),
        Kind::Text => false,
    };
    if bare {
        raw.to_string()
    } else {
        toml::Value::String(raw.to_string()).to_string()
    }
}

/// The mask shown in place of a secret.
pub const MASK: &str = "********";

/// `value` of flag `--name` as it may be printed: the whole value when the name says it is
/// a secret (`*secret*`, `*token*`, `*password*`); in a URL, the password of its user
/// part and every query parameter whose name says it is a secret (`*secret*`, `*token*`,
/// `*password*`, `*key*`).
pub fn mask(name: &str, value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    if secret_name(name) {
        return MASK.to_string();
    }
    mask_url(value)
}

fn secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["secret", "token", "password", "passwd"]
        .iter()
        .any(|w| name.contains(w))
}

fn mask_url(value: &str) -> String {
    let Some(scheme_end) = value.find("://") else {
        return value.to_string();
    };
    let (scheme, rest) = value.split_at(scheme_end + 3);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _password)) => format!("{user}:{MASK}{host}"),
                None => format!("{userinfo}{host}"),
            }
        }
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (query, None),
            };
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if secret_name(k) || k.to_ascii_lowercase().contains("key") => {
                        format!("{k}={MASK}")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            let mut t = format!("{path}?{}", query.join("&"));
            if let Some(f) = fragment {
                t.push('#');
                t.push_str(f);
            }
            t
        }
        None => tail.to_string(),
    };
    format!("{scheme}{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command like `gavel serve` with the kinds of flags other helpers add: a
    /// repeatable list, a switch, a secret.
    fn future_serve() -> clap::Command {
        clap::Command::new("serve")
            .arg(
                Arg::new("webhook")
                    .long("webhook")
                    .action(ArgAction::Append),
            )
            .arg(
                Arg::new("jwt_leeway_secs")
                    .long("jwt-leeway-secs")
                    .value_parser(clap::value_parser!(u64))
                    .default_value("30"),
            )
            .arg(Arg::new("strict").long("strict").action(ArgAction::SetTrue))
    }

    fn args_of(text: &str, cli: &[&str]) -> Result<Vec<String>, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.toml");
        std::fs::write(&path, text).unwrap();
        let cmd = future_serve();
        let m = cmd.clone().try_get_matches_from(cli).unwrap();
        let (args, _) = file_args(&cmd, &m, &path)?;
        Ok(args
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect())
    }

    #[test]
    fn list_flags_take_toml_arrays_and_the_command_line_still_wins() {
        assert_eq!(
            args_of(
                "webhook = [\"http://a\", \"http://b\"]\njwt-leeway-secs = 5\nstrict = true\n",
                &["serve"]
            )
            .unwrap(),
            // (keys in name order)
            [
                "--jwt-leeway-secs=5",
                "--strict",
                "--webhook=http://a",
                "--webhook=http://b",
            ]
        );
        // One value for a list flag is a list of one.
        assert_eq!(
            args_of("webhook = \"http://a\"\n", &["serve"]).unwrap(),
            ["--webhook=http://a"]
        );
        // Set on the command line: the file's value is checked but not added.
        assert_eq!(
            args_of(
                "jwt-leeway-secs = 5\n",
                &["serve", "--jwt-leeway-secs", "9"]
            )
            .unwrap(),
            Vec::<String>::new()
        );
        assert!(matches!(
            args_of("webhook = [1]\n", &["serve"]),
            Err(ConfigError::BadValue { key, .. }) if key == "webhook"
        ));
        assert!(matches!(
            args_of("jwt-leeway-secs = \"5\"\n", &["serve", "--jwt-leeway-secs", "9"]),
            Err(ConfigError::BadValue { key, .. }) if key == "jwt-leeway-secs"
        ));
    }

    #[test]
    fn secrets_are_masked_by_name_and_inside_urls() {
        assert_eq!(mask("admin-token", "abc"), MASK);
        assert_eq!(mask("jwt-hmac-secret", "abc"), MASK);
        assert_eq!(mask("smtp-password", "abc"), MASK);
        assert_eq!(mask("admin-token", ""), "");
        assert_eq!(mask("listen", "127.0.0.1:3000"), "127.0.0.1:3000");
        assert_eq!(
            mask("database", "postgres://u:p%40ss@h:5432/db"),
            format!("postgres://u:{MASK}@h:5432/db")
        );
        assert_eq!(
            mask("redis", "redis://:pw@h:6379/0"),
            format!("redis://:{MASK}@h:6379/0")
        );
        assert_eq!(mask("redis", "redis://h:6379"), "redis://h:6379");
        assert_eq!(
            mask(
                "jwks-url",
                "https://idp/jwks?api_key=k1&x=1&access_token=t#frag"
            ),
            format!("https://idp/jwks?api_key={MASK}&x=1&access_token={MASK}#frag")
        );
        // A password that holds '@' or ':' is masked whole.
        assert_eq!(
            mask("database", "postgres://u:a:b@c@h/db"),
            format!("postgres://u:{MASK}@h/db")
        );
    }
}
