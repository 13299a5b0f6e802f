//! The partition log at its seams: a truncate crossing segments interrupted
//! at every file operation, a truncate racing a pending sync, read-only views
//! after a truncate and read-only views meeting damage.
mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::{read_all, tiny_config, value_for};
use eventfabric::testing::{Fault, FaultInjector, IoOp};
use eventfabric::{Durability, Error, Log};

const EIO: i32 = 5;
/// Longest any step of these tests may block before it counts as a hang.
const HANG: Duration = Duration::from_secs(10);

/// A process crash in the middle of an operation: once armed, the first
/// `after` file operations happen and every later one fails (as if the
/// process had died right there).
#[derive(Debug)]
struct CrashAt {
    armed: AtomicBool,
    seen: AtomicU64,
    after: u64,
}

impl FaultInjector for CrashAt {
    fn check(&self, _op: IoOp, _path: &Path, _len: usize) -> Option<Fault> {
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        let n = self.seen.fetch_add(1, Ordering::AcqRel) + 1;
        (n > self.after).then_some(Fault::Fail(EIO))
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

/// Records as (offset, value).
fn contents(log: &Log) -> Vec<(u64, Vec<u8>)> {
    read_all(log)
        .expect("read")
        .into_iter()
        .map(|(o, _, v)| (o, v))
        .collect()
}

#[test]
fn a_truncate_across_segments_interrupted_at_any_file_operation_leaves_a_log_that_opens() {
    let template = tempfile::tempdir().expect("tempdir");
    let log = Log::open(template.path(), tiny_config()).expect("open");
    // Batches of three records, so the cut falls inside a batch.
    for b in 0..30u64 {
        let o = b * 3;
        log.append_batch(&[value_for(o, 50), value_for(o + 1, 50), value_for(o + 2, 50)])
            .expect("append");
    }
    let segments = log.segments();
    assert!(segments.len() >= 6, "{segments:?}");
    // Inside the second segment, with several segments after it.
    let cut = segments[1].base_offset + 4;
    assert!(cut < segments[1].next_offset);
    let before = contents(&log);
    log.close().expect("close");

    let mut completed = false;
    for after in 0..200u64 {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(template.path(), dir.path());
        let plan = Arc::new(CrashAt {
            armed: AtomicBool::new(false),
            seen: AtomicU64::new(0),
            after,
        });
        let mut config = tiny_config();
        config.fault_injector = Some(plan.clone());
        let log = Log::open(dir.path(), config).expect("open");
        plan.armed.store(true, Ordering::Release);
        let result = log.truncate(cut);
        plan.armed.store(false, Ordering::Release);
        log.simulate_crash();

        let log = Log::open(dir.path(), tiny_config()).unwrap_or_else(|e| {
            panic!(
                "a truncate cut after {after} file operations leaves a log that does not open: {e}"
            )
        });
        let got = contents(&log);
        assert!(
            got.len() as u64 >= cut,
            "crash after {after} operations lost records below the cut"
        );
        // Below the cut: exactly what was there. At and above: a prefix of
        // what was there (the truncate not done yet, or partly done), never
        // anything else.
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r, &before[i], "crash after {after} operations, record {i}");
        }
        if result.is_ok() {
            assert_eq!(got.len() as u64, cut, "a completed truncate kept too much");
        }
        let o = log.append(b"after").expect("append after recovery");
        assert_eq!(o, got.len() as u64);
        log.close().expect("close");
        if result.is_ok() {
            completed = true;
            break;
        }
    }
    assert!(
        completed,
        "the truncate never completed within 200 operations"
    );
}

/// Blocks the first sync of a `.log` file after it is armed until released.
#[derive(Debug, Default)]
struct SyncGate {
    armed: AtomicBool,
    /// (a sync is held, the held sync may go on)
    state: Mutex<(bool, bool)>,
    cv: Condvar,
}

