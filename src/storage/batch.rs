//! The record batch: the unit the log writes, checksums and recovers by.
//!
//! Owns the byte layout of a batch (format versions 1 and 2, see
//! `docs/FORMAT.md`) and its encoder and validating decoder. It never touches
//! files: callers hand it bytes. The decoder must accept any input without
//! panicking or allocating in proportion to untrusted length fields.
//!
//! ```text
//! batch     := header positions records
//! header    := magic[4] version:u8 reserved[3]
//!              length:u32 crc:u32                  -- crc covers bytes 16..length
//!              flags:u16 reserved:u16 count:u32
//!              base_offset:u64 first_ts:i64 max_ts:i64 durable_offset:u64
//!              appended_at:i64                     -- version 2 only
//! positions := (record_position:u32){count}         -- from the batch start
//! records   := (value_len:u32 timestamp:i64 value[value_len]){count}
//! ```
//! All integers are little-endian; timestamps are microseconds since the Unix epoch.
//! Two clocks: a record's `timestamp` is the caller's (the envelope's
//! `emitted_at`; the time index and time retention use it), `appended_at` is
//! the log's wall clock when it wrote the batch (the dedup window uses it).
//! Version 1 batches (no `appended_at`) stay readable; the log writes version 2.
//! The position table makes a point read one lookup instead of a walk over
//! the records before it (a walk costs a cache miss per record); it sits
//! right after the header, on the same page, so the lookup rarely costs a
//! miss of its own.

use std::fmt;

use crate::storage::le::{i64_at, u16_at, u32_at, u64_at};

/// First four bytes of every batch. Non-zero, so a zero-filled region never parses.
pub const BATCH_MAGIC: [u8; 4] = [0xEF, b'F', b'L', b'B'];
/// The batch format version this code writes (it reads 1 and 2).
pub const FORMAT_VERSION: u8 = 2;
/// The first batch format version, without `appended_at`; still readable.
pub const FORMAT_VERSION_V1: u8 = 1;

const MAGIC_AT: usize = 0;
const VERSION_AT: usize = MAGIC_AT + 4;
const RESERVED_A_AT: usize = VERSION_AT + 1;
const LENGTH_AT: usize = RESERVED_A_AT + 3;
const CRC_AT: usize = LENGTH_AT + 4;
const FLAGS_AT: usize = CRC_AT + 4;
const RESERVED_B_AT: usize = FLAGS_AT + 2;
const COUNT_AT: usize = RESERVED_B_AT + 2;
const BASE_OFFSET_AT: usize = COUNT_AT + 4;
const FIRST_TS_AT: usize = BASE_OFFSET_AT + 8;
const MAX_TS_AT: usize = FIRST_TS_AT + 8;
const DURABLE_AT: usize = MAX_TS_AT + 8;
/// Size of a version 1 batch header in bytes (the smallest header).
pub const V1_HEADER_LEN: usize = DURABLE_AT + 8;
const APPENDED_AT: usize = V1_HEADER_LEN;
/// Size of the header the encoder writes (version 2) in bytes.
pub const HEADER_LEN: usize = APPENDED_AT + 8;
/// Per-record overhead inside a batch: value length, timestamp, position entry.
pub const RECORD_OVERHEAD: usize = 4 + 8 + 4;
/// Bytes before a record's value: its length and timestamp.
const RECORD_HEADER: usize = 4 + 8;
/// Bits of `flags` that name a compression codec; only 0 (none) exists in v1.
const FLAG_COMPRESSION_MASK: u16 = 0b111;

