//! Explicit repair of a whole data directory: partition logs, stray
//! index files and hot copies already archived.
//!
//! Owns `repair_data_dir`; it must never remove the only copy of accepted
//! data.

use super::*;

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

pub(super) fn is_state_log_finding(root: &Path, path: &Path) -> bool {
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
pub(super) fn drop_hot_copies(
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
    for &[base, next] in bases.array_windows().filter(|[_, next]| *next <= warm_end) {
        let path = segment::segment_path(dir, base);
        io.remove(&path)?;
        io.remove(&segment::index_path(dir, base))?;
        out.actions.push(dir_finding(
            &path,
            0,
            format!(
                "removed hot segment (offsets {}..{}): the warm tier holds the same offsets, complete (an interrupted tiering)",
                base, next
            ),
            Severity::Repairable,
        ));
    }
    io.sync_dir(dir)
}

/// Removes index files whose segment is gone.
pub(super) fn remove_orphan_indexes(io: &Io, dir: &Path, out: &mut DataDirRepair) -> Result<()> {
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
