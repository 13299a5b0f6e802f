//! `verify` and `verify --repair`, through the library and the `fabric`
//! binary: repair cuts damage wherever it is (the active segment before its
//! checkpoint, a sealed segment without its index) and says exactly what it
//! removed; verify checks every file of a data directory (archives, state
//! logs, checkpoint, active index, leftovers) and never aborts on a finding.
mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::{fabric, read_all, tiny_config, value_for};
use eventfabric::{Log, LogConfig};

fn flip_byte(path: &Path, at: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).expect("read");
    b[0] ^= 0x40;
    f.write_all_at(&b, at).expect("write");
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(data: &Path, args: &[&str], stdin: &[u8]) -> String {
    let out = fabric(data, args, stdin);
    assert!(
        out.status.success(),
        "fabric {args:?} failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

fn generate(count: u64, seed: u64) -> Vec<u8> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fabric"))
        .args([
            "gen",
            "mixed",
            "--count",
            &count.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .output()
        .expect("gen");
    assert!(out.status.success());
    out.stdout
}

fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// One active segment (no rolls) holding 40 two-record batches, closed so a
/// checkpoint vouches for all of it.
fn checkpointed_active_segment(dir: &Path) -> (LogConfig, Vec<u64>) {
    let mut config = tiny_config();
    config.segment_bytes = 1 << 20;
    let log = Log::open(dir, config.clone()).expect("open");
    let mut positions = Vec::new();
    for i in 0..40u64 {
        positions.push(log.segments().last().expect("segment").size_bytes);
        log.append_batch(&[value_for(i * 2, 40), value_for(i * 2 + 1, 40)])
            .expect("append");
    }
    log.close().expect("close");
    assert!(dir.join("checkpoint").exists());
    (config, positions)
}

#[test]
fn repair_cuts_the_active_segment_at_damage_its_checkpoint_proves_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, positions) = checkpointed_active_segment(dir.path());
    let active = dir.path().join("00000000000000000000.log");
    // Damage the records of batch 10 (offsets 20 and 21).
    flip_byte(&active, positions[10] + 70);
    let report = eventfabric::verify(dir.path()).expect("verify");
    assert_eq!(report.findings.len(), 1, "{report:?}");
    let f = &report.findings[0];
    assert_eq!(
        (f.path.clone(), f.position),
        (active.clone(), positions[10])
    );
    assert!(f.data_damaged);
    assert!(
        !f.problem.contains("torn tail"),
        "the checkpoint proves these bytes were synced: {}",
        f.problem
    );

    let repaired = eventfabric::repair(dir.path(), config.clone()).expect("repair");
    let cut = repaired.damage_cut.clone().expect("a cut is reported");
    assert_eq!(cut.path, active);
    assert_eq!(cut.position, positions[10]);
    assert_eq!(cut.offsets_removed, 20..80);
    assert!(cut.removed_segments.is_empty());
    assert_eq!(repaired.truncated_from, Some((20, 60)));

    assert!(
        eventfabric::verify(dir.path()).expect("verify").is_clean(),
        "{:?}",
        eventfabric::verify(dir.path())
    );
    let log = Log::open(dir.path(), config).expect("open after repair");
    let kept = read_all(&log).expect("read");
    assert_eq!(kept.len(), 20);
    for (o, _, v) in &kept {
        assert_eq!(v, &value_for(*o, 40));
    }
    assert_eq!(log.append(b"after").expect("append"), 20);
}

#[test]
fn repair_cuts_a_damaged_sealed_segment_whose_index_is_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = tiny_config();
    let log = Log::open(dir.path(), config.clone()).expect("open");
    for i in 0..60u64 {
        log.append_batch(&[value_for(i * 2, 40), value_for(i * 2 + 1, 40)])
            .expect("append");
    }
    let segments = log.segments();
    log.close().expect("close");
    assert!(segments.len() > 4, "{segments:?}");
    let victim = &segments[2];
    // Damage the second batch of segment 2 and lose its index too.
    let second_batch = {
        let bytes = fs::read(&victim.path).expect("read");
        u64::from(u32::from_le_bytes(bytes[8..12].try_into().expect("4")))
    };
    flip_byte(&victim.path, second_batch + 70);
    fs::remove_file(victim.path.with_extension("index")).expect("remove index");
    let first_removed = victim.base_offset + 2;

    let report = eventfabric::verify(dir.path()).expect("verify");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.path == victim.path && f.position == second_batch && f.data_damaged),
        "{report:?}"
    );

    let repaired = eventfabric::repair(dir.path(), config.clone()).expect("repair");
    let cut = repaired.damage_cut.clone().expect("a cut is reported");
    assert_eq!(cut.path, victim.path);
    assert_eq!(cut.position, second_batch);
    assert_eq!(cut.offsets_removed, first_removed..120);
    assert_eq!(
        cut.removed_segments,
        segments[3..]
            .iter()
            .map(|s| s.path.clone())
            .collect::<Vec<_>>()
    );
    assert!(eventfabric::verify(dir.path()).expect("verify").is_clean());
    let log = Log::open(dir.path(), config).expect("open after repair");
    assert!(!log.is_poisoned());
    let kept = read_all(&log).expect("read");
    assert_eq!(kept.len() as u64, first_removed);
    assert_eq!(log.append(b"after").expect("append"), first_removed);
}

