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

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeStruct;
#[cfg(test)]
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

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

/// `0000-01-01T00:00:00Z`, the earliest instant RFC 3339 can write.
const EARLIEST: Timestamp = Timestamp::constant(-62_167_219_200, 0);

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

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// One field that failed to parse or validate, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The field's name (or, for an unknown JSON key, that key; `envelope` for
    /// problems with the whole document or record).
    pub field: Cow<'static, str>,
    /// What is wrong, in words meant for the producer's developer.
    pub reason: String,
}

impl FieldProblem {
    /// A problem with `field`.
    pub fn new(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// An envelope was rejected: every problem found, in field order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeError {
    /// All problems found; never empty.
    pub problems: Vec<FieldProblem>,
}

impl EnvelopeError {
    /// An error with a single problem.
    pub fn single(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Self {
            problems: vec![FieldProblem::new(field, reason)],
        }
    }

    /// The first problem reported for `field`, if any.
    pub fn problem(&self, field: &str) -> Option<&FieldProblem> {
        self.problems.iter().find(|p| p.field == field)
    }

    /// The names of the fields with problems, in report order.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.problems.iter().map(|p| p.field.as_ref())
    }
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid envelope: ")?;
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for EnvelopeError {}

/// A string that is not a valid [`SchemaVersion`] or [`Ttl`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ValueError {
    reason: String,
}

impl ValueError {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// Collects problems so that every failing field is reported at once.
#[derive(Default)]
struct Problems(Vec<FieldProblem>);

impl Problems {
    fn push(&mut self, field: impl Into<Cow<'static, str>>, reason: impl Into<String>) {
        self.0.push(FieldProblem::new(field, reason));
    }

    /// Records the error of a field rule's `result`, if any.
    fn check(&mut self, field: &'static str, result: Result<(), String>) {
        if let Err(reason) = result {
            self.push(field, reason);
        }
    }

    /// The value of `result`, or `None` after recording its error.
    fn take<T>(&mut self, field: &'static str, result: Result<T, String>) -> Option<T> {
        result.map_err(|reason| self.push(field, reason)).ok()
    }

    fn into_result(self) -> Result<(), EnvelopeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(EnvelopeError { problems: self.0 })
        }
    }
}

// ---------------------------------------------------------------------------
// Field rules, shared by JSON parsing, binary decoding and `validate`
// ---------------------------------------------------------------------------

/// At most 64 characters of untrusted input, quoted and escaped, for messages.
fn quoted(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((cut, _)) => format!("{:?}...", s.get(..cut).unwrap_or_default()),
        None => format!("{s:?}"),
    }
}

fn check_event_id(id: &Uuid) -> Result<(), String> {
    let version = id.get_version_num();
    if version != 7 {
        return Err(format!("must be a UUIDv7, got a version {version} UUID"));
    }
    if id.get_variant() != uuid::Variant::RFC4122 {
        return Err("must carry the RFC 9562 variant bits (10xx in byte 8)".to_owned());
    }
    Ok(())
}

fn is_snake_segment(segment: &str) -> bool {
    let mut bytes = segment.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

/// The common case of [`check_event_type`] in one pass over the bytes.
fn is_valid_event_type(event_type: &str) -> bool {
    let mut segments = 1;
    let mut at_start = true;
    for &b in event_type.as_bytes() {
        match b {
            b'.' if !at_start => {
                segments += 1;
                at_start = true;
            }
            b'a'..=b'z' => at_start = false,
            b'0'..=b'9' | b'_' if !at_start => {}
            _ => return false,
        }
    }
    segments == 3 && !at_start
}

fn check_event_type(event_type: &str) -> Result<(), String> {
    if is_valid_event_type(event_type) {
        return Ok(());
    }
    let count = event_type.split('.').count();
    if count != 3 {
        return Err(format!(
            "must be <domain>.<entity>.<action> (three dot-separated segments), got {count} segment(s) in {}",
            quoted(event_type)
        ));
    }
    for (role, segment) in ["domain", "entity", "action"]
        .into_iter()
        .zip(event_type.split('.'))
    {
        if !is_snake_segment(segment) {
            return Err(format!(
                "must be <domain>.<entity>.<action> with lowercase snake_case segments [a-z][a-z0-9_]*, but the {role} is {}",
                quoted(segment)
            ));
        }
    }
    Ok(())
}

/// The domain of an event type, as far as it can be read (for the tenant rule).
fn domain_of(event_type: &str) -> &str {
    match event_type.bytes().position(|b| b == b'.') {
        Some(dot) => event_type.get(..dot).unwrap_or_default(),
        None => event_type,
    }
}

fn check_tenant(tenant_id: Option<&str>, event_type: Option<&str>) -> Result<(), String> {
    match tenant_id {
        Some("") => Err("must be non-empty (null is allowed only for system.* events)".to_owned()),
        Some(_) => Ok(()),
        None if event_type.is_some_and(|t| domain_of(t) == "system") => Ok(()),
        None => Err(
            "required unless event_type's domain is `system` (null or absent only for system.* events)"
                .to_owned(),
        ),
    }
}

fn check_non_empty(value: &str) -> Result<(), String> {
    if value.is_empty() {
        Err("must be non-empty".to_owned())
    } else {
        Ok(())
    }
}

fn check_timestamp(ts: Timestamp) -> Result<(), String> {
    if ts < EARLIEST {
        Err(format!(
            "must lie in years 0000 to 9999 to be written as RFC 3339, got {ts}"
        ))
    } else {
        Ok(())
    }
}

/// `ts` with digits finer than a microsecond dropped, rounding toward the past.
fn floor_to_micros(ts: Timestamp) -> Timestamp {
    let micros = micros_of(ts);
    // In range: flooring moves at most 999 ns toward the past, and jiff's
    // minimum is a whole second.
    Timestamp::from_microsecond(micros).unwrap_or(ts)
}

/// Whole microseconds since the Unix epoch, rounded toward the past.
fn micros_of(ts: Timestamp) -> i64 {
    let micros = ts.as_microsecond(); // truncated toward zero
    if ts.subsec_nanosecond() % 1_000 < 0 {
        micros - 1
    } else {
        micros
    }
}

/// Checks the RFC 3339 `date-time` shape, which jiff's more liberal parser
/// (it also takes ISO 8601 basic format, `hh:mm` without seconds, `,` as the
/// decimal sign and bracketed annotations) does not enforce on its own.
fn check_rfc3339_shape(s: &str) -> Result<(), String> {
    const SHAPE: &str = "must be an RFC 3339 timestamp like 2026-06-10T12:30:00Z or 2026-06-10T12:30:00.123456+02:00";
    let bad = || Err(format!("{SHAPE}, got {}", quoted(s)));
    let Some((head, mut rest)) = s.split_at_checked(19) else {
        return bad();
    };
    let head_ok = head
        .bytes()
        .zip(b"dddd-dd-ddTdd:dd:dd".iter())
        .all(|(b, &want)| match want {
            b'd' => b.is_ascii_digit(),
            b'T' => matches!(b, b'T' | b't' | b' '),
            other => b == other,
        });
    if !head_ok {
        return bad();
    }
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return bad();
        }
        rest = fraction.get(digits..).unwrap_or_default();
    }
    let offset_ok = match rest.as_bytes() {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit()),
        _ => false,
    };
    if offset_ok { Ok(()) } else { bad() }
}

/// Parses an RFC 3339 timestamp, keeping microsecond precision in UTC.
fn parse_timestamp(s: &str) -> Result<Timestamp, String> {
    check_rfc3339_shape(s)?;
    let ts: Timestamp = s
        .parse()
        .map_err(|e| format!("not a valid RFC 3339 timestamp ({e}), got {}", quoted(s)))?;
    check_timestamp(ts)?;
    Ok(floor_to_micros(ts))
}

fn parse_event_id(s: &str) -> Result<Uuid, String> {
    if s.len() != 36 {
        return Err(format!(
            "must be a UUID in the hyphenated 8-4-4-4-12 form, got {}",
            quoted(s)
        ));
    }
    let id = Uuid::try_parse(s).map_err(|e| format!("not a valid UUID ({e}): {}", quoted(s)))?;
    check_event_id(&id)?;
    Ok(id)
}

// ---------------------------------------------------------------------------
// SchemaVersion
// ---------------------------------------------------------------------------

/// A semantic version `MAJOR.MINOR.PATCH[-pre-release][+build]` (semver 2.0.0).
///
/// Always valid: the only ways to get one are [`SchemaVersion::new`] and parsing.
/// The text is kept as given (the grammar admits exactly one spelling per
/// version), so [`SchemaVersion::as_str`] is free.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchemaVersion {
    text: Box<str>,
    major: u64,
    minor: u64,
    patch: u64,
}

impl SchemaVersion {
    /// The plain version `major.minor.patch`.
    pub fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            text: format!("{major}.{minor}.{patch}").into_boxed_str(),
            major,
            minor,
            patch,
        }
    }

    /// The major version: a change here breaks consumers.
    pub fn major(&self) -> u64 {
        self.major
    }

    /// The minor version: additive, backward-compatible changes.
    pub fn minor(&self) -> u64 {
        self.minor
    }

    /// The patch version.
    pub fn patch(&self) -> u64 {
        self.patch
    }

    /// The pre-release part after `-` (e.g. `rc.1`), if any.
    pub fn pre_release(&self) -> Option<&str> {
        let without_build = self.text.split('+').next().unwrap_or_default();
        without_build.split_once('-').map(|(_, pre)| pre)
    }

    /// The build metadata after `+`, if any.
    pub fn build(&self) -> Option<&str> {
        self.text.split_once('+').map(|(_, build)| build)
    }

    /// The version as text, exactly as parsed.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn semver_number(part: Option<&str>, name: &str) -> Result<u64, ValueError> {
    let part = part.unwrap_or_default();
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::new(format!(
            "must be a semantic version MAJOR.MINOR.PATCH[-pre][+build]; the {name} version must be digits"
        )));
    }
    if part.len() > 1 && part.starts_with('0') {
        return Err(ValueError::new(format!(
            "the {name} version must not have leading zeros"
        )));
    }
    part.parse()
        .map_err(|_| ValueError::new(format!("the {name} version does not fit in 64 bits")))
}

