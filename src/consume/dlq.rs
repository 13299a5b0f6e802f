//! The dead-letter queue: where a message that cannot be processed is parked,
//! with the evidence needed to fix and replay it.
//!
//! Owns the dead-letter record layout (`docs/FORMAT.md`, "Dead-letter
//! records"), writing letters to `<topic>.dlq` (a real topic, created on
//! demand with the source's partition count), reading and filtering them
//! ([`DeadLetters`]) and the DLQ-rate alert ([`DlqRateAlert`]). A letter
//! carries the ORIGINAL envelope bytes untouched; this module must never
//! re-encode, trim or otherwise alter them, and never acks anything on the
//! source (its callers do that once the letter is durable). Replay lives in
//! [`crate::consume::dlq_replay`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::clock::now_micros;
use crate::consume::reader::{Reader, StartFrom};
use crate::envelope::{EnvelopeError, EnvelopeRef};
use crate::error::{Error, Result};
use crate::produce::ProducerFactory;
use crate::storage::le;
use crate::topic::PartitionSource;
use crate::topic::TopicConfig;

/// Suffix of a dead-letter topic's name.
pub const DLQ_SUFFIX: &str = ".dlq";
/// Magic at the start of every dead-letter record: `EFDL`.
pub(crate) use crate::envelope::{DLQ_MAGIC, is_dead_letter};
/// Version of the dead-letter record layout.
pub(crate) const DLQ_VERSION: u8 = 1;

// Byte offsets of the fixed header, chained so the layout reads top to bottom.
const MAGIC_AT: usize = 0;
const VERSION_AT: usize = MAGIC_AT + 4;
const REASON_AT: usize = VERSION_AT + 1;
const RESERVED_AT: usize = REASON_AT + 1;
const CRC_AT: usize = RESERVED_AT + 2;
const ATTEMPTS_AT: usize = CRC_AT + 4;
const FIRST_FAILURE_AT: usize = ATTEMPTS_AT + 4;
const LAST_FAILURE_AT: usize = FIRST_FAILURE_AT + 8;
const DEAD_AT: usize = LAST_FAILURE_AT + 8;
const PARTITION_AT: usize = DEAD_AT + 8;
const OFFSET_AT: usize = PARTITION_AT + 4;
const TIMESTAMP_AT: usize = OFFSET_AT + 8;
const SHA_AT: usize = TIMESTAMP_AT + 8;
const TOPIC_LEN_AT: usize = SHA_AT + 32;
const QUEUE_LEN_AT: usize = TOPIC_LEN_AT + 2;
const ERROR_LEN_AT: usize = QUEUE_LEN_AT + 2;
const ENVELOPE_LEN_AT: usize = ERROR_LEN_AT + 4;
/// Length of the fixed header; the variable parts follow.
pub(crate) const DLQ_HEADER_LEN: usize = ENVELOPE_LEN_AT + 4;

/// Why a message was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DlqReason {
    /// The handler failed and said the failure is not worth retrying.
    HandlerError,
    /// Every allowed delivery failed (or timed out).
    MaxAttemptsExceeded,
    /// The event breaks its schema contract.
    SchemaViolation,
    /// `emitted_at + ttl` passed before it was delivered.
    Expired,
    /// The record is not a decodable envelope.
    DeserializationFailure,
    /// A policy refused it (authorisation, tenant state, ...).
    RejectedByPolicy,
}

impl DlqReason {
    /// Every reason, in code order.
    pub const ALL: [DlqReason; 6] = [
        DlqReason::HandlerError,
        DlqReason::MaxAttemptsExceeded,
        DlqReason::SchemaViolation,
        DlqReason::Expired,
        DlqReason::DeserializationFailure,
        DlqReason::RejectedByPolicy,
    ];

    /// The one-byte code stored in a dead-letter record.
    pub fn code(self) -> u8 {
        match self {
            DlqReason::HandlerError => 1,
            DlqReason::MaxAttemptsExceeded => 2,
            DlqReason::SchemaViolation => 3,
            DlqReason::Expired => 4,
            DlqReason::DeserializationFailure => 5,
            DlqReason::RejectedByPolicy => 6,
        }
    }

