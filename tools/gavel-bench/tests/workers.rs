//! `gavel-bench --workers`, black-box: the real tool, its real worker processes and a real
//! embedded `gavel` process (the one `cargo build --workspace` puts next to gavel-bench).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bench() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gavel-bench"))
}

fn gavel() -> PathBuf {
    let p = bench().with_file_name("gavel");
    assert!(
        p.exists(),
        "{} is missing: build the server first (cargo build -p gavel-server)",
        p.display()
    );
    p
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gavel-bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A two-step ladder (10, then 40 watchers on one auction, 10 bids/s for 1 s) with the
/// watchers held by two workers. Returns the exit code and the JSON report.
fn ladder_with_two_workers(dir: &Path, worker_exe: Option<&Path>) -> (Option<i32>, Value) {
    let json = dir.join("report.json");
    let mut cmd = Command::new(bench());
    cmd.args([
        "ladder",
        "--workers",
        "2",
        "--steps",
        "10,40",
        "--bidders",
        "4",
    ])
    .args(["--rate", "10", "--duration", "1", "--drain", "5", "--quiet"])
    .arg("--spawn")
    .arg(gavel())
    .arg("--json")
    .arg(&json);
    if let Some(exe) = worker_exe {
        cmd.env("GAVEL_BENCH_WORKER_EXE", exe);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = std::fs::read_to_string(&json)
        .unwrap_or_else(|e| panic!("no report ({e}); gavel-bench said:\n{stderr}"));
    (out.status.code(), serde_json::from_str(&text).unwrap())
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn two_workers_give_one_report_whose_counts_are_the_sum_of_theirs() {
    let dir = scratch("workers");
    let (code, r) = ladder_with_two_workers(&dir, None);
    assert_eq!(code, Some(0), "report: {r:#}");
    assert_eq!(r["ok"], true);
    assert_eq!(r["workers"], 2);
    let steps = r["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    let mut pids = std::collections::HashSet::new();
    for (st, watchers) in steps.iter().zip([10u64, 40]) {
        assert_eq!(u(&st["watchers"]), watchers);
        let shares = st["workers"].as_array().unwrap();
        assert_eq!(shares.len(), 2, "one share per worker: {st:#}");
        for w in shares {
            pids.insert(u(&w["pid"]));
            // Each worker holds half of the watchers.
            assert_eq!(u(&w["watchers"]), watchers / 2);
        }
        let sum = |k: &str| shares.iter().map(|w| u(&w[k])).sum::<u64>();
        assert_eq!(u(&st["updates"]), sum("updates"));
        assert_eq!(u(&st["g2g_us"]["count"]), sum("g2g_samples"));
        assert_eq!(u(&st["unmatched_updates"]), sum("unmatched_updates"));
        // Every watcher received every accepted bid of the step, each timed once.
        let accepted = u(&st["accepted"]);
        assert!(accepted > 0, "{st:#}");
        assert_eq!(u(&st["updates"]), watchers * accepted, "{st:#}");
        assert_eq!(u(&st["g2g_us"]["count"]), watchers * accepted);
        assert!(u(&st["g2g_us"]["p50"]) > 0);
    }
    assert_eq!(pids.len(), 2, "two worker processes");
    assert!(!pids.contains(&0));
    let checks = &r["checks"];
    assert_eq!(u(&checks["watcher_states_checked"]), 40);
    assert_eq!(u(&checks["watcher_state_mismatches"]), 0);
    assert_eq!(u(&checks["violations"]), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_worker_whose_tally_does_not_add_up_fails_the_run() {
    let dir = scratch("broken-worker");
    // The real worker, with every tally it sends claiming 7 unmatched updates more than
    // its histogram and update count allow.
    let wrapper = dir.join("broken-worker.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n\"{}\" \"$@\" | sed -u 's/\"unmatched\":\\([0-9]*\\),/\"unmatched\":7\\1,/'\n",
            bench().display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let (code, r) = ladder_with_two_workers(&dir, Some(&wrapper));
    assert_eq!(code, Some(2), "a correctness failure: {r:#}");
    assert_eq!(r["ok"], false);
    let samples = r["checks"]["violation_samples"].to_string();
    assert!(
        samples.contains("sent a tally that does not add up"),
        "{samples}"
    );
    // A worker that failed is asked nothing more: its watchers count as unchecked.
    assert!(u(&r["checks"]["watcher_state_mismatches"]) > 0, "{r:#}");
    std::fs::remove_dir_all(&dir).unwrap();
}
