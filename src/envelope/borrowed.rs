//! [`EnvelopeRef`], the borrowed decoder of the consumer fast path.
//!
//! This file owns decoding a record in place; it must never accept or reject
//! a record differently from [`Envelope::decode`](super::Envelope::decode),
//! and never copy a string out of the record.

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::fields::{check_event_id, check_event_type, check_tenant, timestamp_from_micros};
use super::{Envelope, EnvelopeError, LAYOUT_VERSION, MAX_NESTING, SchemaVersion, WIRE_ELEMENTS};

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
    fn str_or_bin(&mut self) -> Option<&'a [u8]> {
        let m = self.byte()?;
        let len = match m {
            0xa0..=0xbf => u64::from(m & 0x1f),
            0xd9 | 0xc4 => self.be(1)?,
            0xda | 0xc5 => self.be(2)?,
            0xdb | 0xc6 => self.be(4)?,
            _ => return None,
        };
        self.take(usize::try_from(len).ok()?)
    }

    /// A string field (rmp-serde also reads UTF-8 `bin` as a string).
    fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.str_or_bin()?).ok()
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
                std::str::from_utf8(c.str_or_bin()?).ok()?;
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
        let id = c.str_or_bin()?;
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
