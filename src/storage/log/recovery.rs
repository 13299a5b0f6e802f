//! Recovery on open: what is trusted, what is scanned, what is cut.
//!
//! Owns listing segments, reading footers and checkpoints, scanning the
//! untrusted tail of the active segment and the report of what was removed
//! (`docs/FORMAT.md` states the rules). It never appends and never removes
//! data a read-only view cannot prove is damage.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::storage::batch::{self, BatchView};
use crate::storage::checkpoint::{self, Checkpoint};
use crate::storage::index::IndexBuilder;
use crate::storage::io::Io;
use crate::storage::mmap;
use crate::storage::segment::{self, FOOTER_LEN, Footer, Segment};

use super::{LogConfig, RecoveryMode};

/// A torn tail recovery removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The segment file.
    pub path: PathBuf,
    /// Byte position from which data was removed.
    pub position: u64,
    /// How many bytes (up to the file's end) were zeroed or dropped.
    pub bytes_removed: u64,
    /// The first offset that was not kept.
    pub first_offset_removed: u64,
    /// Why the bytes were not a valid batch.
    pub reason: String,
}

/// What recovery found and did when the log was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Bytes of the active segment scanned (the untrusted tail).
    pub scanned_bytes: u64,
    /// Tails removed.
    pub truncations: Vec<Truncation>,
    /// Segment files removed because they followed removed damage.
    pub dropped_segments: Vec<PathBuf>,
}

pub(super) fn remove_temporaries(io: &Io, dir: &Path) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        if entry.file_name().to_string_lossy().ends_with(".tmp") {
            io.remove(&entry.path())?;
        }
    }
    Ok(())
}

pub(crate) fn list_segment_bases(dir: &Path) -> Result<Vec<u64>> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    let mut bases = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        if let Some(base) = entry
            .file_name()
            .to_str()
            .and_then(segment::parse_segment_name)
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

pub(super) struct Recovered {
    pub(super) segments: Vec<Arc<Segment>>,
    /// The active segment with its writable file, committed and reserved length.
    pub(super) active: Option<(Arc<Segment>, File, u64, u64)>,
    /// What the checkpoint lets the writer resume from (with `active`).
    pub(super) resume: Option<Resume>,
    pub(super) report: RecoveryReport,
}

/// Where the writer of a recovered active segment stands with its checkpoint.
#[derive(Debug, Clone, Copy)]
pub(super) struct Resume {
    /// Bytes the last checkpoint (with a usable index part) covers; 0 makes
    /// the next checkpoint rewrite the index file and the checkpoint whole.
    pub(super) checkpointed_len: u64,
    /// Every offset below this is known to be on stable storage.
    pub(super) durable_offset: u64,
    /// Bytes of the index file that are known to be right.
    pub(super) index_file_len: u64,
}

impl Resume {
    pub(super) fn nothing(base: u64) -> Resume {
        Resume {
            checkpointed_len: 0,
            durable_offset: base,
            index_file_len: 0,
        }
    }
}

pub(crate) fn read_footer(file: &File, path: &Path, len: u64, base: u64) -> Result<Option<Footer>> {
    if len < FOOTER_LEN as u64 {
        return Ok(None);
    }
    let mut buf = [0u8; FOOTER_LEN];
    match Io::default().read_at(file, path, &mut buf, len - FOOTER_LEN as u64) {
        Ok(()) => {}
        // The writer trimmed the file since `len` was read: it just sealed
        // it; the caller's next look finds the footer at the new end.
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    }
    Ok(Footer::decode(&buf).filter(|f| {
        f.base_offset == base && f.data_len.checked_add(FOOTER_LEN as u64) == Some(len)
    }))
}

/// A read-only look at a directory that a live writer may change while it is
/// read (a segment sealed and trimmed, or deleted by retention, between two
/// system calls): such a race surfaces as a missing file, a short read or a
/// file shorter than just measured, and the look is simply taken again.
/// A listing taken while the writer creates segments may also miss a new
/// one and return a later one (`readdir` promises nothing about entries
/// added during the scan): a gap found while the directory changed under
/// the look is such a race too, and only a gap in a directory that stayed
/// the same is reported as damage.
pub(super) fn recover_read_only(dir: &Path, config: &LogConfig, io: &Io) -> Result<Recovered> {
    let mut attempt = 0;
    loop {
        let listed = list_segment_bases(dir)?;
        match recover(dir, config, io, false) {
            Err(e) if attempt < 5 && is_race_with_writer(&e) => attempt += 1,
            Err(Error::Corrupted { .. }) if attempt < 20 && list_segment_bases(dir)? != listed => {
                attempt += 1;
            }
            other => return other,
        }
    }
}

