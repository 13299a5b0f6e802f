//! The `fabric` command line, end to end with the built binary: seed events
//! round-trip, bad lines are rejected with line numbers while good ones are
//! kept, reads start from a time, verify finds injected damage and repair
//! removes it, a second writer is refused with the holder's pid, and
//! `consume --follow` sees another process's new events.
mod common;

use common::{fabric, fabric_ok as ok, json_lines as lines};

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eventfabric::{Envelope, Fabric, FabricConfig, FsyncPolicy};
use serde_json::Value;

const SEEDS: [(&str, &str); 3] = [
    ("billing.invoice.issued", "billing.domain.v1"),
    ("auth.user.login_succeeded", "auth.audit.v1"),
    ("workflow.instance.completed", "workflow.events.v1"),
];

fn seed_value(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/seed-events/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn strip_position(mut v: Value) -> Value {
    let m = v.as_object_mut().unwrap();
    assert!(m.remove("_partition").unwrap().is_u64());
    assert!(m.remove("_offset").unwrap().is_u64());
    v
}

fn generate(count: u64, seed: u64) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_fabric"))
        .args([
            "gen",
            "mixed",
            "--count",
            &count.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn seed_events_round_trip_through_produce_and_consume() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    for (seed, topic) in SEEDS {
        ok(data, &["topic", "create", topic, "--partitions", "3"], b"");
        let value = seed_value(seed);
        let line = format!("{}\n", serde_json::to_string(&value).unwrap());
        let acks = lines(&ok(data, &["produce", topic, "--acks"], line.as_bytes()));
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0]["line"], 1);
        assert_eq!(acks[0]["event_id"], value["event_id"]);
        let consumed = lines(&ok(data, &["consume", topic], b""));
        assert_eq!(consumed.len(), 1);
        assert_eq!(consumed[0]["_partition"], acks[0]["partition"]);
        assert_eq!(consumed[0]["_offset"], acks[0]["offset"]);
        assert_eq!(strip_position(consumed[0].clone()), value, "{seed}");
    }
    let list: Vec<Value> =
        serde_json::from_str(&ok(data, &["topic", "list", "--json"], b"")).unwrap();
    assert_eq!(list.len(), 3);
    let inspect: Value = serde_json::from_str(&ok(data, &["inspect", "--json"], b"")).unwrap();
    let records: u64 = inspect["topics"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["partitions"].as_array().unwrap())
        .map(|p| p["records"].as_u64().unwrap())
        .sum();
    assert_eq!(records, 3);
    let refused = fabric(data, &["topic", "delete", "auth.audit.v1"], b"");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    ok(data, &["topic", "delete", "auth.audit.v1", "--yes"], b"");
    let missing = fabric(data, &["produce", "auth.audit.v1"], b"");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));
}

#[test]
fn bad_lines_are_rejected_with_line_numbers_and_good_lines_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    ok(
        data,
        &["topic", "create", "billing.domain.v1", "--partitions", "2"],
        b"",
    );
    let good = generate(4, 5);
    let good: Vec<&[u8]> = good
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mut input = Vec::new();
    input.extend_from_slice(good[0]);
    input.extend_from_slice(
        b"\n{\"event_type\":\"billing\",\"tenant_id\":null,\"schema_version\":\"1\"}\n",
    );
    input.extend_from_slice(good[1]);
    input.extend_from_slice(b"\nnot json at all\n");
    input.extend_from_slice(good[2]);
    input.extend_from_slice(b"\n\n");
    input.extend_from_slice(good[3]);
    input.push(b'\n');
    let out = fabric(data, &["produce", "billing.domain.v1", "--acks"], &input);
    assert!(
        !out.status.success(),
        "rejections make the exit status non-zero"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line2 = stderr
        .lines()
        .find(|l| l.contains("line 2 "))
        .expect(&stderr);
    for field in [
        "event_type",
        "tenant_id",
        "schema_version",
        "occurred_at",
        "payload",
    ] {
        assert!(line2.contains(field), "{field} missing from {line2}");
    }
    assert!(stderr.contains("line 4 "), "{stderr}");
    assert!(
        stderr.contains("4 events") && stderr.contains("2 rejected"),
        "{stderr}"
    );
    let acks = lines(&String::from_utf8(out.stdout).unwrap());
    let acked: Vec<u64> = acks.iter().map(|a| a["line"].as_u64().unwrap()).collect();
    assert_eq!(acked, [1, 3, 5, 7]);
    let consumed = lines(&ok(data, &["consume", "billing.domain.v1"], b""));
    assert_eq!(consumed.len(), 4);
    for g in &good {
        let expected: Value = serde_json::from_slice(g).unwrap();
        assert!(
            consumed
                .iter()
                .any(|c| strip_position(c.clone()) == expected)
        );
    }
}

