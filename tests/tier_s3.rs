//! The warm tier on S3-compatible object storage (issue 17), against a real
//! server: `moto_server` on loopback, started per test (tests/s3_support).
#![cfg(feature = "tier-s3")]

mod s3_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use eventfabric::testing::FaultPlan;
use eventfabric::{
    ColdAction, Error, Fabric, FabricConfig, FsyncPolicy, RemoteArchiveCheck, RemoteStore,
    RemoteWarmConfig, S3Credentials, StartFrom, TopicConfig,
};
use s3_support::{Moto, Proxy, config, credentials, pattern, store};

#[test]
fn put_head_range_list_delete_round_trip() {
    let moto = Moto::start();
    moto.create_bucket("warm");
    let s = store(&moto.endpoint(), "warm", "fabric/a");
    s.check_bucket().unwrap();
    let small = pattern(100_000, 1);
    let key = s.key("t.v1/0/00000000000000000000.archive");
    assert_eq!(key, "fabric/a/t.v1/0/00000000000000000000.archive");
    let r = s.put(&key, small.clone()).unwrap();
    assert_eq!(
        (r.size, r.parts, r.crc32),
        (100_000, 1, crc32fast::hash(&small))
    );
    let h = s.head(&key).unwrap().expect("uploaded object");
    assert_eq!((h.size, h.crc32), (100_000, Some(r.crc32)));
    assert_eq!(
        s.get_range(&key, 10..4_010).unwrap(),
        small.slice(10..4_010)
    );
    // A range past the end is an error, never a short read taken as whole.
    let err = s.get_range(&key, 99_000..100_100).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ObjectStore {
                op: "read range",
                ..
            }
        ),
        "{err}"
    );

    // Above the threshold: parts of 5 MiB, reassembled byte for byte.
    let big = pattern((13 << 20) + 123, 2);
    let big_key = s.key("t.v1/0/00000000000000001000.archive");
    let r = s.put(&big_key, big.clone()).unwrap();
    assert_eq!((r.parts, r.size), (3, big.len() as u64));
    let h = s.head(&big_key).unwrap().unwrap();
    assert_eq!(
        (h.size, h.crc32),
        (big.len() as u64, Some(crc32fast::hash(&big)))
    );
    let tail = (big.len() as u64 - 1000)..big.len() as u64;
    assert_eq!(
        s.get_range(&big_key, tail.clone()).unwrap(),
        big.slice(tail.start as usize..)
    );

    let listed = s.list(&s.key("t.v1/0")).unwrap();
    let keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, [key.as_str(), big_key.as_str()]);
    assert_eq!(listed[1].size, big.len() as u64);
    assert!(s.list(&s.key("t.v1/1")).unwrap().is_empty());

    s.delete(&key).unwrap();
    s.delete(&key).unwrap(); // already gone: still fine
    assert_eq!(s.head(&key).unwrap(), None);
    assert_eq!(s.list(&s.key("t.v1/0")).unwrap().len(), 1);
}

