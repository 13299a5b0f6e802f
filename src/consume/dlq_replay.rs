//! Replaying dead letters into their source topic, each at most once.
//!
//! Owns the replay ledger: a state log `<data>/dlq-replay/<topic>.dlq/replayed`
//! (record layout in `docs/FORMAT.md`, "DLQ replay ledger") recording, per
//! dead letter, the intent to replay it (synced before publishing) and its
//! completion. A crash between the two leaves an intent whose outcome is
//! decided on the next replay by looking for the event id in the target
//! partition from the offset the intent recorded. It must never publish a
//! letter whose intent is not durable, and never replay an entry (or a
//! duplicate letter of the same source message) that the ledger marks done.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::consume::dlq::{DeadLetters, DlqEntry, DlqFilter};
use crate::consume::reader::Reader;
use crate::consume::reader::StartFrom;
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::produce::ProducerFactory;
use crate::produce::partitioner::partition_for_key;
use crate::produce::producer::Published;
use crate::storage::statelog::StateLog;
use crate::topic::PartitionSource;
use std::sync::Arc;

const LEDGER_VERSION: u8 = 1;
const KIND_INTENT: u8 = 1;
const KIND_DONE: u8 = 2;
/// Bytes of a `done` record: version, kind, three (partition, offset) pairs.
const DONE_LEN: usize = 2 + 3 * 12;
/// Bytes of an `intent` record: version, kind, three pairs, an event id.
const INTENT_LEN: usize = 2 + 3 * 12 + 16;
/// Per-record overhead of the state-log container.
const RECORD_OVERHEAD: usize = crate::storage::statelog::RECORD_HEADER_LEN;
/// A ledger smaller than this is never compacted.
const MIN_COMPACT_BYTES: u64 = 64 << 10;
/// Directory (under the data directory) of the replay ledgers.
pub(crate) const REPLAY_DIR: &str = "dlq-replay";
const LEDGER_NAME: &str = "replayed";

/// One dead letter put back into its source topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// Partition of the `.dlq` topic.
    pub dlq_partition: u32,
    /// Offset in the `.dlq` topic.
    pub dlq_offset: u64,
    /// The original event id.
    pub event_id: Uuid,
    /// Where the event landed in the source topic.
    pub published: Published,
}

/// What [`DeadLetters::replay`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Entries published, in order.
    pub replayed: Vec<Replayed>,
    /// Entries passing the filter that the ledger marks replayed already.
    pub already_replayed: u64,
    /// Entries that could not be replayed (not a valid envelope), with why.
    pub unreplayable: Vec<(u32, u64, String)>,
    /// Earlier interrupted replays found to have published after all.
    pub resolved_in_doubt: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Intent {
    dlq: (u32, u64),
    source: (u32, u64),
    target_partition: u32,
    target_from: u64,
    event_id: Uuid,
}

/// A completed replay: the letter's source position and where it landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Done {
    source: (u32, u64),
    target: (u32, u64),
}

#[derive(Debug)]
struct Ledger {
    log: StateLog,
    /// Completed replays by `.dlq` position.
    done: BTreeMap<(u32, u64), Done>,
    /// Source positions replayed (a duplicate letter of one is skipped).
    done_source: HashMap<(u32, u64), (u32, u64)>,
    in_doubt: BTreeMap<(u32, u64), Intent>,
}

fn encode_intent(i: &Intent) -> Vec<u8> {
    let mut out = vec![LEDGER_VERSION, KIND_INTENT];
    out.extend_from_slice(&i.dlq.0.to_le_bytes());
    out.extend_from_slice(&i.dlq.1.to_le_bytes());
    out.extend_from_slice(&i.source.0.to_le_bytes());
    out.extend_from_slice(&i.source.1.to_le_bytes());
    out.extend_from_slice(&i.target_partition.to_le_bytes());
    out.extend_from_slice(&i.target_from.to_le_bytes());
    out.extend_from_slice(i.event_id.as_bytes());
    out
}

fn encode_done(dlq: (u32, u64), source: (u32, u64), target: (u32, u64)) -> Vec<u8> {
    let mut out = vec![LEDGER_VERSION, KIND_DONE];
    for (p, o) in [dlq, source, target] {
        out.extend_from_slice(&p.to_le_bytes());
        out.extend_from_slice(&o.to_le_bytes());
    }
    out
}

