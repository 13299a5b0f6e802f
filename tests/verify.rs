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

// ---- The whole data directory: archives, state logs, checkpoint, leftovers.

const TIERED: &str = "audit.trail.v1";
const DAY_US: i64 = 86_400_000_000;
/// 2026-06-10T12:00:00Z.
const T0: i64 = 1_781_092_800_000_000;

/// A data directory whose one partition has three warm archives and a hot
/// log starting where they end; returns the archives' paths.
fn tiered_data_dir(data: &Path) -> Vec<PathBuf> {
    tiered_data_dir_keeping(data, None)
}

/// [`tiered_data_dir`], but the hot segment starting at `keep` is put back
/// after tiering moved it: the state a crash between renaming its archive
/// into place and deleting the hot copy leaves.
fn tiered_data_dir_keeping(data: &Path, keep: Option<u64>) -> Vec<PathBuf> {
    use eventfabric::{ColdAction, Fabric, FabricConfig, FsyncPolicy, TopicConfig};
    let fabric = Fabric::open(data, FabricConfig::default()).expect("open");
    let mut tc = TopicConfig::with_partitions(1);
    tc.fsync = FsyncPolicy::Os;
    tc.segment_bytes = 2048;
    tc.retention_ms = Some(7 * 86_400_000);
    tc.warm_retention_ms = 365 * 86_400_000;
    tc.cold_action = ColdAction::Delete;
    fabric.create_topic(TIERED, tc).expect("create");
    let log = fabric.partition(TIERED, 0).expect("partition");
    for s in 0..3i64 {
        let batch: Vec<(i64, Vec<u8>)> = (0..10)
            .map(|i| (T0 + s * DAY_US + i, value_for((s * 10 + i) as u64, 50)))
            .collect();
        log.append_batch_with_timestamps(&batch).expect("append");
        log.roll().expect("roll");
    }
    log.append_batch_with_timestamps(&[(T0 + 40 * DAY_US, value_for(30, 50))])
        .expect("append");
    let part = data.join(format!("topics/{TIERED}/0"));
    let saved: Vec<(PathBuf, Vec<u8>)> = keep
        .map(|base| {
            ["log", "index"]
                .iter()
                .map(|ext| {
                    let p = part.join(format!("{base:020}.{ext}"));
                    let b = fs::read(&p).expect("read");
                    (p, b)
                })
                .collect()
        })
        .unwrap_or_default();
    fabric
        .maintain_at(jiff::Timestamp::from_microsecond(T0 + 20 * DAY_US).expect("time"))
        .expect("maintain");
    let warm: Vec<PathBuf> = fabric.tier_summary(TIERED).expect("summary")[0]
        .warm
        .iter()
        .map(|a| a.path.clone())
        .collect();
    assert_eq!(warm.len(), 3);
    drop(log);
    fabric.close().expect("close");
    for (p, b) in saved {
        fs::write(p, b).expect("put back");
    }
    warm
}

fn read_tiered(data: &Path) -> Vec<(u64, Vec<u8>)> {
    use eventfabric::{Fabric, FabricConfig, StartFrom};
    let fabric = Fabric::open(data, FabricConfig::default()).expect("open");
    let mut reader = fabric.reader(TIERED, StartFrom::Earliest).expect("reader");
    let mut out = Vec::new();
    while let Some(r) = reader.next_raw() {
        let r = r.expect("read");
        out.push((r.offset, r.value.to_vec()));
    }
    drop(reader);
    fabric.close().expect("close");
    out
}

#[test]
fn repair_lets_the_complete_warm_copy_win_over_a_damaged_hot_duplicate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    tiered_data_dir_keeping(data, Some(20));
    let dup = data.join(format!("topics/{TIERED}/0/00000000000000000020.log"));
    flip_byte(&dup, 100);
    let out = fabric(data, &["verify"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("is also held by the warm tier"),
        "{}",
        stdout(&out)
    );
    let out = fabric(data, &["verify", "--repair"], b"");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with(&*dup.to_string_lossy()) && l.contains("removed hot segment")),
        "{}",
        stdout(&out)
    );
    ok(data, &["verify"], b"");
    // Nothing accepted was lost: every offset reads back, once.
    let all = read_tiered(data);
    assert_eq!(
        all.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        (0..31).collect::<Vec<_>>()
    );
    for (o, v) in all {
        assert_eq!(v, value_for(o, 50));
    }
}

#[test]
fn repair_removes_a_damaged_warm_archive_whose_offsets_the_hot_log_still_holds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let warm = tiered_data_dir(data);
    let half = warm[0].with_file_name("00000000000000000030.archive");
    fs::write(&half, b"\xEFFAR an archive write cut short").expect("write");
    let out = fabric(data, &["verify"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with(&*half.to_string_lossy())
                && l.contains("interrupted tiering")
                && l.ends_with("(no accepted data lost; --repair fixes it)")),
        "{}",
        stdout(&out)
    );
    let out = fabric(data, &["verify", "--repair"], b"");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(!half.exists());
    assert!(
        stdout(&out).contains("removed damaged warm archive"),
        "{}",
        stdout(&out)
    );
    ok(data, &["verify"], b"");
    assert_eq!(read_tiered(data).len(), 31);
}

