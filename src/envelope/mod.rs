//! The event envelope: the paved-road fields every stored event carries, their
//! validation rules, their JSON shape and their compact binary (MessagePack) layout.
//!
//! This module owns the meaning of each envelope field and both of its encodings.
//! It must never accept an envelope that breaks a rule below, never panic on
//! bytes or JSON it is handed, and never interpret the `payload` (payload
//! contracts are versioned and checked elsewhere, against the schema catalog).
//!
//! # Field rules
//!
//! | field | type | rule |
//! | --- | --- | --- |
//! | `event_id` | [`Uuid`] | a UUIDv7 (version 7, RFC 9562 variant) |
//! | `event_type` | string | `<domain>.<entity>.<action>`: three segments, each `[a-z][a-z0-9_]*` |
//! | `tenant_id` | string or `null` | non-empty; `null` (or absent) only when the domain is `system` |
//! | `occurred_at`, `emitted_at` | RFC 3339 | kept to the microsecond, see below |
//! | `source` | string | non-empty |
//! | `schema_version` | [`SchemaVersion`] | semver `MAJOR.MINOR.PATCH[-pre][+build]` |
//! | `correlation_id` | string | non-empty |
//! | `causation_id` | optional string | non-empty when present |
//! | `partition_key` | string | non-empty |
//! | `ttl` | optional [`Ttl`] | a positive whole number of milliseconds |
//! | `payload` | any JSON value | present; integers stay integers, key order is kept |
//!
//! # Timestamps
//!
//! The contract is **microsecond precision, in UTC**. Digits finer than a
//! microsecond are dropped (rounded toward the past) when JSON is parsed and
//! when an envelope is encoded, and an offset such as `+02:00` is normalised to
//! `Z`. JSON output renders a timestamp as RFC 3339 in UTC with the fraction
//! trimmed of trailing zeros, so `2026-06-10T12:30:00Z` comes back unchanged
//! and `2026-06-10T12:30:00.250Z` comes back as `2026-06-10T12:30:00.25Z`.
//! Input must have the RFC 3339 shape `YYYY-MM-DD(T|t| )hh:mm:ss[.f+](Z|z|±hh:mm)`
//! and lie in years 0000 to 9999; a leap second (`:60`) is read as `:59`.
//!
//! # JSON shape
//!
//! One object whose keys are the field names above, written in the order of the
//! table. `tenant_id` is always written (as `null` for `None`); `causation_id`
//! and `ttl` are left out when `None`. On input, a missing key and `null` both
//! mean `None` for the three optional fields; any other key is rejected, and so
//! is a key given twice. [`Envelope::from_json`] reports every failing field in
//! one [`EnvelopeError`].
//!
//! # Binary layout (layout version 1)
//!
//! A record is one MessagePack array; positions, not names, identify fields.
//! All multi-byte integers are big-endian, as MessagePack defines them.
//!
//! ```text
//! envelope       = %x9D layout-version event-id event-type tenant-id
//!                  occurred-at emitted-at source schema-version
//!                  correlation-id causation-id partition-key ttl payload
//!                                   ; %x9D = fixarray of 13 elements
//! layout-version = %x01             ; positive fixint 1 (readers reject anything else)
//! event-id       = %xC4 %x10 16OCTET
//!                                   ; bin 8 of length 16: the UUID bytes in RFC 9562 order
//! event-type     = str
//! tenant-id      = str / nil        ; nil only for `system.*` event types
//! occurred-at    = int              ; signed microseconds since 1970-01-01T00:00:00Z
//! emitted-at     = int              ; same
//! source         = str
//! schema-version = str              ; the semver text, e.g. "1.2.0"
//! correlation-id = str
//! causation-id   = str / nil
//! partition-key  = str
//! ttl            = int / nil        ; milliseconds, at least 1
//! payload        = value            ; the JSON payload, mapped as below
//!
//! str            = fixstr / str 8 / str 16 / str 32   ; UTF-8, shortest header
//! int            = any MessagePack integer; writers use the shortest encoding
//! value          = nil / bool / int / float 64 / str / array of value
//!                  / map of (str, value)   ; map entries keep the JSON key order
//! ```
//!
//! JSON integers (those that fit `i64` or `u64`) become MessagePack integers and
//! come back as integers; JSON floats become `float 64` and come back as floats.
//! Readers also accept `float 32` (widened to `f64`) and, outside the payload,
//! `bin` holding valid UTF-8 where a `str` is expected (rmp-serde's leniency;
//! writers never produce it). They reject payload `bin` and `ext`,
//! non-string map keys, arrays and maps nested more than [`MAX_NESTING`] deep
//! (the envelope array included), extra array elements and trailing bytes.
//! Every string, array and map must be shorter than 2^32 (MessagePack's limit).
//! A decoded envelope is validated exactly like a parsed JSON one.

// Files of this layer. It is the bottom one: no file here imports another
// crate module (only serde, serde_json, rmp-serde, jiff and uuid).
// - errors: FieldProblem, EnvelopeError, ValueError and the problem collector
// - fields: the field rules shared by JSON parsing, binary decoding and validate
// - version: SchemaVersion      - ttl: Ttl
// - json: JSON parse and print   - wire: MessagePack encode and decode
// - msgpack: MessagePack writers and the value-length scan
// - borrowed: EnvelopeRef, the zero-copy decoder
// - skim: the peeks that read a few fields without validating the others

