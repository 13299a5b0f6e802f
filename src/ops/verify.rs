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

/// What the archives of one partition's warm tier look like.
#[derive(Debug, Default)]
struct WarmState {
    /// End of the chain of valid archives from the first, if any.
    valid_end: Option<u64>,
    /// Damaged archives the hot log still holds (an unfinished tiering).
    removable: Vec<PathBuf>,
    /// Leftover temporary files.
    temporaries: Vec<PathBuf>,
}

/// Checks the archive segments in `dir`: every block CRC and batch, the
/// offset chain, and (warm tier, `hot` = the hot log's segment bases) that
/// the warm tier ends exactly where the hot log starts.
fn check_archives(
    dir: &Path,
    topic: &str,
    partition: u32,
    hot: Option<&[u64]>,
    cold_dir: Option<&Path>,
    report: &mut DataDirReport,
) -> Result<WarmState> {
    let warm = hot.is_some();
    let tier = if warm { "warm" } else { "cold" };
    let hot_earliest = hot.and_then(|b| b.first().copied());
    let mut state = WarmState::default();
    let mut chain_end: Option<u64> = None;
    let mut chain_ok = true;
    let mut last_path = None;
    for name in file_names(dir)? {
        let path = dir.join(&name);
        let Some(base) = parse_archive_name(&name) else {
            let note = if name.ends_with(".tmp") {
                state.temporaries.push(path.clone());
                "temporary file of an interrupted archive write (the next writer open deletes it)"
            } else if warm && name.ends_with(".remote") {
                "marker of a warm archive held in an object store (fabric verify --remote checks it)"
            } else {
                "not a file eventfabric writes here (left alone)"
            };
            report
                .findings
                .push(dir_finding(&path, 0, note, Severity::Notice));
            continue;
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            // Moved to cold or deleted by a live writer's retention meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        if warm {
            report.warm_archives += 1;
        } else {
            report.cold_archives += 1;
        }
        match crate::storage::archive::verify_bytes(&bytes, &path) {
            Ok(s) if s.topic != topic || s.partition != partition || s.base_offset != base => {
                report.findings.push(dir_finding(
                    &path,
                    0,
                    format!(
                        "{tier} archive holds topic {:?} partition {} from offset {}, not what its place says ({topic:?} partition {partition} from {base})",
                        s.topic, s.partition, s.base_offset
                    ),
                    Severity::Damage,
                ));
                chain_ok = false;
            }
            Ok(s) => {
                if let Some(end) = chain_end.filter(|&e| e != s.base_offset) {
                    let what = if end < s.base_offset {
                        "a gap: offsets in between are missing"
                    } else {
                        "an overlap"
                    };
                    report.findings.push(dir_finding(
                        &path,
                        0,
                        format!(
                            "{tier} archive starts at offset {} but the previous one ends before {end}: {what}",
                            s.base_offset
                        ),
                        if warm { Severity::Damage } else { Severity::Notice },
                    ));
                    chain_ok = chain_ok && !warm;
                }
                report.archive_records += s.record_count;
                chain_end = Some(s.next_offset);
                if chain_ok {
                    state.valid_end = Some(s.next_offset);
                }
                last_path = Some(path);
            }
            Err(e) => {
                let (position, why) = match e {
                    Error::Corrupted {
                        position, reason, ..
                    } => (position, reason),
                    other => (0, other.to_string()),
                };
                chain_ok = false;
                chain_end = None;
                if !warm {
                    report.findings.push(dir_finding(
                        &path,
                        position,
                        format!("cold archive: {why}"),
                        Severity::Damage,
                    ));
                } else if hot_earliest.is_some_and(|h| h <= base) {
                    state.removable.push(path.clone());
                    report.findings.push(dir_finding(
                        &path,
                        position,
                        format!(
                            "warm archive: {why}; the hot log still holds its offsets (from {base}): the unfinished half of an interrupted tiering (--repair or the next writer open removes it)"
                        ),
                        Severity::Repairable,
                    ));
                } else {
                    let copy = cold_dir
                        .map(|d| d.join(&name))
                        .filter(|c| {
                            std::fs::read(c)
                                .is_ok_and(|b| crate::storage::archive::verify_bytes(&b, c).is_ok())
                        })
                        .map_or(String::new(), |c| {
                            format!("; a valid copy is in {}: copy it back", c.display())
                        });
                    report.findings.push(dir_finding(
                        &path,
                        position,
                        format!(
                            "warm archive: {why}; its offsets (from {base}) are no longer in the hot log, so this is the only copy: restore it from a backup{copy}"
                        ),
                        Severity::Damage,
                    ));
                }
            }
        }
    }
    if let (Some(bases), Some(end), Some(last)) = (hot, chain_end, last_path)
        && let Some(&h) = bases.first()
    {
        if end < h {
            report.findings.push(dir_finding(
                &last,
                0,
                format!(
                    "warm tier ends before offset {end} but the hot log starts at {h}: offsets in between are missing"
                ),
                Severity::Damage,
            ));
        } else if end > h {
            if bases.contains(&end) {
                for pair in bases.windows(2).filter(|w| w[1] <= end) {
                    report.findings.push(dir_finding(
                        &last,
                        0,
                        format!(
                            "hot segment {:020}.log (offsets {}..{}) is also held by the warm tier, which ends before {end}: an interrupted tiering (--repair or the next writer open removes the hot copy)",
                            pair[0], pair[0], pair[1]
                        ),
                        Severity::Notice,
                    ));
                }
            } else {
                report.findings.push(dir_finding(
                    &last,
                    0,
                    format!(
                        "the hot log starts at offset {h}, inside the warm tier (which ends before {end}), and no whole hot segment covers the overlap"
                    ),
                    Severity::Damage,
                ));
            }
        }
    }
    Ok(state)
}