struct Bytes<'a>(&'a [u8]);
impl Bytes<'_> {
    fn u32(&mut self) -> Option<u32> {
        let (h, t) = self.0.split_first_chunk::<4>()?;
        self.0 = t;
        Some(u32::from_le_bytes(*h))
    }
    fn u64(&mut self) -> Option<u64> {
        let (h, t) = self.0.split_first_chunk::<8>()?;
        self.0 = t;
        Some(u64::from_le_bytes(*h))
    }
    fn pair(&mut self) -> Option<(u32, u64)> {
        Some((self.u32()?, self.u64()?))
    }
}

impl Ledger {
    fn open(topics: &Arc<dyn PartitionSource>, dlq_topic: &str) -> Result<Ledger> {
        let dir = topics.path().join(REPLAY_DIR).join(dlq_topic);
        let opened = StateLog::open(&topics.state_io(), &dir, LEDGER_NAME)?;
        let path = opened.log.path().to_path_buf();
        let mut ledger = Ledger {
            log: opened.log,
            done: BTreeMap::new(),
            done_source: HashMap::new(),
            in_doubt: BTreeMap::new(),
        };
        for (i, record) in opened.records.iter().enumerate() {
            let bad = || {
                Error::corrupted(
                    &path,
                    0,
                    format!(
                        "replay ledger record {i} (counting from 0 after the file header) is \
                         malformed: {} bytes, version {}, kind {} (an intent is {INTENT_LEN} \
                         bytes, a done record {DONE_LEN}, both version {LEDGER_VERSION})",
                        record.len(),
                        record.first().copied().unwrap_or(0),
                        record.get(1).copied().unwrap_or(0),
                    ),
                )
            };
            let (&[version, kind], body) = record.split_first_chunk::<2>().ok_or_else(bad)?;
            if version != LEDGER_VERSION {
                return Err(bad());
            }
            let mut b = Bytes(body);
            match kind {
                KIND_INTENT => {
                    let (dlq, source, target) = (
                        b.pair().ok_or_else(bad)?,
                        b.pair().ok_or_else(bad)?,
                        b.pair(),
                    );
                    let (target_partition, target_from) = target.ok_or_else(bad)?;
                    let id: [u8; 16] = b.0.try_into().map_err(|_| bad())?;
                    ledger.in_doubt.insert(
                        dlq,
                        Intent {
                            dlq,
                            source,
                            target_partition,
                            target_from,
                            event_id: Uuid::from_bytes(id),
                        },
                    );
                }
                KIND_DONE => {
                    let dlq = b.pair().ok_or_else(bad)?;
                    let source = b.pair().ok_or_else(bad)?;
                    let target = b.pair().ok_or_else(bad)?;
                    if !b.0.is_empty() {
                        return Err(bad());
                    }
                    ledger.mark_done(dlq, source, target);
                }
                _ => return Err(bad()),
            }
        }
        Ok(ledger)
    }

    fn mark_done(&mut self, dlq: (u32, u64), source: (u32, u64), target: (u32, u64)) {
        self.in_doubt.remove(&dlq);
        self.done.insert(dlq, Done { source, target });
        self.done_source.insert(source, target);
    }

    /// Bytes of the ledger rewritten as its live state.
    fn snapshot_len(&self) -> u64 {
        (crate::storage::statelog::FILE_HEADER_LEN
            + self.done.len() * (RECORD_OVERHEAD + DONE_LEN)
            + self.in_doubt.len() * (RECORD_OVERHEAD + INTENT_LEN)) as u64
    }

    /// Compacts when the ledger has grown past twice its live state (and
    /// past [`MIN_COMPACT_BYTES`]); returns whether it did.
    fn compact_if_due(&mut self) -> Result<bool> {
        if self.log.len() <= MIN_COMPACT_BYTES.max(2 * self.snapshot_len()) {
            return Ok(false);
        }
        self.compact()?;
        Ok(true)
    }

    /// Rewrites the ledger as its live state: one `done` record per
    /// replayed letter and the intents still in doubt; the intents of
    /// completed replays and those found never published are dropped.
    /// The state log's compaction (temporary file, fsync, rename, fsync of
    /// the directory) leaves the old ledger or the new one after a crash,
    /// and both say the same.
    fn compact(&mut self) -> Result<()> {
        let mut records: Vec<Vec<u8>> = self
            .done
            .iter()
            .map(|(&dlq, d)| encode_done(dlq, d.source, d.target))
            .collect();
        records.extend(self.in_doubt.values().map(encode_intent));
        let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        self.log.compact(&slices)
    }

