//! Snapshot export/import: a round trip keeps every record bit for bit (bytes,
//! order, timestamps, offsets); partition subsets and offset/time ranges
//! export exactly what they name; importing into an existing topic skips
//! the ids it holds; a truncated file, a flipped byte or a wrong version is
//! refused naming the file and byte, with nothing imported.
use std::collections::BTreeSet;
use std::path::Path;

use eventfabric::fixtures::{FixtureGenerator, FixtureKind};
use eventfabric::testing::snapshot::decode as decode_snapshot;
use eventfabric::{Bound, ExportOptions, export_snapshot, import_snapshot, inspect_snapshot};
use eventfabric::{Envelope, Error, Fabric, FabricConfig, FsyncPolicy, TopicConfig};

const TOPIC: &str = "billing.snap.v1";

fn os() -> FabricConfig {
    FabricConfig::with_fsync(FsyncPolicy::Os)
}

fn config(partitions: u32) -> TopicConfig {
    let mut c = TopicConfig::with_partitions(partitions);
    c.fsync = FsyncPolicy::Os;
    c.segment_bytes = 64 << 10;
    c
}

/// Seed-like events of every kind (so several schema versions).
fn events(n: usize, seed: u64) -> Vec<Envelope> {
    let mut g = FixtureGenerator::new(seed, 50);
    let kinds = FixtureKind::all();
    (0..n).map(|i| g.next(kinds[i % kinds.len()])).collect()
}

fn filled(dir: &Path, n: usize) -> (Fabric, Vec<Envelope>) {
    let fabric = Fabric::open(dir, os()).unwrap();
    fabric.create_topic(TOPIC, config(3)).unwrap();
    let evs = events(n, 11);
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    for chunk in evs.chunks(100) {
        producer.publish_batch(chunk).unwrap();
    }
    (fabric, evs)
}

/// Every record of a topic partition: (offset, timestamp, raw bytes).
fn raw(fabric: &Fabric, topic: &str, partition: u32) -> Vec<(u64, i64, Vec<u8>)> {
    let log = fabric.partition(topic, partition).unwrap();
    log.iter(log.earliest_offset())
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (r.offset, r.timestamp, r.value.to_vec())
        })
        .collect()
}

fn counts(fabric: &Fabric, topic: &str) -> Vec<(u64, u64)> {
    fabric.topic_info(topic).unwrap().offsets
}

#[test]
fn a_round_trip_keeps_every_record_bit_for_bit() {
    let src = tempfile::tempdir().unwrap();
    let (fabric, _) = filled(src.path(), 1500);
    let file = src.path().join("billing.snap");
    let summary = export_snapshot(&fabric, TOPIC, &file, &ExportOptions::default()).unwrap();
    assert_eq!(summary.records, 1500);
    let expected_versions: BTreeSet<String> = FixtureKind::all()
        .iter()
        .map(|k| k.schema_version().to_string())
        .collect();
    assert_eq!(
        summary
            .schema_versions
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>(),
        expected_versions
    );
    assert!(!src.path().join("billing.snap.tmp").exists());
    let info = inspect_snapshot(&file).unwrap();
    assert_eq!(info.topic, TOPIC);
    assert_eq!(info.config, fabric.topic_info(TOPIC).unwrap().config);
    assert_eq!(info.records, 1500);

    let dst = tempfile::tempdir().unwrap();
    let target = Fabric::open(dst.path(), os()).unwrap();
    let imported = import_snapshot(&target, &file, None).unwrap();
    assert!(imported.created);
    assert_eq!((imported.appended, imported.duplicates_skipped), (1500, 0));
    assert_eq!(target.topic_info(TOPIC).unwrap().config, info.config);
    for p in 0..3 {
        assert_eq!(
            raw(&target, TOPIC, p),
            raw(&fabric, TOPIC, p),
            "partition {p}"
        );
    }
    // Renamed, into the same data directory.
    let again = import_snapshot(&fabric, &file, Some("billing.copy.v1")).unwrap();
    assert_eq!(again.appended, 1500);
    for p in 0..3 {
        assert_eq!(raw(&fabric, "billing.copy.v1", p), raw(&fabric, TOPIC, p));
    }
}