pub(super) fn is_race_with_writer(e: &Error) -> bool {
    match e {
        Error::Io { source, .. } => matches!(
            source.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::UnexpectedEof
        ),
        Error::Invalid { what, .. } => what == "map length",
        _ => false,
    }
}

/// Opens every segment: sealed ones are trusted through their footers; the
/// last one is scanned from its checkpoint and, when `writable`, its torn
/// tail is zeroed.
pub(super) fn recover(
    dir: &Path,
    config: &LogConfig,
    io: &Io,
    writable: bool,
) -> Result<Recovered> {
    let bases = list_segment_bases(dir)?;
    let mut report = RecoveryReport::default();
    let mut segments: Vec<Arc<Segment>> = Vec::new();
    let mut expected: Option<u64> = None;
    let interval = config.index_interval_bytes;
    for (i, &base) in bases.iter().enumerate() {
        let path = segment::segment_path(dir, base);
        let is_last = i + 1 == bases.len();
        if base >= u64::MAX - 1 {
            return Err(Error::corrupted(
                &path,
                0,
                "segment base offset is at the top of the offset range, where no record can be",
            ));
        }
        if let Some(exp) = expected.filter(|&e| e != base) {
            let err = Error::corrupted(
                &path,
                0,
                format!("segment starts at offset {base} but the previous one ends before {exp}"),
            );
            if writable && config.recovery == RecoveryMode::TruncateAtFirstDamage {
                drop_segments(io, dir, bases.get(i..).unwrap_or_default(), &mut report)?;
                break;
            }
            return Err(err);
        }
        let file = File::open(&path).map_err(|e| Error::io("open", &path, e))?;
        let meta = file.metadata().map_err(|e| Error::io("stat", &path, e))?;
        let len = meta.len();
        if let Some(footer) = read_footer(&file, &path, len, base)? {
            expected = Some(footer.last_offset + 1);
            let seg = Segment::sealed_lazy(dir, footer, interval, writable.then(|| io.clone()));
            // Which file this is, so a read-only refresh can tell it from one
            // a truncate put at the same path.
            seg.set_file_id(std::os::unix::fs::MetadataExt::ino(&meta));
            segments.push(Arc::new(seg));
            continue;
        }
        if !is_last && config.recovery != RecoveryMode::TruncateAtFirstDamage {
            return Err(Error::corrupted(
                &path,
                len.saturating_sub(FOOTER_LEN as u64),
                "sealed segment has no valid footer, yet a later segment follows it",
            ));
        }
        let active = recover_active(dir, config, io, writable, base, &path, &mut report)?;
        match active {
            ActiveOutcome::Sealed(seg) => {
                expected = Some(seg.next_offset());
                segments.push(seg);
            }
            ActiveOutcome::Active(seg, file, pos, reserved, resume) => {
                if !is_last {
                    drop_segments(io, dir, bases.get(i + 1..).unwrap_or_default(), &mut report)?;
                }
                return Ok(Recovered {
                    segments,
                    active: Some((seg, file, pos, reserved)),
                    resume: Some(resume),
                    report,
                });
            }
        }
    }
    Ok(Recovered {
        segments,
        active: None,
        resume: None,
        report,
    })
}

pub(super) fn drop_segments(
    io: &Io,
    dir: &Path,
    bases: &[u64],
    report: &mut RecoveryReport,
) -> Result<()> {
    for &b in bases {
        let p = segment::segment_path(dir, b);
        log::warn!(
            "recovery: dropping {} (it follows removed damage)",
            p.display()
        );
        io.remove(&p)?;
        io.remove(&segment::index_path(dir, b))?;
        report.dropped_segments.push(p);
    }
    // A checkpoint must not outlive its segment: a later segment created at
    // the same base would otherwise inherit its durability proof.
    if Checkpoint::load(dir).is_some_and(|c| bases.contains(&c.segment_base)) {
        io.remove(&checkpoint::path(dir))?;
    }
    io.sync_dir(dir)
}

pub(super) enum ActiveOutcome {
    Sealed(Arc<Segment>),
    Active(Arc<Segment>, File, u64, u64, Resume),
}

