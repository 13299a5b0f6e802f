//! Checks of the warm and cold archives of a data directory: names, index
//! and data files, and what the tiers' state says they hold.
//!
//! Owns the archive findings of `verify_data_dir`; it must never change a
//! file.

use super::*;

/// What the archives of one partition's warm tier look like.
#[derive(Debug, Default)]
pub(super) struct WarmState {
    /// End of the chain of valid archives from the first, if any.
    pub(super) valid_end: Option<u64>,
    /// Damaged archives the hot log still holds (an unfinished tiering).
    pub(super) removable: Vec<PathBuf>,
    /// Leftover temporary files.
    pub(super) temporaries: Vec<PathBuf>,
}

/// Checks the archive segments in `dir`: every block CRC and batch, the
/// offset chain, and (warm tier, `hot` = the hot log's segment bases) that
/// the warm tier ends exactly where the hot log starts.
pub(super) fn check_archives(
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
        if warm && name.ends_with(".remote") {
            // A remote archive is a link of the same chain: its offsets come
            // from the marker (no request); its bytes are --remote's job.
            match remote_link(&path, &name, topic, partition) {
                Ok(Some((base_offset, next_offset))) => {
                    if chain_end.is_some_and(|e| e != base_offset) {
                        report.findings.push(dir_finding(
                            &path,
                            0,
                            format!(
                                "remote warm archive starts at offset {base_offset} but the previous archive ends before {}: {}",
                                chain_end.unwrap_or_default(),
                                if chain_end.is_some_and(|e| e < base_offset) {
                                    "a gap: offsets in between are missing"
                                } else {
                                    "an overlap"
                                }
                            ),
                            Severity::Damage,
                        ));
                        chain_ok = false;
                    }
                    report.warm_archives += 1;
                    chain_end = Some(next_offset);
                    if chain_ok {
                        state.valid_end = Some(next_offset);
                    }
                    last_path = Some(path);
                }
                Ok(None) => {
                    // Without feature tier-s3 the marker cannot be read: the
                    // chain is not judged across it.
                    report.findings.push(dir_finding(
                        &path,
                        0,
                        "marker of a warm archive held in an object store (this build has no feature tier-s3: its offsets are not checked)",
                        Severity::Notice,
                    ));
                    chain_end = None;
                    last_path = None;
                }
                Err((position, why)) => {
                    report.findings.push(dir_finding(
                        &path,
                        position,
                        format!("remote warm archive marker: {why}"),
                        Severity::Damage,
                    ));
                    chain_ok = false;
                    chain_end = None;
                    last_path = None;
                }
            }
            continue;
        }
        let Some(base) = parse_archive_name(&name) else {
            let note = if name.ends_with(".tmp") {
                state.temporaries.push(path.clone());
                "temporary file of an interrupted archive write (the next writer open deletes it)"
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
                for [base, next] in bases.array_windows().filter(|[_, next]| *next <= end) {
                    report.findings.push(dir_finding(
                        &last,
                        0,
                        format!(
                            "hot segment {:020}.log (offsets {}..{}) is also held by the warm tier, which ends before {end}: an interrupted tiering (--repair or the next writer open removes the hot copy)",
                            base, base, next
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

/// The offsets the remote archive recorded by the marker `path` holds, read
/// from the marker alone; `None` when this build cannot read markers (no
/// feature `tier-s3`); `Err` the position and reason of damage.
#[cfg_attr(
    not(feature = "tier-s3"),
    expect(
        unused_variables,
        reason = "markers are read with feature tier-s3 only"
    )
)]
fn remote_link(
    path: &Path,
    name: &str,
    topic: &str,
    partition: u32,
) -> std::result::Result<Option<(u64, u64)>, (u64, String)> {
    #[cfg(feature = "tier-s3")]
    {
        let s = crate::tier::remote::marker_summary(path).map_err(|e| match e {
            Error::Corrupted {
                position, reason, ..
            } => (position, reason),
            other => (0, other.to_string()),
        })?;
        let base = name
            .strip_suffix(".remote")
            .and_then(|b| b.parse::<u64>().ok());
        if s.topic != topic || s.partition != partition || base != Some(s.base_offset) {
            return Err((
                0,
                format!(
                    "records topic {:?} partition {} from offset {}, not what its place says ({topic:?} partition {partition} from {name})",
                    s.topic, s.partition, s.base_offset
                ),
            ));
        }
        Ok(Some((s.base_offset, s.next_offset)))
    }
    #[cfg(not(feature = "tier-s3"))]
    Ok(None)
}
