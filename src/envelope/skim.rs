//! The peeks: [`peek_event_id`], [`peek_ttl_millis`] and [`EnvelopeHead`],
//! which read a few fields of a record without validating the others.
//!
//! This file owns the fast paths of dedup, groups and queues; it must never
//! disagree with the full decoder on a record the decoder accepts, and never
//! take a record that is not exactly one MessagePack value for an envelope.
use uuid::Uuid;

use super::EnvelopeRef;
use super::msgpack::value_len;

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
        [0x9D, 0x01, 0xC4, 0x10, id @ ..] if is_one_value(record) => {
            Uuid::from_slice(id.get(..16)?).ok()
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
    let marker = p.byte()?;
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
        let marker = self.byte()?;
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

    fn byte(&mut self) -> Option<u8> {
        let (&first, tail) = self.0.split_first()?;
        self.0 = tail;
        Some(first)
    }

    fn be(&mut self, n: usize) -> Option<u64> {
        Some(
            self.take(n)?
                .iter()
                .fold(0u64, |v, &b| v << 8 | u64::from(b)),
        )
    }

    fn int(&mut self) -> Option<i128> {
        let tag = self.byte()?;
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
        let tag = self.byte()?;
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

#[cfg(test)]
mod tests;

/// The first bytes of a dead-letter record (`docs/FORMAT.md`, "Dead
/// letters"): an envelope wrapped with DLQ metadata, which readers must
/// recognise to say so rather than call it garbage.
pub(crate) const DLQ_MAGIC: [u8; 4] = *b"EFDL";

/// Whether `bytes` is a dead-letter record rather than an envelope.
pub(crate) fn is_dead_letter(bytes: &[u8]) -> bool {
    bytes.starts_with(&DLQ_MAGIC)
}