mod borrowed;
mod errors;
mod fields;
mod json;
mod msgpack;
mod skim;
#[cfg(test)]
mod tests;
mod ttl;
mod version;
mod wire;

use jiff::Timestamp;
use serde_json::Value;
use uuid::Uuid;

pub use borrowed::EnvelopeRef;
pub use errors::{EnvelopeError, FieldProblem, ValueError};
#[cfg(any(test, feature = "failpoints"))]
pub(crate) use skim::is_one_value;
pub(crate) use skim::{DLQ_MAGIC, EnvelopeHead, is_dead_letter, peek_event_id, peek_ttl_millis};
pub use ttl::Ttl;
pub use version::SchemaVersion;

use errors::Problems;
use fields::{check_event_id, check_event_type, check_non_empty, check_tenant, check_timestamp};

/// The binary layout version written by [`Envelope::encode`] and the only one
/// [`Envelope::decode`] reads.
pub const LAYOUT_VERSION: u8 = 1;

/// Number of elements of the top-level MessagePack array in layout version 1.
const WIRE_ELEMENTS: usize = 13;

/// Deepest nesting of MessagePack arrays and maps that [`Envelope::decode`]
/// accepts, counting the envelope array itself. Any payload that JSON parsing
/// accepts (serde_json stops at 128 levels) fits within it.
pub const MAX_NESTING: usize = 128;

/// The envelope's field names, in JSON output order and binary layout order.
pub const FIELD_NAMES: [&str; 12] = [
    "event_id",
    "event_type",
    "tenant_id",
    "occurred_at",
    "emitted_at",
    "source",
    "schema_version",
    "correlation_id",
    "causation_id",
    "partition_key",
    "ttl",
    "payload",
];

/// One stored event: the paved-road envelope fields plus an opaque JSON payload.
///
/// Fields are public for convenience; an envelope built by hand should be
/// checked with [`Envelope::validate`]. [`Envelope::from_json`] and
/// [`Envelope::decode`] only ever return valid envelopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Unique, time-ordered id of the event, used for deduplication. Must be a UUIDv7.
    pub event_id: Uuid,
    /// Namespaced type, `<domain>.<entity>.<action>`, e.g. `billing.invoice.issued`.
    pub event_type: String,
    /// Owning tenant; `None` only for `system.*` events.
    pub tenant_id: Option<String>,
    /// When the fact happened, on the producer's clock (microsecond precision).
    pub occurred_at: Timestamp,
    /// When the event was handed to the fabric (microsecond precision).
    pub emitted_at: Timestamp,
    /// The service or agent that emitted the event.
    pub source: String,
    /// Version of the payload contract in the schema catalog.
    pub schema_version: SchemaVersion,
    /// Ties together all events of one flow, propagated across hops.
    pub correlation_id: String,
    /// The event (or request) that directly caused this one, when known.
    pub causation_id: Option<String>,
    /// Stable key that decides the partition, and so the ordering scope.
    pub partition_key: String,
    /// How long after emission the event stays worth delivering, when it expires.
    pub ttl: Option<Ttl>,
    /// The event body, any JSON value; never interpreted by this module.
    pub payload: Value,
}

impl Envelope {
    /// A fresh UUIDv7 from the system clock, monotonic within this process.
    pub fn new_event_id() -> Uuid {
        Uuid::now_v7()
    }

    /// A UUIDv7 built from its parts: the low 48 bits of `unix_millis`, the
    /// low 12 bits of `rand_a` and the low 62 bits of `rand_b` (RFC 9562 §5.7).
    /// Deterministic, for producers that bring their own clock and randomness.
    pub fn event_id_from_parts(unix_millis: u64, rand_a: u16, rand_b: u64) -> Uuid {
        let millis = u128::from(unix_millis) & 0xFFFF_FFFF_FFFF;
        let rand_a = u128::from(rand_a) & 0x0FFF;
        let rand_b = u128::from(rand_b) & 0x3FFF_FFFF_FFFF_FFFF;
        Uuid::from_u128((millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b)
    }

    /// Checks every field rule, reporting every failing field.
    ///
    /// [`SchemaVersion`] and [`Ttl`] are valid by construction; sub-microsecond
    /// timestamp digits are allowed here and dropped by [`Envelope::encode`].
    pub fn validate(&self) -> Result<(), EnvelopeError> {
        let mut problems = Problems::default();
        problems.check("event_id", check_event_id(&self.event_id));
        problems.check("event_type", check_event_type(&self.event_type));
        problems.check(
            "tenant_id",
            check_tenant(self.tenant_id.as_deref(), Some(&self.event_type)),
        );
        problems.check("occurred_at", check_timestamp(self.occurred_at));
        problems.check("emitted_at", check_timestamp(self.emitted_at));
        problems.check("source", check_non_empty(&self.source));
        problems.check("correlation_id", check_non_empty(&self.correlation_id));
        if let Some(causation_id) = &self.causation_id {
            problems.check("causation_id", check_non_empty(causation_id));
        }
        problems.check("partition_key", check_non_empty(&self.partition_key));
        problems.into_result()
    }
}
