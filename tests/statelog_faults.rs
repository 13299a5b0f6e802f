//! Fault injection into the consumer-side state logs (queue state files and
//! group cursor logs) at every file operation they make: each injected
//! failure is an error returned to the caller, nothing acknowledged before
//! or after it is lost once the state is reopened, and a handle whose sync
//! failed refuses to go on as if it had not. Also: the reserved bytes of a
//! cursor record are checked on read.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventfabric::testing::{Fault, FaultInjector, IoOp};
use eventfabric::{CommitDurability, ConsumerConfig, ResetTo};
use eventfabric::{Draft, Fabric, FabricConfig, FsyncPolicy, QueueConfig, TopicConfig};
use serde_json::json;

const TOPIC: &str = "billing.domain.v1";
const EVENTS: u64 = 10;
const EIO: i32 = 5;
/// Every kind of operation a state log performs through the seam.
const OPS: [IoOp; 7] = [
    IoOp::Create,
    IoOp::Write,
    IoOp::Sync,
    IoOp::SyncDir,
    IoOp::SetLen,
    IoOp::Rename,
    IoOp::Remove,
];
/// A bound on the operations of one kind a workload performs.
const MAX_NTH: u64 = 400;

/// Fails the `nth` operation of kind `op`, once, and remembers that it did.
#[derive(Debug)]
struct FailOnce {
    op: IoOp,
    nth: u64,
    fault: Fault,
    seen: AtomicU64,
    fired: AtomicBool,
    /// The file the fault hit.
    hit: Mutex<Option<PathBuf>>,
    /// Per file, its length at its last completed sync (what a power loss
    /// keeps); a rename carries it to the new name.
    durable: Mutex<HashMap<PathBuf, u64>>,
}

impl FailOnce {
    fn new(op: IoOp, nth: u64, fault: Fault) -> Arc<FailOnce> {
        Arc::new(FailOnce {
            op,
            nth,
            fault,
            seen: AtomicU64::new(0),
            fired: AtomicBool::new(false),
            hit: Mutex::new(None),
            durable: Mutex::new(HashMap::new()),
        })
    }

    fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    /// Records what an operation about to succeed makes durable.
    fn track(&self, op: IoOp, path: &Path) {
        let mut durable = self.durable.lock().unwrap();
        match op {
            // Everything written before the sync is in the file now.
            IoOp::Sync => {
                let len = std::fs::metadata(path).map_or(0, |m| m.len());
                durable.insert(path.to_path_buf(), len);
            }
            // Only compactions rename (`<log>.tmp` over `<log>`).
            IoOp::Rename => {
                let to = path.with_extension("");
                let len = durable.remove(path).unwrap_or(0);
                durable.insert(to, len);
            }
            _ => {}
        }
    }

    /// Simulates a power loss on the state log `path`: everything after its
    /// last completed sync is zeroed (the file keeps its length, as when
    /// the size reached the disk but the data did not).
    fn lose_unsynced(&self, path: &Path) {
        let Ok(mut bytes) = std::fs::read(path) else {
            return;
        };
        let keep = self.durable.lock().unwrap().get(path).copied();
        // A log this handle never synced was created synced (header).
        let keep = keep.unwrap_or(16).min(bytes.len() as u64) as usize;
        bytes[keep..].fill(0);
        std::fs::write(path, &bytes).unwrap();
    }

    /// Whether the fault was a failed sync of a state log itself (not of
    /// the temporary file a compaction writes, which it then deletes).
    fn failed_log_sync(&self) -> bool {
        self.op == IoOp::Sync
            && self
                .hit
                .lock()
                .unwrap()
                .as_ref()
                .is_some_and(|p| p.extension().is_none_or(|e| e != "tmp"))
    }
}

impl FaultInjector for FailOnce {
    fn check(&self, op: IoOp, path: &Path, _len: usize) -> Option<Fault> {
        let hit = op == self.op && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.nth;
        let fault = hit.then(|| {
            *self.hit.lock().unwrap() = Some(path.to_path_buf());
            self.fired.store(true, Ordering::SeqCst);
            self.fault
        });
        if fault.is_none() {
            self.track(op, path);
        }
        fault
    }
}

/// The faults tried for an operation kind.
fn faults_for(op: IoOp) -> Vec<Fault> {
    match op {
        IoOp::Write => vec![Fault::Fail(EIO), Fault::Torn(9)],
        _ => vec![Fault::Fail(EIO)],
    }
}

fn fabric_with_events(dir: &Path) -> Fabric {
    let fabric = Fabric::open(dir, FabricConfig::with_fsync(FsyncPolicy::Os)).unwrap();
    fabric
        .create_topic(TOPIC, TopicConfig::with_partitions(1))
        .unwrap();
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    for i in 0..EVENTS {
        producer
            .send(Draft::new(
                "billing.invoice.issued",
                Some("t-1"),
                json!({ "i": i }),
            ))
            .unwrap();
    }
    fabric.flush().unwrap();
    fabric
}

