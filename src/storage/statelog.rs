//! Crash-safe state files for consumer-side bookkeeping.
//!
//! Owns the state-log format (`docs/FORMAT.md`, "State logs"): an
//! append-only file of checksummed records — group cursors, queue acks,
//! attempt counts, processed event ids — compacted by writing a snapshot of
//! the live state to a temporary file and renaming it over the old one. A
//! state log is never overwritten in place, so a torn write can only damage
//! the unacknowledged tail. Opening takes an exclusive lock
//! (`<name>.lock`), so two handles, in this process or others, never append
//! to one file. It never interprets record contents: its owner serialises
//! its own state and decides when to compact.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::storage::io::Io;
use crate::storage::le::{LeReader, u32_at, u64_at};
use crate::storage::lock::DirLock;

/// Magic at the start of a state-log file: `EFSL`.
pub(crate) const FILE_MAGIC: [u8; 4] = *b"EFSL";
/// Magic at the start of every record: `EFSR`.
pub(crate) const RECORD_MAGIC: [u8; 4] = *b"EFSR";
/// Version of the state-log layout.
pub(crate) const STATE_LOG_VERSION: u32 = 1;
/// File header: magic, version, generation.
pub(crate) const FILE_HEADER_LEN: usize = 16;
/// Record header: magic, payload length, synced-before position, CRC.
pub(crate) const RECORD_HEADER_LEN: usize = 20;
/// Largest record payload accepted (a sanity bound for recovery).
pub(crate) const MAX_RECORD_LEN: usize = 64 << 20;

/// One exclusively owned, append-only state log.
#[derive(Debug)]
pub(crate) struct StateLog {
    io: Io,
    dir: PathBuf,
    path: PathBuf,
    file: File,
    /// Bytes in the file that belong to the log.
    len: u64,
    /// Bytes known durable (after the last completed sync).
    synced: u64,
    generation: u64,
    /// Set after a failed sync: the file's page-cache state is unknowable.
    poisoned: Option<String>,
    buf: Vec<u8>,
    _lock: DirLock,
}

/// What opening a state log found.
#[derive(Debug)]
pub(crate) struct Opened {
    /// The handle, positioned to append after the last intact record.
    pub(crate) log: StateLog,
    /// Payloads of the intact records, in file order (snapshot first).
    pub(crate) records: Vec<Vec<u8>>,
    /// Bytes of an unacknowledged torn tail that were cut off, if any.
    pub(crate) torn_tail_bytes: u64,
}

impl StateLog {
    /// Opens (creating when absent) the state log `dir/name`, taking its lock.
    ///
    /// A damaged tail that no later intact record vouches for is an
    /// unacknowledged append cut by a crash: it is cut off and reported in
    /// [`Opened::torn_tail_bytes`]. Damage followed by a record that says
    /// the damaged bytes had been synced is corruption: refused with
    /// [`Error::Corrupted`] naming the file and byte.
    pub(crate) fn open(io: &Io, dir: &Path, name: &str) -> Result<Opened> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        let lock = DirLock::acquire_file(dir, &format!("{name}.lock"))?;
        let path = dir.join(name);
        let tmp = tmp_path(&path);
        // A leftover temporary file is a compaction that never got renamed:
        // the state log it would have replaced is still whole.
        io.remove(&tmp)?;
        if !path.exists() {
            write_snapshot(io, dir, &path, 0, &[], &mut false)?;
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        let generation = parse_file_header(&bytes, &path)?;
        let (records, end) = parse_records(&bytes, &path)?;
        let file = io.open_rw(&path, false)?;
        let torn_tail_bytes = bytes.len() as u64 - end;
        if torn_tail_bytes > 0 {
            io.set_len(&file, &path, end)?;
            io.sync_data(&file, &path)?;
        }
        Ok(Opened {
            log: StateLog {
                io: io.clone(),
                dir: dir.to_path_buf(),
                path,
                file,
                len: end,
                // Not `end`: the bytes an earlier process appended may still
                // be only in the page cache, and a record appended now must
                // not vouch for them (a power loss could keep its page and
                // lose theirs, turning a torn tail into "corruption"). The
                // first sync of this handle covers them (the cut of a torn
                // tail above was such a sync).
                synced: if torn_tail_bytes > 0 {
                    end
                } else {
                    FILE_HEADER_LEN as u64
                },
                generation,
                poisoned: None,
                buf: Vec::new(),
                _lock: lock,
            },
            records,
            torn_tail_bytes,
        })
    }