    /// Decides interrupted replays: published (the event id is in the target
    /// partition at or after the recorded end) or not (forgotten: replayed
    /// again). An intent whose target range was deleted by retention counts
    /// as published: never twice wins over at least once here.
    fn resolve_in_doubt(
        &mut self,
        topics: &Arc<dyn PartitionSource>,
        source_topic: &str,
    ) -> Result<u64> {
        let mut resolved = 0;
        let intents: Vec<Intent> = self.in_doubt.values().copied().collect();
        for intent in intents {
            let log = topics.partition(source_topic, intent.target_partition)?;
            // Warm and hot: a range retention moved to warm is still scanned.
            let (earliest, _) =
                topics.retained_range_checked(source_topic, intent.target_partition, &log)?;
            let found = if intent.target_from < earliest {
                Some(u64::MAX)
            } else {
                let from = BTreeMap::from([(intent.target_partition, intent.target_from)]);
                let mut reader = Reader::open(topics, source_topic, StartFrom::Offsets(from))?
                    .with_partitions(&[intent.target_partition])?;
                let mut found = None;
                while let Some(raw) = reader.next_raw() {
                    let raw = raw?;
                    if raw.envelope().is_ok_and(|e| e.event_id == intent.event_id) {
                        found = Some(raw.offset);
                        break;
                    }
                }
                found
            };
            match found {
                Some(offset) => {
                    let done =
                        encode_done(intent.dlq, intent.source, (intent.target_partition, offset));
                    self.log.append(&[&done], true)?;
                    self.mark_done(intent.dlq, intent.source, (intent.target_partition, offset));
                    resolved += 1;
                }
                None => {
                    self.in_doubt.remove(&intent.dlq);
                }
            }
        }
        Ok(resolved)
    }
}

impl DeadLetters {
    /// Publishes the entries passing `filter` back into the source topic,
    /// in `.dlq` partition/offset order, at most `rate_per_sec` per second,
    /// skipping entries (and duplicate letters of one source message) that
    /// an earlier replay completed. Each entry's intent is synced to the
    /// ledger before it is published, and the publish is flushed before it
    /// is marked done, so a crash replays an entry at most once more only
    /// if its publish never reached the topic. The DLQ is streamed, not
    /// loaded: a record that is not a valid dead letter stops the replay
    /// with an error naming it, after the letters before it were replayed
    /// and recorded (running it again skips them). Needs a writable fabric;
    /// a concurrent replay of the same DLQ gets [`Error::Locked`].
    pub fn replay(&self, filter: &DlqFilter, rate_per_sec: Option<f64>) -> Result<ReplayReport> {
        if self.topics.is_read_only() {
            return Err(Error::invalid(
                "dlq replay",
                "needs the data directory as writer (it publishes into the source topic)",
            ));
        }
        if let Some(rate) = rate_per_sec
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(Error::invalid(
                "replay rate",
                format!("must be a positive number per second, got {rate}"),
            ));
        }
        let mut ledger = Ledger::open(&self.topics, &self.dlq)?;
        let mut report = ReplayReport {
            resolved_in_doubt: ledger.resolve_in_doubt(&self.topics, &self.source)?,
            ..ReplayReport::default()
        };
        let started = Instant::now();
        for entry in self.iter(filter)? {
            let entry = entry?;
            let dlq = (entry.dlq_partition, entry.dlq_offset);
            let source = (entry.letter.partition, entry.letter.offset);
            if entry.letter.topic != self.source {
                report.unreplayable.push((
                    dlq.0,
                    dlq.1,
                    format!("it came from topic {:?}", entry.letter.topic),
                ));
                continue;
            }
            if ledger.done.contains_key(&dlq) || ledger.done_source.contains_key(&source) {
                report.already_replayed += 1;
                continue;
            }
            let envelope = match entry.envelope().and_then(|e| e.to_envelope()) {
                Ok(e) => e,
                Err(e) => {
                    report
                        .unreplayable
                        .push((dlq.0, dlq.1, format!("not a valid envelope: {e}")));
                    continue;
                }
            };
            if let Some(rate) = rate_per_sec {
                let due = started + Duration::from_secs_f64(report.replayed.len() as f64 / rate);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            let published = self.replay_one(&mut ledger, &entry, &envelope)?;
            report.replayed.push(Replayed {
                dlq_partition: dlq.0,
                dlq_offset: dlq.1,
                event_id: envelope.event_id,
                published,
            });
        }
        ledger.log.sync()?;
        // Compaction only saves space: a failure leaves the old ledger or the
        // new one, both whole, and must not turn a finished replay into an
        // error (its report would be lost); the next run tries again.
        if let Err(e) = ledger.compact_if_due() {
            log::warn!(
                "dlq replay of {:?}: ledger compaction failed: {e}",
                self.dlq
            );
        }
        Ok(report)
    }

