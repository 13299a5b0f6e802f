//! The binary layout (MessagePack, layout version 1, see the module docs of
//! [`envelope`](super)): [`Envelope::encode`](super::Envelope::encode) and
//! [`Envelope::decode`](super::Envelope::decode).
//!
//! This file owns the owned encoder and decoder of a record; it must never
//! write bytes the decoder would refuse for a valid envelope, never accept
//! trailing bytes, and never panic whatever the bytes.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use uuid::Uuid;

use super::errors::Problems;
use super::fields::{
    Parts, check_event_id, check_event_type, check_non_empty, check_tenant, finish, micros_of,
    timestamp_from_micros,
};
use super::msgpack::{self, value_len};
use super::{
    Envelope, EnvelopeError, LAYOUT_VERSION, MAX_NESTING, SchemaVersion, Ttl, WIRE_ELEMENTS,
};

/// The event id as read: 16 bytes, or the wrong length that was found.
struct RawId(Result<[u8; 16], usize>);

impl<'de> Deserialize<'de> for RawId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;

        impl Visitor<'_> for IdVisitor {
            type Value = RawId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the 16 bytes of a UUID as MessagePack bin")
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<RawId, E> {
                Ok(RawId(<[u8; 16]>::try_from(v).map_err(|_| v.len())))
            }
        }

        deserializer.deserialize_bytes(IdVisitor)
    }
}

/// The record's elements with their MessagePack types checked, before the field rules.
struct RawWire {
    event_id: RawId,
    event_type: String,
    tenant_id: Option<String>,
    occurred_at: i64,
    emitted_at: i64,
    source: String,
    schema_version: String,
    correlation_id: String,
    causation_id: Option<String>,
    partition_key: String,
    ttl: Option<u64>,
    payload: Value,
}

/// Reads the top-level array, noting in `at` which field it is reading so a
/// MessagePack error can name it.
struct WireVisitor<'a> {
    at: &'a Cell<&'static str>,
}

impl WireVisitor<'_> {
    fn element<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(
        &self,
        seq: &mut A,
        field: &'static str,
    ) -> Result<T, A::Error> {
        self.at.set(field);
        seq.next_element()?.ok_or_else(|| {
            de::Error::custom(format!(
                "the envelope array ends before this field (layout {LAYOUT_VERSION} has {WIRE_ELEMENTS} elements)"
            ))
        })
    }
}

impl<'de> Visitor<'de> for WireVisitor<'_> {
    type Value = RawWire;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a MessagePack array of {WIRE_ELEMENTS} elements (envelope layout {LAYOUT_VERSION})"
        )
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawWire, A::Error> {
        let version: u64 = self.element(&mut seq, "layout_version")?;
        if version != u64::from(LAYOUT_VERSION) {
            return Err(de::Error::custom(format!(
                "unsupported layout version {version}; this build reads layout {LAYOUT_VERSION}"
            )));
        }
        let raw = RawWire {
            event_id: self.element(&mut seq, "event_id")?,
            event_type: self.element(&mut seq, "event_type")?,
            tenant_id: self.element(&mut seq, "tenant_id")?,
            occurred_at: self.element(&mut seq, "occurred_at")?,
            emitted_at: self.element(&mut seq, "emitted_at")?,
            source: self.element(&mut seq, "source")?,
            schema_version: self.element(&mut seq, "schema_version")?,
            correlation_id: self.element(&mut seq, "correlation_id")?,
            causation_id: self.element(&mut seq, "causation_id")?,
            partition_key: self.element(&mut seq, "partition_key")?,
            ttl: self.element(&mut seq, "ttl")?,
            payload: self.element(&mut seq, "payload")?,
        };
        self.at.set("envelope");
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(format!(
                "the envelope array has more than {WIRE_ELEMENTS} elements"
            )));
        }
        Ok(raw)
    }
}