impl SyncGate {
    fn wait_held(&self) {
        let deadline = Instant::now() + HANG;
        let mut s = self.state.lock().expect("lock");
        while !s.0 {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no sync reached the gate");
            s = self.cv.wait_timeout(s, left).expect("lock").0;
        }
    }

    fn release(&self) {
        self.state.lock().expect("lock").1 = true;
        self.cv.notify_all();
    }
}

impl FaultInjector for SyncGate {
    fn check(&self, op: IoOp, path: &Path, _len: usize) -> Option<Fault> {
        let is_segment = path.extension().is_some_and(|e| e == "log");
        if op == IoOp::Sync && is_segment && self.armed.swap(false, Ordering::AcqRel) {
            let mut s = self.state.lock().expect("lock");
            s.0 = true;
            self.cv.notify_all();
            while !s.1 {
                s = self.cv.wait(s).expect("lock");
            }
        }
        None
    }
}

#[test]
fn a_truncate_releases_every_thread_waiting_for_a_sync_and_the_log_keeps_syncing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = Arc::new(SyncGate::default());
    let mut config = tiny_config();
    config.segment_bytes = 1 << 20;
    config.checkpoint_interval_bytes = 1 << 40;
    config.durability = Durability::Always;
    config.fault_injector = Some(gate.clone());
    let log = Arc::new(Log::open(dir.path(), config).expect("open"));
    for i in 0..50u64 {
        log.append(&value_for(i, 40)).expect("append");
    }
    assert_eq!(log.durable_offset(), 50);
    gate.armed.store(true, Ordering::Release);
    // A: its sync (covering offsets below 51) is held at the gate.
    let (a_done, a_result) = mpsc::channel();
    let a = log.clone();
    std::thread::spawn(move || {
        let _ = a_done.send(a.append(&value_for(50, 40)));
    });
    gate.wait_held();
    // B: waits for offsets below 52 to become durable, behind A's sync.
    let (b_done, b_result) = mpsc::channel();
    let b = log.clone();
    std::thread::spawn(move || {
        let _ = b_done.send(b.append(&value_for(51, 40)));
    });
    let deadline = Instant::now() + HANG;
    while log.next_offset() < 52 {
        assert!(Instant::now() < deadline, "the second append never landed");
        std::thread::sleep(Duration::from_millis(1));
    }
    // The repair removes both pending records while their sync is in flight.
    log.truncate(30).expect("truncate");
    gate.release();
    a_result
        .recv_timeout(HANG)
        .expect("the appender whose sync was in flight returns")
        .expect("append");
    b_result
        .recv_timeout(HANG)
        .expect("an appender waiting for a sync returns once a truncate removed its record")
        .expect("append");
    assert_eq!(log.next_offset(), 30);
    assert!(
        log.durable_offset() <= log.next_offset(),
        "durable offset {} claims offsets the log does not hold (next {})",
        log.durable_offset(),
        log.next_offset()
    );
    // Appends after the truncate are synced before they are acknowledged.
    let (c_done, c_result) = mpsc::channel();
    let c = log.clone();
    std::thread::spawn(move || {
        let _ = c_done.send(c.append(&value_for(30, 40)));
    });
    assert_eq!(
        c_result
            .recv_timeout(HANG)
            .expect("an append after the truncate returns")
            .expect("append"),
        30
    );
    assert_eq!(log.durable_offset(), 31);
    let got = contents(&log);
    assert_eq!(got.len(), 31);
    for (o, v) in got {
        assert_eq!(v, value_for(o, 40));
    }
}

