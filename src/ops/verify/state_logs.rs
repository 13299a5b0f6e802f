//! Checks of the state logs of a data directory: group cursors, queue
//! state and DLQ replay ledgers, each against the partition ends.
//!
//! Owns the state-log findings of `verify_data_dir`; it must never change a
//! file.

use super::*;

/// A state log's intact records, or `None` when it could not be read (a
/// finding says why). Reads without taking the lock.
pub(super) fn check_state_log(
    path: &Path,
    report: &mut DataDirReport,
) -> Result<Option<Vec<Vec<u8>>>> {
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
pub(super) type Ends = BTreeMap<String, Vec<Option<u64>>>;

/// Checks cursor logs, queue states and replay ledgers, and that no durable
/// cursor or ack floor points past the end of its partition's log.
pub(super) fn check_state_logs(root: &Path, ends: &Ends, report: &mut DataDirReport) -> Result<()> {
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
