//! The linearizability checker can fail: the concurrent workload of `tests/linearizable`
//! against an embedded server whose memory engine decides on a stale copy of the state (the
//! test-only `broken-cas` switch, as if the compare-and-swap were skipped) must produce a
//! history that `gavel-check` rejects.
//!
//! Its own test binary: the switch breaks every memory engine in the process.

mod common;
#[path = "linearizable/nodes.rs"]
mod nodes;
#[path = "linearizable/workload.rs"]
mod workload;

use gavel_check::{Options, Recorder, ViolationKind};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_rejects_the_history_of_an_engine_without_compare_and_swap() {
    gavel_engine::memory::broken::skip_compare_and_swap(true);
    tokio::time::timeout(Duration::from_secs(90), async {
        let server = nodes::Embedded::start().await;
        let seed = gavel_check::record::now_us() as u64;
        let rec = Arc::new(Recorder::in_memory(0, Some("broken engine".into())));
        let plan = workload::Plan {
            clients: 40,
            bidding_secs: 7.5,
            seed,
            tag: format!("broken{}", seed % 1_000_000),
            created: None,
        };
        let tally = workload::run(vec![server.node()], nodes::ADMIN, plan, rec.clone()).await;
        server.stop().await;
        let report = gavel_check::check(&rec.history(), Options::default());
        eprintln!("{tally:?}\n{}", report.text());
        assert!(
            tally.outcomes.get("accepted").copied().unwrap_or(0) > 50,
            "the workload ran: {tally:?}"
        );
        assert!(!report.ok(), "the checker passed a broken engine's history");
        // Two bids decided on the same committed state are both accepted at one seq.
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.kind == ViolationKind::SeqClaimedTwice && v.lines.len() == 2),
            "no two changes at one seq among:\n{}",
            report.text()
        );
    })
    .await
    .expect("bounded in time");
}

/// The switch exists only where dev-dependencies turn the feature on: the `gavel` binary's
/// own dependency graph (what a release build resolves) does not have it.
#[test]
fn the_gavel_binary_is_built_without_the_broken_switch() {
    let features = |edges: &str| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = std::process::Command::new(cargo)
            .args(["tree", "--offline", "--manifest-path"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .args(["-p", "gavel-server", "-e", edges, "-i", "gavel-engine"])
            .output()
            .expect("cargo runs");
        assert!(out.status.success(), "cargo tree failed: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let product = features("normal,build,features");
    assert!(
        product.contains(r#"gavel-engine feature "default""#),
        "the check sees gavel-engine's features:\n{product}"
    );
    assert!(!product.contains("broken-cas"), "{product}");
    assert!(
        features("all,features").contains(r#"gavel-engine feature "broken-cas""#),
        "the tests' graph has the switch"
    );
}
