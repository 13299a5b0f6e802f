//! The fabric: one handle on one data directory holding named topics, each a
//! set of partition logs.
//!
//! Owns the data-directory layout (`fabric.lock`, `topics/<topic>/topic.json`,
//! `topics/<topic>/<partition>/`), the data-directory writer lock, and topic
//! administration (create, list, delete, add partitions), each made
//! crash-safe by building in a hidden temporary directory and renaming. It
//! never interprets record bytes (that is [`crate::envelope`]) and never
//! creates a topic implicitly: producing to an unknown topic is an error.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

use crate::consume::reader::{Reader, StartFrom};
use crate::error::{Error, Result};
use crate::produce::guards::PublishGuards;
use crate::produce::producer::Producer;
use crate::storage::lock::DirLock;
use crate::storage::log::Log;
use crate::storage::notify::AppendSignal;
use crate::storage::verify::{RepairReport, VerifyReport};
use crate::storage::warm::PartitionView;
use crate::tier::Tiers;
use crate::topic::{
    self, FsyncPolicy, OpenHandle, OpenHandles, PartitionSource, TOPIC_FILE, TopicConfig,
    TopicHandle, TopicInfo, WeakSource, partition_dir, read_topic_file, sync_dir,
    validate_topic_name, write_topic_file,
};

mod groups;
mod tiering;

/// Name of the data-directory lock file.
pub const LOCK_FILE: &str = "fabric.lock";
/// Name of the directory holding one directory per topic.
pub const TOPICS_DIR: &str = "topics";
/// Prefix of a topic directory still being created (removed on open).
const CREATING_PREFIX: &str = ".creating-";
/// Prefix of a topic directory being deleted (removed on open).
const DELETING_PREFIX: &str = ".deleting-";

/// How a writable [`Fabric`] opens its partitions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FabricConfig {
    /// Overrides every topic's `fsync` policy for this handle (e.g. `fabric
    /// produce --fsync os`); `None` keeps each topic's own setting.
    pub fsync: Option<FsyncPolicy>,
    /// Where warm archive segments live (default `<data>/warm`): may be a
    /// slower disk or a mounted bucket.
    pub warm_dir: Option<PathBuf>,
    /// Where exported cold archive segments go (default `<data>/cold`).
    pub cold_dir: Option<PathBuf>,
    /// The warm tier on an S3-compatible object store (feature `tier-s3`):
    /// new warm archives are uploaded there (the warm directory keeps a
    /// small marker per archive). `None`: warm archives stay in `warm_dir`.
    #[cfg(feature = "tier-s3")]
    pub remote_warm: Option<crate::tier::remote::RemoteWarmConfig>,
}

impl FabricConfig {
    /// Settings that use `fsync` for every topic.
    pub fn with_fsync(fsync: FsyncPolicy) -> Self {
        FabricConfig {
            fsync: Some(fsync),
            ..FabricConfig::default()
        }
    }
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    config: FabricConfig,
    read_only: bool,
    topics: RwLock<BTreeMap<String, Arc<TopicHandle>>>,
    /// Serialises topic administration within this handle.
    admin: Mutex<()>,
    /// The data directory's writer lock (`fabric.lock`).
    _lock: Option<DirLock>,
    /// Coordinators of the consumer groups live in this handle (issue 4).
    groups: Arc<crate::consume::group::Registry>,
    /// Dedup caches and samplers shared by each topic's producers.
    guards: PublishGuards,
    /// Warm and cold tiers (see [`crate::tier`]).
    tiers: Tiers,
    /// Readers, queues and consumer-group members alive on this fabric.
    handles: Arc<OpenHandles>,
    /// Test seam: faults injected into the state logs opened from now on
    /// (queue state, group cursors, DLQ replay ledgers).
    state_faults: RwLock<Option<Arc<dyn crate::storage::io::FaultInjector>>>,
}

/// A fabric handle that does not keep the fabric open (for background threads).
#[derive(Debug, Clone)]
pub(crate) struct WeakFabric(std::sync::Weak<Inner>);

impl WeakFabric {
    pub(crate) fn upgrade(&self) -> Option<Fabric> {
        self.0.upgrade().map(|inner| Fabric { inner })
    }
}

