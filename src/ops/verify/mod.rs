//! Offline checking and explicit repair of a whole data directory.
//!
//! Owns `verify_data_dir` and `repair_data_dir`: every partition log (through
//! `storage::verify`), every warm and cold archive, every state log (group
//! cursors, queue state, DLQ replay ledgers) and stray files, each finding
//! with its file, byte and severity. It never runs implicitly, and a repair
//! never removes the only copy of accepted data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fabric::{Fabric, FabricConfig, PartitionCheck, PartitionRepair};
use crate::storage::io::Io;
use crate::storage::lock::DirLock;
use crate::storage::log::{Log, list_segment_bases};
use crate::storage::segment::{self};
use crate::storage::verify::{repair, verify};
use crate::topic::partition_dir;

mod archives;
mod repair;
mod state_logs;

use archives::check_archives;
pub use repair::repair_data_dir;
use state_logs::{Ends, check_state_logs};

/// How serious a finding outside the hot partition logs is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Severity {
    /// Accepted data is damaged or missing (or, after a repair: it was left
    /// in place, because it is the only copy).
    Damage,
    /// A file that can be cut or removed without losing accepted data: a
    /// torn state-log tail, the unfinished half of a tiering (after a
    /// repair: it was).
    Repairable,
    /// Not a problem: a leftover file, or a file in use by a live process.
    Notice,
}

/// A finding about a file outside the hot logs (archives, state logs,
/// leftovers), or something a data-directory repair did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirFinding {
    /// The file or directory.
    pub path: PathBuf,
    /// Byte position of the problem in that file (0 when it is the file).
    pub position: u64,
    /// What is wrong, or what was done.
    pub problem: String,
    /// How serious it is.
    pub severity: Severity,
}

/// What [`verify_data_dir`] read and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataDirReport {
    /// Every partition's hot log, as [`crate::Fabric::verify`] reports it.
    pub partitions: Vec<PartitionCheck>,
    /// Warm archive segments checked.
    pub warm_archives: usize,
    /// Cold archive segments checked.
    pub cold_archives: usize,
    /// Records in the archives that passed every check.
    pub archive_records: u64,
    /// State logs checked (cursor logs, queue states, replay ledgers).
    pub state_logs: usize,
    /// Findings outside the hot logs, in the order checked.
    pub findings: Vec<DirFinding>,
}

impl DataDirReport {
    /// Problems found: hot-log findings plus every finding that is not a notice.
    pub fn problems(&self) -> usize {
        self.partitions
            .iter()
            .map(|p| p.report.findings.len())
            .sum::<usize>()
            + self
                .findings
                .iter()
                .filter(|f| f.severity != Severity::Notice)
                .count()
    }

    /// Whether no problem was found (notices allowed).
    pub fn is_clean(&self) -> bool {
        self.problems() == 0
    }
}

/// What [`repair_data_dir`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataDirRepair {
    /// Every partition's hot-log repair, as [`crate::Fabric::repair`] reports it.
    pub partitions: Vec<PartitionRepair>,
    /// Everything else done or deliberately not done, in order: `Notice` =
    /// a leftover removed, `Repairable` = repaired without losing accepted
    /// data, `Damage` = damaged data left in place (the only copy).
    pub actions: Vec<DirFinding>,
}

fn dir_finding(
    path: &Path,
    position: u64,
    problem: impl Into<String>,
    severity: Severity,
) -> DirFinding {
    DirFinding {
        path: path.to_path_buf(),
        position,
        problem: problem.into(),
        severity,
    }
}

fn warm_root(root: &Path, config: &FabricConfig) -> PathBuf {
    config
        .warm_dir
        .clone()
        .unwrap_or_else(|| root.join(crate::tier::WARM_DIR))
}

fn cold_root(root: &Path, config: &FabricConfig) -> PathBuf {
    config
        .cold_dir
        .clone()
        .unwrap_or_else(|| root.join(crate::tier::COLD_DIR))
}

