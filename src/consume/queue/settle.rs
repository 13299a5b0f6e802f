//! Settling messages: acks, nacks, retries, dead letters, and writing the
//! queue's state log.
//!
//! Owns the ack/nack/redelivery half of the queue's [`State`]; it must never
//! ack a message on the source before its dead letter is durable.

use super::*;

impl State {
    /// A failed attempt of an outstanding, no-longer-in-flight message.
    pub(super) fn fail(
        &mut self,
        inner: &Inner,
        key: Key,
        failure: Failure,
        now: i64,
    ) -> Result<NackOutcome> {
        let max_attempts = inner.config.retry.max_attempts;
        let Some(m) = self.outstanding.get_mut(&key) else {
            return Ok(NackOutcome::Stale);
        };
        let h = &mut m.history;
        if h.first_failure == 0 {
            h.first_failure = now;
        }
        h.last_failure = now;
        h.error = failure.error;
        let reason = if !failure.retryable {
            Some(failure.reason)
        } else if h.attempts >= max_attempts {
            Some(DlqReason::MaxAttemptsExceeded)
        } else {
            None
        };
        if let Some(reason) = reason {
            return self.dead_letter_outstanding(inner, key, reason, now);
        }
        let delay = failure
            .delay
            .unwrap_or_else(|| inner.config.retry.delay_after(h.attempts, key.0, key.1));
        let at = now.saturating_add(delay.as_micros() as i64);
        h.retry_at = at;
        let next_attempt = h.attempts + 1;
        self.pending.push(queue_state::history(key.0, key.1, h));
        self.schedule_retry(key, at);
        Ok(NackOutcome::Retry { next_attempt, at })
    }

    pub(super) fn letter(
        inner: &Inner,
        key: Key,
        timestamp: i64,
        value: Bytes,
        h: &History,
        reason: DlqReason,
        now: i64,
    ) -> DeadLetter {
        DeadLetter {
            reason,
            error: h.error.clone(),
            attempts: h.attempts,
            first_failure_micros: if h.first_failure == 0 {
                now
            } else {
                h.first_failure
            },
            last_failure_micros: if h.last_failure == 0 {
                now
            } else {
                h.last_failure
            },
            topic: inner.topic.name.clone(),
            partition: key.0,
            offset: key.1,
            timestamp,
            consumer: inner.name.clone(),
            envelope: value,
        }
    }

    pub(super) fn dead_letter_outstanding(
        &mut self,
        inner: &Inner,
        key: Key,
        reason: DlqReason,
        now: i64,
    ) -> Result<NackOutcome> {
        let Some(m) = self.outstanding.get(&key) else {
            return Ok(NackOutcome::Stale);
        };
        let letter = Self::letter(
            inner,
            key,
            m.timestamp,
            m.value.clone(),
            &m.history,
            reason,
            now,
        );
        match dlq::dead_letter(&inner.source, &letter) {
            Ok((partition, offset)) => {
                self.outstanding.remove(&key);
                self.after_dead_letter(inner, key, now);
                Ok(NackOutcome::DeadLettered { partition, offset })
            }
            Err(e) => {
                // Not dead-lettered: keep it, try again after a backoff.
                let delay = inner
                    .config
                    .retry
                    .delay_after(letter.attempts, key.0, key.1);
                self.schedule_retry(key, now.saturating_add(delay.as_micros() as i64));
                Err(e)
            }
        }
    }

    pub(super) fn dead_letter_new(
        &mut self,
        inner: &Inner,
        raw: RawEvent,
        mut history: History,
        reason: DlqReason,
        error: String,
        now: i64,
    ) -> Result<Option<QueueMessage>> {
        let key = (raw.partition, raw.offset);
        history.error = error;
        let letter = Self::letter(
            inner,
            key,
            raw.timestamp,
            raw.value.clone(),
            &history,
            reason,
            now,
        );
        if let Err(e) = dlq::dead_letter(&inner.source, &letter) {
            // Keep it as a message waiting for another try at dead-lettering.
            let delay = inner
                .config
                .retry
                .delay_after(history.attempts.max(1), key.0, key.1);
            self.outstanding
                .insert(key, Outstanding::ready(raw, history));
            self.schedule_retry(key, now.saturating_add(delay.as_micros() as i64));
            return Err(e);
        }
        self.after_dead_letter(inner, key, now);
        Ok(None)
    }

    pub(super) fn after_dead_letter(&mut self, inner: &Inner, key: Key, now: i64) {
        self.stats.dead_lettered += 1;
        self.part(key.0, key.1).mark_done(key.1);
        self.note_done(key);
        self.pending.push(queue_state::acks(key.0, &[key.1]));
        if let Some(alert) = &inner.config.dlq_alert
            && let Some(count) = self.rate.record(alert, now)
        {
            self.alerts.push(DlqRateEvent {
                queue: inner.name.clone(),
                topic: inner.topic.name.clone(),
                count,
                threshold: alert.threshold,
                window: alert.window,
            });
        }
    }