fn semver_identifiers(
    part: &str,
    what: &str,
    numeric_no_leading_zero: bool,
) -> Result<(), ValueError> {
    for id in part.split('.') {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(ValueError::new(format!(
                "{what} identifiers must be non-empty [0-9A-Za-z-], got {}",
                quoted(part)
            )));
        }
        if numeric_no_leading_zero
            && id.len() > 1
            && id.starts_with('0')
            && id.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(ValueError::new(format!(
                "numeric {what} identifiers must not have leading zeros, got {}",
                quoted(id)
            )));
        }
    }
    Ok(())
}

impl FromStr for SchemaVersion {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (rest, build) = match s.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (s, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (rest, None),
        };
        let mut parts = core.split('.');
        let major = semver_number(parts.next(), "major")?;
        let minor = semver_number(parts.next(), "minor")?;
        let patch = semver_number(parts.next(), "patch")?;
        if parts.next().is_some() {
            return Err(ValueError::new(format!(
                "must be a semantic version MAJOR.MINOR.PATCH[-pre][+build], got {}",
                quoted(s)
            )));
        }
        if let Some(pre) = pre {
            semver_identifiers(pre, "pre-release", true)?;
        }
        if let Some(build) = build {
            semver_identifiers(build, "build", false)?;
        }
        Ok(Self {
            text: s.into(),
            major,
            minor,
            patch,
        })
    }
}

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for SchemaVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for SchemaVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

// ---------------------------------------------------------------------------
// Ttl
// ---------------------------------------------------------------------------

/// A time-to-live: a positive whole number of milliseconds.
///
/// Text form, accepted by [`FromStr`]: either `<digits><unit>` with unit `ms`,
/// `s`, `m`, `h` or `d` (`250ms`, `30s`, `5m`, `1h`, `2d`), or an ISO 8601
/// duration limited to days, hours, minutes and seconds (`PT30S`, `P2D`,
/// `PT1H30M`, `PT0.25S`; upper-case designators, at most 3 decimals on
/// seconds). Weeks, months and years are refused because their length varies.
///
/// [`Display`](fmt::Display) writes the canonical form: `<n><unit>` with the
/// largest unit that divides the value exactly (`90s`, `1h`, `1500ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ttl(NonZeroU64);

impl Ttl {
    const UNITS: [(u64, &'static str); 5] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
        (1, "ms"),
    ];

    /// A TTL of `millis` milliseconds.
    pub const fn new(millis: NonZeroU64) -> Self {
        Self(millis)
    }

    /// A TTL of `millis` milliseconds, or `None` for zero.
    pub const fn from_millis(millis: u64) -> Option<Self> {
        match NonZeroU64::new(millis) {
            Some(millis) => Some(Self(millis)),
            None => None,
        }
    }

    /// The TTL in milliseconds (at least 1).
    pub const fn as_millis(self) -> u64 {
        self.0.get()
    }

    /// The TTL as a [`Duration`].
    pub const fn as_duration(self) -> Duration {
        Duration::from_millis(self.0.get())
    }
}

const TTL_SHAPE: &str =
    "must be a duration like \"250ms\", \"30s\", \"5m\", \"1h\", \"2d\" or ISO 8601 \"PT30S\"";

fn ttl_error(s: &str) -> ValueError {
    ValueError::new(format!("{TTL_SHAPE}, got {}", quoted(s)))
}

fn ttl_too_large() -> ValueError {
    ValueError::new("is too large (more than 2^64 milliseconds)")
}

/// Splits `s` into its leading ASCII digits and the rest.
fn leading_digits(s: &str) -> (&str, &str) {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    s.split_at_checked(n).unwrap_or((s, ""))
}

fn parse_ttl_short(s: &str) -> Result<u64, ValueError> {
    let (digits, unit) = leading_digits(s);
    if digits.is_empty() {
        return Err(ttl_error(s));
    }
    let scale = Ttl::UNITS
        .iter()
        .find(|(_, name)| *name == unit)
        .map(|(scale, _)| *scale)
        .ok_or_else(|| ttl_error(s))?;
    let n: u64 = digits.parse().map_err(|_| ttl_too_large())?;
    n.checked_mul(scale).ok_or_else(ttl_too_large)
}

/// Parses the part after `P` of an ISO 8601 duration (`nD`, `T`, `nH`, `nM`, `n[.fff]S`).
fn parse_ttl_iso(s: &str, full: &str) -> Result<u64, ValueError> {
    let (date, time) = match s.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (s, None),
    };
    let mut total: u64 = 0;
    let mut any = false;
    let add = |total: u64, n: u64, scale: u64| {
        n.checked_mul(scale)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(ttl_too_large)
    };
    if !date.is_empty() {
        let (digits, rest) = leading_digits(date);
        if digits.is_empty() || rest != "D" {
            return Err(ttl_error(full));
        }
        total = add(
            total,
            digits.parse().map_err(|_| ttl_too_large())?,
            86_400_000,
        )?;
        any = true;
    }
    if let Some(mut time) = time {
        if time.is_empty() {
            return Err(ttl_error(full));
        }
        // Designators must come in this order, each at most once.
        let mut allowed: &[(u8, u64)] = &[(b'H', 3_600_000), (b'M', 60_000), (b'S', 1_000)];
        while !time.is_empty() {
            let (digits, rest) = leading_digits(time);
            if digits.is_empty() {
                return Err(ttl_error(full));
            }
            let n: u64 = digits.parse().map_err(|_| ttl_too_large())?;
            let (fraction_ms, rest) = match rest.strip_prefix('.') {
                Some(after_dot) => {
                    let (fraction, rest) = leading_digits(after_dot);
                    if fraction.is_empty() || fraction.len() > 3 || !rest.starts_with('S') {
                        return Err(ttl_error(full));
                    }
                    // "25" means 250 ms: pad to three digits.
                    let padded = format!("{fraction:0<3}");
                    (padded.parse::<u64>().map_err(|_| ttl_error(full))?, rest)
                }
                None => (0, rest),
            };
            let designator = rest.bytes().next().ok_or_else(|| ttl_error(full))?;
            let position = allowed
                .iter()
                .position(|(d, _)| *d == designator)
                .ok_or_else(|| ttl_error(full))?;
            let (_, scale) = allowed
                .get(position)
                .copied()
                .ok_or_else(|| ttl_error(full))?;
            allowed = allowed.get(position + 1..).unwrap_or_default();
            total = add(total, n, scale)?;
            total = total.checked_add(fraction_ms).ok_or_else(ttl_too_large)?;
            any = true;
            time = rest.get(1..).unwrap_or_default();
        }
    }
    if any { Ok(total) } else { Err(ttl_error(full)) }
}

impl FromStr for Ttl {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let millis = match s.strip_prefix('P') {
            Some(iso) => parse_ttl_iso(iso, s)?,
            None => parse_ttl_short(s)?,
        };
        Ttl::from_millis(millis).ok_or_else(|| ValueError::new("must be greater than zero"))
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.get();
        for (scale, unit) in Self::UNITS {
            if millis.is_multiple_of(scale) {
                return write!(f, "{}{unit}", millis / scale);
            }
        }
        write!(f, "{millis}ms")
    }
}

impl Serialize for Ttl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ttl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

// ---------------------------------------------------------------------------
// Envelope: ids, validation
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The top-level JSON members in input order, duplicates kept so they can be reported.
struct JsonMembers(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for JsonMembers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;

        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = JsonMembers;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object with the envelope fields")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonMembers, A::Error> {
                let mut members = Vec::with_capacity(FIELD_NAMES.len());
                while let Some(key) = map.next_key::<String>()? {
                    let value: Value = map.next_value()?;
                    members.push((key, value));
                }
                Ok(JsonMembers(members))
            }
        }

        deserializer.deserialize_map(MembersVisitor)
    }
}

/// The raw JSON value of each known field, sorted out from the members.
#[derive(Default)]
struct RawJson {
    event_id: Option<Value>,
    event_type: Option<Value>,
    tenant_id: Option<Value>,
    occurred_at: Option<Value>,
    emitted_at: Option<Value>,
    source: Option<Value>,
    schema_version: Option<Value>,
    correlation_id: Option<Value>,
    causation_id: Option<Value>,
    partition_key: Option<Value>,
    ttl: Option<Value>,
    payload: Option<Value>,
}

impl RawJson {
    fn sort(members: impl IntoIterator<Item = (String, Value)>, problems: &mut Problems) -> Self {
        let mut raw = Self::default();
        for (key, value) in members {
            let slot = match key.as_str() {
                "event_id" => &mut raw.event_id,
                "event_type" => &mut raw.event_type,
                "tenant_id" => &mut raw.tenant_id,
                "occurred_at" => &mut raw.occurred_at,
                "emitted_at" => &mut raw.emitted_at,
                "source" => &mut raw.source,
                "schema_version" => &mut raw.schema_version,
                "correlation_id" => &mut raw.correlation_id,
                "causation_id" => &mut raw.causation_id,
                "partition_key" => &mut raw.partition_key,
                "ttl" => &mut raw.ttl,
                "payload" => &mut raw.payload,
                _ => {
                    problems.push(
                        key,
                        "unknown field: the envelope has no such field (put extra data in the payload)",
                    );
                    continue;
                }
            };
            if slot.is_some() {
                problems.push(key, "given more than once");
            } else {
                *slot = Some(value);
            }
        }
        raw
    }
}