    /// The reason for a stored code.
    pub fn from_code(code: u8) -> Option<DlqReason> {
        DlqReason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The snake_case name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            DlqReason::HandlerError => "handler_error",
            DlqReason::MaxAttemptsExceeded => "max_attempts_exceeded",
            DlqReason::SchemaViolation => "schema_violation",
            DlqReason::Expired => "expired",
            DlqReason::DeserializationFailure => "deserialization_failure",
            DlqReason::RejectedByPolicy => "rejected_by_policy",
        }
    }
}

impl fmt::Display for DlqReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DlqReason {
    type Err = Error;
    fn from_str(s: &str) -> Result<DlqReason> {
        DlqReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = DlqReason::ALL.iter().map(|r| r.as_str()).collect();
                Error::invalid(
                    format!("dead-letter reason {s:?}"),
                    format!("use one of {}", names.join(", ")),
                )
            })
    }
}

/// A message to dead-letter: the original record and why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Why it is dead-lettered.
    pub reason: DlqReason,
    /// The last error text.
    pub error: String,
    /// Deliveries it had.
    pub attempts: u32,
    /// First failure, µs since the epoch.
    pub first_failure_micros: i64,
    /// Last failure, µs since the epoch.
    pub last_failure_micros: i64,
    /// The topic it was read from.
    pub topic: String,
    /// Its partition there.
    pub partition: u32,
    /// Its offset there.
    pub offset: u64,
    /// Its record timestamp there (µs; the envelope's `emitted_at`).
    pub timestamp: i64,
    /// The queue or consumer group that gave up on it.
    pub consumer: String,
    /// The original record bytes, untouched.
    pub envelope: Bytes,
}

/// A dead-letter record read back from a `.dlq` topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlqEntry {
    /// Partition of the `.dlq` topic holding it.
    pub dlq_partition: u32,
    /// Offset in that partition.
    pub dlq_offset: u64,
    /// When it was dead-lettered, µs since the epoch (the record timestamp).
    pub dead_lettered_micros: i64,
    /// SHA-256 of the original envelope's payload as stored (MessagePack), or of
    /// the whole record when it is not a decodable envelope.
    pub payload_sha256: [u8; 32],
    /// The letter.
    pub letter: DeadLetter,
}

impl DlqEntry {
    /// Decodes the original envelope in place.
    pub fn envelope(&self) -> std::result::Result<EnvelopeRef<'_>, EnvelopeError> {
        EnvelopeRef::decode(&self.letter.envelope)
    }

    /// The original event id, when the original record is an envelope.
    pub fn event_id(&self) -> Option<Uuid> {
        self.envelope().ok().map(|e| e.event_id)
    }

    /// Whether the stored hash matches the stored envelope's payload.
    pub fn hash_matches(&self) -> bool {
        payload_sha256(&self.letter.envelope) == self.payload_sha256
    }

    /// Every field as one JSON object (what `fabric dlq list` prints).
    pub fn to_json(&self) -> Value {
        let l = &self.letter;
        let envelope = match self.envelope().and_then(|e| e.to_envelope()) {
            Ok(e) => e.to_json_value(),
            Err(_) => Value::Null,
        };
        json!({
            "dlq_partition": self.dlq_partition,
            "dlq_offset": self.dlq_offset,
            "dead_lettered_at": micros_text(self.dead_lettered_micros),
            "reason": l.reason.as_str(),
            "error": l.error,
            "attempts": l.attempts,
            "first_failure_at": micros_text(l.first_failure_micros),
            "last_failure_at": micros_text(l.last_failure_micros),
            "original_topic": l.topic,
            "original_partition": l.partition,
            "original_offset": l.offset,
            "original_timestamp": micros_text(l.timestamp),
            "consumer": l.consumer,
            "payload_sha256": hex(&self.payload_sha256),
            "hash_ok": self.hash_matches(),
            "event_id": self.event_id().map(|id| id.hyphenated().to_string()),
            "envelope": envelope,
            "envelope_bytes": l.envelope.len(),
        })
    }
}