    /// Reads the intact records of the state log at `path` without taking
    /// its lock or changing the file (for reports while an owner may be
    /// appending: a half-written last record just ends the list).
    pub(crate) fn read_unlocked(path: &Path) -> Result<Vec<Vec<u8>>> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        parse_bytes(&bytes, path)
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes in the file (what compaction policies look at).
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Appends `records` as one write; when `sync` is set, they are durable
    /// when this returns. On a failed write the file is cut back to where it
    /// was, so the log stays usable; a failed sync poisons the handle.
    pub(crate) fn append(&mut self, records: &[&[u8]], sync: bool) -> Result<()> {
        self.check_poisoned()?;
        if records.is_empty() {
            return if sync { self.sync() } else { Ok(()) };
        }
        self.buf.clear();
        for record in records {
            encode_record(&mut self.buf, record, self.synced, &self.path)?;
        }
        if let Err(e) = self
            .io
            .write_at(&self.file, &self.path, &self.buf, self.len)
        {
            // Part of the buffer may be in the file. Cut it off so the next
            // append does not land behind garbage; if even that fails, the
            // file's tail is unknown and only a reopen can tell.
            if self.io.set_len(&self.file, &self.path, self.len).is_err() {
                self.poisoned = Some(format!("write ({e})"));
            }
            return Err(e);
        }
        self.len += self.buf.len() as u64;
        if sync { self.sync() } else { Ok(()) }
    }

