//! Committing and moving cursors: commit, seek, pause/resume, lag, status,
//! idempotent-processing records, and leaving the group.
//!
//! Owns the write half of a [`Consumer`]; it must never commit a partition
//! the member does not own at the current epoch.

use super::*;

impl Consumer {
    /// Commits the position after everything handed out so far on the
    /// partitions this member still owns (and, effectively-once, the ids
    /// processed with them) as one state-log record, durable per
    /// `commit_durability`. Work on partitions revoked since the last poll
    /// is not committed: their new owner redelivers it.
    pub fn commit(&mut self) -> Result<()> {
        self.sync()?;
        self.commit_owned()?;
        self.observe_lag();
        Ok(())
    }

    pub(super) fn commit_owned(&mut self) -> Result<()> {
        let coord = self.coord().clone();
        let now_wall = self.config.clock.wall_micros();
        let mut state = coord.state.lock();
        let mine = |p: u32| {
            state.owner.get(p as usize).copied().flatten() == Some(self.id)
                && state.owner_since.get(p as usize) == self.since.get(p as usize)
        };
        let positions: Vec<(u32, u64)> = self
            .owned
            .iter()
            .copied()
            .filter(|&p| mine(p))
            .filter_map(|p| self.next_of(p).map(|n| (p, n)))
            .filter(|(p, n)| state.store.state().committed.get(p) != Some(n))
            .collect();
        let ids: Vec<(Uuid, u64)> = self
            .pending
            .iter()
            .filter(|(p, _, _)| mine(*p))
            .map(|&(_, id, v)| (id, v))
            .collect();
        if positions.is_empty() && ids.is_empty() && self.expired_uncommitted == 0 {
            self.last_commit = self.config.clock.monotonic();
            return Ok(());
        }
        // A cursor is never persisted past what the partition log made
        // durable: otherwise a power loss could cut the log below it and
        // the records appended after the restart would be skipped. Waiting
        // for the log's sync (only when it is behind) keeps at-least-once.
        // A read-only view cannot sync the writer's log; its commits rely on
        // the writer's fsync policy (see `durable_only`).
        if !self.source.is_read_only() {
            let logs = coord.topic.partitions();
            for &(p, n) in &positions {
                if let Some(log) = logs.get(p as usize)
                    && log.durable_offset() < n
                {
                    log.flush()?;
                }
            }
        }
        let expired = state.store.state().expired + self.expired_uncommitted;
        let sync = self.config.commit_durability == CommitDurability::Sync;
        state
            .store
            .commit(&positions, expired, &ids, now_wall, sync)?;
        drop(state);
        self.expired_uncommitted = 0;
        self.pending.clear();
        self.pending_set.clear();
        self.last_commit = self.config.clock.monotonic();
        Ok(())
    }

    /// Moves this member's position in `partition` (which it must own) to
    /// `offset`, between the earliest offset held and the end. Takes effect
    /// at the next poll; committed with the next commit.
    pub fn seek(&mut self, partition: u32, offset: u64) -> Result<()> {
        self.sync()?;
        self.check_owned(partition)?;
        let topic = &self.coord().topic.name;
        let log = self.source.partition(topic, partition)?;
        let (earliest, end) = self.source.retained_range(topic, partition, &log);
        if offset < earliest || offset > end {
            return Err(Error::OffsetOutOfRange {
                offset,
                earliest,
                next: end,
            });
        }
        self.set_next(partition, Some(offset));
        self.rebuild_reader()
    }

    /// Moves this member's position in `partition` to the first event whose
    /// `emitted_at` is at or after `time` (the end when none is).
    pub fn seek_to_time(&mut self, partition: u32, time: Timestamp) -> Result<()> {
        self.check_owned(partition)?;
        let offset = offset_for_time(&self.source, &self.coord().topic, partition, time)?;
        self.seek(partition, offset)
    }

    /// Stops handing out events of `partition` until [`Consumer::resume`]
    /// (membership and the cursor are kept).
    pub fn pause(&mut self, partition: u32) -> Result<()> {
        self.paused.insert(partition);
        self.rebuild_reader()
    }

    /// Hands out events of `partition` again.
    pub fn resume(&mut self, partition: u32) -> Result<()> {
        self.paused.remove(&partition);
        self.rebuild_reader()
    }

    pub(super) fn check_owned(&self, partition: u32) -> Result<()> {
        if !self.owned.contains(&partition) {
            return Err(Error::NotOwned {
                group: self.group().to_string(),
                member: self.id,
                partition,
                owned: self.owned.clone(),
            });
        }
        Ok(())
    }

    /// The group's lag per partition (`log end − committed`); sum the values,
    /// or use [`GroupStatus::lag`], for the group's total.
    pub fn lag(&self) -> BTreeMap<u32, u64> {
        self.status()
            .partitions
            .iter()
            .map(|p| (p.partition, p.lag))
            .collect()
    }

    /// Committed cursors, log ends, lag and members of the group on this topic.
    pub fn status(&self) -> GroupStatus {
        self.coord().status(&self.source)
    }

    /// Records `event` as processed at entity `version` (effectively-once):
    /// persisted with the next commit, after which a redelivery of its
    /// `event_id` is skipped and [`Consumer::already_processed`] answers
    /// for it. Events handed out in effectively-once mode are recorded at
    /// version 0 automatically.
    pub fn record_processed(&mut self, event: &RawEvent, version: u64) -> Result<()> {
        let id = peek_event_id(&event.value).ok_or_else(|| Error::NotAnEnvelope {
            topic: self.coord().topic.name.clone(),
            partition: event.partition,
            offset: event.offset,
            reason: "it has no event_id to record".into(),
        })?;
        self.pending_set.insert(id);
        self.pending.push((event.partition, id, version));
        Ok(())
    }

    /// Whether the group recorded `event_id` as processed at `version` or a
    /// later one (committed, or recorded by this member since its last commit).
    pub fn already_processed(&self, event_id: Uuid, version: u64) -> bool {
        self.pending
            .iter()
            .any(|&(_, id, v)| id == event_id && v >= version)
            || self
                .coord()
                .state
                .lock()
                .store
                .window()
                .covers(&event_id, version)
    }

    /// Commits what was handed out, then leaves the group.
    pub fn close(mut self) -> Result<()> {
        self.commit()
    }

    pub(super) fn leave(&mut self) {
        let Some(coord) = self.coord.take() else {
            return;
        };
        let registry = &self.registry;
        // Held while the coordinator may drop, so a concurrent join never
        // finds the cursor log still locked by a coordinator on its way out.
        let _map = registry.coordinators.lock();
        {
            let mut state = coord.state.lock();
            if state.members.remove(&self.id).is_some() {
                let partitions = coord.topic.partitions().len();
                state.rebalance(&coord.topic, partitions);
            }
        }
        drop(coord);
    }

    pub(crate) fn set_limit(&mut self, partition: u32, end: u64) {
        if let Some(l) = self.limit.get_mut(partition as usize) {
            *l = end;
        }
    }

    pub(crate) fn topic_handle(&self) -> &Arc<TopicHandle> {
        &self.coord().topic
    }

    pub(crate) fn fabric(&self) -> &Arc<dyn PartitionSource> {
        &self.source
    }

    /// Whether every owned partition reached its limit.
    pub(crate) fn all_limits_reached(&self) -> bool {
        self.owned
            .iter()
            .all(|&p| self.next_of(p).is_some_and(|n| n >= self.limit_of(p)))
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.leave();
    }
}