/// Why a byte range is not a valid batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than a header, or than the header's length field claims.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The first four bytes are not [`BATCH_MAGIC`].
    BadMagic,
    /// A version this code does not know.
    UnsupportedVersion(u8),
    /// The length field is smaller than a header or reserved bytes are set.
    BadHeader(&'static str),
    /// The CRC-32 does not match.
    BadChecksum {
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum computed over the bytes.
        computed: u32,
    },
    /// The records do not fill the batch exactly as the header says.
    BadRecords(&'static str),
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Truncated { needed, available } => {
                write!(
                    f,
                    "truncated batch: needs {needed} bytes, {available} present"
                )
            }
            BatchError::BadMagic => write!(f, "no batch magic"),
            BatchError::UnsupportedVersion(v) => write!(f, "unsupported batch format version {v}"),
            BatchError::BadHeader(why) => write!(f, "bad batch header: {why}"),
            BatchError::BadChecksum { stored, computed } => write!(
                f,
                "batch checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            BatchError::BadRecords(why) => write!(f, "bad records in batch: {why}"),
        }
    }
}

impl std::error::Error for BatchError {}

/// The fixed fields of a batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Total length of the batch in bytes, header included.
    pub length: u32,
    /// Stored CRC-32 of bytes `16..length`.
    pub crc: u32,
    /// Flags; compression bits are zero in v1.
    pub flags: u16,
    /// Number of records.
    pub count: u32,
    /// Offset of the first record.
    pub base_offset: u64,
    /// Timestamp of the first record.
    pub first_timestamp: i64,
    /// Largest record timestamp in the batch.
    pub max_timestamp: i64,
    /// Every offset below this one was durable when the batch was written.
    pub durable_offset: u64,
    /// The batch format version (1 or 2).
    pub version: u8,
    /// When the log wrote the batch (µs since the epoch, the log's clock);
    /// `None` for a version 1 batch, which does not record it.
    pub appended_at: Option<i64>,
}

impl BatchHeader {
    /// One past the last offset in the batch.
    pub fn next_offset(&self) -> u64 {
        self.base_offset.saturating_add(u64::from(self.count))
    }

    /// Bytes of this batch's header (56 in version 1, 64 in version 2).
    pub fn header_len(&self) -> usize {
        header_len_of(self.version)
    }
}

fn header_len_of(version: u8) -> usize {
    if version == FORMAT_VERSION_V1 {
        V1_HEADER_LEN
    } else {
        HEADER_LEN
    }
}

/// Reads the header at the start of `bytes` without checking the CRC.
///
/// Checks magic, version, reserved bytes, that the length is at least a header
/// and that `bytes` holds the whole batch.
pub fn parse_header(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let Some(v1_header) = bytes.first_chunk::<V1_HEADER_LEN>() else {
        return Err(BatchError::Truncated {
            needed: V1_HEADER_LEN,
            available: bytes.len(),
        });
    };
    if v1_header[MAGIC_AT..VERSION_AT] != BATCH_MAGIC {
        return Err(BatchError::BadMagic);
    }
    let version = v1_header[VERSION_AT];
    if version != FORMAT_VERSION && version != FORMAT_VERSION_V1 {
        return Err(BatchError::UnsupportedVersion(version));
    }
    let header_len = header_len_of(version);
    if bytes.len() < header_len {
        return Err(BatchError::Truncated {
            needed: header_len,
            available: bytes.len(),
        });
    }
    if v1_header[RESERVED_A_AT..LENGTH_AT] != [0, 0, 0] {
        return Err(BatchError::BadHeader("reserved bytes 5..8 are not zero"));
    }
    let truncated = BatchError::Truncated {
        needed: header_len,
        available: bytes.len(),
    };
    let Some(length) = u32_at(bytes, LENGTH_AT) else {
        return Err(truncated);
    };
    if (length as usize) < header_len {
        return Err(BatchError::BadHeader("length shorter than the header"));
    }
    if (length as usize) > bytes.len() {
        return Err(BatchError::Truncated {
            needed: length as usize,
            available: bytes.len(),
        });
    }
    // `bytes` holds a whole header (checked above): no field read is `None`.
    let fields = || {
        Some(BatchHeader {
            length,
            crc: u32_at(bytes, CRC_AT)?,
            flags: u16_at(bytes, FLAGS_AT)?,
            count: u32_at(bytes, COUNT_AT)?,
            base_offset: u64_at(bytes, BASE_OFFSET_AT)?,
            first_timestamp: i64_at(bytes, FIRST_TS_AT)?,
            max_timestamp: i64_at(bytes, MAX_TS_AT)?,
            durable_offset: u64_at(bytes, DURABLE_AT)?,
            version,
            appended_at: if version == FORMAT_VERSION_V1 {
                None
            } else {
                Some(i64_at(bytes, APPENDED_AT)?)
            },
        })
    };
    fields().ok_or(truncated)
}

