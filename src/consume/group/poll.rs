//! Polling: handing out the owned partitions' records in batches, skipping
//! expired events, and committing automatically when due.
//!
//! Owns the read half of a [`Consumer`]; it must never hand out a partition
//! the member does not own at the current epoch.

use super::*;

impl Consumer {
    /// Returns up to `max_poll_records` events from this member's partitions
    /// (in offset order per partition) as soon as there are any, otherwise
    /// blocks until an append wakes it or `timeout` passes (an empty batch).
    ///
    /// Each call is a heartbeat and adopts rebalances first; for
    /// at-least-once it counts the previous batch as processed and commits
    /// when the auto-commit interval has passed. Events whose TTL has passed
    /// are skipped and counted. In the writer's process waiting is woken by
    /// appends (no polling); on a read-only fabric it polls the files every
    /// 10 ms, as [`Reader::wait`] does.
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<RawEvent>> {
        let max = self.config.max_poll_records;
        let polled = self.poll_up_to(timeout, max);
        let (topic, group) = (&self.coord().topic.name, &self.coord().group);
        match &polled {
            Ok(events) => crate::observe::consumed(topic, group, events.len()),
            Err(_) => crate::observe::consume_failed(topic, group),
        }
        polled
    }

    /// Reports the group's lag on its topic to the metrics facade.
    pub(super) fn observe_lag(&self) {
        let status = self.status();
        let lags = status.partitions.iter().map(|p| (p.partition, p.lag));
        crate::observe::group_lag(&status.topic, &status.group, lags);
    }

    pub(crate) fn poll_up_to(&mut self, timeout: Duration, max: usize) -> Result<Vec<RawEvent>> {
        let deadline = crate::clock::deadline(Instant::now(), timeout);
        self.sync()?;
        self.maybe_auto_commit()?;
        let mut batch = Vec::new();
        loop {
            let generation = self.coord().topic.append_signal.generation();
            let at_most_once = self.config.delivery == DeliveryMode::AtMostOnce;
            let before = if at_most_once {
                self.next.clone()
            } else {
                Vec::new()
            };
            self.read_batch(&mut batch, max)?;
            if !batch.is_empty() {
                // The fence: events of a partition revoked meanwhile are not
                // handed out (their new owner starts from the cursor).
                let revoked = self.sync()?;
                if !revoked.is_empty() {
                    batch.retain(|e| !revoked.contains(&e.partition));
                }
                if !batch.is_empty()
                    && at_most_once
                    && let Err(e) = self.commit_owned()
                {
                    for &p in &self.owned {
                        if let (Some(slot), Some(&was)) =
                            (self.next.get_mut(p as usize), before.get(p as usize))
                        {
                            *slot = was;
                        }
                    }
                    self.rebuild_reader()?;
                    return Err(e);
                }
                if !batch.is_empty() {
                    return Ok(batch);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(batch);
            }
            // Wake at least twice per session timeout to heartbeat.
            let mut slice = (deadline - now).min(self.config.session_timeout / 2);
            if self.reader.as_ref().is_some_and(Reader::awaits_sync) {
                // Durable-only and records wait for a sync: no append
                // signals it, so look again shortly.
                slice = slice.min(DURABLE_POLL);
            }
            if self.source.is_read_only() {
                match self.reader.as_mut() {
                    Some(reader) => {
                        reader.wait(slice.min(Duration::from_millis(100)))?;
                    }
                    None => {
                        // Nothing assigned or everything paused: still notice
                        // partitions the writer adds.
                        self.source.refresh()?;
                        std::thread::sleep(slice.min(Duration::from_millis(10)));
                    }
                }
            } else {
                let signal = self.coord().topic.append_signal.clone();
                signal.wait_past(generation, now + slice);
            }
            self.sync()?;
        }
    }

    pub(super) fn read_batch(&mut self, batch: &mut Vec<RawEvent>, max: usize) -> Result<()> {
        let coord = self.coord().clone();
        let now_wall = self.config.clock.wall_micros();
        let dedup = self.config.delivery == DeliveryMode::EffectivelyOnce;
        loop {
            let Some(mut reader) = self.reader.take() else {
                return Ok(());
            };
            let state = dedup.then(|| coord.state.lock());
            let mut capped = false;
            let mut failed = None;
            while batch.len() < max {
                let raw = match reader.next_raw() {
                    None => break,
                    Some(Err(e)) => {
                        failed = Some(e);
                        break;
                    }
                    Some(Ok(raw)) => raw,
                };
                let p = raw.partition;
                if raw.offset >= self.limit_of(p) {
                    capped = true;
                    break;
                }
                self.set_next(p, Some(raw.offset + 1));
                if let Some(Some(ttl)) = peek_ttl_millis(&raw.value) {
                    let expires_at = raw
                        .timestamp
                        .saturating_add((ttl as i64).saturating_mul(1000));
                    // Expired from `emitted_at + ttl` on (the queue's rule too).
                    if now_wall >= expires_at {
                        if let Err(e) = self.on_expired(&raw) {
                            failed = Some(e);
                            break;
                        }
                        continue;
                    }
                }
                if let (Some(state), Some(id)) = (&state, peek_event_id(&raw.value)) {
                    if state.store.window().covers(&id, 0) || !self.pending_set.insert(id) {
                        self.duplicates += 1;
                        continue;
                    }
                    self.pending.push((raw.partition, id, 0));
                }
                batch.push(raw);
            }
            drop(state);
            self.reader = Some(reader);
            if let Some(e) = failed {
                return Err(e);
            }
            if !capped {
                return Ok(());
            }
            // A partition reached its replay bound: read on without it.
            self.rebuild_reader()?;
        }
    }

    /// The one place an expired event is skipped, counted, and — when
    /// `expired_to_dlq` is set — appended to `<topic>.dlq` with reason
    /// `expired` (synced before the cursor can move past it, so a crash
    /// re-delivers rather than loses it: at-least-once into the DLQ).
    pub(super) fn on_expired(&mut self, event: &RawEvent) -> Result<()> {
        if self.config.expired_to_dlq {
            let now = crate::clock::now_micros();
            let letter = crate::consume::dlq::DeadLetter {
                reason: crate::consume::dlq::DlqReason::Expired,
                error: "emitted_at + ttl passed before delivery".to_owned(),
                attempts: 0,
                first_failure_micros: now,
                last_failure_micros: now,
                topic: self.coord().topic.name.clone(),
                partition: event.partition,
                offset: event.offset,
                timestamp: event.timestamp,
                consumer: self.coord().group.clone(),
                envelope: event.value.clone(),
            };
            crate::consume::dlq::dead_letter(&self.source, &letter)?;
        }
        self.expired += 1;
        self.expired_uncommitted += 1;
        Ok(())
    }

    pub(super) fn maybe_auto_commit(&mut self) -> Result<()> {
        if self.config.delivery == DeliveryMode::AtMostOnce {
            return Ok(());
        }
        let since = self
            .config
            .clock
            .monotonic()
            .saturating_sub(self.last_commit);
        if self
            .config
            .auto_commit_interval
            .is_some_and(|interval| since >= interval)
        {
            self.commit_owned()?;
            self.observe_lag();
        }
        Ok(())
    }
}