pub(super) fn recover_active(
    dir: &Path,
    config: &LogConfig,
    io: &Io,
    writable: bool,
    base: u64,
    path: &Path,
    report: &mut RecoveryReport,
) -> Result<ActiveOutcome> {
    let file = if writable {
        io.open_rw(path, false)?
    } else {
        io.open_ro(path)?
    };
    let len = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    let map = mmap::map_read_only(&file, path, len, false)?;
    let interval = config.index_interval_bytes;
    let checkpoint = Checkpoint::load(dir).filter(|c| {
        c.segment_base == base
            && c.trusted_len <= len
            && c.next_offset >= base
            && c.next_offset - base <= u64::from(u32::MAX)
            && c.next_offset < u64::MAX
    });
    // The checkpoint has two parts: a durability proof (the first
    // `trusted_len` bytes, offsets below `next_offset`, were synced) and an
    // index prefix to resume from. A rejected index only costs a scan from
    // byte 0; the proof still holds.
    let resumed = checkpoint.and_then(|c| {
        let ipath = segment::index_path(dir, base);
        segment::load_index_file(&ipath, c.index_crc, c.index_len)
            .map(|ix| IndexBuilder::resume(interval, ix.to_vec(), c.max_timestamp))
    });
    let index_ok = resumed.is_some();
    let (start, next, mut builder) = match (checkpoint, resumed) {
        (Some(c), Some(b)) => (c.trusted_len, c.next_offset, b),
        _ => (0, base, IndexBuilder::new(interval)),
    };
    // Only the writer may look past the end of the data (see `segment::scan`).
    let scan = segment::scan(&map, base, start, next, &mut builder, writable);
    report.scanned_bytes += scan.end.saturating_sub(start);
    if let Some(footer) = scan.footer {
        // Sealed, but the trim past the footer did not reach the disk.
        if writable {
            io.set_len(&file, path, footer.data_len + FOOTER_LEN as u64)?;
            io.sync_all(&file, path)?;
        }
        return Ok(ActiveOutcome::Sealed(Arc::new(Segment::sealed_lazy(
            dir,
            footer,
            interval,
            writable.then(|| io.clone()),
        ))));
    }
    // Below the checkpoint's trusted length everything was synced: bytes
    // there that are not valid batches (or batches ending early) are damage.
    let stop = scan.damage.as_ref().map_or(scan.end, |d| d.0);
    let proof = checkpoint.filter(|c| stop < c.trusted_len);
    let cut = scan.damage.clone().or_else(|| {
        proof.map(|c| {
            (
                scan.end,
                format!(
                    "the batches end at byte {} before offset {}",
                    scan.end, c.next_offset
                ),
            )
        })
    });
    if let Some((pos, why)) = cut {
        if let Some(c) = proof
            && (!writable || config.recovery != RecoveryMode::TruncateAtFirstDamage)
        {
            if !writable {
                check_same_file(&file, path)?;
            }
            return Err(Error::corrupted(
                path,
                pos,
                format!(
                    "{why}; the checkpoint records the first {} bytes of this segment (offsets below {}) as synced, so this is damaged durable data, not a torn write",
                    c.trusted_len, c.next_offset
                ),
            ));
        }
        if !writable {
            if let Some(err) = read_only_damage(&file, path, pos, scan.next_offset, Some(&why))? {
                return Err(err);
            }
        } else {
            if let Some(later) = segment::find_durable_batch_after(&map, pos, scan.next_offset)
                && config.recovery != RecoveryMode::TruncateAtFirstDamage
            {
                return Err(Error::corrupted(
                    path,
                    pos,
                    format!(
                        "{why}; the valid batch at byte {} (offset {}) records offsets below {} as already durable, so this is damaged durable data, not a torn write",
                        later.position, later.base_offset, later.durable_offset
                    ),
                ));
            }
            if proof.is_some() {
                // Cutting below the checkpoint: it no longer describes the segment.
                io.remove(&checkpoint::path(dir))?;
                io.sync_dir(dir)?;
            }
            let t = Truncation {
                path: path.to_path_buf(),
                position: pos,
                bytes_removed: len - pos,
                first_offset_removed: scan.next_offset,
                reason: why,
            };
            log::warn!(
                "recovery: truncating {} at byte {} ({} bytes from offset {}): {}",
                path.display(),
                t.position,
                t.bytes_removed,
                t.first_offset_removed,
                t.reason
            );
            // Zero rather than shrink: a reader elsewhere may map these pages
            // (mmap invariant 1), and stale batches must never be chained later.
            io.zero_range(&file, path, pos, len)?;
            io.sync_data(&file, path)?;
            report.truncations.push(t);
        }
    }
    let resume = match checkpoint {
        Some(c) if proof.is_none() => Resume {
            // A rejected index part makes the next checkpoint rewrite the
            // index file from byte 0 (and so a clean close writes one).
            checkpointed_len: if index_ok { c.trusted_len } else { 0 },
            durable_offset: c.next_offset,
            index_file_len: if index_ok { u64::from(c.index_len) } else { 0 },
        },
        _ => Resume::nothing(base),
    };
    let seg = Arc::new(Segment::active(
        base,
        path.to_path_buf(),
        map,
        scan.end,
        scan.next_offset,
        builder,
    ));
    if !writable {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata().map_err(|e| Error::io("stat", path, e))?;
        seg.set_file_id(meta.ino());
    }
    Ok(ActiveOutcome::Active(seg, file, scan.end, len, resume))
}

