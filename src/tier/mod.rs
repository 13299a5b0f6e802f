//! Retention tiers: hot segments → warm archive segments → cold (deleted or
//! exported), the maintenance that moves data between them, and reads that
//! do not care which readable tier (warm or hot) holds an offset.
//!
//! Owns the warm and cold directory layout (`<warm>/<topic>/<partition>/` and
//! `<cold>/<topic>/<partition>/`, files `<base:020>.archive`), the in-memory
//! list of each partition's archive segments, crash recovery between the hot
//! and warm tiers, [`Fabric::maintain`] and its background thread, and the
//! tier-aware cursor the [`Reader`](crate::Reader) uses.
//!
//! It must never touch a partition's active segment, never delete a hot
//! segment before its archive is complete, synced, renamed into place and
//! its directory synced, and never hold a lock that appends or reads take
//! while it compresses or copies: the only such moments are swapping an
//! in-memory list (a pointer) and taking segments out of the hot list.

#[cfg(feature = "tier-s3")]
pub(crate) mod objstore;
#[cfg(feature = "tier-s3")]
pub(crate) mod remote;
#[cfg(feature = "tier-s3")]
mod remote_blocks;
#[cfg(feature = "tier-s3")]
mod remote_orphans;
#[cfg(feature = "tier-s3")]
pub(crate) mod remote_settings;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

mod catalog;
mod maintain;

pub use maintain::MaintenanceHandle;
pub(crate) use maintain::maintain_topics;

use crate::clock::now_micros;
use crate::error::{Error, Result};
use crate::storage::archive::{self, ARCHIVE_EXTENSION, Archive, ArchiveMeta, ArchiveSummary};
use crate::storage::io::{FaultInjector, Io};
use crate::storage::log::{Log, SegmentInfo};
use crate::storage::segment::Segment;
use crate::storage::warm::{BlockCache, WarmPartition, archive_name, parse_archive_name};
use crate::topic::TopicHandle;
use crate::topic::{ColdAction, TopicConfig};

/// Default name of the warm directory inside the data directory.
pub const WARM_DIR: &str = "warm";
/// Default name of the cold directory inside the data directory.
pub const COLD_DIR: &str = "cold";

/// The remote warm tier, when the fabric has one (feature `tier-s3`).
#[cfg(feature = "tier-s3")]
pub(crate) type RemoteHandle = Arc<remote::RemoteTier>;
/// Without feature `tier-s3` a fabric never has a remote warm tier.
#[cfg(not(feature = "tier-s3"))]
pub(crate) type RemoteHandle = std::convert::Infallible;

/// A tier data can be in, or leave to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tier {
    /// Segments of the partition log.
    Hot,
    /// Archive segments in the warm directory, still readable.
    Warm,
    /// Archive segments exported to the cold directory, no longer readable
    /// through the fabric.
    Cold,
    /// Deleted.
    Deleted,
}

impl Tier {
    /// Lowercase name (`hot`, `warm`, `cold`, `deleted`).
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Hot => "hot",
            Tier::Warm => "warm",
            Tier::Cold => "cold",
            Tier::Deleted => "deleted",
        }
    }
}

/// One segment moved by maintenance, as reported to a progress callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierMove {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: u32,
    /// Where the data was.
    pub from: Tier,
    /// Where it went.
    pub to: Tier,
    /// First offset moved.
    pub base_offset: u64,
    /// One past the last offset moved.
    pub next_offset: u64,
    /// Size of the file(s) before.
    pub bytes_before: u64,
    /// Size of what they became (0 when deleted).
    pub bytes_after: u64,
}

/// A partition whose earliest readable offset moved during maintenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarliestChange {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: u32,
    /// The new earliest readable offset (everything below is gone or cold).
    pub earliest: u64,
}

