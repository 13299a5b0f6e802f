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

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

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

/// Maintenance of one partition.
struct PartitionJob<'a> {
    tiers: &'a Tiers,
    io: Io,
    topic: &'a str,
    partition: u32,
    config: &'a TopicConfig,
    log: &'a Arc<Log>,
    warm: Arc<WarmPartition>,
    now: i64,
}

fn cutoff(now: i64, ms: u64) -> i64 {
    now.saturating_sub(i64::try_from(ms.saturating_mul(1000)).unwrap_or(i64::MAX))
}

impl PartitionJob<'_> {
    fn warm_enabled(&self) -> bool {
        self.config.warm_retention_ms > 0
    }

    fn run(&self, report: &mut MaintainReport, progress: &mut dyn FnMut(&TierMove)) -> Result<()> {
        self.expire_warm(report, progress)?;
        let moved = self.leave_hot(report, progress)?;
        if moved && self.warm_enabled() {
            self.expire_warm(report, progress)?;
        }
        Ok(())
    }

    /// Warm archives past warm retention (all of them when there is no warm
    /// tier) get the cold action, oldest first.
    fn expire_warm(
        &self,
        report: &mut MaintainReport,
        progress: &mut dyn FnMut(&TierMove),
    ) -> Result<()> {
        let cut = cutoff(self.now, self.config.warm_retention_ms);
        loop {
            let Some(first) = self.warm.snapshot().first().cloned() else {
                return Ok(());
            };
            if self.warm_enabled() && first.summary.max_timestamp > cut {
                return Ok(());
            }
            let size = first.summary.file_bytes;
            let to = match self.config.cold_action {
                ColdAction::Export => {
                    self.copy_to_cold(&first)?;
                    Tier::Cold
                }
                ColdAction::Delete => Tier::Deleted,
            };
            self.warm.pop_first();
            self.tiers.cache.forget(std::slice::from_ref(&first));
            self.io.remove(&first.path)?;
            self.io.sync_dir(&self.warm.dir)?;
            if let Some(fetcher) = &first.fetcher
                && let Err(e) = fetcher.remove_source(&first)
            {
                // The local record is gone, so nothing reads the object any
                // more: a leftover costs storage only (docs: lifecycle rules).
                log::warn!("warm retention: {e}");
            }
            let after = if to == Tier::Cold { size } else { 0 };
            self.record(
                report,
                progress,
                Tier::Warm,
                to,
                first.base(),
                first.next(),
                size,
                after,
            );
        }
    }

    /// A fsynced copy of a warm archive, renamed into the cold directory.
    fn copy_to_cold(&self, archive: &Archive) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let dir = self.tiers.cold_dir(self.topic, self.partition);
        self.tiers
            .ensure_dir(&self.io, &dir, &self.tiers.cold_root)?;
        let target = dir.join(archive_name(archive.base()));
        let tmp = target.with_extension(format!("{ARCHIVE_EXTENSION}.tmp"));
        #[cfg(feature = "tier-s3")]
        if archive.fetcher.is_some()
            && let Some(remote) = &self.tiers.remote
        {
            return self.export_remote(remote, archive, &dir, &tmp, &target);
        }
        let src = fs::File::open(&archive.path).map_err(|e| Error::io("open", &archive.path, e))?;
        let out = self.io.open_rw(&tmp, true)?;
        self.io.set_len(&out, &tmp, 0)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut pos = 0u64;
        while pos < archive.summary.file_bytes {
            let n = ((archive.summary.file_bytes - pos) as usize).min(buf.len());
            src.read_exact_at(&mut buf[..n], pos)
                .map_err(|e| Error::io("read", &archive.path, e))?;
            self.io.write_at(&out, &tmp, &buf[..n], pos)?;
            pos += n as u64;
        }
        self.io.sync_all(&out, &tmp)?;
        drop(out);
        self.io.rename(&tmp, &target)?;
        self.io.sync_dir(&dir)
    }

    /// Sealed hot segments past hot retention (by time or bytes) leave the
    /// hot tier, oldest first; never the active segment. Returns whether any did.
    fn leave_hot(
        &self,
        report: &mut MaintainReport,
        progress: &mut dyn FnMut(&TierMove),
    ) -> Result<bool> {
        let cut = self.config.retention_ms.map(|ms| cutoff(self.now, ms));
        let mut moved = false;
        loop {
            let segs = self.log.segment_handles();
            let Some(first) = segs.first().filter(|s| segs.len() > 1 && s.is_sealed()) else {
                return Ok(moved);
            };
            let empty = first.next_offset() == first.base;
            let by_time = cut.is_some_and(|c| empty || first.max_timestamp() <= c);
            let by_bytes = self
                .config
                .retention_bytes
                .is_some_and(|limit| segs.iter().map(|s| s.committed_len()).sum::<u64>() > limit);
            if !by_time && !by_bytes {
                return Ok(moved);
            }
            self.move_hot(first, report, progress)?;
            moved = true;
        }
    }

    fn move_hot(
        &self,
        seg: &Arc<Segment>,
        report: &mut MaintainReport,
        progress: &mut dyn FnMut(&TierMove),
    ) -> Result<()> {
        let (base, next) = (seg.base, seg.next_offset());
        let size = seg.committed_len();
        let to = if next == base {
            Tier::Deleted
        } else if self.warm_enabled() {
            Tier::Warm
        } else if self.config.cold_action == ColdAction::Export {
            Tier::Cold
        } else {
            Tier::Deleted
        };
        let mut after = 0;
        // An earlier run may have archived this segment and failed before
        // taking it out of the hot log: then only the hot copy has to go.
        let archived = to == Tier::Warm
            && self
                .warm
                .snapshot()
                .last()
                .is_some_and(|a| a.next() >= next);
        #[cfg(feature = "tier-s3")]
        let uploaded = match &self.tiers.remote {
            Some(remote) if to == Tier::Warm && !archived => {
                Some(self.move_to_remote(remote, seg, base)?)
            }
            _ => None,
        };
        #[cfg(not(feature = "tier-s3"))]
        let uploaded: Option<u64> = None;
        if let Some(object_bytes) = uploaded {
            after = object_bytes;
        } else if matches!(to, Tier::Warm | Tier::Cold) && !archived {
            let (dir, root) = if to == Tier::Warm {
                (self.warm.dir.clone(), &self.tiers.warm_root)
            } else {
                (
                    self.tiers.cold_dir(self.topic, self.partition),
                    &self.tiers.cold_root,
                )
            };
            self.tiers.ensure_dir(&self.io, &dir, root)?;
            let target = dir.join(archive_name(base));
            let tmp = target.with_extension(format!("{ARCHIVE_EXTENSION}.tmp"));
            let view = seg.view()?;
            let data = &view.map[..view.committed_len as usize];
            let meta = ArchiveMeta {
                topic: self.topic,
                partition: self.partition,
                created_at: now_micros(),
            };
            // Compression runs here, holding no lock of the log.
            let written = archive::write_archive(&self.io, &tmp, data, &seg.path, base, &meta)
                .and_then(|s| {
                    self.io.rename(&tmp, &target)?;
                    Ok(s)
                });
            let summary = match written {
                Ok(s) => s,
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    return Err(e);
                }
            };
            self.io.sync_dir(&dir)?;
            if to == Tier::Warm {
                self.warm.push(Arc::new(Archive::open(&target)?));
            }
            after = summary.file_bytes;
        }
        // Only now, with the archive durable under its name, may the hot copy go.
        let doomed = self.log.detach_sealed_before(next)?;
        for (segment, index) in &doomed {
            self.io.remove(segment)?;
            self.io.remove(index)?;
        }
        self.io.sync_dir(self.log.dir())?;
        self.record(report, progress, Tier::Hot, to, base, next, size, after);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        report: &mut MaintainReport,
        progress: &mut dyn FnMut(&TierMove),
        from: Tier,
        to: Tier,
        base_offset: u64,
        next_offset: u64,
        bytes_before: u64,
        bytes_after: u64,
    ) {
        match to {
            Tier::Warm => report.segments_to_warm += 1,
            Tier::Cold => report.segments_to_cold += 1,
            _ => report.segments_deleted += 1,
        }
        report.bytes_before += bytes_before;
        report.bytes_after += bytes_after;
        progress(&TierMove {
            topic: self.topic.to_owned(),
            partition: self.partition,
            from,
            to,
            base_offset,
            next_offset,
            bytes_before,
            bytes_after,
        });
    }
}

