//! The remote warm tier in operation (issue 17, second round), against a
//! real `moto_server` on loopback (tests/s3_support): the CLI on a data
//! directory holding remote archives, local `verify` across local and remote
//! archives, the local-disk ceiling per append, the orphan sweep after a
//! crash between upload and marker, the error of a failed move, and
//! background read-ahead.
#![cfg(feature = "tier-s3")]

mod s3_support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use eventfabric::testing::FaultPlan;
use eventfabric::{
    ColdAction, Error, Fabric, FabricConfig, FsyncPolicy, RemoteWarmConfig, Severity, StartFrom,
    TopicConfig,
};
use s3_support::{Moto, config, credentials, store};

const TOPIC: &str = "audit.trail.v1";
const DAY_US: i64 = 86_400_000_000;
/// 2026-06-10T12:00:00Z.
const T0: i64 = 1_781_092_800_000_000;
/// The first three segments are past hot retention (7 days), none past warm.
const NOW: i64 = T0 + 20 * DAY_US;

fn at(us: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(us).unwrap()
}

fn remote_config(endpoint: &str, bucket: &str, prefix: &str) -> RemoteWarmConfig {
    let mut rc = RemoteWarmConfig::new(config(endpoint, bucket, prefix));
    rc.credentials = Some(credentials());
    rc.retry_initial = Duration::ZERO;
    rc
}

fn with_remote(remote: RemoteWarmConfig) -> FabricConfig {
    let mut fc = FabricConfig::default();
    fc.remote_warm = Some(remote);
    fc
}

fn topic_config() -> TopicConfig {
    let mut c = TopicConfig::with_partitions(1);
    c.fsync = FsyncPolicy::Os;
    c.segment_bytes = 2048;
    c.retention_ms = Some(7 * 86_400_000);
    c.warm_retention_ms = 365 * 86_400_000;
    c.cold_action = ColdAction::Delete;
    c
}

fn value(offset: u64) -> Vec<u8> {
    let mut v = format!("o{offset}-").into_bytes();
    v.resize(50, b'x');
    v
}

/// Appends one sealed segment of 10 old records (day `day` after T0) from offset `from`.
fn old_segment(fabric: &Fabric, from: u64, day: i64) {
    let log = fabric.partition(TOPIC, 0).unwrap();
    let batch: Vec<(i64, Vec<u8>)> = (0..10)
        .map(|i| (T0 + day * DAY_US + i, value(from + i as u64)))
        .collect();
    log.append_batch_with_timestamps(&batch).unwrap();
    log.roll().unwrap();
}

/// A topic with three sealed old segments and a recent record in the active one.
fn setup(dir: &Path, fc: FabricConfig) -> Fabric {
    let fabric = Fabric::open(dir, fc).unwrap();
    fabric.create_topic(TOPIC, topic_config()).unwrap();
    for s in 0..3 {
        old_segment(&fabric, s * 10, s as i64);
    }
    let log = fabric.partition(TOPIC, 0).unwrap();
    log.append_batch_with_timestamps(&[(T0 + 40 * DAY_US, value(30))])
        .unwrap();
    fabric
}

fn offsets(fabric: &Fabric) -> Vec<u64> {
    let mut reader = fabric
        .reader(TOPIC, StartFrom::Earliest)
        .unwrap()
        .with_partitions(&[0])
        .unwrap();
    let mut out = Vec::new();
    while let Some(r) = reader.next_raw() {
        out.push(r.unwrap().offset);
    }
    out
}

