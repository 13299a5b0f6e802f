//! Every reproducer the fuzzers ever found stays fixed: each file under
//! `fuzz/regressions/<target>/` is replayed through the same
//! `eventfabric::fuzzing` entry point the cargo-fuzz target `<target>` calls,
//! on the stable toolchain, in every `cargo test --release`. A reproducer that
//! panics again fails the test with its file name and panic message; a
//! directory without an entry point fails it too, and so does a library
//! built without overflow checks (most reproducers are overflows, which
//! would otherwise wrap silently and pass). `fuzz/check_regressions.sh`
//! replays the same files under AddressSanitizer with cargo-fuzz.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use eventfabric::fuzzing;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

thread_local! {
    /// Where the last panic on this thread happened (set by the hook below).
    static PANIC_AT: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Keeps the default hook's report and also remembers the panic's location,
/// so the summary names the line of each failing reproducer.
fn remember_panic_locations() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let at = info.location().map(|l| l.to_string()).unwrap_or_default();
        PANIC_AT.with(|p| *p.borrow_mut() = at);
        default(info);
    }));
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(non-string panic payload)".to_string());
    let at = PANIC_AT.with(|p| std::mem::take(&mut *p.borrow_mut()));
    format!("{message} (at {at})")
}

#[test]
fn every_saved_fuzz_reproducer_replays_without_a_panic() {
    assert!(
        fuzzing::overflow_checks_enabled(),
        "the library was built without overflow checks: reproducers of arithmetic \
         overflows would wrap silently and pass (Cargo.toml sets overflow-checks for \
         the release profile of eventfabric)"
    );
    remember_panic_locations();
    let scratch = tempfile::tempdir().expect("tempdir");
    let root = fuzz_dir().join("regressions");
    let mut failures = Vec::new();
    let mut replayed = 0usize;
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .expect("fuzz/regressions")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "no target directories under {}",
        root.display()
    );
    for dir in dirs {
        let target = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name");
        let files = files_in(&dir);
        assert!(!files.is_empty(), "{} holds no reproducer", dir.display());
        for file in files {
            let data = fs::read(&file).expect("read reproducer");
            let work = scratch.path().join(target);
            let outcome = catch_unwind(AssertUnwindSafe(|| fuzzing::run(target, &data, &work)));
            let name = file.strip_prefix(fuzz_dir()).unwrap_or(&file).display();
            match outcome {
                Ok(Ok(())) => replayed += 1,
                Ok(Err(e)) => failures.push(format!("{name}: {e}")),
                Err(panic) => {
                    failures.push(format!("{name}: panicked: {}", panic_message(&*panic)))
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} reproducer(s) failed:\n{}",
        failures.len(),
        failures.len() + replayed,
        failures.join("\n")
    );
}

/// The entry points and the cargo-fuzz binaries are the same list: a new
/// target gets an entry point (and so a replay), and every binary is one call
/// into `eventfabric::fuzzing`.
#[test]
fn every_fuzz_target_is_an_entry_point_of_the_library() {
    let binaries: BTreeSet<String> = files_in(&fuzz_dir().join("fuzz_targets"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| {
            let name = p
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("name")
                .to_string();
            let source = fs::read_to_string(&p).expect("read target");
            assert!(
                source.contains(&format!("eventfabric::fuzzing::{name}(")),
                "{} does not call eventfabric::fuzzing::{name}",
                p.display()
            );
            name
        })
        .collect();
    let entry_points: BTreeSet<String> = fuzzing::TARGETS.iter().map(|t| t.to_string()).collect();
    assert_eq!(binaries, entry_points);
    let scratch = tempfile::tempdir().expect("tempdir");
    for target in fuzzing::TARGETS {
        assert_eq!(
            fuzzing::run(target, b"", scratch.path()),
            Ok(()),
            "{target}"
        );
    }
    assert!(fuzzing::run("no_such_target", b"", scratch.path()).is_err());
}
