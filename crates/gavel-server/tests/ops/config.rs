//! The configuration file: flag > environment > file > default, each layer seen winning;
//! unknown keys and wrongly typed values refused at start, naming the key; `gavel config
//! check` masks secrets.

use crate::support::{free_port, gavel, run, start, stderr, stdout};
use std::path::PathBuf;

fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("gavel.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The line of `gavel config check`'s output for `key`.
fn line<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} line in:\n{out}"))
}

#[test]
fn each_layer_wins_over_the_ones_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "batch-max = 500\nbatch-window-ms = 7\nheartbeat-ms = 250\nclosed-retention = \"2h\"\n",
    );
    let out = run(gavel()
        .args(["config", "check"])
        .arg(&file)
        .args(["--heartbeat-ms", "900"])
        .env("GAVEL_BATCH_WINDOW_MS", "5")
        .env("GAVEL_HEARTBEAT_MS", "600"));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    // Default: nothing sets it.
    assert_eq!(line(&text, "drain-batch"), "drain-batch = 100  # default");
    // File over default.
    assert_eq!(
        line(&text, "batch-max"),
        format!("batch-max = 500  # file ({})", file.display())
    );
    assert_eq!(
        line(&text, "closed-retention"),
        format!("closed-retention = \"2h\"  # file ({})", file.display())
    );
    // Environment over file.
    assert_eq!(
        line(&text, "batch-window-ms"),
        "batch-window-ms = 5  # environment (GAVEL_BATCH_WINDOW_MS)"
    );
    // Flag over environment (and file).
    assert_eq!(line(&text, "heartbeat-ms"), "heartbeat-ms = 900  # flag");
}

#[test]
fn the_file_can_come_from_gavel_config_and_switches_take_booleans() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "demo = true\nguest-sessions = false\n");
    // `config check` takes the file as its argument; GAVEL_CONFIG is for `gavel serve`, and
    // `--config` on check's flags would name the same file again.
    let out = run(gavel().args(["config", "check"]).arg(&file));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        line(&text, "demo").starts_with("demo = true  # file"),
        "{text}"
    );
    assert!(line(&text, "guest-sessions").starts_with("guest-sessions = false  # file"));
    // A switch given as false leaves the default, which an environment variable may set.
    let file = write(&dir, "demo = false\n");
    let out = run(gavel()
        .args(["config", "check"])
        .arg(&file)
        .env("GAVEL_DEMO", "true"));
    assert_eq!(
        line(&stdout(&out), "demo"),
        "demo = true  # environment (GAVEL_DEMO)"
    );
}

