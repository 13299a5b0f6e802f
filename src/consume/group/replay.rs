//! Replay sessions: re-reading an offset or time range of a topic into a
//! consumer group at a bounded rate.
//!
//! Owns the range arithmetic (a start and an exclusive end offset per
//! partition, fixed when the session starts) and the token bucket that
//! limits events per second. It consumes through an ordinary group member
//! and commits only to the session's group: no other group's cursor moves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::{Consumer, ConsumerConfig, Registry, offset_for_time};
use crate::clock::Clock;
use crate::consume::reader::RawEvent;
use crate::error::{Error, Result};
use crate::topic::PartitionSource;

/// One end of a replay range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayBound {
    /// The same offset in every partition (clamped to what each one holds).
    Offset(u64),
    /// The first event emitted at or after this time, per partition.
    Time(Timestamp),
}

/// What a [`ReplaySession`] replays and how fast.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReplayConfig {
    /// Where the range starts (inclusive).
    pub from: ReplayBound,
    /// Where it ends (exclusive); `None`: the partition ends when the
    /// session starts.
    pub to: Option<ReplayBound>,
    /// Most events per second handed out (token bucket with a burst of a
    /// tenth of a second's worth, at least one); `None`: unlimited.
    pub rate: Option<f64>,
    /// Settings of the member the session consumes through.
    pub consumer: ConsumerConfig,
}

impl ReplayConfig {
    /// Replays from `from` to the current end, unlimited, with default settings.
    pub fn new(from: ReplayBound) -> Self {
        ReplayConfig {
            from,
            to: None,
            rate: None,
            consumer: ConsumerConfig::default(),
        }
    }
}

#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Duration,
    clock: Arc<dyn Clock>,
}

impl TokenBucket {
    fn new(rate: f64, clock: Arc<dyn Clock>) -> Self {
        let burst = (rate / 10.0).max(1.0);
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: clock.monotonic(),
            clock,
        }
    }

    fn refill(&mut self) {
        let now = self.clock.monotonic();
        let gained = now.saturating_sub(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + gained).min(self.burst);
        self.last = now;
    }

    /// Takes up to `want` whole tokens, waiting up to `timeout` for the first.
    fn take_up_to(&mut self, want: usize, timeout: Duration) -> usize {
        let deadline = crate::clock::deadline(Instant::now(), timeout);
        loop {
            self.refill();
            if self.tokens >= 1.0 {
                let n = (self.tokens.floor() as usize).min(want);
                self.tokens -= n as f64;
                return n;
            }
            let now = Instant::now();
            if now >= deadline {
                return 0;
            }
            // Rate limiting is waiting for time itself, not for data.
            let missing = Duration::from_secs_f64((1.0 - self.tokens) / self.rate);
            std::thread::sleep(missing.min(deadline - now));
        }
    }

    fn refund(&mut self, n: usize) {
        self.tokens = (self.tokens + n as f64).min(self.burst.max(n as f64));
    }
}

/// A replay of a fixed range of a topic into a consumer group.
///
/// The session joins the group as its only member (refused when the group
/// has another live member), moves each partition's position to the range
/// start and hands out events up to the range end, at most `rate` per
/// second. Commits ([`ReplaySession::commit`], auto-commit, `finish`) move
/// the session group's cursors only; a new group name replays without
/// touching any existing group.
#[derive(Debug)]
pub struct ReplaySession {
    consumer: Consumer,
    bucket: Option<TokenBucket>,
    range: BTreeMap<u32, (u64, u64)>,
    delivered: u64,
}

impl ReplaySession {
    /// Starts replaying `topic` into `group` (see [`Fabric::replay`](crate::Fabric::replay)).
    pub(crate) fn start(
        source: &Arc<dyn PartitionSource>,
        registry: &Arc<Registry>,
        topic: &str,
        group: &str,
        config: ReplayConfig,
    ) -> Result<ReplaySession> {
        if let Some(rate) = config.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(Error::invalid(
                "replay rate",
                format!("{rate} events/s; it must be a positive number"),
            ));
        }
        let clock = config.consumer.clock.clone();
        let mut consumer = Consumer::join(source, registry, group, topic, config.consumer)?;
        let handle = consumer.topic_handle().clone();
        let logs = handle.partitions();
        if consumer.assignment().len() != logs.len() {
            return Err(Error::invalid(
                format!("replay of {topic:?} into group {group:?}"),
                "the group has other live members; a replay session needs every partition \
                 (stop them, or replay into a new group)",
            ));
        }
        let mut range = BTreeMap::new();
        for (p, log) in logs.iter().enumerate() {
            let p = p as u32;
            let (earliest, end) = source.retained_range(topic, p, log);
            let at = |bound: ReplayBound| -> Result<u64> {
                Ok(match bound {
                    ReplayBound::Offset(o) => o.clamp(earliest, end),
                    ReplayBound::Time(t) => offset_for_time(consumer.fabric(), &handle, p, t)?,
                })
            };
            let from = at(config.from)?;
            let to = match config.to {
                Some(bound) => at(bound)?.max(from),
                None => end,
            };
            range.insert(p, (from, to));
        }
        for (&p, &(from, to)) in &range {
            consumer.set_limit(p, to);
            consumer.seek(p, from)?;
        }
        Ok(ReplaySession {
            consumer,
            bucket: config.rate.map(|r| TokenBucket::new(r, clock)),
            range,
            delivered: 0,
        })
    }

    /// The next events of the range (empty once it is done, or when
    /// `timeout` passed waiting for the rate limit or for data).
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<RawEvent>> {
        if self.is_done() {
            return Ok(Vec::new());
        }
        let max = self.consumer.config.max_poll_records;
        let allowed = match self.bucket.as_mut() {
            Some(bucket) => bucket.take_up_to(max, timeout),
            None => max,
        };
        if allowed == 0 {
            return Ok(Vec::new());
        }
        let batch = self.consumer.poll_up_to(timeout, allowed)?;
        if let Some(bucket) = self.bucket.as_mut() {
            bucket.refund(allowed - batch.len());
        }
        self.delivered += batch.len() as u64;
        Ok(batch)
    }

    /// Whether every partition reached the end of its range.
    pub fn is_done(&self) -> bool {
        self.consumer.all_limits_reached()
    }

    /// Events handed out so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// The range per partition: start (inclusive) and end (exclusive) offsets.
    pub fn range(&self) -> &BTreeMap<u32, (u64, u64)> {
        &self.range
    }

    /// Commits what was handed out to the session's group.
    pub fn commit(&mut self) -> Result<()> {
        self.consumer.commit()
    }

    /// Commits and leaves the group.
    pub fn finish(self) -> Result<()> {
        self.consumer.close()
    }
}