/// A batch whose checksum and record structure have been verified.
#[derive(Debug, Clone, Copy)]
pub struct BatchView<'a> {
    /// The header fields.
    pub header: BatchHeader,
    bytes: &'a [u8],
    /// Where the position table ends and the records start.
    records_start: usize,
}

impl<'a> BatchView<'a> {
    /// Parses and fully validates the batch at the start of `bytes`: header,
    /// CRC, and that exactly `count` records fill the batch with timestamps
    /// consistent with the header.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BatchError> {
        let header = parse_header(bytes)?;
        // `parse_header` checked that `bytes` holds `length` bytes, and
        // `length` covers a header (so reaches past `FLAGS_AT`).
        let too_short = BatchError::Truncated {
            needed: header.length as usize,
            available: bytes.len(),
        };
        let bytes = bytes
            .get(..header.length as usize)
            .ok_or(too_short.clone())?;
        let computed = crc32fast::hash(bytes.get(FLAGS_AT..).ok_or(too_short)?);
        if computed != header.crc {
            return Err(BatchError::BadChecksum {
                stored: header.crc,
                computed,
            });
        }
        if header.flags & FLAG_COMPRESSION_MASK != 0 {
            return Err(BatchError::BadHeader("unknown compression codec"));
        }
        if header.flags != 0 || u16_at(bytes, RESERVED_B_AT) != Some(0) {
            return Err(BatchError::BadHeader("unknown flags or reserved bits set"));
        }
        if header.count == 0 {
            return Err(BatchError::BadRecords("a batch holds at least one record"));
        }
        // Offsets stay below u64::MAX so "one past the last" always exists.
        if header
            .base_offset
            .checked_add(u64::from(header.count))
            .is_none_or(|next| next == u64::MAX)
        {
            return Err(BatchError::BadHeader("offsets overflow u64"));
        }
        let records_start = (header.count as usize)
            .checked_mul(4)
            .and_then(|t| t.checked_add(header.header_len()))
            .filter(|&start| start <= bytes.len())
            .ok_or(BatchError::BadRecords("position table overruns the batch"))?;
        let view = BatchView {
            header,
            bytes,
            records_start,
        };
        let mut seen = 0u32;
        let mut max_ts = i64::MIN;
        let mut first_ts = None;
        let mut records = view.records_unchecked();
        loop {
            let at = records.position;
            let Some(record) = records.next() else { break };
            if view.table_entry(seen as usize) != Some(at) {
                return Err(BatchError::BadRecords(
                    "position table differs from the records",
                ));
            }
            seen += 1;
            max_ts = max_ts.max(record.timestamp);
            first_ts.get_or_insert(record.timestamp);
        }
        if records.malformed || records.position != bytes.len() {
            return Err(BatchError::BadRecords("record overruns the batch"));
        }
        if seen != header.count {
            return Err(BatchError::BadRecords(
                "record count differs from the header",
            ));
        }
        if first_ts != Some(header.first_timestamp) || max_ts != header.max_timestamp {
            return Err(BatchError::BadRecords("timestamps differ from the header"));
        }
        Ok(view)
    }

    /// Entry `i` of the position table; `None` past the batch's end.
    fn table_entry(&self, i: usize) -> Option<usize> {
        u32_at(self.bytes, self.header.header_len() + 4 * i).map(|p| p as usize)
    }

    /// A view of a batch that was verified before (skips the CRC).
    pub(crate) fn trusted(bytes: &'a [u8], header: BatchHeader) -> Self {
        BatchView {
            header,
            bytes,
            records_start: header.header_len() + 4 * header.count as usize,
        }
    }

    /// The whole batch, header included.
    #[cfg(any(test, feature = "failpoints"))]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Iterates over the records with their offsets.
    pub fn records(&self) -> RecordIter<'a> {
        self.records_unchecked()
    }

    /// Iterates over the records from `offset` on (all of them if `offset`
    /// is below the batch), jumping there through the position table.
    pub fn records_from(&self, offset: u64) -> RecordIter<'a> {
        let skip = offset.saturating_sub(self.header.base_offset);
        if skip == 0 {
            return self.records_unchecked();
        }
        if skip >= u64::from(self.header.count) {
            return RecordIter::resume(self.bytes, self.bytes.len(), offset);
        }
        // A verified view has `count` table entries; a missing one reads as
        // the batch's end (no records) rather than a panic.
        let position = self.table_entry(skip as usize).unwrap_or(self.bytes.len());
        RecordIter::resume(self.bytes, position, offset)
    }

    fn records_unchecked(&self) -> RecordIter<'a> {
        RecordIter {
            bytes: self.bytes,
            position: self.records_start,
            next_offset: self.header.base_offset,
            malformed: false,
        }
    }
}