#[test]
fn a_bucket_that_does_not_exist_is_a_clear_error() {
    let moto = Moto::start();
    let s = store(&moto.endpoint(), "no-such-bucket", "");
    let err = s.check_bucket().unwrap_err().to_string();
    assert!(
        err.contains("s3://no-such-bucket") && err.contains("does not exist"),
        "{err}"
    );
    let err = s
        .put("k", Bytes::from_static(b"x"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("upload") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn missing_credentials_are_refused_before_any_request() {
    let err = S3Credentials::from_vars(&|_| None).unwrap_err();
    let Error::ObjectStore { op, reason, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*op, "read credentials");
    assert!(
        reason.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set"),
        "{reason}"
    );
}

#[test]
fn an_unreachable_store_fails_fast_with_the_endpoint_named() {
    let port = s3_support::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let s = RemoteStore::connect(config(&endpoint, "warm", ""), credentials()).unwrap();
    let started = std::time::Instant::now();
    let err = s.head("x").unwrap_err().to_string();
    assert!(
        err.contains("unreachable") && err.contains(&endpoint),
        "{err}"
    );
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
}

#[test]
fn an_upload_cut_midway_leaves_no_object_and_succeeds_once_the_store_is_back() {
    let mut moto = Moto::start();
    moto.create_bucket("warm");
    let proxy = Proxy::start(moto.port);
    let s = store(&proxy.endpoint(), "warm", "");
    let data = pattern(12 << 20, 3);
    // Cut after 7 MiB: inside the second part of a multipart upload.
    proxy.cut_after(7 << 20);
    let err = s.put("a.archive", data.clone()).unwrap_err().to_string();
    assert!(err.contains("s3://warm/a.archive"), "{err}");
    assert!(proxy.is_down());
    // The server dies too and comes back empty (moto keeps nothing).
    moto.kill();
    let moto = Moto::start();
    moto.create_bucket("warm");
    proxy.restore(moto.port);
    assert_eq!(s.head("a.archive").unwrap(), None);
    let r = s.put("a.archive", data.clone()).unwrap();
    let h = s.head("a.archive").unwrap().unwrap();
    assert_eq!((h.size, h.crc32), (r.size, Some(crc32fast::hash(&data))));
}

// ---- The warm tier of a fabric in the bucket ----

const TOPIC: &str = "audit.trail.v1";
const DAY_US: i64 = 86_400_000_000;
/// 2026-06-10T12:00:00Z.
const T0: i64 = 1_781_092_800_000_000;
/// When maintenance runs: the first three segments are past hot retention
/// (7 days), none past warm retention (365 days).
const NOW: i64 = T0 + 20 * DAY_US;

type Appended = Vec<(i64, Vec<u8>)>;

fn at(us: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(us).unwrap()
}

fn remote_config(endpoint: &str, bucket: &str, prefix: &str) -> RemoteWarmConfig {
    let mut rc = RemoteWarmConfig::new(config(endpoint, bucket, prefix));
    rc.credentials = Some(credentials());
    rc.retry_initial = Duration::ZERO; // tests retry at once unless they test the backoff
    rc
}

fn fabric_config(remote: RemoteWarmConfig) -> FabricConfig {
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

/// A topic of one partition with three sealed segments of old records
/// (10 each, a day apart) and an active one holding a recent record.
fn setup(dir: &Path, fc: FabricConfig) -> (Fabric, Appended) {
    setup_with(dir, fc, topic_config())
}

fn setup_with(dir: &Path, fc: FabricConfig, tc: TopicConfig) -> (Fabric, Appended) {
    let fabric = Fabric::open(dir, fc).unwrap();
    fabric.create_topic(TOPIC, tc).unwrap();
    let log = fabric.partition(TOPIC, 0).unwrap();
    let mut all = Vec::new();
    for s in 0..3 {
        let batch: Appended = (0..10)
            .map(|i| (T0 + s * DAY_US + i, value(all.len() as u64 + i as u64)))
            .collect();
        log.append_batch_with_timestamps(&batch).unwrap();
        log.roll().unwrap();
        all.extend(batch);
    }
    let tail = vec![(T0 + 40 * DAY_US, value(all.len() as u64))];
    log.append_batch_with_timestamps(&tail).unwrap();
    all.extend(tail);
    (fabric, all)
}

fn read_all(fabric: &Fabric) -> eventfabric::Result<Vec<(u64, i64, Vec<u8>)>> {
    let mut reader = fabric
        .reader(TOPIC, StartFrom::Earliest)?
        .with_partitions(&[0])?;
    let mut out = Vec::new();
    while let Some(r) = reader.next_raw() {
        let r = r?;
        out.push((r.offset, r.timestamp, r.value.to_vec()));
    }
    Ok(out)
}

/// Every record is readable exactly once, from offset 0, warm (remote) then
/// hot contiguous; every marker's object is in the bucket, whole.
fn assert_exactly_once(fabric: &Fabric, all: &Appended, store: &RemoteStore) -> usize {
    let got = read_all(fabric).unwrap();
    assert_eq!(got.len(), all.len());
    for (i, (o, t, v)) in got.iter().enumerate() {
        assert_eq!((*o, *t, v), (i as u64, all[i].0, &all[i].1));
    }
    let summary = &fabric.tier_summary(TOPIC).unwrap()[0];
    let mut expect = 0;
    for a in &summary.warm {
        assert_eq!(
            a.summary.base_offset, expect,
            "warm archives overlap or leave a gap"
        );
        expect = a.summary.next_offset;
        let location = a.remote.as_deref().expect("every warm archive is remote");
        let key = location.strip_prefix(&store.location("")).unwrap();
        let head = store.head(key).unwrap().expect("a marker's object exists");
        assert_eq!(head.size, a.summary.file_bytes);
        assert!(
            a.path.to_string_lossy().ends_with(".remote"),
            "{:?}",
            a.path
        );
    }
    for h in &summary.hot {
        assert_eq!(
            h.base_offset, expect,
            "hot segments overlap the warm tier or leave a gap"
        );
        expect = h.next_offset;
    }
    summary.warm.len()
}

fn warm_dir_names(dir: &Path) -> Vec<String> {
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

#[test]
fn segments_tier_to_the_bucket_and_replay_from_it_across_reopen_and_read_only_views() {
    let moto = Moto::start();
    moto.create_bucket("warm");
    let dir = tempfile::tempdir().unwrap();
    let rc = remote_config(&moto.endpoint(), "warm", "fab");
    let (fabric, all) = setup(dir.path(), fabric_config(rc.clone()));
    let report = fabric.maintain_at(at(NOW)).unwrap();
    assert_eq!(report.segments_to_warm, 3);
    let s = store(&moto.endpoint(), "warm", "fab");
    let objects = s.list(&s.key(TOPIC)).unwrap();
    let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "fab/audit.trail.v1/0/00000000000000000000.archive",
            "fab/audit.trail.v1/0/00000000000000000010.archive",
            "fab/audit.trail.v1/0/00000000000000000020.archive",
        ]
    );
    // Locally only the markers: no archive, no temporary.
    assert_eq!(
        warm_dir_names(dir.path()),
        [
            "00000000000000000000.remote",
            "00000000000000000010.remote",
            "00000000000000000020.remote"
        ]
    );
    assert_eq!(assert_exactly_once(&fabric, &all, &s), 3);
    // The objects are archive segments (magic at both ends), with the
    // CRC-32 of their bytes recorded at upload.
    for o in &objects {
        let bytes = s.get_range(&o.key, 0..o.size).unwrap();
        assert_eq!(&bytes[..4], b"\xEFFAR".as_slice());
        assert_eq!(&bytes[bytes.len() - 4..], b"\xEFFAE".as_slice());
        let head = s.head(&o.key).unwrap().unwrap();
        assert_eq!(head.crc32, Some(crc32fast::hash(&bytes)));
    }
    // A reader view of the same directory, then the writer reopened.
    let view = Fabric::open_read_only_with(dir.path(), &fabric_config(rc.clone())).unwrap();
    assert_eq!(read_all(&view).unwrap().len(), all.len());
    drop(view);
    drop(fabric);
    let fabric = Fabric::open(dir.path(), fabric_config(rc)).unwrap();
    assert_eq!(assert_exactly_once(&fabric, &all, &s), 3);
    assert_eq!(fabric.earliest_available(TOPIC, 0).unwrap(), 0);
}

#[test]
fn with_the_store_gone_the_fabric_opens_and_serves_hot_data_and_warm_reads_fail_clearly() {
    let mut moto = Moto::start();
    moto.create_bucket("warm");
    let dir = tempfile::tempdir().unwrap();
    let rc = remote_config(&moto.endpoint(), "warm", "");
    let (fabric, all) = setup(dir.path(), fabric_config(rc.clone()));
    fabric.maintain_at(at(NOW)).unwrap();
    drop(fabric);
    moto.kill();
    // Opening needs no request: the markers hold each archive's index.
    let fabric = Fabric::open(dir.path(), fabric_config(rc)).unwrap();
    assert_eq!(fabric.earliest_available(TOPIC, 0).unwrap(), 0);
    let mut hot = fabric
        .reader(TOPIC, StartFrom::Offsets([(0, 30)].into()))
        .unwrap();
    let r = hot.next_raw().unwrap().unwrap();
    assert_eq!((r.offset, r.value.to_vec()), (30, all[30].1.clone()));
    let err = read_all(&fabric).unwrap_err().to_string();
    assert!(
        err.contains("unreachable") && err.contains("s3://warm/audit.trail.v1/0/"),
        "{err}"
    );
}

/// Runs maintenance with a crash after every possible number of tiering
/// file operations (the tier fault seam); after each, reopens and checks
/// that every record is readable exactly once. Returns the crash points tried.
#[test]
fn a_crash_at_any_step_of_a_move_to_the_bucket_keeps_every_record_exactly_once() {
    let moto = Moto::start();
    moto.create_bucket("warm");
    let mut n = 0u64;
    loop {
        let dir = tempfile::tempdir().unwrap();
        let prefix = format!("run{n}");
        let rc = remote_config(&moto.endpoint(), "warm", &prefix);
        let s = store(&moto.endpoint(), "warm", &prefix);
        let (fabric, all) = setup(dir.path(), fabric_config(rc.clone()));
        let plan = Arc::new(FaultPlan::new().crash_after(n));
        fabric.set_tier_fault_injector(Some(plan.clone()));
        let outcome = fabric.maintain_at(at(NOW));
        drop(fabric); // the process dies here
        let reopened = Fabric::open(dir.path(), fabric_config(rc.clone())).unwrap();
        let warm = assert_exactly_once(&reopened, &all, &s);
        assert!(
            !warm_dir_names(dir.path())
                .iter()
                .any(|n| n.ends_with(".tmp")),
            "{:?}",
            warm_dir_names(dir.path())
        );
        reopened.maintain_at(at(NOW)).unwrap();
        assert_eq!(assert_exactly_once(&reopened, &all, &s), 3);
        if outcome.is_ok() {
            assert_eq!(warm, 3);
            break;
        }
        n += 1;
        assert!(n < 500, "maintenance never completed");
    }
    // Per segment: archive temporary (create, header, blocks, tail, sync),
    // marker (create, set_len, write, sync, rename, sync dir), temporary
    // removed, hot files removed, sync dir; plus directory creation.
    assert!(n >= 3 * 12, "only {n} crash points");
}

#[test]
fn a_store_stopped_mid_upload_keeps_the_hot_data_backs_off_and_tiers_once_restarted() {
    let mut moto = Moto::start();
    moto.create_bucket("warm");
    let proxy = Proxy::start(moto.port);
    let dir = tempfile::tempdir().unwrap();
    let mut rc = remote_config(&proxy.endpoint(), "warm", "");
    rc.retry_initial = Duration::from_millis(300);
    let (fabric, all) = setup(dir.path(), fabric_config(rc));
    // The connection dies 300 bytes into the first PUT, and the server with it.
    proxy.cut_after(300);
    let err = fabric.maintain_at(at(NOW)).unwrap_err();
    assert!(
        matches!(&err, Error::TierMoveFailed { cause, .. } if matches!(**cause, Error::ObjectStore { .. })),
        "{err}"
    );
    assert!(proxy.is_down());
    moto.kill();
    // Nothing moved: the hot tier still holds everything, no marker exists.
    assert_eq!(read_all(&fabric).unwrap().len(), all.len());
    assert_eq!(fabric.tier_summary(TOPIC).unwrap()[0].hot.len(), 4);
    assert!(
        warm_dir_names(dir.path()).is_empty(),
        "{:?}",
        warm_dir_names(dir.path())
    );
    // Within the backoff the partition is not tried again, and says so.
    let err = fabric.maintain_at(at(NOW)).unwrap_err().to_string();
    assert!(
        err.contains("deferred") && err.contains("retrying in"),
        "{err}"
    );
    // The server comes back (empty, as moto keeps nothing) on a new port.
    let moto = Moto::start();
    moto.create_bucket("warm");
    proxy.restore(moto.port);
    std::thread::sleep(Duration::from_millis(1300)); // past the doubled backoff
    let report = fabric.maintain_at(at(NOW)).unwrap();
    assert_eq!(report.segments_to_warm, 3);
    let s = store(&moto.endpoint(), "warm", "");
    assert_eq!(assert_exactly_once(&fabric, &all, &s), 3);
}

#[test]
fn a_bucket_that_does_not_exist_keeps_every_segment_hot_and_says_so() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let (fabric, all) = setup(
        dir.path(),
        fabric_config(remote_config(&moto.endpoint(), "missing-bucket", "")),
    );
    let err = fabric.maintain_at(at(NOW)).unwrap_err().to_string();
    assert!(
        err.contains("missing-bucket") && err.contains("does not exist"),
        "{err}"
    );
    assert_eq!(read_all(&fabric).unwrap().len(), all.len());
    assert_eq!(fabric.tier_summary(TOPIC).unwrap()[0].hot.len(), 4);
}

#[test]
fn a_fabric_without_credentials_in_the_environment_refuses_to_open_naming_them() {
    for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        assert!(
            std::env::var_os(var).is_none(),
            "this test checks the environment without {var}: run it without AWS credentials set"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rc = remote_config("http://127.0.0.1:9", "warm", "");
    rc.credentials = None; // from the environment
    let err = Fabric::open(dir.path(), fabric_config(rc))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set"),
        "{err}"
    );
}

#[test]
fn warm_retention_deletes_or_exports_remote_archives_marker_first() {
    let moto = Moto::start();
    moto.create_bucket("warm");
    for action in [ColdAction::Delete, ColdAction::Export] {
        let dir = tempfile::tempdir().unwrap();
        let prefix = format!("{action:?}").to_lowercase();
        let s = store(&moto.endpoint(), "warm", &prefix);
        let mut tc = topic_config();
        tc.cold_action = action;
        let (fabric, all) = setup_with(
            dir.path(),
            fabric_config(remote_config(&moto.endpoint(), "warm", &prefix)),
            tc,
        );
        fabric.maintain_at(at(NOW)).unwrap();
        assert_eq!(s.list(&s.key(TOPIC)).unwrap().len(), 3);
        // A year later the three archives are past warm retention.
        let report = fabric.maintain_at(at(T0 + 400 * DAY_US)).unwrap();
        assert!(s.list(&s.key(TOPIC)).unwrap().is_empty(), "{action:?}");
        assert!(
            warm_dir_names(dir.path()).is_empty(),
            "{:?}",
            warm_dir_names(dir.path())
        );
        assert_eq!(fabric.earliest_available(TOPIC, 0).unwrap(), 30);
        let summary = &fabric.tier_summary(TOPIC).unwrap()[0];
        match action {
            ColdAction::Delete => {
                assert_eq!(report.segments_deleted, 3);
                assert!(summary.cold.is_empty());
            }
            _ => {
                assert_eq!(report.segments_to_cold, 3);
                // Exported as local archives, valid and complete.
                let cold: Vec<(u64, u64)> = summary
                    .cold
                    .iter()
                    .map(|a| (a.summary.base_offset, a.summary.next_offset))
                    .collect();
                assert_eq!(cold, [(0, 10), (10, 20), (20, 30)]);
                assert!(summary.cold.iter().all(|a| a.remote.is_none()));
            }
        }
        let got = read_all(&fabric).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].2, all[30].1);
    }
}

