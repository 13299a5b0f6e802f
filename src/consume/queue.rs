//! Queues: a named subscription on a topic whose messages are acked or
//! nacked one by one, redelivered after a visibility timeout or a backoff,
//! and dead-lettered after their last attempt.
//!
//! Owns the runtime of a queue: competing consumers fetching from one
//! [`Queue`] (each message in flight with at most one of them), the
//! in-flight cap, visibility timeouts, retries with backoff, TTL expiry, the
//! tenant filter, and when its state is written to the queue's state log
//! `<data>/queues/<name>/state` (layout in `src/queue_state.rs`). It reads
//! records only through [`crate::consume::reader::Reader`] and writes dead letters
//! only through [`crate::consume::dlq`]; it must never ack a message on the source
//! before its dead letter is durable, and never hand a message to a second
//! consumer while it is in flight.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::clock::{Clock, SystemClock};
use crate::consume::dlq::{self, DeadLetter, DlqRateAlert, DlqRateEvent, DlqReason, RateWindow};
use crate::consume::queue_state::{self, History, PartitionState};
use crate::consume::reader::{RawEvent, Reader, StartFrom};
use crate::consume::retry::RetryPolicy;
use crate::envelope::{EnvelopeError, EnvelopeHead, EnvelopeRef};
use crate::error::{Error, Result};
use crate::storage::statelog::StateLog;
use crate::topic::{PartitionSource, TopicHandle};

/// Directory (under the data directory) holding one directory per queue.
pub const QUEUES_DIR: &str = "queues";
const STATE_FILE: &str = "state";

/// Settings of a [`Queue`]. Start from `QueueConfig::default()` and set fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QueueConfig {
    /// Deliver only events of this tenant (others are skipped and counted).
    pub tenant: Option<String>,
    /// An unacked message is visible again exactly this long after it was
    /// handed out (from its deadline, whenever the next fetch comes), with no
    /// retry backoff; the timed-out delivery counts as an attempt toward
    /// `retry.max_attempts` (SQS's receive count), so a message timing out
    /// on its last attempt is dead-lettered (`max_attempts_exceeded`).
    /// Backoff applies to nacks only.
    pub visibility_timeout: Duration,
    /// Most messages delivered and not yet acked or dead-lettered (in flight
    /// or waiting for a retry), like JetStream's `MaxAckPending`: at the cap,
    /// fetch hands out no new message (due retries of counted ones still go).
    pub max_ack_pending: usize,
    /// Attempts and backoff.
    pub retry: RetryPolicy,
    /// Dead-letter expired events (reason `expired`) instead of dropping them.
    pub dead_letter_expired: bool,
    /// Called when dead letters over a sliding window pass a threshold.
    pub dlq_alert: Option<DlqRateAlert>,
    /// The state log is synced at least this often while the queue is used
    /// (acks and attempt counts written since the last sync may be lost to a
    /// power loss, never to a process crash).
    pub sync_interval: Duration,
    /// Compact the state log when it grows past this many bytes (and past
    /// twice its size after the last compaction).
    pub compact_after_bytes: u64,
    /// Hand out only records the partition log already made durable (below
    /// [`crate::Log::durable_offset`]), for handlers that must never act on
    /// an event a power loss could still remove; they wait for the topic's
    /// next sync. Default off.
    pub durable_only: bool,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            tenant: None,
            visibility_timeout: Duration::from_secs(30),
            max_ack_pending: 1000,
            retry: RetryPolicy::default(),
            dead_letter_expired: false,
            dlq_alert: None,
            sync_interval: Duration::from_millis(100),
            compact_after_bytes: 4 << 20,
            durable_only: false,
            clock: Arc::new(SystemClock),
        }
    }
}

impl QueueConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        self.retry.validate()?;
        if self.max_ack_pending == 0 {
            return Err(Error::invalid(
                "queue max_ack_pending",
                "must be at least 1",
            ));
        }
        if self.visibility_timeout.is_zero() {
            return Err(Error::invalid(
                "queue visibility_timeout",
                "must be longer than zero",
            ));
        }
        if let Some(a) = &self.dlq_alert
            && a.window.is_zero()
        {
            return Err(Error::invalid(
                "dlq alert window",
                "must be longer than zero",
            ));
        }
        use crate::clock::{DAY, HOUR, check_duration};
        // SQS's limit: a message invisible for longer is a lost message.
        check_duration(
            "queue visibility_timeout",
            self.visibility_timeout,
            12 * HOUR,
        )?;
        if let Some(a) = &self.dlq_alert {
            check_duration("dlq alert window", a.window, 7 * DAY)?;
        }
        Ok(())
    }
}

