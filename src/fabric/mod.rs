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

mod admin;
mod groups;
mod stats;
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

impl Inner {
    /// The state of a fabric handle on `root`: a writer when it holds the
    /// directory `lock`, a read-only view otherwise.
    fn new(tiers: Tiers, root: PathBuf, config: FabricConfig, lock: Option<DirLock>) -> Inner {
        Inner {
            tiers,
            root,
            config,
            read_only: lock.is_none(),
            topics: RwLock::new(BTreeMap::new()),
            admin: Mutex::new(()),
            _lock: lock,
            groups: Default::default(),
            guards: Default::default(),
            handles: Default::default(),
            state_faults: RwLock::new(None),
        }
    }
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
    // Without a remote config, the one the data directory recorded (if any).
    #[cfg(feature = "tier-s3")]
    if let Some(remote) =
        crate::tier::remote_settings::resolve(root, config.remote_warm.as_ref(), read_only)?
    {
        let connected = crate::tier::remote::RemoteTier::connect(remote);
        let connected = match (connected, &config.remote_warm) {
            (Err(e), None) => Err(crate::tier::remote_settings::explain_stored(root, e)),
            (other, _) => other,
        };
        return Ok(tiers.with_remote(connected?));
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
            inner: Arc::new(Inner::new(
                tiers_for(&root, &config, false)?,
                root,
                config,
                Some(lock),
            )),
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
            inner: Arc::new(Inner::new(
                tiers_for(&root, config, true)?,
                root,
                FabricConfig::default(),
                None,
            )),
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

    /// Events of `topic` refused by the schema catalog (topics with
    /// `require_schemas`) since its first producer opened in this process.
    pub fn schema_violations(&self, topic: &str) -> Result<u64> {
        let handle = self.handle(topic)?;
        Ok(self
            .inner
            .guards
            .existing(&handle)
            .and_then(|g| g.schemas.as_ref().map(|s| s.refused()))
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
        // Only topic files are read: no tier (and no object store) is needed.
        let local = Tiers::new(
            root.join(crate::tier::WARM_DIR),
            root.join(crate::tier::COLD_DIR),
            true,
        );
        let probe = Fabric {
            inner: Arc::new(Inner::new(
                local,
                root.to_path_buf(),
                FabricConfig::default(),
                None,
            )),
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
