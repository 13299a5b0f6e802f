//! Maintenance: one run of retention over a fabric's partitions (hot → warm
//! → cold) and the background thread that repeats it.
//!
//! Owns the per-partition job (which sealed segments leave the hot tier,
//! which archives leave the warm tier, in which order the files are written,
//! synced, renamed and removed) and [`MaintenanceHandle`]. It must never
//! touch an active segment, never remove a hot segment before its archive is
//! durable in place, and never hold a lock appends or reads take while it
//! compresses or copies.

use super::*;

/// Maintenance of one partition.
pub(super) struct PartitionJob<'a> {
    pub(super) tiers: &'a Tiers,
    pub(super) io: Io,
    pub(super) topic: &'a str,
    pub(super) partition: u32,
    pub(super) config: &'a TopicConfig,
    pub(super) log: &'a Arc<Log>,
    pub(super) warm: Arc<WarmPartition>,
    pub(super) now: i64,
}

fn cutoff(now: i64, ms: u64) -> i64 {
    now.saturating_sub(i64::try_from(ms.saturating_mul(1000)).unwrap_or(i64::MAX))
}

impl PartitionJob<'_> {
    fn warm_enabled(&self) -> bool {
        self.config.warm_retention_ms > 0
    }

    fn run(&self, report: &mut MaintainReport, progress: &mut dyn FnMut(&TierMove)) -> Result<()> {
        #[cfg(feature = "tier-s3")]
        if let Some(remote) = &self.tiers.remote {
            self.sweep_remote_orphans(remote);
        }
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
        const CHUNK: usize = 1 << 20;
        let mut buf = vec![0u8; CHUNK];
        let mut pos = 0u64;
        while pos < archive.summary.file_bytes {
            let left = usize::try_from(archive.summary.file_bytes - pos).unwrap_or(usize::MAX);
            let chunk = buf.get_mut(..left.min(CHUNK)).unwrap_or_default();
            src.read_exact_at(chunk, pos)
                .map_err(|e| Error::io("read", &archive.path, e))?;
            self.io.write_at(&out, &tmp, chunk, pos)?;
            pos += chunk.len() as u64;
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
                Some(self.move_to_remote(remote, seg, base).map_err(|cause| {
                    Error::TierMoveFailed {
                        topic: self.topic.to_owned(),
                        partition: self.partition,
                        segment_base: base,
                        cause: Box::new(cause),
                    }
                })?)
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
            let data = view.map.get(..view.committed_len as usize).ok_or_else(|| {
                Error::corrupted(
                    &seg.path,
                    view.committed_len,
                    format!(
                        "the segment's committed length passes its {}-byte map",
                        view.map.len()
                    ),
                )
            })?;
            let meta = ArchiveMeta {
                topic: self.topic,
                partition: self.partition,
                created_at: now_micros(),
                schema_version_of: &catalog::schema_version_of,
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
        crate::observe::tier_moved(to.as_str());
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