/// A required string field.
fn json_string(value: Option<Value>) -> Result<String, String> {
    match value {
        None => Err("missing (required)".to_owned()),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("must be a string, got {}", json_kind(&other))),
    }
}

/// An optional string field: absent and `null` both mean `None`.
fn json_opt_string(value: Option<Value>) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!(
            "must be a string or null, got {}",
            json_kind(&other)
        )),
    }
}

fn non_empty_string(value: Option<Value>) -> Result<String, String> {
    let s = json_string(value)?;
    check_non_empty(&s)?;
    Ok(s)
}

impl Envelope {
    /// Parses and validates an envelope from JSON text.
    ///
    /// Never panics. Every failing field is reported in the one error,
    /// including unknown and repeated top-level keys; JSON that is not an
    /// object at all is reported against the field `envelope`.
    pub fn from_json(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        let members: JsonMembers = serde_json::from_slice(bytes)
            .map_err(|e| EnvelopeError::single("envelope", format!("not a JSON object: {e}")))?;
        Self::from_members(members.0)
    }

    /// Validates an envelope given as an already-parsed JSON value.
    pub fn from_json_value(value: Value) -> Result<Envelope, EnvelopeError> {
        match value {
            Value::Object(map) => Self::from_members(map),
            other => Err(EnvelopeError::single(
                "envelope",
                format!("must be a JSON object, got {}", json_kind(&other)),
            )),
        }
    }

    fn from_members(
        members: impl IntoIterator<Item = (String, Value)>,
    ) -> Result<Envelope, EnvelopeError> {
        let mut p = Problems::default();
        let raw = RawJson::sort(members, &mut p);

        let event_id = p.take(
            "event_id",
            json_string(raw.event_id).and_then(|s| parse_event_id(&s)),
        );
        let event_type_text = p.take("event_type", json_string(raw.event_type));
        // The tenant rule needs only the domain, so it runs even when the
        // rest of event_type is malformed.
        let tenant_id = p.take(
            "tenant_id",
            json_opt_string(raw.tenant_id).and_then(|tenant| {
                check_tenant(tenant.as_deref(), event_type_text.as_deref()).map(|()| tenant)
            }),
        );
        let event_type =
            event_type_text.and_then(|t| p.take("event_type", check_event_type(&t).map(|()| t)));
        let occurred_at = p.take(
            "occurred_at",
            json_string(raw.occurred_at).and_then(|s| parse_timestamp(&s)),
        );
        let emitted_at = p.take(
            "emitted_at",
            json_string(raw.emitted_at).and_then(|s| parse_timestamp(&s)),
        );
        let source = p.take("source", non_empty_string(raw.source));
        let schema_version = p.take(
            "schema_version",
            json_string(raw.schema_version)
                .and_then(|s| s.parse::<SchemaVersion>().map_err(|e| e.to_string())),
        );
        let correlation_id = p.take("correlation_id", non_empty_string(raw.correlation_id));
        let causation_id = p.take(
            "causation_id",
            json_opt_string(raw.causation_id).and_then(|c| match c {
                Some(c) => check_non_empty(&c).map(|()| Some(c)),
                None => Ok(None),
            }),
        );
        let partition_key = p.take("partition_key", non_empty_string(raw.partition_key));
        let ttl = p.take(
            "ttl",
            json_opt_string(raw.ttl).and_then(|t| match t {
                Some(t) => t.parse::<Ttl>().map(Some).map_err(|e| e.to_string()),
                None => Ok(None),
            }),
        );
        let payload = p.take(
            "payload",
            raw.payload.ok_or_else(|| "missing (required)".to_owned()),
        );

        finish(
            p,
            Parts {
                event_id,
                event_type,
                tenant_id,
                occurred_at,
                emitted_at,
                source,
                schema_version,
                correlation_id,
                causation_id,
                partition_key,
                ttl,
                payload,
            },
        )
    }

    /// The envelope as a JSON object, in the documented key order.
    pub fn to_json_value(&self) -> Value {
        let mut map = Map::with_capacity(FIELD_NAMES.len());
        map.insert(
            "event_id".into(),
            Value::String(self.event_id.hyphenated().to_string()),
        );
        map.insert("event_type".into(), Value::String(self.event_type.clone()));
        map.insert(
            "tenant_id".into(),
            self.tenant_id.clone().map_or(Value::Null, Value::String),
        );
        map.insert(
            "occurred_at".into(),
            Value::String(floor_to_micros(self.occurred_at).to_string()),
        );
        map.insert(
            "emitted_at".into(),
            Value::String(floor_to_micros(self.emitted_at).to_string()),
        );
        map.insert("source".into(), Value::String(self.source.clone()));
        map.insert(
            "schema_version".into(),
            Value::String(self.schema_version.as_str().to_owned()),
        );
        map.insert(
            "correlation_id".into(),
            Value::String(self.correlation_id.clone()),
        );
        if let Some(causation_id) = &self.causation_id {
            map.insert("causation_id".into(), Value::String(causation_id.clone()));
        }
        map.insert(
            "partition_key".into(),
            Value::String(self.partition_key.clone()),
        );
        if let Some(ttl) = self.ttl {
            map.insert("ttl".into(), Value::String(ttl.to_string()));
        }
        map.insert("payload".into(), self.payload.clone());
        Value::Object(map)
    }

    /// The envelope as compact JSON text (UTF-8), in the documented key order.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        // Writing to a Vec cannot fail, and nothing in an envelope is
        // unrepresentable in JSON (map keys are strings, numbers are finite).
        if let Err(e) = serde_json::to_writer(&mut out, self) {
            unreachable!("JSON serialisation of an envelope cannot fail: {e}");
        }
        out
    }
}

/// Every field after parsing, `None` where parsing failed (and a problem was recorded).
struct Parts {
    event_id: Option<Uuid>,
    event_type: Option<String>,
    tenant_id: Option<Option<String>>,
    occurred_at: Option<Timestamp>,
    emitted_at: Option<Timestamp>,
    source: Option<String>,
    schema_version: Option<SchemaVersion>,
    correlation_id: Option<String>,
    causation_id: Option<Option<String>>,
    partition_key: Option<String>,
    ttl: Option<Option<Ttl>>,
    payload: Option<Value>,
}

/// Builds the envelope if nothing failed, else reports the problems in field order.
fn finish(mut p: Problems, parts: Parts) -> Result<Envelope, EnvelopeError> {
    sort_by_field_order(&mut p.0);
    p.into_result()?;
    match parts {
        Parts {
            event_id: Some(event_id),
            event_type: Some(event_type),
            tenant_id: Some(tenant_id),
            occurred_at: Some(occurred_at),
            emitted_at: Some(emitted_at),
            source: Some(source),
            schema_version: Some(schema_version),
            correlation_id: Some(correlation_id),
            causation_id: Some(causation_id),
            partition_key: Some(partition_key),
            ttl: Some(ttl),
            payload: Some(payload),
        } => Ok(Envelope {
            event_id,
            event_type,
            tenant_id,
            occurred_at,
            emitted_at,
            source,
            schema_version,
            correlation_id,
            causation_id,
            partition_key,
            ttl,
            payload,
        }),
        _ => Err(EnvelopeError::single(
            "envelope",
            "a field failed to parse without a reported reason",
        )),
    }
}

impl Serialize for Envelope {
    /// Serialises the JSON shape (strings for ids, timestamps, version and ttl).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = 10 + usize::from(self.causation_id.is_some()) + usize::from(self.ttl.is_some());
        let mut s = serializer.serialize_struct("Envelope", len)?;
        s.serialize_field("event_id", &DisplayStr(self.event_id.hyphenated()))?;
        s.serialize_field("event_type", &self.event_type)?;
        s.serialize_field("tenant_id", &self.tenant_id)?;
        s.serialize_field(
            "occurred_at",
            &DisplayStr(floor_to_micros(self.occurred_at)),
        )?;
        s.serialize_field("emitted_at", &DisplayStr(floor_to_micros(self.emitted_at)))?;
        s.serialize_field("source", &self.source)?;
        s.serialize_field("schema_version", &self.schema_version)?;
        s.serialize_field("correlation_id", &self.correlation_id)?;
        match &self.causation_id {
            Some(causation_id) => s.serialize_field("causation_id", causation_id)?,
            None => s.skip_field("causation_id")?,
        }
        s.serialize_field("partition_key", &self.partition_key)?;
        match &self.ttl {
            Some(ttl) => s.serialize_field("ttl", ttl)?,
            None => s.skip_field("ttl")?,
        }
        s.serialize_field("payload", &self.payload)?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for Envelope {
    /// Deserialises the JSON shape from any self-describing format, with the
    /// same validation as [`Envelope::from_json`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let members = JsonMembers::deserialize(deserializer)?;
        Envelope::from_members(members.0).map_err(de::Error::custom)
    }
}

/// Serialises a `Display` value as a string without an intermediate `String`.
struct DisplayStr<T>(T);

impl<T: fmt::Display> Serialize for DisplayStr<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

// ---------------------------------------------------------------------------
// Binary (MessagePack, layout version 1)
// ---------------------------------------------------------------------------

/// Serialises the 16 UUID bytes as MessagePack `bin`, not as an array of integers.
#[cfg(test)]
struct IdBytes<'a>(&'a [u8; 16]);

#[cfg(test)]
impl Serialize for IdBytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// The envelope in binary layout order, through serde: the reference the
/// direct writer of [`Envelope::encode`] is checked against.
#[cfg(test)]
struct Wire<'a>(&'a Envelope);

