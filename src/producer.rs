//! Producing events: enrichment, validation, encoding, partitioning, append.
//!
//! Owns the producer-side rules of the envelope contract: which fields a
//! producer fills in when they are absent (see [`Producer`]), the choice of
//! partition (Kafka's murmur2 of `partition_key`), the record timestamp
//! (`emitted_at` in µs) and batching by partition. It must never append an
//! envelope that fails [`Envelope::validate`], and never create a topic.

use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::envelope::{Envelope, EnvelopeError, SchemaVersion, Ttl};
use crate::error::{Error, Result};
use crate::fabric::TopicHandle;
use crate::partitioner::partition_for_key;

/// Where a published event landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Published {
    /// The partition it was appended to.
    pub partition: u32,
    /// Its offset within that partition.
    pub offset: u64,
}

/// An event that may still lack the fields a producer fills in: its JSON
/// members, as in the seed events, with any of `event_id`, `emitted_at`,
/// `source`, `correlation_id` and `partition_key` missing (or `null`).
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    members: Map<String, Value>,
}

fn rfc3339(ts: Timestamp) -> Value {
    Value::String(ts.to_string())
}

impl Draft {
    /// A draft of type `event_type` for `tenant_id` (`None` only for
    /// `system.*` events) with `payload`, occurring now, schema version 1.0.0.
    pub fn new(event_type: &str, tenant_id: Option<&str>, payload: Value) -> Draft {
        let mut members = Map::new();
        members.insert("event_type".into(), Value::String(event_type.into()));
        members.insert(
            "tenant_id".into(),
            tenant_id.map_or(Value::Null, |t| Value::String(t.into())),
        );
        members.insert("occurred_at".into(), rfc3339(Timestamp::now()));
        members.insert("schema_version".into(), Value::String("1.0.0".into()));
        members.insert("payload".into(), payload);
        Draft { members }
    }

    /// A draft from one JSON object in the seed-event shape.
    pub fn from_json(bytes: &[u8]) -> std::result::Result<Draft, EnvelopeError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| EnvelopeError::single("envelope", format!("not valid JSON: {e}")))?;
        Draft::from_value(value)
    }

    /// A draft from an already-parsed JSON value, which must be an object.
    pub fn from_value(value: Value) -> std::result::Result<Draft, EnvelopeError> {
        match value {
            Value::Object(members) => Ok(Draft { members }),
            _ => Err(EnvelopeError::single(
                "envelope",
                "must be a JSON object in the seed-event shape",
            )),
        }
    }

    /// Sets a member by name (any envelope field, e.g. `"ttl"`).
    pub fn set(mut self, field: &str, value: Value) -> Draft {
        self.members.insert(field.into(), value);
        self
    }

    /// Sets `occurred_at`.
    pub fn occurred_at(self, at: Timestamp) -> Draft {
        self.set("occurred_at", rfc3339(at))
    }

    /// Sets `schema_version`.
    pub fn schema_version(self, version: &SchemaVersion) -> Draft {
        self.set("schema_version", Value::String(version.to_string()))
    }

    /// Sets `partition_key` (the default is the tenant).
    pub fn partition_key(self, key: &str) -> Draft {
        self.set("partition_key", Value::String(key.into()))
    }

    /// Sets `correlation_id` (the default is a fresh id).
    pub fn correlation_id(self, id: &str) -> Draft {
        self.set("correlation_id", Value::String(id.into()))
    }

    /// Sets `ttl`.
    pub fn ttl(self, ttl: Ttl) -> Draft {
        self.set("ttl", Value::String(ttl.to_string()))
    }

    /// Marks this event as caused by `parent`: `causation_id` becomes the
    /// parent's `event_id` and `correlation_id` is propagated from it.
    pub fn caused_by(self, parent: &Envelope) -> Draft {
        self.set(
            "causation_id",
            Value::String(parent.event_id.hyphenated().to_string()),
        )
        .set(
            "correlation_id",
            Value::String(parent.correlation_id.clone()),
        )
    }

    /// The JSON members as they stand.
    pub fn members(&self) -> &Map<String, Value> {
        &self.members
    }
}