fn queue_config() -> QueueConfig {
    let mut c = QueueConfig::default();
    // Sync after every operation and compact all the time, so the workload
    // passes through every file operation the state log has.
    c.sync_interval = Duration::ZERO;
    c.compact_after_bytes = 160;
    c.visibility_timeout = Duration::from_secs(600);
    c
}

/// Fetches and acks, one message at a time, through `fault`; returns the
/// offsets whose ack returned Ok, and those whose ack returned an error
/// (which may or may not have been recorded: the failure may have come
/// after the write, from the sync or a compaction).
fn queue_workload(fabric: &Fabric, fault: &FailOnce, what: &str) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let mut acked = BTreeSet::new();
    let mut uncertain = BTreeSet::new();
    let queue = match fabric.queue("q", TOPIC, queue_config()) {
        Ok(q) => q,
        Err(e) => {
            assert!(fault.fired(), "{what}: open failed without a fault: {e}");
            return (acked, uncertain);
        }
    };
    let mut sync_failed = false;
    for _ in 0..EVENTS {
        let fired_before = fault.fired();
        let result: Result<(), String> = queue
            .try_fetch(1)
            .and_then(|messages| {
                messages.iter().try_for_each(|m| {
                    if let Err(e) = queue.ack(m) {
                        uncertain.insert(m.offset);
                        return Err(e);
                    }
                    acked.insert(m.offset);
                    Ok(())
                })
            })
            .map_err(|e| e.to_string());
        if let Err(e) = &result {
            assert!(fault.fired(), "{what}: failed without a fault: {e}");
        }
        if fault.fired() && !fired_before && fault.failed_log_sync() {
            assert!(result.is_err(), "{what}: a failed sync was not reported");
            sync_failed = true;
        }
        if sync_failed {
            assert!(
                queue.flush().is_err(),
                "{what}: the queue state claims durability after a failed sync"
            );
        }
    }
    (acked, uncertain)
}

/// After a failure anywhere in the queue's state log, and then a power loss
/// (everything after the last completed sync zeroed), a clean reopen never
/// redelivers a message whose ack returned Ok (with a sync after every
/// operation, an Ok ack is a durable one) and still delivers every other.
#[test]
fn a_queue_loses_no_acknowledged_ack_and_no_message_at_any_state_file_fault() {
    let mut runs = 0;
    for op in OPS {
        for fault_kind in faults_for(op) {
            for nth in 1..=MAX_NTH {
                let what = format!("{op:?} #{nth} {fault_kind:?}");
                let dir = tempfile::tempdir().unwrap();
                let fabric = fabric_with_events(dir.path());
                let fault = FailOnce::new(op, nth, fault_kind);
                fabric.set_state_fault_injector(Some(fault.clone()));
                let (acked, uncertain) = queue_workload(&fabric, &fault, &what);
                fabric.set_state_fault_injector(None);
                // Then the power fails: only what a completed sync made
                // durable is left of the state file.
                fault.lose_unsynced(&dir.path().join("queues/q/state"));
                let queue = fabric
                    .queue("q", TOPIC, queue_config())
                    .unwrap_or_else(|e| panic!("{what}: reopen failed: {e}"));
                let mut delivered = BTreeSet::new();
                loop {
                    let got = queue.try_fetch(8).unwrap();
                    if got.is_empty() {
                        break;
                    }
                    for m in &got {
                        assert!(
                            !acked.contains(&m.offset),
                            "{what}: offset {} was acked, and is delivered again",
                            m.offset
                        );
                        delivered.insert(m.offset);
                    }
                    queue.ack_all(&got).unwrap();
                }
                let lost: Vec<u64> = (0..EVENTS)
                    .filter(|o| !acked.contains(o) && !delivered.contains(o))
                    .filter(|o| !uncertain.contains(o))
                    .collect();
                assert!(
                    lost.is_empty(),
                    "{what}: never acked, never redelivered: {lost:?}"
                );
                runs += 1;
                if !fault.fired() {
                    break; // past the last operation of this kind
                }
            }
        }
    }
    assert!(runs > 30, "only {runs} runs: the workload does little I/O");
}

fn consumer_config() -> ConsumerConfig {
    let mut c = ConsumerConfig::default();
    c.auto_commit_interval = None;
    c.commit_durability = CommitDurability::Sync;
    c.max_poll_records = 3;
    c
}

/// The committed position of partition 0 as a fresh reader of the cursor
/// log sees it (0 when nothing was committed).
fn committed(fabric: &Fabric) -> u64 {
    fabric
        .describe_group("g")
        .unwrap()
        .iter()
        .find(|s| s.topic == TOPIC)
        .and_then(|s| s.partitions.first().and_then(|p| p.committed))
        .unwrap_or(0)
}