#[cfg(test)]
impl Serialize for Wire<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut t = serializer.serialize_tuple(WIRE_ELEMENTS)?;
        t.serialize_element(&LAYOUT_VERSION)?;
        t.serialize_element(&IdBytes(e.event_id.as_bytes()))?;
        t.serialize_element(e.event_type.as_str())?;
        t.serialize_element(&e.tenant_id.as_deref())?;
        t.serialize_element(&micros_of(e.occurred_at))?;
        t.serialize_element(&micros_of(e.emitted_at))?;
        t.serialize_element(e.source.as_str())?;
        t.serialize_element(e.schema_version.as_str())?;
        t.serialize_element(e.correlation_id.as_str())?;
        t.serialize_element(&e.causation_id.as_deref())?;
        t.serialize_element(e.partition_key.as_str())?;
        t.serialize_element(&e.ttl.map(Ttl::as_millis))?;
        t.serialize_element(&e.payload)?;
        t.end()
    }
}

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

fn timestamp_from_micros(micros: i64) -> Result<Timestamp, String> {
    let ts = Timestamp::from_microsecond(micros)
        .map_err(|_| format!("{micros} microseconds since the epoch is out of range"))?;
    check_timestamp(ts)?;
    Ok(ts)
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

/// Orders problems by the field order of the layout (unknown names first, stable).
fn sort_by_field_order(problems: &mut [FieldProblem]) {
    problems.sort_by_key(|p| {
        FIELD_NAMES
            .iter()
            .position(|name| p.field == *name)
            .map_or(0, |i| i + 1)
    });
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
        mp::uint(out, u64::from(LAYOUT_VERSION));
        out.extend_from_slice(&[0xc4, 16]);
        out.extend_from_slice(self.event_id.as_bytes());
        mp::str(out, &self.event_type);
        mp::opt_str(out, self.tenant_id.as_deref());
        mp::sint(out, micros_of(self.occurred_at));
        mp::sint(out, micros_of(self.emitted_at));
        mp::str(out, &self.source);
        mp::str(out, self.schema_version.as_str());
        mp::str(out, &self.correlation_id);
        mp::opt_str(out, self.causation_id.as_deref());
        mp::str(out, &self.partition_key);
        match self.ttl {
            Some(ttl) => mp::uint(out, ttl.as_millis()),
            None => out.push(0xc0),
        }
        mp::value(out, &self.payload);
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

// ---------------------------------------------------------------------------
// Borrowed decoding (the consumer fast path)
// ---------------------------------------------------------------------------

/// An envelope decoded in place from a record's bytes: every field is checked
/// exactly as [`Envelope::decode`] checks it, but strings borrow from the
/// record and the payload stays MessagePack until [`EnvelopeRef::payload`]
/// is asked for. For consumers that route or filter on envelope fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeRef<'a> {
    /// Unique event id (UUIDv7).
    pub event_id: Uuid,
    /// `<domain>.<entity>.<action>`.
    pub event_type: &'a str,
    /// The tenant; `None` only for `system.*` events.
    pub tenant_id: Option<&'a str>,
    /// When the fact happened, µs since the Unix epoch.
    pub occurred_at_micros: i64,
    /// When the producer emitted the event, µs since the Unix epoch.
    pub emitted_at_micros: i64,
    /// The producing service.
    pub source: &'a str,
    /// Semver of the payload contract.
    pub schema_version: &'a str,
    /// The flow this event belongs to.
    pub correlation_id: &'a str,
    /// The event that caused this one, when known.
    pub causation_id: Option<&'a str>,
    /// The partitioning key.
    pub partition_key: &'a str,
    /// Time to live in milliseconds, when set.
    pub ttl_millis: Option<u64>,
    /// The payload, still MessagePack (already checked to be well formed).
    pub payload_bytes: &'a [u8],
    record: &'a [u8],
}

/// A cursor over MessagePack bytes for [`EnvelopeRef::decode`].
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let slice = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }

    fn be(&mut self, n: usize) -> Option<u64> {
        Some(
            self.take(n)?
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        )
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn nil(&mut self) -> bool {
        if self.peek() == Some(0xc0) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn array_len(&mut self) -> Option<u64> {
        match self.byte()? {
            m @ 0x90..=0x9f => Some(u64::from(m & 0x0f)),
            0xdc => self.be(2),
            0xdd => self.be(4),
            _ => None,
        }
    }

    /// Any MessagePack integer, as i128 so every format fits.
    fn int(&mut self) -> Option<i128> {
        let m = self.byte()?;
        Some(match m {
            0x00..=0x7f => i128::from(m),
            0xe0..=0xff => i128::from(m as i8),
            0xcc => i128::from(self.be(1)?),
            0xcd => i128::from(self.be(2)?),
            0xce => i128::from(self.be(4)?),
            0xcf => i128::from(self.be(8)?),
            0xd0 => i128::from(self.be(1)? as u8 as i8),
            0xd1 => i128::from(self.be(2)? as u16 as i16),
            0xd2 => i128::from(self.be(4)? as u32 as i32),
            0xd3 => i128::from(self.be(8)? as i64),
            _ => return None,
        })
    }

    /// The raw bytes of a `str` or `bin` value.
    fn str_or_bin(&mut self) -> Option<(&'a [u8], bool)> {
        let m = self.byte()?;
        let (len, is_str) = match m {
            0xa0..=0xbf => (u64::from(m & 0x1f), true),
            0xd9 => (self.be(1)?, true),
            0xda => (self.be(2)?, true),
            0xdb => (self.be(4)?, true),
            0xc4 => (self.be(1)?, false),
            0xc5 => (self.be(2)?, false),
            0xc6 => (self.be(4)?, false),
            _ => return None,
        };
        Some((self.take(usize::try_from(len).ok()?)?, is_str))
    }

    /// A string field (rmp-serde also reads UTF-8 `bin` as a string).
    fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.str_or_bin()?.0).ok()
    }

    fn opt_str(&mut self) -> Option<Option<&'a str>> {
        if self.nil() {
            Some(None)
        } else {
            self.str().map(Some)
        }
    }
}

/// Checks one payload value the way decoding it into a JSON value would:
/// `nil`, `bool`, integers, floats, UTF-8 strings, arrays and maps with string
/// keys, nested within [`MAX_NESTING`] counting the envelope array; returns
/// where it ends. Iterative, so deep nesting costs no stack.
fn payload_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut c = Cursor { bytes, pos: start };
    // Per open container: (slots left, is a map). A map of n entries has 2n
    // slots; a slot is a key when the count left is even.
    let mut frames = [(0u64, false); MAX_NESTING];
    let mut depth = 0usize;
    loop {
        let key = match depth.checked_sub(1).and_then(|top| frames.get_mut(top)) {
            Some((left, is_map)) => {
                let key = *is_map && *left % 2 == 0;
                *left -= 1;
                key
            }
            None => false,
        };
        let m = c.peek()?;
        if key && !matches!(m, 0xa0..=0xbf | 0xd9..=0xdb) {
            return None;
        }
        let slots = match m {
            0x90..=0x9f | 0xdc | 0xdd => Some((c.array_len()?, false)),
            0x80..=0x8f => {
                c.pos += 1;
                Some((u64::from(m & 0x0f) * 2, true))
            }
            0xde => {
                c.pos += 1;
                Some((c.be(2)? * 2, true))
            }
            0xdf => {
                c.pos += 1;
                Some((c.be(4)? * 2, true))
            }
            0xc0 | 0xc2 | 0xc3 => {
                c.pos += 1;
                None
            }
            0xca => {
                c.take(5)?;
                None
            }
            0xcb => {
                c.take(9)?;
                None
            }
            0xa0..=0xbf | 0xd9..=0xdb => {
                std::str::from_utf8(c.str_or_bin()?.0).ok()?;
                None
            }
            0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3 => {
                c.int()?;
                None
            }
            _ => return None, // bin, ext and 0xc1 are not JSON
        };
        if let Some((n, is_map)) = slots {
            // Depth of this container: the envelope array is level 1.
            if depth + 2 > MAX_NESTING {
                return None;
            }
            if n > 0 {
                *frames.get_mut(depth)? = (n, is_map);
                depth += 1;
                continue;
            }
        }
        while depth > 0 && frames.get(depth - 1).is_some_and(|(left, _)| *left == 0) {
            depth -= 1;
        }
        if depth == 0 {
            return Some(c.pos);
        }
    }
}