/// What one [`Fabric::maintain`] run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintainReport {
    /// Partitions looked at.
    pub partitions_checked: usize,
    /// Hot segments rewritten into warm archive segments.
    pub segments_to_warm: usize,
    /// Hot segments or warm archives exported to the cold directory.
    pub segments_to_cold: usize,
    /// Hot segments or warm archives deleted.
    pub segments_deleted: usize,
    /// Bytes of the files moved or deleted, before.
    pub bytes_before: u64,
    /// Bytes of what they became (archives written, cold copies; 0 for deletions).
    pub bytes_after: u64,
    /// Partitions whose earliest readable offset advanced (what a dedup
    /// cache evicts below).
    pub earliest_changes: Vec<EarliestChange>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// One archive segment file, for inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveInfo {
    /// The file.
    pub path: PathBuf,
    /// What its footer says.
    pub summary: ArchiveSummary,
    /// Where its bytes live when that is an object store
    /// (`s3://bucket/key`; `path` is then its local marker), else `None`.
    pub remote: Option<String>,
}

/// Every tier of one partition, for inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionTiers {
    /// Partition number.
    pub partition: u32,
    /// Earliest readable offset (warm or hot).
    pub earliest_offset: u64,
    /// Next offset to be appended.
    pub next_offset: u64,
    /// Hot segments, oldest first.
    pub hot: Vec<SegmentInfo>,
    /// Warm archive segments, oldest first.
    pub warm: Vec<ArchiveInfo>,
    /// Archive segments exported to the cold directory, oldest first.
    pub cold: Vec<ArchiveInfo>,
}

/// The warm tiers of one topic's partitions, loaded on first use.
type TopicWarm = RwLock<HashMap<u32, Arc<WarmPartition>>>;

/// The fabric's tier state: where warm and cold live and each partition's warm tier.
pub(crate) struct Tiers {
    warm_root: PathBuf,
    cold_root: PathBuf,
    read_only: bool,
    topics: RwLock<HashMap<String, Arc<TopicWarm>>>,
    cache: Arc<BlockCache>,
    /// One maintenance run at a time (explicit calls and the background thread).
    maintain_lock: Mutex<()>,
    faults: RwLock<Option<Arc<dyn FaultInjector>>>,
    /// Tier directories whose entries (up to the tier root) this process
    /// made durable.
    durable_dirs: Mutex<HashSet<PathBuf>>,
    /// The warm tier's object store, when configured: new archives go there.
    pub(crate) remote: Option<RemoteHandle>,
}

impl std::fmt::Debug for Tiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tiers")
            .field("warm_root", &self.warm_root)
            .field("cold_root", &self.cold_root)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

/// Test support: tier fault injectors waiting for the next fabric opened on
/// their warm directory (see [`Fabric::preset_tier_fault_injector`]).
type PresetFaults = Vec<(PathBuf, Arc<dyn FaultInjector>)>;
static PRESET_FAULTS: std::sync::Mutex<PresetFaults> = std::sync::Mutex::new(Vec::new());

/// Test support: the tier fault injector the next [`Tiers`] made for
/// `warm_dir` starts with (once; `None` withdraws it).
#[cfg(any(test, feature = "failpoints"))]
pub(crate) fn preset_faults(warm_dir: &Path, faults: Option<Arc<dyn FaultInjector>>) {
    let mut preset = PRESET_FAULTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    preset.retain(|(dir, _)| dir != warm_dir);
    if let Some(f) = faults {
        preset.push((warm_dir.to_path_buf(), f));
    }
}

impl Tiers {
    pub(crate) fn new(warm_root: PathBuf, cold_root: PathBuf, read_only: bool) -> Tiers {
        let faults = {
            let mut preset = PRESET_FAULTS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            preset
                .iter()
                .position(|(dir, _)| *dir == warm_root)
                .map(|i| preset.swap_remove(i).1)
        };
        Tiers {
            warm_root,
            cold_root,
            read_only,
            topics: RwLock::new(HashMap::new()),
            cache: Arc::new(BlockCache::default()),
            maintain_lock: Mutex::new(()),
            faults: RwLock::new(faults),
            durable_dirs: Mutex::new(HashSet::new()),
            remote: None,
        }
    }