/// For a read-only view: fails with a race (which the caller's retry loop
/// absorbs) when the file at `path` is no longer `file`, e.g. a truncate
/// renamed a rewritten one over it, so a checkpoint just read may describe
/// the other file.
pub(super) fn check_same_file(file: &File, path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let ours = file.metadata().map_err(|e| Error::io("stat", path, e))?;
    let now = fs::metadata(path).map_err(|e| Error::io("stat", path, e))?;
    if ours.ino() != now.ino() || ours.dev() != now.dev() {
        return Err(Error::io(
            "open",
            path,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "replaced by the writer while being read",
            ),
        ));
    }
    Ok(())
}

/// A read-only view's scan of `file` stopped at byte `pos` (offset `next`)
/// on bytes that are not a valid batch. They may be a batch the writer is
/// still writing, or a torn tail no writer has recovered yet: then the view
/// ends there (`None`). But when a valid batch after them records `next` as
/// already durable, they are damaged synced data, and the view must say so.
///
/// Reads the rest of the file with `pread`, never through the map: the
/// writer may trim the file past the next header, and a map touching the
/// trimmed pages would fault (mmap invariant 1); a read just comes back short.
pub(super) fn read_only_damage(
    file: &File,
    path: &Path,
    pos: u64,
    next: u64,
    why: Option<&str>,
) -> Result<Option<Error>> {
    let len = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    let rest = pread_range(file, path, pos, len)?;
    if is_batch_at(&rest, next) {
        // The writer finished the batch since the scan looked.
        return Ok(None);
    }
    let Some(later) = segment::find_durable_batch_after(&rest, 0, next) else {
        return Ok(None);
    };
    // The batch at `pos` may have been completed, synced and followed while
    // the read above went on: look at it once more. The later batch exists,
    // so a batch that was being written is whole by now.
    if batch_now_at(file, path, pos, next)? {
        return Ok(None);
    }
    let why = match why {
        Some(w) => w.to_owned(),
        None => BatchView::parse(&rest).err().map_or_else(
            || "batch does not continue the offsets".to_owned(),
            |e| e.to_string(),
        ),
    };
    Ok(Some(Error::corrupted(
        path,
        pos,
        format!(
            "{why}; the valid batch at byte {} (offset {}) records offsets below {} as already durable, so this is damaged durable data, not a torn write or a batch being written",
            pos + later.position,
            later.base_offset,
            later.durable_offset
        ),
    )))
}

/// Whether `bytes` start with a valid batch holding offset `next` first.
pub(super) fn is_batch_at(bytes: &[u8], next: u64) -> bool {
    BatchView::parse(bytes).is_ok_and(|v| v.header.base_offset == next)
}

/// Reads the batch at `pos` of `file` afresh (with `pread`) and tells
/// whether it is now a valid batch starting at offset `next`.
pub(super) fn batch_now_at(file: &File, path: &Path, pos: u64, next: u64) -> Result<bool> {
    let head = pread_range(file, path, pos, pos + batch::HEADER_LEN as u64)?;
    let Ok(header) = batch::parse_header(&head) else {
        return Ok(false);
    };
    let whole = pread_range(file, path, pos, pos + u64::from(header.length))?;
    Ok(is_batch_at(&whole, next))
}

/// Bytes `from..to` of `file` read with `pread` (shorter if the file is).
pub(super) fn pread_range(file: &File, path: &Path, from: u64, to: u64) -> Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let len = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    let mut buf = vec![0u8; to.min(len).saturating_sub(from) as usize];
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..).filter(|rest| !rest.is_empty()) {
        match file.read_at(rest, from + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read", path, e)),
        }
    }
    buf.truncate(got);
    Ok(buf)
}