#[test]
fn partition_subsets_and_ranges_export_exactly_what_they_name() {
    let src = tempfile::tempdir().unwrap();
    let (fabric, _) = filled(src.path(), 900);
    let file = src.path().join("part.snap");
    let mut options = ExportOptions::default();
    options.partitions = Some(vec![2, 0]);
    options.from = Bound::Offset(10);
    options.to = Bound::Offset(50);
    export_snapshot(&fabric, TOPIC, &file, &options).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let (info, records) = decode_snapshot(&bytes).unwrap();
    assert_eq!(info.partitions, vec![0, 2]);
    for p in [0u32, 2] {
        let got: Vec<_> = records
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| (r.offset, r.timestamp, r.value.clone()))
            .collect();
        let want: Vec<_> = raw(&fabric, TOPIC, p)
            .into_iter()
            .filter(|r| (10..50).contains(&r.0))
            .collect();
        assert_eq!(got, want, "partition {p}");
    }
    assert!(records.iter().all(|r| r.partition != 1));

    // A time range: [t1, t2) on record timestamps.
    let all: Vec<i64> = (0..3)
        .flat_map(|p| raw(&fabric, TOPIC, p))
        .map(|r| r.1)
        .collect();
    let mut sorted = all.clone();
    sorted.sort_unstable();
    let (t1, t2) = (sorted[200], sorted[600]);
    let mut options = ExportOptions::default();
    options.from = Bound::Time(t1);
    options.to = Bound::Time(t2);
    export_snapshot(&fabric, TOPIC, &file, &options).unwrap();
    let (_, records) = decode_snapshot(&std::fs::read(&file).unwrap()).unwrap();
    let want = all.iter().filter(|&&t| t >= t1 && t < t2).count();
    assert_eq!(records.len(), want);
    assert!(
        records
            .iter()
            .all(|r| r.timestamp >= t1 && r.timestamp < t2)
    );

    // A partition the topic lacks is refused.
    let mut options = ExportOptions::default();
    options.partitions = Some(vec![3]);
    assert!(export_snapshot(&fabric, TOPIC, &file, &options).is_err());
}

#[test]
fn importing_into_an_existing_topic_skips_the_ids_it_holds() {
    let src = tempfile::tempdir().unwrap();
    let (fabric, evs) = filled(src.path(), 600);
    let file = src.path().join("all.snap");
    export_snapshot(&fabric, TOPIC, &file, &ExportOptions::default()).unwrap();

    // The same topic: everything is already there.
    let before = counts(&fabric, TOPIC);
    let s = import_snapshot(&fabric, &file, None).unwrap();
    assert_eq!(
        (s.appended, s.duplicates_skipped, s.created),
        (0, 600, false)
    );
    assert_eq!(counts(&fabric, TOPIC), before);

    // A topic that holds every other event: only the rest is appended, and
    // a second import appends nothing.
    let dst = tempfile::tempdir().unwrap();
    let target = Fabric::open(dst.path(), os()).unwrap();
    target.create_topic(TOPIC, config(3)).unwrap();
    let mut producer = target.producer(TOPIC, "test").unwrap();
    let half: Vec<Envelope> = evs.iter().step_by(2).cloned().collect();
    producer.publish_batch(&half).unwrap();
    let s = import_snapshot(&target, &file, None).unwrap();
    assert_eq!((s.appended, s.duplicates_skipped), (300, 300));
    let s = import_snapshot(&target, &file, None).unwrap();
    assert_eq!((s.appended, s.duplicates_skipped), (0, 600));
    let mut ids = BTreeSet::new();
    for r in target
        .reader(TOPIC, eventfabric::StartFrom::Earliest)
        .unwrap()
    {
        assert!(
            ids.insert(r.unwrap().envelope.event_id),
            "an id imported twice"
        );
    }
    assert_eq!(ids.len(), 600);

    // Fewer partitions than the snapshot needs: refused, nothing imported.
    target.create_topic("billing.small.v1", config(2)).unwrap();
    let err = import_snapshot(&target, &file, Some("billing.small.v1")).unwrap_err();
    assert!(err.to_string().contains("partition 2"), "{err}");
    assert_eq!(counts(&target, "billing.small.v1"), vec![(0, 0), (0, 0)]);
}

#[test]
fn an_import_cut_short_completes_when_run_again() {
    let src = tempfile::tempdir().unwrap();
    let (fabric, _) = filled(src.path(), 700);
    let file = src.path().join("all.snap");
    export_snapshot(&fabric, TOPIC, &file, &ExportOptions::default()).unwrap();
    let dst = tempfile::tempdir().unwrap();
    let target = Fabric::open(dst.path(), os()).unwrap();
    import_snapshot(&target, &file, None).unwrap();
    // What a crash in the middle leaves: a prefix of each partition.
    for p in 0..3 {
        let log = target.partition(TOPIC, p).unwrap();
        log.truncate(log.next_offset() / 3 * (p as u64)).unwrap();
    }
    let kept: u64 = counts(&target, TOPIC).iter().map(|(e, n)| n - e).sum();
    let s = import_snapshot(&target, &file, None).unwrap();
    assert_eq!((s.appended, s.duplicates_skipped), (700 - kept, kept));
    for p in 0..3 {
        assert_eq!(
            raw(&target, TOPIC, p),
            raw(&fabric, TOPIC, p),
            "partition {p}"
        );
    }
}