/// A message handed out by [`Queue::fetch`]: ack or nack it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    /// Its partition.
    pub partition: u32,
    /// Its offset.
    pub offset: u64,
    /// The record timestamp (µs; the envelope's `emitted_at`).
    pub timestamp: i64,
    /// This delivery's number: 1 for the first, counting across restarts.
    pub attempt: u32,
    /// The encoded envelope.
    pub value: Bytes,
}

impl QueueMessage {
    /// Decodes the envelope in place.
    pub fn envelope(&self) -> std::result::Result<EnvelopeRef<'_>, EnvelopeError> {
        EnvelopeRef::decode(&self.value)
    }
}

/// Why a handler gave a message back, and whether to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The reason recorded if the message is dead-lettered now.
    pub reason: DlqReason,
    /// The error text (kept as evidence in the dead letter).
    pub error: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// Redeliver after this instead of the policy's backoff.
    pub delay: Option<Duration>,
}

impl Failure {
    /// A retryable handler error: redelivered after the policy's backoff.
    pub fn retry(error: impl Into<String>) -> Failure {
        Failure {
            reason: DlqReason::HandlerError,
            error: error.into(),
            retryable: true,
            delay: None,
        }
    }

    /// A retryable handler error redelivered after `delay` (`nack(delay)`).
    pub fn retry_after(error: impl Into<String>, delay: Duration) -> Failure {
        Failure {
            delay: Some(delay),
            ..Failure::retry(error)
        }
    }

    /// A failure no retry can fix: dead-lettered at once with `reason`.
    pub fn fatal(reason: DlqReason, error: impl Into<String>) -> Failure {
        Failure {
            reason,
            error: error.into(),
            retryable: false,
            delay: None,
        }
    }
}

/// What [`Queue::nack`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NackOutcome {
    /// Redelivered (as attempt `next_attempt`) at or after `at` (µs).
    Retry {
        /// The attempt number of the next delivery.
        next_attempt: u32,
        /// Earliest redelivery time, µs since the epoch.
        at: i64,
    },
    /// Sent to the dead-letter queue at this `.dlq` partition and offset.
    DeadLettered {
        /// Partition of `<topic>.dlq`.
        partition: u32,
        /// Offset there.
        offset: u64,
    },
    /// Nothing: this delivery is no longer current (it timed out and the
    /// message was redelivered or acked since).
    Stale,
}

/// Counters of a queue since it was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// Deliveries (first and repeated).
    pub delivered: u64,
    /// Deliveries after the first.
    pub redelivered: u64,
    /// Acks that marked a message done.
    pub acked: u64,
    /// Nacks that took effect.
    pub nacked: u64,
    /// Visibility timeouts.
    pub timed_out: u64,
    /// Messages sent to the dead-letter queue.
    pub dead_lettered: u64,
    /// Events past `emitted_at + ttl` that were not delivered.
    pub expired: u64,
    /// Events of other tenants skipped.
    pub filtered: u64,
    /// Messages in flight now.
    pub in_flight: u64,
    /// Messages waiting for a retry now.
    pub waiting: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    InFlight { deadline: i64 },
    Waiting { retry_at: i64 },
    Ready,
}

#[derive(Debug)]
struct Outstanding {
    value: Bytes,
    timestamp: i64,
    history: History,
    phase: Phase,
}

type Key = (u32, u64);

/// A multiply-rotate hasher for message keys: SipHash's DoS resistance buys
/// nothing for offsets the queue itself reads, and costs a third of an ack.
#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7C_C1_B7_27_22_0A_95);
    }
}

type KeyMap<V> = HashMap<Key, V, std::hash::BuildHasherDefault<KeyHasher>>;