#[test]
fn consume_from_a_time_starts_at_the_first_event_emitted_then() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    ok(
        data,
        &["topic", "create", "auth.audit.v1", "--partitions", "1"],
        b"",
    );
    let input = generate(100, 11);
    ok(data, &["produce", "auth.audit.v1"], &input);
    let events: Vec<Envelope> = input
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| Envelope::from_json(l).unwrap())
        .collect();
    let mut times: Vec<jiff::Timestamp> = events.iter().map(|e| e.emitted_at).collect();
    times.sort();
    let cut = times[60];
    let consumed = lines(&ok(
        data,
        &["consume", "auth.audit.v1", "--from", &cut.to_string()],
        b"",
    ));
    let first_index = events.iter().position(|e| e.emitted_at >= cut).unwrap();
    assert_eq!(consumed.len(), events.len() - first_index);
    assert_eq!(consumed[0]["_offset"], first_index as u64);
    let limited = lines(&ok(
        data,
        &["consume", "auth.audit.v1", "--from", "latest"],
        b"",
    ));
    assert!(limited.is_empty());
    let from_offset = lines(&ok(
        data,
        &[
            "consume",
            "auth.audit.v1",
            "--from",
            "90",
            "--partition",
            "0",
            "--max",
            "5",
        ],
        b"",
    ));
    let offsets: Vec<u64> = from_offset
        .iter()
        .map(|v| v["_offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [90, 91, 92, 93, 94]);
    let bad = fabric(
        data,
        &["consume", "auth.audit.v1", "--from", "yesterday"],
        b"",
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

#[test]
fn verify_finds_injected_damage_and_repair_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    ok(
        data,
        &[
            "topic",
            "create",
            "billing.domain.v1",
            "--partitions",
            "1",
            "--segment-bytes",
            "4096",
            "--max-batch-bytes",
            "2048",
            "--fsync",
            "os",
        ],
        b"",
    );
    ok(data, &["produce", "billing.domain.v1"], &generate(200, 3));
    let out = fabric(data, &["verify"], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Flip a byte inside the batch data of a sealed segment.
    let part = data.join("topics/billing.domain.v1/0");
    let segments = segment_files(&part);
    assert!(segments.len() > 4, "{segments:?}");
    let victim = &segments[2];
    let mut bytes = fs::read(victim).unwrap();
    bytes[200] ^= 0x5a;
    fs::write(victim, &bytes).unwrap();
    let out = fabric(data, &["verify"], b"");
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stdout);
    let name = victim.file_name().unwrap().to_string_lossy();
    assert!(
        report.contains(&*name) && report.contains("byte "),
        "{report}"
    );

    let out = fabric(data, &["verify", "--repair"], b"");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("truncated at offset") && report.contains("removing"),
        "{report}"
    );
    ok(data, &["verify"], b"");
    let kept = lines(&ok(data, &["consume", "billing.domain.v1"], b"")).len();
    assert!(kept > 0 && kept < 200, "{kept}");

    // Tear the tail: cut the active segment in the middle of its last batch.
    ok(data, &["produce", "billing.domain.v1"], &generate(3, 99));
    let segments = segment_files(&part);
    let active = segments.last().unwrap();
    let inspect: Value = serde_json::from_str(&ok(data, &["inspect", "--json"], b"")).unwrap();
    let segs = inspect["topics"][0]["partitions"][0]["segments"]
        .as_array()
        .unwrap()
        .clone();
    let used = segs.last().unwrap()["size_bytes"].as_u64().unwrap();
    let file = fs::OpenOptions::new().write(true).open(active).unwrap();
    file.set_len(used - 10).unwrap();
    drop(file);
    let out = fabric(data, &["verify"], b"");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = fabric(data, &["verify", "--repair"], b"");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("removed") && report.contains("bytes"),
        "{report}"
    );
    // The three events went in as one batch; the torn batch is removed whole.
    assert_eq!(
        lines(&ok(data, &["consume", "billing.domain.v1"], b"")).len(),
        kept
    );
}