impl<'a> EnvelopeRef<'a> {
    /// Decodes and validates one record written by [`Envelope::encode`]
    /// without copying: accepts and rejects exactly what
    /// [`Envelope::decode`] does, with the same error on rejection.
    pub fn decode(bytes: &'a [u8]) -> Result<EnvelopeRef<'a>, EnvelopeError> {
        match Self::fast(bytes) {
            Some(e) => Ok(e),
            // Let the full decoder name the problem.
            None => Err(match Envelope::decode(bytes) {
                Err(e) => e,
                Ok(_) => EnvelopeError::single(
                    "envelope",
                    "uses an encoding only Envelope::decode reads",
                ),
            }),
        }
    }

    fn fast(bytes: &'a [u8]) -> Option<EnvelopeRef<'a>> {
        let mut c = Cursor { bytes, pos: 0 };
        if c.array_len()? != WIRE_ELEMENTS as u64 || c.int()? != i128::from(LAYOUT_VERSION) {
            return None;
        }
        let (id, _) = c.str_or_bin()?;
        let event_id = Uuid::from_bytes(<[u8; 16]>::try_from(id).ok()?);
        check_event_id(&event_id).ok()?;
        let event_type = c.str()?;
        check_event_type(event_type).ok()?;
        let tenant_id = c.opt_str()?;
        check_tenant(tenant_id, Some(event_type)).ok()?;
        let occurred_at_micros = i64::try_from(c.int()?).ok()?;
        timestamp_from_micros(occurred_at_micros).ok()?;
        let emitted_at_micros = i64::try_from(c.int()?).ok()?;
        timestamp_from_micros(emitted_at_micros).ok()?;
        let source = c.str().filter(|s| !s.is_empty())?;
        let schema_version = c.str()?;
        schema_version.parse::<SchemaVersion>().ok()?;
        let correlation_id = c.str().filter(|s| !s.is_empty())?;
        let causation_id = c.opt_str()?;
        if causation_id == Some("") {
            return None;
        }
        let partition_key = c.str().filter(|s| !s.is_empty())?;
        let ttl_millis = if c.nil() {
            None
        } else {
            Some(u64::try_from(c.int()?).ok().filter(|&ms| ms > 0)?)
        };
        let start = c.pos;
        let end = payload_end(bytes, start)?;
        if end != bytes.len() {
            return None;
        }
        Some(EnvelopeRef {
            event_id,
            event_type,
            tenant_id,
            occurred_at_micros,
            emitted_at_micros,
            source,
            schema_version,
            correlation_id,
            causation_id,
            partition_key,
            ttl_millis,
            payload_bytes: bytes.get(start..end)?,
            record: bytes,
        })
    }

    /// The payload as a JSON value (decoded on demand).
    pub fn payload(&self) -> Result<Value, EnvelopeError> {
        let mut de = rmp_serde::Deserializer::from_read_ref(self.payload_bytes);
        de.set_max_depth(MAX_NESTING);
        Value::deserialize(&mut de)
            .map_err(|e| EnvelopeError::single("payload", format!("undecodable: {e}")))
    }

    /// The owned envelope (decodes the payload).
    pub fn to_envelope(&self) -> Result<Envelope, EnvelopeError> {
        Envelope::decode(self.record)
    }
}

// The peeks below read a few fields of a record without validating the
// others: records were validated by the producer that appended them. They
// agree with the full decoder in two ways, which the `state_decode` fuzz
// oracle (`fuzzing::record_peeks`) checks: on every record the decoder
// accepts, a peek returns what the decoder read, whatever encoding of the
// fields the decoder accepts (unusual ones fall back to the decoder); and a
// record that is not exactly one MessagePack value — bytes after the
// envelope array, or an array cut short — is not an envelope for them
// either (the decoder refuses it, naming the byte where the array ends).

/// Whether `record` is exactly one MessagePack value, as an envelope is: no
/// byte after it, none missing. One pass over the bytes, no allocation.
pub(crate) fn is_one_value(record: &[u8]) -> bool {
    value_len(record) == Some(record.len())
}

/// The `event_id` of an encoded envelope, read at its fixed position: every
/// writer emits `9D 01 C4 10` and the 16 id bytes first (layout v1). Other
/// encodings the decoder accepts (e.g. the id as a string) fall back to a
/// full decode; `None` when the bytes are not an envelope, which includes a
/// record with bytes after the envelope array.
pub(crate) fn peek_event_id(record: &[u8]) -> Option<Uuid> {
    match record {
        [0x9D, 0x01, 0xC4, 0x10, id @ ..] if id.len() >= 16 && is_one_value(record) => {
            Uuid::from_slice(&id[..16]).ok()
        }
        _ => EnvelopeRef::decode(record).ok().map(|e| e.event_id),
    }
}

/// The fields consumers route on — `event_id`, `tenant_id`, `emitted_at`,
/// `ttl` — read from an encoded layout-v1 envelope without validating the
/// others: records were validated by the producer that appended them, and
/// full validation would cost about half of a consumer's per-event time.
/// The one skimmer of the layout outside the full decoder; groups, queues
/// and their fuzz target use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EnvelopeHead<'a> {
    pub(crate) event_id: Uuid,
    pub(crate) tenant_id: Option<&'a str>,
    pub(crate) emitted_at_micros: i64,
    pub(crate) ttl_millis: Option<u64>,
}

impl<'a> EnvelopeHead<'a> {
    /// Skims `bytes`; `None` for anything unexpected (the caller then asks
    /// the full decoder, which names the problem).
    pub(crate) fn peek(bytes: &'a [u8]) -> Option<EnvelopeHead<'a>> {
        let mut p = Skim(bytes);
        if p.take(1)? != [0x9D] || p.int()? != 1 {
            return None;
        }
        let event_id = Uuid::from_slice(p.text()??).ok()?;
        p.text()??; // event_type
        let tenant_id = match p.text()? {
            Some(t) => Some(std::str::from_utf8(t).ok()?),
            None => None,
        };
        p.int()?; // occurred_at
        let emitted_at_micros = i64::try_from(p.int()?).ok()?;
        for _ in 0..5 {
            p.text()?; // source, schema_version, correlation_id, causation_id, partition_key
        }
        let ttl_millis = match p.0.first()? {
            0xC0 => None,
            _ => Some(u64::try_from(p.int()?).ok()?),
        };
        if !is_one_value(bytes) {
            return None;
        }
        Some(EnvelopeHead {
            event_id,
            tenant_id,
            emitted_at_micros,
            ttl_millis,
        })
    }

    /// The same fields from a fully decoded envelope.
    pub(crate) fn of(envelope: &EnvelopeRef<'a>) -> EnvelopeHead<'a> {
        EnvelopeHead {
            event_id: envelope.event_id,
            tenant_id: envelope.tenant_id,
            emitted_at_micros: envelope.emitted_at_micros,
            ttl_millis: envelope.ttl_millis,
        }
    }

    /// `emitted_at + ttl` in µs, when the event has a TTL.
    pub(crate) fn expires_at(&self) -> Option<i64> {
        let ttl = self.ttl_millis?;
        let ttl_micros = ttl.saturating_mul(1000).min(i64::MAX as u64) as i64;
        Some(self.emitted_at_micros.saturating_add(ttl_micros))
    }
}

/// The envelope's `ttl` in milliseconds: `Some(None)` when it has none,
/// `None` when the record is not an envelope (which includes a record with
/// bytes after the envelope array). Skips the fields before it without
/// decoding them: the per-event check of a consumer group, cheaper than
/// [`EnvelopeHead::peek`]. Encodings the skim does not follow (e.g. the id
/// as a string) fall back to the full decoder, so a TTL the decoder sees is
/// never missed.
pub(crate) fn peek_ttl_millis(record: &[u8]) -> Option<Option<u64>> {
    match skim_ttl_millis(record) {
        Some(ttl) if is_one_value(record) => Some(ttl),
        _ => EnvelopeRef::decode(record).ok().map(|e| e.ttl_millis),
    }
}

/// [`peek_ttl_millis`] for the layout every writer emits: `9D 01 C4 10`, the
/// id, nine str/nil/int fields, the ttl. `None` for anything else.
fn skim_ttl_millis(record: &[u8]) -> Option<Option<u64>> {
    let rest = record.strip_prefix(&[0x9D, 0x01, 0xC4, 0x10])?;
    let mut p = Skim(rest.get(16..)?);
    // event-type tenant-id occurred-at emitted-at source schema-version
    // correlation-id causation-id partition-key, then ttl.
    for _ in 0..9 {
        p.skip_scalar()?;
    }
    let marker = p.take(1)?[0];
    let ttl = match marker {
        0xC0 => return Some(None),
        0x01..=0x7F => u64::from(marker),
        0xCC..=0xCF => p.be(1 << (marker - 0xCC))?,
        _ => return None,
    };
    // A ttl of 0 is no envelope's (the decoder names it); not skimmed.
    (ttl > 0).then_some(Some(ttl))
}

/// A cursor over MessagePack bytes for the peeks above.
struct Skim<'a>(&'a [u8]);

impl<'a> Skim<'a> {
    /// Steps over one str, nil or integer without decoding it.
    fn skip_scalar(&mut self) -> Option<()> {
        let marker = self.take(1)?[0];
        let skip = match marker {
            0xA0..=0xBF => usize::from(marker & 0x1F),
            0xD9 => self.be(1)? as usize,
            0xDA => self.be(2)? as usize,
            0xDB => self.be(4)? as usize,
            0xC0 | 0x00..=0x7F | 0xE0..=0xFF => 0,
            0xCC | 0xD0 => 1,
            0xCD | 0xD1 => 2,
            0xCE | 0xD2 => 4,
            0xCF | 0xD3 => 8,
            _ => return None,
        };
        self.take(skip).map(drop)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn be(&mut self, n: usize) -> Option<u64> {
        Some(
            self.take(n)?
                .iter()
                .fold(0u64, |v, &b| v << 8 | u64::from(b)),
        )
    }

    fn int(&mut self) -> Option<i128> {
        let tag = self.take(1)?[0];
        Some(match tag {
            0x00..=0x7F => i128::from(tag),
            0xE0..=0xFF => i128::from(tag as i8),
            0xCC => i128::from(self.be(1)?),
            0xCD => i128::from(self.be(2)?),
            0xCE => i128::from(self.be(4)?),
            0xCF => i128::from(self.be(8)?),
            0xD0 => i128::from(self.be(1)? as u8 as i8),
            0xD1 => i128::from(self.be(2)? as u16 as i16),
            0xD2 => i128::from(self.be(4)? as u32 as i32),
            0xD3 => i128::from(self.be(8)? as i64),
            _ => return None,
        })
    }

    /// A str (or bin, which readers accept for str) or nil.
    fn text(&mut self) -> Option<Option<&'a [u8]>> {
        let tag = self.take(1)?[0];
        let len = match tag {
            0xC0 => return Some(None),
            0xA0..=0xBF => usize::from(tag & 0x1F),
            0xC4 | 0xD9 => self.be(1)? as usize,
            0xC5 | 0xDA => self.be(2)? as usize,
            0xC6 | 0xDB => self.be(4)? as usize,
            _ => return None,
        };
        self.take(len).map(Some)
    }
}

/// Direct MessagePack writers, shortest form first, as `rmp` writes them.
mod mp {
    use serde_json::Value;