fn micros_text(micros: i64) -> String {
    Timestamp::from_microsecond(micros).map_or_else(|_| micros.to_string(), |t| t.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The `payload_sha256` of a dead letter: SHA-256 of the envelope's payload
/// exactly as stored (its MessagePack bytes), so letters carrying the same
/// poison payload share a hash whatever their event ids; of the whole record
/// when it is not a decodable envelope (a deserialization failure).
pub(crate) fn payload_sha256(record: &[u8]) -> [u8; 32] {
    match crate::envelope::EnvelopeRef::decode(record) {
        Ok(envelope) => sha256(envelope.payload_bytes),
        Err(_) => sha256(record),
    }
}

/// The dead-letter topic of `topic`.
pub fn dlq_topic_name(topic: &str) -> String {
    format!("{topic}{DLQ_SUFFIX}")
}

/// Encodes `letter` as a dead-letter record dead-lettered at `dead_at`.
pub(crate) fn encode(letter: &DeadLetter, dead_at: i64) -> Result<Vec<u8>> {
    let too_long = |what: &str, len: usize, max: usize| {
        Error::invalid(
            format!("dead letter for {}:{}", letter.partition, letter.offset),
            format!("its {what} is {len} bytes, the limit is {max}"),
        )
    };
    let (topic, queue, error) = (
        letter.topic.as_bytes(),
        letter.consumer.as_bytes(),
        letter.error.as_bytes(),
    );
    if topic.len() > usize::from(u16::MAX) {
        return Err(too_long("topic name", topic.len(), u16::MAX.into()));
    }
    if queue.len() > usize::from(u16::MAX) {
        return Err(too_long("consumer name", queue.len(), u16::MAX.into()));
    }
    // Error texts are evidence, not payload: keep them bounded.
    let error = error
        .get(..floor_char_boundary(&letter.error, 64 << 10))
        .unwrap_or_default();
    let mut out = Vec::with_capacity(
        DLQ_HEADER_LEN + topic.len() + queue.len() + error.len() + letter.envelope.len(),
    );
    out.extend_from_slice(&DLQ_MAGIC);
    out.push(DLQ_VERSION);
    out.push(letter.reason.code());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&[0; 4]); // CRC, filled in below
    out.extend_from_slice(&letter.attempts.to_le_bytes());
    out.extend_from_slice(&letter.first_failure_micros.to_le_bytes());
    out.extend_from_slice(&letter.last_failure_micros.to_le_bytes());
    out.extend_from_slice(&dead_at.to_le_bytes());
    out.extend_from_slice(&letter.partition.to_le_bytes());
    out.extend_from_slice(&letter.offset.to_le_bytes());
    out.extend_from_slice(&letter.timestamp.to_le_bytes());
    out.extend_from_slice(&payload_sha256(&letter.envelope));
    out.extend_from_slice(&(topic.len() as u16).to_le_bytes());
    out.extend_from_slice(&(queue.len() as u16).to_le_bytes());
    out.extend_from_slice(&(error.len() as u32).to_le_bytes());
    out.extend_from_slice(&(letter.envelope.len() as u32).to_le_bytes());
    debug_assert_eq!(out.len(), DLQ_HEADER_LEN);
    out.extend_from_slice(topic);
    out.extend_from_slice(queue);
    out.extend_from_slice(error);
    out.extend_from_slice(&letter.envelope);
    let crc = record_crc(&out).unwrap_or_default();
    if let Some(slot) = out.get_mut(CRC_AT..ATTEMPTS_AT) {
        // Always there: `out` holds a whole header (asserted above).
        slot.copy_from_slice(&crc.to_le_bytes());
    }
    Ok(out)
}

/// CRC-32 of everything but the CRC field itself; `None` when `record` is
/// shorter than the bytes up to the CRC field's end.
fn record_crc(record: &[u8]) -> Option<u32> {
    let (before, rest) = record.split_at_checked(CRC_AT)?;
    let after = rest.get(ATTEMPTS_AT - CRC_AT..)?;
    let mut h = crc32fast::Hasher::new();
    h.update(before);
    h.update(after);
    Some(h.finalize())
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

/// Decodes a dead-letter record; the error says what is wrong.
pub(crate) fn decode(
    value: &Bytes,
    dlq_partition: u32,
    dlq_offset: u64,
) -> std::result::Result<DlqEntry, String> {
    let b = &value[..];
    if !is_dead_letter(b) {
        return Err("not a dead-letter record (magic EFDL missing)".into());
    }
    let Some(header) = b.first_chunk::<DLQ_HEADER_LEN>() else {
        return Err(format!(
            "{} bytes is shorter than the {DLQ_HEADER_LEN}-byte header",
            b.len()
        ));
    };
    if header[VERSION_AT] != DLQ_VERSION {
        return Err(format!(
            "dead-letter version {}; this build reads version {DLQ_VERSION}",
            header[VERSION_AT]
        ));
    }
    // Every field lies within the header, whose length was checked; a read
    // that still came up short is an error naming the field and its byte,
    // never a default value.
    let cut = |what: &str, at: usize| format!("the {what} field at byte {at} is cut short");
    let u16_at = |what, at| {
        le::u16_at(header, at)
            .map(usize::from)
            .ok_or_else(|| cut(what, at))
    };
    let u32_at = |what, at| le::u32_at(header, at).ok_or_else(|| cut(what, at));
    let u64_at = |what, at| le::u64_at(header, at).ok_or_else(|| cut(what, at));
    let crc = u32_at("crc", CRC_AT)?;
    if record_crc(b) != Some(crc) {
        return Err("checksum mismatch".into());
    }
    if header[RESERVED_AT..CRC_AT] != [0, 0] {
        return Err("reserved bytes are not zero".into());
    }
    let reason = DlqReason::from_code(header[REASON_AT])
        .ok_or_else(|| format!("unknown reason code {}", header[REASON_AT]))?;
    let lens = [
        u16_at("topic length", TOPIC_LEN_AT)?,
        u16_at("consumer length", QUEUE_LEN_AT)?,
        u32_at("error length", ERROR_LEN_AT)? as usize,
        u32_at("envelope length", ENVELOPE_LEN_AT)? as usize,
    ];
    if DLQ_HEADER_LEN + lens.iter().sum::<usize>() != b.len() {
        return Err("the field lengths do not add up to the record length".into());
    }
    // The lengths add up to the record: each range below lies inside it.
    let mut at = DLQ_HEADER_LEN;
    let [topic, queue, error, envelope] = lens.map(|len| {
        let r = at..at + len;
        at += len;
        r
    });
    let text = |r: std::ops::Range<usize>, what: &str| {
        let bytes = b.get(r.clone()).ok_or_else(|| cut(what, r.start))?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("the {what} is not UTF-8"))
    };
    let sha: [u8; 32] = header[SHA_AT..SHA_AT + 32]
        .try_into()
        .map_err(|_| cut("payload_sha256", SHA_AT))?;
    Ok(DlqEntry {
        dlq_partition,
        dlq_offset,
        dead_lettered_micros: u64_at("dead_lettered_at", DEAD_AT)? as i64,
        payload_sha256: sha,
        letter: DeadLetter {
            reason,
            error: text(error, "error text")?,
            attempts: u32_at("attempts", ATTEMPTS_AT)?,
            first_failure_micros: u64_at("first_failure_at", FIRST_FAILURE_AT)? as i64,
            last_failure_micros: u64_at("last_failure_at", LAST_FAILURE_AT)? as i64,
            topic: text(topic, "topic name")?,
            partition: u32_at("original partition", PARTITION_AT)?,
            offset: u64_at("original offset", OFFSET_AT)?,
            timestamp: u64_at("original timestamp", TIMESTAMP_AT)? as i64,
            consumer: text(queue, "consumer name")?,
            envelope: value.slice(envelope),
        },
    })
}

/// Appends `letter` to `<letter.topic>.dlq` (created with the source's
/// partition count when absent), in the partition of the same number, and
/// makes it durable; returns where it landed. Callers ack the source only
/// after this returned, so a crash in between dead-letters twice at worst
/// (replay skips the duplicate: see [`crate::consume::dlq_replay`]), never loses it.
pub(crate) fn dead_letter(
    topics: &Arc<dyn PartitionSource>,
    letter: &DeadLetter,
) -> Result<(u32, u64)> {
    let dlq = ensure_dlq_topic(topics, &letter.topic)?;
    let dead_at = now_micros();
    let record = encode(letter, dead_at)?;
    let partitions = topics.topic_info(&dlq)?.config.partitions;
    let partition = letter.partition % partitions.max(1);
    let log = topics.partition(&dlq, partition)?;
    let offsets = log.append_batch_with_timestamps(&[(dead_at, &record[..])])?;
    // The source ack that follows may reach the disk first otherwise.
    log.flush()?;
    crate::observe::dead_lettered(&letter.topic, letter.reason.as_str());
    Ok((partition, offsets.start))
}

/// Creates `<topic>.dlq` like `topic` when it does not exist; returns its name.
pub(crate) fn ensure_dlq_topic(topics: &Arc<dyn PartitionSource>, topic: &str) -> Result<String> {
    let dlq = dlq_topic_name(topic);
    if topics.topic_info(&dlq).is_ok() {
        return Ok(dlq);
    }
    let source = topics.topic_info(topic)?.config;
    let mut config = TopicConfig::with_partitions(source.partitions);
    config.fsync = source.fsync;
    match topics.create_topic(&dlq, config) {
        Ok(()) => Ok(dlq),
        // Another thread created it meanwhile.
        Err(_) if topics.topic_info(&dlq).is_ok() => Ok(dlq),
        Err(e) => Err(e),
    }
}

/// Which dead letters a listing or replay takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DlqFilter {
    /// Only this reason.
    pub reason: Option<DlqReason>,
    /// Dead-lettered at or after this time.
    pub from: Option<Timestamp>,
    /// Dead-lettered before this time.
    pub to: Option<Timestamp>,
    /// Only the letter carrying this event id.
    pub event_id: Option<Uuid>,
}