#[test]
fn a_read_only_view_never_serves_records_a_truncate_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), tiny_config()).expect("open");
    for i in 0..40u64 {
        log.append(&value_for(i, 40)).expect("append");
    }
    let reader = Log::open_read_only(dir.path()).expect("read-only open");
    // Reading every record maps every sealed segment of the view.
    assert_eq!(contents(&reader), contents(&log));
    let segments = log.segments();
    assert!(segments.len() >= 4, "{segments:?}");
    let cut = segments[1].base_offset + 2;
    log.truncate(cut).expect("truncate");
    // Other records at the same offsets, rolling at the same places.
    for o in cut..40 {
        log.append(&value_for(o + 1000, 40)).expect("append");
    }
    assert_eq!(log.segments()[1].base_offset, segments[1].base_offset);
    assert!(log.segments()[1].sealed);
    reader.refresh().expect("refresh");
    assert_eq!(contents(&reader), contents(&log));
    // A view opened afresh agrees.
    let fresh = Log::open_read_only(dir.path()).expect("read-only open");
    assert_eq!(contents(&fresh), contents(&log));
}

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

/// Bytes of one batch holding one record of `len` bytes.
/// A batch header's length as the log writes it today.
const HEADER: u64 = eventfabric::testing::batch::HEADER_LEN as u64;

fn batch_len(len: u64) -> u64 {
    HEADER + 16 + len
}

#[test]
fn a_read_only_view_reports_damaged_durable_data_with_file_and_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = tiny_config();
    config.segment_bytes = 1 << 20;
    config.durability = Durability::Always;
    // No checkpoint: only the later batches prove the damaged one was durable.
    config.checkpoint_interval_bytes = 1 << 40;
    let log = Log::open(dir.path(), config).expect("open");
    for i in 0..6u64 {
        log.append(&value_for(i, 40)).expect("append");
    }
    let active = log.segments().last().cloned().expect("segment");
    let damaged_at = batch_len(40);
    flip_byte(&active.path, damaged_at + HEADER + 20);
    // The writer's view is unaffected until it reads the batch; a view
    // opened now meets the damage.
    let err = Log::open_read_only(dir.path()).expect_err("damage must not end the view silently");
    match &err {
        Error::Corrupted {
            path,
            position,
            reason,
        } => {
            assert_eq!(path, &active.path);
            assert_eq!(*position, damaged_at);
            assert!(reason.contains("durable"), "{reason}");
        }
        other => panic!("expected corruption, got {other}"),
    }
    assert!(
        err.to_string().contains("00000000000000000000.log"),
        "{err}"
    );
    log.simulate_crash();
}

#[test]
fn a_read_only_view_refreshing_into_damage_reports_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = tiny_config();
    config.segment_bytes = 1 << 20;
    config.durability = Durability::Always;
    config.checkpoint_interval_bytes = 1 << 40;
    let log = Log::open(dir.path(), config).expect("open");
    log.append(&value_for(0, 40)).expect("append");
    let reader = Log::open_read_only(dir.path()).expect("read-only open");
    assert_eq!(reader.next_offset(), 1);
    for i in 1..6u64 {
        log.append(&value_for(i, 40)).expect("append");
    }
    let active = log.segments().last().cloned().expect("segment");
    // The second batch rots after it was synced; later batches vouch for it.
    let damaged_at = batch_len(40);
    flip_byte(&active.path, damaged_at + HEADER + 20);
    let err = reader.refresh().expect_err("refresh meets the damage");
    match &err {
        Error::Corrupted { path, position, .. } => {
            assert_eq!(path, &active.path);
            assert_eq!(*position, damaged_at);
        }
        other => panic!("expected corruption, got {other}"),
    }
    // Restored, the view carries on.
    flip_byte(&active.path, damaged_at + HEADER + 20);
    reader.refresh().expect("refresh");
    assert_eq!(reader.next_offset(), 6);
    // A torn tail (a batch still being written, or cut by a crash) is not
    // damage: nothing vouches for it, and the view ends before it.
    log.simulate_crash();
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&active.path)
        .expect("open");
    let mut head = vec![0u8; 60];
    f.read_exact_at(&mut head, 0).expect("read");
    f.write_all_at(&head, 6 * batch_len(40)).expect("write");
    reader
        .refresh()
        .expect("a torn tail is where the view ends");
    assert_eq!(reader.next_offset(), 6);
    let fresh = Log::open_read_only(dir.path()).expect("a torn tail is where the view ends");
    assert_eq!(fresh.next_offset(), 6);
}

