//! docs/configuration.md lists every flag of `gavel serve` with its environment variable
//! and default, exactly as clap knows them, and no flag that does not exist: the checker
//! runs on the real document and is seen failing on a document missing a flag, with a
//! wrong default or environment name, and with a flag that no longer exists.

use clap::{ArgAction, CommandFactory};
use gavel_server::config::Cli;
use std::collections::BTreeMap;

const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");

/// One row of the reference table: flag (long name) → (environment variable, default).
type Row = (String, String);

/// What `gavel serve` has, in the reference table's terms. The default column shows `—`
/// for a flag without a default, several defaults comma-separated.
fn expected() -> BTreeMap<String, Row> {
    let mut cmd = Cli::command();
    // Built, clap fills in the implicit defaults (`false` for a switch).
    cmd.build();
    let serve = cmd.find_subcommand("serve").expect("serve");
    serve
        .get_arguments()
        .filter(|a| !matches!(a.get_action(), ArgAction::Help | ArgAction::Version))
        .filter_map(|a| {
            let long = a.get_long()?;
            let env = a
                .get_env()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_else(|| "—".to_string());
            let defaults: Vec<String> = a
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let default = if defaults.is_empty() {
                "—".to_string()
            } else {
                defaults.join(", ")
            };
            Some((long.to_string(), (env, default)))
        })
        .collect()
}

/// The table rows of `doc` that start with a flag: `` | `--name` | `ENV` | `default` | … ``.
fn documented(doc: &str) -> BTreeMap<String, Row> {
    let cell = |c: &str| c.trim().trim_matches('`').to_string();
    doc.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim().strip_prefix('|')?.split('|').collect();
            let first = cells.first()?.trim();
            let name = first.strip_prefix("`--")?.strip_suffix('`')?;
            Some((name.to_string(), (cell(cells.get(1)?), cell(cells.get(2)?))))
        })
        .collect()
}

/// Every difference between `doc` and `gavel serve`, each naming its flag.
fn drift(doc: &str) -> Vec<String> {
    let want = expected();
    let have = documented(doc);
    let mut problems = Vec::new();
    for (flag, (env, default)) in &want {
        match have.get(flag) {
            None => problems.push(format!(
                "--{flag} is missing from docs/configuration.md; add the row \
                 | `--{flag}` | `{env}` | `{default}` | … |"
            )),
            Some((doc_env, doc_default)) => {
                if doc_env != env {
                    problems.push(format!(
                        "--{flag}: environment {doc_env:?}, clap has {env:?}"
                    ));
                }
                if doc_default != default {
                    problems.push(format!(
                        "--{flag}: default {doc_default:?}, clap has {default:?}"
                    ));
                }
            }
        }
    }
    for flag in have.keys().filter(|f| !want.contains_key(*f)) {
        problems.push(format!(
            "--{flag} is documented but `gavel serve` has no such flag"
        ));
    }
    problems
}

fn doc() -> String {
    std::fs::read_to_string(DOC_PATH).expect("docs/configuration.md")
}

#[test]
fn the_configuration_reference_lists_every_flag_with_its_environment_and_default() {
    let problems = drift(&doc());
    assert!(
        problems.is_empty(),
        "docs/configuration.md drifted:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_drift_check_fails_on_a_missing_a_wrong_and_a_stale_flag() {
    let doc = doc();
    let without: String = doc
        .lines()
        .filter(|l| !l.trim_start().starts_with("| `--batch-max`"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without, doc, "the document has a --batch-max row");
    let problems = drift(&without);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("--batch-max is missing"),
        "{problems:?}"
    );

    let wrong_default = doc.replace(
        "| `GAVEL_BATCH_MAX` | `1000` |",
        "| `GAVEL_BATCH_MAX` | `100` |",
    );
    assert_ne!(wrong_default, doc);
    assert_eq!(
        drift(&wrong_default),
        vec!["--batch-max: default \"100\", clap has \"1000\"".to_string()]
    );

    let wrong_env = doc.replace("| `GAVEL_BATCH_MAX` |", "| `GAVEL_BATCHMAX` |");
    assert_eq!(drift(&wrong_env).len(), 1);

    let stale = format!("{doc}\n| `--no-such-flag` | `GAVEL_NO_SUCH_FLAG` | `1` | gone |\n");
    assert_eq!(
        drift(&stale),
        vec!["--no-such-flag is documented but `gavel serve` has no such flag".to_string()]
    );
}

/// Prints the reference table from clap (meaning: each flag's help text), to start or
/// extend the document: `cargo test -p gavel-server --test ops print_reference_rows -- --ignored --nocapture`.
#[test]
#[ignore]
fn print_reference_rows() {
    let cmd = Cli::command();
    let serve = cmd.find_subcommand("serve").expect("serve");
    for a in serve.get_arguments() {
        let Some(long) = a.get_long() else { continue };
        if matches!(a.get_action(), ArgAction::Help | ArgAction::Version) {
            continue;
        }
        let (env, default) = &expected()[long];
        let help = a
            .get_long_help()
            .or(a.get_help())
            .map(|h| h.to_string().replace('\n', " "))
            .unwrap_or_default();
        println!("| `--{long}` | `{env}` | `{default}` | {help} |");
    }
}

/// The example file in docs/configuration.md is valid, and so is each commented-out key in
/// it once uncommented (a renamed flag breaks the example visibly).
#[test]
fn the_documented_example_file_is_valid() {
    let doc = doc();
    let start = doc.find("```toml\n").expect("an example file") + "```toml\n".len();
    let example = &doc[start..start + doc[start..].find("```").unwrap()];
    let uncommented: String = example
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if rest.contains(" = ") && !rest.contains('…') => format!("{rest}\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    assert!(uncommented.contains("\njwks-url = "), "{uncommented}");
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("example.toml", example),
        ("uncommented.toml", &uncommented),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let out = crate::support::run(crate::support::gavel().args(["config", "check"]).arg(&file));
        assert!(
            out.status.success(),
            "{name}: {}\n{text}",
            crate::support::stderr(&out)
        );
    }
}
