//! A group seen from outside its members: status, listing, describing,
//! offset-for-time lookups and resets.
//!
//! Owns the read-only views of groups and the reset of a group with no live
//! member; it must never change the cursors of a group that has live members.

use super::*;

/// One partition of a group's view of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStatus {
    /// Partition number.
    pub partition: u32,
    /// The committed next offset (`None`: never committed).
    pub committed: Option<u64>,
    /// The partition's log end (next offset to be written).
    pub end: u64,
    /// `end − committed` (from the earliest offset when never committed).
    pub lag: u64,
    /// The in-process member owning it, if any.
    pub member: Option<u64>,
}

/// A group's cursors, lag and members on one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStatus {
    /// The group.
    pub group: String,
    /// The topic.
    pub topic: String,
    /// Per partition.
    pub partitions: Vec<PartitionStatus>,
    /// Live members in this process (empty when read from another process).
    pub members: Vec<u64>,
    /// Events skipped because their TTL had passed (committed group total).
    pub expired: u64,
}

impl GroupStatus {
    /// The group's lag: summed over partitions.
    pub fn lag(&self) -> u64 {
        self.partitions.iter().map(|p| p.lag).sum()
    }
}

/// The first offset of `partition` at or after `time` (its end when none).
pub(crate) fn offset_for_time(
    source: &Arc<dyn PartitionSource>,
    topic: &Arc<TopicHandle>,
    partition: u32,
    time: Timestamp,
) -> Result<u64> {
    let reader = Reader::new(source.clone(), topic.clone(), StartFrom::Time(time))?
        .with_partitions(&[partition])?;
    Ok(reader.positions().get(&partition).copied().unwrap_or(0))
}

/// Every consumer group with a cursor log under the data directory, with the
/// topics it has cursors for, sorted.
pub(crate) fn list(source: &Arc<dyn PartitionSource>) -> Result<Vec<(String, Vec<String>)>> {
    let dir = source.path().join(store::GROUPS_DIR);
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("list", &dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
        let group = entry.file_name().to_string_lossy().into_owned();
        if validate_group_name(&group).is_err() || !entry.path().is_dir() {
            continue;
        }
        let mut topics = group_topics(source, &group)?;
        topics.sort();
        out.push((group, topics));
    }
    out.sort();
    Ok(out)
}

fn group_topics(source: &Arc<dyn PartitionSource>, group: &str) -> Result<Vec<String>> {
    let dir = store::group_dir(source.path(), group);
    let mut topics = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| Error::io("list", &dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(topic) = name.strip_suffix(store::CURSORS_SUFFIX) {
            topics.push(topic.to_string());
        }
    }
    topics.sort();
    Ok(topics)
}

/// The group's status on every topic it has cursors for: from the live
/// coordinator when a member is in this process (members included), else
/// read from the cursor logs without locking them.
pub(crate) fn describe(
    source: &Arc<dyn PartitionSource>,
    registry: &Registry,
    group: &str,
) -> Result<Vec<GroupStatus>> {
    validate_group_name(group)?;
    let dir = store::group_dir(source.path(), group);
    if !dir.is_dir() {
        return Err(Error::invalid(
            format!("consumer group {group:?}"),
            format!("it has no cursors in {}", source.path().display()),
        ));
    }
    let mut out = Vec::new();
    for topic in group_topics(source, group)? {
        if let Some(live) = registry.live(group, &topic) {
            out.push(live.status(source));
            continue;
        }
        let state = store::read_state(source.path(), group, &topic)?;
        let logs = match source.handle(&topic) {
            Ok(handle) => handle.partitions(),
            Err(_) => Arc::new(Vec::new()), // the topic was deleted since
        };
        let mut partitions: Vec<PartitionStatus> = logs
            .iter()
            .enumerate()
            .map(|(p, log)| {
                let committed = state.committed.get(&(p as u32)).copied();
                let (earliest, end) = source.retained_range(&topic, p as u32, log);
                PartitionStatus {
                    partition: p as u32,
                    committed,
                    end,
                    lag: end.saturating_sub(committed.unwrap_or(earliest)),
                    member: None,
                }
            })
            .collect();
        partitions.sort_by_key(|p| p.partition);
        out.push(GroupStatus {
            group: group.to_string(),
            topic,
            partitions,
            members: Vec::new(),
            expired: state.expired,
        });
    }
    Ok(out)
}

/// Where [`reset`] moves a group's cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    /// Each partition's earliest offset.
    Earliest,
    /// Each partition's end.
    Latest,
    /// This offset, clamped to each partition's range.
    Offset(u64),
    /// The first event emitted at or after this time, per partition.
    Time(Timestamp),
}

/// Rewrites the group's committed cursors on `topic` (every partition);
/// returns them. Refused with [`Error::Locked`] while a member of the group
/// is live on that topic, in this process or another.
pub(crate) fn reset(
    source: &Arc<dyn PartitionSource>,
    group: &str,
    topic: &str,
    to: ResetTo,
) -> Result<BTreeMap<u32, u64>> {
    validate_group_name(group)?;
    let handle = source.handle(topic)?;
    let mut store = CursorStore::open_with(
        &source.state_io(),
        source.path(),
        group,
        topic,
        ProcessedWindow::new(usize::MAX, i64::MAX),
    )?;
    let mut positions = BTreeMap::new();
    for (p, log) in handle.partitions().iter().enumerate() {
        let (earliest, end) = source.retained_range(topic, p as u32, log);
        let offset = match to {
            ResetTo::Earliest => earliest,
            ResetTo::Latest => end,
            ResetTo::Offset(o) => o.clamp(earliest, end),
            ResetTo::Time(t) => offset_for_time(source, &handle, p as u32, t)?,
        };
        positions.insert(p as u32, offset);
    }
    store.reset(positions.clone())?;
    Ok(positions)
}