#[test]
fn a_read_only_view_tailing_a_live_writer_never_mistakes_a_batch_being_written_for_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = tiny_config();
    config.segment_bytes = 256 << 10;
    config.checkpoint_interval_bytes = 8 << 10;
    config.durability = Durability::GroupCommit {
        max_delay: Duration::from_micros(200),
        max_bytes: 4 << 10,
    };
    let log = Arc::new(Log::open(dir.path(), config).expect("open"));
    log.append(&value_for(0, 300)).expect("append");
    let reader = Log::open_read_only(dir.path()).expect("read-only open");
    let writer = log.clone();
    let done = Arc::new(AtomicBool::new(false));
    let stop = done.clone();
    let appender = std::thread::spawn(move || {
        for o in 1..6000u64 {
            writer.append(&value_for(o, 300)).expect("append");
        }
        stop.store(true, Ordering::Release);
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut refreshes = 0u64;
    while !done.load(Ordering::Acquire) {
        assert!(Instant::now() < deadline, "the writer never finished");
        reader
            .refresh()
            .unwrap_or_else(|e| panic!("refresh {refreshes} while the writer appends: {e}"));
        refreshes += 1;
    }
    appender.join().expect("appender");
    log.flush().expect("flush");
    reader.refresh().expect("refresh");
    assert_eq!(reader.next_offset(), 6000);
    let got = contents(&reader);
    assert_eq!(got.len(), 6000);
    for (o, v) in got {
        assert_eq!(v, value_for(o, 300));
    }
}

/// Records every file operation.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<(IoOp, std::path::PathBuf)>>);

impl FaultInjector for Recorder {
    fn check(&self, op: IoOp, path: &Path, _len: usize) -> Option<Fault> {
        self.0.lock().expect("lock").push((op, path.to_path_buf()));
        None
    }
}

#[test]
fn each_step_of_a_truncate_is_durable_before_the_next_so_a_power_loss_cannot_reorder_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let recorder = Arc::new(Recorder::default());
    let mut config = tiny_config();
    config.fault_injector = Some(recorder.clone());
    let log = Log::open(dir.path(), config).expect("open");
    for o in 0..60u64 {
        log.append(&value_for(o, 50)).expect("append");
    }
    let segments = log.segments();
    assert!(segments.len() >= 5, "{segments:?}");
    recorder.0.lock().expect("lock").clear();
    log.truncate(segments[1].base_offset + 1).expect("truncate");
    let ops = recorder.0.lock().expect("lock").clone();
    let is_segment = |p: &Path| p.extension().is_some_and(|e| e == "log");
    // A directory change not followed by a directory sync may be undone by a
    // power loss, in any order with later ones: between two changes that
    // must stay in order (a segment deleted, the prefix renamed into place)
    // there must be a directory sync.
    let changes: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, (op, p))| {
            (*op == IoOp::Remove && is_segment(p))
                || (*op == IoOp::Rename && p.to_string_lossy().ends_with(".log.tmp"))
        })
        .map(|(i, _)| i)
        .collect();
    assert!(changes.len() >= 4, "{ops:?}");
    for pair in changes.windows(2) {
        assert!(
            ops[pair[0]..pair[1]]
                .iter()
                .any(|(op, _)| *op == IoOp::SyncDir),
            "no directory sync between {:?} and {:?}: {ops:?}",
            ops[pair[0]],
            ops[pair[1]]
        );
    }
    // And the last change is durable before truncate returns.
    let last = *changes.last().expect("changes");
    assert!(ops[last..].iter().any(|(op, _)| *op == IoOp::SyncDir));
    log.close().expect("close");
}
