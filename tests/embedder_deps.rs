//! The library's dependency tree as an embedder gets it: with default
//! features off (`eventfabric = { default-features = false }`), no crate
//! that only the `fabric` command line needs (clap and its family) is built.
//!
//! This file owns that one check, done with `cargo tree` on this package's
//! manifest; it must never build anything or reach the network (the lock
//! file and the downloaded crates the test run already has are enough).

use std::process::Command;

/// The names of the crates in the library's normal (non-dev, non-build)
/// dependency tree, with the cargo feature flags in `feature_args`.
fn normal_dependencies(feature_args: &[&str]) -> Vec<String> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--manifest-path", manifest, "-p", "eventfabric"])
        .args(["-e", "normal", "--prefix", "none", "--format", "{p}"])
        .args(feature_args)
        .output()
        .expect("cargo (the CARGO the tests were built by) runs");
    assert!(
        out.status.success(),
        "cargo tree {feature_args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Crates that exist only for argument parsing: clap and the crates that
/// only clap pulls in.
fn is_cli_crate(name: &str) -> bool {
    name.starts_with("clap") || name.starts_with("anstyle") || name == "anstream"
}

#[test]
fn without_default_features_the_library_tree_has_no_cli_crate() {
    let embedder = normal_dependencies(&["--no-default-features"]);
    assert!(
        embedder.iter().any(|n| n == "eventfabric") && embedder.iter().any(|n| n == "zstd"),
        "cargo tree listed neither the package nor its storage dependencies: {embedder:?}"
    );
    let cli: Vec<&String> = embedder.iter().filter(|n| is_cli_crate(n)).collect();
    assert!(
        cli.is_empty(),
        "an embedder (default-features = false) builds command-line crates {cli:?}; \
         put them behind the `cli` feature"
    );
    // Benchmark-only crates are dev-dependencies, not the embedder's either.
    assert!(
        !embedder.iter().any(|n| n.starts_with("crossbeam")),
        "crossbeam (used by benches/groups.rs only) is a normal dependency: {embedder:?}"
    );
}

#[test]
fn the_default_cli_feature_brings_clap_for_the_fabric_binary() {
    // The other side of the switch: `cargo install` / `cargo run --bin fabric`
    // (default features) still get the command line.
    let default = normal_dependencies(&[]);
    assert!(
        default.iter().any(|n| n == "clap"),
        "default features no longer enable clap, so the fabric binary cannot build: {default:?}"
    );
}
