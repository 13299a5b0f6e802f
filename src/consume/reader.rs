//! Reading a topic: decoded envelopes with their partition and offset.
//!
//! Owns where a read starts (earliest, latest, offsets, a time), the
//! per-partition positions (what a consumer group will commit, issue 4) and
//! waiting for new events, in this process (woken by appends) or from another
//! writer process (polling a read-only view). It never writes: positions
//! live in memory only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::envelope::{Envelope, EnvelopeError, EnvelopeRef};
use crate::error::{Error, Result};
use crate::storage::log::{Log, Record};
use crate::storage::warm::{PartitionView, TierRecords};
use crate::topic::{PartitionSource, TopicHandle};

/// Where a [`Reader`] starts in each partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartFrom {
    /// The earliest offset still held.
    Earliest,
    /// The end: only events appended after the reader was created.
    Latest,
    /// The same exact offset in every partition. Like [`StartFrom::Offsets`]
    /// it is never clamped: an offset retention removed from every tier is
    /// [`Error::OffsetExpired`], one past a partition's end is
    /// [`Error::OffsetOutOfRange`] (the end itself is allowed: nothing yet).
    Offset(u64),
    /// An exact offset per partition, checked like [`StartFrom::Offset`];
    /// partitions not named start at their earliest offset.
    Offsets(BTreeMap<u32, u64>),
    /// The first event whose `emitted_at` is at or after this time (the
    /// record timestamp), per partition; the end when none is that recent.
    Time(Timestamp),
}

/// One event read from a topic.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadEvent {
    /// The partition it was read from.
    pub partition: u32,
    /// Its offset within that partition.
    pub offset: u64,
    /// The record timestamp (µs since the epoch; the envelope's `emitted_at`).
    pub timestamp: i64,
    /// The decoded, validated envelope.
    pub envelope: Envelope,
}

/// One record read from a topic, not decoded yet: see [`Reader::next_raw`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    /// The partition it was read from.
    pub partition: u32,
    /// Its offset within that partition.
    pub offset: u64,
    /// The record timestamp (µs since the epoch; the envelope's `emitted_at`).
    pub timestamp: i64,
    /// The encoded envelope (zero-copy view of the segment).
    pub value: bytes::Bytes,
}

impl RawEvent {
    /// Decodes the envelope in place, validated, payload left encoded.
    pub fn envelope(&self) -> std::result::Result<EnvelopeRef<'_>, EnvelopeError> {
        EnvelopeRef::decode(&self.value)
    }
}

/// One partition's read position. Tier-aware: it reads from the warm tier
/// (archive segments) or the hot log, whichever holds its next offset, and
/// moves from warm to hot as it goes.
#[derive(Debug)]
struct Cursor {
    partition: u32,
    log: Arc<Log>,
    tiers: PartitionView,
    next: u64,
    records: Option<TierRecords>,
}

impl Cursor {
    fn new(tiers: PartitionView, from: &StartFrom) -> Result<Cursor> {
        let (partition, log) = (tiers.partition, tiers.log.clone());
        let (earliest, end) = (tiers.earliest()?, log.next_offset());
        let exact = |o: u64| {
            if o < earliest {
                Err(Error::OffsetExpired {
                    topic: tiers.topic.clone(),
                    partition,
                    requested: o,
                    earliest,
                })
            } else if o > end {
                Err(Error::OffsetOutOfRange {
                    offset: o,
                    earliest,
                    next: end,
                })
            } else {
                Ok(o)
            }
        };
        let next = match from {
            StartFrom::Earliest => earliest,
            StartFrom::Latest => end,
            StartFrom::Offset(o) => exact(*o)?,
            StartFrom::Offsets(map) => match map.get(&partition) {
                Some(&o) => exact(o)?,
                None => earliest,
            },
            StartFrom::Time(t) => tiers.offset_for_time(t.as_microsecond())?.unwrap_or(end),
        };
        Ok(Cursor {
            partition,
            log,
            tiers,
            next,
            records: None,
        })
    }

    /// The next record in whichever tier holds it (`None`: caught up).
    fn next_record(&mut self) -> Option<Result<Record>> {
        let (mut warm_ends, mut vanished) = (0, 0);
        loop {
            if self.records.is_none() {
                match self.tiers.open(self.next) {
                    Ok(r) => self.records = Some(r),
                    Err(e) => return Some(Err(e)),
                }
            }
            match self.records.as_mut()? {
                TierRecords::Hot(r) => return r.next(),
                TierRecords::Warm(w) => match w.next() {
                    // Retention removed the archive under this reader: look
                    // the offset up again (normally `OffsetExpired`).
                    Some(Err(Error::Io { source, .. }))
                        if source.kind() == std::io::ErrorKind::NotFound && vanished == 0 =>
                    {
                        vanished += 1;
                        self.records = None;
                    }
                    Some(Ok(record)) if record.offset != self.next => {
                        self.records = None;
                        return Some(Err(Error::OffsetExpired {
                            topic: self.tiers.topic.clone(),
                            partition: self.partition,
                            requested: self.next,
                            earliest: record.offset,
                        }));
                    }
                    Some(item) => return Some(item),
                    // The end of the warm tier (as it was): go on in the hot log.
                    None if warm_ends == 0 => {
                        warm_ends += 1;
                        self.records = None;
                    }
                    None => {
                        self.records = None;
                        return Some(Err(Error::invalid(
                            format!(
                                "warm read of topic {:?} partition {} at offset {}",
                                self.tiers.topic, self.partition, self.next
                            ),
                            "the warm tier claims the offset but yields no record",
                        )));
                    }
                },
            }
        }
    }
}