/// One record inside a batch, borrowed from the batch bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The record's offset in its partition.
    pub offset: u64,
    /// Microseconds since the Unix epoch.
    pub timestamp: i64,
    /// The record's value.
    pub value: &'a [u8],
    /// Byte range of `value` within the batch.
    pub value_start: usize,
}

/// Iterator over the records of a [`BatchView`].
#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    bytes: &'a [u8],
    position: usize,
    next_offset: u64,
    malformed: bool,
}

impl<'a> RecordIter<'a> {
    /// Continues iterating a verified batch at a byte position a previous
    /// iterator reported through [`RecordIter::position`].
    pub(crate) fn resume(bytes: &'a [u8], position: usize, next_offset: u64) -> Self {
        RecordIter {
            bytes,
            position,
            next_offset,
            malformed: false,
        }
    }

    /// Offset of the next record.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = RecordRef<'a>;

    fn next(&mut self) -> Option<RecordRef<'a>> {
        let rest = self.bytes.len() - self.position;
        if rest == 0 || self.malformed {
            return None;
        }
        if rest < RECORD_HEADER {
            self.malformed = true;
            return None;
        }
        let (Some(len), Some(timestamp)) = (
            u32_at(self.bytes, self.position),
            i64_at(self.bytes, self.position + 4),
        ) else {
            self.malformed = true;
            return None;
        };
        let len = len as usize;
        let value_start = self.position + RECORD_HEADER;
        let end = value_start.checked_add(len);
        let Some(value) = end.and_then(|end| self.bytes.get(value_start..end)) else {
            self.malformed = true;
            return None;
        };
        let record = RecordRef {
            offset: self.next_offset,
            timestamp,
            value,
            value_start,
        };
        self.position = value_start + len;
        self.next_offset += 1;
        Some(record)
    }
}

/// Builds batches into a reusable buffer.
#[derive(Debug, Default)]
pub struct BatchEncoder {
    buf: Vec<u8>,
    /// Record positions relative to the start of the records.
    positions: Vec<u32>,
    /// Table entries reserved after the header by `begin_with_count`.
    table_slots: usize,
    /// Bytes of the header being written (by version).
    header_len: usize,
    count: u32,
    first_ts: i64,
    max_ts: i64,
}

impl BatchEncoder {
    /// Encoded size of a (version 2) batch holding records with these value lengths.
    #[cfg(any(test, feature = "failpoints"))]
    pub fn encoded_len(value_lens: impl IntoIterator<Item = usize>) -> usize {
        HEADER_LEN
            + value_lens
                .into_iter()
                .map(|l| l + RECORD_OVERHEAD)
                .sum::<usize>()
    }

    /// Starts a new batch, discarding any unfinished one. With
    /// `appended_at` (the log's clock, µs) it is a version 2 batch; `None`
    /// writes version 1, for re-encoding a version 1 batch as it was.
    pub fn begin(&mut self, base_offset: u64, durable_offset: u64, appended_at: Option<i64>) {
        self.begin_with_count(base_offset, durable_offset, appended_at, 0);
    }