    fn replay_one(
        &self,
        ledger: &mut Ledger,
        entry: &DlqEntry,
        envelope: &Envelope,
    ) -> Result<Published> {
        let dlq = (entry.dlq_partition, entry.dlq_offset);
        let source = (entry.letter.partition, entry.letter.offset);
        let partitions = self.topics.topic_info(&self.source)?.config.partitions;
        let target_partition = partition_for_key(&envelope.partition_key, partitions);
        let target_from = self
            .topics
            .partition(&self.source, target_partition)?
            .next_offset();
        let intent = Intent {
            dlq,
            source,
            target_partition,
            target_from,
            event_id: envelope.event_id,
        };
        ledger.log.append(&[&encode_intent(&intent)], true)?;
        let published = republish(&*self.producers, &self.source, envelope)?;
        self.topics
            .partition(&self.source, published.partition)?
            .flush()?;
        let done = encode_done(dlq, source, (published.partition, published.offset));
        ledger.log.append(&[&done], false)?;
        ledger.mark_done(dlq, source, (published.partition, published.offset));
        Ok(published)
    }
}

/// Publishes a dead letter's original envelope (event id and all) into
/// `topic`: the one place a deliberate DLQ replay publishes, bypassing the
/// producer dedup cache (the original event id was appended before, and
/// replaying it is the point).
fn republish(
    producers: &dyn ProducerFactory,
    topic: &str,
    envelope: &Envelope,
) -> Result<Published> {
    let mut producer = producers.producer(topic, "eventfabric-dlq-replay")?;
    // A deliberate replay of an event the topic already holds: the dedup
    // cache would answer with the original position and append nothing.
    // The replay ledger, not the dedup window, guards against doing it twice.
    producer.publish_replay(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Fabric;

    #[test]
    fn ledger_records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let fabric = Fabric::open(dir.path(), crate::FabricConfig::default()).unwrap();
        let intent = Intent {
            dlq: (1, 2),
            source: (3, 4),
            target_partition: 5,
            target_from: 6,
            event_id: Uuid::from_u128(7),
        };
        {
            let mut ledger = Ledger::open(&fabric.source(), "t.dlq").unwrap();
            ledger
                .log
                .append(
                    &[
                        &encode_intent(&intent),
                        &encode_done((9, 9), (8, 8), (7, 7)),
                    ],
                    true,
                )
                .unwrap();
        }
        let ledger = Ledger::open(&fabric.source(), "t.dlq").unwrap();
        assert_eq!(ledger.in_doubt.get(&(1, 2)), Some(&intent));
        assert!(ledger.done.contains_key(&(9, 9)));
        assert!(ledger.done_source.contains_key(&(8, 8)));
    }

    /// A `done` record is exactly its 38 bytes: anything after the target
    /// (a newer layout, a writer bug) is refused, not ignored.
    #[test]
    fn a_done_record_with_bytes_left_over_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fabric = Fabric::open(dir.path(), crate::FabricConfig::default()).unwrap();
        {
            let mut ledger = Ledger::open(&fabric.source(), "t.dlq").unwrap();
            let mut done = encode_done((1, 1), (2, 2), (3, 3));
            assert_eq!(done.len(), 38);
            done.extend_from_slice(&[0, 0, 0, 0]);
            ledger.log.append(&[&done], true).unwrap();
        }
        let err = Ledger::open(&fabric.source(), "t.dlq").unwrap_err();
        assert!(matches!(err, Error::Corrupted { .. }), "{err}");
        assert!(err.to_string().contains("record 0"), "{err}");
    }

    /// A ledger of many replayed letters and some stale intents, compacted
    /// with a crash injected after every file operation of the compaction:
    /// each reopen finds exactly the state before it, and the compacted
    /// ledger is smaller than the log it replaced.
    #[test]
    fn a_crash_at_any_step_of_ledger_compaction_keeps_every_replayed_letter() {
        let dir = tempfile::tempdir().unwrap();
        let fabric = Fabric::open(dir.path(), crate::FabricConfig::default()).unwrap();
        let state = |l: &Ledger| (l.done.clone(), l.in_doubt.clone());
        let before = {
            let mut ledger = Ledger::open(&fabric.source(), "t.dlq").unwrap();
            for i in 0..200u64 {
                let intent = Intent {
                    dlq: (0, i),
                    source: (1, i),
                    target_partition: 0,
                    target_from: i,
                    event_id: Uuid::from_u128(i.into()),
                };
                ledger
                    .log
                    .append(&[&encode_intent(&intent)], false)
                    .unwrap();
                if i % 10 == 9 {
                    // Left in doubt (a crash between intent and done).
                    ledger.in_doubt.insert(intent.dlq, intent);
                    continue;
                }
                ledger
                    .log
                    .append(&[&encode_done((0, i), (1, i), (0, 1000 + i))], false)
                    .unwrap();
                ledger.mark_done((0, i), (1, i), (0, 1000 + i));
            }
            ledger.log.sync().unwrap();
            state(&ledger)
        };
        let full = Ledger::open(&fabric.source(), "t.dlq").unwrap().log.len();
        let mut crash_at = 1;
        loop {
            let plan =
                std::sync::Arc::new(crate::storage::io::FaultPlan::new().crash_after(crash_at));
            fabric.set_state_fault_injector(Some(plan));
            let compacted = Ledger::open(&fabric.source(), "t.dlq").and_then(|mut l| l.compact());
            fabric.set_state_fault_injector(None);
            let ledger = Ledger::open(&fabric.source(), "t.dlq").unwrap();
            assert_eq!(state(&ledger), before, "crash after {crash_at} operations");
            if compacted.is_ok() {
                assert!(
                    ledger.log.len() < full / 2,
                    "{} of {full}",
                    ledger.log.len()
                );
                break;
            }
            assert!(crash_at < 50, "compaction never completed");
            crash_at += 1;
        }
        assert!(
            crash_at > 5,
            "only {crash_at} steps: the crash points were not reached"
        );
    }

    /// A replay interrupted between its synced intent and its `done`
    /// record: decided by whether the publish reached the topic.
    #[test]
    fn an_interrupted_replay_is_completed_or_redone_never_doubled() {
        for published_before_crash in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let fabric = Fabric::open(dir.path(), crate::FabricConfig::default()).unwrap();
            fabric
                .create_topic("t.v1", crate::TopicConfig::with_partitions(2))
                .unwrap();
            let mut p = fabric.producer("t.v1", "test").unwrap();
            let (event, _) = p
                .send(crate::Draft::new(
                    "billing.invoice.issued",
                    Some("x"),
                    serde_json::json!(1),
                ))
                .unwrap();
            let queue = fabric
                .queue("q", "t.v1", crate::QueueConfig::default())
                .unwrap();
            let m = queue.try_fetch(1).unwrap().remove(0);
            queue
                .nack(
                    &m,
                    crate::Failure::fatal(crate::DlqReason::HandlerError, "x"),
                )
                .unwrap();
            let letters = fabric.dead_letters("t.v1").unwrap();
            let entry = letters.list(&DlqFilter::default()).unwrap().remove(0);
            let envelope = entry.envelope().unwrap().to_envelope().unwrap();
            // The first half of replay_one, then a crash.
            {
                let mut ledger = Ledger::open(&fabric.source(), letters.topic()).unwrap();
                let target_partition = partition_for_key(&envelope.partition_key, 2);
                let intent = Intent {
                    dlq: (entry.dlq_partition, entry.dlq_offset),
                    source: (entry.letter.partition, entry.letter.offset),
                    target_partition,
                    target_from: fabric
                        .partition("t.v1", target_partition)
                        .unwrap()
                        .next_offset(),
                    event_id: event.event_id,
                };
                ledger.log.append(&[&encode_intent(&intent)], true).unwrap();
                if published_before_crash {
                    republish(&fabric, "t.v1", &envelope).unwrap();
                }
            }
            let report = letters.replay(&DlqFilter::default(), None).unwrap();
            let copies = fabric
                .reader("t.v1", crate::StartFrom::Earliest)
                .unwrap()
                .filter(|e| e.as_ref().unwrap().envelope.event_id == event.event_id)
                .count();
            assert_eq!(copies, 2, "the original and exactly one replay");
            if published_before_crash {
                assert_eq!(report.resolved_in_doubt, 1);
                assert!(report.replayed.is_empty());
            } else {
                assert_eq!(report.resolved_in_doubt, 0);
                assert_eq!(report.replayed.len(), 1);
            }
            let again = letters.replay(&DlqFilter::default(), None).unwrap();
            assert!(again.replayed.is_empty());
        }
    }
}
