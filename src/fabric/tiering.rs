//! The facade's tier methods: maintenance runs, the background maintenance
//! thread, tier inspection and the tier fault seam.
//!
//! Owns nothing but the wiring: the work is in [`crate::tier`].

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::fabric::{Fabric, WeakFabric};
use crate::storage::warm::PartitionView;
use crate::tier::{ArchiveInfo, MaintainReport, MaintenanceHandle, PartitionTiers, TierMove};

impl Fabric {
    /// Applies every topic's retention now: sealed hot segments past hot
    /// retention (by time or bytes) become warm archive segments, or get the
    /// cold action when the topic has no warm tier; warm archives past warm
    /// retention get the cold action (`delete`, or `export` to the cold
    /// directory). Never touches an active segment; appends and reads are
    /// never blocked for longer than an in-memory list swap. Crash-safe at
    /// every step (see `docs/FORMAT.md`, "Retention tiers"). A partition that
    /// fails (a damaged segment, a full disk) does not stop the others: the
    /// first error is returned once every partition was tried.
    pub fn maintain(&self) -> Result<MaintainReport> {
        self.maintain_at(jiff::Timestamp::now())
    }

    /// [`Fabric::maintain`] as if the time were `now` (tests, replays of a schedule).
    pub fn maintain_at(&self, now: jiff::Timestamp) -> Result<MaintainReport> {
        self.check_tier_writable()?;
        crate::tier::maintain_topics(
            self.tiers(),
            self.topic_handles(),
            now.as_microsecond(),
            &mut |_| {},
        )
    }

    /// Maintains one topic as if the time were `now`, calling `progress`
    /// after each segment moved (for long runs, e.g. `fabric retention run`).
    pub fn maintain_topic(
        &self,
        topic: &str,
        now: jiff::Timestamp,
        progress: &mut dyn FnMut(&TierMove),
    ) -> Result<MaintainReport> {
        self.check_tier_writable()?;
        crate::tier::maintain_topics(
            self.tiers(),
            vec![self.handle(topic)?],
            now.as_microsecond(),
            progress,
        )
    }

    fn check_tier_writable(&self) -> Result<()> {
        if self.is_read_only() {
            return Err(Error::ReadOnlyFabric {
                path: self.path().to_path_buf(),
                op: "maintain".into(),
            });
        }
        Ok(())
    }

    /// Starts a thread that runs [`Fabric::maintain`] every `interval` until
    /// the returned handle is stopped or dropped. The thread holds no strong
    /// reference: once every other handle of the fabric is gone it ends.
    pub fn start_maintenance(&self, interval: Duration) -> Result<MaintenanceHandle> {
        self.check_tier_writable()?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let last = Arc::new(Mutex::new(None));
        let weak: WeakFabric = self.downgrade();
        let (stop2, last2) = (stop.clone(), last.clone());
        let thread = std::thread::Builder::new()
            .name("eventfabric-maintain".into())
            .spawn(move || {
                loop {
                    {
                        let (flag, cv) = &*stop2;
                        let mut stopped = flag.lock();
                        if !*stopped {
                            cv.wait_for(&mut stopped, interval);
                        }
                        if *stopped {
                            return;
                        }
                    }
                    let Some(fabric) = weak.upgrade() else { return };
                    let outcome = fabric.maintain().map_err(|e| {
                        log::warn!("background maintenance: {e}");
                        e.to_string()
                    });
                    *last2.lock() = Some(outcome);
                }
            })
            .map_err(|e| Error::io("spawn maintenance thread", self.path(), e))?;
        Ok(MaintenanceHandle {
            stop,
            thread: Some(thread),
            last,
        })
    }

    /// The earliest offset of `partition` still readable (warm or hot).
    /// Everything below it was deleted or exported by retention: a dedup
    /// cache may evict ids recorded below it.
    pub fn earliest_available(&self, topic: &str, partition: u32) -> Result<u64> {
        self.partition_view(topic, partition)?.earliest()
    }

    /// Every tier of every partition of `topic`: hot segments, warm and cold
    /// archive segments with their offset and time ranges.
    pub fn tier_summary(&self, topic: &str) -> Result<Vec<PartitionTiers>> {
        let mut out = Vec::new();
        for view in self.current_views(topic)? {
            let (p, log) = (view.partition, &view.log);
            let warm = view
                .warm
                .snapshot()
                .iter()
                .map(|a| ArchiveInfo {
                    path: a.path.clone(),
                    summary: a.summary.clone(),
                    remote: a.fetcher.as_ref().map(|f| f.location()),
                })
                .collect();
            out.push(PartitionTiers {
                partition: p,
                earliest_offset: view.earliest()?,
                next_offset: log.next_offset(),
                hot: log.segments(),
                warm,
                cold: crate::tier::list_cold(&self.tiers().cold_dir(topic, p))?,
            });
        }
        Ok(out)
    }