struct State {
    reader: Reader,
    parts: BTreeMap<u32, PartitionState>,
    outstanding: KeyMap<Outstanding>,
    /// (time, partition, offset): a visibility deadline or retry time; an
    /// entry is live only while the message's phase still names that time.
    timers: BinaryHeap<Reverse<(i64, u32, u64)>>,
    ready: VecDeque<Key>,
    in_flight: usize,
    log: StateLog,
    compact_at: u64,
    last_sync: Instant,
    /// State-log records of the operation under way, written in one append.
    pending: Vec<Vec<u8>>,
    /// Partitions whose first deliveries advanced in this operation.
    delivered_dirty: Vec<u32>,
    /// Per partition, the end of the offsets this operation marked done
    /// with an `acks` record: the log must be durable past it first.
    done_high: BTreeMap<u32, u64>,
    stats: QueueStats,
    rate: RateWindow,
    alerts: Vec<DlqRateEvent>,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("outstanding", &self.outstanding.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

struct Inner {
    name: String,
    source: Arc<dyn PartitionSource>,
    topic: Arc<TopicHandle>,
    config: QueueConfig,
    state: Mutex<State>,
    /// Fetchers blocked now: acks and nacks wake them only when non-zero.
    waiters: AtomicUsize,
    /// Keeps `Fabric::close` from closing the fabric under this queue.
    _open: crate::topic::OpenHandle,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.name)
            .field("topic", &self.topic.name)
            .finish_non_exhaustive()
    }
}

/// A queue subscription on a topic. Cheap to clone, `Send + Sync`: any
/// number of threads may [`fetch`](Queue::fetch) from one queue at once
/// (competing consumers), each message being in flight with one of them.
///
/// Delivery is at least once: a message is redelivered when its visibility
/// timeout passes unacked, when it is nacked, and after a restart when it
/// was not acked before. Every delivery counts as an attempt, across
/// restarts; after `retry.max_attempts` failed ones — or at once for a
/// non-retryable [`Failure`] — the message goes to `<topic>.dlq` with its
/// original bytes and is acked. One handle per queue name at a time (in any
/// process): a second open gets [`Error::Locked`].
#[derive(Debug, Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

fn queue_error(name: &str, reason: impl Into<String>) -> Error {
    Error::invalid(format!("queue {name:?}"), reason)
}