fn data_report(data: &Path) -> eventfabric::DataDirReport {
    eventfabric::verify_data_dir(data, &eventfabric::FabricConfig::default()).expect("verify")
}

#[test]
fn verify_checks_every_block_of_the_warm_tier_and_repair_never_deletes_its_only_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let warm = tiered_data_dir(data);
    let clean = data_report(data);
    assert!(clean.is_clean(), "{clean:?}");
    assert_eq!((clean.warm_archives, clean.archive_records), (3, 30));
    ok(data, &["verify"], b"");

    // One bit of the second archive's first compressed block (at byte 8).
    flip_byte(&warm[1], 20);
    let report = data_report(data);
    let found: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.severity == eventfabric::Severity::Damage)
        .collect();
    assert_eq!(found.len(), 1, "{report:?}");
    assert_eq!(
        (found[0].path.clone(), found[0].position),
        (warm[1].clone(), 8)
    );
    assert!(
        found[0].problem.contains("only copy"),
        "{}",
        found[0].problem
    );

    let out = fabric(data, &["verify"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let name = warm[1].file_name().expect("name").to_string_lossy();
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.contains(&*name) && l.contains("byte 8:")),
        "{}",
        stdout(&out)
    );
    // The records exist nowhere else: repair says so and leaves the file.
    let out = fabric(data, &["verify", "--repair"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.contains(&*name) && l.contains("left in place")),
        "{}",
        stdout(&out)
    );
    assert!(warm[1].exists());
}

#[test]
fn verify_finds_a_warm_tier_that_ends_before_the_hot_log_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let warm = tiered_data_dir(data);
    fs::remove_file(&warm[2]).expect("remove");
    let report = data_report(data);
    assert!(
        report.findings.iter().any(|f| f.path == warm[1]
            && f.severity == eventfabric::Severity::Damage
            && f.problem.contains("offsets in between are missing")),
        "{report:?}"
    );
    let out = fabric(data, &["verify"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
}

#[test]
fn a_missing_partition_directory_is_a_finding_and_the_rest_is_still_verified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    ok(
        data,
        &["topic", "create", "billing.domain.v1", "--partitions", "3"],
        b"",
    );
    ok(data, &["produce", "billing.domain.v1"], &generate(30, 5));
    let gone = data.join("topics/billing.domain.v1/1");
    fs::remove_dir_all(&gone).expect("remove");
    let out = fabric(data, &["verify"], b"");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with(&*gone.to_string_lossy()) && l.contains("missing")),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("verified 3 partitions"),
        "{}",
        stderr(&out)
    );
    // Repair does not silently recreate it empty.
    let out = fabric(data, &["verify", "--repair"], b"");
    assert!(stdout(&out).contains("not recreated"), "{}", stdout(&out));
    assert!(!gone.exists());
}