/// Applies retention to every partition of `handles` (the fabric's topics,
/// or the one asked for) as if the time were `now` (µs).
pub(crate) fn maintain_topics(
    tiers: &Tiers,
    handles: Vec<Arc<TopicHandle>>,
    now: i64,
    progress: &mut dyn FnMut(&TierMove),
) -> Result<MaintainReport> {
    let started = Instant::now();
    let _one_at_a_time = tiers.maintain_lock.lock();
    let io = tiers.io();
    let mut report = MaintainReport::default();
    let mut first_error = None;
    for handle in handles {
        if handle.check_live().is_err() {
            continue;
        }
        let config = handle.config.read().clone();
        for (p, log) in handle.partitions().iter().enumerate() {
            report.partitions_checked += 1;
            let warm = tiers.partition(&handle.name, p as u32, log)?;
            let before = warm.earliest().unwrap_or_else(|| log.earliest_offset());
            let job = PartitionJob {
                tiers,
                io: io.clone(),
                topic: &handle.name,
                partition: p as u32,
                config: &config,
                log,
                warm: warm.clone(),
                now,
            };
            let result = job.run(&mut report, progress);
            let after = warm.earliest().unwrap_or_else(|| log.earliest_offset());
            if after != before {
                report.earliest_changes.push(EarliestChange {
                    topic: handle.name.clone(),
                    partition: p as u32,
                    earliest: after,
                });
            }
            // One damaged or failing partition must not stop retention of
            // the others: go on, and report the first failure at the end.
            if let Err(e) = result {
                log::warn!("maintenance of {} partition {p}: {e}", handle.name);
                first_error.get_or_insert(e);
            }
        }
    }
    report.elapsed = started.elapsed();
    match first_error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// A background thread running [`Fabric::maintain`] every interval, from
/// [`Fabric::start_maintenance`]. Dropping it (or [`MaintenanceHandle::stop`])
/// stops and joins the thread.
#[derive(Debug)]
pub struct MaintenanceHandle {
    pub(crate) stop: Arc<(Mutex<bool>, Condvar)>,
    pub(crate) thread: Option<std::thread::JoinHandle<()>>,
    pub(crate) last: Arc<Mutex<Option<std::result::Result<MaintainReport, String>>>>,
}

impl MaintenanceHandle {
    /// The outcome of the last run (`Err` holds the error's message), if any ran.
    pub fn last_outcome(&self) -> Option<std::result::Result<MaintainReport, String>> {
        self.last.lock().clone()
    }

    /// Stops the thread, waiting for a run in progress to finish.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        {
            let (flag, cv) = &*self.stop;
            *flag.lock() = true;
            cv.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MaintenanceHandle {
    fn drop(&mut self) {
        self.shutdown();
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