fn assert_refused(file: &Path, bytes: &[u8], what: &str) {
    std::fs::write(file, bytes).unwrap();
    let dst = tempfile::tempdir().unwrap();
    let target = Fabric::open(dst.path(), os()).unwrap();
    let Err(err) = import_snapshot(&target, file, None) else {
        panic!("{what}: imported");
    };
    match &err {
        Error::Corrupted { path, .. } => assert_eq!(path, file, "{what}: {err}"),
        other => panic!("{what}: not a corruption error: {other}"),
    }
    assert!(err.to_string().contains("nothing was imported"), "{err}");
    assert!(target.topics().is_empty(), "{what}: a topic was created");
    assert!(
        decode_snapshot(bytes).is_err(),
        "{what}: decode accepted it"
    );
}

#[test]
fn truncated_flipped_or_wrong_version_files_are_refused_and_import_nothing() {
    let src = tempfile::tempdir().unwrap();
    let (fabric, _) = filled(src.path(), 120);
    let good = src.path().join("good.snap");
    export_snapshot(&fabric, TOPIC, &good, &ExportOptions::default()).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    assert!(decode_snapshot(&bytes).is_ok());
    let bad = src.path().join("bad.snap");

    // Truncated: at every length near both ends, and a spread in between.
    let len = bytes.len();
    let cuts: BTreeSet<usize> = (0..64)
        .chain(len - 64..len)
        .chain((0..len).step_by(997))
        .collect();
    for cut in cuts {
        assert_refused(&bad, &bytes[..cut], &format!("truncated to {cut}"));
    }
    // Flipped bytes: everywhere in the first 2 KiB and the last KiB, and a spread.
    let flips: BTreeSet<usize> = (0..512.min(len))
        .chain(len - 1024..len)
        .chain((0..len).step_by(331))
        .collect();
    for at in flips {
        let mut b = bytes.clone();
        b[at] ^= 0x20;
        assert_refused(&bad, &b, &format!("byte {at} flipped"));
    }
    // Extra bytes after the trailer.
    let mut b = bytes.clone();
    b.push(0);
    assert_refused(&bad, &b, "trailing byte");
    // A future version with a valid header checksum.
    let mut b = bytes.clone();
    b[8..12].copy_from_slice(&2u32.to_le_bytes());
    let sum = crc32fast::hash(&b[..28]);
    b[28..32].copy_from_slice(&sum.to_le_bytes());
    std::fs::write(&bad, &b).unwrap();
    let err = inspect_snapshot(&bad).unwrap_err().to_string();
    assert!(
        err.contains("unsupported snapshot version 2") && err.contains("bad.snap"),
        "{err}"
    );
    assert_refused(&bad, &b, "version 2");
    // The error names the byte: a flip inside the first block.
    let mut b = bytes.clone();
    let at = len / 2;
    b[at] ^= 1;
    std::fs::write(&bad, &b).unwrap();
    match inspect_snapshot(&bad).unwrap_err() {
        Error::Corrupted { position, .. } => assert!(position <= at as u64, "{position} > {at}"),
        other => panic!("{other}"),
    }
}

