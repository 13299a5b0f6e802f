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

use crate::consume::dlq::{self, DeadLetter, DlqRateEvent, DlqReason, RateWindow};
use crate::consume::queue_state::{self, History, PartitionState};
use crate::consume::reader::{RawEvent, Reader, StartFrom};
use crate::envelope::{EnvelopeHead, EnvelopeRef};
use crate::error::{Error, Result};
use crate::storage::statelog::StateLog;
use crate::topic::{PartitionSource, TopicHandle};
mod config;
mod delivery;
mod message;
mod settle;
#[cfg(test)]
mod tests;

pub use config::QueueConfig;
pub use message::{Failure, NackOutcome, QueueMessage, QueueStats};

/// Directory (under the data directory) holding one directory per queue.
pub const QUEUES_DIR: &str = "queues";
const STATE_FILE: &str = "state";

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

impl Outstanding {
    /// A message ready to be fetched (first delivery or a retry).
    fn ready(raw: RawEvent, history: History) -> Self {
        Outstanding {
            value: raw.value,
            timestamp: raw.timestamp,
            history,
            phase: Phase::Ready,
        }
    }
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

    /// Reports the in-flight count to the metrics facade.
    fn observe_inflight(&self) {
        let in_flight = self.inner.state.lock().in_flight;
        crate::observe::queue_inflight(&self.inner.topic.name, &self.inner.name, in_flight);
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