    /// Test support: fails chosen file operations of tiering (archive writes,
    /// renames, removals, directory syncs) from now on.
    #[doc(hidden)]
    #[cfg(any(test, feature = "failpoints"))]
    pub fn set_tier_fault_injector(
        &self,
        faults: Option<Arc<dyn crate::storage::io::FaultInjector>>,
    ) {
        self.tiers().set_faults(faults);
    }

    /// Test support: the tier fault injector that the next fabric opened
    /// with `warm_dir` as its warm directory starts with, so the tiering
    /// recovery of [`Fabric::open`] goes through it too (once; `None`
    /// withdraws it).
    #[doc(hidden)]
    #[cfg(any(test, feature = "failpoints"))]
    pub fn preset_tier_fault_injector(
        warm_dir: &std::path::Path,
        faults: Option<Arc<dyn crate::storage::io::FaultInjector>>,
    ) {
        crate::tier::preset_faults(warm_dir, faults);
    }

    /// The view of every partition of `topic`, the warm list
    /// of a read-only fabric reloaded first so it matches the hot log.
    fn current_views(&self, topic: &str) -> Result<Vec<PartitionView>> {
        let handle = self.handle(topic)?;
        let mut out = Vec::new();
        for (p, log) in handle.partitions().iter().enumerate() {
            let view = self.partition_view(topic, p as u32)?;
            if view.warm.read_only {
                view.warm.reload(log)?;
            }
            out.push(view);
        }
        Ok(out)
    }

    pub(crate) fn partition_view(&self, topic: &str, partition: u32) -> Result<PartitionView> {
        let log = self.partition(topic, partition)?;
        let warm = self.tiers().partition(topic, partition, &log)?;
        Ok(PartitionView {
            topic: topic.to_owned(),
            partition,
            log,
            warm,
        })
    }
}

#[cfg(feature = "tier-s3")]
impl Fabric {
    /// Test and bench support: how remote warm blocks were fetched since
    /// open — (GETs a reader waited for from the start, GETs started in the
    /// background ahead of the reader, background GETs a reader then used);
    /// `None` without a remote warm tier.
    #[doc(hidden)]
    pub fn remote_fetch_counts(&self) -> Option<(u64, u64, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.tiers().remote.as_ref()?.cache.counts;
        Some((
            c.on_demand.load(Relaxed),
            c.ahead.load(Relaxed),
            c.ahead_used.load(Relaxed),
        ))
    }

    /// Checks every remote warm archive of `topic` against the store:
    /// the object exists with the recorded size, its bytes have the CRC-32
    /// recorded at upload, and its header, footer, index and every block
    /// verify; offsets continue without gap or overlap into the next archive
    /// and into the hot tier. Downloads every object whole (what `fabric
    /// verify --remote` is for). Local archives are not looked at here.
    pub fn verify_remote_warm(
        &self,
        topic: &str,
    ) -> Result<Vec<crate::tier::remote::RemoteArchiveCheck>> {
        let Some(remote) = self.tiers().remote.clone() else {
            return Err(Error::invalid(
                "verify --remote",
                "this fabric has no remote warm tier (FabricConfig::remote_warm)",
            ));
        };
        let mut out = Vec::new();
        for view in self.current_views(topic)? {
            let (p, log) = (view.partition, &view.log);
            let archives = view.warm.snapshot();
            let hot_earliest = log.earliest_offset();
            for (i, a) in archives.iter().enumerate() {
                let Some(fetcher) = &a.fetcher else { continue };
                let mut problem = remote
                    .download_verified(topic, &a.path)
                    .err()
                    .map(|e| e.to_string());
                let next_base = archives.get(i + 1).map_or(hot_earliest, |n| n.base());
                if problem.is_none() && a.next() != next_base {
                    problem = Some(format!(
                        "offsets {}..{} are followed by offset {next_base} ({})",
                        a.base(),
                        a.next(),
                        if archives.get(i + 1).is_some() {
                            "the next archive"
                        } else {
                            "the hot tier"
                        }
                    ));
                }
                out.push(crate::tier::remote::RemoteArchiveCheck {
                    partition: p,
                    base_offset: a.base(),
                    next_offset: a.next(),
                    location: fetcher.location(),
                    bytes: a.summary.file_bytes,
                    problem,
                });
            }
        }
        Ok(out)
    }
}