    pub(super) fn ack(&mut self, messages: &[QueueMessage], name: &str) -> Result<()> {
        let mut done: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for m in messages {
            let key = (m.partition, m.offset);
            match self.outstanding.remove(&key) {
                Some(o) => {
                    if matches!(o.phase, Phase::InFlight { .. }) {
                        self.in_flight -= 1;
                    }
                    self.stats.acked += 1;
                    self.part(key.0, key.1).mark_done(key.1);
                    self.note_done(key);
                    done.entry(key.0).or_default().push(key.1);
                }
                None if self.parts.get(&key.0).is_some_and(|p| p.is_done(key.1)) => {}
                None => {
                    return Err(queue_error(
                        name,
                        format!(
                            "cannot ack partition {} offset {}: it was never delivered by this queue",
                            key.0, key.1
                        ),
                    ));
                }
            }
        }
        for (p, mut offsets) in done {
            offsets.sort_unstable();
            offsets.dedup();
            self.pending.push(queue_state::acks(p, &offsets));
        }
        Ok(())
    }

    pub(super) fn nack(
        &mut self,
        inner: &Inner,
        message: &QueueMessage,
        failure: Failure,
        now: i64,
    ) -> Result<NackOutcome> {
        let key = (message.partition, message.offset);
        let current = self.outstanding.get(&key).is_some_and(|o| {
            matches!(o.phase, Phase::InFlight { .. }) && o.history.attempts == message.attempt
        });
        if !current {
            return Ok(NackOutcome::Stale);
        }
        self.in_flight -= 1;
        self.stats.nacked += 1;
        self.fail(inner, key, failure, now)
    }

    /// Writes the records of the operation in one append, then syncs or
    /// compacts when due.
    pub(super) fn flush_pending(&mut self, inner: &Inner) -> Result<()> {
        let config = &inner.config;
        for p in std::mem::take(&mut self.delivered_dirty) {
            let to = self.parts.get(&p).map_or(0, |s| s.delivered_to);
            self.pending.push(queue_state::delivered(p, to));
        }
        let done = std::mem::take(&mut self.done_high);
        if let Err(e) = make_durable(inner, done.iter().map(|(&p, &end)| (p, end))) {
            self.pending.clear();
            return Err(e);
        }
        if !self.pending.is_empty() {
            let records: Vec<&[u8]> = self.pending.iter().map(Vec::as_slice).collect();
            let written = self.log.append(&records, false);
            self.pending.clear();
            written?;
        }
        if self.log.len() > self.compact_at {
            self.compact(inner)?;
        } else if self.last_sync.elapsed() >= config.sync_interval {
            self.log.sync()?;
            self.last_sync = Instant::now();
        }
        Ok(())
    }

    /// Replaces the state log with one snapshot record per partition.
    pub(super) fn compact(&mut self, inner: &Inner) -> Result<()> {
        let config = &inner.config;
        // The snapshot's floors and runs also cover offsets skipped without
        // an `acks` record (other tenants, expired events).
        make_durable(
            inner,
            self.parts.iter().map(|(&p, part)| {
                let runs_end = part.acked.runs().last().map_or(0, |(_, e)| e);
                (p, part.floor.max(runs_end))
            }),
        )?;
        let topic = self.reader.topic().to_string();
        let mut records = vec![queue_state::binding(&topic)];
        for (&p, part) in &self.parts {
            let mut histories: Vec<(u64, &History)> =
                part.history.iter().map(|(&o, h)| (o, h)).collect();
            let mut waiting: Vec<(u64, History)> = Vec::new();
            for (&(mp, o), m) in &self.outstanding {
                if mp != p {
                    continue;
                }
                let mut h = m.history.clone();
                // In flight now: redelivered at once after a restart.
                if let Phase::InFlight { .. } = m.phase {
                    h.retry_at = 0;
                }
                waiting.push((o, h));
            }
            histories.extend(waiting.iter().map(|(o, h)| (*o, h)));
            records.push(queue_state::snapshot(p, part, histories.into_iter()));
        }
        let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        self.log.compact(&slices)?;
        self.compact_at = config.compact_after_bytes.max(2 * self.log.len());
        self.last_sync = Instant::now();
        Ok(())
    }
}

/// Makes each partition's log durable below `end` before the queue
/// persists offsets below it as done (a sync only when the log is behind):
/// a state record never vouches for records a power loss can still remove,
/// which after a restart would be new records at the same offsets.
pub(super) fn make_durable(inner: &Inner, ends: impl Iterator<Item = (u32, u64)>) -> Result<()> {
    let logs = inner.topic.partitions();
    for (p, end) in ends {
        if let Some(log) = logs.get(p as usize)
            && log.durable_offset() < end
            && log.next_offset() >= end
        {
            log.flush()?;
        }
    }
    Ok(())
}