impl DlqFilter {
    /// Whether `entry` passes.
    pub fn matches(&self, entry: &DlqEntry) -> bool {
        self.reason.is_none_or(|r| r == entry.letter.reason)
            && self
                .from
                .is_none_or(|t| entry.dead_lettered_micros >= t.as_microsecond())
            && self
                .to
                .is_none_or(|t| entry.dead_lettered_micros < t.as_microsecond())
            && self.event_id.is_none_or(|id| entry.event_id() == Some(id))
    }
}

/// Read access to the dead letters of one source topic.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    pub(crate) topics: Arc<dyn PartitionSource>,
    /// What a replay republishes through.
    pub(crate) producers: Arc<dyn ProducerFactory>,
    pub(crate) source: String,
    pub(crate) dlq: String,
}

impl DeadLetters {
    /// The dead letters of `source`: empty until the first one lands. On a
    /// writable fabric a missing `<source>.dlq` topic is created (empty, as
    /// the first dead letter would create it); `source` itself must exist
    /// (or have left a `.dlq` behind).
    pub(crate) fn open(
        topics: &Arc<dyn PartitionSource>,
        producers: Arc<dyn ProducerFactory>,
        source: &str,
    ) -> Result<DeadLetters> {
        if source.ends_with(DLQ_SUFFIX) {
            return Err(Error::invalid(
                format!("dead-letter queue of topic {source:?}"),
                "it is a dead-letter topic itself: name its source topic",
            ));
        }
        let dlq = dlq_topic_name(source);
        if topics.topic_info(&dlq).is_err() {
            if topics.topic_info(source).is_err() {
                return Err(Error::invalid(
                    format!("dead-letter queue of topic {source:?}"),
                    format!("topic {source:?} does not exist (nor does {dlq:?})"),
                ));
            }
            if !topics.is_read_only() {
                ensure_dlq_topic(topics, source)?;
            }
        }
        Ok(DeadLetters {
            topics: topics.clone(),
            producers,
            source: source.to_string(),
            dlq,
        })
    }