#[test]
fn a_read_only_view_reads_a_damaged_sealed_segment_up_to_the_damage_without_its_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = tiny_config();
    let log = Log::open(dir.path(), config).expect("open");
    for i in 0..30u64 {
        log.append_batch(&[value_for(i * 2, 40), value_for(i * 2 + 1, 40)])
            .expect("append");
    }
    let segments = log.segments();
    log.close().expect("close");
    let victim = &segments[1];
    let second_batch = {
        let bytes = fs::read(&victim.path).expect("read");
        u64::from(u32::from_le_bytes(bytes[8..12].try_into().expect("4")))
    };
    flip_byte(&victim.path, second_batch + 70);
    fs::remove_file(victim.path.with_extension("index")).expect("remove index");
    let ro = Log::open_read_only(dir.path()).expect("open read-only");
    let first = ro
        .read(victim.base_offset, eventfabric::ReadLimit::records(1))
        .expect("records before the damage stay readable");
    assert_eq!(first[0].value, value_for(victim.base_offset, 40));
    match ro.read(victim.base_offset + 2, eventfabric::ReadLimit::records(1)) {
        Err(eventfabric::Error::Corrupted { path, position, .. }) => {
            assert_eq!((path, position), (victim.path.clone(), second_batch));
        }
        other => panic!("expected corruption at the damaged batch, got {other:?}"),
    }
}

fn create_topic(data: &Path, topic: &str, extra: &[&str]) {
    let mut args = vec![
        "topic",
        "create",
        topic,
        "--partitions",
        "1",
        "--fsync",
        "os",
    ];
    args.extend_from_slice(extra);
    ok(data, &args, b"");
}

#[test]
fn cli_repair_cuts_damage_in_the_active_segment_before_its_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    create_topic(data, "billing.domain.v1", &["--max-batch-bytes", "2048"]);
    ok(data, &["produce", "billing.domain.v1"], &generate(200, 3));
    ok(data, &["verify"], b"");
    let part = data.join("topics/billing.domain.v1/0");
    let active = files_with_extension(&part, "log").pop().expect("segment");
    assert!(part.join("checkpoint").exists());
    flip_byte(&active, 200);

    let out = fabric(data, &["verify"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("batch checksum mismatch"),
        "{}",
        stdout(&out)
    );

    let out = fabric(data, &["verify", "--repair"], b"");
    let report = stdout(&out);
    assert!(out.status.success(), "{report}{}", stderr(&out));
    assert!(!report.contains("nothing removed"), "{report}");
    let name = active.file_name().expect("name").to_string_lossy();
    assert!(
        report.lines().any(|l| l.contains(&*name)
            && l.contains("at byte 0")
            && l.contains("removed offsets 0..")),
        "{report}"
    );
    ok(data, &["verify"], b"");
    let kept = ok(data, &["consume", "billing.domain.v1"], b"");
    assert_eq!(kept.lines().count(), 0, "the first batch was damaged");
    ok(data, &["produce", "billing.domain.v1"], &generate(5, 4));
    ok(data, &["verify"], b"");
}

#[test]
fn cli_repair_cuts_a_damaged_sealed_segment_whose_index_is_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    create_topic(
        data,
        "billing.domain.v1",
        &["--segment-bytes", "4096", "--max-batch-bytes", "2048"],
    );
    ok(data, &["produce", "billing.domain.v1"], &generate(200, 3));
    let part = data.join("topics/billing.domain.v1/0");
    let segments = files_with_extension(&part, "log");
    assert!(segments.len() > 4, "{segments:?}");
    let victim = &segments[2];
    flip_byte(victim, 200);
    fs::remove_file(victim.with_extension("index")).expect("remove index");

    let out = fabric(data, &["verify"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let out = fabric(data, &["verify", "--repair"], b"");
    let report = stdout(&out);
    assert!(out.status.success(), "{report}{}", stderr(&out));
    let name = victim.file_name().expect("name").to_string_lossy();
    assert!(
        report.contains("truncated at offset") && report.contains(&*name),
        "{report}"
    );
    ok(data, &["verify"], b"");
    ok(data, &["produce", "billing.domain.v1"], &generate(5, 4));
    ok(data, &["verify"], b"");
}
