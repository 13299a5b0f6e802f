//! Helpers shared by the criterion benches.

use std::path::{Path, PathBuf};

/// A fresh, empty directory for bench `name` under `target/bench-data/`
/// (on the project's disk, not tmpfs, so benches measure the real device).
pub fn bench_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-data")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    dir
}