    /// The `.dlq` topic's name.
    pub fn topic(&self) -> &str {
        &self.dlq
    }

    /// Every entry passing `filter`, in partition then offset order, all in
    /// memory: for a DLQ of any size, prefer [`DeadLetters::iter`]. A
    /// record that is not a valid dead letter is an error naming it.
    pub fn list(&self, filter: &DlqFilter) -> Result<Vec<DlqEntry>> {
        self.iter(filter)?.collect()
    }

    /// The entries passing `filter`, in partition then offset order, read
    /// one at a time as the iterator is advanced (memory does not grow with
    /// the DLQ). A record that is not a valid dead letter is an `Err` item
    /// naming its topic, partition and offset, after which the iterator
    /// ends; the entries before it have been yielded.
    pub fn iter(&self, filter: &DlqFilter) -> Result<DlqIter> {
        let from = filter.from.map_or(StartFrom::Earliest, StartFrom::Time);
        // A read-only view of a topic whose first dead letter has not landed
        // yet has no `.dlq` topic to read (only a writer creates it): that is
        // an empty DLQ, not an error.
        let reader = if self.topics.is_read_only() && self.topics.topic_info(&self.dlq).is_err() {
            None
        } else {
            Some(Reader::open(&self.topics, &self.dlq, from)?)
        };
        Ok(DlqIter {
            reader,
            filter: filter.clone(),
            dlq: self.dlq.clone(),
            done: false,
        })
    }

