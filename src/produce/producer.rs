//! Producing events: enrichment, validation, encoding, partitioning, append.
//!
//! Owns the producer-side rules of the envelope contract: which fields a
//! producer fills in when they are absent (see [`Producer`]), the choice of
//! partition (Kafka's murmur2 of `partition_key`), the record timestamp
//! (`emitted_at` in µs) and batching by partition, and applies the topic's
//! dedup cache (`src/dedup.rs`: an `event_id` the topic first stored less
//! than the window ago is not appended again) and `system.` sampling
//! (`src/sampling.rs`).
//! It must never append an envelope that fails [`Envelope::validate`], never
//! append one `event_id` twice within the window (except through
//! [`Producer::publish_replay`]), and never create a topic.
use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::clock::now_micros;
use crate::envelope::{Envelope, EnvelopeError, SchemaVersion, Ttl};
use crate::error::{Error, Result};
use crate::produce::dedup::{DedupCache, LazyDedup, Position};
use crate::produce::guards::TopicGuard;
use crate::produce::partitioner::partition_for_key;
use crate::storage::log::Log;
use crate::topic::TopicHandle;

/// Where a published event landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Published {
    /// The partition it was appended to (for a duplicate: where the original
    /// is; for a dropped event: where it would have gone).
    pub partition: u32,
    /// Its offset within that partition (for a duplicate: the original's;
    /// for a dropped event: [`Published::NO_OFFSET`]).
    pub offset: u64,
    /// Whether it was appended, recognised as a duplicate, or dropped.
    pub outcome: PublishOutcome,
}

/// What publishing did with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PublishOutcome {
    /// Appended at the reported position.
    #[default]
    Appended,
    /// Its `event_id` was already appended to the topic within the dedup
    /// window: nothing was appended, the position is the original's.
    Duplicate,
    /// A `system.` event beyond the topic's `system_events_per_sec`: dropped
    /// (at-most-once sampling) and counted, nothing was appended.
    Dropped,
}

impl Published {
    /// The offset reported for a dropped event, which has none.
    pub const NO_OFFSET: u64 = u64::MAX;

    fn appended(partition: u32, offset: u64) -> Published {
        Published {
            partition,
            offset,
            outcome: PublishOutcome::Appended,
        }
    }

    /// Whether the event was recognised as already appended (nothing appended).
    pub fn is_duplicate(&self) -> bool {
        self.outcome == PublishOutcome::Duplicate
    }