#[test]
fn verify_remote_checks_every_object_and_names_a_damaged_one() {
    let moto = Moto::start();
    moto.create_bucket("warm");
    let dir = tempfile::tempdir().unwrap();
    let (fabric, _) = setup(
        dir.path(),
        fabric_config(remote_config(&moto.endpoint(), "warm", "v")),
    );
    fabric.maintain_at(at(NOW)).unwrap();
    let checks = fabric.verify_remote_warm(TOPIC).unwrap();
    let ranges: Vec<(u64, u64)> = checks
        .iter()
        .map(|c| (c.base_offset, c.next_offset))
        .collect();
    assert_eq!(ranges, [(0, 10), (10, 20), (20, 30)]);
    assert!(checks.iter().all(|c| c.problem.is_none()), "{checks:?}");
    // One byte of the middle object's first block flips, behind the tier's back.
    let s = store(&moto.endpoint(), "warm", "v");
    let key = s.key("audit.trail.v1/0/00000000000000000010.archive");
    let size = s.head(&key).unwrap().unwrap().size;
    let mut bytes = s.get_range(&key, 0..size).unwrap().to_vec();
    bytes[20] ^= 0x01;
    s.put_plain(&key, bytes.into()).unwrap();
    let checks = fabric.verify_remote_warm(TOPIC).unwrap();
    let bad: Vec<&RemoteArchiveCheck> = checks.iter().filter(|c| c.problem.is_some()).collect();
    assert_eq!(bad.len(), 1, "{checks:?}");
    assert_eq!(bad[0].location, s.location(&key));
    let why = bad[0].problem.as_deref().unwrap();
    assert!(
        why.contains("CRC-32") && why.contains(&s.location(&key)),
        "{why}"
    );
    // A read of that block fails too, naming the file, never returning the damaged batch.
    let err = read_all(&fabric).unwrap_err().to_string();
    assert!(
        err.contains("00000000000000000010.remote") && err.contains("checksum"),
        "{err}"
    );
}