impl Queue {
    pub(crate) fn open(
        source: &Arc<dyn PartitionSource>,
        name: &str,
        topic: &str,
        config: QueueConfig,
    ) -> Result<Queue> {
        crate::topic::validate_topic_name(name)
            .map_err(|e| queue_error(name, format!("bad name: {e}")))?;
        config.validate()?;
        if source.is_read_only() {
            return Err(queue_error(
                name,
                "queues write their state and dead letters: open the data directory as writer",
            ));
        }
        if topic.ends_with(dlq::DLQ_SUFFIX) {
            return Err(queue_error(
                name,
                format!(
                    "{topic:?} is a dead-letter topic: its records are dead letters, not \
                     events; read them with Fabric::dead_letters or `fabric dlq list`"
                ),
            ));
        }
        let handle = source.handle(topic)?;
        let dir = source.path().join(QUEUES_DIR).join(name);
        let opened = StateLog::open(&source.state_io(), &dir, STATE_FILE)?;
        let mut persisted = queue_state::fold(&opened.records, opened.log.path())?;
        let mut log = opened.log;
        match &persisted.topic {
            Some(bound) if bound != topic => {
                return Err(queue_error(
                    name,
                    format!("it reads topic {bound:?}, not {topic:?}; pick another queue name"),
                ));
            }
            Some(_) => {}
            None => log.append(&[&queue_state::binding(topic)], true)?,
        }
        // Start each partition at its ack floor, clamped to what it retains
        // in any readable tier (warm or hot): un-acked messages retention
        // moved to warm are still delivered, and so is a new queue's warm
        // backlog.
        let logs = handle.partitions();
        let mut starts = BTreeMap::new();
        for (p, l) in logs.iter().enumerate() {
            let p = p as u32;
            let (earliest, end) = source.retained_range(topic, p, l);
            let part = persisted.partitions.entry(p).or_default();
            // Done offsets past the end: records the queue counted as acked
            // are gone (acks are never persisted past the durable offset, so
            // a power loss cannot do this; a repair, an older version or a
            // recreated topic can). New records would reuse those offsets
            // and be skipped as acked: report it instead.
            let done_end = part
                .acked
                .runs()
                .last()
                .map_or(part.floor, |(_, e)| e.max(part.floor));
            if done_end > end {
                return Err(Error::CursorBeyondLog {
                    consumer: format!("queue {name:?} (state in {})", dir.display()),
                    topic: topic.to_string(),
                    partition: p,
                    cursor: done_end,
                    log_end: end,
                });
            }
            // Only attempt counting rests on it: never above the end.
            part.delivered_to = part.delivered_to.min(end);
            if part.floor < earliest {
                part.floor = earliest;
                part.normalise();
            }
            starts.insert(p, part.floor);
        }
        let reader = Reader::new(source.clone(), handle.clone(), StartFrom::Offsets(starts))?
            .durable_only(config.durable_only);
        let compact_at = config.compact_after_bytes.max(2 * log.len());
        let state = State {
            reader,
            parts: persisted.partitions,
            outstanding: KeyMap::default(),
            timers: BinaryHeap::new(),
            ready: VecDeque::new(),
            in_flight: 0,
            log,
            compact_at,
            last_sync: Instant::now(),
            pending: Vec::new(),
            delivered_dirty: Vec::new(),
            done_high: BTreeMap::new(),
            stats: QueueStats::default(),
            rate: RateWindow::default(),
            alerts: Vec::new(),
        };
        Ok(Queue {
            inner: Arc::new(Inner {
                name: name.to_string(),
                source: source.clone(),
                topic: handle,
                config,
                state: Mutex::new(state),
                waiters: AtomicUsize::new(0),
                _open: source.track(format!("queue {name:?} on topic {topic:?}")),
            }),
        })
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The topic it reads.
    pub fn topic(&self) -> &str {
        &self.inner.topic.name
    }

    /// Counters since the queue was opened.
    pub fn stats(&self) -> QueueStats {
        let s = self.inner.state.lock();
        let mut stats = s.stats.clone();
        stats.in_flight = s.in_flight as u64;
        stats.waiting = s
            .outstanding
            .values()
            .filter(|o| !matches!(o.phase, Phase::InFlight { .. }))
            .count() as u64;
        stats
    }

    /// Up to `max` messages: due retries first, then new ones. Blocks until
    /// at least one is available or `timeout` passes (then returns none),
    /// woken by appends to the topic, by acks and nacks of other consumers,
    /// and at the next visibility deadline or retry time — never polling.
    pub fn fetch(&self, max: usize, timeout: Duration) -> Result<Vec<QueueMessage>> {
        let deadline = crate::clock::deadline(Instant::now(), timeout);
        let signal = self.inner.topic.append_signal.clone();
        loop {
            // Counted before the look: an ack after it sees the waiter and
            // bumps the generation taken here.
            self.inner.waiters.fetch_add(1, Ordering::SeqCst);
            let generation = signal.generation();
            let collected = self.collect(max);
            let (messages, next_due) = match collected {
                Ok(v) => v,
                Err(e) => {
                    self.inner.waiters.fetch_sub(1, Ordering::SeqCst);
                    return Err(e);
                }
            };
            let now = Instant::now();
            if !messages.is_empty() || max == 0 || now >= deadline {
                self.inner.waiters.fetch_sub(1, Ordering::SeqCst);
                self.observe_inflight();
                return Ok(messages);
            }
            let wake = match next_due {
                Some(due) => {
                    let until = due.saturating_sub(self.now()).max(0) as u64;
                    deadline.min(crate::clock::deadline(now, Duration::from_micros(until)))
                }
                None => deadline,
            };
            signal.wait_past(generation, wake);
            self.inner.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// [`Queue::fetch`] without blocking.
    pub fn try_fetch(&self, max: usize) -> Result<Vec<QueueMessage>> {
        self.fetch(max, Duration::ZERO)
    }

    /// Marks `message` done: it is never delivered again. Acking a message
    /// whose delivery timed out is accepted (the work was done); acking
    /// twice is a no-op. Written to the state log before this returns.
    pub fn ack(&self, message: &QueueMessage) -> Result<()> {
        self.ack_all(std::slice::from_ref(message))
    }

    /// Acks every message of `messages` (any order) with one state-log write.
    pub fn ack_all(&self, messages: &[QueueMessage]) -> Result<()> {
        let result = {
            let mut s = self.inner.state.lock();
            let result = s.ack(messages, &self.inner.name);
            let flushed = s.flush_pending(&self.inner);
            result.and(flushed)
        };
        if result.is_ok() {
            crate::observe::consumed(&self.inner.topic.name, &self.inner.name, messages.len());
        }
        self.observe_inflight();
        self.wake_fetchers();
        result
    }

    /// Gives `message` back: redelivered after the failure's delay or the
    /// policy's backoff, or dead-lettered when the failure is not retryable
    /// or this was its last attempt.
    pub fn nack(&self, message: &QueueMessage, failure: Failure) -> Result<NackOutcome> {
        let (result, alerts) = {
            let mut s = self.inner.state.lock();
            let now = self.now();
            let result = s.nack(&self.inner, message, failure, now);
            let flushed = s.flush_pending(&self.inner);
            (
                result.and_then(|r| flushed.map(|()| r)),
                std::mem::take(&mut s.alerts),
            )
        };
        self.fire(alerts);
        crate::observe::consume_failed(&self.inner.topic.name, &self.inner.name);
        self.observe_inflight();
        self.wake_fetchers();
        result
    }

    /// Reports the in-flight count to the metrics facade.
    fn observe_inflight(&self) {
        let in_flight = self.inner.state.lock().in_flight;
        crate::observe::queue_inflight(&self.inner.topic.name, &self.inner.name, in_flight);
    }

    /// Makes every ack, nack and attempt count so far durable.
    pub fn flush(&self) -> Result<()> {
        let mut s = self.inner.state.lock();
        s.log.sync()?;
        s.last_sync = Instant::now();
        Ok(())
    }

    fn now(&self) -> i64 {
        self.inner.config.clock.wall_micros()
    }

    fn wake_fetchers(&self) {
        if self.inner.waiters.load(Ordering::SeqCst) > 0 {
            self.inner.topic.append_signal.notify();
        }
    }

    fn fire(&self, alerts: Vec<DlqRateEvent>) {
        if let Some(alert) = &self.inner.config.dlq_alert {
            for event in alerts {
                (alert.callback)(event);
            }
        }
    }

    /// One non-blocking look: messages to hand out and the next timer.
    fn collect(&self, max: usize) -> Result<(Vec<QueueMessage>, Option<i64>)> {
        let (result, alerts) = {
            let mut s = self.inner.state.lock();
            let now = self.now();
            let mut out = Vec::new();
            let result = s
                .collect(&self.inner, max, now, &mut out)
                .and_then(|()| s.flush_pending(&self.inner));
            let mut next_due = s.timers.peek().map(|Reverse((t, _, _))| *t);
            if s.reader.awaits_sync() {
                // Durable-only and records wait for a sync, which no append
                // signals: look again shortly.
                let soon = now.saturating_add(5_000);
                next_due = Some(next_due.map_or(soon, |t| t.min(soon)));
            }
            (
                result.map(|()| (out, next_due)),
                std::mem::take(&mut s.alerts),
            )
        };
        self.fire(alerts);
        result
    }
}

impl State {
    fn part(&mut self, partition: u32, first_seen: u64) -> &mut PartitionState {
        self.parts
            .entry(partition)
            .or_insert_with(|| PartitionState {
                floor: first_seen,
                delivered_to: first_seen,
                ..PartitionState::default()
            })
    }

    fn collect(
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
    fn fire_timers(&mut self, inner: &Inner, now: i64) -> Result<()> {
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
    fn admit(&mut self, inner: &Inner, raw: RawEvent, now: i64) -> Result<Option<QueueMessage>> {
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
        self.outstanding.insert(
            key,
            Outstanding {
                value: raw.value,
                timestamp: raw.timestamp,
                history,
                phase: Phase::Ready,
            },
        );
        if retry_at > now {
            self.schedule_retry(key, retry_at);
            return Ok(None);
        }
        Ok(self.deliver(inner, key, now))
    }

    /// A retry whose event expired while it waited: not delivered again;
    /// dead-lettered (`expired`) when the queue asks for it, else acked.
    fn expire_retry(&mut self, inner: &Inner, key: Key, now: i64) -> Result<bool> {
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
    fn note_done(&mut self, key: Key) {
        let end = self.done_high.entry(key.0).or_default();
        *end = (*end).max(key.1 + 1);
    }

    fn schedule_retry(&mut self, key: Key, at: i64) {
        if let Some(m) = self.outstanding.get_mut(&key) {
            m.phase = Phase::Waiting { retry_at: at };
            self.push_timer(at, key);
        }
    }

    /// Adds a timer; drops dead ones (acked, or superseded by a later
    /// phase) once they outnumber the live ones, so the heap stays
    /// proportional to the outstanding messages, not to the ack rate.
    fn push_timer(&mut self, at: i64, key: Key) {
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

    fn deliver(&mut self, inner: &Inner, key: Key, now: i64) -> Option<QueueMessage> {
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
    fn time_out(&mut self, inner: &Inner, key: Key, deadline: i64, now: i64) -> Result<()> {
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

    /// A failed attempt of an outstanding, no-longer-in-flight message.
    fn fail(&mut self, inner: &Inner, key: Key, failure: Failure, now: i64) -> Result<NackOutcome> {
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

    fn letter(
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

    fn dead_letter_outstanding(
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

    fn dead_letter_new(
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
            self.outstanding.insert(
                key,
                Outstanding {
                    value: raw.value,
                    timestamp: raw.timestamp,
                    history,
                    phase: Phase::Ready,
                },
            );
            self.schedule_retry(key, now.saturating_add(delay.as_micros() as i64));
            return Err(e);
        }
        self.after_dead_letter(inner, key, now);
        Ok(None)
    }

    fn after_dead_letter(&mut self, inner: &Inner, key: Key, now: i64) {
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

    fn ack(&mut self, messages: &[QueueMessage], name: &str) -> Result<()> {
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

    fn nack(
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
    fn flush_pending(&mut self, inner: &Inner) -> Result<()> {
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
    fn compact(&mut self, inner: &Inner) -> Result<()> {
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
fn make_durable(inner: &Inner, ends: impl Iterator<Item = (u32, u64)>) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Fabric;
    use crate::{Draft, FabricConfig, FsyncPolicy, TopicConfig};

    #[test]
    fn peeked_routing_fields_agree_with_the_full_decoder() {
        let mut generator = crate::fixtures::FixtureGenerator::new(7, 50);
        let kinds = crate::fixtures::FixtureKind::all();
        for i in 0..300 {
            let mut e = generator.next(kinds[i % kinds.len()]);
            if i % 3 == 0 {
                e.ttl = crate::Ttl::from_millis(i as u64 * 1_000 + 1);
            }
            if i % 5 == 0 && e.event_type.starts_with("system.") {
                e.tenant_id = None;
            }
            let bytes = e.to_bytes();
            let full = EnvelopeRef::decode(&bytes).unwrap();
            let peek = EnvelopeHead::peek(&bytes).unwrap();
            assert_eq!(peek.tenant_id, full.tenant_id);
            assert_eq!(peek.emitted_at_micros, full.emitted_at_micros);
            assert_eq!(peek.ttl_millis, full.ttl_millis);
            for cut in [0, 1, bytes.len() / 3, bytes.len() / 2] {
                let short = EnvelopeHead::peek(&bytes[..cut]);
                assert!(short.is_none() || cut > bytes.len() / 3);
            }
        }
        assert!(EnvelopeHead::peek(b"EFDL not an envelope").is_none());
    }

    #[test]
    fn timers_of_acked_messages_do_not_pile_up() {
        let dir = tempfile::tempdir().unwrap();
        let fabric = Fabric::open(dir.path(), FabricConfig::with_fsync(FsyncPolicy::Os)).unwrap();
        fabric
            .create_topic("t.v1", TopicConfig::with_partitions(1))
            .unwrap();
        let mut p = fabric.producer("t.v1", "test").unwrap();
        for i in 0..5_000 {
            p.send(Draft::new(
                "billing.invoice.issued",
                Some("t"),
                serde_json::json!(i),
            ))
            .unwrap();
        }
        let queue = fabric.queue("q", "t.v1", QueueConfig::default()).unwrap();
        let mut acked = 0;
        loop {
            let got = queue.try_fetch(100).unwrap();
            if got.is_empty() {
                break;
            }
            queue.ack_all(&got).unwrap();
            acked += got.len();
            let s = queue.inner.state.lock();
            assert!(s.timers.len() <= 2 * s.outstanding.len() + 1024 + 100);
        }
        assert_eq!(acked, 5_000);
    }
}
