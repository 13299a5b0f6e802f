//! Durable cursors of one consumer group on one topic.
//!
//! Owns the cursor-log record layout (`docs/FORMAT.md`, "Consumer group
//! cursor logs"): the state log `<data>/groups/<group>/<topic>.cursors`
//! holding commit records (committed next offsets per partition, the
//! group's expired-event count and the event ids processed since the last
//! commit) and compaction snapshots. It keeps the committed state in memory
//! and appends one record per commit, so a cursor and the ids it covers
//! become durable together. It never decides what to commit or when.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::consume::idempotent::ProcessedWindow;
use crate::error::{Error, Result};
use crate::storage::io::Io;
use crate::storage::le;
use crate::storage::statelog::StateLog;

/// Directory under the data directory holding one directory per group.
pub(crate) const GROUPS_DIR: &str = "groups";
/// Suffix of a cursor log's file name (after the topic name).
pub(crate) const CURSORS_SUFFIX: &str = ".cursors";
/// Version of the cursor-log record payload.
pub(crate) const CURSOR_RECORD_VERSION: u8 = 1;
const KIND_COMMIT: u8 = 1;
const KIND_SNAPSHOT: u8 = 2;
const HEADER_LEN: usize = 16;
const POSITION_LEN: usize = 12;
const ID_LEN: usize = 32;
/// A log smaller than this is never compacted.
const MIN_COMPACT_BYTES: u64 = 1 << 20;

/// What a cursor log says, record after record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CursorState {
    /// Next offset to deliver, per partition that ever committed.
    pub(crate) committed: BTreeMap<u32, u64>,
    /// Events skipped because their TTL had passed (group total).
    pub(crate) expired: u64,
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CursorRecord {
    snapshot: bool,
    expired: u64,
    positions: Vec<(u32, u64)>,
    ids: Vec<(Uuid, u64, i64)>,
}

fn encode(record: &CursorRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        HEADER_LEN + 8 + record.positions.len() * POSITION_LEN + record.ids.len() * ID_LEN,
    );
    out.push(CURSOR_RECORD_VERSION);
    out.push(if record.snapshot {
        KIND_SNAPSHOT
    } else {
        KIND_COMMIT
    });
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&record.expired.to_le_bytes());
    out.extend_from_slice(&(record.positions.len() as u32).to_le_bytes());
    for &(p, next) in &record.positions {
        out.extend_from_slice(&p.to_le_bytes());
        out.extend_from_slice(&next.to_le_bytes());
    }
    out.extend_from_slice(&(record.ids.len() as u32).to_le_bytes());
    for &(id, version, at) in &record.ids {
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&at.to_le_bytes());
    }
    out
}

fn decode(bytes: &[u8], path: &Path, index: usize) -> Result<CursorRecord> {
    let bad = |reason: String| {
        Error::corrupted(
            path,
            0,
            format!("cursor record {index} (counting from 0 after the file header): {reason}"),
        )
    };
    if bytes.len() < HEADER_LEN {
        return Err(bad(format!(
            "{} bytes, shorter than its header",
            bytes.len()
        )));
    }
    // Fields in order; a short one is corruption naming its byte, never a 0.
    let mut r = le::LeReader::new(bytes, path, 0);
    let version = r.u8("cursor record version")?;
    if version != CURSOR_RECORD_VERSION {
        return Err(bad(format!(
            "record version {version}; this build reads version {CURSOR_RECORD_VERSION}"
        )));
    }
    let snapshot = match r.u8("cursor record kind")? {
        KIND_COMMIT => false,
        KIND_SNAPSHOT => true,
        other => return Err(bad(format!("unknown record kind {other}"))),
    };
    if r.u16("cursor record reserved bytes")? != 0 {
        return Err(bad("reserved bytes 2..4 are not zero".into()));
    }
    let expired = r.u64("cursor record expired count")?;
    let n = r.u32("cursor record position count")? as usize;
    debug_assert_eq!(r.position(), HEADER_LEN as u64);
    let ids_at = HEADER_LEN + n.saturating_mul(POSITION_LEN);
    let m =
        le::u32_at(bytes, ids_at).ok_or_else(|| bad("truncated position list".into()))? as usize;
    let end = (ids_at + 4).saturating_add(m.saturating_mul(ID_LEN));
    if end != bytes.len() {
        return Err(bad(format!(
            "{} bytes, but {n} positions and {m} ids need {end}",
            bytes.len()
        )));
    }
    // The lengths match the counts (checked just above): every read below
    // succeeds, and none allocates past what the record holds.
    let positions = (0..n)
        .map(|_| Ok((r.u32("committed partition")?, r.u64("committed offset")?)))
        .collect::<Result<_>>()?;
    r.u32("processed id count")?;
    let ids = (0..m)
        .map(|_| {
            let id = Uuid::from_slice(r.bytes(16, "processed event id")?)
                .map_err(|e| r.corrupted(format!("processed event id: {e}")))?;
            Ok((
                id,
                r.u64("processed id version")?,
                r.i64("processed id time")?,
            ))
        })
        .collect::<Result<_>>()?;
    Ok(CursorRecord {
        snapshot,
        expired,
        positions,
        ids,
    })
}

