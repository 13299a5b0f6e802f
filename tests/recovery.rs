//! Recovery: torn tails are truncated and reported, corruption is an error
//! naming file and byte, indexes are caches, reopen trusts sealed segments.
mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;

use common::{read_all, tiny_config, value_for};
use eventfabric::{Durability, Error, Log, LogConfig, RecoveryMode};

fn filled(dir: &std::path::Path, config: &LogConfig, n: u64) -> Log {
    let log = Log::open(dir, config.clone()).expect("open");
    for i in 0..n {
        log.append_batch(&[value_for(i * 2, 40), value_for(i * 2 + 1, 40)])
            .expect("append");
    }
    log
}

fn flip_byte(path: &std::path::Path, at: u64) {
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

#[test]
fn a_torn_tail_is_truncated_and_reported_with_file_and_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = tiny_config();
    let log = filled(dir.path(), &config, 5);
    log.flush().expect("flush");
    let active = log.segments().last().cloned().expect("segment");
    log.append(b"half written").expect("append");
    log.simulate_crash();
    // Cut the last batch in half.
    let f = OpenOptions::new()
        .write(true)
        .open(&active.path)
        .expect("open");
    f.set_len(active.size_bytes + 20).expect("cut");
    let log = Log::open(dir.path(), config).expect("reopen");
    let report = log.recovery_report();
    assert_eq!(report.truncations.len(), 1);
    assert_eq!(report.truncations[0].path, active.path);
    assert_eq!(report.truncations[0].position, active.size_bytes);
    assert_eq!(report.truncations[0].first_offset_removed, 10);
    assert_eq!(read_all(&log).expect("read").len(), 10);
}

#[test]
fn damage_followed_by_durable_batches_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = tiny_config();
    config.segment_bytes = 1 << 20;
    config.durability = Durability::Always;
    // No checkpoint: the whole segment is scanned, so the damage is seen at open.
    config.checkpoint_interval_bytes = 1 << 40;
    let log = filled(dir.path(), &config, 6);
    let active = log.segments().last().cloned().expect("segment");
    log.simulate_crash();
    // Rot one bit in the middle of the second batch's payload.
    let header = eventfabric::testing::batch::HEADER_LEN as u64;
    let batch_len = header + 2 * (12 + 40 + 4);
    let second_batch_payload = batch_len + header + 30;
    flip_byte(&active.path, second_batch_payload);
    let Err(err) = Log::open(dir.path(), config.clone()) else {
        panic!("corruption must not be truncated away");
    };
    match &err {
        Error::Corrupted {
            path,
            position,
            reason,
        } => {
            assert_eq!(path, &active.path);
            assert_eq!(*position, batch_len);
            assert!(reason.contains("durable"), "{reason}");
        }
        other => panic!("expected corruption, got {other}"),
    }
    assert!(
        err.to_string().contains("00000000000000000000.log"),
        "{err}"
    );
    // Nothing was changed by the failed open: the later batches are still there.
    let len_before = fs::metadata(&active.path).expect("stat").len();
    assert!(Log::open(dir.path(), config.clone()).is_err());
    assert_eq!(fs::metadata(&active.path).expect("stat").len(), len_before);
    // An explicit tolerant open truncates at the damage and says so.
    config.recovery = RecoveryMode::TruncateAtFirstDamage;
    let log = Log::open(dir.path(), config).expect("tolerant open");
    assert_eq!(log.recovery_report().truncations.len(), 1);
    assert_eq!(read_all(&log).expect("read").len(), 2);
}

#[test]
fn corruption_inside_a_sealed_segment_is_an_error_naming_file_and_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = tiny_config();
    let log = filled(dir.path(), &config, 40);
    let sealed = log.segments()[1].clone();
    assert!(sealed.sealed);
    log.close().expect("close");
    flip_byte(
        &sealed.path,
        eventfabric::testing::batch::HEADER_LEN as u64 + 10,
    );
    let log = Log::open(dir.path(), config).expect("open trusts sealed segments by footer");
    let err = read_all(&log).expect_err("the damaged batch fails its checksum");
    match err {
        Error::Corrupted { path, position, .. } => {
            assert_eq!(path, sealed.path);
            assert_eq!(position, 0);
        }
        other => panic!("expected corruption, got {other}"),
    }
    // A point read into the damaged batch fails the same way.
    assert!(matches!(
        log.read(sealed.base_offset, eventfabric::ReadLimit::records(1)),
        Err(Error::Corrupted { .. })
    ));
    // Records before the damaged segment are still readable.
    let first = log
        .read(0, eventfabric::ReadLimit::records(3))
        .expect("read first segment");
    assert_eq!(first.len(), 3);
}