    pub(super) fn uint(out: &mut Vec<u8>, v: u64) {
        if v < 128 {
            out.push(v as u8);
        } else if v < 256 {
            out.extend_from_slice(&[0xcc, v as u8]);
        } else if v < 65_536 {
            out.push(0xcd);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        } else if v < 4_294_967_296 {
            out.push(0xce);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }

    pub(super) fn sint(out: &mut Vec<u8>, v: i64) {
        if v >= 0 {
            uint(out, v as u64);
        } else if v >= -32 {
            out.push(v as i8 as u8);
        } else if v >= -128 {
            out.extend_from_slice(&[0xd0, v as i8 as u8]);
        } else if v >= -32_768 {
            out.push(0xd1);
            out.extend_from_slice(&(v as i16).to_be_bytes());
        } else if v >= -2_147_483_648 {
            out.push(0xd2);
            out.extend_from_slice(&(v as i32).to_be_bytes());
        } else {
            out.push(0xd3);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }

    fn len_header(out: &mut Vec<u8>, len: usize, fix: u8, fix_max: usize, m16: u8, m32: u8) {
        if len < fix_max {
            out.push(fix | len as u8);
        } else if len < 65_536 {
            out.push(m16);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(m32);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }

    pub(super) fn str(out: &mut Vec<u8>, s: &str) {
        let len = s.len();
        if (32..256).contains(&len) {
            out.extend_from_slice(&[0xd9, len as u8]);
        } else {
            len_header(out, len, 0xa0, 32, 0xda, 0xdb);
        }
        out.extend_from_slice(s.as_bytes());
    }

    pub(super) fn opt_str(out: &mut Vec<u8>, s: Option<&str>) {
        match s {
            Some(s) => str(out, s),
            None => out.push(0xc0),
        }
    }

    pub(super) fn value(out: &mut Vec<u8>, v: &Value) {
        match v {
            Value::Null => out.push(0xc0),
            Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    uint(out, u);
                } else if let Some(i) = n.as_i64() {
                    sint(out, i);
                } else {
                    out.push(0xcb);
                    out.extend_from_slice(&n.as_f64().unwrap_or(f64::NAN).to_be_bytes());
                }
            }
            Value::String(s) => str(out, s),
            Value::Array(a) => {
                len_header(out, a.len(), 0x90, 16, 0xdc, 0xdd);
                for item in a {
                    value(out, item);
                }
            }
            Value::Object(m) => {
                len_header(out, m.len(), 0x80, 16, 0xde, 0xdf);
                for (k, item) in m {
                    str(out, k);
                    value(out, item);
                }
            }
        }
    }
}

/// Byte length of the first MessagePack value in `bytes` (with everything it
/// contains), or `None` when `bytes` ends inside it or holds the never-used
/// marker `0xC1`. Iterative: the nesting depth costs no stack.
fn value_len(bytes: &[u8]) -> Option<usize> {
    let byte = |at: usize| bytes.get(at).copied().map(usize::from);
    let be = |at: usize, n: usize| -> Option<usize> {
        let slice = bytes.get(at..at.checked_add(n)?)?;
        Some(
            slice
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b)),
        )
    };
    let mut pos = 0usize;
    // Values still to be read.
    let mut pending = 1usize;
    while pending > 0 {
        pending -= 1;
        let marker = byte(pos)?;
        pos += 1;
        // (bytes to skip after the marker, child values)
        let (skip, children) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * (marker & 0x0f)),
            0x90..=0x9f => (0, marker & 0x0f),
            0xa0..=0xbf => (marker & 0x1f, 0),
            0xc4 | 0xd9 => (1 + be(pos, 1)?, 0),
            0xc5 | 0xda => (2 + be(pos, 2)?, 0),
            0xc6 | 0xdb => (4 + be(pos, 4)?, 0),
            0xc7 => (2 + be(pos, 1)?, 0),
            0xc8 => (3 + be(pos, 2)?, 0),
            0xc9 => (5 + be(pos, 4)?, 0),
            0xca => (4, 0),
            0xcb => (8, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xce | 0xd2 => (4, 0),
            0xcf | 0xd3 => (8, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => (2, be(pos, 2)?),
            0xdd => (4, be(pos, 4)?),
            0xde => (2, 2 * be(pos, 2)?),
            0xdf => (4, 2 * be(pos, 4)?),
            _ => return None, // 0xc1 is never used
        };
        pos = pos.checked_add(skip)?;
        if pos > bytes.len() {
            return None;
        }
        pending = pending.checked_add(children)?;
    }
    Some(pos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn direct_encoding_is_byte_identical_to_rmp_serde() {
        fn reference(e: &Envelope) -> Vec<u8> {
            let mut out = Vec::new();
            Wire(e)
                .serialize(&mut rmp_serde::Serializer::new(&mut out))
                .unwrap();
            out
        }
        let mut generator = crate::fixtures::FixtureGenerator::new(3, 9);
        for e in generator.mixed().take(300) {
            assert_eq!(e.to_bytes(), reference(&e));
        }
        let mut e = Envelope::from_json(BILLING.as_bytes()).unwrap();
        let mut numbers = vec![
            json!(0),
            json!(-1),
            json!(1.5),
            json!(f64::MIN_POSITIVE),
            json!(u64::MAX),
            json!(i64::MIN),
        ];
        for edge in [
            31i64,
            32,
            127,
            128,
            255,
            256,
            65_535,
            65_536,
            4_294_967_295,
            4_294_967_296,
        ] {
            numbers.push(json!(edge));
            numbers.push(json!(-edge));
        }
        let strings: Vec<Value> = [0usize, 31, 32, 255, 256, 65_535, 65_536]
            .iter()
            .map(|&n| json!("x".repeat(n)))
            .collect();
        let big_map: serde_json::Map<String, Value> =
            (0..70_000).map(|i| (format!("k{i}"), json!(i))).collect();
        e.payload = json!({
            "numbers": numbers,
            "strings": strings,
            "nested": {"a": [[], {}, [null, true, false]], "b": {"c": {"d": 1}}},
            "array15": vec![1; 15], "array16": vec![1; 16], "array70000": vec![0; 70_000],
            "big": big_map,
        });
        e.ttl = Ttl::from_millis(300_000);
        e.causation_id = Some("cause".into());
        e.tenant_id = None;
        e.event_type = "system.node.started".into();
        assert_eq!(e.to_bytes(), reference(&e));
        assert_eq!(Envelope::decode(&e.to_bytes()).unwrap().payload, e.payload);
    }

    const BILLING: &str = r#"{
      "event_id": "0194a5c1-3f24-7b7a-bc59-5f23d81f5b1a",
      "event_type": "billing.invoice.issued",
      "tenant_id": "tenant-123",
      "occurred_at": "2026-06-10T12:30:00Z",
      "emitted_at": "2026-06-10T12:30:01Z",
      "source": "billing-service",
      "schema_version": "1.2.0",
      "correlation_id": "flow-789",
      "partition_key": "tenant-123",
      "payload": {"invoice_id": "inv-456", "amount": 12500, "line_items": 8}
    }"#;

    fn billing_value() -> Value {
        serde_json::from_str(BILLING).unwrap()
    }

    fn with(field: &str, value: Value) -> Vec<u8> {
        let mut v = billing_value();
        v[field] = value;
        serde_json::to_vec(&v).unwrap()
    }

    fn without(field: &str) -> Vec<u8> {
        let mut v = billing_value();
        v.as_object_mut().unwrap().shift_remove(field);
        serde_json::to_vec(&v).unwrap()
    }

    fn rejected_field(json: &[u8], field: &str) -> EnvelopeError {
        let err = Envelope::from_json(json).unwrap_err();
        assert!(
            err.problem(field).is_some(),
            "expected a problem for {field}, got: {err}"
        );
        err
    }

    #[test]
    fn seed_parses_and_round_trips() {
        let env = Envelope::from_json(BILLING.as_bytes()).unwrap();
        env.validate().unwrap();
        assert_eq!(env.to_json_value(), billing_value());
        let text: Value = serde_json::from_slice(&env.to_json()).unwrap();
        assert_eq!(text, billing_value());
        assert_eq!(Envelope::decode(&env.to_bytes()).unwrap(), env);
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<(&str, Value)> = vec![
            ("event_id", json!("0194a5c1-3f24-4b7a-bc59-5f23d81f5b1a")), // v4
            ("event_id", json!("not-a-uuid")),
            ("event_id", json!("0194a5c13f247b7abc595f23d81f5b1a")), // unhyphenated
            ("event_id", json!("0194a5c1-3f24-7b7a-1c59-5f23d81f5b1a")), // NCS variant
            ("event_id", json!(42)),
            ("event_type", json!("billing.invoice")),
            ("event_type", json!("billing.Invoice.issued")),
            ("event_type", json!("billing.invoice.issued.extra")),
            ("event_type", json!("billing..issued")),
            ("event_type", json!("1billing.invoice.issued")),
            ("tenant_id", json!(null)),
            ("tenant_id", json!("")),
            ("tenant_id", json!(7)),
            ("occurred_at", json!("2026-06-10")),
            ("occurred_at", json!("2026-06-10T12:30Z")),
            ("occurred_at", json!("20260610T123000Z")),
            ("occurred_at", json!("2026-06-10T12:30:00")),
            ("occurred_at", json!("2026-02-30T12:30:00Z")),
            ("occurred_at", json!("0000-01-01T00:00:00+01:00")),
            ("emitted_at", json!("2026-06-10T12:30:00+00:00[UTC]")),
            ("emitted_at", json!(1_781_094_600)),
            ("source", json!("")),
            ("source", json!(null)),
            ("schema_version", json!("1.2")),
            ("schema_version", json!("01.2.0")),
            ("schema_version", json!("1.2.0-")),
            ("schema_version", json!("1.2.0-01")),
            ("schema_version", json!("v1.2.0")),
            ("correlation_id", json!("")),
            ("causation_id", json!("")),
            ("causation_id", json!(5)),
            ("partition_key", json!("")),
            ("ttl", json!("0s")),
            ("ttl", json!("30")),
            ("ttl", json!("1w")),
            ("ttl", json!("P1M")),
            ("ttl", json!(30)),
        ];
        for (field, value) in cases {
            let err = rejected_field(&with(field, value.clone()), field);
            assert_eq!(err.problems.len(), 1, "{field}={value}: {err}");
        }
    }

