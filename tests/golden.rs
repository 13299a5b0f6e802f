//! Golden fixtures: small v1 logs committed under tests/fixtures/v1/ pin the
//! on-disk format. `EF_BLESS=1 cargo test --test golden` rewrites them (only
//! ever together with a format version bump in docs/FORMAT.md).
mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{read_all, value_for};
use eventfabric::{Durability, Error, Log, LogConfig, ReadLimit};

const RECORDS: u64 = 60;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/v1")
        .join(name)
}

fn config() -> LogConfig {
    let mut c = LogConfig::default();
    c.segment_bytes = 1024;
    c.index_interval_bytes = 64;
    c.durability = Durability::Os;
    c
}

/// Writes the canonical clean log: 60 records in batches of 1..4, fixed timestamps.
fn write_clean(dir: &Path) {
    let log = Log::open(dir, config()).expect("open");
    let mut next = 0u64;
    while next < RECORDS {
        let n = (next % 4 + 1).min(RECORDS - next);
        let batch: Vec<(i64, Vec<u8>)> = (next..next + n)
            .map(|o| {
                (
                    1_780_000_000_000_000 + o as i64 * 1_000,
                    value_for(o, 20 + (o as usize * 7) % 50),
                )
            })
            .collect();
        log.append_batch_with_timestamps(&batch).expect("append");
        next += n;
    }
    log.close().expect("close");
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry"))
        .filter(|e| e.file_name() != "writer.lock")
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    out.sort();
    out
}

fn copy_fixture(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (name, bytes) in files(&fixture(name)) {
        fs::write(tmp.path().join(name), bytes).expect("copy");
    }
    tmp
}

fn active_segment(dir: &Path) -> PathBuf {
    let mut logs: Vec<_> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a segment")
}

fn bless() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1");
    let _ = fs::remove_dir_all(&root);
    for name in ["clean", "torn_tail", "corrupt_sealed"] {
        let dir = root.join(name);
        fs::create_dir_all(&dir).expect("mkdir");
        write_clean(&dir);
        fs::remove_file(dir.join("writer.lock")).expect("unlock");
    }
    // A half-written batch after the last durable one.
    let active = active_segment(&root.join("torn_tail"));
    let end = {
        let log = Log::open_read_only(root.join("torn_tail")).expect("open");
        log.segments().last().expect("segment").size_bytes as usize
    };
    let mut bytes = fs::read(&active).expect("read");
    let torn = [
        0xEFu8, b'F', b'L', b'B', 1, 0, 0, 0, 200, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7,
    ];
    bytes.truncate(end);
    bytes.extend_from_slice(&torn);
    fs::write(&active, bytes).expect("write torn tail");
    // One flipped bit inside the first batch's records of the first sealed segment.
    let first = root.join("corrupt_sealed/00000000000000000000.log");
    let mut bytes = fs::read(&first).expect("read");
    bytes[70] ^= 0x04;
    fs::write(&first, bytes).expect("write corrupt");
}

#[test]
fn the_encoder_still_writes_the_committed_v1_bytes() {
    if std::env::var_os("EF_BLESS").is_some() {
        bless();
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    write_clean(tmp.path());
    let want = files(&fixture("clean"));
    let got = files(tmp.path());
    assert_eq!(
        got.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        want.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>()
    );
    for ((name, g), (_, w)) in got.iter().zip(&want) {
        assert!(
            g == w,
            "{name} differs from the committed v1 fixture: the format changed"
        );
    }
}

#[test]
fn the_clean_v1_log_reads_back_every_record() {
    let tmp = copy_fixture("clean");
    let log = Log::open(tmp.path(), config()).expect("open v1 log");
    assert!(log.recovery_report().truncations.is_empty());
    assert!(log.segments().len() >= 3, "fixture spans several segments");
    let all = read_all(&log).expect("read");
    assert_eq!(all.len() as u64, RECORDS);
    for (o, t, v) in all {
        assert_eq!(t, 1_780_000_000_000_000 + o as i64 * 1_000);
        assert_eq!(v, value_for(o, 20 + (o as usize * 7) % 50));
    }
    assert_eq!(
        log.offset_for_time(1_780_000_000_000_000 + 41_500)
            .expect("time"),
        Some(42)
    );
    assert!(eventfabric::verify(tmp.path()).expect("verify").is_clean());
}

#[test]
fn the_torn_tail_fixture_is_truncated_and_keeps_every_record() {
    let tmp = copy_fixture("torn_tail");
    let report = eventfabric::verify(tmp.path()).expect("verify");
    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert!(
        report.findings[0].problem.contains("torn tail"),
        "{report:?}"
    );
    let log = Log::open(tmp.path(), config()).expect("open");
    let t = &log.recovery_report().truncations;
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].path, active_segment(tmp.path()));
    assert_eq!(t[0].first_offset_removed, RECORDS);
    assert_eq!(read_all(&log).expect("read").len() as u64, RECORDS);
    drop(log);
    assert!(eventfabric::verify(tmp.path()).expect("verify").is_clean());
}

#[test]
fn the_corrupt_sealed_fixture_is_an_error_until_repaired() {
    let tmp = copy_fixture("corrupt_sealed");
    let first = tmp.path().join("00000000000000000000.log");
    let report = eventfabric::verify(tmp.path()).expect("verify");
    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert_eq!(report.findings[0].path, first);
    assert_eq!(report.findings[0].position, 0);
    let log = Log::open(tmp.path(), config()).expect("sealed segments are trusted at open");
    match log.read(0, ReadLimit::records(1)) {
        Err(Error::Corrupted { path, position, .. }) => {
            assert_eq!(path, first);
            assert_eq!(position, 0);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    drop(log);
    let repaired = eventfabric::repair(tmp.path(), config()).expect("repair");
    assert_eq!(repaired.truncated_from, Some((0, RECORDS)));
    let log = Log::open(tmp.path(), config()).expect("open after repair");
    assert_eq!(log.next_offset(), 0);
    assert!(read_all(&log).expect("read").is_empty());
    drop(log);
    assert!(eventfabric::verify(tmp.path()).expect("verify").is_clean());
}