#[test]
fn missing_short_or_corrupt_indexes_are_rebuilt() {
    for damage in ["missing", "short", "corrupt"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = tiny_config();
        let log = filled(dir.path(), &config, 40);
        let segs = log.segments();
        log.close().expect("close");
        for s in &segs {
            let index = s.path.with_extension("index");
            match damage {
                "missing" => {
                    let _ = fs::remove_file(&index);
                }
                "short" => {
                    if let Ok(m) = fs::metadata(&index) {
                        let f = OpenOptions::new().write(true).open(&index).expect("open");
                        f.set_len(m.len() / 2).expect("shorten");
                    }
                }
                _ => {
                    if fs::metadata(&index).map(|m| m.len() > 3).unwrap_or(false) {
                        flip_byte(&index, 3);
                    }
                }
            }
        }
        let log = Log::open(dir.path(), config.clone()).expect("open");
        for o in [0u64, 17, 33, 79] {
            let r = log
                .read(o, eventfabric::ReadLimit::records(1))
                .expect("read");
            assert_eq!(r[0].value, value_for(o, 40), "{damage} index, offset {o}");
        }
        assert_eq!(read_all(&log).expect("read").len(), 80);
        log.close().expect("close");
        // The writer rewrote the sealed indexes: they now match their footers.
        let log = Log::open(dir.path(), config).expect("reopen");
        assert_eq!(
            log.read(61, eventfabric::ReadLimit::records(1))
                .expect("read")[0]
                .offset,
            61
        );
    }
}

#[test]
fn reopen_after_a_clean_close_scans_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = tiny_config();
    config.segment_bytes = 64 << 10;
    let log = filled(dir.path(), &config, 2000);
    log.close().expect("close");
    let log = Log::open(dir.path(), config).expect("reopen");
    assert_eq!(
        log.recovery_report().scanned_bytes,
        0,
        "{:?}",
        log.recovery_report()
    );
    assert_eq!(log.next_offset(), 4000);
}

#[test]
fn a_second_writer_is_refused_with_the_holders_pid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), tiny_config()).expect("open");
    let err = Log::open(dir.path(), tiny_config()).expect_err("second writer");
    match &err {
        Error::Locked { pid, .. } => assert_eq!(*pid, std::process::id()),
        other => panic!("expected Locked, got {other}"),
    }
    assert!(
        err.to_string()
            .contains(&format!("locked by pid {}", std::process::id())),
        "{err}"
    );
    // Readers are welcome.
    let reader = Log::open_read_only(dir.path()).expect("read-only open");
    log.append(b"x").expect("append");
    reader.refresh().expect("refresh");
    assert_eq!(reader.next_offset(), 1);
    assert!(matches!(reader.append(b"no"), Err(Error::ReadOnly { .. })));
    drop(log);
    Log::open(dir.path(), tiny_config()).expect("the lock is released on drop");
}

#[test]
fn time_lookup_handles_out_of_order_timestamps_across_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), tiny_config()).expect("open");
    let ts = [100i64, 90, 300, 250, 200, 500, 400, 450, 700, 600];
    for (i, t) in ts.iter().enumerate() {
        log.append_batch_with_timestamps(&[(*t, value_for(i as u64, 150))])
            .expect("append");
    }
    assert!(log.segments().len() > 2);
    for probe in [0i64, 95, 100, 101, 260, 300, 301, 460, 500, 650, 700] {
        let want = ts.iter().position(|t| *t >= probe).map(|p| p as u64);
        assert_eq!(
            log.offset_for_time(probe).expect("lookup"),
            want,
            "t={probe}"
        );
    }
    assert_eq!(log.offset_for_time(701).expect("lookup"), None);
}

/// The active segment's index file, which a power loss can take with it when
/// its directory entry was never synced.
fn active_index(log: &Log) -> std::path::PathBuf {
    log.segments()
        .last()
        .expect("segment")
        .path
        .with_extension("index")
}

#[test]
fn damage_below_a_checkpoint_is_corruption_even_when_the_index_it_names_is_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = tiny_config();
    config.segment_bytes = 1 << 20;
    config.durability = Durability::Always;
    let log = filled(dir.path(), &config, 6);
    let active = log.segments().last().cloned().expect("segment");
    let index = active_index(&log);
    // The clean close syncs and checkpoints all six batches.
    log.close().expect("close");
    fs::remove_file(&index).expect("remove index");
    // Rot a bit in the last batch: no later batch vouches for it, only the
    // checkpoint does.
    let header = eventfabric::testing::batch::HEADER_LEN as u64;
    let batch_len = header + 2 * (12 + 40 + 4);
    let last_batch = 5 * batch_len;
    flip_byte(&active.path, last_batch + header + 30);
    let Err(err) = Log::open(dir.path(), config.clone()) else {
        panic!("synced data the checkpoint vouches for must not be cut as a torn tail");
    };
    match &err {
        Error::Corrupted {
            path,
            position,
            reason,
        } => {
            assert_eq!(path, &active.path);
            assert_eq!(*position, last_batch);
            assert!(reason.contains("checkpoint"), "{reason}");
        }
        other => panic!("expected corruption, got {other}"),
    }
    // Read-only views are told the same.
    assert!(matches!(
        Log::open_read_only(dir.path()),
        Err(Error::Corrupted { .. })
    ));
    // An explicit tolerant open cuts it and says so.
    config.recovery = RecoveryMode::TruncateAtFirstDamage;
    let log = Log::open(dir.path(), config).expect("tolerant open");
    assert_eq!(log.recovery_report().truncations.len(), 1);
    assert_eq!(read_all(&log).expect("read").len(), 10);
}