    /// Starts a new batch (see [`BatchEncoder::begin`]) that will hold
    /// `count` records, so the position table can be laid out before them
    /// without moving them later (any other number of records still works,
    /// at the cost of a move).
    pub fn begin_with_count(
        &mut self,
        base_offset: u64,
        durable_offset: u64,
        appended_at: Option<i64>,
        count: usize,
    ) {
        let (version, header_len) = match appended_at {
            Some(_) => (FORMAT_VERSION, HEADER_LEN),
            None => (FORMAT_VERSION_V1, V1_HEADER_LEN),
        };
        // The header in field order; `finish` fills in the zeroed fields
        // (length, crc, count, timestamps) once the records are known.
        self.buf.clear();
        self.buf.extend_from_slice(&BATCH_MAGIC);
        self.buf.push(version);
        self.buf.resize(BASE_OFFSET_AT, 0);
        self.buf.extend_from_slice(&base_offset.to_le_bytes());
        self.buf.resize(DURABLE_AT, 0);
        self.buf.extend_from_slice(&durable_offset.to_le_bytes());
        if let Some(at) = appended_at {
            self.buf.extend_from_slice(&at.to_le_bytes());
        }
        debug_assert_eq!(self.buf.len(), header_len);
        self.buf.resize(header_len + 4 * count, 0);
        self.header_len = header_len;
        self.table_slots = count;
        self.positions.clear();
        self.count = 0;
        self.first_ts = 0;
        self.max_ts = i64::MIN;
    }

    /// Reserves room for `additional` more bytes of records.
    pub fn reserve(&mut self, additional: usize) {
        self.buf.reserve(additional);
    }

    /// Appends one record.
    pub fn push(&mut self, timestamp: i64, value: &[u8]) {
        if self.count == 0 {
            self.first_ts = timestamp;
        }
        self.max_ts = self.max_ts.max(timestamp);
        self.count += 1;
        let records_start = self.header_len + 4 * self.table_slots;
        self.positions.push((self.buf.len() - records_start) as u32);
        self.buf
            .extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(&timestamp.to_le_bytes());
        self.buf.extend_from_slice(value);
    }

    /// Number of records pushed since [`begin`](Self::begin).
    #[cfg(any(test, feature = "failpoints"))]
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Largest timestamp pushed so far.
    pub fn max_timestamp(&self) -> i64 {
        self.max_ts
    }