/// A state log's intact records, or `None` when it could not be read (a
/// finding says why). Reads without taking the lock.
fn check_state_log(path: &Path, report: &mut DataDirReport) -> Result<Option<Vec<Vec<u8>>>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    report.state_logs += 1;
    let holder = path
        .file_name()
        .map(|n| path.with_file_name(format!("{}.lock", n.to_string_lossy())))
        .and_then(|l| lock_holder(&l));
    if let Some(pid) = holder {
        report.findings.push(dir_finding(
            path,
            0,
            format!("in use by pid {pid}: read without taking its lock"),
            Severity::Notice,
        ));
    }
    match crate::storage::statelog::parse_bytes(&bytes, path) {
        Ok(records) => {
            let end = crate::storage::statelog::FILE_HEADER_LEN as u64
                + records
                    .iter()
                    .map(|r| (crate::storage::statelog::RECORD_HEADER_LEN + r.len()) as u64)
                    .sum::<u64>();
            let torn = (bytes.len() as u64).saturating_sub(end);
            if torn > 0 {
                let (problem, severity) = match holder {
                    Some(pid) => (
                        format!(
                            "the last {torn} bytes are not an intact record: an append in flight by pid {pid}, or an unsynced tail its next open cuts"
                        ),
                        Severity::Notice,
                    ),
                    None => (
                        format!(
                            "torn tail: the last {torn} bytes are an unacknowledged append cut by a crash (the next open or --repair cuts them)"
                        ),
                        Severity::Repairable,
                    ),
                };
                report
                    .findings
                    .push(dir_finding(path, end, problem, severity));
            }
            Ok(Some(records))
        }
        Err(Error::Corrupted {
            position, reason, ..
        }) => {
            report
                .findings
                .push(dir_finding(path, position, reason, Severity::Damage));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Topics on disk with each partition's next offset (`None`: directory missing).
type Ends = BTreeMap<String, Vec<Option<u64>>>;

/// Checks cursor logs, queue states and replay ledgers, and that no durable
/// cursor or ack floor points past the end of its partition's log.
fn check_state_logs(root: &Path, ends: &Ends, report: &mut DataDirReport) -> Result<()> {
    // A live writer may have appended (and a consumer committed past) what
    // the first look at the log saw: look at the log again before saying so.
    let still_past = |topic: &str, p: u32, at: u64| {
        let dir = partition_dir(&root.join(crate::fabric::TOPICS_DIR).join(topic), p);
        Log::open_read_only(&dir).map_or(true, |log| at > log.next_offset())
    };
    let beyond = |what: String, at: u64, end: u64| {
        format!(
            "{what} is at offset {at}, but the partition's log ends before {end}: records below a persisted position are missing (a power loss or a repair removed them); the offsets they had will be reused by new records"
        )
    };
    let groups = root.join(crate::consume::group::store::GROUPS_DIR);
    for group in file_names(&groups)? {
        let dir = groups.join(&group);
        for name in file_names(&dir)? {
            let path = dir.join(&name);
            if name.ends_with(".tmp") {
                report.findings.push(dir_finding(
                    &path,
                    0,
                    "temporary file of an interrupted compaction (the next open deletes it)",
                    Severity::Notice,
                ));
                continue;
            }
            let Some(topic) = name.strip_suffix(crate::consume::group::store::CURSORS_SUFFIX)
            else {
                continue;
            };
            if check_state_log(&path, report)?.is_none() {
                continue;
            }
            let state = match crate::consume::group::store::read_state(root, &group, topic) {
                Ok(s) => s,
                Err(Error::Corrupted {
                    position, reason, ..
                }) => {
                    report
                        .findings
                        .push(dir_finding(&path, position, reason, Severity::Damage));
                    continue;
                }
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Some(parts) = ends.get(topic) else {
                report.findings.push(dir_finding(
                    &path,
                    0,
                    format!(
                        "cursor log of group {group:?} for topic {topic:?}, which does not exist"
                    ),
                    Severity::Notice,
                ));
                continue;
            };
            for (&p, &at) in &state.committed {
                match parts.get(p as usize) {
                    None => report.findings.push(dir_finding(&path, 0, format!("group {group:?} commits partition {p}, which topic {topic:?} does not have"), Severity::Damage)),
                    Some(Some(end)) if at > *end && still_past(topic, p, at) => report.findings.push(dir_finding(&path, 0, beyond(format!("group {group:?}'s committed cursor of {topic} partition {p}"), at, *end), Severity::Damage)),
                    _ => {}
                }
            }
        }
    }
    let queues = root.join(crate::consume::queue::QUEUES_DIR);
    for queue in file_names(&queues)? {
        let path = queues.join(&queue).join("state");
        let Some(records) = check_state_log(&path, report)? else {
            continue;
        };
        let state = match crate::consume::queue_state::fold(&records, &path) {
            Ok(s) => s,
            Err(Error::Corrupted {
                position, reason, ..
            }) => {
                report
                    .findings
                    .push(dir_finding(&path, position, reason, Severity::Damage));
                continue;
            }
            Err(e) => return Err(e),
        };
        let Some(topic) = state.topic.as_deref() else {
            continue;
        };
        let Some(parts) = ends.get(topic) else {
            report.findings.push(dir_finding(
                &path,
                0,
                format!("state of queue {queue:?} over topic {topic:?}, which does not exist"),
                Severity::Notice,
            ));
            continue;
        };
        for (&p, ps) in &state.partitions {
            match parts.get(p as usize) {
                None => report.findings.push(dir_finding(&path, 0, format!("queue {queue:?} holds state for partition {p}, which topic {topic:?} does not have"), Severity::Damage)),
                Some(Some(end)) if ps.floor.max(ps.delivered_to) > *end
                    && still_past(topic, p, ps.floor.max(ps.delivered_to)) =>
                {
                    if ps.floor > *end {
                        report.findings.push(dir_finding(&path, 0, beyond(format!("queue {queue:?}'s ack floor of {topic} partition {p}"), ps.floor, *end), Severity::Damage));
                    } else if ps.delivered_to > *end {
                        report.findings.push(dir_finding(&path, 0, beyond(format!("queue {queue:?}'s delivered position of {topic} partition {p}"), ps.delivered_to, *end), Severity::Damage));
                    }
                }
                _ => {}
            }
        }
    }
    let replay = root.join(crate::consume::dlq_replay::REPLAY_DIR);
    for dlq in file_names(&replay)? {
        let path = replay.join(&dlq).join("replayed");
        check_state_log(&path, report)?;
    }
    Ok(())
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

/// Repairs a whole data directory as its writer (taking the data-directory
/// lock). Per partition, oldest tier first: hot segments that a complete
/// warm tier also holds are removed (an interrupted tiering; the warm copy
/// wins, as the next writer open would decide), a damaged warm archive whose
/// offsets the hot log still holds is removed (the hot copy wins), then the
/// hot log is repaired like [`repair`]. A damaged archive that is the only
/// copy of its records is never removed: it is reported and left in place.
/// State logs with a torn tail and no live holder are opened, which cuts the
/// tail; leftover temporary files and orphan indexes are removed. Every
/// action is reported.
pub fn repair_data_dir(root: impl AsRef<Path>, config: &FabricConfig) -> Result<DataDirRepair> {
    let root = root.as_ref();
    let _lock = DirLock::acquire_file(root, crate::fabric::LOCK_FILE)?;
    let io = Io::new(None);
    let before = verify_data_dir(root, config)?;
    let (warm, cold) = (warm_root(root, config), cold_root(root, config));
    let mut out = DataDirRepair::default();
    for (name, dir, tc) in Fabric::open_read_only_config(root)? {
        for p in 0..tc.partitions {
            let pd = partition_dir(&dir, p);
            if !pd.is_dir() {
                out.actions.push(dir_finding(
                    &pd,
                    0,
                    "partition directory is missing: not recreated (restore it from a backup; a writer open recreates it empty)",
                    Severity::Damage,
                ));
                continue;
            }
            let wdir = warm.join(&name).join(p.to_string());
            let cdir = cold.join(&name).join(p.to_string());
            let bases = list_segment_bases(&pd)?;
            let mut scratch = DataDirReport::default();
            let state = check_archives(&wdir, &name, p, Some(&bases), Some(&cdir), &mut scratch)?;
            let cold_state = check_archives(&cdir, &name, p, None, None, &mut scratch)?;
            for f in scratch
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Damage)
            {
                out.actions.push(dir_finding(
                    &f.path,
                    f.position,
                    format!("left in place: {}", f.problem),
                    Severity::Damage,
                ));
            }
            for t in state.temporaries.iter().chain(&cold_state.temporaries) {
                io.remove(t)?;
                out.actions.push(dir_finding(
                    t,
                    0,
                    "removed leftover temporary file",
                    Severity::Notice,
                ));
            }
            for a in &state.removable {
                io.remove(a)?;
                out.actions.push(dir_finding(
                    a,
                    0,
                    "removed damaged warm archive: the hot log holds its offsets (an interrupted tiering)",
                    Severity::Repairable,
                ));
            }
            if !state.removable.is_empty() || !state.temporaries.is_empty() {
                io.sync_dir(&wdir)?;
            }
            if !cold_state.temporaries.is_empty() {
                io.sync_dir(&cdir)?;
            }
            if let Some(end) = state.valid_end {
                drop_hot_copies(&io, &pd, &bases, end, &mut out)?;
            }
            // The writer open in `repair` deletes these; say so.
            for name in file_names(&pd)?.iter().filter(|n| n.ends_with(".tmp")) {
                out.actions.push(dir_finding(
                    &pd.join(name),
                    0,
                    "removed leftover temporary file",
                    Severity::Notice,
                ));
            }
            let report = repair(&pd, tc.log_config(None))?;
            out.partitions.push(PartitionRepair {
                topic: name.clone(),
                partition: p,
                dir: pd.clone(),
                report,
            });
            remove_orphan_indexes(&io, &pd, &mut out)?;
        }
    }
    // State logs: cut torn tails nobody is appending to.
    for f in before
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Repairable && f.problem.starts_with("torn tail"))
    {
        let (Some(dir), Some(name)) = (f.path.parent(), f.path.file_name()) else {
            continue;
        };
        let name = name.to_string_lossy();
        match crate::storage::statelog::StateLog::open(&io, dir, &name) {
            Ok(opened) => out.actions.push(dir_finding(
                &f.path,
                f.position,
                format!(
                    "cut {} bytes of torn tail (an unacknowledged append) at byte {}",
                    opened.torn_tail_bytes, f.position
                ),
                Severity::Repairable,
            )),
            Err(Error::Locked { pid, .. }) => out.actions.push(dir_finding(
                &f.path,
                f.position,
                format!("in use by pid {pid}: not repaired"),
                Severity::Notice,
            )),
            Err(e) => return Err(e),
        }
    }
    for f in before.findings.iter().filter(|f| {
        f.severity == Severity::Damage
            && f.path.starts_with(root)
            && is_state_log_finding(root, &f.path)
    }) {
        out.actions.push(dir_finding(
            &f.path,
            f.position,
            format!(
                "left in place: {}; restore the file from a backup or reset its owner's state",
                f.problem
            ),
            Severity::Damage,
        ));
    }
    Ok(out)
}

fn is_state_log_finding(root: &Path, path: &Path) -> bool {
    [
        crate::consume::group::store::GROUPS_DIR,
        crate::consume::queue::QUEUES_DIR,
        crate::consume::dlq_replay::REPLAY_DIR,
    ]
    .iter()
    .any(|d| path.starts_with(root.join(d)))
}

/// Removes the hot segments below `warm_end` (the end of a complete warm
/// tier) as the writer's tiering recovery would: the warm copy wins.
fn drop_hot_copies(
    io: &Io,
    dir: &Path,
    bases: &[u64],
    warm_end: u64,
    out: &mut DataDirRepair,
) -> Result<()> {
    if bases.first().is_none_or(|&h| h >= warm_end) || !bases.contains(&warm_end) {
        return Ok(());
    }
    let _lock = DirLock::acquire(dir)?;
    for pair in bases.windows(2).filter(|w| w[1] <= warm_end) {
        let path = segment::segment_path(dir, pair[0]);
        io.remove(&path)?;
        io.remove(&segment::index_path(dir, pair[0]))?;
        out.actions.push(dir_finding(
            &path,
            0,
            format!(
                "removed hot segment (offsets {}..{}): the warm tier holds the same offsets, complete (an interrupted tiering)",
                pair[0], pair[1]
            ),
            Severity::Repairable,
        ));
    }
    io.sync_dir(dir)
}

/// Removes index files whose segment is gone.
fn remove_orphan_indexes(io: &Io, dir: &Path, out: &mut DataDirRepair) -> Result<()> {
    let bases = list_segment_bases(dir)?;
    let mut removed = false;
    for name in file_names(dir)? {
        let Some(base) = name
            .strip_suffix(".index")
            .and_then(|stem| segment::parse_segment_name(&format!("{stem}.log")))
        else {
            continue;
        };
        if !bases.contains(&base) {
            let path = dir.join(&name);
            io.remove(&path)?;
            out.actions.push(dir_finding(
                &path,
                0,
                "removed orphan index (its segment is gone)",
                Severity::Notice,
            ));
            removed = true;
        }
    }
    if removed {
        io.sync_dir(dir)?;
    }
    Ok(())
}