#[test]
fn a_lost_active_index_is_rewritten_so_later_reopens_scan_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = tiny_config();
    config.segment_bytes = 64 << 10;
    let log = filled(dir.path(), &config, 200);
    let index = active_index(&log);
    log.close().expect("close");
    fs::remove_file(&index).expect("remove index");
    // The first reopen has to scan: the checkpoint's index part is gone.
    let log = Log::open(dir.path(), config.clone()).expect("reopen");
    assert!(log.recovery_report().scanned_bytes > 0);
    assert_eq!(log.next_offset(), 400);
    log.close().expect("close");
    let log = Log::open(dir.path(), config.clone()).expect("reopen");
    assert_eq!(
        log.recovery_report().scanned_bytes,
        0,
        "{:?}",
        log.recovery_report()
    );
    // Again with appends in between.
    log.close().expect("close");
    fs::remove_file(&index).expect("remove index");
    let log = Log::open(dir.path(), config.clone()).expect("reopen");
    for i in 400..420u64 {
        log.append(&value_for(i, 40)).expect("append");
    }
    log.close().expect("close");
    let log = Log::open(dir.path(), config).expect("reopen");
    assert_eq!(
        log.recovery_report().scanned_bytes,
        0,
        "{:?}",
        log.recovery_report()
    );
    assert_eq!(read_all(&log).expect("read").len(), 420);
}

/// Records every file operation.
#[derive(Debug, Default)]
struct Recorder(std::sync::Mutex<Vec<(eventfabric::testing::IoOp, std::path::PathBuf)>>);

impl eventfabric::testing::FaultInjector for Recorder {
    fn check(
        &self,
        op: eventfabric::testing::IoOp,
        path: &std::path::Path,
        _len: usize,
    ) -> Option<eventfabric::testing::Fault> {
        self.0.lock().expect("lock").push((op, path.to_path_buf()));
        None
    }
}

#[test]
fn a_new_index_file_is_durable_in_its_directory_before_a_checkpoint_names_it() {
    use eventfabric::testing::IoOp;
    let dir = tempfile::tempdir().expect("tempdir");
    let recorder = std::sync::Arc::new(Recorder::default());
    let mut config = tiny_config();
    config.segment_bytes = 1 << 20;
    config.fault_injector = Some(recorder.clone());
    let log = filled(dir.path(), &config, 20);
    log.close().expect("close");
    let ops = recorder.0.lock().expect("lock").clone();
    let created = ops
        .iter()
        .position(|(op, p)| *op == IoOp::Create && p.extension().is_some_and(|e| e == "index"))
        .expect("the active index file is created");
    let named = ops
        .iter()
        .position(|(op, p)| {
            *op == IoOp::Rename && p.file_name().is_some_and(|n| n == "checkpoint.tmp")
        })
        .expect("a checkpoint is written");
    assert!(created < named, "{ops:?}");
    assert!(
        ops[created..named]
            .iter()
            .any(|(op, _)| *op == IoOp::SyncDir),
        "no directory sync between creating the index and the checkpoint naming it: {ops:?}"
    );
}

#[test]
fn a_checkpoint_never_vouches_for_a_segment_recreated_at_a_dropped_base() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = tiny_config();
    let log = filled(dir.path(), &config, 20);
    let segs = log.segments();
    assert!(segs.len() >= 4, "{segs:?}");
    let victim = segs[segs.len() - 2].clone();
    let dropped = segs[segs.len() - 1].clone();
    assert!(dropped.size_bytes > 200, "{dropped:?}");
    // The clean close leaves a checkpoint naming the active segment.
    log.close().expect("close");
    // Rot the footer of a sealed segment: a repair open cuts it there and
    // drops every later segment, the checkpoint's among them.
    let len = fs::metadata(&victim.path).expect("stat").len();
    flip_byte(&victim.path, len - 20);
    let mut repair = config.clone();
    repair.recovery = RecoveryMode::TruncateAtFirstDamage;
    let log = Log::open(dir.path(), repair).expect("repair open");
    assert!(!log.recovery_report().dropped_segments.is_empty());
    assert_eq!(log.next_offset(), victim.next_offset);
    // The next append goes into a new segment at the dropped base.
    log.roll().expect("roll");
    let o = log.next_offset();
    log.append(&value_for(o, 40)).expect("append");
    assert_eq!(
        log.segments().last().expect("segment").base_offset,
        dropped.base_offset
    );
    log.simulate_crash();
    let log = Log::open(dir.path(), config)
        .expect("the new segment is not judged by the old one's checkpoint");
    assert_eq!(log.next_offset(), o + 1);
}
