//! Offline checking and explicit repair of a partition log directory.
//!
//! Owns `verify` (read every byte of every segment, footer and index and
//! report each problem with file and byte position, changing nothing) and
//! `repair` (truncate to the last valid record and rebuild indexes, reporting
//! exactly what was removed). It never runs implicitly: opening a log does
//! not repair corruption, only these calls do.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::index::{IndexBuilder, IndexView};
use crate::log::{Log, LogConfig, RecoveryMode, RecoveryReport, list_segment_bases, read_footer};
use crate::mmap;
use crate::segment::{self, FOOTER_LEN};

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

/// Checks every segment, index and footer of the log in `dir` without
/// changing anything (safe while a writer is running).
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport> {
    let dir = dir.as_ref();
    let bases = list_segment_bases(dir)?;
    let mut report = VerifyReport::default();
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
        if let Some((pos, why)) = &scan.damage {
            // The checkpoint proves its prefix of the active segment synced.
            let vouched = checkpoint.filter(|c| {
                is_last && footer.is_none() && c.segment_base == base && *pos < c.trusted_len
            });
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
    }
    Ok(report)
}

/// Repairs the log in `dir` as its writer: truncates a damaged active
/// segment at the first damage, truncates the log at the first damaged batch
/// of any sealed segment (removing everything after it), and rebuilds bad
/// indexes. Reports exactly what was removed.
pub fn repair(dir: impl AsRef<Path>, mut config: LogConfig) -> Result<RepairReport> {
    let dir = dir.as_ref();
    let before = verify(dir)?;
    config.recovery = RecoveryMode::TruncateAtFirstDamage;
    let log = Log::open(dir, config)?;
    let mut report = RepairReport {
        recovery: log.recovery_report().clone(),
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
    if let Some((i, position, offset, reason)) = damaged_at {
        let next = log.next_offset();
        let path = segments[i].path.clone();
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
            removed_segments: segments[i + 1..].iter().map(|s| s.path.clone()).collect(),
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