fn warm_names(dir: &Path) -> Vec<String> {
    let d = dir.join("warm").join(TOPIC).join("0");
    let mut names: Vec<String> = std::fs::read_dir(&d)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

// ---- 1. The CLI on a data directory with remote archives ----

/// `fabric --data DIR [--s3-* flags] ARGS` with `stdin`, with or without
/// credentials in the environment (and never any from the caller's).
fn cli(dir: &Path, s3: Option<&str>, creds: bool, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fabric"));
    cmd.arg("--data").arg(dir);
    if let Some(endpoint) = s3 {
        cmd.args([
            "--s3-bucket",
            "warm",
            "--s3-prefix",
            "ops",
            "--s3-endpoint",
            endpoint,
        ]);
    }
    cmd.args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN");
    if creds {
        cmd.env("AWS_ACCESS_KEY_ID", "testing-key-id")
            .env("AWS_SECRET_ACCESS_KEY", "testing-secret");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run fabric");
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().unwrap()
}

fn cli_ok(dir: &Path, s3: Option<&str>, args: &[&str], stdin: &[u8]) -> String {
    let out = cli(dir, s3, true, args, stdin);
    assert!(
        out.status.success(),
        "fabric {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const CLI_TOPIC: &str = "auth.audit.v1";

#[test]
fn every_cli_command_reads_and_writes_a_dir_with_remote_archives_with_or_without_the_flags() {
    let moto = Moto::start();
    moto.create_bucket("warm");
    let endpoint = moto.endpoint();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    cli_ok(
        data,
        None,
        &[
            "topic",
            "create",
            CLI_TOPIC,
            "--partitions",
            "1",
            "--segment-bytes",
            "16384",
            "--warm-retention-ms",
            "31536000000",
        ],
        b"",
    );
    let fixtures = |count: &str, seed: &str| {
        cli_ok(
            data,
            None,
            &[
                "gen",
                "auth.user.login_succeeded",
                "--count",
                count,
                "--seed",
                seed,
            ],
            b"",
        )
    };
    let events = fixtures("300", "3");
    let events: Vec<&str> = events.split_inclusive('\n').collect();
    for chunk in events.chunks(50) {
        cli_ok(
            data,
            None,
            &["produce", CLI_TOPIC],
            chunk.concat().as_bytes(),
        );
    }
    // Three weeks after the fixtures' events: past hot retention, not warm.
    let later = [
        "retention",
        "run",
        CLI_TOPIC,
        "--now",
        "2026-07-01T00:00:00Z",
    ];
    cli_ok(data, Some(&endpoint), &later, b"");
    let names = warm_dir_of(data);
    assert!(
        !names.is_empty() && names.iter().all(|n| n.ends_with(".remote")),
        "{names:?}"
    );
    // The location (never a credential) is recorded in the data directory.
    let recorded = std::fs::read_to_string(data.join(eventfabric::REMOTE_SETTINGS_FILE)).unwrap();
    assert!(
        recorded.contains("\"bucket\": \"warm\"") && !recorded.contains("testing-secret"),
        "{recorded}"
    );

    // produce with the flags, then without them: both open the writer.
    cli_ok(
        data,
        Some(&endpoint),
        &["produce", CLI_TOPIC],
        fixtures("20", "4").as_bytes(),
    );
    cli_ok(
        data,
        None,
        &["produce", CLI_TOPIC],
        fixtures("20", "5").as_bytes(),
    );
    for s3 in [Some(endpoint.as_str()), None] {
        let consumed = cli_ok(data, s3, &["consume", CLI_TOPIC], b"");
        let offsets: Vec<u64> = consumed
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["_offset"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            offsets,
            (0..340).collect::<Vec<u64>>(),
            "consume with {s3:?}"
        );
    }
    let replayed = cli_ok(
        data,
        None,
        &["replay", CLI_TOPIC, "--group", "audit", "--from", "0"],
        b"",
    );
    assert_eq!(replayed.lines().count(), 340);
    let groups = cli_ok(data, None, &["group", "list"], b"");
    assert!(groups.contains("audit"), "{groups}");
    // Local verify: markers are links of the offset chain, no false finding.
    let out = cli(data, None, true, &["verify"], b"");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Without credentials: a clear error naming the variables and the file.
    let out = cli(data, None, false, &["consume", CLI_TOPIC], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("AWS_ACCESS_KEY_ID") && err.contains(eventfabric::REMOTE_SETTINGS_FILE),
        "{err}"
    );
}

fn warm_dir_of(data: &Path) -> Vec<String> {
    let d = data.join("warm").join(CLI_TOPIC).join("0");
    let mut names: Vec<String> = std::fs::read_dir(&d)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

// ---- 2. Local verify across local and remote archives ----

#[test]
fn local_verify_checks_offset_continuity_across_local_archives_markers_and_hot() {
    let moto = Moto::start();
    moto.create_bucket("warm");
    let dir = tempfile::tempdir().unwrap();
    // Two old segments become local warm archives (no remote tier yet)...
    let fabric = Fabric::open(dir.path(), FabricConfig::default()).unwrap();
    fabric.create_topic(TOPIC, topic_config()).unwrap();
    old_segment(&fabric, 0, 0);
    old_segment(&fabric, 10, 1);
    let log = fabric.partition(TOPIC, 0).unwrap();
    log.append_batch_with_timestamps(&[(T0 + 40 * DAY_US, value(20))])
        .unwrap();
    log.roll().unwrap();
    drop(log);
    fabric.maintain_at(at(NOW)).unwrap();
    drop(fabric);
    // ...then the remote tier is configured and the next segments go there.
    let fc = with_remote(remote_config(&moto.endpoint(), "warm", "v"));
    let fabric = Fabric::open(dir.path(), fc.clone()).unwrap();
    old_segment(&fabric, 21, 2);
    fabric
        .partition(TOPIC, 0)
        .unwrap()
        .append_batch_with_timestamps(&[(T0 + 41 * DAY_US, value(31))])
        .unwrap();
    fabric.maintain_at(at(T0 + 50 * DAY_US)).unwrap();
    assert_eq!(
        warm_names(dir.path()),
        [
            "00000000000000000000.archive",
            "00000000000000000010.archive",
            "00000000000000000020.remote",
            "00000000000000000021.remote"
        ]
    );
    assert_eq!(offsets(&fabric), (0..32).collect::<Vec<u64>>());
    drop(fabric);
    let report = eventfabric::verify_data_dir(dir.path(), &FabricConfig::default()).unwrap();
    assert!(report.is_clean(), "{:#?}", report.findings);
    assert_eq!(report.warm_archives, 4);

    // A local archive lost in the middle: the gap is found at the marker after it.
    std::fs::remove_file(
        dir.path()
            .join("warm")
            .join(TOPIC)
            .join("0")
            .join("00000000000000000010.archive"),
    )
    .unwrap();
    let report = eventfabric::verify_data_dir(dir.path(), &FabricConfig::default()).unwrap();
    let damage: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Damage)
        .collect();
    assert_eq!(damage.len(), 1, "{:#?}", report.findings);
    assert!(
        damage[0].path.ends_with("00000000000000000020.remote")
            && damage[0].problem.contains("a gap"),
        "{damage:?}"
    );
}

// ---- 3. The local-disk ceiling, per append ----

#[test]
fn appends_are_refused_as_soon_as_local_bytes_pass_the_ceiling_while_uploads_fail() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let mut rc = remote_config(&moto.endpoint(), "late-bucket", "");
    // Above what the setup holds (~3.3 KiB), so appends go on for a while.
    const CEILING: u64 = 6000;
    rc.local_ceiling_bytes = Some(CEILING);
    let fabric = setup(dir.path(), with_remote(rc));
    let log = fabric.partition(TOPIC, 0).unwrap();
    let err = fabric.maintain_at(at(NOW)).unwrap_err().to_string();
    assert!(err.contains("does not exist"), "{err}");
    // No maintenance runs now: the appends themselves must stop at the ceiling.
    let mut accepted = 0u64;
    let refused = loop {
        match log.append(&[b'v'; 100]) {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 1000, "appends never refused");
    };
    let Error::LocalDiskCeiling {
        topic,
        partition,
        local_bytes,
        ceiling,
        cause,
    } = &refused
    else {
        panic!("{refused:?}")
    };
    assert_eq!((topic.as_str(), *partition, *ceiling), (TOPIC, 0, CEILING));
    assert!(
        *local_bytes > CEILING && cause.contains("does not exist"),
        "{refused}"
    );
    assert!(accepted > 0, "appends under the ceiling were refused");
    let held: u64 = fabric.tier_summary(TOPIC).unwrap()[0]
        .hot
        .iter()
        .map(|s| s.size_bytes)
        .sum();
    assert!(held <= CEILING, "{held} bytes held past the ceiling");
    // Nothing accepted is lost; the bucket appears and appends go on.
    assert_eq!(offsets(&fabric).len() as u64, 31 + accepted);
    moto.create_bucket("late-bucket");
    fabric.maintain_at(at(NOW)).unwrap();
    log.append(b"accepted again").unwrap();
}

// ---- 4. Orphan objects ----

#[test]
fn an_object_left_by_a_crash_between_upload_and_marker_is_swept_after_the_grace() {
    let moto = Moto::start();
    moto.create_bucket("warm");
    let s = store(&moto.endpoint(), "warm", "orphans");
    let prefix = s.key(TOPIC);
    let mut n = 0u64;
    let dir = loop {
        let dir = tempfile::tempdir().unwrap();
        let rc = remote_config(&moto.endpoint(), "warm", "orphans");
        let fabric = setup(dir.path(), with_remote(rc));
        fabric.set_tier_fault_injector(Some(Arc::new(FaultPlan::new().crash_after(n))));
        let outcome = fabric.maintain_at(at(NOW));
        drop(fabric); // the process dies here
        let uploaded = !s.list(&prefix).unwrap().is_empty();
        let marked = warm_names(dir.path())
            .iter()
            .any(|n| n.ends_with(".remote"));
        if uploaded && !marked {
            break dir;
        }
        assert!(outcome.is_err(), "no crash point between upload and marker");
        for o in s.list(&prefix).unwrap() {
            s.delete(&o.key).unwrap();
        }
        n += 1;
    };
    let orphan = s.list(&prefix).unwrap();
    assert_eq!(orphan.len(), 1, "{orphan:?}");
    // Within the grace period it stays (it may be an upload in progress).
    let mut rc = remote_config(&moto.endpoint(), "warm", "orphans");
    let fabric = Fabric::open(dir.path(), with_remote(rc.clone())).unwrap();
    fabric.maintain_at(at(T0)).unwrap(); // nothing is due to move at T0
    assert_eq!(s.list(&prefix).unwrap(), orphan);
    drop(fabric);
    // Past it, no marker naming it: deleted. The hot copy is still read.
    rc.orphan_grace = Duration::ZERO;
    let fabric = Fabric::open(dir.path(), with_remote(rc)).unwrap();
    fabric.maintain_at(at(T0)).unwrap();
    assert!(s.list(&prefix).unwrap().is_empty());
    assert_eq!(offsets(&fabric), (0..31).collect::<Vec<u64>>());
    // Objects that markers name are never swept.
    fabric.maintain_at(at(NOW)).unwrap();
    fabric.maintain_at(at(NOW)).unwrap();
    assert_eq!(s.list(&prefix).unwrap().len(), 3);
    assert_eq!(offsets(&fabric), (0..31).collect::<Vec<u64>>());
}

// ---- 7. A failed move says which segment and why ----

#[test]
fn a_failed_move_names_topic_partition_segment_and_the_stores_message() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let fabric = setup(
        dir.path(),
        with_remote(remote_config(&moto.endpoint(), "missing-bucket", "")),
    );
    let err = fabric.maintain_at(at(NOW)).unwrap_err();
    let Error::TierMoveFailed {
        topic,
        partition,
        segment_base,
        cause,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((topic.as_str(), *partition, *segment_base), (TOPIC, 0, 0));
    let Error::ObjectStore {
        op,
        location,
        reason,
    } = cause.as_ref()
    else {
        panic!("{cause:?}")
    };
    assert_eq!(*op, "upload");
    assert!(
        location.starts_with("s3://missing-bucket/audit.trail.v1/0/"),
        "{location}"
    );
    assert!(reason.contains("does not exist"), "{reason}");
    let shown = err.to_string();
    assert!(
        shown.contains(TOPIC) && shown.contains("segment 00000000000000000000"),
        "{shown}"
    );
}

// ---- 5. Background read-ahead ----

#[test]
fn sequential_replay_fetches_the_next_window_in_the_background() {
    let moto = Moto::start();
    moto.create_bucket("warm");
    let dir = tempfile::tempdir().unwrap();
    let mut rc = remote_config(&moto.endpoint(), "warm", "ahead");
    // One block per window: every block after an archive's first comes ahead.
    rc.read_ahead_bytes = 1;
    let fc = with_remote(rc);
    let fabric = Fabric::open(dir.path(), fc.clone()).unwrap();
    let mut tc = topic_config();
    tc.segment_bytes = 2 << 20;
    fabric.create_topic(TOPIC, tc).unwrap();
    let log = fabric.partition(TOPIC, 0).unwrap();
    // Incompressible values, so a segment's archive has several blocks.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut count = 0u64;
    for seg in 0..2 {
        for b in 0..12 {
            let batch: Vec<(i64, Vec<u8>)> = (0..100)
                .map(|i| {
                    let v: Vec<u8> = (0..125).flat_map(|_| next().to_le_bytes()).collect();
                    (T0 + seg * DAY_US + b * 100 + i, v)
                })
                .collect();
            log.append_batch_with_timestamps(&batch).unwrap();
            count += 100;
        }
        log.roll().unwrap();
    }
    log.append_batch_with_timestamps(&[(T0 + 40 * DAY_US, b"tail".to_vec())])
        .unwrap();
    drop(log);
    assert_eq!(fabric.maintain_at(at(NOW)).unwrap().segments_to_warm, 2);
    drop(fabric);
    let fabric = Fabric::open(dir.path(), fc).unwrap();
    let blocks: u32 = fabric.tier_summary(TOPIC).unwrap()[0]
        .warm
        .iter()
        .map(|a| a.summary.block_count)
        .sum();
    assert!(blocks >= 6, "{blocks} blocks");
    assert_eq!(offsets(&fabric), (0..=count).collect::<Vec<u64>>());
    let (on_demand, ahead, used) = fabric.remote_fetch_counts().unwrap();
    // The first block of each archive is waited for; the rest were in flight.
    assert_eq!(
        on_demand, 2,
        "({on_demand}, {ahead}, {used}) of {blocks} blocks"
    );
    assert_eq!(ahead, u64::from(blocks) - 2);
    assert_eq!(used, ahead);
}