#[test]
fn cli_export_import_and_produce_acks_report_duplicates() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let bin = env!("CARGO_BIN_EXE_fabric");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(bin)
            .arg("--data")
            .arg(&data)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (ok, _, err) = run(
        &[
            "topic",
            "create",
            TOPIC,
            "--partitions",
            "2",
            "--dedup-window-ms",
            "600000",
            "--dedup-max-entries",
            "1000",
            "--system-events-per-sec",
            "1",
        ],
        None,
    );
    assert!(ok, "{err}");
    let info = Fabric::open_read_only(&data)
        .unwrap()
        .topic_info(TOPIC)
        .unwrap();
    assert_eq!(info.config.dedup_window_ms, 600_000);
    assert_eq!(info.config.dedup_max_entries, 1000);
    assert_eq!(info.config.system_events_per_sec, Some(1));

    let mut e = events(1, 3).remove(0);
    e.emitted_at = jiff::Timestamp::now();
    let line = String::from_utf8(e.to_json()).unwrap();
    let mut sys = e.clone();
    sys.event_type = "system.health.checked".into();
    sys.tenant_id = None;
    let sys_lines: String = (0..3)
        .map(|_| {
            sys.event_id = Envelope::new_event_id();
            format!("{}\n", String::from_utf8(sys.to_json()).unwrap())
        })
        .collect();
    let input = format!("{line}\n{line}\n{sys_lines}");
    let (ok, out, err) = run(&["produce", TOPIC, "--acks"], Some(&input));
    assert!(ok, "{err}");
    let acks: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(acks.len(), 5, "{out}");
    assert!(acks[0].get("duplicate_of").is_none());
    assert_eq!(
        acks[1]["duplicate_of"],
        serde_json::json!({"partition": acks[0]["partition"], "offset": acks[0]["offset"]})
    );
    assert_eq!(
        (acks[1]["line"].as_u64(), acks[1]["offset"].clone()),
        (Some(2), acks[0]["offset"].clone())
    );
    // A burst of one token: the first system event passes, the rest are dropped.
    assert!(acks[2].get("offset").is_some() && acks[2].get("dropped").is_none());
    for ack in &acks[3..] {
        assert_eq!(ack["dropped"], "sampled", "{ack}");
        assert!(ack.get("offset").is_none());
    }

    let snap = dir.path().join("out.snap");
    let (ok, out, err) = run(&["export", TOPIC, "--out", snap.to_str().unwrap()], None);
    assert!(ok, "{err}");
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(summary["records"], 2);
    let (ok, out, err) = run(
        &[
            "import",
            snap.to_str().unwrap(),
            "--topic",
            "billing.copy.v1",
        ],
        None,
    );
    assert!(ok, "{err}");
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (
            summary["appended"].as_u64(),
            summary["duplicates_skipped"].as_u64()
        ),
        (Some(2), Some(0))
    );
    let (ok, out, _) = run(&["import", snap.to_str().unwrap()], None);
    assert!(ok);
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (
            summary["appended"].as_u64(),
            summary["duplicates_skipped"].as_u64()
        ),
        (Some(0), Some(2))
    );
    // A damaged file: exit status 1 and the file named.
    let mut bytes = std::fs::read(&snap).unwrap();
    let n = bytes.len();
    bytes.truncate(n - 3);
    std::fs::write(&snap, &bytes).unwrap();
    let (ok, _, err) = run(
        &[
            "import",
            snap.to_str().unwrap(),
            "--topic",
            "billing.other.v1",
        ],
        None,
    );
    assert!(!ok);
    assert!(
        err.contains("out.snap") && err.contains("nothing was imported"),
        "{err}"
    );
}

/// Small segments, hot for 7 days then warm for ten years, dedup off (so only
/// the import's own scan can recognise what the topic holds).
fn tiered_config(partitions: u32) -> TopicConfig {
    let mut c = config(partitions);
    c.segment_bytes = 8 << 10;
    c.retention_ms = Some(7 * 86_400_000);
    c.warm_retention_ms = 3650 * 86_400_000;
    c.dedup_window_ms = 0;
    c
}

/// Every readable record of every partition, warm and hot, by partition:
/// (offset, timestamp, raw bytes).
fn all_tiers(fabric: &Fabric, topic: &str) -> Vec<Vec<(u64, i64, Vec<u8>)>> {
    let partitions = fabric.topic_info(topic).unwrap().config.partitions;
    (0..partitions)
        .map(|p| {
            let mut reader = fabric
                .reader(topic, eventfabric::StartFrom::Earliest)
                .unwrap()
                .with_partitions(&[p])
                .unwrap();
            std::iter::from_fn(|| reader.next_raw())
                .map(|r| {
                    let r = r.unwrap();
                    (r.offset, r.timestamp, r.value.to_vec())
                })
                .collect()
        })
        .collect()
}

/// Moves every sealed hot segment of `topic` to the warm tier; returns the
/// records' smallest timestamp and how many warm archives there are.
fn tier_all(fabric: &Fabric, topic: &str) -> (i64, usize) {
    let records = all_tiers(fabric, topic);
    let ts = records.iter().flatten().map(|r| r.1);
    let (min, max) = (ts.clone().min().unwrap(), ts.max().unwrap());
    let now = jiff::Timestamp::from_microsecond(max + 8 * 86_400_000_000).unwrap();
    fabric.maintain_at(now).unwrap();
    let warm = fabric
        .tier_summary(topic)
        .unwrap()
        .iter()
        .map(|p| p.warm.len())
        .sum();
    assert_eq!(all_tiers(fabric, topic), records, "tiering changed records");
    (min, warm)
}