/// Reads a topic's partitions, yielding [`ReadEvent`]s.
///
/// As an [`Iterator`] it drains partition 0 up to its current end, then
/// partition 1, and so on, and returns `None` once every partition is caught
/// up; iterating again later continues where it stopped (call
/// [`Reader::wait`] in between to block until there is more). Every event is
/// decoded and validated; a record that is not a valid envelope is an error.
#[derive(Debug)]
pub struct Reader {
    source: Arc<dyn PartitionSource>,
    topic: Arc<TopicHandle>,
    from: StartFrom,
    cursors: Vec<Cursor>,
    /// Only these partitions (all when `None`).
    only: Option<Vec<u32>>,
    current: usize,
    /// Partitions of the topic already given a cursor (or skipped).
    seen: usize,
    last_topic_refresh: Instant,
    /// Registered with the fabric when made by [`Fabric::reader`].
    _open: Option<crate::topic::OpenHandle>,
    /// Stop each partition at its log's durable offset.
    durable_only: bool,
}

impl Reader {
    pub(crate) fn new(
        source: Arc<dyn PartitionSource>,
        topic: Arc<TopicHandle>,
        from: StartFrom,
    ) -> Result<Reader> {
        topic.check_live()?;
        let mut reader = Reader {
            source,
            topic,
            from,
            cursors: Vec::new(),
            only: None,
            current: 0,
            seen: 0,
            last_topic_refresh: Instant::now(),
            _open: None,
            durable_only: false,
        };
        reader.add_new_partitions()?;
        Ok(reader)
    }

    /// Yields only records below each partition log's durable offset
    /// (warm records always are); the rest wait for the log's next sync.
    pub(crate) fn durable_only(mut self, on: bool) -> Reader {
        self.durable_only = on;
        self
    }

    /// Whether some partition holds records not durable yet (which a
    /// durable-only reader is waiting for: no append signals their sync).
    pub(crate) fn awaits_sync(&self) -> bool {
        self.durable_only
            && self
                .cursors
                .iter()
                .any(|c| c.log.durable_offset() < c.log.next_offset())
    }

    /// Counts this reader among the handles that keep its fabric open.
    /// A reader of `topic` from `from`, registered as keeping the data
    /// directory open while it lives.
    pub(crate) fn open(
        source: &Arc<dyn PartitionSource>,
        topic: &str,
        from: StartFrom,
    ) -> Result<Reader> {
        let reader = Reader::new(source.clone(), source.handle(topic)?, from)?;
        Ok(reader.tracked(source.track(format!("a Reader of topic {topic:?}"))))
    }

    pub(crate) fn tracked(mut self, open: crate::topic::OpenHandle) -> Reader {
        self._open = Some(open);
        self
    }

    /// Restricts the reader to `partitions` (each must exist).
    pub fn with_partitions(mut self, partitions: &[u32]) -> Result<Reader> {
        let count = self.topic.partitions().len() as u32;
        if let Some(&bad) = partitions.iter().find(|&&p| p >= count) {
            return Err(Error::UnknownPartition {
                topic: self.topic.name.clone(),
                partition: bad,
                partitions: count,
            });
        }
        self.cursors.retain(|c| partitions.contains(&c.partition));
        self.only = Some(partitions.to_vec());
        self.current = 0;
        Ok(self)
    }

    /// The topic being read.
    pub fn topic(&self) -> &str {
        &self.topic.name
    }

    /// The next offset to read, per partition (what a consumer group commits).
    pub fn positions(&self) -> BTreeMap<u32, u64> {
        self.cursors.iter().map(|c| (c.partition, c.next)).collect()
    }

    /// Events not yet read, summed over the reader's partitions (the lag).
    pub fn lag(&self) -> u64 {
        self.cursors
            .iter()
            .map(|c| c.log.next_offset().saturating_sub(c.next))
            .sum()
    }

    /// Starts cursors for partitions the topic gained since the last look
    /// (new partitions are read from their start).
    fn add_new_partitions(&mut self) -> Result<()> {
        let logs = self.topic.partitions();
        let first_start = self.seen == 0;
        for (p, log) in logs.iter().enumerate().skip(self.seen) {
            let p = p as u32;
            if self.only.as_ref().is_some_and(|only| !only.contains(&p)) {
                continue;
            }
            let from = if first_start {
                self.from.clone()
            } else {
                StartFrom::Earliest
            };
            let tiers = self.source.partition_view(&self.topic.name, p)?;
            debug_assert!(Arc::ptr_eq(&tiers.log, log));
            self.cursors.push(Cursor::new(tiers, &from)?);
        }
        self.seen = logs.len();
        Ok(())
    }

