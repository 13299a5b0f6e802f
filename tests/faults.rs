//! Fault injection through the I/O seam: failed writes and syncs poison the
//! log; a full disk is a clean error; nothing accepted before is lost.
mod common;

use std::sync::Arc;

use common::{read_all, tiny_config, value_for};
use eventfabric::testing::{Fault, FaultPlan, IoOp};
use eventfabric::{Durability, Error, Log};

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

fn try_open_with(
    dir: &std::path::Path,
    plan: FaultPlan,
    durability: Durability,
) -> eventfabric::Result<Log> {
    let mut c = tiny_config();
    c.segment_bytes = 1 << 20;
    // Checkpoints write files too; keep them out of the operation counts.
    c.checkpoint_interval_bytes = 1 << 40;
    c.durability = durability;
    c.fault_injector = Some(Arc::new(plan));
    Log::open(dir, c)
}

fn open_with(dir: &std::path::Path, plan: FaultPlan, durability: Durability) -> Log {
    try_open_with(dir, plan, durability).expect("open")
}

fn reopen_clean(dir: &std::path::Path) -> Log {
    let mut c = tiny_config();
    c.segment_bytes = 1 << 20;
    Log::open(dir, c).expect("reopen")
}

fn append_n(log: &Log, n: u64) {
    for _ in 0..n {
        let o = log.next_offset();
        log.append(&value_for(o, 50)).expect("append");
    }
}

#[test]
fn a_failed_write_is_an_error_and_poisons_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open_with(
        dir.path(),
        FaultPlan::new().fail_nth(IoOp::Write, 11, Fault::Fail(EIO)),
        Durability::Os,
    );
    append_n(&log, 10);
    log.flush().expect("flush");
    let err = log.append(b"x").expect_err("the 11th write fails");
    assert!(matches!(err, Error::Io { op: "write", .. }), "{err}");
    assert!(log.is_poisoned());
    let err = log.append(b"y").expect_err("poisoned");
    assert!(matches!(err, Error::Poisoned { .. }), "{err}");
    assert!(err.to_string().contains("reopen"), "{err}");
    log.simulate_crash();
    let log = reopen_clean(dir.path());
    let got = read_all(&log).expect("read");
    assert_eq!(got.len(), 10);
    for (o, _, v) in got {
        assert_eq!(v, value_for(o, 50));
    }
}

#[test]
fn a_torn_write_leaves_no_trace_after_recovery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open_with(
        dir.path(),
        FaultPlan::new().fail_nth(IoOp::Write, 6, Fault::Torn(30)),
        Durability::Always,
    );
    append_n(&log, 5);
    assert!(log.append(b"torn").is_err());
    assert!(log.is_poisoned());
    log.simulate_crash();
    let log = reopen_clean(dir.path());
    assert_eq!(
        log.recovery_report().truncations.len(),
        1,
        "{:?}",
        log.recovery_report()
    );
    let t = &log.recovery_report().truncations[0];
    assert_eq!(t.first_offset_removed, 5);
    assert_eq!(read_all(&log).expect("read").len(), 5);
    assert_eq!(log.append(b"next").expect("append"), 5);
}

#[test]
fn a_failed_sync_poisons_and_refuses_appends_until_reopened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open_with(
        dir.path(),
        FaultPlan::new().fail_nth(IoOp::Sync, 3, Fault::Fail(EIO)),
        Durability::Always,
    );
    log.append(b"one").expect("first sync ok");
    log.append(b"two").expect("second sync ok");
    let err = log.append(b"three").expect_err("third sync fails");
    assert!(matches!(err, Error::Io { op: "sync", .. }), "{err}");
    assert!(matches!(log.append(b"four"), Err(Error::Poisoned { .. })));
    assert!(matches!(log.flush(), Err(Error::Poisoned { .. })));
    log.simulate_crash();
    let log = reopen_clean(dir.path());
    let got = read_all(&log).expect("read");
    // "three" was written but its sync failed: it may or may not be there,
    // but the two acknowledged records must be.
    assert!(got.len() >= 2);
    assert_eq!(&got[0].2[..], b"one");
    assert_eq!(&got[1].2[..], b"two");
}

#[test]
fn a_full_disk_is_a_clean_error_and_the_log_stays_usable() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Space is reserved in chunks; the 3rd reservation hits a full disk.
    let log = open_with(
        dir.path(),
        FaultPlan::new().fail_nth(IoOp::Allocate, 3, Fault::Fail(ENOSPC)),
        Durability::Always,
    );
    let mut acked = 0u64;
    let err = loop {
        let o = log.next_offset();
        match log.append(&value_for(o, 200)) {
            Ok(_) => acked += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::NoSpace { .. }), "{err}");
    assert!(err.to_string().contains("no space"), "{err}");
    assert!(!log.is_poisoned());
    // The disk has room again: appends continue where they left off.
    let o = log
        .append(&value_for(acked, 200))
        .expect("append after space is freed");
    assert_eq!(o, acked);
    log.close().expect("close");
    let log = reopen_clean(dir.path());
    let got = read_all(&log).expect("read");
    assert_eq!(got.len() as u64, acked + 1);
    for (o, _, v) in got {
        assert_eq!(v, value_for(o, 200));
    }
}

#[test]
fn records_are_refused_whole_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = tiny_config();
    c.max_record_bytes = 100;
    let log = Log::open(dir.path(), c).expect("open");
    log.append(b"ok").expect("small record");
    let err = log
        .append_batch(&[vec![0u8; 10], vec![0u8; 101]])
        .expect_err("too large");
    assert!(
        matches!(
            err,
            Error::RecordTooLarge {
                size: 101,
                max: 100
            }
        ),
        "{err}"
    );
    assert_eq!(log.next_offset(), 1);
    assert!(!log.is_poisoned());
    assert_eq!(log.append(b"still fine").expect("append"), 1);
}

#[test]
fn a_crash_after_any_number_of_operations_keeps_every_synced_record() {
    for crash_after in [1u64, 3, 7, 12, 20, 33, 50, 80, 120] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut acked = Vec::new();
        let Ok(log) = try_open_with(
            dir.path(),
            FaultPlan::new().crash_after(crash_after),
            Durability::Always,
        ) else {
            // The crash came while opening: nothing was acknowledged.
            let log = reopen_clean(dir.path());
            assert!(read_all(&log).expect("read").is_empty());
            continue;
        };
        for i in 0..200u64 {
            let v = value_for(i, 120);
            match log.append(&v) {
                Ok(o) => acked.push((o, v)),
                Err(_) => break,
            }
        }
        log.simulate_crash();
        let log = reopen_clean(dir.path());
        let got = read_all(&log).expect("read");
        assert!(
            got.len() >= acked.len(),
            "crash after {crash_after} ops lost acknowledged records"
        );
        for (o, v) in &acked {
            assert_eq!(&got[*o as usize].2, v);
        }
        assert!(log.append(b"again").is_ok());
    }
}
