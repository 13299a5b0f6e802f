//! Offline checking and explicit repair of one partition log directory.
//!
//! Owns `verify` (read every byte of every segment, footer and index and
//! report each problem with file and byte position, changing nothing) and
//! `repair` (truncate to the last valid record and rebuild indexes, reporting
//! exactly what was removed). It never runs implicitly: opening a log does
//! not repair corruption, only these calls do. Whole data directories
//! (archives, state logs, stray files) are checked by `ops::verify`.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::storage::checkpoint::{self, Checkpoint};
use crate::storage::index::{IndexBuilder, IndexView};
use crate::storage::io::Io;
use crate::storage::lock::DirLock;
use crate::storage::log::{
    Log, LogConfig, RecoveryMode, RecoveryReport, list_segment_bases, read_footer,
};
use crate::storage::mmap;
use crate::storage::segment::{self, FOOTER_LEN};

/// One problem found by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The damaged file.
    pub path: PathBuf,
    /// Byte position of the problem in that file.
    pub position: u64,
    /// What is wrong.
    pub problem: String,
    /// Whether the data itself is damaged (`false`: only a rebuildable index).
    pub data_damaged: bool,
}

/// What [`verify`] read and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Segments checked.
    pub segments: usize,
    /// Records whose batches passed every check.
    pub records: u64,
    /// Bytes of batches checked.
    pub bytes: u64,
    /// Every problem, in file order.
    pub findings: Vec<Finding>,
    /// What is worth knowing but not a problem (leftover temporary or
    /// orphan files), in name order.
    pub notices: Vec<Finding>,
    /// The offset after the last valid record of the hot log.
    pub next_offset: u64,
    /// Whether the checkpoint claims synced bytes the active segment does
    /// not hold as it says (repair discards it).
    pub checkpoint_contradicted: bool,
}

impl VerifyReport {
    /// Whether nothing at all was found.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// What [`repair`] removed and rebuilt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// What recovery truncated while opening in repair mode.
    pub recovery: RecoveryReport,
    /// The first offset removed because of damage found after recovery (in
    /// a sealed segment, or in the active segment's synced prefix), with how
    /// many records that removed.
    pub truncated_from: Option<(u64, u64)>,
    /// The same cut in full: where the first damaged batch was and what went.
    pub damage_cut: Option<DamageCut>,
    /// Index files that were rewritten.
    pub rebuilt_indexes: Vec<PathBuf>,
    /// A checkpoint or active index that failed its checks, removed before
    /// opening so recovery scanned the active segment from byte 0 (the
    /// writer writes both anew on close).
    pub discarded: Vec<PathBuf>,
}

/// Damage [`repair`] cut away: the log was truncated at its first damaged
/// batch, removing that batch, everything after it in its segment, and every
/// later segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamageCut {
    /// The segment file holding the first damaged batch (it is now the
    /// active segment, holding the valid prefix).
    pub path: PathBuf,
    /// Byte position of the first damaged batch in that file.
    pub position: u64,
    /// Why the batch there is not valid.
    pub reason: String,
    /// The offsets removed.
    pub offsets_removed: Range<u64>,
    /// Later segment files deleted by the cut, oldest first.
    pub removed_segments: Vec<PathBuf>,
}

