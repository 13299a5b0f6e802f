//! Handing messages out: reading new records, firing visibility and retry
//! timers, and delivering to a fetcher.
//!
//! Owns the fetch half of the queue's [`State`]; it must never hand a
//! message to a second consumer while it is in flight.

use super::*;

impl State {
    pub(super) fn part(&mut self, partition: u32, first_seen: u64) -> &mut PartitionState {
        self.parts
            .entry(partition)
            .or_insert_with(|| PartitionState {
                floor: first_seen,
                delivered_to: first_seen,
                ..PartitionState::default()
            })
    }

    pub(super) fn collect(
        &mut self,
        inner: &Inner,
        max: usize,
        now: i64,
        out: &mut Vec<QueueMessage>,
    ) -> Result<()> {
        self.fire_timers(inner, now)?;
        while out.len() < max {
            let Some(key) = self.ready.pop_front() else {
                break;
            };
            if self.expire_retry(inner, key, now)? {
                continue;
            }
            if let Some(m) = self.deliver(inner, key, now) {
                out.push(m);
            }
        }
        while out.len() < max && self.outstanding.len() < inner.config.max_ack_pending {
            let Some(raw) = self.reader.next_raw() else {
                break;
            };
            if let Some(m) = self.admit(inner, raw?, now)? {
                out.push(m);
            }
        }
        Ok(())
    }