#[test]
fn past_the_local_disk_ceiling_appends_are_refused_until_an_upload_succeeds() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let mut rc = remote_config(&moto.endpoint(), "late-bucket", "");
    // Three sealed segments of ~1 KiB and the active one: over 2 KiB.
    rc.local_ceiling_bytes = Some(2048);
    let (fabric, all) = setup(dir.path(), fabric_config(rc));
    let log = fabric.partition(TOPIC, 0).unwrap();
    log.append(b"still accepted").unwrap();
    // The bucket does not exist yet: the upload fails, the ceiling bites.
    let err = fabric.maintain_at(at(NOW)).unwrap_err().to_string();
    assert!(err.contains("does not exist"), "{err}");
    let err = log.append(b"refused").unwrap_err();
    let Error::LocalDiskCeiling { ceiling, cause, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*ceiling, 2048);
    assert!(cause.contains("does not exist"), "{cause}");
    assert!(
        err.to_string().contains("local-disk ceiling of 2048"),
        "{err}"
    );
    // Nothing was lost or written: everything accepted is still readable.
    assert_eq!(read_all(&fabric).unwrap().len(), all.len() + 1);
    // The bucket appears: the next run uploads and appends go on.
    moto.create_bucket("late-bucket");
    fabric.maintain_at(at(NOW)).unwrap();
    log.append(b"accepted again").unwrap();
    assert_eq!(read_all(&fabric).unwrap().len(), all.len() + 2);
}