#[test]
fn verify_checks_cursor_logs_and_finds_a_cursor_past_the_end_of_its_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let topic = "billing.domain.v1";
    ok(
        data,
        &[
            "topic",
            "create",
            topic,
            "--partitions",
            "1",
            "--fsync",
            "os",
        ],
        b"",
    );
    ok(data, &["produce", topic], &generate(20, 6));
    ok(data, &["consume", topic, "--group", "g", "--commit"], b"");
    ok(data, &["verify"], b"");
    let cursors = data.join(format!("groups/g/{topic}.cursors"));
    assert!(cursors.exists());

    // A torn append at the end of the cursor log: repairable, then repaired.
    let mut bytes = fs::read(&cursors).expect("read");
    let intact = bytes.len() as u64;
    bytes.extend_from_slice(b"EFSR\x10\0\0\0garbage");
    fs::write(&cursors, &bytes).expect("write");
    let report = data_report(data);
    assert!(
        report.findings.iter().any(|f| f.path == cursors
            && f.position == intact
            && f.severity == eventfabric::Severity::Repairable),
        "{report:?}"
    );
    let out = fabric(data, &["verify"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let out = fabric(data, &["verify", "--repair"], b"");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("torn tail"), "{}", stdout(&out));
    assert_eq!(fs::metadata(&cursors).expect("stat").len(), intact);

    // The log loses records below the committed cursor (20).
    let part = data.join(format!("topics/{topic}/0"));
    let log = Log::open(&part, LogConfig::default()).expect("open");
    log.truncate(12).expect("truncate");
    log.close().expect("close");
    let report = data_report(data);
    assert!(
        report.findings.iter().any(|f| f.path == cursors
            && f.severity == eventfabric::Severity::Damage
            && f.problem.contains("at offset 20")
            && f.problem.contains("ends before 12")),
        "{report:?}"
    );
    let out = fabric(data, &["verify"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
}

#[test]
fn verify_reads_a_state_log_in_use_without_its_lock_and_says_so() {
    use eventfabric::{Fabric, FabricConfig, FsyncPolicy};
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let topic = "billing.domain.v1";
    ok(data, &["topic", "create", topic, "--partitions", "1"], b"");
    ok(data, &["produce", topic], &generate(5, 7));
    let fabric_w = Fabric::open(data, FabricConfig::with_fsync(FsyncPolicy::Os)).expect("open");
    let mut member = fabric_w
        .consumer("g", topic, eventfabric::ConsumerConfig::default())
        .expect("consumer");
    member.poll(std::time::Duration::ZERO).expect("poll");
    member.commit().expect("commit");
    let out = fabric(data, &["verify"], b"");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let pid = std::process::id();
    assert!(
        stdout(&out).lines().any(|l| l
            .contains("g/billing.domain.v1.cursors: note: in use by pid")
            && l.contains(&pid.to_string())),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("1 state logs"), "{}", stderr(&out));
    drop(member);
    fabric_w.close().expect("close");
}

#[test]
fn verify_checks_the_checkpoint_and_the_active_index_and_repair_rewrites_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, _) = checkpointed_active_segment(dir.path());
    let index = dir.path().join("00000000000000000000.index");
    flip_byte(&index, 5);
    let report = eventfabric::verify(dir.path()).expect("verify");
    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert_eq!(report.findings[0].path, index);
    assert!(!report.findings[0].data_damaged);
    let repaired = eventfabric::repair(dir.path(), config.clone()).expect("repair");
    assert_eq!(
        repaired.discarded,
        vec![index.clone(), dir.path().join("checkpoint")]
    );
    assert!(repaired.damage_cut.is_none());
    let after = eventfabric::verify(dir.path()).expect("verify");
    assert!(after.is_clean(), "{after:?}");

    let checkpoint = dir.path().join("checkpoint");
    flip_byte(&checkpoint, 20);
    let report = eventfabric::verify(dir.path()).expect("verify");
    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert_eq!(report.findings[0].path, checkpoint);
    eventfabric::repair(dir.path(), config.clone()).expect("repair");
    assert!(eventfabric::verify(dir.path()).expect("verify").is_clean());
    let log = Log::open(dir.path(), config).expect("open");
    assert_eq!(read_all(&log).expect("read").len(), 80);
}

#[test]
fn verify_notes_leftover_files_without_failing_and_repair_removes_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    ok(
        data,
        &["topic", "create", "billing.domain.v1", "--partitions", "1"],
        b"",
    );
    ok(data, &["produce", "billing.domain.v1"], &generate(5, 8));
    let part = data.join("topics/billing.domain.v1/0");
    let tmp = part.join("00000000000000000000.log.tmp");
    let orphan = part.join("00000000000000000999.index");
    fs::write(&tmp, b"half").expect("write");
    fs::write(&orphan, b"").expect("write");
    let out = fabric(data, &["verify"], b"");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    for f in [&tmp, &orphan] {
        assert!(
            stdout(&out)
                .lines()
                .any(|l| l.starts_with(&*f.to_string_lossy()) && l.contains(": note: ")),
            "{}",
            stdout(&out)
        );
    }
    ok(data, &["verify", "--repair"], b"");
    assert!(!tmp.exists() && !orphan.exists());
    let out = ok(data, &["verify"], b"");
    assert!(!out.contains("note:"), "{out}");
}

#[test]
fn verify_finds_a_queue_position_past_the_end_of_its_log() {
    use eventfabric::{Fabric, FabricConfig, FsyncPolicy, QueueConfig};
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let topic = "billing.domain.v1";
    ok(
        data,
        &[
            "topic",
            "create",
            topic,
            "--partitions",
            "1",
            "--fsync",
            "os",
        ],
        b"",
    );
    ok(data, &["produce", topic], &generate(10, 9));
    {
        let fabric = Fabric::open(data, FabricConfig::with_fsync(FsyncPolicy::Os)).expect("open");
        let queue = fabric
            .queue("invoicing", topic, QueueConfig::default())
            .expect("queue");
        let mut acked = 0;
        loop {
            let messages = queue.try_fetch(10).expect("fetch");
            if messages.is_empty() {
                break;
            }
            acked += messages.len();
            queue.ack_all(&messages).expect("ack");
        }
        assert!(acked > 4, "{acked}");
        queue.flush().expect("flush");
        drop(queue);
        fabric.close().expect("close");
    }
    ok(data, &["verify"], b"");
    let part = data.join(format!("topics/{topic}/0"));
    let log = Log::open(&part, LogConfig::default()).expect("open");
    log.truncate(4).expect("truncate");
    log.close().expect("close");
    let out = fabric(data, &["verify"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let state = data.join("queues/invoicing/state");
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with(&*state.to_string_lossy())
                && l.contains("queue \"invoicing\"")
                && l.contains("at offset 10")
                && l.contains("ends before 4")),
        "{}",
        stdout(&out)
    );
}
