//! The field rules, shared by JSON parsing, binary decoding and
//! [`Envelope::validate`](super::Envelope::validate), and the one place
//! checked fields are assembled into an [`Envelope`].
//!
//! This file owns what makes each field valid and the microsecond timestamp
//! contract; it must never accept a value a rule rejects, never panic on
//! untrusted text, and never echo more than 64 characters of it.

use jiff::Timestamp;
use serde_json::Value;
use uuid::Uuid;

use super::errors::Problems;
use super::{Envelope, EnvelopeError, FIELD_NAMES, FieldProblem, SchemaVersion, Ttl};

/// `0000-01-01T00:00:00Z`, the earliest instant RFC 3339 can write.
const EARLIEST: Timestamp = Timestamp::constant(-62_167_219_200, 0);

/// At most 64 characters of untrusted input, quoted and escaped, for messages.
pub(super) fn quoted(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((cut, _)) => format!("{:?}...", s.get(..cut).unwrap_or_default()),
        None => format!("{s:?}"),
    }
}

pub(super) fn check_event_id(id: &Uuid) -> Result<(), String> {
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

pub(super) fn check_event_type(event_type: &str) -> Result<(), String> {
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

pub(super) fn check_tenant(
    tenant_id: Option<&str>,
    event_type: Option<&str>,
) -> Result<(), String> {
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

pub(super) fn check_non_empty(value: &str) -> Result<(), String> {
    if value.is_empty() {
        Err("must be non-empty".to_owned())
    } else {
        Ok(())
    }
}

pub(super) fn check_timestamp(ts: Timestamp) -> Result<(), String> {
    if ts < EARLIEST {
        Err(format!(
            "must lie in years 0000 to 9999 to be written as RFC 3339, got {ts}"
        ))
    } else {
        Ok(())
    }
}

/// `ts` with digits finer than a microsecond dropped, rounding toward the past.
pub(super) fn floor_to_micros(ts: Timestamp) -> Timestamp {
    let micros = micros_of(ts);
    // In range: flooring moves at most 999 ns toward the past, and jiff's
    // minimum is a whole second.
    Timestamp::from_microsecond(micros).unwrap_or(ts)
}

/// Whole microseconds since the Unix epoch, rounded toward the past.
pub(super) fn micros_of(ts: Timestamp) -> i64 {
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
pub(super) fn parse_timestamp(s: &str) -> Result<Timestamp, String> {
    check_rfc3339_shape(s)?;
    let ts: Timestamp = s
        .parse()
        .map_err(|e| format!("not a valid RFC 3339 timestamp ({e}), got {}", quoted(s)))?;
    check_timestamp(ts)?;
    Ok(floor_to_micros(ts))
}

pub(super) fn parse_event_id(s: &str) -> Result<Uuid, String> {
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

pub(super) fn timestamp_from_micros(micros: i64) -> Result<Timestamp, String> {
    let ts = Timestamp::from_microsecond(micros)
        .map_err(|_| format!("{micros} microseconds since the epoch is out of range"))?;
    check_timestamp(ts)?;
    Ok(ts)
}

/// Every field after parsing, `None` where parsing failed (and a problem was recorded).
pub(super) struct Parts {
    pub(super) event_id: Option<Uuid>,
    pub(super) event_type: Option<String>,
    pub(super) tenant_id: Option<Option<String>>,
    pub(super) occurred_at: Option<Timestamp>,
    pub(super) emitted_at: Option<Timestamp>,
    pub(super) source: Option<String>,
    pub(super) schema_version: Option<SchemaVersion>,
    pub(super) correlation_id: Option<String>,
    pub(super) causation_id: Option<Option<String>>,
    pub(super) partition_key: Option<String>,
    pub(super) ttl: Option<Option<Ttl>>,
    pub(super) payload: Option<Value>,
}

/// Builds the envelope if nothing failed, else reports the problems in field order.
pub(super) fn finish(mut p: Problems, parts: Parts) -> Result<Envelope, EnvelopeError> {
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

/// Orders problems by the field order of the layout (unknown names first, stable).
fn sort_by_field_order(problems: &mut [FieldProblem]) {
    problems.sort_by_key(|p| {
        FIELD_NAMES
            .iter()
            .position(|name| p.field == *name)
            .map_or(0, |i| i + 1)
    });
}
