//! Smaller guarantees of the public log API.
mod common;

use std::time::Duration;

use common::{read_all, tiny_config, value_for};
use eventfabric::{Log, ReadLimit};

#[test]
fn the_log_handle_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Log>();
    assert_send_sync::<eventfabric::Record>();
    assert_send_sync::<eventfabric::Batch>();
}

#[test]
fn segments_roll_by_age() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = tiny_config();
    c.segment_bytes = 1 << 20;
    c.segment_max_age = Some(Duration::from_millis(20));
    let log = Log::open(dir.path(), c).expect("open");
    log.append(b"first").expect("append");
    log.append(b"still young").expect("append");
    assert_eq!(log.segments().len(), 1);
    std::thread::sleep(Duration::from_millis(40));
    log.append(b"after the age limit").expect("append");
    let segs = log.segments();
    assert_eq!(segs.len(), 2);
    assert!(segs[0].sealed);
    assert_eq!(segs[1].base_offset, 2);
}

#[test]
fn readers_keep_reading_segments_that_retention_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), tiny_config()).expect("open");
    for o in 0..40u64 {
        log.append(&value_for(o, 90)).expect("append");
    }
    let held = log.read(0, ReadLimit::records(5)).expect("read");
    let mut batches = log.batches(0).expect("batches");
    let first = batches.next().expect("a batch").expect("valid");
    let deleted = log.delete_segments_before(30).expect("delete");
    assert!(deleted > 0);
    assert!(log.earliest_offset() > 0);
    // Zero-copy values taken before the deletion still read the old bytes.
    for r in &held {
        assert_eq!(r.value, value_for(r.offset, 90));
    }
    assert_eq!(
        first.records().next().expect("record").value,
        &value_for(0, 90)[..]
    );
    assert!(matches!(
        log.read(0, ReadLimit::records(1)),
        Err(eventfabric::Error::OffsetOutOfRange { .. })
    ));
    assert_eq!(read_all(&log).expect("read").last().expect("last").0, 39);
}

#[test]
fn reads_respect_record_and_byte_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), tiny_config()).expect("open");
    for o in 0..20u64 {
        log.append(&value_for(o, 100)).expect("append");
    }
    assert_eq!(log.read(3, ReadLimit::records(4)).expect("read").len(), 4);
    let by_bytes = log.read(3, ReadLimit::bytes(250)).expect("read");
    assert_eq!(by_bytes.len(), 2);
    assert_eq!(by_bytes[0].offset, 3);
    // At least one record even when it alone exceeds the byte limit.
    assert_eq!(log.read(3, ReadLimit::bytes(10)).expect("read").len(), 1);
    assert!(
        log.read(20, ReadLimit::records(5))
            .expect("read at the end")
            .is_empty()
    );
}

#[test]
fn wait_for_wakes_on_append_without_polling() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = std::sync::Arc::new(Log::open(dir.path(), tiny_config()).expect("open"));
    assert!(!log.wait_for(0, Duration::from_millis(10)));
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            log.append(b"wake up").expect("append");
        })
    };
    let started = std::time::Instant::now();
    assert!(log.wait_for(0, Duration::from_secs(10)));
    assert!(started.elapsed() < Duration::from_secs(5));
    writer.join().expect("writer");
}

#[test]
fn offsets_never_reach_the_top_of_the_range() {
    // A fuzz finding: an empty segment named at u64::MAX, then an append.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(format!("{:020}.log", u64::MAX)), b"").expect("write");
    match Log::open(dir.path(), tiny_config()) {
        Err(eventfabric::Error::Corrupted { reason, .. }) => {
            assert!(reason.contains("top of the offset range"))
        }
        other => panic!(
            "expected corruption, got {:?}",
            other.map(|l| l.next_offset())
        ),
    }
    // A log just below the top refuses the append that would pass it.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(format!("{:020}.log", u64::MAX - 3)), b"").expect("write");
    let log = Log::open(dir.path(), tiny_config()).expect("open");
    assert_eq!(log.append(b"fits").expect("append"), u64::MAX - 3);
    assert!(matches!(
        log.append_batch(&[&b"a"[..], b"b"]),
        Err(eventfabric::Error::Invalid { .. })
    ));
    assert_eq!(log.append(b"last").expect("append"), u64::MAX - 2);
    assert!(log.append(b"one too many").is_err());
    log.close().expect("close");
    let log = Log::open(dir.path(), tiny_config()).expect("reopen");
    assert_eq!(read_all(&log).expect("read").len(), 2);
}

#[test]
fn a_read_only_view_follows_the_writer_through_a_truncate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = tiny_config();
    c.segment_bytes = 1 << 20;
    let log = Log::open(dir.path(), c).expect("open");
    for o in 0..10u64 {
        log.append(&value_for(o, 30)).expect("append");
    }
    let reader = Log::open_read_only(dir.path()).expect("read-only");
    assert_eq!(read_all(&reader).expect("read").len(), 10);
    log.append(b"eleventh").expect("append");
    reader.refresh().expect("refresh");
    assert_eq!(reader.next_offset(), 11);
    // A repair rewrites the segment into a new file and renames it in place.
    log.truncate(5).expect("truncate");
    for o in 5..8u64 {
        log.append(format!("new {o}").as_bytes()).expect("append");
    }
    reader.refresh().expect("refresh");
    let seen = read_all(&reader).expect("read");
    assert_eq!(seen.len(), 8);
    assert_eq!(seen[4].2, value_for(4, 30));
    assert_eq!(seen[7].2, b"new 7");
}

#[test]
fn empty_and_small_logs_reserve_little_disk() {
    let root = tempfile::tempdir().expect("tempdir");
    for p in 0..50 {
        let log = Log::open(
            root.path().join(p.to_string()),
            eventfabric::LogConfig::default(),
        )
        .expect("open");
        if p % 2 == 0 {
            log.append(b"one small record").expect("append");
        }
        let seg = log.segments().last().expect("segment").path.clone();
        let reserved = std::fs::metadata(&seg).expect("stat").len();
        // Default segments are 256 MiB; space is reserved in steps from 64 KiB.
        assert!(
            reserved <= 64 << 10,
            "partition {p} reserved {reserved} bytes"
        );
        log.close().expect("close");
        let after_close = std::fs::metadata(&seg).expect("stat").len();
        assert!(
            after_close <= 4096,
            "partition {p} keeps {after_close} bytes after close"
        );
    }
}

#[test]
fn group_commit_syncs_within_its_delay_without_a_flush() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = tiny_config();
    c.segment_bytes = 1 << 20;
    c.checkpoint_interval_bytes = 1 << 30;
    c.durability = eventfabric::Durability::GroupCommit {
        max_delay: Duration::from_millis(20),
        max_bytes: 1 << 20,
    };
    let log = Log::open(dir.path(), c).expect("open");
    log.append(b"soon durable").expect("append");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while log.durable_offset() < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the flusher never synced"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(log.durable_offset(), log.next_offset());
}