/// [`apply_all`] for the fuzz target: how many partitions end up committed.
#[cfg(any(test, feature = "failpoints"))]
pub(crate) fn replay_for_fuzzing(records: &[Vec<u8>], path: &Path) -> Result<usize> {
    let mut window = ProcessedWindow::new(1 << 16, i64::MAX);
    Ok(apply_all(records, path, Some(&mut window))?.committed.len())
}

/// Replays `records` into the state and the processed-id window.
fn apply_all(
    records: &[Vec<u8>],
    path: &Path,
    mut window: Option<&mut ProcessedWindow>,
) -> Result<CursorState> {
    let mut state = CursorState::default();
    for (i, bytes) in records.iter().enumerate() {
        let record = decode(bytes, path, i)?;
        if record.snapshot {
            state.committed.clear();
        }
        state.expired = record.expired;
        state.committed.extend(record.positions.iter().copied());
        if let Some(w) = window.as_deref_mut() {
            w.reserve(record.ids.len());
            for &(id, version, at) in &record.ids {
                w.record(id, version, at);
            }
        }
    }
    Ok(state)
}

/// The directory of `group`'s cursor logs.
pub(crate) fn group_dir(root: &Path, group: &str) -> PathBuf {
    root.join(GROUPS_DIR).join(group)
}

/// The cursor log file of (`group`, `topic`).
pub(crate) fn cursor_path(root: &Path, group: &str, topic: &str) -> PathBuf {
    group_dir(root, group).join(format!("{topic}{CURSORS_SUFFIX}"))
}

/// Reads a cursor log without locking it (reports; an owner may be live).
pub(crate) fn read_state(root: &Path, group: &str, topic: &str) -> Result<CursorState> {
    let path = cursor_path(root, group, topic);
    let records = StateLog::read_unlocked(&path)?;
    apply_all(&records, &path, None)
}

/// The open, locked cursor log of one (group, topic) and its state.
#[derive(Debug)]
pub(crate) struct CursorStore {
    log: StateLog,
    state: CursorState,
    window: ProcessedWindow,
    torn_tail_bytes: u64,
}

impl CursorStore {
    /// [`CursorStore::open_with`] without fault injection.
    #[cfg(test)]
    pub(crate) fn open(
        root: &Path,
        group: &str,
        topic: &str,
        window: ProcessedWindow,
    ) -> Result<CursorStore> {
        CursorStore::open_with(&Io::new(None), root, group, topic, window)
    }