    #[test]
    fn missing_required_fields_are_named() {
        for field in [
            "event_id",
            "event_type",
            "tenant_id",
            "occurred_at",
            "emitted_at",
            "source",
            "schema_version",
            "correlation_id",
            "partition_key",
            "payload",
        ] {
            rejected_field(&without(field), field);
        }
    }

    #[test]
    fn all_problems_reported_together_in_field_order() {
        let mut v = billing_value();
        v["event_type"] = json!("Billing.invoice");
        v["tenant_id"] = json!(null);
        v["occurred_at"] = json!("yesterday");
        v["ttl"] = json!("forever");
        v["extra"] = json!(1);
        let err = Envelope::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        let fields: Vec<&str> = err.fields().collect();
        assert_eq!(
            fields,
            ["extra", "event_type", "tenant_id", "occurred_at", "ttl"]
        );
        let text = err.to_string();
        assert!(
            text.starts_with("invalid envelope: extra: unknown field"),
            "{text}"
        );
        assert!(
            text.contains("; event_type: must be <domain>.<entity>.<action>"),
            "{text}"
        );
        assert!(text.contains("; tenant_id: required unless"), "{text}");
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let json = BILLING.replacen(
            "\"tenant_id\": \"tenant-123\",",
            "\"tenant_id\": \"tenant-123\", \"tenant_id\": \"tenant-999\",",
            1,
        );
        let err = rejected_field(json.as_bytes(), "tenant_id");
        assert_eq!(err.problems.len(), 1, "{err}");
    }

    #[test]
    fn not_an_object() {
        for text in ["[]", "null", "", "{", "{\"a\":1} x", "\u{0}"] {
            rejected_field(text.as_bytes(), "envelope");
        }
        assert!(Envelope::from_json_value(json!([1])).is_err());
    }

    #[test]
    fn system_events_may_omit_tenant() {
        let mut v = billing_value();
        v["event_type"] = json!("system.partition.rebalanced");
        v["tenant_id"] = json!(null);
        let env = Envelope::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(env.tenant_id, None);
        assert_eq!(env.to_json_value()["tenant_id"], Value::Null);
        v.as_object_mut().unwrap().shift_remove("tenant_id");
        let env2 = Envelope::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(env, env2);
        assert_eq!(Envelope::decode(&env.to_bytes()).unwrap(), env);
    }

    #[test]
    fn optional_fields_written_only_when_present() {
        let mut env = Envelope::from_json(BILLING.as_bytes()).unwrap();
        let v = env.to_json_value();
        assert!(v.get("causation_id").is_none() && v.get("ttl").is_none());
        env.causation_id = Some("evt-1".into());
        env.ttl = Ttl::from_millis(90_000);
        let v = env.to_json_value();
        assert_eq!(v["causation_id"], json!("evt-1"));
        assert_eq!(v["ttl"], json!("90s"));
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, FIELD_NAMES.iter().collect::<Vec<_>>());
        assert_eq!(Envelope::from_json(&env.to_json()).unwrap(), env);
    }

    #[test]
    fn timestamps_keep_microseconds_and_normalise_to_utc() {
        let cases = [
            ("2026-06-10T12:30:00Z", "2026-06-10T12:30:00Z"),
            ("2026-06-10T12:30:00.123456Z", "2026-06-10T12:30:00.123456Z"),
            (
                "2026-06-10T12:30:00.1234569Z",
                "2026-06-10T12:30:00.123456Z",
            ),
            ("2026-06-10T12:30:00.500Z", "2026-06-10T12:30:00.5Z"),
            ("2026-06-10T14:30:00+02:00", "2026-06-10T12:30:00Z"),
            ("2026-06-10t12:30:00z", "2026-06-10T12:30:00Z"),
            ("2026-06-10 12:30:00Z", "2026-06-10T12:30:00Z"),
            (
                "1969-12-31T23:59:59.9999999Z",
                "1969-12-31T23:59:59.999999Z",
            ),
            ("0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z"),
        ];
        for (input, output) in cases {
            let env = Envelope::from_json(&with("occurred_at", json!(input))).unwrap();
            assert_eq!(env.to_json_value()["occurred_at"], json!(output), "{input}");
            assert_eq!(Envelope::decode(&env.to_bytes()).unwrap(), env, "{input}");
        }
    }

    #[test]
    fn floor_rounds_toward_the_past() {
        let ts = Timestamp::new(-1, -1).unwrap(); // 1 ns before -1 s
        assert_eq!(micros_of(ts), -1_000_001);
        assert_eq!(micros_of(Timestamp::new(1, 999).unwrap()), 1_000_000);
    }