impl RawWire {
    fn into_envelope(self) -> Result<Envelope, EnvelopeError> {
        let mut p = Problems::default();
        let event_id = p.take(
            "event_id",
            match self.event_id.0 {
                Ok(bytes) => {
                    let id = Uuid::from_bytes(bytes);
                    check_event_id(&id).map(|()| id)
                }
                Err(len) => Err(format!("must be 16 bytes, got {len}")),
            },
        );
        p.check(
            "tenant_id",
            check_tenant(self.tenant_id.as_deref(), Some(&self.event_type)),
        );
        let event_type = p.take(
            "event_type",
            check_event_type(&self.event_type).map(|()| self.event_type),
        );
        let occurred_at = p.take("occurred_at", timestamp_from_micros(self.occurred_at));
        let emitted_at = p.take("emitted_at", timestamp_from_micros(self.emitted_at));
        let source = p.take(
            "source",
            check_non_empty(&self.source).map(|()| self.source),
        );
        let schema_version = p.take(
            "schema_version",
            self.schema_version
                .parse::<SchemaVersion>()
                .map_err(|e| e.to_string()),
        );
        let correlation_id = p.take(
            "correlation_id",
            check_non_empty(&self.correlation_id).map(|()| self.correlation_id),
        );
        let causation_id = p.take(
            "causation_id",
            match self.causation_id {
                Some(c) => check_non_empty(&c).map(|()| Some(c)),
                None => Ok(None),
            },
        );
        let partition_key = p.take(
            "partition_key",
            check_non_empty(&self.partition_key).map(|()| self.partition_key),
        );
        let ttl = p.take(
            "ttl",
            match self.ttl {
                Some(ms) => Ttl::from_millis(ms)
                    .map(Some)
                    .ok_or_else(|| "must be greater than zero".to_owned()),
                None => Ok(None),
            },
        );
        finish(
            p,
            Parts {
                event_id,
                event_type,
                tenant_id: Some(self.tenant_id),
                occurred_at,
                emitted_at,
                source,
                schema_version,
                correlation_id,
                causation_id,
                partition_key,
                ttl,
                payload: Some(self.payload),
            },
        )
    }
}

impl Envelope {
    /// Appends the binary encoding (layout version 1, see the module docs) to `out`.
    ///
    /// Allocation-free apart from growing `out`: reuse one buffer across calls
    /// (`out.clear()` between records) on hot paths. Does not validate; call
    /// [`Envelope::validate`] on envelopes built by hand, since [`Envelope::decode`]
    /// will reject what `validate` rejects. Timestamp digits finer than a
    /// microsecond are dropped.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // Written directly (no serde state machine); the bytes are exactly
        // what rmp-serde writes for the same layout, which a unit test checks.
        out.reserve(128 + self.payload_hint());
        out.push(0x90 | WIRE_ELEMENTS as u8);
        msgpack::uint(out, u64::from(LAYOUT_VERSION));
        out.extend_from_slice(&[0xc4, 16]);
        out.extend_from_slice(self.event_id.as_bytes());
        msgpack::str(out, &self.event_type);
        msgpack::opt_str(out, self.tenant_id.as_deref());
        msgpack::sint(out, micros_of(self.occurred_at));
        msgpack::sint(out, micros_of(self.emitted_at));
        msgpack::str(out, &self.source);
        msgpack::str(out, self.schema_version.as_str());
        msgpack::str(out, &self.correlation_id);
        msgpack::opt_str(out, self.causation_id.as_deref());
        msgpack::str(out, &self.partition_key);
        match self.ttl {
            Some(ttl) => msgpack::uint(out, ttl.as_millis()),
            None => out.push(0xc0),
        }
        msgpack::value(out, &self.payload);
    }

    /// A cheap guess of the payload's encoded size, for reserving.
    fn payload_hint(&self) -> usize {
        match &self.payload {
            Value::Object(m) => m.len() * 24,
            Value::Array(a) => a.len() * 16,
            _ => 16,
        }
    }

    /// The binary encoding in a new buffer; see [`Envelope::encode`].
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(384);
        self.encode(&mut out);
        out
    }

    /// Decodes and validates one record written by [`Envelope::encode`].
    ///
    /// Never panics, whatever the bytes. `bytes` must hold exactly one record:
    /// trailing bytes are an error. A malformed record is reported against the
    /// field being read when it failed; a well-formed one that breaks field
    /// rules reports every failing field.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        let at = Cell::new("envelope");
        let raw = {
            // The borrowing reader hands strings out of `bytes` without copying.
            let mut deserializer = rmp_serde::Deserializer::from_read_ref(bytes);
            deserializer.set_max_depth(MAX_NESTING + 1);
            deserializer.deserialize_tuple(WIRE_ELEMENTS, WireVisitor { at: &at })
        };
        let raw = raw.map_err(|e| EnvelopeError::single(at.get(), format!("undecodable: {e}")))?;
        // The array decoded, so it is well formed; measure where it ends.
        // A record is exactly one envelope: bytes after the array make it
        // something else (docs/FORMAT.md, "Envelope"), and every peek agrees.
        match value_len(bytes) {
            Some(len) if len == bytes.len() => {}
            Some(len) => {
                return Err(EnvelopeError::single(
                    "envelope",
                    format!(
                        "{} trailing byte(s) after the envelope array, from byte {len}",
                        bytes.len().saturating_sub(len)
                    ),
                ));
            }
            None => {
                return Err(EnvelopeError::single(
                    "envelope",
                    "undecodable: the envelope array is truncated",
                ));
            }
        }
        raw.into_envelope()
    }
}