    /// The same tiers with their warm tier on an object store.
    #[cfg(feature = "tier-s3")]
    pub(crate) fn with_remote(self, remote: remote::RemoteTier) -> Tiers {
        Tiers {
            remote: Some(Arc::new(remote)),
            ..self
        }
    }

    /// What opens the archives that markers record, if the fabric has a remote tier.
    fn remote_archives(&self) -> Option<Arc<dyn archive::RemoteArchives>> {
        #[cfg(feature = "tier-s3")]
        return self
            .remote
            .clone()
            .map(|r| r as Arc<dyn archive::RemoteArchives>);
        #[cfg(not(feature = "tier-s3"))]
        return self.remote.map(|never| match never {});
    }

    fn io(&self) -> Io {
        Io::new(self.faults.read().clone())
    }

    #[cfg(any(test, feature = "failpoints"))]
    pub(crate) fn set_faults(&self, faults: Option<Arc<dyn FaultInjector>>) {
        *self.faults.write() = faults;
    }

    fn warm_dir(&self, topic: &str, partition: u32) -> PathBuf {
        self.warm_root.join(topic).join(partition.to_string())
    }

    pub(crate) fn cold_dir(&self, topic: &str, partition: u32) -> PathBuf {
        self.cold_root.join(topic).join(partition.to_string())
    }

    /// The warm tier of `topic`'s partition `partition` (loaded, and for a
    /// writer recovered against `log`, on first use).
    pub(crate) fn partition(
        &self,
        topic: &str,
        partition: u32,
        log: &Arc<Log>,
    ) -> Result<Arc<WarmPartition>> {
        if let Some(parts) = self.topics.read().get(topic)
            && let Some(w) = parts.read().get(&partition)
        {
            return Ok(w.clone());
        }
        let parts = self
            .topics
            .write()
            .entry(topic.to_owned())
            .or_default()
            .clone();
        let mut parts = parts.write();
        if let Some(w) = parts.get(&partition) {
            return Ok(w.clone());
        }
        let loaded = Arc::new(self.load_partition(topic, partition, log)?);
        parts.insert(partition, loaded.clone());
        Ok(loaded)
    }

    fn load_partition(&self, topic: &str, partition: u32, log: &Log) -> Result<WarmPartition> {
        let io = self.io();
        let dir = self.warm_dir(topic, partition);
        let warm = WarmPartition::load(
            &dir,
            topic,
            partition,
            log,
            (!self.read_only).then_some(&io),
            self.cache.clone(),
            &[],
            self.remote_archives(),
        )?;
        if !self.read_only {
            // A crash after the archive was renamed into place but before the
            // hot segment was deleted leaves both: the complete archive wins.
            if let Some(end) = warm.snapshot().last().map(|a| a.next())
                && log.earliest_offset() < end
            {
                // The archive is complete, but the process that wrote it may
                // have died before its rename (or its directory) reached the
                // disk: make the warm copy durable before the hot one goes.
                for archive in warm.snapshot().iter() {
                    if archive.base() < log.next_offset() && log.earliest_offset() < archive.next()
                    {
                        let file = io.open_ro(&archive.path)?;
                        io.sync_all(&file, &archive.path)?;
                    }
                }
                io.sync_dir(&dir)?;
                self.ensure_dir(&io, &dir, &self.warm_root)?;
                let doomed = log.detach_sealed_before(end)?;
                if log.earliest_offset() < end {
                    return Err(Error::corrupted(
                        log.dir(),
                        0,
                        format!(
                            "the hot log starts at offset {} inside the warm tier (which ends before {end}) and no whole segment covers the overlap",
                            log.earliest_offset()
                        ),
                    ));
                }
                for (seg, index) in &doomed {
                    log::warn!(
                        "tiering recovery: removing {} (its archive is complete)",
                        seg.display()
                    );
                    io.remove(seg)?;
                    io.remove(index)?;
                }
                io.sync_dir(log.dir())?;
            }
            remove_orphan_indexes(&io, log)?;
            remove_temporaries(&io, &self.cold_dir(topic, partition))?;
        }
        Ok(warm)
    }