    #[test]
    fn ttl_forms() {
        let cases = [
            ("250ms", 250, "250ms"),
            ("30s", 30_000, "30s"),
            ("5m", 300_000, "5m"),
            ("1h", 3_600_000, "1h"),
            ("2d", 172_800_000, "2d"),
            ("90s", 90_000, "90s"),
            ("1500ms", 1_500, "1500ms"),
            ("60m", 3_600_000, "1h"),
            ("PT30S", 30_000, "30s"),
            ("PT0.25S", 250, "250ms"),
            ("PT1.5S", 1_500, "1500ms"),
            ("P2D", 172_800_000, "2d"),
            ("PT1H30M", 5_400_000, "90m"),
            ("P1DT1S", 86_401_000, "86401s"),
        ];
        for (input, millis, canonical) in cases {
            let ttl: Ttl = input.parse().unwrap();
            assert_eq!(ttl.as_millis(), millis, "{input}");
            assert_eq!(ttl.to_string(), canonical, "{input}");
            assert_eq!(canonical.parse::<Ttl>().unwrap(), ttl);
        }
        for bad in [
            "",
            "0ms",
            "PT0S",
            "P",
            "PT",
            "s",
            "5",
            "-5s",
            "5 s",
            "5S",
            "1y",
            "PT1S1M",
            "PT1M1M",
            "PT0.2500S",
            "PT1.S",
            "PT.5S",
            "P1H",
            "pt1s",
            "PT1.5M",
            "99999999999999999999d",
            "999999999999999d",
        ] {
            assert!(bad.parse::<Ttl>().is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(Ttl::from_millis(0), None);
        assert_eq!(
            Ttl::from_millis(1_500).unwrap().as_duration(),
            Duration::from_millis(1_500)
        );
    }

    #[test]
    fn schema_versions() {
        for good in [
            "0.0.0",
            "1.2.0",
            "10.20.30",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-0.3.7",
            "1.0.0-x.7.z.92",
            "1.0.0-alpha+001",
            "1.0.0+20130313144700",
            "1.0.0-beta+exp.sha.5114f85",
            "1.0.0-alpha-a.b-c",
            "1.0.0+21AF26D3----117B344092BD",
        ] {
            let v: SchemaVersion = good.parse().unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(v.to_string(), good);
        }
        let v: SchemaVersion = "1.2.3-rc.1+build.5".parse().unwrap();
        assert_eq!((v.major(), v.minor(), v.patch()), (1, 2, 3));
        assert_eq!(v.pre_release(), Some("rc.1"));
        assert_eq!(v.build(), Some("build.5"));
        assert_eq!(SchemaVersion::new(2, 0, 0).as_str(), "2.0.0");
        assert_eq!(SchemaVersion::new(2, 0, 0).pre_release(), None);
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "1.2.3-",
            "1.2.3+",
            "1.2.3-01",
            "1.2.3-a..b",
            "1.2.3+a+b",
            "1.2.3-é",
            " 1.2.3",
            "a.b.c",
            "-1.2.3",
            "99999999999999999999.0.0",
        ] {
            assert!(
                bad.parse::<SchemaVersion>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn validate_reports_every_field() {
        let mut env = Envelope::from_json(BILLING.as_bytes()).unwrap();
        env.event_id = Uuid::nil();
        env.event_type = "billing".into();
        env.tenant_id = None;
        env.occurred_at = Timestamp::MIN;
        env.source.clear();
        env.correlation_id.clear();
        env.causation_id = Some(String::new());
        env.partition_key.clear();
        let err = env.validate().unwrap_err();
        let fields: Vec<&str> = err.fields().collect();
        assert_eq!(
            fields,
            [
                "event_id",
                "event_type",
                "tenant_id",
                "occurred_at",
                "source",
                "correlation_id",
                "causation_id",
                "partition_key"
            ]
        );
        // What validate rejects, decode rejects too.
        let decoded = Envelope::decode(&env.to_bytes()).unwrap_err();
        assert_eq!(decoded.fields().collect::<Vec<_>>(), fields);
    }

    #[test]
    fn event_id_from_parts_is_v7() {
        let id = Envelope::event_id_from_parts(0x0194_a5c1_3f24, 0xb7a, 0x3c59_5f23_d81f_5b1a);
        assert_eq!(id.to_string(), "0194a5c1-3f24-7b7a-bc59-5f23d81f5b1a");
        assert_eq!(id.get_version_num(), 7);
        let id = Envelope::event_id_from_parts(u64::MAX, u16::MAX, u64::MAX);
        assert!(check_event_id(&id).is_ok());
        assert!(check_event_id(&Envelope::new_event_id()).is_ok());
    }

    #[test]
    fn binary_layout_prefix_is_as_documented() {
        let env = Envelope::from_json(BILLING.as_bytes()).unwrap();
        let bytes = env.to_bytes();
        assert_eq!(bytes.first(), Some(&0x9D));
        assert_eq!(bytes.get(1), Some(&0x01));
        assert_eq!(bytes.get(2..4), Some(&[0xC4, 0x10][..]));
        assert_eq!(bytes.get(4..20), Some(&env.event_id.as_bytes()[..]));
        assert_eq!(bytes.get(20), Some(&(0xA0 | 22))); // fixstr "billing.invoice.issued"
    }

    #[test]
    fn encode_appends_and_reuses_the_buffer() {
        let env = Envelope::from_json(BILLING.as_bytes()).unwrap();
        let one = env.to_bytes();
        let mut buf = b"xy".to_vec();
        env.encode(&mut buf);
        assert_eq!(buf.get(2..), Some(&one[..]));
        buf.clear();
        let capacity = buf.capacity();
        env.encode(&mut buf);
        assert_eq!(buf, one);
        assert_eq!(buf.capacity(), capacity);
    }

    #[test]
    fn decode_rejects_malformed_records() {
        let env = Envelope::from_json(BILLING.as_bytes()).unwrap();
        let good = env.to_bytes();

        let mut trailing = good.clone();
        trailing.push(0xC0);
        assert!(
            Envelope::decode(&trailing)
                .unwrap_err()
                .problem("envelope")
                .is_some()
        );

        let mut version = good.clone();
        if let Some(b) = version.get_mut(1) {
            *b = 0x02;
        }
        let err = Envelope::decode(&version).unwrap_err();
        assert!(err.problem("layout_version").is_some(), "{err}");

        let mut extra = good.clone();
        if let Some(b) = extra.get_mut(0) {
            *b = 0x9E;
        }
        extra.push(0xC0);
        assert!(Envelope::decode(&extra).is_err());

        let mut short = good.clone();
        if let Some(b) = short.get_mut(0) {
            *b = 0x9C;
        }
        assert!(Envelope::decode(&short).is_err());

        for cut in 0..good.len() {
            assert!(
                Envelope::decode(good.get(..cut).unwrap()).is_err(),
                "cut at {cut}"
            );
        }

        // A wrong type is reported against the field being read.
        let mut wrong_type = good.clone();
        if let Some(b) = wrong_type.get_mut(20) {
            *b = 0x05; // event_type replaced by an int (the rest is garbage)
        }
        assert!(
            Envelope::decode(&wrong_type)
                .unwrap_err()
                .problem("event_type")
                .is_some()
        );
    }

    #[test]
    fn decode_limits_nesting() {
        // MAX_NESTING arrays in the payload plus the envelope array: one too many.
        let mut deep = json!(1);
        for _ in 0..MAX_NESTING {
            deep = json!([deep]);
        }
        let mut env = Envelope::from_json(BILLING.as_bytes()).unwrap();
        env.payload = deep.clone();
        let err = Envelope::decode(&env.to_bytes()).unwrap_err();
        assert!(err.problem("payload").is_some(), "{err}");
        env.payload = deep.as_array().unwrap().first().unwrap().clone();
        assert_eq!(Envelope::decode(&env.to_bytes()).unwrap(), env);
    }

    #[test]
    fn deepest_json_payload_survives_binary() {
        // serde_json refuses 128 levels; find the deepest payload it accepts.
        let mut depth = 0;
        let mut accepted = None;
        loop {
            let payload = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            let text = BILLING.replace(
                r#""payload": {"invoice_id": "inv-456", "amount": 12500, "line_items": 8}"#,
                &format!(r#""payload": {payload}"#),
            );
            match Envelope::from_json(text.as_bytes()) {
                Ok(env) => accepted = Some(env),
                Err(_) => break,
            }
            depth += 1;
        }
        let env = accepted.unwrap();
        assert!(depth > 100, "{depth}");
        assert_eq!(Envelope::decode(&env.to_bytes()).unwrap(), env);
    }

    #[test]
    fn json_floats_round_trip_exactly() {
        // Found by proptest: without serde_json's `float_roundtrip` feature
        // this parses back one unit in the last place off.
        let mut env = Envelope::from_json(BILLING.as_bytes()).unwrap();
        env.payload = json!([
            3.790_497_541_858_391_5e-90,
            0.1,
            f64::MAX,
            f64::MIN_POSITIVE
        ]);
        let back = Envelope::from_json(&env.to_json()).unwrap();
        assert_eq!(back.payload, env.payload);
    }

    #[test]
    fn numbers_keep_their_kind_through_binary() {
        let mut env = Envelope::from_json(BILLING.as_bytes()).unwrap();
        env.payload = json!({"i": -5, "u": u64::MAX, "f": 1.0, "g": -0.5, "big": i64::MIN, "z": 0});
        let back = Envelope::decode(&env.to_bytes()).unwrap();
        assert_eq!(back.payload, env.payload);
        assert!(back.payload["f"].is_f64() && back.payload["i"].is_i64());
        assert!(back.payload["u"].is_u64() && back.payload["z"].is_u64());
        assert_eq!(
            String::from_utf8(back.to_json())
                .unwrap()
                .rsplit_once("\"payload\":")
                .unwrap()
                .1,
            r#"{"i":-5,"u":18446744073709551615,"f":1.0,"g":-0.5,"big":-9223372036854775808,"z":0}}"#
        );
    }
}

/// The skim peeks against the full decoder (moved from the consumer groups,
/// their first user).
#[cfg(test)]
mod head_tests {
    use super::{EnvelopeHead, EnvelopeRef, peek_event_id, peek_ttl_millis};
    use crate::envelope::{Envelope, Ttl};
    use crate::produce::producer::Draft;
    use serde_json::json;

    fn encoded(ttl: Option<u64>, tenant: Option<&str>, event_type: &str) -> (Envelope, Vec<u8>) {
        let mut draft = Draft::new(event_type, tenant, json!({"k": "v".repeat(300)}));
        if let Some(ms) = ttl {
            draft = draft.ttl(Ttl::from_millis(ms).unwrap());
        }
        let mut value = draft.members().clone();
        value.insert("event_id".into(), json!(uuid::Uuid::now_v7().to_string()));
        value.insert("emitted_at".into(), json!("2026-06-10T12:00:00Z"));
        value.insert("occurred_at".into(), json!("2026-06-10T12:00:00Z"));
        value.insert("source".into(), json!("s".repeat(40)));
        value.insert("correlation_id".into(), json!("c"));
        value.insert("partition_key".into(), json!("k".repeat(300)));
        let envelope = Envelope::from_json_value(serde_json::Value::Object(value)).unwrap();
        let mut bytes = Vec::new();
        envelope.encode(&mut bytes);
        (envelope, bytes)
    }

    #[test]
    fn peeks_agree_with_the_full_decoder() {
        for ttl in [
            None,
            Some(1),
            Some(127),
            Some(128),
            Some(70_000),
            Some(5_000_000_000),
        ] {
            for tenant in [None, Some("tenant-1")] {
                let event_type = if tenant.is_some() {
                    "billing.invoice.issued"
                } else {
                    "system.node.up"
                };
                let (envelope, bytes) = encoded(ttl, tenant, event_type);
                assert_eq!(
                    peek_ttl_millis(&bytes),
                    Some(envelope.ttl.map(Ttl::as_millis))
                );
                assert_eq!(peek_event_id(&bytes), Some(envelope.event_id));
            }
        }
        assert_eq!(peek_ttl_millis(b"not an envelope"), None);
        assert_eq!(peek_event_id(b""), None);
    }

    #[test]
    fn a_ttl_the_decoder_reads_is_never_missed_by_a_peek() {
        // The id written as a 16-byte str (D9 10) instead of bin (C4 10):
        // the decoder reads it (found by the state_decode fuzzer).
        let (envelope, mut bytes) =
            encoded(Some(70_000), Some("tenant-1"), "billing.invoice.issued");
        assert_eq!(bytes.get(2..4), Some(&[0xC4, 0x10][..]));
        bytes[2] = 0xD9;
        let full = EnvelopeRef::decode(&bytes).unwrap();
        assert_eq!(full.ttl_millis, Some(70_000));
        assert_eq!(peek_ttl_millis(&bytes), Some(Some(70_000)));
        assert_eq!(peek_event_id(&bytes), Some(envelope.event_id));
        let head = EnvelopeHead::peek(&bytes).unwrap();
        assert_eq!(head, EnvelopeHead::of(&full));
    }

    #[test]
    fn bytes_after_the_envelope_make_the_record_no_envelope_for_decoder_and_peeks() {
        let (_, good) = encoded(Some(5), None, "system.node.up");
        for extra in [&[0xC0][..], &[0x00, 0x01], b"garbage"] {
            let mut bytes = good.clone();
            bytes.extend_from_slice(extra);
            let err = EnvelopeRef::decode(&bytes).unwrap_err();
            let problem = err.problem("envelope").unwrap().to_string();
            assert!(
                problem.contains(&format!(
                    "{} trailing byte(s) after the envelope array, from byte {}",
                    extra.len(),
                    good.len()
                )),
                "{problem}"
            );
            assert!(Envelope::decode(&bytes).is_err());
            assert_eq!(peek_ttl_millis(&bytes), None);
            assert_eq!(peek_event_id(&bytes), None);
            assert_eq!(EnvelopeHead::peek(&bytes), None);
        }
        // What the encoder writes is exactly one envelope.
        assert!(super::is_one_value(&good));
        assert_eq!(peek_ttl_millis(&good), Some(Some(5)));
    }
}