#[test]
fn unknown_keys_and_wrongly_typed_values_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "batch_max = 3\n",
            "unknown key \"batch_max\": `gavel serve` has no flag --batch_max (keys are the flags' long names, e.g. batch-max = 1000); did you mean \"batch-max\"?",
        ),
        ("heartbeat-msec = 3\n", "did you mean \"heartbeat-ms\"?"),
        ("no-such-flag = 1\n", "unknown key \"no-such-flag\""),
        (
            "batch-max = \"many\"\n",
            "key \"batch-max\": expected an integer, found string",
        ),
        (
            "batch-max = 2.5\n",
            "key \"batch-max\": expected an integer, found float",
        ),
        ("demo = \"yes\"\n", "key \"demo\": expected true or false"),
        ("listen = 3000\n", "key \"listen\": expected a string"),
        (
            "listen = \"not an address\"\n",
            "key \"listen\": invalid value 'not an address'",
        ),
        (
            "log-format = \"xml\"\n",
            "key \"log-format\": invalid value 'xml'",
        ),
        (
            "closed-retention = \"2 hours\"\n",
            "key \"closed-retention\": invalid value '2 hours'",
        ),
        (
            "batch-max = [1, 2]\n",
            "key \"batch-max\": expected an integer, found a list",
        ),
        (
            "bids-per-second = -1\n",
            "key \"bids-per-second\": invalid value '-1'",
        ),
        ("listen = [\n", "not valid TOML"),
    ];
    for (text, expected) in cases {
        let file = write(&dir, text);
        // At start of the server (before it binds or opens anything)...
        let data = dir.path().join("data");
        let out = run(gavel()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .env("GAVEL_CONFIG", &file));
        assert_eq!(out.status.code(), Some(2), "{text}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(expected),
            "{text}: expected {expected:?} in {err}"
        );
        assert!(err.contains("gavel.toml"), "names the file: {err}");
        assert!(!data.exists(), "{text}: the server started anyway");
        // ...and in `config check`.
        let out = run(gavel().args(["config", "check"]).arg(&file));
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(stderr(&out).contains(expected), "{text}: {}", stderr(&out));
        assert!(stdout(&out).is_empty());
    }
    // What the server would refuse at start from the settings alone.
    for (text, expected) in [
        ("redis = \"redis://127.0.0.1:6379\"\n", "needs both redis"),
        (
            "admin-token = \"short\"\n",
            "--admin-token (GAVEL_ADMIN_TOKEN) is 5 bytes",
        ),
        ("jwt-secret = \"short\"\n", "the JWT secret"),
    ] {
        let file = write(&dir, text);
        let out = run(gavel().args(["config", "check"]).arg(&file));
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(stderr(&out).contains(expected), "{text}: {}", stderr(&out));
    }
    // A flag given on the command line does not excuse a bad key for it in the file.
    let file = write(&dir, "batch-max = \"many\"\n");
    let out = run(gavel()
        .args(["config", "check"])
        .arg(&file)
        .args(["--batch-max", "3"]));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn config_check_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "admin-token = \"admin-SECRET-1-0123456789\"\n\
         jwt-secret = \"jwt-SECRET-2-0123456789abcdef0123456789\"\n\
         redis = \"redis://gavel:redis-SECRET-3@127.0.0.1:6379/0\"\n\
         database = \"postgres://postgres:pg-SECRET-4@db.example/gavel?sslmode=disable&password=pg-SECRET-5\"\n",
    );
    let out = run(gavel().args(["config", "check"]).arg(&file));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains("SECRET"), "a secret is printed:\n{text}");
    assert!(line(&text, "admin-token").starts_with("admin-token = \"********\""));
    assert!(line(&text, "jwt-secret").starts_with("jwt-secret = \"********\""));
    assert!(line(&text, "redis").starts_with("redis = \"redis://gavel:********@127.0.0.1:6379/0\""));
    assert!(line(&text, "database").starts_with(
        "database = \"postgres://postgres:********@db.example/gavel?sslmode=disable&password=********\""
    ));
    // The same from the environment.
    let empty = write(&dir, "");
    let out = run(gavel()
        .args(["config", "check"])
        .arg(&empty)
        .env("GAVEL_ADMIN_TOKEN", "env-SECRET-6-0123456789"));
    let text = stdout(&out);
    assert!(!text.contains("SECRET"), "{text}");
    assert!(line(&text, "admin-token").contains("# environment (GAVEL_ADMIN_TOKEN)"));
    // The conventional pair, when nothing else names a backend.
    let out = run(gavel()
        .args(["config", "check"])
        .arg(&empty)
        .env("REDIS_URL", "redis://:redis-SECRET-7@127.0.0.1:6379")
        .env("DATABASE_URL", "postgres://u:pg-SECRET-8@127.0.0.1/test"));
    let text = stdout(&out);
    assert!(!text.contains("SECRET"), "{text}");
    assert_eq!(
        line(&text, "redis"),
        "redis = \"redis://:********@127.0.0.1:6379\"  # environment (REDIS_URL)"
    );
    assert_eq!(
        line(&text, "database"),
        "database = \"postgres://u:********@127.0.0.1/test\"  # environment (DATABASE_URL)"
    );
}