fn parse_archive_name(name: &str) -> Option<u64> {
    let stem = name
        .strip_suffix(crate::storage::archive::ARCHIVE_EXTENSION)?
        .strip_suffix('.')?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// Sorted file names of `dir` (empty when it does not exist).
fn file_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// The pid of the live process holding the `flock` on `lock_path`, read
/// from `/proc/locks` without taking the lock (taking it, even briefly,
/// could make the owner's own open fail). `None` when nobody holds it or
/// `/proc/locks` cannot be read.
fn lock_holder(lock_path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(lock_path).ok()?;
    let dev = meta.dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" ("->" marks a waiter)
        if fields.get(1) != Some(&"FLOCK") {
            return None;
        }
        let pid: u32 = fields.get(4)?.parse().ok()?;
        let mut id = fields.get(5)?.split(':');
        let maj = u64::from_str_radix(id.next()?, 16).ok()?;
        let min = u64::from_str_radix(id.next()?, 16).ok()?;
        let ino: u64 = id.next()?.parse().ok()?;
        (maj == major && min == minor && ino == meta.ino()).then_some(pid)
    })
}

/// Checks a whole data directory without changing anything (safe while a
/// writer runs): every partition's hot log (as [`crate::Fabric::verify`]),
/// its warm and cold archives (every block and batch, the offset chain, the
/// warm tier ending exactly where the hot log starts), the consumer-side
/// state logs (read without their locks; a live holder is reported as "in
/// use"), and leftover temporary or orphan files. `config` names the warm and
/// cold directories. A `topic.json` that fails its checks is an error naming
/// the file; everything else is a finding.
pub fn verify_data_dir(root: impl AsRef<Path>, config: &FabricConfig) -> Result<DataDirReport> {
    let root = root.as_ref();
    let topics = Fabric::open_read_only_config(root)?;
    let (warm, cold) = (warm_root(root, config), cold_root(root, config));
    let mut report = DataDirReport::default();
    let mut ends = Ends::new();
    for (name, dir, tc) in &topics {
        let mut parts = Vec::new();
        for p in 0..tc.partitions {
            let pd = partition_dir(dir, p);
            let check = verify(&pd)?;
            let present = pd.is_dir();
            parts.push(present.then_some(check.next_offset));
            let bases = if present {
                list_segment_bases(&pd)?
            } else {
                Vec::new()
            };
            let cold_dir = cold.join(name).join(p.to_string());
            check_archives(
                &warm.join(name).join(p.to_string()),
                name,
                p,
                present.then_some(&bases[..]),
                Some(&cold_dir),
                &mut report,
            )?;
            check_archives(&cold_dir, name, p, None, None, &mut report)?;
            report.partitions.push(PartitionCheck {
                topic: name.clone(),
                partition: p,
                dir: pd,
                report: check,
            });
        }
        for entry in file_names(dir)? {
            let path = dir.join(&entry);
            let extra = entry.parse::<u32>().is_ok_and(|p| p >= tc.partitions);
            if entry.ends_with(".tmp") || extra {
                report.findings.push(dir_finding(
                    &path,
                    0,
                    if extra {
                        "partition directory beyond the topic's partition count: an interrupted add-partitions (ignored)"
                    } else {
                        "temporary file of an interrupted topic.json write (ignored)"
                    },
                    Severity::Notice,
                ));
            }
        }
        ends.insert(name.clone(), parts);
    }
    let topics_dir = root.join(crate::fabric::TOPICS_DIR);
    for entry in file_names(&topics_dir)? {
        if entry.starts_with(".creating-") || entry.starts_with(".deleting-") {
            report.findings.push(dir_finding(
                &topics_dir.join(&entry),
                0,
                "a topic being created or deleted when its process stopped (the next writer open removes it)",
                Severity::Notice,
            ));
        }
    }
    for entry in file_names(&warm)? {
        if !ends.contains_key(&entry) {
            report.findings.push(dir_finding(
                &warm.join(&entry),
                0,
                "warm archives of a topic that does not exist (left alone)",
                Severity::Notice,
            ));
        }
    }
    check_state_logs(root, &ends, &mut report)?;
    Ok(report)
}