    /// Opens (creating) the cursor log through the I/O seam `io`, taking its
    /// lock: a second opener, in this process or another, gets
    /// [`Error::Locked`] naming the holder.
    pub(crate) fn open_with(
        io: &Io,
        root: &Path,
        group: &str,
        topic: &str,
        window: ProcessedWindow,
    ) -> Result<CursorStore> {
        let dir = group_dir(root, group);
        let name = format!("{topic}{CURSORS_SUFFIX}");
        let opened = StateLog::open(io, &dir, &name)?;
        let mut window = window;
        let state = apply_all(&opened.records, opened.log.path(), Some(&mut window))?;
        Ok(CursorStore {
            log: opened.log,
            state,
            window,
            torn_tail_bytes: opened.torn_tail_bytes,
        })
    }

    /// The committed state.
    pub(crate) fn state(&self) -> &CursorState {
        &self.state
    }

    /// The processed-id window.
    pub(crate) fn window(&self) -> &ProcessedWindow {
        &self.window
    }

    /// Bytes of an unacknowledged torn tail cut off when opening.
    pub(crate) fn torn_tail_bytes(&self) -> u64 {
        self.torn_tail_bytes
    }

    /// Appends one commit record: `positions` (next offsets), the new group
    /// expired total and `ids` processed since the last commit. Durable on
    /// return when `sync` is set; the in-memory state changes only after the
    /// write succeeded.
    pub(crate) fn commit(
        &mut self,
        positions: &[(u32, u64)],
        expired: u64,
        ids: &[(Uuid, u64)],
        now_micros: i64,
        sync: bool,
    ) -> Result<()> {
        let record = CursorRecord {
            snapshot: false,
            expired,
            positions: positions.to_vec(),
            ids: ids.iter().map(|&(id, v)| (id, v, now_micros)).collect(),
        };
        self.log.append(&[&encode(&record)], sync)?;
        self.state.committed.extend(positions.iter().copied());
        self.state.expired = expired;
        for &(id, version) in ids {
            self.window.record(id, version, now_micros);
        }
        self.window.evict(now_micros);
        if self.log.len() > MIN_COMPACT_BYTES.max(4 * self.snapshot_len()) {
            self.compact()?;
        }
        Ok(())
    }

    /// Replaces every committed position with `positions` (a reset), keeping
    /// the expired count and the processed-id window; durable on return.
    pub(crate) fn reset(&mut self, positions: BTreeMap<u32, u64>) -> Result<()> {
        let previous = std::mem::replace(&mut self.state.committed, positions);
        if let Err(e) = self.compact() {
            self.state.committed = previous;
            return Err(e);
        }
        Ok(())
    }

    fn snapshot_len(&self) -> u64 {
        (HEADER_LEN + 4 + self.state.committed.len() * POSITION_LEN + self.window.len() * ID_LEN)
            as u64
    }

    /// Rewrites the log as one snapshot record of the live state.
    fn compact(&mut self) -> Result<()> {
        let record = CursorRecord {
            snapshot: true,
            expired: self.state.expired,
            positions: self.state.committed.iter().map(|(&p, &o)| (p, o)).collect(),
            ids: self.window.entries().collect(),
        };
        self.log.compact(&[&encode(&record)])
    }
}