/// `fabric` with the warm tier's bucket named on the command line and the
/// credentials in the environment (as an operator runs it).
fn fabric_cli(dir: &Path, endpoint: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_fabric"))
        .arg("--data")
        .arg(dir)
        .args([
            "--s3-bucket",
            "warm",
            "--s3-prefix",
            "cli",
            "--s3-endpoint",
            endpoint,
        ])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing-key-id")
        .env("AWS_SECRET_ACCESS_KEY", "testing-secret")
        .output()
        .expect("run fabric")
}

#[test]
fn the_cli_shows_where_each_range_lives_and_verifies_remote_archives() {
    let moto = Moto::start();
    moto.create_bucket("warm");
    let dir = tempfile::tempdir().unwrap();
    let (fabric, _) = setup(
        dir.path(),
        fabric_config(remote_config(&moto.endpoint(), "warm", "cli")),
    );
    fabric.maintain_at(at(NOW)).unwrap();
    drop(fabric);
    let out = fabric_cli(dir.path(), &moto.endpoint(), &["retention", "show", TOPIC]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let p = &lines[1];
    assert_eq!(
        p["warm_remote"]["location"],
        "s3://warm/cli/audit.trail.v1/0/"
    );
    assert_eq!(
        (
            &p["warm_remote"]["base_offset"],
            &p["warm_remote"]["next_offset"]
        ),
        (&serde_json::json!(0), &serde_json::json!(30))
    );
    assert_eq!(p["hot"]["base_offset"], 30);

    let out = fabric_cli(dir.path(), &moto.endpoint(), &["verify", "--remote"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("verified 3 remote warm archives: 0 with problems"),
        "{stderr}"
    );
    // The last object loses its tail: verify names it and exits 1.
    let s = store(&moto.endpoint(), "warm", "cli");
    let key = s.key("audit.trail.v1/0/00000000000000000020.archive");
    let size = s.head(&key).unwrap().unwrap().size;
    let cut = s.get_range(&key, 0..size - 1).unwrap();
    s.put_plain(&key, cut).unwrap();
    let out = fabric_cli(dir.path(), &moto.endpoint(), &["verify", "--remote"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "{}: audit.trail.v1 partition 0 offsets 20..30:",
            s.location(&key)
        )),
        "{stdout}"
    );
}

#[test]
fn a_topic_named_in_topic_stores_tiers_to_its_own_bucket() {
    let moto = Moto::start();
    moto.create_bucket("warm");
    moto.create_bucket("audit-archive");
    let dir = tempfile::tempdir().unwrap();
    let mut rc = remote_config(&moto.endpoint(), "warm", "shared");
    rc.topic_stores.insert(
        TOPIC.to_owned(),
        config(&moto.endpoint(), "audit-archive", "audit"),
    );
    let (fabric, all) = setup(dir.path(), fabric_config(rc.clone()));
    // A second topic, on the fabric's default store.
    let mut other = topic_config();
    other.partitions = 1;
    fabric.create_topic("other.v1", other).unwrap();
    let log = fabric.partition("other.v1", 0).unwrap();
    log.append_batch_with_timestamps(&[(T0, b"x".to_vec())])
        .unwrap();
    log.roll().unwrap();
    log.append_batch_with_timestamps(&[(T0 + 40 * DAY_US, b"y".to_vec())])
        .unwrap();
    fabric.maintain_at(at(NOW)).unwrap();
    let own = store(&moto.endpoint(), "audit-archive", "audit");
    assert_eq!(own.list(&own.key(TOPIC)).unwrap().len(), 3);
    let shared = store(&moto.endpoint(), "warm", "shared");
    assert!(shared.list(&shared.key(TOPIC)).unwrap().is_empty());
    assert_eq!(shared.list(&shared.key("other.v1")).unwrap().len(), 1);
    drop(log);
    drop(fabric);
    let fabric = Fabric::open(dir.path(), fabric_config(rc)).unwrap();
    assert_eq!(assert_exactly_once(&fabric, &all, &own), 3);
}