    /// The entry at `partition`:`offset` of the `.dlq` topic.
    pub fn get(&self, partition: u32, offset: u64) -> Result<DlqEntry> {
        let from = StartFrom::Offsets(std::collections::BTreeMap::from([(partition, offset)]));
        let mut reader =
            Reader::open(&self.topics, &self.dlq, from)?.with_partitions(&[partition])?;
        let raw = match reader.next_raw() {
            Some(raw) => raw?,
            None => {
                return Err(Error::invalid(
                    format!("dead letter {partition}:{offset} of {:?}", self.dlq),
                    "no record at that offset yet",
                ));
            }
        };
        decode(&raw.value, partition, raw.offset).map_err(|reason| {
            Error::invalid(
                format!(
                    "record at offset {offset} of topic {:?} partition {partition}",
                    self.dlq
                ),
                format!("not a valid dead letter: {reason}"),
            )
        })
    }
}

/// The streaming listing of [`DeadLetters::iter`]: one decoded entry per
/// step, nothing read ahead beyond the reader's current batch.
#[derive(Debug)]
pub struct DlqIter {
    /// `None`: the `.dlq` topic does not exist yet (read-only view).
    reader: Option<crate::consume::reader::Reader>,
    filter: DlqFilter,
    dlq: String,
    done: bool,
}

impl Iterator for DlqIter {
    type Item = Result<DlqEntry>;

    fn next(&mut self) -> Option<Result<DlqEntry>> {
        while !self.done {
            let raw = match self.reader.as_mut()?.next_raw()? {
                Ok(raw) => raw,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            match decode(&raw.value, raw.partition, raw.offset) {
                Ok(entry) if self.filter.matches(&entry) => return Some(Ok(entry)),
                Ok(_) => {}
                Err(reason) => {
                    self.done = true;
                    return Some(Err(Error::invalid(
                        format!(
                            "record at offset {} of topic {:?} partition {}",
                            raw.offset, self.dlq, raw.partition
                        ),
                        format!("not a valid dead letter: {reason}"),
                    )));
                }
            }
        }
        None
    }
}

impl std::iter::FusedIterator for DlqIter {}

/// Fires a callback when more than `threshold` messages were dead-lettered
/// within the last `window` (the hook for paging/alerting).
#[derive(Clone)]
pub struct DlqRateAlert {
    /// Dead letters within `window` that are still fine; one more fires.
    pub threshold: usize,
    /// The sliding window.
    pub window: Duration,
    /// Called (outside any queue lock) each time the count rises past the
    /// threshold; re-armed once the count in the window falls back to it.
    pub callback: Arc<dyn Fn(DlqRateEvent) + Send + Sync>,
}

impl fmt::Debug for DlqRateAlert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DlqRateAlert")
            .field("threshold", &self.threshold)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// What a [`DlqRateAlert`] callback is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlqRateEvent {
    /// The queue that dead-lettered.
    pub queue: String,
    /// The source topic.
    pub topic: String,
    /// Dead letters within the window, now.
    pub count: usize,
    /// The threshold that was passed.
    pub threshold: usize,
    /// The window.
    pub window: Duration,
}