fn absent(members: &Map<String, Value>, key: &str) -> bool {
    match members.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

/// Publishes events to one topic. Cheap to create: make one per thread.
///
/// Enrichment — fields filled in when absent (missing or `null` in a
/// [`Draft`]; for an [`Envelope`] built in code: the nil UUID or an empty
/// string):
///
/// | field | filled with |
/// | --- | --- |
/// | `event_id` | a fresh UUIDv7 |
/// | `emitted_at` | now (drafts only; an [`Envelope`] always has one) |
/// | `source` | the producer's identity (`source` of [`crate::Fabric::producer`]) |
/// | `correlation_id` | the parent's (see [`Draft::caused_by`]) or a fresh UUIDv7 |
/// | `partition_key` | `tenant_id`; for a tenant-less `system.*` event, its `event_type` |
///
/// The partition is Kafka's default for the key (`murmur2`, positive modulo
/// the partition count); the record timestamp is `emitted_at` in µs, so
/// reading from a time finds events by emission time. Events with the same
/// key from one producer are stored in publish order; from several
/// producers, each partition's order is the order of their appends.
#[derive(Debug)]
pub struct Producer {
    topic: Arc<TopicHandle>,
    source: String,
    buf: Vec<u8>,
}

impl Producer {
    pub(crate) fn new(topic: Arc<TopicHandle>, source: &str) -> Result<Producer> {
        if source.is_empty() {
            return Err(Error::invalid(
                "producer source",
                "must be non-empty: it names the service producing events",
            ));
        }
        topic.check_live()?;
        Ok(Producer {
            topic,
            source: source.to_string(),
            buf: Vec::with_capacity(1024),
        })
    }

    /// The topic this producer writes to.
    pub fn topic(&self) -> &str {
        &self.topic.name
    }

    /// The identity stamped as `source` on events lacking one.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The topic's current partition count.
    pub fn partitions(&self) -> u32 {
        self.topic.partitions().len() as u32
    }

    /// Fills in a draft's absent fields and validates it, reporting every
    /// failing field at once. Appends nothing.
    pub fn prepare(&self, draft: Draft) -> std::result::Result<Envelope, EnvelopeError> {
        let mut m = draft.members;
        if absent(&m, "event_id") {
            m.insert(
                "event_id".into(),
                Value::String(Envelope::new_event_id().hyphenated().to_string()),
            );
        }
        if absent(&m, "emitted_at") {
            m.insert("emitted_at".into(), rfc3339(Timestamp::now()));
        }
        if absent(&m, "source") {
            m.insert("source".into(), Value::String(self.source.clone()));
        }
        if absent(&m, "correlation_id") {
            m.insert(
                "correlation_id".into(),
                Value::String(Envelope::new_event_id().hyphenated().to_string()),
            );
        }
        if absent(&m, "partition_key") {
            let key = match (m.get("tenant_id"), m.get("event_type")) {
                (Some(Value::String(t)), _) => Some(t.clone()),
                (_, Some(Value::String(t))) => Some(t.clone()),
                _ => None,
            };
            if let Some(key) = key {
                m.insert("partition_key".into(), Value::String(key));
            }
        }
        Envelope::from_json_value(Value::Object(m))
    }

    /// Fills in an envelope's absent fields (nil `event_id`, empty `source`,
    /// `correlation_id` or `partition_key`) in place.
    pub fn enrich(&self, envelope: &mut Envelope) {
        if envelope.event_id.is_nil() {
            envelope.event_id = Envelope::new_event_id();
        }
        if envelope.source.is_empty() {
            envelope.source.clone_from(&self.source);
        }
        if envelope.correlation_id.is_empty() {
            envelope.correlation_id = Envelope::new_event_id().hyphenated().to_string();
        }
        if envelope.partition_key.is_empty() {
            envelope.partition_key = envelope
                .tenant_id
                .clone()
                .unwrap_or_else(|| envelope.event_type.clone());
        }
    }

    fn needs_enrichment(envelope: &Envelope) -> bool {
        envelope.event_id.is_nil()
            || envelope.source.is_empty()
            || envelope.correlation_id.is_empty()
            || envelope.partition_key.is_empty()
    }

    fn checked<'a>(&self, envelope: &'a Envelope) -> Result<std::borrow::Cow<'a, Envelope>> {
        let envelope = if Self::needs_enrichment(envelope) {
            let mut owned = envelope.clone();
            self.enrich(&mut owned);
            std::borrow::Cow::Owned(owned)
        } else {
            std::borrow::Cow::Borrowed(envelope)
        };
        envelope
            .validate()
            .map_err(|e| self.refused(&envelope, &e))?;
        Ok(envelope)
    }

    fn refused(&self, envelope: &Envelope, e: &EnvelopeError) -> Error {
        Error::invalid(
            format!(
                "event {} for topic {:?}",
                envelope.event_id, self.topic.name
            ),
            format!("{e}; nothing was appended"),
        )
    }

    /// Enriches, validates, encodes and appends one event; returns where it
    /// landed. Durable according to the topic's fsync policy when it returns.
    pub fn publish(&mut self, envelope: &Envelope) -> Result<Published> {
        self.topic.check_live()?;
        let envelope = self.checked(envelope)?;
        let logs = self.topic.partitions();
        let partition = partition_for_key(&envelope.partition_key, logs.len() as u32);
        self.buf.clear();
        envelope.encode(&mut self.buf);
        let ts = envelope.emitted_at.as_microsecond();
        let log = &logs[partition as usize];
        let offsets = log.append_batch_with_timestamps(&[(ts, &self.buf[..])])?;
        Ok(Published {
            partition,
            offset: offsets.start,
        })
    }

    /// [`Producer::prepare`] then [`Producer::publish`]; returns the stored
    /// envelope (with its generated `event_id`) and where it landed.
    pub fn send(&mut self, draft: Draft) -> Result<(Envelope, Published)> {
        let envelope = self.prepare(draft).map_err(|e| {
            Error::invalid(
                format!("event for topic {:?}", self.topic.name),
                format!("{e}; nothing was appended"),
            )
        })?;
        let published = self.publish(&envelope)?;
        Ok((envelope, published))
    }

    /// Publishes an event whose payload is any `Serialize` value.
    pub fn publish_typed<T: Serialize>(
        &mut self,
        event_type: &str,
        tenant_id: Option<&str>,
        payload: &T,
    ) -> Result<(Envelope, Published)> {
        let payload = serde_json::to_value(payload)
            .map_err(|e| Error::invalid("payload", format!("cannot serialise to JSON: {e}")))?;
        self.send(Draft::new(event_type, tenant_id, payload))
    }

    /// Publishes many events: validates all of them first (one invalid event
    /// fails the call and nothing is appended), then appends one batch per
    /// partition (split only where a batch would exceed the topic's
    /// `max_batch_bytes`). Results are in input order.
    pub fn publish_batch(&mut self, envelopes: &[Envelope]) -> Result<Vec<Published>> {
        self.topic.check_live()?;
        let logs = self.topic.partitions();
        let count = logs.len() as u32;
        let max_batch = self.topic.config.read().max_batch_bytes;
        self.buf.clear();
        // (partition, start, end, timestamp) per envelope, in input order.
        let mut spans = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            let envelope = self.checked(envelope)?;
            let start = self.buf.len();
            envelope.encode(&mut self.buf);
            spans.push((
                partition_for_key(&envelope.partition_key, count),
                start,
                self.buf.len(),
                envelope.emitted_at.as_microsecond(),
            ));
        }
        let mut out = vec![
            Published {
                partition: 0,
                offset: 0
            };
            envelopes.len()
        ];
        let partitions: BTreeSet<u32> = spans.iter().map(|s| s.0).collect();
        let mut records: Vec<(i64, &[u8])> = Vec::new();
        let mut indexes: Vec<usize> = Vec::new();
        for p in partitions {
            let log = &logs[p as usize];
            records.clear();
            indexes.clear();
            let mut bytes = crate::batch::HEADER_LEN;
            for (i, &(sp, start, end, ts)) in spans.iter().enumerate() {
                if sp != p {
                    continue;
                }
                let size = end - start + crate::batch::RECORD_OVERHEAD;
                if !records.is_empty() && bytes + size > max_batch {
                    append_chunk(log, p, &records, &indexes, &mut out)?;
                    records.clear();
                    indexes.clear();
                    bytes = crate::batch::HEADER_LEN;
                }
                bytes += size;
                records.push((ts, &self.buf[start..end]));
                indexes.push(i);
            }
            append_chunk(log, p, &records, &indexes, &mut out)?;
        }
        Ok(out)
    }

    /// Makes everything this producer's topic holds durable now.
    pub fn flush(&self) -> Result<()> {
        for log in self.topic.partitions().iter() {
            log.flush()?;
        }
        Ok(())
    }
}

fn append_chunk(
    log: &crate::Log,
    partition: u32,
    records: &[(i64, &[u8])],
    indexes: &[usize],
    out: &mut [Published],
) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let offsets = log.append_batch_with_timestamps(records)?;
    for (&i, offset) in indexes.iter().zip(offsets) {
        out[i] = Published { partition, offset };
    }
    Ok(())
}

/// A fresh correlation id (a UUIDv7 as text), for callers starting a flow.
pub fn new_correlation_id() -> String {
    Uuid::now_v7().hyphenated().to_string()
}