    /// Makes everything appended so far durable.
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.check_poisoned()?;
        if self.synced == self.len {
            return Ok(());
        }
        if let Err(e) = self.io.sync_data(&self.file, &self.path) {
            // After a failed fsync the kernel may have dropped the dirty
            // pages: nothing about the tail can be trusted until a reopen.
            self.poisoned = Some(format!("sync ({e})"));
            return Err(e);
        }
        self.synced = self.len;
        Ok(())
    }

    /// Replaces the whole log with `snapshot` (the owner's live state):
    /// written to a temporary file, synced, renamed over the log, directory
    /// synced. A crash at any point leaves either the old log or the new one.
    ///
    /// A failure before the rename leaves the old log in place and the
    /// handle usable. A failure after it (the directory sync, or reopening
    /// the new file) poisons the handle: the old file is unlinked, so
    /// appending to it would be lost, and the rename itself may be undone
    /// by a power loss, so appending to the new one could be lost as well.
    /// Only a reopen can tell which of the two logs the disk holds.
    pub(crate) fn compact(&mut self, snapshot: &[&[u8]]) -> Result<()> {
        self.check_poisoned()?;
        let generation = self.generation + 1;
        let mut renamed = false;
        let replaced = write_snapshot(
            &self.io,
            &self.dir,
            &self.path,
            generation,
            snapshot,
            &mut renamed,
        )
        .and_then(|len| Ok((self.io.open_rw(&self.path, false)?, len)));
        match replaced {
            Ok((file, len)) => {
                self.file = file;
                self.generation = generation;
                self.len = len;
                self.synced = len;
                Ok(())
            }
            Err(e) => {
                if renamed {
                    self.poisoned = Some(format!("compaction ({e})"));
                }
                Err(e)
            }
        }
    }

    fn check_poisoned(&self) -> Result<()> {
        match &self.poisoned {
            Some(cause) => Err(Error::Poisoned {
                path: self.path.clone(),
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

fn encode_record(out: &mut Vec<u8>, payload: &[u8], synced_before: u64, path: &Path) -> Result<()> {
    if payload.len() > MAX_RECORD_LEN {
        return Err(Error::invalid(
            format!("record for state log {}", path.display()),
            format!(
                "{} bytes exceeds the {MAX_RECORD_LEN}-byte limit",
                payload.len()
            ),
        ));
    }
    let len = (payload.len() as u32).to_le_bytes();
    let synced_before = synced_before.to_le_bytes();
    // The CRC covers the 16 header bytes before it, then the payload.
    let mut crc = crc32fast::Hasher::new();
    for part in [&RECORD_MAGIC[..], &len, &synced_before, payload] {
        crc.update(part);
    }
    out.extend_from_slice(&RECORD_MAGIC);
    out.extend_from_slice(&len);
    out.extend_from_slice(&synced_before);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Writes a complete state log holding `records` via a temporary file;
/// returns its length. `renamed` is set once the new file has replaced
/// `path` (even if the directory sync after it then failed).
fn write_snapshot(
    io: &Io,
    dir: &Path,
    path: &Path,
    generation: u64,
    records: &[&[u8]],
    renamed: &mut bool,
) -> Result<u64> {
    let mut bytes = Vec::with_capacity(
        FILE_HEADER_LEN
            + records
                .iter()
                .map(|r| r.len() + RECORD_HEADER_LEN)
                .sum::<usize>(),
    );
    bytes.extend_from_slice(&FILE_MAGIC);
    bytes.extend_from_slice(&STATE_LOG_VERSION.to_le_bytes());
    bytes.extend_from_slice(&generation.to_le_bytes());
    for record in records {
        // Everything in a snapshot is synced before it becomes the log.
        encode_record(&mut bytes, record, 0, path)?;
    }
    let tmp = tmp_path(path);
    let file = io.open_rw(&tmp, true)?;
    let written = (|| {
        io.set_len(&file, &tmp, 0)?;
        io.write_at(&file, &tmp, &bytes, 0)?;
        io.sync_data(&file, &tmp)?;
        io.rename(&tmp, path)?;
        *renamed = true;
        io.sync_dir(dir)
    })();
    if written.is_err() {
        let _ = io.remove(&tmp);
    }
    written.map(|()| bytes.len() as u64)
}

/// The intact payloads of a state-log file's bytes (`path` names it in errors).
pub(crate) fn parse_bytes(bytes: &[u8], path: &Path) -> Result<Vec<Vec<u8>>> {
    parse_file_header(bytes, path)?;
    Ok(parse_records(bytes, path)?.0)
}

fn parse_file_header(bytes: &[u8], path: &Path) -> Result<u64> {
    if bytes.len() < FILE_HEADER_LEN || !bytes.starts_with(&FILE_MAGIC) {
        return Err(Error::corrupted(
            path,
            0,
            "not a state log: the file header (magic EFSL) is missing or damaged",
        ));
    }
    let mut r = LeReader::new(bytes, path, 0);
    r.bytes(4, "state log magic")?;
    let version = r.u32("state log version")?;
    if version != STATE_LOG_VERSION {
        return Err(Error::corrupted(
            path,
            4,
            format!("state log version {version}; this build reads version {STATE_LOG_VERSION}"),
        ));
    }
    r.u64("state log generation")
}

/// An intact record at `pos`: its payload, where it ends, and `synced_before`.
fn record_at(bytes: &[u8], pos: usize) -> Option<(&[u8], usize, u64)> {
    let header = bytes.get(pos..)?.first_chunk::<RECORD_HEADER_LEN>()?;
    if header[..4] != RECORD_MAGIC {
        return None;
    }
    let len = u32_at(header, 4)? as usize;
    if len > MAX_RECORD_LEN {
        return None;
    }
    let synced_before = u64_at(header, 8)?;
    let stored_crc = u32_at(header, 16)?;
    let body_start = pos.checked_add(RECORD_HEADER_LEN)?;
    let end = body_start.checked_add(len)?;
    let payload = bytes.get(body_start..end)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header[..16]);
    crc.update(payload);
    (crc.finalize() == stored_crc).then_some((payload, end, synced_before))
}

/// Parses records after the header; returns them and the end of the intact
/// prefix. Damage is a torn tail unless a later intact record vouches that
/// the damaged position had been synced.
fn parse_records(bytes: &[u8], path: &Path) -> Result<(Vec<Vec<u8>>, u64)> {
    let mut records = Vec::new();
    let mut pos = FILE_HEADER_LEN;
    while pos < bytes.len() {
        match record_at(bytes, pos) {
            Some((payload, end, _)) => {
                records.push(payload.to_vec());
                pos = end;
            }
            None => {
                let vouched = (pos + 1..bytes.len().saturating_sub(RECORD_HEADER_LEN - 1))
                    .filter(|&q| bytes.get(q..).is_some_and(|b| b.starts_with(&RECORD_MAGIC)))
                    .filter_map(|q| record_at(bytes, q))
                    .any(|(_, _, synced_before)| synced_before > pos as u64);
                if vouched {
                    return Err(Error::corrupted(
                        path,
                        pos as u64,
                        "a damaged record was followed by an intact one written after it \
                         had been synced: this is corruption of durable state, not a torn \
                         write; restore the file from a backup or reset the owner's state",
                    ));
                }
                break;
            }
        }
    }
    Ok((records, pos as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::io::{Fault, FaultPlan, IoOp};
    use std::sync::Arc;

    fn open(dir: &Path) -> Opened {
        StateLog::open(&Io::new(None), dir, "state").unwrap()
    }

    fn payloads(opened: &Opened) -> Vec<&[u8]> {
        opened.records.iter().map(Vec::as_slice).collect()
    }

    #[test]
    fn appends_survive_reopen_and_compaction_replaces_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut opened = open(dir.path());
        assert!(opened.records.is_empty());
        opened.log.append(&[b"a", b"bb"], true).unwrap();
        opened.log.append(&[b"ccc"], false).unwrap();
        drop(opened);
        let mut opened = open(dir.path());
        assert_eq!(payloads(&opened), [&b"a"[..], b"bb", b"ccc"]);
        opened.log.compact(&[b"snapshot"]).unwrap();
        opened.log.append(&[b"after"], true).unwrap();
        drop(opened);
        let opened = open(dir.path());
        assert_eq!(payloads(&opened), [&b"snapshot"[..], b"after"]);
        assert!(!tmp_path(&dir.path().join("state")).exists());
    }

    #[test]
    fn a_second_handle_is_refused_while_the_first_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let _first = open(dir.path());
        let err = StateLog::open(&Io::new(None), dir.path(), "state").unwrap_err();
        assert!(matches!(err, Error::Locked { .. }), "{err}");
    }

    #[test]
    fn every_cut_of_an_unsynced_tail_keeps_the_synced_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut opened = open(dir.path());
        opened
            .log
            .append(&[b"durable-1", b"durable-2"], true)
            .unwrap();
        let synced = opened.log.len();
        opened.log.append(&[b"tail-1", b"tail-2"], false).unwrap();
        let full = opened.log.len();
        drop(opened);
        let path = dir.path().join("state");
        let original = std::fs::read(&path).unwrap();
        for cut in synced..full {
            for fill in [None, Some(0u8), Some(0xA5)] {
                let mut bytes = original[..cut as usize].to_vec();
                if let Some(b) = fill {
                    bytes.resize(full as usize, b);
                }
                std::fs::write(&path, &bytes).unwrap();
                let opened = open(dir.path());
                let got = payloads(&opened);
                assert_eq!(&got[..2], [&b"durable-1"[..], b"durable-2"], "cut {cut}");
                assert!(got.len() <= 3, "cut {cut}: a cut record survived");
                assert_eq!(opened.log.len(), std::fs::metadata(&path).unwrap().len());
            }
        }
    }

    #[test]
    fn damage_before_a_record_that_vouches_for_it_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let mut opened = open(dir.path());
        opened.log.append(&[b"first"], true).unwrap();
        opened.log.append(&[b"second"], true).unwrap();
        drop(opened);
        let path = dir.path().join("state");
        let mut bytes = std::fs::read(&path).unwrap();
        let first_payload = FILE_HEADER_LEN + RECORD_HEADER_LEN;
        bytes[first_payload] ^= 0xFF;
        std::fs::write(&path, &bytes).unwrap();
        let err = StateLog::open(&Io::new(None), dir.path(), "state").unwrap_err();
        match err {
            Error::Corrupted { position, .. } => assert_eq!(position, FILE_HEADER_LEN as u64),
            other => panic!("expected corruption, got {other}"),
        }
    }

    #[test]
    fn a_failed_write_is_cut_back_and_the_log_stays_usable() {
        let dir = tempfile::tempdir().unwrap();
        let plan = Arc::new(FaultPlan::new().fail_nth(IoOp::Write, 2, Fault::Torn(7)));
        let io = Io::new(Some(plan));
        let mut opened = StateLog::open(&io, dir.path(), "state").unwrap();
        assert!(opened.log.append(&[b"x"], true).is_err());
        opened.log.append(&[b"y"], true).unwrap();
        drop(opened);
        assert_eq!(payloads(&open(dir.path())), [&b"y"[..]]);
    }

    #[test]
    fn a_failed_sync_poisons_the_handle() {
        let dir = tempfile::tempdir().unwrap();
        let plan = Arc::new(FaultPlan::new().fail_nth(IoOp::Sync, 2, Fault::Fail(5)));
        let io = Io::new(Some(plan));
        let mut opened = StateLog::open(&io, dir.path(), "state").unwrap();
        assert!(opened.log.append(&[b"x"], true).is_err());
        assert!(opened.log.append(&[b"y"], true).is_err());
    }

    /// A compaction whose directory sync fails has renamed the new file
    /// over the old one, but the rename may not be durable: the handle must
    /// not keep appending (to either file) as if nothing happened.
    #[test]
    fn an_append_acknowledged_after_a_failed_compaction_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path()));
        let plan = Arc::new(FaultPlan::new().fail_nth(IoOp::SyncDir, 1, Fault::Fail(5)));
        let io = Io::new(Some(plan));
        let mut opened = StateLog::open(&io, dir.path(), "state").unwrap();
        opened.log.append(&[b"before"], true).unwrap();
        assert!(opened.log.compact(&[b"snapshot"]).is_err());
        let after = opened.log.append(&[b"after"], true);
        drop(opened);
        let got = open(dir.path());
        let got = payloads(&got);
        if after.is_ok() {
            assert!(
                got.contains(&&b"after"[..]),
                "an acknowledged append was lost: {got:?}"
            );
        }
        assert!(
            got == [&b"before"[..]]
                || got == [&b"snapshot"[..]]
                || got == [&b"snapshot"[..], b"after"],
            "{got:?}"
        );
    }

    /// Power loss after a process appended without syncing and its
    /// successor appended (unsynced too) behind it: the disk may keep the
    /// successor's page and lose a page of the first append. That is a torn
    /// tail (nothing there was acknowledged as durable), not corruption.
    #[test]
    fn a_lost_page_of_a_previous_process_unsynced_append_is_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let mut opened = open(dir.path());
        opened.log.append(&[b"durable"], true).unwrap();
        let durable = opened.log.len();
        opened.log.append(&[&[7u8; 10_000]], false).unwrap();
        let first_end = opened.log.len();
        drop(opened);
        // The next process opens and appends, not syncing either.
        let mut opened = open(dir.path());
        opened.log.append(&[b"next"], false).unwrap();
        drop(opened);
        // Lose one whole page inside the first unsynced append; keep the
        // second append's page.
        let page = durable.div_ceil(4096) * 4096;
        assert!(page + 4096 <= first_end && first_end / 4096 > page / 4096);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[page as usize..page as usize + 4096].fill(0);
        std::fs::write(&path, &bytes).unwrap();
        let opened = StateLog::open(&Io::new(None), dir.path(), "state")
            .expect("an unsynced tail is cut, not refused");
        assert_eq!(payloads(&opened), [&b"durable"[..]]);
        assert_eq!(opened.log.len(), durable);
    }

    #[test]
    fn a_crash_during_compaction_leaves_the_old_or_the_new_log() {
        for crash_at in 1..8 {
            let dir = tempfile::tempdir().unwrap();
            let mut opened = open(dir.path());
            opened.log.append(&[b"old-1", b"old-2"], true).unwrap();
            drop(opened);
            let plan = Arc::new(FaultPlan::new().crash_after(crash_at));
            let io = Io::new(Some(plan));
            if let Ok(mut opened) = StateLog::open(&io, dir.path(), "state") {
                let _ = opened.log.compact(&[b"new"]);
            }
            let got = open(dir.path());
            let got = payloads(&got);
            assert!(
                got == [&b"old-1"[..], b"old-2"] || got == [&b"new"[..]],
                "crash after {crash_at} ops: {got:?}"
            );
        }
    }
}