    /// Whether the event was dropped by sampling (nothing appended).
    pub fn is_dropped(&self) -> bool {
        self.outcome == PublishOutcome::Dropped
    }
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
///
/// Effectively-once: with the topic's `dedup_window_ms` on (the default, 2
/// minutes), publishing an `event_id` the topic first stored (appended) less
/// than the window ago appends nothing and returns the original position
/// ([`PublishOutcome::Duplicate`]), whatever the event's `emitted_at`: the
/// window is measured on the fabric's append time, so a relay resending an
/// outbox of old events, a backfill or an import retried within the window
/// is caught, across restarts too, and wherever the original now is (warm
/// tier or hot log). All producers of the topic in the process share the
/// cache, so racing producers append an id once. At-most-once sampling: with `system_events_per_sec` set, `system.`
/// events beyond the rate are dropped ([`PublishOutcome::Dropped`]).
#[derive(Debug)]
pub struct Producer {
    topic: Arc<TopicHandle>,
    guard: Arc<TopicGuard>,
    source: String,
    /// Encoded events of the call in progress (reused: no allocation per call).
    buf: Vec<u8>,
    /// Where each event of the call in progress is in `buf` (reused likewise).
    items: Vec<Item>,
}

impl Producer {
    pub(crate) fn new(
        topic: Arc<TopicHandle>,
        guard: Arc<TopicGuard>,
        source: &str,
    ) -> Result<Producer> {
        if source.is_empty() {
            return Err(Error::invalid(
                "producer source",
                "must be non-empty: it names the service producing events",
            ));
        }
        topic.check_live()?;
        if let Some(lazy) = &guard.dedup {
            // The first producer of the topic pays for the cache's rebuild.
            lazy.get(&topic.partitions())?;
        }
        Ok(Producer {
            topic,
            guard,
            source: source.to_string(),
            buf: Vec::with_capacity(1024),
            items: Vec::new(),
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
        if let Some(gate) = &self.guard.schemas {
            gate.check(&envelope)?;
        }
        Ok(envelope)
    }

    /// Checks `envelope` against the schema catalog when the topic requires
    /// schemas (what every publish does), without appending: an
    /// [`Error::SchemaViolation`] lists every problem. Ok when the topic does
    /// not require schemas.
    pub fn check_schema(&self, envelope: &Envelope) -> Result<()> {
        match &self.guard.schemas {
            Some(gate) => gate.check(envelope),
            None => Ok(()),
        }
    }

    fn refused(&self, envelope: &Envelope, e: &EnvelopeError) -> Error {
        crate::observe::publish_rejected(crate::observe::names::REJECT_ENVELOPE);
        log::debug!(
            "event {} for topic {:?} refused: {e}",
            envelope.event_id,
            self.topic.name
        );
        Error::Envelope(e.clone())
    }

    /// Enriches, validates, encodes and appends one event; returns where it
    /// landed. Durable according to the topic's fsync policy when it returns.
    ///
    /// With the topic's dedup window on, an `event_id` already appended
    /// within it is not appended again: the result is the original position
    /// with [`PublishOutcome::Duplicate`]. With `system_events_per_sec` set,
    /// a `system.` event beyond the rate is dropped
    /// ([`PublishOutcome::Dropped`]) and counted.
    pub fn publish(&mut self, envelope: &Envelope) -> Result<Published> {
        self.topic.check_live()?;
        let envelope = self.checked(envelope)?;
        let logs = self.topic.partitions();
        self.buf.clear();
        self.items.clear();
        let item = self.encode_item(&envelope, logs.len() as u32);
        self.items.push(item);
        // One event is a batch of one: the sampling, the dedup claim and the
        // commit are the ones of `append_items`, written once.
        let mut out = Vec::with_capacity(1);
        append_items(
            &self.topic,
            &self.guard,
            &logs,
            &self.buf,
            &self.items,
            true,
            &mut out,
        )?;
        out.pop().ok_or_else(|| {
            Error::invalid(
                "publish",
                "the append reported no outcome for the event (internal error)",
            )
        })
    }

    /// Encodes a checked envelope at the end of `self.buf` and describes it.
    fn encode_item(&mut self, envelope: &Envelope, partitions: u32) -> Item {
        let start = self.buf.len();
        envelope.encode(&mut self.buf);
        Item {
            partition: partition_for_key(&envelope.partition_key, partitions),
            start,
            end: self.buf.len(),
            timestamp: envelope.emitted_at.as_microsecond(),
            id: envelope.event_id.as_u128(),
            system: crate::produce::sampling::is_system_event(&envelope.event_type),
        }
    }

    /// Publishes one event bypassing the dedup check and sampling: it is
    /// appended even if its `event_id` was appended within the window (and
    /// the cache then points at the new copy). For deliberate re-appends such
    /// as a DLQ replay into the source topic.
    pub fn publish_replay(&mut self, envelope: &Envelope) -> Result<Published> {
        self.topic.check_live()?;
        let envelope = self.checked(envelope)?;
        let logs = self.topic.partitions();
        self.buf.clear();
        let Item {
            partition,
            timestamp,
            ..
        } = self.encode_item(&envelope, logs.len() as u32);
        let log = logs
            .get(partition as usize)
            .ok_or_else(|| Error::UnknownPartition {
                topic: self.topic.name.clone(),
                partition,
                partitions: u32::try_from(logs.len()).unwrap_or(u32::MAX),
            })?;
        let (offsets, appended_at) = log.append_stamped(&[(timestamp, &self.buf[..])])?;
        if let Some(lazy) = &self.guard.dedup {
            let cache = lazy.get(&logs)?;
            let position = Position {
                partition,
                offset: offsets.start,
                appended_at,
            };
            cache.overwrite(envelope.event_id.as_u128(), position, now_micros());
        }
        Ok(Published::appended(partition, offsets.start))
    }

    /// Where the topic's dedup cache says `event_id` was appended within the
    /// window, as `(partition, offset)` — the cache alone, not checked
    /// against the partition as [`Producer::publish`] does before trusting it.
    pub fn dedup_lookup(&self, event_id: Uuid) -> Option<(u32, u64)> {
        let cache = self
            .guard
            .dedup
            .as_ref()?
            .get(&self.topic.partitions())
            .ok()?;
        cache
            .lookup(event_id.as_u128(), now_micros())
            .map(|p| (p.partition, p.offset))
    }

    /// `system.` events this topic dropped by sampling since it was opened
    /// in this process (all producers of the topic together).
    pub fn system_events_dropped(&self) -> u64 {
        self.guard.sampler.as_ref().map_or(0, |s| s.dropped())
    }

    /// [`Producer::prepare`] then [`Producer::publish`]; returns the stored
    /// envelope (with its generated `event_id`) and where it landed.
    pub fn send(&mut self, draft: Draft) -> Result<(Envelope, Published)> {
        let envelope = self.prepare(draft).map_err(|e| {
            crate::observe::publish_rejected(crate::observe::names::REJECT_ENVELOPE);
            Error::Envelope(e)
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
    ///
    /// Dedup and sampling apply as in [`Producer::publish`]; an `event_id`
    /// repeated within the batch is appended once, its repeats reported as
    /// duplicates of the first.
    pub fn publish_batch(&mut self, envelopes: &[Envelope]) -> Result<Vec<Published>> {
        self.topic.check_live()?;
        let logs = self.topic.partitions();
        let count = logs.len() as u32;
        self.buf.clear();
        // Reused between calls: a batch allocates no item list of its own.
        self.items.clear();
        self.items.reserve(envelopes.len());
        for envelope in envelopes {
            let envelope = self.checked(envelope)?;
            let item = self.encode_item(&envelope, count);
            self.items.push(item);
        }
        let mut out = Vec::with_capacity(envelopes.len());
        append_items(
            &self.topic,
            &self.guard,
            &logs,
            &self.buf,
            &self.items,
            true,
            &mut out,
        )?;
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

/// One encoded event waiting to be appended: its bytes are `buf[start..end]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Item {
    pub(crate) partition: u32,
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) timestamp: i64,
    pub(crate) id: u128,
    /// A `system.` event, subject to sampling.
    pub(crate) system: bool,
}

/// What happens to each item before any append.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// Claimed (or no dedup): to be appended.
    Append,
    /// Repeats the item at this index of the same call.
    SameAs(usize),
    /// Final already: a duplicate of an earlier append, or dropped.
    Done(Published),
}

/// Pending dedup claims of one call; those not committed are abandoned
/// when it is dropped (an append failed), so no id stays claimed.
struct Claims<'a> {
    lazy: &'a LazyDedup,
    cache: &'a DedupCache,
    /// By item index: the id claimed and not committed yet.
    owned: Vec<Option<u128>>,
}

impl Drop for Claims<'_> {
    fn drop(&mut self) {
        for id in self.owned.iter().flatten() {
            self.cache.abandon(*id);
        }
    }
}

/// Appends `items` (bytes in `buf`) to their partitions, applying sampling
/// (when `sample`) and the topic's dedup cache; fills `out` in input order.
#[expect(
    clippy::indexing_slicing,
    reason = "the hot path indexes by item: `plan`, `claims.owned` and `out[base..]` hold one \
              slot per item, `order` holds item indexes, and every item's `start..end` lies in \
              `buf` (encode_item wrote it there)"
)]
pub(crate) fn append_items(
    topic: &TopicHandle,
    guard: &TopicGuard,
    logs: &[Arc<Log>],
    buf: &[u8],
    items: &[Item],
    sample: bool,
    out: &mut Vec<Published>,
) -> Result<()> {
    let max_batch = topic.config.read().max_batch_bytes;
    let dropped = |item: &Item| Published {
        partition: item.partition,
        offset: Published::NO_OFFSET,
        outcome: PublishOutcome::Dropped,
    };
    let mut plan: Vec<Plan> = Vec::with_capacity(items.len());
    let mut claims = match &guard.dedup {
        Some(lazy) => Some(Claims {
            lazy,
            cache: lazy.get(logs)?,
            owned: vec![None; items.len()],
        }),
        None => None,
    };
    // Repeats within the call first: they inherit the first one's fate and
    // cost no sampling token.
    let check_repeats = claims.is_some() && items.len() > 1;
    let mut first_of: std::collections::HashMap<u128, usize> =
        std::collections::HashMap::with_capacity(if check_repeats { items.len() } else { 0 });
    for (i, item) in items.iter().enumerate() {
        if check_repeats {
            match first_of.entry(item.id) {
                std::collections::hash_map::Entry::Occupied(first) => {
                    plan.push(Plan::SameAs(*first.get()));
                    continue;
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
        let admitted = !sample
            || !item.system
            || guard
                .sampler
                .as_ref()
                .is_none_or(|s| s.admit_at(std::time::Instant::now()));
        plan.push(if admitted {
            Plan::Append
        } else {
            Plan::Done(dropped(item))
        });
    }
    if let Some(claims) = claims.as_mut() {
        // Ascending id order: a producer waiting on another's pending claim
        // never holds a claim that one waits on.
        let mut order: Vec<usize> = (0..items.len())
            .filter(|&i| matches!(plan[i], Plan::Append))
            .collect();
        order.sort_unstable_by_key(|&i| items[i].id);
        let ids: Vec<u128> = order.iter().map(|&i| items[i].id).collect();
        let Claims { lazy, cache, owned } = claims;
        cache.claim_many(
            &ids,
            now_micros(),
            &mut |id, position| lazy.still_holds(logs, position, id),
            &mut |k, found| {
                let i = order[k];
                match found {
                    None => owned[i] = Some(items[i].id),
                    Some(p) => {
                        crate::observe::dedup_hit();
                        plan[i] = Plan::Done(Published {
                            partition: p.partition,
                            offset: p.offset,
                            outcome: PublishOutcome::Duplicate,
                        });
                    }
                }
            },
        )?;
    }
    let base = out.len();
    out.extend(items.iter().map(dropped));
    // The partitions in ascending order; one partition (a single event, a
    // one-partition topic) costs no allocation.
    let first_partition = items.first().map_or(0, |item| item.partition);
    let mut several: Vec<u32> = Vec::new();
    if items.iter().any(|item| item.partition != first_partition) {
        several = items.iter().map(|item| item.partition).collect();
        several.sort_unstable();
        several.dedup();
    }
    let partitions: &[u32] = match (items.is_empty(), several.is_empty()) {
        (true, _) => &[],
        (false, true) => std::slice::from_ref(&first_partition),
        (false, false) => &several,
    };
    let mut records: Vec<(i64, &[u8])> = Vec::with_capacity(items.len());
    let mut indexes: Vec<usize> = Vec::with_capacity(items.len());
    for &p in partitions {
        let log = logs
            .get(p as usize)
            .ok_or_else(|| Error::UnknownPartition {
                topic: topic.name.clone(),
                partition: p,
                partitions: u32::try_from(logs.len()).unwrap_or(u32::MAX),
            })?;
        records.clear();
        indexes.clear();
        let mut bytes = crate::storage::batch::HEADER_LEN;
        for (i, item) in items.iter().enumerate() {
            if item.partition != p || !matches!(plan[i], Plan::Append) {
                continue;
            }
            let size = item.end - item.start + crate::storage::batch::RECORD_OVERHEAD;
            if !records.is_empty() && bytes + size > max_batch {
                append_chunk(
                    log,
                    p,
                    &records,
                    &indexes,
                    claims.as_mut(),
                    &mut out[base..],
                )?;
                records.clear();
                indexes.clear();
                bytes = crate::storage::batch::HEADER_LEN;
            }
            bytes += size;
            records.push((item.timestamp, &buf[item.start..item.end]));
            indexes.push(i);
        }
        append_chunk(
            log,
            p,
            &records,
            &indexes,
            claims.as_mut(),
            &mut out[base..],
        )?;
    }
    for (i, step) in plan.iter().enumerate() {
        match *step {
            Plan::Append => {}
            Plan::Done(published) => out[base + i] = published,
            Plan::SameAs(first) => {
                let original = out[base + first];
                out[base + i] = if original.is_dropped() {
                    original
                } else {
                    crate::observe::dedup_hit();
                    Published {
                        outcome: PublishOutcome::Duplicate,
                        ..original
                    }
                };
            }
        }
    }
    Ok(())
}

#[expect(
    clippy::indexing_slicing,
    reason = "`indexes` are item indexes, and `out` and `claims.owned` hold one slot per item"
)]
fn append_chunk(
    log: &Log,
    partition: u32,
    records: &[(i64, &[u8])],
    indexes: &[usize],
    claims: Option<&mut Claims<'_>>,
    out: &mut [Published],
) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let (offsets, appended_at) = log.append_stamped(records)?;
    let mut claims = claims;
    for (&i, offset) in indexes.iter().zip(offsets.clone()) {
        out[i] = Published::appended(partition, offset);
    }
    if let Some(claims) = claims.as_mut() {
        let owned = &mut claims.owned;
        let appended = indexes.iter().zip(offsets).filter_map(|(&i, offset)| {
            owned[i].take().map(|id| {
                let position = Position {
                    partition,
                    offset,
                    appended_at,
                };
                (id, position)
            })
        });
        claims.cache.commit_many(appended, now_micros());
    }
    Ok(())
}