    /// Visibility deadlines and retry times that passed.
    pub(super) fn fire_timers(&mut self, inner: &Inner, now: i64) -> Result<()> {
        while let Some(&Reverse((t, p, o))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(m) = self.outstanding.get_mut(&(p, o)) else {
                continue;
            };
            match m.phase {
                Phase::InFlight { deadline } if deadline == t => {
                    self.in_flight -= 1;
                    self.stats.timed_out += 1;
                    self.time_out(inner, (p, o), deadline, now)?;
                }
                Phase::Waiting { retry_at } if retry_at == t => {
                    m.phase = Phase::Ready;
                    self.ready.push_back((p, o));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A record read for the first time since open: skip, dead-letter,
    /// schedule or deliver it.
    pub(super) fn admit(
        &mut self,
        inner: &Inner,
        raw: RawEvent,
        now: i64,
    ) -> Result<Option<QueueMessage>> {
        let key = (raw.partition, raw.offset);
        let part = self.part(raw.partition, raw.offset);
        if part.is_done(raw.offset) {
            return Ok(None);
        }
        let mut history = if part.history.is_empty() {
            History::default()
        } else {
            part.history.remove(&raw.offset).unwrap_or_default()
        };
        if history.attempts == 0 && raw.offset < part.delivered_to {
            history.attempts = 1;
        }
        // Skimmed, not validated (a consumer validates what it decodes with
        // `QueueMessage::envelope`); the full decoder names what is wrong.
        let routed = EnvelopeHead::peek(&raw.value)
            .ok_or(())
            .or_else(|()| EnvelopeRef::decode(&raw.value).map(|e| EnvelopeHead::of(&e)));
        let envelope = match routed {
            Ok(e) => e,
            Err(e) => {
                let text = format!("not a valid envelope: {e}");
                return self.dead_letter_new(
                    inner,
                    raw,
                    history,
                    DlqReason::DeserializationFailure,
                    text,
                    now,
                );
            }
        };
        if let Some(tenant) = &inner.config.tenant
            && envelope.tenant_id != Some(tenant.as_str())
        {
            self.stats.filtered += 1;
            self.part(key.0, key.1).mark_done(key.1);
            return Ok(None);
        }
        if let (Some(ttl), Some(expires)) = (envelope.ttl_millis, envelope.expires_at())
            && expires <= now
        {
            self.stats.expired += 1;
            if inner.config.dead_letter_expired {
                let text = format!(
                    "expired: emitted at {} µs with ttl {ttl} ms, not delivered before {expires} µs",
                    envelope.emitted_at_micros
                );
                return self.dead_letter_new(inner, raw, history, DlqReason::Expired, text, now);
            }
            self.part(key.0, key.1).mark_done(key.1);
            return Ok(None);
        }
        if history.attempts >= inner.config.retry.max_attempts {
            // The last attempt was in flight when the queue stopped.
            let text = if history.error.is_empty() {
                "the last delivery was never acked (the consumer stopped)".to_string()
            } else {
                history.error.clone()
            };
            return self.dead_letter_new(
                inner,
                raw,
                history,
                DlqReason::MaxAttemptsExceeded,
                text,
                now,
            );
        }
        let retry_at = history.retry_at;
        self.outstanding
            .insert(key, Outstanding::ready(raw, history));
        if retry_at > now {
            self.schedule_retry(key, retry_at);
            return Ok(None);
        }
        Ok(self.deliver(inner, key, now))
    }

    /// A retry whose event expired while it waited: not delivered again;
    /// dead-lettered (`expired`) when the queue asks for it, else acked.
    pub(super) fn expire_retry(&mut self, inner: &Inner, key: Key, now: i64) -> Result<bool> {
        let Some(m) = self.outstanding.get(&key) else {
            return Ok(false);
        };
        let Some(expires) = EnvelopeHead::peek(&m.value).and_then(|r| r.expires_at()) else {
            return Ok(false);
        };
        if expires > now {
            return Ok(false);
        }
        self.stats.expired += 1;
        if inner.config.dead_letter_expired {
            if let Some(m) = self.outstanding.get_mut(&key) {
                m.history.error = format!("expired at {expires} µs while waiting for a retry");
            }
            self.dead_letter_outstanding(inner, key, DlqReason::Expired, now)?;
        } else {
            self.outstanding.remove(&key);
            self.part(key.0, key.1).mark_done(key.1);
            self.note_done(key);
            self.pending.push(queue_state::acks(key.0, &[key.1]));
        }
        Ok(true)
    }

    /// Notes an offset marked done by this operation's `acks` record.
    pub(super) fn note_done(&mut self, key: Key) {
        let end = self.done_high.entry(key.0).or_default();
        *end = (*end).max(key.1 + 1);
    }

    pub(super) fn schedule_retry(&mut self, key: Key, at: i64) {
        if let Some(m) = self.outstanding.get_mut(&key) {
            m.phase = Phase::Waiting { retry_at: at };
            self.push_timer(at, key);
        }
    }

    /// Adds a timer; drops dead ones (acked, or superseded by a later
    /// phase) once they outnumber the live ones, so the heap stays
    /// proportional to the outstanding messages, not to the ack rate.
    pub(super) fn push_timer(&mut self, at: i64, key: Key) {
        self.timers.push(Reverse((at, key.0, key.1)));
        if self.timers.len() > 2 * self.outstanding.len() + 1024 {
            let outstanding = &self.outstanding;
            self.timers.retain(|Reverse((t, p, o))| {
                outstanding.get(&(*p, *o)).is_some_and(|m| match m.phase {
                    Phase::InFlight { deadline } => deadline == *t,
                    Phase::Waiting { retry_at } => retry_at == *t,
                    Phase::Ready => false,
                })
            });
        }
    }

    pub(super) fn deliver(&mut self, inner: &Inner, key: Key, now: i64) -> Option<QueueMessage> {
        let m = self.outstanding.get_mut(&key)?;
        m.history.attempts += 1;
        let deadline = now.saturating_add(inner.config.visibility_timeout.as_micros() as i64);
        m.phase = Phase::InFlight { deadline };
        let message = QueueMessage {
            partition: key.0,
            offset: key.1,
            timestamp: m.timestamp,
            attempt: m.history.attempts,
            value: m.value.clone(),
        };
        if m.history.attempts > 1 {
            self.stats.redelivered += 1;
            crate::observe::queue_redelivered(&inner.topic.name, &inner.name);
            self.pending
                .push(queue_state::history(key.0, key.1, &m.history));
        }
        self.push_timer(deadline, key);
        self.in_flight += 1;
        self.stats.delivered += 1;
        let part = self.part(key.0, key.1);
        if key.1 >= part.delivered_to {
            part.delivered_to = key.1 + 1;
            if !self.delivered_dirty.contains(&key.0) {
                self.delivered_dirty.push(key.0);
            }
        }
        Some(message)
    }

    /// A delivery whose visibility deadline passed unacked. The delivery
    /// already counted as an attempt (SQS's receive count); after the last
    /// one the message is dead-lettered, otherwise it is visible again from
    /// its deadline on — no retry backoff (that is for nacks), and measured
    /// from the deadline, not from the fetch that happens to notice it.
    pub(super) fn time_out(
        &mut self,
        inner: &Inner,
        key: Key,
        deadline: i64,
        now: i64,
    ) -> Result<()> {
        let max_attempts = inner.config.retry.max_attempts;
        let Some(m) = self.outstanding.get_mut(&key) else {
            return Ok(());
        };
        let h = &mut m.history;
        if h.first_failure == 0 {
            h.first_failure = deadline;
        }
        h.last_failure = deadline;
        h.error = format!(
            "not acked within the visibility timeout ({:?})",
            inner.config.visibility_timeout
        );
        if h.attempts >= max_attempts {
            self.dead_letter_outstanding(inner, key, DlqReason::MaxAttemptsExceeded, now)?;
            return Ok(());
        }
        h.retry_at = deadline;
        self.pending.push(queue_state::history(key.0, key.1, h));
        m.phase = Phase::Ready;
        self.ready.push_back(key);
        Ok(())
    }
}