/// Creates `topic` (2 partitions) through the CLI, then holds the data
/// directory as this process's writer, with `n` generated events ready.
fn writer_with_events(
    data: &Path,
    topic: &str,
    n: u64,
    seed: u64,
) -> (Fabric, eventfabric::Producer, Vec<Envelope>) {
    ok(data, &["topic", "create", topic, "--partitions", "2"], b"");
    let writer = Fabric::open(data, FabricConfig::with_fsync(FsyncPolicy::Os)).unwrap();
    let producer = writer.producer(topic, "test").unwrap();
    let events = generate(n, seed)
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| Envelope::from_json(l).unwrap())
        .collect();
    (writer, producer, events)
}

#[test]
fn a_second_writer_is_refused_and_readers_work_alongside_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (_writer, mut producer, events) = writer_with_events(data, "billing.domain.v1", 10, 1);
    producer.publish_batch(&events).unwrap();

    let out = fabric(data, &["produce", "billing.domain.v1"], &generate(1, 2));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("locked by pid {}", std::process::id())),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one sentence: {stderr}");
    for cmd in [
        &["topic", "create", "x.v1", "--partitions", "1"][..],
        &["verify", "--repair"],
    ] {
        let out = fabric(data, cmd, b"");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("locked by pid"),
            "{cmd:?}"
        );
    }
    // Read-only commands work while this process holds the directory.
    assert_eq!(
        lines(&ok(data, &["consume", "billing.domain.v1"], b"")).len(),
        10
    );
    assert!(ok(data, &["topic", "list"], b"").contains("billing.domain.v1"));
    assert!(ok(data, &["inspect", "billing.domain.v1"], b"").contains("partition 1"));
    ok(data, &["verify"], b"");
}

#[test]
fn consume_follow_sees_events_another_process_appends() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (_writer, mut producer, events) = writer_with_events(data, "workflow.events.v1", 30, 4);
    producer.publish_batch(&events[..10]).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_fabric"))
        .arg("--data")
        .arg(data)
        .args(["consume", "workflow.events.v1", "--follow", "--max", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A watchdog turns a hang into a failure, and the guard makes sure the
    // follower never outlives this test, however it ends.
    struct KillOnDrop(u32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-9", &self.0.to_string()])
                .status();
        }
    }
    let _guard = KillOnDrop(child.id());
    let pid = child.id().to_string();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(30));
        let _ = Command::new("kill").args(["-9", &pid]).status();
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    let mut line = String::new();
    for _ in 0..10 {
        line.clear();
        out.read_line(&mut line).unwrap();
        seen.push(strip_position(serde_json::from_str(&line).unwrap()));
    }
    // The follower is caught up; now this process appends more, in two steps.
    producer.publish_batch(&events[10..20]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    producer.publish_batch(&events[20..]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < 30 && Instant::now() < deadline {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push(strip_position(serde_json::from_str(&line).unwrap()));
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    assert_eq!(seen.len(), 30);
    for e in &events {
        assert!(seen.contains(&e.to_json_value()));
    }
}

#[test]
fn gen_is_deterministic_and_bench_reports_json() {
    assert_eq!(generate(20, 8), generate(20, 8));
    assert_ne!(generate(20, 8), generate(20, 9));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let out = ok(
        data,
        &[
            "bench",
            "produce",
            "--records",
            "2000",
            "--size",
            "300",
            "--batch",
            "100",
            "--fsync",
            "os",
            "--threads",
            "2",
            "--partitions",
            "2",
            "--json",
        ],
        b"",
    );
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["records"], 2000);
    for k in [
        "seconds",
        "records_per_sec",
        "mb_per_sec",
        "p50_us",
        "p99_us",
        "p999_us",
    ] {
        assert!(r[k].is_number(), "{k} in {out}");
    }
    let out = ok(data, &["bench", "consume", "--json"], b"");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["records"], 2000);
    let unknown = fabric(data, &["gen", "nope.nope.nope", "--count", "1"], b"");
    assert!(!unknown.status.success());
}