/// Validates a consumer group name: it names a directory under `groups/`.
pub(crate) fn validate_group_name(name: &str) -> Result<()> {
    let refuse = |reason: &str| {
        Err(Error::invalid(
            format!("consumer group name {name:?}"),
            format!("{reason}; use 1-200 characters of [A-Za-z0-9._-], not starting with a dot"),
        ))
    };
    if name.is_empty() || name.len() > 200 {
        return refuse("its length is out of range");
    }
    if name.starts_with('.') {
        return refuse("it starts with a dot");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return refuse(&format!("character {c:?} is not allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> ProcessedWindow {
        ProcessedWindow::new(1000, i64::MAX / 2)
    }

    #[test]
    fn records_round_trip_and_reject_damage() {
        let record = CursorRecord {
            snapshot: true,
            expired: 7,
            positions: vec![(0, 10), (3, 99)],
            ids: vec![(Uuid::from_u128(5), 2, 1234)],
        };
        let bytes = encode(&record);
        let path = Path::new("x");
        assert_eq!(decode(&bytes, path, 0).unwrap(), record);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], path, 0).is_err(), "cut {cut}");
        }
        let mut wrong = bytes.clone();
        wrong[0] = 2;
        let err = decode(&wrong, path, 3).unwrap_err().to_string();
        assert!(
            err.contains("cursor record 3") && err.contains("version 2"),
            "{err}"
        );
    }

    #[test]
    fn a_cut_record_is_corruption_naming_the_file_never_zeros() {
        let record = CursorRecord {
            snapshot: false,
            expired: 1,
            positions: vec![(2, 40)],
            ids: vec![(Uuid::from_u128(9), 1, 77)],
        };
        let bytes = encode(&record);
        let path = Path::new("groups/g/t.cursors");
        for cut in 0..bytes.len() {
            match decode(bytes.get(..cut).unwrap(), path, 4) {
                Err(Error::Corrupted {
                    path: p, reason, ..
                }) => {
                    assert_eq!(p, path, "cut {cut}");
                    assert!(reason.contains("cursor record 4"), "cut {cut}: {reason}");
                }
                other => panic!("cut {cut}: expected Error::Corrupted, got {other:?}"),
            }
        }
    }

    #[test]
    fn commits_survive_reopen_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut store = CursorStore::open(root, "g", "t", window()).unwrap();
        for i in 0..2000u64 {
            let id = Uuid::from_u128(i as u128);
            store
                .commit(&[(0, i + 1), (1, 2 * i)], i, &[(id, 0)], 1, false)
                .unwrap();
        }
        drop(store);
        let store = CursorStore::open(root, "g", "t", window()).unwrap();
        assert_eq!(
            store.state().committed,
            BTreeMap::from([(0, 2000), (1, 3998)])
        );
        assert_eq!(store.state().expired, 1999);
        assert!(store.window().covers(&Uuid::from_u128(1999), 0));
        assert!(!store.window().covers(&Uuid::from_u128(999), 0), "evicted");
        assert_eq!(read_state(root, "g", "t").unwrap(), store.state().clone());
        let err = CursorStore::open(root, "g", "t", window()).unwrap_err();
        assert!(matches!(err, Error::Locked { .. }), "{err}");
    }

    #[test]
    fn a_failed_commit_changes_nothing_and_a_failed_sync_refuses_until_reopen() {
        use crate::storage::io::{Fault, FaultPlan, IoOp};
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Writes: 1 the empty log's header, 2 the first commit. Syncs: 1 the
        // header, 2 the second commit, 3 the third.
        let plan = FaultPlan::new()
            .fail_nth(IoOp::Write, 2, Fault::Torn(9))
            .fail_nth(IoOp::Sync, 3, Fault::Fail(5));
        let io = Io::new(Some(Arc::new(plan)));
        let mut store = CursorStore::open_with(&io, root, "g", "t", window()).unwrap();
        let id = Uuid::from_u128(1);
        assert!(store.commit(&[(0, 5)], 1, &[(id, 0)], 1, true).is_err());
        assert_eq!(store.state(), &CursorState::default(), "nothing applied");
        assert!(!store.window().covers(&id, 0));
        store.commit(&[(0, 6)], 2, &[], 1, true).unwrap();
        assert!(
            store.commit(&[(0, 7)], 3, &[], 1, true).is_err(),
            "sync fails"
        );
        assert!(
            store.commit(&[(0, 8)], 4, &[], 1, true).is_err(),
            "poisoned"
        );
        assert_eq!(store.state().committed[&0], 6);
        drop(store);
        let store = CursorStore::open(root, "g", "t", window()).unwrap();
        let committed = store.state().committed[&0];
        // The unsynced commit may or may not have reached the file; the
        // synced one always did.
        assert!(committed == 6 || committed == 7, "{committed}");
    }

    #[test]
    fn group_names_are_checked() {
        assert!(validate_group_name("billing-projector.v2").is_ok());
        for bad in ["", ".hidden", "a/b", "..", "a b"] {
            assert!(validate_group_name(bad).is_err(), "{bad}");
        }
    }
}