fn tiers_for(root: &Path, config: &FabricConfig, read_only: bool) -> Result<Tiers> {
    let tiers = Tiers::new(
        config
            .warm_dir
            .clone()
            .unwrap_or_else(|| root.join(crate::tier::WARM_DIR)),
        config
            .cold_dir
            .clone()
            .unwrap_or_else(|| root.join(crate::tier::COLD_DIR)),
        read_only,
    );
    #[cfg(feature = "tier-s3")]
    if let Some(remote) = &config.remote_warm {
        return Ok(tiers.with_remote(crate::tier::remote::RemoteTier::connect(remote.clone())?));
    }
    Ok(tiers)
}

/// A handle on one data directory. Cheap to clone; `Send + Sync`.
///
/// A writable fabric is the only writer of its directory (a second one, in
/// this or another process, gets [`Error::Locked`] naming the holder's pid).
/// Any number of read-only fabrics may look at the same directory meanwhile
/// and call [`Fabric::refresh`] to see new topics and records.
#[derive(Debug, Clone)]
pub struct Fabric {
    inner: Arc<Inner>,
}

/// The verification result of one partition, from [`Fabric::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionCheck {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: u32,
    /// The partition's directory.
    pub dir: PathBuf,
    /// What verification found.
    pub report: VerifyReport,
}

/// The repair result of one partition, from [`Fabric::repair`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRepair {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: u32,
    /// The partition's directory.
    pub dir: PathBuf,
    /// What was removed and rebuilt.
    pub report: RepairReport,
}

fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

impl Fabric {
    /// Opens (creating if needed) the data directory at `path` as its only
    /// writer, opening every partition of every topic (running each log's
    /// crash recovery) and removing leftovers of interrupted topic creations
    /// and deletions.
    pub fn open(path: impl AsRef<Path>, config: FabricConfig) -> Result<Fabric> {
        let root = path.as_ref().to_path_buf();
        let topics_dir = root.join(TOPICS_DIR);
        fs::create_dir_all(&topics_dir).map_err(|e| Error::io("create", &topics_dir, e))?;
        let lock = DirLock::acquire_file(&root, LOCK_FILE)?;
        for entry in fs::read_dir(&topics_dir).map_err(|e| Error::io("list", &topics_dir, e))? {
            let entry = entry.map_err(|e| Error::io("list", &topics_dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(CREATING_PREFIX) || name.starts_with(DELETING_PREFIX) {
                let p = entry.path();
                fs::remove_dir_all(&p).map_err(|e| Error::io("remove", &p, e))?;
            }
        }
        let fabric = Fabric {
            inner: Arc::new(Inner {
                tiers: tiers_for(&root, &config, false)?,
                root,
                config,
                read_only: false,
                topics: RwLock::new(BTreeMap::new()),
                admin: Mutex::new(()),
                _lock: Some(lock),
                groups: Default::default(),
                guards: Default::default(),
                handles: Default::default(),
                state_faults: RwLock::new(None),
            }),
        };
        fabric.load_topics()?;
        crate::tier::recover_all(&fabric.inner.tiers, &fabric.topic_handles())?;
        Ok(fabric)
    }

    /// Opens the data directory at `path` for reading only, alongside a
    /// writer in this or another process. Never writes anything.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Fabric> {
        Fabric::open_read_only_with(path, &FabricConfig::default())
    }

    /// [`Fabric::open_read_only`], reading the warm tier from `config.warm_dir`
    /// (and listing cold archives in `config.cold_dir`) when set.
    pub fn open_read_only_with(path: impl AsRef<Path>, config: &FabricConfig) -> Result<Fabric> {
        let root = path.as_ref().to_path_buf();
        let topics_dir = root.join(TOPICS_DIR);
        if !topics_dir.is_dir() {
            return Err(Error::NotADataDir { path: root });
        }
        let fabric = Fabric {
            inner: Arc::new(Inner {
                tiers: tiers_for(&root, config, true)?,
                root,
                config: FabricConfig::default(),
                read_only: true,
                topics: RwLock::new(BTreeMap::new()),
                admin: Mutex::new(()),
                _lock: None,
                groups: Default::default(),
                guards: Default::default(),
                handles: Default::default(),
                state_faults: RwLock::new(None),
            }),
        };
        fabric.load_topics()?;
        Ok(fabric)
    }

    /// The consumer-group coordinators of this handle.
    pub(crate) fn group_registry(&self) -> &Arc<crate::consume::group::Registry> {
        &self.inner.groups
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.inner.root
    }

    /// Whether this handle was opened with [`Fabric::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    fn topics_dir(&self) -> PathBuf {
        self.inner.root.join(TOPICS_DIR)
    }

