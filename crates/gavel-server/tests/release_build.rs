//! The product carries no test support: in the `gavel` binary's own dependency graph
//! (normal and build edges, what `cargo build --release -p gavel-server` resolves),
//! gavel-engine's `test-support` feature (conformance suite, cuttable proxy, throwaway Redis,
//! test-key sweeps) is off; only dev-dependencies turn it on.

use std::process::Command;

/// `cargo tree` of gavel-engine's features as gavel-server sees them over `edges`.
fn engine_features(edges: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--manifest-path",
            manifest,
            "-p",
            "gavel-server",
        ])
        .args(["-e", edges, "-i", "gavel-engine"])
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo tree failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_gavel_binary_is_built_without_the_engines_test_support() {
    let product = engine_features("normal,build,features");
    assert!(
        product.contains(r#"gavel-engine feature "default""#),
        "the check sees gavel-engine's features:\n{product}"
    );
    assert!(
        !product.contains("test-support"),
        "the product enables the engine's test support:\n{product}"
    );
    // The same check on the tests' graph does see the feature.
    let with_tests = engine_features("all,features");
    assert!(
        with_tests.contains(r#"gavel-engine feature "test-support""#),
        "{with_tests}"
    );
}