fn tiered_filled(dir: &Path, n: usize) -> (Fabric, Vec<Envelope>) {
    let fabric = Fabric::open(dir, os()).unwrap();
    fabric.create_topic(TOPIC, tiered_config(3)).unwrap();
    let evs = events(n, 17);
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    for chunk in evs.chunks(10) {
        producer.publish_batch(chunk).unwrap();
    }
    (fabric, evs)
}

#[test]
fn an_export_of_a_tiered_topic_holds_every_record_of_the_warm_and_hot_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let (fabric, _) = tiered_filled(dir.path(), 500);
    let (min_ts, warm) = tier_all(&fabric, TOPIC);
    assert!(warm >= 3, "only {warm} warm archives");
    let want = all_tiers(&fabric, TOPIC);
    let options = [
        ExportOptions::default(),
        {
            let mut o = ExportOptions::default();
            o.from = Bound::Time(min_ts);
            o
        },
        {
            let mut o = ExportOptions::default();
            o.from = Bound::Offset(0);
            o
        },
    ];
    for (i, o) in options.iter().enumerate() {
        let file = dir.path().join(format!("tiered-{i}.snap"));
        let summary = export_snapshot(&fabric, TOPIC, &file, o).unwrap();
        assert_eq!(summary.records, 500, "export {i} ({o:?})");
        let (_, records) = decode_snapshot(&std::fs::read(&file).unwrap()).unwrap();
        let mut got = vec![Vec::new(); 3];
        for r in records {
            got[r.partition as usize].push((r.offset, r.timestamp, r.value));
        }
        assert!(got == want, "export {i} ({o:?}) differs from the topic");
    }
}

#[test]
fn importing_a_file_into_a_tiered_topic_that_holds_its_events_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (fabric, _) = tiered_filled(dir.path(), 500);
    let file = dir.path().join("all.snap");
    export_snapshot(&fabric, TOPIC, &file, &ExportOptions::default()).unwrap();
    let (_, warm) = tier_all(&fabric, TOPIC);
    assert!(warm >= 3, "only {warm} warm archives");
    let before = counts(&fabric, TOPIC);
    let s = import_snapshot(&fabric, &file, None).unwrap();
    assert_eq!((s.appended, s.duplicates_skipped), (0, 500));
    assert_eq!(counts(&fabric, TOPIC), before);
    // Imported into another data directory, tiered there, imported again.
    let dst = tempfile::tempdir().unwrap();
    let target = Fabric::open(dst.path(), os()).unwrap();
    assert_eq!(import_snapshot(&target, &file, None).unwrap().appended, 500);
    tier_all(&target, TOPIC);
    let s = import_snapshot(&target, &file, None).unwrap();
    assert_eq!((s.appended, s.duplicates_skipped), (0, 500));
}

#[test]
fn an_import_respects_the_segment_size_so_retention_can_tier_it() {
    let src = tempfile::tempdir().unwrap();
    let (fabric, _) = filled(src.path(), 1500);
    let file = src.path().join("all.snap");
    export_snapshot(&fabric, TOPIC, &file, &ExportOptions::default()).unwrap();
    let dst = tempfile::tempdir().unwrap();
    let target = Fabric::open(dst.path(), os()).unwrap();
    target.create_topic(TOPIC, tiered_config(3)).unwrap();
    let want = all_tiers(&fabric, TOPIC);
    let s = import_snapshot(&target, &file, None).unwrap();
    assert_eq!(s.appended, 1500);
    let segment_bytes = tiered_config(3).segment_bytes;
    for p in target.tier_summary(TOPIC).unwrap() {
        assert!(p.hot.len() > 3, "partition {}: {:?}", p.partition, p.hot);
        for seg in &p.hot {
            assert!(
                seg.size_bytes <= segment_bytes,
                "partition {}: segment at {} holds {} bytes, more than segment_bytes {segment_bytes}",
                p.partition,
                seg.base_offset,
                seg.size_bytes
            );
        }
    }
    // Retention can move all but each partition's active segment.
    tier_all(&target, TOPIC);
    for p in target.tier_summary(TOPIC).unwrap() {
        assert_eq!(p.hot.len(), 1, "partition {}", p.partition);
        assert!(p.warm.len() > 3, "partition {}", p.partition);
    }
    let got: Vec<Vec<(i64, Vec<u8>)>> = all_tiers(&target, TOPIC)
        .into_iter()
        .map(|p| p.into_iter().map(|(_, t, v)| (t, v)).collect())
        .collect();
    let want: Vec<Vec<(i64, Vec<u8>)>> = want
        .into_iter()
        .map(|p| p.into_iter().map(|(_, t, v)| (t, v)).collect())
        .collect();
    assert!(got == want, "the imported records differ");
}