    fn check_writable(&self, op: &str) -> Result<()> {
        if self.inner.read_only {
            return Err(Error::ReadOnlyFabric {
                path: self.inner.root.clone(),
                op: op.to_string(),
            });
        }
        Ok(())
    }

    fn open_partition(
        &self,
        dir: &Path,
        config: &TopicConfig,
        signal: &Arc<AppendSignal>,
    ) -> Result<Arc<Log>> {
        let log = if self.inner.read_only {
            Log::open_read_only(dir)?
        } else {
            Log::open(dir, config.log_config(self.inner.config.fsync))?
        };
        log.attach_append_signal(signal.clone());
        Ok(Arc::new(log))
    }

    /// Names of topic directories on disk (hidden temporary ones excluded).
    fn topic_names_on_disk(&self) -> Result<Vec<String>> {
        let dir = self.topics_dir();
        let mut names = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| Error::io("list", &dir, e))? {
            let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.path().join(TOPIC_FILE).is_file() {
                continue;
            }
            validate_topic_name(&name).map_err(|e| Error::Corrupted {
                path: entry.path(),
                position: 0,
                reason: format!("not a valid topic directory ({e}); move it out of topics/"),
            })?;
            names.push(name);
        }
        names.sort();
        Ok(names)
    }

    fn load_topic(&self, name: &str) -> Result<Arc<TopicHandle>> {
        let dir = self.topics_dir().join(name);
        let config = read_topic_file(&dir, name)?;
        let append_signal = Arc::new(AppendSignal::default());
        let mut logs = Vec::with_capacity(config.partitions as usize);
        for p in 0..config.partitions {
            logs.push(self.open_partition(&partition_dir(&dir, p), &config, &append_signal)?);
        }
        Ok(Arc::new(TopicHandle {
            name: name.to_string(),
            dir,
            config: RwLock::new(config),
            partitions: RwLock::new(Arc::new(logs)),
            deleted: AtomicBool::new(false),
            append_signal,
        }))
    }

    fn load_topics(&self) -> Result<()> {
        let mut map = BTreeMap::new();
        for name in self.topic_names_on_disk()? {
            let handle = self.load_topic(&name)?;
            map.insert(name, handle);
        }
        *self.inner.topics.write() = map;
        Ok(())
    }

    /// For a read-only fabric: picks up topics created or deleted, partitions
    /// added and records appended by the writer since the last look. For the
    /// writer it is a no-op.
    pub fn refresh(&self) -> Result<()> {
        if !self.inner.read_only {
            return Ok(());
        }
        let _admin = self.inner.admin.lock();
        let names = self.topic_names_on_disk()?;
        let current: BTreeMap<String, Arc<TopicHandle>> = self.inner.topics.read().clone();
        let mut next = BTreeMap::new();
        for name in names {
            match current.get(&name) {
                Some(handle) => {
                    let config = read_topic_file(&handle.dir, &name)?;
                    let logs = handle.partitions();
                    for log in logs.iter() {
                        log.refresh()?;
                    }
                    if config.partitions as usize > logs.len() {
                        let mut grown: Vec<Arc<Log>> = logs.iter().cloned().collect();
                        for p in logs.len() as u32..config.partitions {
                            grown.push(self.open_partition(
                                &partition_dir(&handle.dir, p),
                                &config,
                                &handle.append_signal,
                            )?);
                        }
                        *handle.partitions.write() = Arc::new(grown);
                    }
                    *handle.config.write() = config;
                    next.insert(name, handle.clone());
                }
                None => {
                    let handle = self.load_topic(&name)?;
                    next.insert(name, handle);
                }
            }
        }
        for (name, handle) in &current {
            if !next.contains_key(name) {
                handle.deleted.store(true, Ordering::Release);
            }
        }
        *self.inner.topics.write() = next;
        Ok(())
    }

    pub(crate) fn handle(&self, topic: &str) -> Result<Arc<TopicHandle>> {
        self.inner
            .topics
            .read()
            .get(topic)
            .cloned()
            .ok_or_else(|| Error::UnknownTopic {
                topic: topic.to_string(),
                data_dir: self.inner.root.clone(),
            })
    }

    /// Creates topic `name` with `config`. Fails if the name is invalid, the
    /// settings are invalid, or the topic exists. Crash-safe: the topic is
    /// built in a hidden directory and renamed into place.
    pub fn create_topic(&self, name: &str, config: TopicConfig) -> Result<()> {
        self.check_writable("create topic")?;
        validate_topic_name(name)?;
        config.validate()?;
        let _admin = self.inner.admin.lock();
        let topics_dir = self.topics_dir();
        let dir = topics_dir.join(name);
        if self.inner.topics.read().contains_key(name) || dir.exists() {
            return Err(Error::TopicExists {
                topic: name.to_string(),
                data_dir: self.inner.root.clone(),
            });
        }
        // Warm data a deleted topic of this name left behind is not this topic's.
        self.inner.tiers.forget_topic(name)?;
        let tmp = topics_dir.join(format!("{CREATING_PREFIX}{}", unique_suffix()));
        fs::create_dir(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        let built = (|| {
            for p in 0..config.partitions {
                let pd = partition_dir(&tmp, p);
                fs::create_dir(&pd).map_err(|e| Error::io("create", &pd, e))?;
            }
            write_topic_file(&tmp, name, &config)?;
            fs::rename(&tmp, &dir).map_err(|e| Error::io("rename", &dir, e))?;
            sync_dir(&topics_dir)
        })();
        if let Err(e) = built {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let handle = self.load_topic(name)?;
        self.inner.topics.write().insert(name.to_string(), handle);
        Ok(())
    }

    /// Deletes topic `name` and all its data. Producers and readers still
    /// holding it get an error from then on. Crash-safe: the directory is
    /// renamed away first, so a crash never leaves a half-deleted topic.
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        self.check_writable("delete topic")?;
        let _admin = self.inner.admin.lock();
        let handle = self.handle(name)?;
        handle.deleted.store(true, Ordering::Release);
        self.inner.topics.write().remove(name);
        let logs = std::mem::take(&mut *handle.partitions.write());
        if let Ok(logs) = Arc::try_unwrap(logs) {
            for log in logs {
                if let Ok(log) = Arc::try_unwrap(log) {
                    let _ = log.close();
                }
            }
        }
        let topics_dir = self.topics_dir();
        let gone = topics_dir.join(format!("{DELETING_PREFIX}{}", unique_suffix()));
        fs::rename(&handle.dir, &gone).map_err(|e| Error::io("rename", &handle.dir, e))?;
        sync_dir(&topics_dir)?;
        fs::remove_dir_all(&gone).map_err(|e| Error::io("remove", &gone, e))?;
        self.inner.tiers.forget_topic(name)?;
        Ok(())
    }

    /// Grows topic `name` to `partitions` partitions. Shrinking is refused.
    ///
    /// As in Kafka, this changes the key → partition mapping for events
    /// produced from now on; events already stored stay where they are, so
    /// per-key order holds only within each period.
    pub fn add_partitions(&self, name: &str, partitions: u32) -> Result<()> {
        self.check_writable("add partitions")?;
        let _admin = self.inner.admin.lock();
        let handle = self.handle(name)?;
        let mut config = handle.config.read().clone();
        if partitions < config.partitions {
            return Err(Error::invalid(
                format!("partitions of topic {name:?}"),
                format!(
                    "cannot shrink from {} to {partitions}: partitions are never removed",
                    config.partitions
                ),
            ));
        }
        if partitions == config.partitions {
            return Ok(());
        }
        let old = config.partitions;
        config.partitions = partitions;
        config.validate()?;
        // Directories first, then the config that makes them part of the topic.
        for p in old..partitions {
            let pd = partition_dir(&handle.dir, p);
            fs::create_dir_all(&pd).map_err(|e| Error::io("create", &pd, e))?;
        }
        sync_dir(&handle.dir)?;
        write_topic_file(&handle.dir, name, &config)?;
        let mut logs: Vec<Arc<Log>> = handle.partitions().iter().cloned().collect();
        for p in old..partitions {
            logs.push(self.open_partition(
                &partition_dir(&handle.dir, p),
                &config,
                &handle.append_signal,
            )?);
        }
        *handle.partitions.write() = Arc::new(logs);
        *handle.config.write() = config;
        Ok(())
    }

    /// Names of all topics, sorted.
    pub fn topics(&self) -> Vec<String> {
        self.inner.topics.read().keys().cloned().collect()
    }

    /// Settings and per-partition offsets of topic `name`.
    pub fn topic_info(&self, name: &str) -> Result<TopicInfo> {
        let handle = self.handle(name)?;
        let config = handle.config.read().clone();
        let mut offsets = Vec::new();
        for (p, log) in handle.partitions().iter().enumerate() {
            let warm = self.inner.tiers.partition(name, p as u32, log)?;
            let hot = log.earliest_offset();
            offsets.push((
                warm.earliest().map_or(hot, |w| w.min(hot)),
                log.next_offset(),
            ));
        }
        Ok(TopicInfo {
            name: name.to_string(),
            config,
            offsets,
        })
    }

    /// The log of one partition, for inspection and low-level reads.
    pub fn partition(&self, topic: &str, partition: u32) -> Result<Arc<Log>> {
        let handle = self.handle(topic)?;
        let logs = handle.partitions();
        logs.get(partition as usize)
            .cloned()
            .ok_or_else(|| Error::UnknownPartition {
                topic: topic.to_string(),
                partition,
                partitions: u32::try_from(logs.len()).unwrap_or(u32::MAX),
            })
    }

    /// A producer for `topic` that stamps `source` on events lacking one.
    pub fn producer(&self, topic: &str, source: &str) -> Result<Producer> {
        self.check_writable("produce")?;
        let handle = self.handle(topic)?;
        let guard = self.inner.guards.for_topic(self, &handle);
        Producer::new(handle, guard, source)
    }

    /// What every producer of `topic` shares (dedup cache, sampler).
    pub(crate) fn publish_guard(
        &self,
        topic: &Arc<TopicHandle>,
    ) -> Arc<crate::produce::guards::TopicGuard> {
        self.inner.guards.for_topic(self, topic)
    }

    /// This fabric as the narrow view the layers below the facade are given.
    pub(crate) fn source(&self) -> Arc<dyn PartitionSource> {
        Arc::new(self.clone())
    }

    /// Size of `topic`'s dedup cache (`None` when its dedup window is off or
    /// this handle is read-only); builds the cache if no producer did yet.
    pub fn dedup_stats(&self, topic: &str) -> Result<Option<crate::produce::dedup::DedupStats>> {
        let handle = self.handle(topic)?;
        let guard = self.inner.guards.for_topic(self, &handle);
        match &guard.dedup {
            None => Ok(None),
            Some(lazy) => Ok(Some(lazy.get(&handle.partitions())?.stats())),
        }
    }

    /// `system.` events of `topic` dropped by sampling since it was opened.
    pub fn system_events_dropped(&self, topic: &str) -> Result<u64> {
        let handle = self.handle(topic)?;
        Ok(self
            .inner
            .guards
            .existing(&handle)
            .and_then(|g| g.sampler.as_ref().map(|s| s.dropped()))
            .unwrap_or(0))
    }

    /// A reader of `topic` starting at `from`.
    pub fn reader(&self, topic: &str, from: StartFrom) -> Result<Reader> {
        let reader = Reader::new(self.source(), self.handle(topic)?, from)?;
        Ok(reader.tracked(self.track(format!("a Reader of topic {topic:?}"))))
    }

    /// Registers a handle that keeps this fabric open, described by `what`
    /// in [`Fabric::close`]'s refusal while it lives.
    pub(crate) fn track(&self, what: String) -> OpenHandle {
        self.inner.handles.track(what)
    }

    /// Opens (creating on first use) queue `name` on `topic`: see
    /// [`crate::Queue`]. Its state lives in `<data>/queues/<name>/`.
    pub fn queue(
        &self,
        name: &str,
        topic: &str,
        config: crate::consume::queue::QueueConfig,
    ) -> Result<crate::consume::queue::Queue> {
        crate::consume::queue::Queue::open(&self.source(), name, topic, config)
    }

    /// The dead letters of `topic`: an empty DLQ until the first one lands
    /// (see [`crate::consume::dlq::DeadLetters::open`]).
    pub fn dead_letters(&self, topic: &str) -> Result<crate::consume::dlq::DeadLetters> {
        crate::consume::dlq::DeadLetters::open(&self.source(), self.producers(), topic)
    }

    /// Makes everything appended to every partition durable.
    pub fn flush(&self) -> Result<()> {
        if self.inner.read_only {
            return Ok(());
        }
        let handles: Vec<_> = self.inner.topics.read().values().cloned().collect();
        for h in handles {
            for log in h.partitions().iter() {
                log.flush()?;
            }
        }
        Ok(())
    }

    /// Flushes everything, closes every partition and releases the
    /// directory lock, so the directory can be opened again at once.
    ///
    /// Readers, queues and consumer-group members (and other clones of this
    /// handle, or `DeadLetters`) keep the fabric — and its lock — open: while
    /// any is alive, close does nothing and fails with [`Error::InUse`]
    /// naming them; the directory is then released when the last of them is
    /// dropped. Producers and `Log` handles from [`Fabric::partition`] do not
    /// hold the directory lock (a `Log` keeps its partition open until
    /// dropped).
    pub fn close(self) -> Result<()> {
        self.check_nothing_open()?;
        self.flush()?;
        let handles: Vec<_> = std::mem::take(&mut *self.inner.topics.write())
            .into_values()
            .collect();
        for h in handles {
            let logs = std::mem::take(&mut *h.partitions.write());
            if let Ok(logs) = Arc::try_unwrap(logs) {
                for log in logs {
                    if let Ok(log) = Arc::try_unwrap(log) {
                        log.close()?;
                    }
                }
            }
        }
        Ok(())
    }

    /// `Error::InUse` while another handle keeps this fabric open. Unnamed
    /// holders get a moment to go: background work (maintenance, flushers)
    /// holds the fabric only for the step it is doing.
    fn check_nothing_open(&self) -> Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(200);
        loop {
            let named: Vec<String> = self.inner.handles.live.lock().values().cloned().collect();
            let holders = Arc::strong_count(&self.inner) - 1;
            if named.is_empty() && holders == 0 {
                return Ok(());
            }
            if !named.is_empty() || std::time::Instant::now() >= deadline {
                let mut open = named;
                if open.is_empty() {
                    open.push(format!(
                        "{holders} other handle(s) on it (clones of the Fabric, DeadLetters, or a background maintenance step still running)"
                    ));
                }
                return Err(Error::InUse {
                    path: self.inner.root.clone(),
                    open,
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Checks every partition of every topic under `path` without changing
    /// anything (safe while a writer runs). A `topic.json` that fails its
    /// checks is an error naming the file.
    pub fn verify(path: impl AsRef<Path>) -> Result<Vec<PartitionCheck>> {
        let fabric = Fabric::open_read_only_config(path.as_ref())?;
        let mut out = Vec::new();
        for (name, dir, config) in fabric {
            for p in 0..config.partitions {
                let pd = partition_dir(&dir, p);
                let report = crate::storage::verify::verify(&pd)?;
                out.push(PartitionCheck {
                    topic: name.clone(),
                    partition: p,
                    dir: pd,
                    report,
                });
            }
        }
        Ok(out)
    }

    /// Repairs every partition under `path` as the writer (taking the
    /// data-directory lock): truncates to the last valid record and rebuilds
    /// indexes, reporting what was removed.
    pub fn repair(path: impl AsRef<Path>) -> Result<Vec<PartitionRepair>> {
        let root = path.as_ref();
        let _lock = DirLock::acquire_file(root, LOCK_FILE)?;
        let mut out = Vec::new();
        for (name, dir, config) in Fabric::open_read_only_config(root)? {
            for p in 0..config.partitions {
                let pd = partition_dir(&dir, p);
                let report = crate::storage::verify::repair(&pd, config.log_config(None))?;
                out.push(PartitionRepair {
                    topic: name.clone(),
                    partition: p,
                    dir: pd,
                    report,
                });
            }
        }
        Ok(out)
    }

    /// The warm and cold tiers of this data directory.
    pub(crate) fn tiers(&self) -> &Tiers {
        &self.inner.tiers
    }

    /// Injects faults into every state log opened through this handle from
    /// now on: queue state files, consumer-group cursor logs and DLQ replay
    /// ledgers (a test seam, like [`Fabric::set_tier_fault_injector`];
    /// `None` turns it off).
    #[cfg(any(test, feature = "failpoints"))]
    pub fn set_state_fault_injector(
        &self,
        faults: Option<Arc<dyn crate::storage::io::FaultInjector>>,
    ) {
        *self.inner.state_faults.write() = faults;
    }

    /// The I/O seam state logs are opened with.
    pub(crate) fn state_io(&self) -> crate::storage::io::Io {
        crate::storage::io::Io::new(self.inner.state_faults.read().clone())
    }

    /// Every open topic's handle.
    pub(crate) fn topic_handles(&self) -> Vec<Arc<TopicHandle>> {
        self.inner.topics.read().values().cloned().collect()
    }

    /// A handle that does not keep the fabric open.
    pub(crate) fn downgrade(&self) -> WeakFabric {
        WeakFabric(Arc::downgrade(&self.inner))
    }

    /// What the DLQ replay publishes through.
    pub(crate) fn producers(&self) -> Arc<dyn crate::produce::ProducerFactory> {
        Arc::new(self.clone())
    }

    /// Every topic's name, directory and settings, read from disk only.
    pub(crate) fn open_read_only_config(
        root: &Path,
    ) -> Result<Vec<(String, PathBuf, TopicConfig)>> {
        let topics_dir = root.join(TOPICS_DIR);
        if !topics_dir.is_dir() {
            return Err(Error::NotADataDir {
                path: root.to_path_buf(),
            });
        }
        let probe = Fabric {
            inner: Arc::new(Inner {
                tiers: tiers_for(root, &FabricConfig::default(), true)?,
                root: root.to_path_buf(),
                config: FabricConfig::default(),
                read_only: true,
                topics: RwLock::new(BTreeMap::new()),
                admin: Mutex::new(()),
                _lock: None,
                groups: Default::default(),
                guards: Default::default(),
                handles: Default::default(),
                state_faults: RwLock::new(None),
            }),
        };
        let mut out = Vec::new();
        for name in probe.topic_names_on_disk()? {
            let dir = topics_dir.join(&name);
            let config = topic::read_topic_file(&dir, &name)?;
            out.push((name, dir, config));
        }
        Ok(out)
    }
}

impl PartitionSource for Fabric {
    fn path(&self) -> &Path {
        Fabric::path(self)
    }

    fn is_read_only(&self) -> bool {
        Fabric::is_read_only(self)
    }

    fn refresh(&self) -> Result<()> {
        Fabric::refresh(self)
    }

    fn handle(&self, topic: &str) -> Result<Arc<TopicHandle>> {
        Fabric::handle(self, topic)
    }

    fn topic_info(&self, topic: &str) -> Result<TopicInfo> {
        Fabric::topic_info(self, topic)
    }

    fn partition(&self, topic: &str, partition: u32) -> Result<Arc<Log>> {
        Fabric::partition(self, topic, partition)
    }

    fn partition_view(&self, topic: &str, partition: u32) -> Result<PartitionView> {
        Fabric::partition_view(self, topic, partition)
    }

    fn known_earliest(&self, topic: &str, partition: u32) -> Option<u64> {
        self.inner.tiers.known_earliest(topic, partition)
    }

    fn create_topic(&self, name: &str, config: TopicConfig) -> Result<()> {
        Fabric::create_topic(self, name, config)
    }

    fn state_io(&self) -> crate::storage::io::Io {
        Fabric::state_io(self)
    }

    fn track(&self, what: String) -> OpenHandle {
        Fabric::track(self, what)
    }

    fn downgrade(&self) -> WeakSource {
        let weak = Fabric::downgrade(self);
        WeakSource(Arc::new(move || {
            weak.upgrade()
                .map(|fabric| Arc::new(fabric) as Arc<dyn PartitionSource>)
        }))
    }
}

impl crate::produce::ProducerFactory for Fabric {
    fn producer(&self, topic: &str, source: &str) -> Result<Producer> {
        Fabric::producer(self, topic, source)
    }
}