/// The real server reads the file: it listens where the file says (file over default),
/// takes the admin token from the environment over the file's, and the flag over both.
#[tokio::test]
async fn the_server_runs_with_the_file_s_settings() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = write(
        &dir,
        &format!(
            "listen = \"127.0.0.1:{port}\"\ndata-dir = {:?}\nadmin-token = \"from-file-0123456789\"\n",
            dir.path().join("data")
        ),
    );
    let http = reqwest::Client::new();
    let admin_status = |base: String, token: &'static str| {
        let http = http.clone();
        async move {
            http.get(format!("{base}/api/admin/stats"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };

    let mut cmd = gavel();
    cmd.args(["serve", "--config"]).arg(&file);
    let server = start(cmd, port).await;
    assert!(dir.path().join("data").join("gavel.db").exists());
    assert_eq!(
        admin_status(server.base.clone(), "from-file-0123456789").await,
        200
    );
    drop(server);

    let mut cmd = gavel();
    cmd.args(["serve", "--config"])
        .arg(&file)
        .env("GAVEL_ADMIN_TOKEN", "from-env-0123456789");
    let server = start(cmd, port).await;
    assert_eq!(
        admin_status(server.base.clone(), "from-env-0123456789").await,
        200
    );
    assert_ne!(
        admin_status(server.base.clone(), "from-file-0123456789").await,
        200
    );
    drop(server);

    let mut cmd = gavel();
    cmd.args(["serve", "--admin-token", "from-flag-0123456789"])
        .env("GAVEL_CONFIG", &file)
        .env("GAVEL_ADMIN_TOKEN", "from-env-0123456789");
    let server = start(cmd, port).await;
    assert_eq!(
        admin_status(server.base.clone(), "from-flag-0123456789").await,
        200
    );
    assert_ne!(
        admin_status(server.base.clone(), "from-env-0123456789").await,
        200
    );
}

/// Every flag of `gavel serve`, today's and any added later, is a key of the file: a file
/// setting all of them (each to its default, or to a sample value of its type) is accepted
/// and every one of them shows as set by the file. Built from clap's own description of
/// the flags, so a new flag is covered without touching this test.
#[test]
fn every_flag_of_gavel_serve_is_a_key_of_the_file() {
    use clap::{ArgAction, CommandFactory};
    let mut cmd = gavel_server::config::Cli::command();
    cmd.build();
    let serve = cmd.find_subcommand("serve").unwrap();
    let mut text = String::new();
    let mut keys = Vec::new();
    for arg in serve.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if long == "config" || matches!(arg.get_action(), ArgAction::Help | ArgAction::Version) {
            continue;
        }
        let value = match arg.get_action() {
            ArgAction::SetTrue => "true".to_string(),
            _ => match arg.get_default_values().first() {
                Some(d) => {
                    let d = d.to_string_lossy();
                    if d == "true" || d == "false" || d.parse::<i64>().is_ok() {
                        d.into_owned()
                    } else {
                        format!("{d:?}")
                    }
                }
                // No default: a sample of its type. Free text is long enough for the secrets'
                // minimum lengths; flags whose parser wants a particular form have theirs.
                None => match sample(long) {
                    Some(v) => v.to_string(),
                    None if arg.get_value_parser().type_id() == std::any::TypeId::of::<bool>() => {
                        "true".to_string()
                    }
                    None if long.ends_with("-ms") || long.ends_with("-secs") => "1".to_string(),
                    None => format!("\"sample-{long}-0123456789abcdef0123456789\""),
                },
            },
        };
        text.push_str(&format!("{long} = {value}\n"));
        keys.push(long.to_string());
    }
    assert!(keys.len() > 30, "{keys:?}");
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, &text);
    let out = run(gavel().args(["config", "check"]).arg(&file));
    assert!(out.status.success(), "{}\n{text}", stderr(&out));
    let shown = stdout(&out);
    for key in keys {
        assert!(
            line(&shown, &key).ends_with(&format!("# file ({})", file.display())),
            "{key}: {}",
            line(&shown, &key)
        );
    }
}

/// Sample values of flags without a default whose parser refuses free text.
fn sample(long: &str) -> Option<&'static str> {
    Some(match long {
        "trusted-proxies" => "[\"10.0.0.0/8\", \"127.0.0.1\"]",
        "allowed-origins" => "[\"https://shop.example\"]",
        "jwks-url" => "[\"https://idp.example/jwks.json\"]",
        _ => return None,
    })
}