/// Polls and commits, resets, polls and commits again, through `fault`;
/// returns the positions the cursor log may durably hold: the last
/// acknowledged one and any attempted after it.
fn group_workload(fabric: &Fabric, fault: &FailOnce, what: &str) -> BTreeSet<u64> {
    let mut possible = BTreeSet::from([0]);
    let settle = |possible: &mut BTreeSet<u64>, to: u64, ok: bool| {
        if ok {
            possible.clear();
        }
        possible.insert(to);
    };
    for round in 0..2 {
        let mut consumer = match fabric.consumer("g", TOPIC, consumer_config()) {
            Ok(c) => c,
            Err(e) => {
                assert!(fault.fired(), "{what}: join failed without a fault: {e}");
                continue;
            }
        };
        let mut sync_failed = false;
        for _ in 0..4 {
            let fired_before = fault.fired();
            let polled = match consumer.poll(Duration::ZERO) {
                Ok(p) => p,
                Err(e) => {
                    assert!(fault.fired(), "{what}: poll failed without a fault: {e}");
                    continue;
                }
            };
            let Some(last) = polled.last() else { continue };
            let to = last.offset + 1;
            let result = consumer.commit();
            if let Err(e) = &result {
                assert!(fault.fired(), "{what}: commit failed without a fault: {e}");
            }
            if sync_failed {
                assert!(
                    result.is_err(),
                    "{what}: a commit was acknowledged after a failed sync"
                );
            }
            if fault.fired() && !fired_before && fault.failed_log_sync() {
                assert!(result.is_err(), "{what}: a failed sync was not reported");
                sync_failed = true;
            }
            settle(&mut possible, to, result.is_ok());
        }
        drop(consumer);
        if round == 0 {
            // A reset rewrites the cursor log (a compaction).
            let to = 2;
            let result = fabric.reset_group("g", TOPIC, ResetTo::Offset(to));
            if let Err(e) = &result {
                assert!(fault.fired(), "{what}: reset failed without a fault: {e}");
            }
            settle(&mut possible, to, result.is_ok());
        }
    }
    possible
}

/// After a failure anywhere in a group's cursor log, and then a power loss
/// (everything after the last completed sync zeroed), a clean reopen finds
/// the last acknowledged commit (or one attempted after it), never an older
/// one.
#[test]
fn a_group_keeps_its_last_acknowledged_commit_at_any_cursor_log_fault() {
    let mut runs = 0;
    for op in OPS {
        for fault_kind in faults_for(op) {
            for nth in 1..=MAX_NTH {
                let what = format!("{op:?} #{nth} {fault_kind:?}");
                let dir = tempfile::tempdir().unwrap();
                let fabric = fabric_with_events(dir.path());
                let fault = FailOnce::new(op, nth, fault_kind);
                fabric.set_state_fault_injector(Some(fault.clone()));
                let possible = group_workload(&fabric, &fault, &what);
                fabric.set_state_fault_injector(None);
                // Then the power fails (Sync commits: an Ok one is durable).
                let cursors = dir.path().join("groups/g").join(format!("{TOPIC}.cursors"));
                fault.lose_unsynced(&cursors);
                // A clean join must work and start where the log says.
                let mut consumer = fabric
                    .consumer("g", TOPIC, consumer_config())
                    .unwrap_or_else(|e| panic!("{what}: rejoin failed: {e}"));
                let at = committed(&fabric);
                assert!(
                    possible.contains(&at),
                    "{what}: committed {at}, expected one of {possible:?}"
                );
                let first = consumer.poll(Duration::ZERO).unwrap();
                assert_eq!(first.first().map_or(EVENTS, |e| e.offset), at, "{what}");
                runs += 1;
                if !fault.fired() {
                    break;
                }
            }
        }
    }
    assert!(runs > 20, "only {runs} runs: the workload does little I/O");
}

/// A state-log file holding `payloads` (container layout: docs/FORMAT.md,
/// "State logs"), each record with a valid CRC.
fn state_log_bytes(payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"EFSL".to_vec();
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    for payload in payloads {
        let mut header = b"EFSR".to_vec();
        header.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        header.extend_from_slice(&0u64.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        crc.update(payload);
        header.extend_from_slice(&crc.finalize().to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(payload);
    }
    out
}

/// The reserved bytes of a cursor record are zero; a record (with a valid
/// checksum) that sets them is a newer layout or a writer bug, and the
/// group refuses to start from it instead of guessing.
#[test]
fn a_cursor_record_with_non_zero_reserved_bytes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = fabric_with_events(dir.path());
    let record = |reserved: [u8; 2]| {
        let mut r = vec![1, 1];
        r.extend_from_slice(&reserved);
        r.extend_from_slice(&0u64.to_le_bytes()); // expired
        r.extend_from_slice(&1u32.to_le_bytes()); // one position
        r.extend_from_slice(&0u32.to_le_bytes());
        r.extend_from_slice(&5u64.to_le_bytes());
        r.extend_from_slice(&0u32.to_le_bytes()); // no ids
        r
    };
    let path = dir.path().join("groups/g").join(format!("{TOPIC}.cursors"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, state_log_bytes(&[record([0, 0])])).unwrap();
    assert_eq!(committed(&fabric), 5, "the well-formed record is read");
    std::fs::write(&path, state_log_bytes(&[record([0, 1])])).unwrap();
    match fabric.consumer("g", TOPIC, consumer_config()) {
        Err(eventfabric::Error::Corrupted { reason, .. }) => {
            assert!(reason.contains("reserved"), "{reason}")
        }
        Err(other) => panic!("expected corruption, got {other}"),
        Ok(_) => panic!("a cursor record with reserved bytes set was accepted"),
    }
}
