//! Golden fixtures: small logs committed under tests/fixtures/ pin the
//! on-disk format. `v1/` holds logs of batch format version 1, frozen since
//! the log writes version 2 (they must stay readable, and the encoder must
//! still re-encode their batches byte for byte, as a truncation does);
//! `v2/clean` is what the log writes today. `EF_BLESS=1 cargo test --test
//! golden` rewrites `v2/` (only ever together with a format version bump in
//! docs/FORMAT.md).
mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{read_all, value_for};
use eventfabric::testing::batch::{BatchEncoder, BatchView, parse_header};
use eventfabric::{Durability, Error, Log, LogConfig, ReadLimit};

const RECORDS: u64 = 60;
/// The `appended_at` every batch of the v2 fixture is normalised to: the log
/// stamps its wall clock, which no committed file can match.
const FIXED_APPENDED_AT: i64 = 1_780_000_100_000_000;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/v1")
        .join(name)
}

fn fixture_v2(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/v2")
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
    copy_dir(&fixture(name))
}

fn copy_dir(from: &Path) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (name, bytes) in files(from) {
        fs::write(tmp.path().join(name), bytes).expect("copy");
    }
    tmp
}

/// The batches of a segment file: (position, length) of each, up to its footer.
fn batch_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Ok(view) = BatchView::parse(&bytes[pos..]) {
        let len = view.header.length as usize;
        out.push((pos, len));
        pos += len;
    }
    out
}

/// Checks that every batch the log wrote in `dir` is version 2 with an
/// `appended_at` in `from..=to`, never decreasing, then rewrites each to
/// [`FIXED_APPENDED_AT`] (and its CRC), so the files can be compared byte
/// for byte with the committed ones.
fn normalise_append_times(dir: &Path, from: i64, to: i64) {
    let mut last = i64::MIN;
    for (name, mut bytes) in files(dir) {
        if !name.ends_with(".log") {
            continue;
        }
        for (pos, len) in batch_spans(&bytes) {
            let h = parse_header(&bytes[pos..]).expect("header");
            assert_eq!(h.version, 2, "{name} byte {pos}");
            let at = h.appended_at.expect("a v2 batch has an append time");
            assert!((from..=to).contains(&at), "{name} byte {pos}: {at}");
            assert!(at >= last, "{name} byte {pos}: append times decreased");
            last = at;
            bytes[pos + 56..pos + 64].copy_from_slice(&FIXED_APPENDED_AT.to_le_bytes());
            let crc = crc32fast::hash(&bytes[pos + 16..pos + len]);
            bytes[pos + 12..pos + 16].copy_from_slice(&crc.to_le_bytes());
        }
        fs::write(dir.join(&name), bytes).expect("rewrite");
    }
}

/// [`write_clean`], then normalised; returns the directory.
fn write_clean_v2() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let from = now_micros();
    write_clean(tmp.path());
    normalise_append_times(tmp.path(), from, now_micros());
    tmp
}

fn now_micros() -> i64 {
    jiff::Timestamp::now().as_microsecond()
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

/// Rewrites the v2 fixture. The v1 fixtures (a clean log, one with a torn
/// tail, one with a flipped bit in a sealed segment) are frozen: no code
/// writes version 1 logs any more.
fn bless() {
    let dir = fixture_v2("clean");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("mkdir");
    let tmp = write_clean_v2();
    for (name, bytes) in files(tmp.path()) {
        fs::write(dir.join(name), bytes).expect("write fixture");
    }
}

#[test]
fn the_log_still_writes_the_committed_v2_bytes() {
    if std::env::var_os("EF_BLESS").is_some() {
        bless();
    }
    let tmp = write_clean_v2();
    let want = files(&fixture_v2("clean"));
    let got = files(tmp.path());
    assert_eq!(
        got.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        want.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>()
    );
    for ((name, g), (_, w)) in got.iter().zip(&want) {
        assert!(
            g == w,
            "{name} differs from the committed v2 fixture: the format changed"
        );
    }
}

#[test]
fn the_encoder_still_writes_the_committed_v1_bytes() {
    // The log writes version 2 now; a version 1 batch is still re-encoded
    // as it was (a truncation through it keeps its prefix in version 1).
    let mut records = 0;
    for (name, bytes) in files(&fixture("clean")) {
        if !name.ends_with(".log") {
            continue;
        }
        for (pos, len) in batch_spans(&bytes) {
            let view = BatchView::parse(&bytes[pos..pos + len]).expect("batch");
            assert_eq!((view.header.version, view.header.appended_at), (1, None));
            let mut enc = BatchEncoder::default();
            enc.begin(view.header.base_offset, view.header.durable_offset, None);
            for r in view.records() {
                enc.push(r.timestamp, r.value);
            }
            assert!(
                enc.finish() == &bytes[pos..pos + len],
                "{name} byte {pos}: the v1 encoding changed"
            );
            records += u64::from(view.header.count);
        }
    }
    assert_eq!(
        records, RECORDS,
        "every batch of the fixture was re-encoded"
    );
}

#[test]
fn the_clean_v2_log_reads_back_every_record_and_its_append_time() {
    let tmp = copy_dir(&fixture_v2("clean"));
    let log = Log::open(tmp.path(), config()).expect("open v2 log");
    assert!(log.recovery_report().truncations.is_empty());
    assert!(log.segments().len() >= 3, "fixture spans several segments");
    let all = read_all(&log).expect("read");
    assert_eq!(all.len() as u64, RECORDS);
    for (o, t, v) in all {
        assert_eq!(t, 1_780_000_000_000_000 + o as i64 * 1_000);
        assert_eq!(v, value_for(o, 20 + (o as usize * 7) % 50));
    }
    for b in log.batches(0).expect("batches") {
        let h = *b.expect("batch").header();
        assert_eq!((h.version, h.appended_at), (2, Some(FIXED_APPENDED_AT)));
    }
    assert_eq!(
        log.offset_for_time(1_780_000_000_000_000 + 41_500)
            .expect("time"),
        Some(42)
    );
    assert!(eventfabric::verify(tmp.path()).expect("verify").is_clean());
}

#[test]
fn a_v1_log_takes_v2_batches_and_reads_back_both() {
    let tmp = copy_fixture("clean");
    let log = Log::open(tmp.path(), config()).expect("open v1 log");
    let before = now_micros();
    let offsets = log
        .append_batch_with_timestamps(&[(5, b"after".to_vec()), (6, b"upgrade".to_vec())])
        .expect("append");
    assert_eq!(offsets, RECORDS..RECORDS + 2);
    log.close().expect("close");
    let log = Log::open(tmp.path(), config()).expect("reopen");
    let all = read_all(&log).expect("read");
    assert_eq!(all.len() as u64, RECORDS + 2);
    assert_eq!(
        all[RECORDS as usize + 1],
        (RECORDS + 1, 6, b"upgrade".to_vec())
    );
    let versions: Vec<(u8, bool)> = log
        .batches(0)
        .expect("batches")
        .map(|b| {
            let h = *b.expect("batch").header();
            (h.version, h.appended_at.is_some_and(|t| t >= before))
        })
        .collect();
    assert_eq!(versions.last(), Some(&(2, true)));
    assert!(
        versions[..versions.len() - 1]
            .iter()
            .all(|v| *v == (1, false))
    );
    drop(log);
    assert!(eventfabric::verify(tmp.path()).expect("verify").is_clean());
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