    /// The earliest warm offset of a partition whose warm tier this process
    /// has loaded, as last listed (no directory access): a fallback for
    /// callers that cannot return an error.
    pub(crate) fn known_earliest(&self, topic: &str, partition: u32) -> Option<u64> {
        self.topics
            .read()
            .get(topic)?
            .read()
            .get(&partition)?
            .earliest()
    }

    /// Forgets a topic's warm state and removes its warm directory (topic
    /// deleted, or created anew under a name a deleted topic had).
    pub(crate) fn forget_topic(&self, topic: &str) -> Result<()> {
        if let Some(parts) = self.topics.write().remove(topic) {
            for warm in parts.read().values() {
                self.cache.forget(&warm.snapshot());
            }
        }
        if self.read_only {
            return Ok(());
        }
        let dir = self.warm_root.join(topic);
        self.durable_dirs.lock().retain(|d| !d.starts_with(&dir));
        match fs::remove_dir_all(&dir) {
            Ok(()) => self.io().sync_dir(&self.warm_root),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", &dir, e)),
        }
    }

    /// Creates `dir` (and missing parents up to the tier root) durably.
    ///
    /// That a directory exists proves nothing about the disk: an earlier
    /// process may have created it and died before syncing its parent, and
    /// a power loss would then take it — with every archive renamed into it
    /// since — away. So the parents are synced once per process for each
    /// directory, whether this call created it or found it.
    fn ensure_dir(&self, io: &Io, dir: &Path, root: &Path) -> Result<()> {
        if self.durable_dirs.lock().contains(dir) && dir.is_dir() {
            return Ok(());
        }
        fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        // Each directory's entry lives in its parent: sync parents up to and
        // including the one holding the tier root.
        let mut d = dir;
        while let Some(parent) = d.parent() {
            io.sync_dir(parent)?;
            if d == root || !d.starts_with(root) {
                break;
            }
            d = parent;
        }
        self.durable_dirs.lock().insert(dir.to_path_buf());
        Ok(())
    }
}

/// A crash during an export leaves a `.tmp` file in the cold directory: remove it.
fn remove_temporaries(io: &Io, dir: &Path) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        if entry.file_name().to_string_lossy().ends_with(".tmp") {
            io.remove(&entry.path())?;
        }
    }
    Ok(())
}

/// A crash between unlinking a tiered segment and its index leaves the index:
/// remove index files of segments below the hot log's start.
fn remove_orphan_indexes(io: &Io, log: &Log) -> Result<()> {
    let dir = log.dir();
    let earliest = log.earliest_offset();
    let mut removed = false;
    for entry in fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let base = name
            .strip_suffix(".index")
            .filter(|stem| stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|stem| stem.parse::<u64>().ok());
        if base.is_some_and(|b| b < earliest) {
            io.remove(&entry.path())?;
            removed = true;
        }
    }
    if removed {
        io.sync_dir(dir)?;
    }
    Ok(())
}

pub(crate) fn list_cold(dir: &Path) -> Result<Vec<ArchiveInfo>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let mut bases: Vec<u64> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| parse_archive_name(&e.file_name().to_string_lossy()))
        .collect();
    bases.sort_unstable();
    for base in bases {
        let path = dir.join(archive_name(base));
        let a = Archive::open(&path)?;
        out.push(ArchiveInfo {
            path,
            summary: a.summary,
            remote: None,
        });
    }
    Ok(out)
}

/// Opens every partition's warm tier of a writable fabric, resolving what an
/// interrupted tiering left behind (called by `Fabric::open`).
pub(crate) fn recover_all(tiers: &Tiers, handles: &[Arc<TopicHandle>]) -> Result<()> {
    for handle in handles {
        for (p, log) in handle.partitions().iter().enumerate() {
            tiers.partition(&handle.name, p as u32, log)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_round_trip() {
        assert_eq!(parse_archive_name(&archive_name(42)), Some(42));
        assert_eq!(parse_archive_name("00000000000000000042.archive.tmp"), None);
        assert_eq!(parse_archive_name("42.archive"), None);
    }
}
