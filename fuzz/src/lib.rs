//! Harness pieces of the eventfabric fuzz targets that are not part of the
//! targets' logic: a cheap per-process scratch directory for the recovery
//! targets. The targets themselves, the input layout, the checksum repair
//! and the recovery exercise live in `eventfabric::fuzzing` (re-exported
//! here for the seed generators in `examples/`), so that the stable test
//! `tests/fuzz_regressions.rs` replays reproducers through the same code.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use eventfabric::fuzzing::{
    CHECKPOINT, CHECKPOINT_LEN, FOOTER_LEN, INDEX0, Input, SEGMENT0, fix_checkpoint, fix_segment,
    flags, index_name, looks_like_checkpoint, segment_name,
};

/// A directory private to this process (and `tag`) for a recovery target's
/// files; the entry point empties it before every pass. Lives under
/// /dev/shm when it exists (no disk I/O); not removed at exit.
pub fn scratch_dir(tag: &str) -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    let root = ROOT.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let parent = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let root = parent.join(format!("eventfabric-fuzz-{}", std::process::id()));
        fs::create_dir_all(&root).expect("harness: create scratch root");
        root
    });
    root.join(tag)
}