/// The sliding window behind a [`DlqRateAlert`].
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    times: VecDeque<i64>,
    fired: bool,
}

impl RateWindow {
    /// Records one dead letter at `now`; returns the count when this one
    /// crossed the threshold.
    pub(crate) fn record(&mut self, alert: &DlqRateAlert, now: i64) -> Option<usize> {
        let window = alert.window.as_micros() as i64;
        self.times.push_back(now);
        while self.times.front().is_some_and(|&t| t <= now - window) {
            self.times.pop_front();
        }
        let count = self.times.len();
        if count <= alert.threshold {
            self.fired = false;
            return None;
        }
        if self.fired {
            return None;
        }
        self.fired = true;
        Some(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter() -> DeadLetter {
        DeadLetter {
            reason: DlqReason::SchemaViolation,
            error: "amount: must be positive".into(),
            attempts: 3,
            first_failure_micros: 1_700_000_000_000_000,
            last_failure_micros: 1_700_000_000_500_000,
            topic: "billing.domain.v1".into(),
            partition: 2,
            offset: 41,
            timestamp: 1_699_999_999_000_000,
            consumer: "invoicing".into(),
            envelope: Bytes::from_static(b"\x9d\x01original bytes"),
        }
    }

    #[test]
    fn a_letter_round_trips_and_any_flipped_bit_is_refused() {
        let bytes = Bytes::from(encode(&letter(), 1_700_000_001_000_000).unwrap());
        let entry = decode(&bytes, 2, 9).unwrap();
        assert_eq!(entry.letter, letter());
        assert_eq!(entry.dead_lettered_micros, 1_700_000_001_000_000);
        assert!(entry.hash_matches());
        for i in 0..bytes.len() {
            let mut bad = bytes.to_vec();
            bad[i] ^= 0x10;
            assert!(
                decode(&Bytes::from(bad), 2, 9).is_err(),
                "bit flip at byte {i}"
            );
        }
        assert!(decode(&bytes.slice(..bytes.len() - 1), 2, 9).is_err());
    }

    #[test]
    fn a_cut_letter_is_refused_with_the_reason_never_read_as_zeros() {
        let bytes = Bytes::from(encode(&letter(), 1_700_000_001_000_000).unwrap());
        for cut in 4..bytes.len() {
            let reason = decode(&bytes.slice(..cut), 2, 9).unwrap_err();
            let expected = if cut < DLQ_HEADER_LEN {
                "-byte header"
            } else {
                "checksum mismatch"
            };
            assert!(reason.contains(expected), "cut {cut}: {reason}");
        }
    }

    #[test]
    fn reasons_round_trip_through_codes_and_names() {
        for r in DlqReason::ALL {
            assert_eq!(DlqReason::from_code(r.code()), Some(r));
            assert_eq!(r.as_str().parse::<DlqReason>().unwrap(), r);
        }
        assert!("nope".parse::<DlqReason>().is_err());
        assert_eq!(DlqReason::from_code(0), None);
    }

    #[test]
    fn the_rate_alert_fires_once_past_the_threshold_and_rearms() {
        let alert = DlqRateAlert {
            threshold: 3,
            window: Duration::from_secs(10),
            callback: Arc::new(|_| {}),
        };
        let mut w = RateWindow::default();
        let s = 1_000_000;
        let fired: Vec<_> = (0..6).map(|i| w.record(&alert, i * s)).collect();
        assert_eq!(fired, [None, None, None, Some(4), None, None]);
        // Far later: the window holds only the new one, re-armed.
        assert_eq!(w.record(&alert, 100 * s), None);
        for i in 1..3 {
            assert_eq!(w.record(&alert, 100 * s + i), None);
        }
        assert_eq!(w.record(&alert, 100 * s + 3), Some(4));
    }
}