    fn decode(&self, raw: &RawEvent) -> Result<ReadEvent> {
        let envelope = Envelope::decode(&raw.value).map_err(|e| {
            let reason = if crate::envelope::is_dead_letter(&raw.value) {
                "it is a dead letter (an envelope wrapped with DLQ metadata): read it with \
                 `fabric dlq list|show` or eventfabric::DeadLetters"
                    .to_string()
            } else {
                format!("{e}; it was not written by an eventfabric producer")
            };
            Error::NotAnEnvelope {
                topic: self.topic.name.clone(),
                partition: raw.partition,
                offset: raw.offset,
                reason,
            }
        })?;
        Ok(ReadEvent {
            partition: raw.partition,
            offset: raw.offset,
            timestamp: raw.timestamp,
            envelope,
        })
    }

    /// Blocks until at least one partition has an unread event or `timeout`
    /// passes; returns whether there is something to read. In the writer's
    /// process this is woken by appends to any partition of the topic (no
    /// polling); on a read-only fabric, where the writer is another process,
    /// it polls the files (every 10 ms), picking up new partitions as well.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool> {
        let deadline = crate::clock::deadline(Instant::now(), timeout);
        loop {
            // Taken before looking at the logs: an append after the look
            // changes it, so the wait below cannot miss that append.
            let generation = self.topic.append_signal.generation();
            if self.source.is_read_only() {
                if self.last_topic_refresh.elapsed() > Duration::from_millis(500) {
                    self.source.refresh()?;
                    self.last_topic_refresh = Instant::now();
                } else {
                    for c in &self.cursors {
                        c.log.refresh()?;
                    }
                }
                // A refresh replaces the view of the active segment; iterators
                // made before it would stay at the old end.
                for c in &mut self.cursors {
                    c.records = None;
                }
            }
            self.topic.check_live()?;
            self.add_new_partitions()?;
            if self.lag() > 0 {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            if self.source.is_read_only() {
                std::thread::sleep((deadline - now).min(Duration::from_millis(10)));
            } else {
                self.topic.append_signal.wait_past(generation, deadline);
            }
        }
    }
}

impl Reader {
    /// The next record without decoding it (`None`: every partition is
    /// caught up for now). The fast path for consumers that look at
    /// envelope fields through [`RawEvent::envelope`].
    pub fn next_raw(&mut self) -> Option<Result<RawEvent>> {
        while let Some(cursor) = self.cursors.get_mut(self.current) {
            if self.durable_only && cursor.next >= cursor.log.durable_offset() {
                self.current += 1;
                continue;
            }
            let item = cursor.next_record();
            match item {
                Some(Ok(record)) => {
                    cursor.next = record.offset + 1;
                    return Some(Ok(RawEvent {
                        partition: cursor.partition,
                        offset: record.offset,
                        timestamp: record.timestamp,
                        value: record.value,
                    }));
                }
                Some(Err(e)) => {
                    cursor.records = None;
                    return Some(Err(e));
                }
                None => self.current += 1,
            }
        }
        self.current = 0;
        None
    }
}

impl Iterator for Reader {
    type Item = Result<ReadEvent>;

    fn next(&mut self) -> Option<Result<ReadEvent>> {
        match self.next_raw()? {
            Ok(raw) => Some(self.decode(&raw)),
            Err(e) => Some(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Fabric;
    use crate::{FabricConfig, FsyncPolicy, TopicConfig};

    #[test]
    fn one_offset_for_all_partitions_and_offsets_per_partition_check_the_range_alike() {
        let dir = tempfile::tempdir().unwrap();
        let fabric = Fabric::open(dir.path(), FabricConfig::with_fsync(FsyncPolicy::Os)).unwrap();
        fabric
            .create_topic("t.v1", TopicConfig::with_partitions(2))
            .unwrap();
        let log = fabric.partition("t.v1", 0).unwrap();
        for i in 0..10u8 {
            log.append(&[i]).unwrap();
        }
        log.roll().unwrap();
        log.append(b"x").unwrap();
        log.delete_segments_before(10).unwrap();
        // Partition 0 holds 10..11, partition 1 nothing (0..0).
        let one = |o| fabric.reader("t.v1", StartFrom::Offset(o)).map(|_| ());
        let each = |o| {
            fabric
                .reader("t.v1", StartFrom::Offsets(BTreeMap::from([(0, o), (1, 0)])))
                .map(|_| ())
        };
        for reader in [&one as &dyn Fn(u64) -> Result<()>, &each] {
            assert!(matches!(reader(3), Err(Error::OffsetExpired { .. })));
            assert!(matches!(reader(12), Err(Error::OffsetOutOfRange { .. })));
        }
        assert!(each(11).is_ok(), "the end itself is a valid start");
        // One offset for all: partition 1 ends at 0, so 10 is past its end.
        assert!(matches!(one(10), Err(Error::OffsetOutOfRange { .. })));
        let p0 = fabric
            .reader("t.v1", StartFrom::Offset(10))
            .and_then(|r| r.with_partitions(&[0]));
        assert!(p0.is_err(), "checked for every partition before narrowing");
    }
}