    /// Fills in length, count, timestamps and CRC, and returns the finished batch.
    #[expect(
        clippy::indexing_slicing,
        reason = "patches only the header and position table: `begin_with_count` wrote \
                  a whole header and the splice below sizes the table to `count` entries"
    )]
    pub fn finish(&mut self) -> &[u8] {
        let count = self.positions.len();
        let header_len = self.header_len;
        if count != self.table_slots {
            self.buf.splice(
                header_len..header_len + 4 * self.table_slots,
                std::iter::repeat_n(0u8, 4 * count),
            );
            self.table_slots = count;
        }
        let records_start = (header_len + 4 * count) as u32;
        for (i, p) in self.positions.iter().enumerate() {
            let at = header_len + 4 * i;
            self.buf[at..at + 4].copy_from_slice(&(records_start + p).to_le_bytes());
        }
        let length = self.buf.len() as u32;
        self.buf[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&length.to_le_bytes());
        self.buf[COUNT_AT..COUNT_AT + 4].copy_from_slice(&self.count.to_le_bytes());
        self.buf[FIRST_TS_AT..FIRST_TS_AT + 8].copy_from_slice(&self.first_ts.to_le_bytes());
        self.buf[MAX_TS_AT..MAX_TS_AT + 8].copy_from_slice(&self.max_ts.to_le_bytes());
        let crc = crc32fast::hash(&self.buf[FLAGS_AT..]);
        self.buf[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(base: u64, records: &[(i64, &[u8])]) -> Vec<u8> {
        encode_at(base, Some(1_000), records)
    }

    fn encode_at(base: u64, appended_at: Option<i64>, records: &[(i64, &[u8])]) -> Vec<u8> {
        let mut enc = BatchEncoder::default();
        enc.begin(base, 0, appended_at);
        for (ts, v) in records {
            enc.push(*ts, v);
        }
        enc.finish().to_vec()
    }

    #[test]
    fn round_trip_keeps_offsets_timestamps_and_values() {
        let bytes = encode(42, &[(5, b"a"), (3, b""), (9, b"ccc")]);
        let view = BatchView::parse(&bytes).expect("valid batch");
        assert_eq!(view.header.base_offset, 42);
        assert_eq!(view.header.count, 3);
        assert_eq!(view.header.first_timestamp, 5);
        assert_eq!(view.header.max_timestamp, 9);
        let got: Vec<_> = view
            .records()
            .map(|r| (r.offset, r.timestamp, r.value.to_vec()))
            .collect();
        assert_eq!(
            got,
            vec![
                (42, 5, b"a".to_vec()),
                (43, 3, vec![]),
                (44, 9, b"ccc".to_vec())
            ]
        );
    }

    #[test]
    fn zeros_never_parse() {
        assert_eq!(
            BatchView::parse(&[0u8; 256]).unwrap_err(),
            BatchError::BadMagic
        );
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        for appended_at in [Some(1_000), None] {
            let bytes = encode_at(7, appended_at, &[(1, b"hello"), (2, b"world")]);
            for bit in 0..bytes.len() * 8 {
                let mut damaged = bytes.clone();
                damaged[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    BatchView::parse(&damaged).is_err(),
                    "flip of bit {bit} went unnoticed ({appended_at:?})"
                );
            }
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        for appended_at in [Some(1_000), None] {
            let bytes = encode_at(7, appended_at, &[(1, b"hello"), (2, b"world")]);
            for len in 0..bytes.len() {
                assert!(BatchView::parse(&bytes[..len]).is_err(), "cut at {len}");
            }
        }
    }

    #[test]
    fn version_2_keeps_the_append_time_and_version_1_still_reads() {
        let records: &[(i64, &[u8])] = &[(5, b"a"), (9, b"ccc")];
        let v2 = encode_at(3, Some(-77), records);
        let v1 = encode_at(3, None, records);
        assert_eq!(v2.len(), v1.len() + 8);
        assert_eq!(v2.len(), BatchEncoder::encoded_len([1, 3]));
        assert_eq!((v2[4], v1[4]), (2, 1));
        for (bytes, version, appended_at) in [(&v2, 2, Some(-77)), (&v1, 1, None)] {
            let view = BatchView::parse(bytes).expect("valid batch");
            assert_eq!(view.header.version, version);
            assert_eq!(view.header.appended_at, appended_at);
            assert_eq!(view.header.header_len() + 4 * 2 + 2 * 12 + 4, bytes.len());
            let got: Vec<_> = view
                .records_from(4)
                .map(|r| (r.offset, r.timestamp, r.value.to_vec()))
                .collect();
            assert_eq!(got, vec![(4, 9, b"ccc".to_vec())]);
            let trusted = BatchView::trusted(bytes, view.header);
            assert_eq!(trusted.records().count(), 2);
        }
        // The version byte decides the header length: a v1 batch relabelled
        // v2 (or the reverse) fails its checks instead of misreading.
        for (bytes, other) in [(&v2, 1u8), (&v1, 2u8)] {
            let mut relabelled = bytes.clone();
            relabelled[4] = other;
            assert!(BatchView::parse(&relabelled).is_err());
        }
        let mut v3 = v2.clone();
        v3[4] = 3;
        assert_eq!(
            BatchView::parse(&v3).unwrap_err(),
            BatchError::UnsupportedVersion(3)
        );
        // A v2 header cut inside its appended_at field is truncated, not misread.
        assert!(matches!(
            parse_header(&v2[..60]),
            Err(BatchError::Truncated { needed: 64, .. })
        ));
    }
}