/// Checks every segment, index and footer of the log in `dir`, its
/// checkpoint and the active segment's index, without changing anything
/// (safe while a writer is running). A missing directory is a finding.
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport> {
    let dir = dir.as_ref();
    let mut report = VerifyReport::default();
    if !dir.is_dir() {
        report.findings.push(Finding {
            path: dir.to_path_buf(),
            position: 0,
            problem: "partition directory is missing: its records are gone (the topic says this partition exists)".into(),
            data_damaged: true,
        });
        return Ok(report);
    }
    let bases = list_segment_bases(dir)?;
    let mut expected: Option<u64> = None;
    let checkpoint = Checkpoint::load(dir);
    for (i, &base) in bases.iter().enumerate() {
        let path = segment::segment_path(dir, base);
        let is_last = i + 1 == bases.len();
        report.segments += 1;
        if let Some(exp) = expected.filter(|&e| e != base) {
            report.findings.push(Finding {
                path: path.clone(),
                position: 0,
                problem: format!(
                    "segment starts at offset {base} but the previous one ends before {exp}"
                ),
                data_damaged: true,
            });
        }
        let file = File::open(&path).map_err(|e| Error::io("open", &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        let footer = read_footer(&file, &path, len, base)?;
        // A private copy, not a map: a live writer may trim this file while
        // the thorough scan below looks past the end of its data.
        let map = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        let mut builder = IndexBuilder::new(4096);
        let scan = segment::scan(&map, base, 0, base, &mut builder, true);
        let records = scan.next_offset - base;
        // The checkpoint of this (active) segment proves its prefix synced.
        let active_checkpoint =
            checkpoint.filter(|c| is_last && footer.is_none() && c.segment_base == base);
        if let Some((pos, why)) = &scan.damage {
            let vouched = active_checkpoint.filter(|c| *pos < c.trusted_len);
            let tail = is_last
                && footer.is_none()
                && vouched.is_none()
                && segment::find_durable_batch_after(&map, *pos, scan.next_offset).is_none();
            report.findings.push(Finding {
                path: path.clone(),
                position: *pos,
                problem: if tail {
                    format!("torn tail (data past the last sync, cut by a crash): {why}")
                } else if let Some(c) = vouched {
                    format!(
                        "{why}; the checkpoint records the first {} bytes (offsets below {}) as synced, so this is damaged durable data, not a torn write",
                        c.trusted_len, c.next_offset
                    )
                } else {
                    why.clone()
                },
                data_damaged: true,
            });
        }
        if let Some(c) = active_checkpoint {
            check_active_checkpoint(dir, &path, &map, base, &c, &scan, &mut report);
        }
        match footer {
            Some(f) => {
                if scan.damage.is_none()
                    && (scan.end != f.data_len || scan.next_offset != f.last_offset + 1)
                {
                    report.findings.push(Finding {
                        path: path.clone(),
                        position: scan.end,
                        problem: format!(
                            "footer says {} bytes holding offsets up to {}, the batches end at byte {} before offset {}",
                            f.data_len, f.last_offset, scan.end, scan.next_offset
                        ),
                        data_damaged: true,
                    });
                }
                let ipath = segment::index_path(dir, base);
                match segment::load_index_file(&ipath, f.index_crc, f.index_len) {
                    Some(ix) if IndexView::new(&ix).is_consistent(f.data_len) => {}
                    _ => report.findings.push(Finding {
                        path: ipath,
                        position: 0,
                        problem: "index missing, short or failing the checksum in its segment's footer (rebuildable)".into(),
                        data_damaged: false,
                    }),
                }
                expected = Some(f.last_offset + 1);
            }
            None if !is_last => {
                report.findings.push(Finding {
                    path: path.clone(),
                    position: len.saturating_sub(FOOTER_LEN as u64),
                    problem: "sealed segment has no valid footer, yet a later segment follows it"
                        .into(),
                    data_damaged: true,
                });
                expected = Some(scan.next_offset);
            }
            None => expected = Some(scan.next_offset),
        }
        report.records += records;
        report.bytes += scan.end;
        report.next_offset = scan.next_offset;
    }
    let cpath = checkpoint::path(dir);
    if checkpoint.is_none() && cpath.exists() {
        report.findings.push(Finding {
            path: cpath,
            position: 0,
            problem: "checkpoint is malformed or fails its checksum: recovery ignores it and scans the active segment from byte 0 (rebuildable)".into(),
            data_damaged: false,
        });
    }
    leftovers(dir, &bases, &mut report)?;
    Ok(report)
}

/// Checks the checkpoint of the active segment at `path` against its bytes
/// (`map`, scanned into `scan`) and the active index it names.
fn check_active_checkpoint(
    dir: &Path,
    path: &Path,
    map: &[u8],
    base: u64,
    c: &Checkpoint,
    scan: &segment::Scan,
    report: &mut VerifyReport,
) {
    let damage_before = scan
        .damage
        .as_ref()
        .is_some_and(|(p, _)| *p < c.trusted_len);
    if c.trusted_len > map.len() as u64 {
        report.findings.push(Finding {
            path: path.to_path_buf(),
            position: map.len() as u64,
            problem: format!(
                "the checkpoint records the first {} bytes (offsets below {}) as synced, but the file holds only {} bytes: synced data is missing",
                c.trusted_len,
                c.next_offset,
                map.len()
            ),
            data_damaged: true,
        });
        report.checkpoint_contradicted = true;
        return;
    }
    // `trusted_len` fits in the map (checked above).
    if !damage_before && let Some(prefix) = map.get(..c.trusted_len as usize) {
        let upto = segment::scan(prefix, base, 0, base, &mut IndexBuilder::new(4096), false);
        if upto.end != c.trusted_len || upto.next_offset != c.next_offset {
            report.findings.push(Finding {
                path: path.to_path_buf(),
                position: upto.end,
                problem: format!(
                    "the checkpoint records bytes 0..{} holding offsets below {} as synced, but the batches there end at byte {} before offset {}",
                    c.trusted_len, c.next_offset, upto.end, upto.next_offset
                ),
                data_damaged: true,
            });
            report.checkpoint_contradicted = true;
        }
    }
    let ipath = segment::index_path(dir, base);
    let index_ok = segment::load_index_file(&ipath, c.index_crc, c.index_len)
        .is_some_and(|ix| IndexView::new(&ix).is_consistent(c.trusted_len.max(1)));
    if !index_ok {
        report.findings.push(Finding {
            path: ipath,
            position: 0,
            problem: "active index missing, short or failing the checksum in the checkpoint: recovery scans the active segment from byte 0 (rebuildable)".into(),
            data_damaged: false,
        });
    }
}

/// Files in a partition directory that are not part of the log.
fn leftovers(dir: &Path, bases: &[u64], report: &mut VerifyReport) -> Result<()> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io("list", dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let note = if name.ends_with(".tmp") {
            "temporary file left by an interrupted write (the next writer open deletes it)"
        } else if let Some(b) = name
            .strip_suffix(".index")
            .and_then(|stem| segment::parse_segment_name(&format!("{stem}.log")))
        {
            if bases.contains(&b) {
                continue;
            }
            "orphan index: its segment is gone (ignored by the log; the next writer open removes it when it lies below the hot log's start)"
        } else if segment::parse_segment_name(&name).is_some()
            || name == "checkpoint"
            || name == "writer.lock"
        {
            continue;
        } else {
            "not a file eventfabric writes here (left alone)"
        };
        report.notices.push(Finding {
            path: dir.join(&name),
            position: 0,
            problem: note.into(),
            data_damaged: false,
        });
    }
    Ok(())
}

/// Repairs the log in `dir` as its writer: truncates a damaged active
/// segment at the first damage, truncates the log at the first damaged batch
/// of any sealed segment (removing everything after it), and rebuilds bad
/// indexes. Reports exactly what was removed.
pub fn repair(dir: impl AsRef<Path>, mut config: LogConfig) -> Result<RepairReport> {
    let dir = dir.as_ref();
    let before = verify(dir)?;
    let cpath = checkpoint::path(dir);
    let active_index = list_segment_bases(dir)
        .ok()
        .and_then(|b| b.last().map(|&base| segment::index_path(dir, base)));
    let mut discard: Vec<PathBuf> = before
        .findings
        .iter()
        .filter(|f| !f.data_damaged && (f.path == cpath || Some(&f.path) == active_index.as_ref()))
        .map(|f| f.path.clone())
        .collect();
    // The checkpoint names the active index by CRC: one goes with the other
    // (a writer whose checkpoint survives would not rewrite the index).
    if (before.checkpoint_contradicted || !discard.is_empty())
        && cpath.exists()
        && !discard.contains(&cpath)
    {
        discard.push(cpath.clone());
    }
    if !discard.is_empty() {
        // Without them recovery scans the active segment from byte 0, and
        // the close writes both anew for what was kept. As the writer (its
        // lock held), so no one appends meanwhile.
        let _lock = DirLock::acquire(dir)?;
        let io = Io::new(config.faults());
        for p in &discard {
            io.remove(p)?;
        }
        io.sync_dir(dir)?;
    }
    config.recovery = RecoveryMode::TruncateAtFirstDamage;
    let log = Log::open(dir, config)?;
    let mut report = RepairReport {
        recovery: log.recovery_report().clone(),
        discarded: discard,
        ..RepairReport::default()
    };
    // Find the first damaged batch of any segment. Recovery (above) only
    // looked past the active segment's checkpoint: damage before it, in
    // bytes that were synced, is found here by scanning from byte 0.
    let segments = log.segments();
    let mut damaged_at = None;
    for (i, info) in segments.iter().enumerate() {
        let (scan, reason) = if info.sealed {
            let file = File::open(&info.path).map_err(|e| Error::io("open", &info.path, e))?;
            let map = mmap::map_read_only(&file, &info.path, info.size_bytes, false)?;
            let scan = segment::scan(
                &map,
                info.base_offset,
                0,
                info.base_offset,
                &mut IndexBuilder::new(4096),
                false,
            );
            let reason = scan.damage.as_ref().map(|(_, why)| why.clone());
            (scan, reason)
        } else {
            // The writer's own file, read privately and thoroughly (zeros
            // followed by data are damage too).
            let bytes = std::fs::read(&info.path).map_err(|e| Error::io("read", &info.path, e))?;
            let scan = segment::scan(
                &bytes,
                info.base_offset,
                0,
                info.base_offset,
                &mut IndexBuilder::new(4096),
                true,
            );
            let reason = scan.damage.as_ref().map(|(_, why)| why.clone());
            (scan, reason)
        };
        if scan.next_offset < info.next_offset {
            damaged_at = Some((
                i,
                scan.end,
                scan.next_offset,
                reason.unwrap_or_else(|| {
                    format!(
                        "the batches end at offset {} but the segment holds offsets up to {}",
                        scan.next_offset,
                        info.next_offset - 1
                    )
                }),
            ));
            break;
        }
    }
    if let Some((i, position, offset, reason)) = damaged_at
        && let Some((damaged, later)) = segments.get(i..).and_then(<[_]>::split_first)
    {
        let next = log.next_offset();
        let path = damaged.path.clone();
        log::warn!(
            "repair: cutting {} at byte {position} ({reason}): removing offsets {offset}..{next}",
            path.display()
        );
        log.truncate(offset)?;
        report.truncated_from = Some((offset, next - offset));
        report.damage_cut = Some(DamageCut {
            path,
            position,
            reason,
            offsets_removed: offset..next,
            removed_segments: later.iter().map(|s| s.path.clone()).collect(),
        });
    }
    // Reading every sealed segment's index rebuilds the bad ones.
    for info in log.segments().iter().filter(|s| s.sealed) {
        let ipath = segment::index_path(dir, info.base_offset);
        if before
            .findings
            .iter()
            .any(|f| !f.data_damaged && f.path == ipath)
        {
            log.read(info.base_offset, crate::ReadLimit::records(1))?;
            report.rebuilt_indexes.push(ipath);
        }
    }
    log.close()?;
    Ok(report)
}
