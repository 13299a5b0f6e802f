//! Archive segments: the warm (and cold) tier's self-describing file format.
//!
//! Owns the byte layout of an archive segment (format version 1, see
//! `docs/FORMAT.md`), its writer (from a sealed hot segment's batches) and its
//! validating reader (footer, block index, one block at a time). The original
//! record batches are kept byte for byte — they carry offsets, timestamps and
//! their own CRCs — and grouped into zstd-compressed blocks, each indexed by
//! offset range, largest timestamp and position. The footer names the topic,
//! partition, offset and time range and the schema versions present, so a
//! file alone says what it holds. Which schema version a record carries is
//! the caller's reading ([`ArchiveMeta::schema_version_of`]): this module
//! never interprets a record's value.
//!
//! It never decides *when* a segment is archived or deleted (that is
//! [`crate::tier`]) and never renames files into place: it writes the bytes
//! it is given a path for. The decoder accepts any input without panicking
//! and allocates in proportion to bytes actually present, never to a length
//! field alone.
//!
//! ```text
//! archive := header block* index footer trailer
//! header  := magic[4]="\xEFFAR" version:u8=1 codec:u8=1(zstd) reserved:u16=0     (8 bytes)
//! block   := zstd frame of whole record batches, concatenated
//! index   := entry{block_count}                                                (48 bytes each)
//! entry   := first_offset:u64 last_offset:u64 max_ts:i64 position:u64
//!            compressed_len:u32 raw_len:u32 crc:u32 reserved:u32=0              -- crc: CRC-32 of the compressed bytes
//! footer  := topic_len:u16 topic[topic_len] partition:u32
//!            base_offset:u64 next_offset:u64 min_ts:i64 max_ts:i64
//!            record_count:u64 raw_bytes:u64 block_count:u32
//!            index_position:u64 index_len:u32 index_crc:u32 created_at:i64
//!            undecoded_records:u64 schema_count:u16 (len:u8 version[len]){schema_count}
//! trailer := footer_len:u32 footer_crc:u32 version:u8=1 codec:u8=1 reserved:u16=0 magic[4]="\xEFFAE"  (16 bytes)
//! ```
//! All integers are little-endian; timestamps are µs since the Unix epoch.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::storage::batch::BatchView;
use crate::storage::le::{LeReader, i64_at, u16_at, u32_at, u64_at};

/// First bytes of every archive segment.
pub const ARCHIVE_MAGIC: [u8; 4] = [0xEF, b'F', b'A', b'R'];
/// Last bytes of every complete archive segment.
pub const TRAILER_MAGIC: [u8; 4] = [0xEF, b'F', b'A', b'E'];
/// The archive format version this code writes and reads.
pub const ARCHIVE_VERSION: u8 = 1;
/// Codec id of zstd, the only codec of version 1.
pub const CODEC_ZSTD: u8 = 1;
/// File-name extension of archive segments (`<base:020>.archive`).
pub const ARCHIVE_EXTENSION: &str = "archive";
/// zstd level used for blocks: the fast mode, chosen by measurement
/// (docs/PERFORMANCE.md "Tiering"): ≥ 3× on seed-like events at the highest speed.
pub(crate) const ZSTD_LEVEL: i32 = -1;
/// A block is closed once it holds at least this many raw bytes (whole batches).
pub(crate) const BLOCK_TARGET_BYTES: usize = 256 << 10;

/// Size of the header.
pub const HEADER_LEN: usize = 8;
/// Size of one index entry.
pub const INDEX_ENTRY_LEN: usize = 48;
/// Size of the trailer.
pub const TRAILER_LEN: usize = 16;
/// Largest footer accepted (topic name, 65535 schema versions of 255 bytes fit well below).
const MAX_FOOTER_LEN: usize = 1 << 24;
/// Largest raw block accepted: one batch may be up to 1 GiB (`max_batch_bytes`).
const MAX_RAW_BLOCK: u32 = 1 << 30;
/// Raw blocks up to this size are decompressed in one call into a buffer of
/// exactly `raw_len`; larger ones stream, so memory follows the bytes present.
const BULK_DECODE_LIMIT: usize = 4 * BLOCK_TARGET_BYTES;

const E_FIRST_AT: usize = 0;
const E_LAST_AT: usize = E_FIRST_AT + 8;
const E_MAX_TS_AT: usize = E_LAST_AT + 8;
const E_POSITION_AT: usize = E_MAX_TS_AT + 8;
const E_COMPRESSED_AT: usize = E_POSITION_AT + 8;
const E_RAW_AT: usize = E_COMPRESSED_AT + 4;
const E_CRC_AT: usize = E_RAW_AT + 4;
const E_RESERVED_AT: usize = E_CRC_AT + 4;
const _: () = assert!(E_RESERVED_AT + 4 == INDEX_ENTRY_LEN);

const T_FOOTER_LEN_AT: usize = 0;
const T_FOOTER_CRC_AT: usize = T_FOOTER_LEN_AT + 4;
const T_VERSION_AT: usize = T_FOOTER_CRC_AT + 4;
const T_CODEC_AT: usize = T_VERSION_AT + 1;
const T_RESERVED_AT: usize = T_CODEC_AT + 1;
const T_MAGIC_AT: usize = T_RESERVED_AT + 2;
const _: () = assert!(T_MAGIC_AT + 4 == TRAILER_LEN);

/// One compressed block of an archive segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockEntry {
    /// Offset of the first record in the block.
    pub first_offset: u64,
    /// Offset of the last record in the block.
    pub last_offset: u64,
    /// Largest record timestamp in the block.
    pub max_timestamp: i64,
    /// Byte position of the compressed block in the file.
    pub position: u64,
    /// Compressed size.
    pub compressed_len: u32,
    /// Size of the batches it holds.
    pub raw_len: u32,
    /// CRC-32 of the compressed bytes.
    pub crc: u32,
}

impl BlockEntry {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.first_offset.to_le_bytes());
        out.extend_from_slice(&self.last_offset.to_le_bytes());
        out.extend_from_slice(&self.max_timestamp.to_le_bytes());
        out.extend_from_slice(&self.position.to_le_bytes());
        out.extend_from_slice(&self.compressed_len.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
        out.extend_from_slice(&self.crc.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
    }

    /// The entry and its reserved field; `None` when `b` is shorter than an entry.
    fn decode(b: &[u8]) -> Option<(BlockEntry, u32)> {
        Some((
            BlockEntry {
                first_offset: u64_at(b, E_FIRST_AT)?,
                last_offset: u64_at(b, E_LAST_AT)?,
                max_timestamp: i64_at(b, E_MAX_TS_AT)?,
                position: u64_at(b, E_POSITION_AT)?,
                compressed_len: u32_at(b, E_COMPRESSED_AT)?,
                raw_len: u32_at(b, E_RAW_AT)?,
                crc: u32_at(b, E_CRC_AT)?,
            },
            u32_at(b, E_RESERVED_AT)?,
        ))
    }
}

/// What an archive segment holds, from its footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// Topic the records belong to.
    pub topic: String,
    /// Partition the records belong to.
    pub partition: u32,
    /// First offset held.
    pub base_offset: u64,
    /// One past the last offset held.
    pub next_offset: u64,
    /// Smallest record timestamp.
    pub min_timestamp: i64,
    /// Largest record timestamp.
    pub max_timestamp: i64,
    /// Number of records.
    pub record_count: u64,
    /// Bytes of the original batches (the hot segment's data length).
    pub raw_bytes: u64,
    /// Number of compressed blocks.
    pub block_count: u32,
    /// When the archive was written (µs since the epoch).
    pub created_at: i64,
    /// Records that are not eventfabric envelopes (no schema version known).
    pub undecoded_records: u64,
    /// Distinct `schema_version`s of the envelopes held, sorted.
    pub schema_versions: Vec<String>,
    /// Size of the archive file.
    pub file_bytes: u64,
    index_position: u64,
    index_len: u32,
    index_crc: u32,
}

impl ArchiveSummary {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(&(self.topic.len() as u16).to_le_bytes());
        out.extend_from_slice(self.topic.as_bytes());
        out.extend_from_slice(&self.partition.to_le_bytes());
        out.extend_from_slice(&self.base_offset.to_le_bytes());
        out.extend_from_slice(&self.next_offset.to_le_bytes());
        out.extend_from_slice(&self.min_timestamp.to_le_bytes());
        out.extend_from_slice(&self.max_timestamp.to_le_bytes());
        out.extend_from_slice(&self.record_count.to_le_bytes());
        out.extend_from_slice(&self.raw_bytes.to_le_bytes());
        out.extend_from_slice(&self.block_count.to_le_bytes());
        out.extend_from_slice(&self.index_position.to_le_bytes());
        out.extend_from_slice(&self.index_len.to_le_bytes());
        out.extend_from_slice(&self.index_crc.to_le_bytes());
        out.extend_from_slice(&self.created_at.to_le_bytes());
        out.extend_from_slice(&self.undecoded_records.to_le_bytes());
        out.extend_from_slice(&(self.schema_versions.len() as u16).to_le_bytes());
        for v in &self.schema_versions {
            out.push(v.len() as u8);
            out.extend_from_slice(v.as_bytes());
        }
        out
    }

    /// Decodes the footer `b`, which starts at byte `footer_at` of `path`
    /// (a file of `file_bytes` bytes): a short or inconsistent field is
    /// corruption naming the field's byte.
    fn decode(b: &[u8], file_bytes: u64, path: &Path, footer_at: u64) -> Result<ArchiveSummary> {
        let mut r = LeReader::new(b, path, footer_at);
        let topic_len = r.u16("footer topic_len")? as usize;
        let topic_at = r.position();
        let topic = std::str::from_utf8(r.bytes(topic_len, "footer topic")?)
            .map_err(|_| Error::corrupted(path, topic_at, "footer topic name is not UTF-8"))?
            .to_owned();
        let mut s = ArchiveSummary {
            topic,
            partition: r.u32("footer partition")?,
            base_offset: r.u64("footer base_offset")?,
            next_offset: r.u64("footer next_offset")?,
            min_timestamp: r.i64("footer min_ts")?,
            max_timestamp: r.i64("footer max_ts")?,
            record_count: r.u64("footer record_count")?,
            raw_bytes: r.u64("footer raw_bytes")?,
            block_count: r.u32("footer block_count")?,
            index_position: r.u64("footer index_position")?,
            index_len: r.u32("footer index_len")?,
            index_crc: r.u32("footer index_crc")?,
            created_at: r.i64("footer created_at")?,
            undecoded_records: r.u64("footer undecoded_records")?,
            schema_versions: Vec::new(),
            file_bytes,
        };
        let count = r.u16("footer schema_count")?;
        for _ in 0..count {
            let len = r.u8("footer schema version len")? as usize;
            let version_at = r.position();
            let v = std::str::from_utf8(r.bytes(len, "footer schema version")?).map_err(|_| {
                Error::corrupted(path, version_at, "footer schema version is not UTF-8")
            })?;
            s.schema_versions.push(v.to_owned());
        }
        if r.remaining() != 0 {
            return Err(r.corrupted("footer has bytes after its last field"));
        }
        let bad = |why: &str| Error::corrupted(path, footer_at, why);
        if let Some(why) = s.inconsistency() {
            return Err(bad(why));
        }
        Ok(s)
    }

    /// Why the decoded footer's fields contradict one another, if they do.
    fn inconsistency(&self) -> Option<&'static str> {
        let s = self;
        if s.next_offset <= s.base_offset || s.next_offset == u64::MAX {
            return Some("footer offset range is empty or overflows");
        }
        if s.record_count != s.next_offset - s.base_offset {
            return Some("footer record count differs from its offset range");
        }
        if s.block_count == 0 {
            return Some("footer names no blocks");
        }
        if u64::from(s.index_len) != u64::from(s.block_count) * INDEX_ENTRY_LEN as u64 {
            return Some("footer index length differs from its block count");
        }
        if s.min_timestamp > s.max_timestamp {
            return Some("footer time range is inverted");
        }
        None
    }
}

/// Where an archive's bytes come from: a file (pread) or memory (tests, fuzzing).
trait Source {
    fn len(&self) -> u64;
    fn read(&self, pos: u64, len: usize) -> Result<Vec<u8>>;
}

struct FileSource<'a> {
    file: &'a File,
    path: &'a Path,
    len: u64,
}

impl Source for FileSource<'_> {
    fn len(&self) -> u64 {
        self.len
    }
    fn read(&self, pos: u64, len: usize) -> Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, pos)
            .map_err(|e| Error::io("read", self.path, e))?;
        Ok(buf)
    }
}

struct MemSource<'a> {
    bytes: &'a [u8],
    path: &'a Path,
}

impl Source for MemSource<'_> {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read(&self, pos: u64, len: usize) -> Result<Vec<u8>> {
        // Callers only ask for ranges already checked against `len`; one
        // that is not is corruption at `pos`, never a panic.
        let range = usize::try_from(pos)
            .ok()
            .and_then(|start| Some(start..start.checked_add(len)?));
        range
            .and_then(|range| self.bytes.get(range))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| {
                Error::corrupted(
                    self.path,
                    pos,
                    format!(
                        "{len} bytes at byte {pos} lie past the end of the {}-byte archive",
                        self.bytes.len()
                    ),
                )
            })
    }
}

/// The `N` bytes at `pos` of `src` as an array (a short read is corruption).
fn read_array<const N: usize>(src: &dyn Source, pos: u64, path: &Path) -> Result<[u8; N]> {
    let bytes = src.read(pos, N)?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| {
        Error::corrupted(
            path,
            pos,
            format!("read {} bytes where {N} were asked for", bytes.len()),
        )
    })
}

/// Reads and checks header, trailer, footer and index; blocks are checked
/// when read. Every failure names the file and byte.
fn open_source(src: &dyn Source, path: &Path) -> Result<(ArchiveSummary, Vec<BlockEntry>)> {
    let len = src.len();
    let bad = |pos: u64, why: String| Error::corrupted(path, pos, why);
    if len < (HEADER_LEN + TRAILER_LEN) as u64 {
        return Err(bad(
            0,
            format!(
                "archive segment is truncated: {len} bytes, too short for a header and trailer"
            ),
        ));
    }
    let header = read_array::<HEADER_LEN>(src, 0, path)?;
    if header[..4] != ARCHIVE_MAGIC {
        return Err(bad(0, "no archive segment magic".into()));
    }
    if header[4] != ARCHIVE_VERSION || header[5] != CODEC_ZSTD || header[6..8] != [0, 0] {
        return Err(bad(
            4,
            format!(
                "unsupported archive version {} / codec {} (this build reads version {ARCHIVE_VERSION}, codec {CODEC_ZSTD})",
                header[4], header[5]
            ),
        ));
    }
    let trailer_at = len - TRAILER_LEN as u64;
    let t = read_array::<TRAILER_LEN>(src, trailer_at, path)?;
    if t[T_MAGIC_AT..] != TRAILER_MAGIC {
        return Err(bad(
            trailer_at,
            "archive segment is truncated or damaged: no trailer magic at its end".into(),
        ));
    }
    if t[T_VERSION_AT] != ARCHIVE_VERSION
        || t[T_CODEC_AT] != CODEC_ZSTD
        || u16_at(&t, T_RESERVED_AT) != Some(0)
    {
        return Err(bad(
            trailer_at,
            "trailer version, codec or reserved bits differ from the header".into(),
        ));
    }
    let mut trailer = LeReader::new(&t, path, trailer_at);
    let footer_len = trailer.u32("trailer footer_len")? as usize;
    let footer_crc = trailer.u32("trailer footer_crc")?;
    if footer_len > MAX_FOOTER_LEN || footer_len as u64 > trailer_at - HEADER_LEN as u64 {
        return Err(bad(
            trailer_at,
            format!("footer length {footer_len} does not fit in the file"),
        ));
    }
    let footer_at = trailer_at - footer_len as u64;
    let footer = src.read(footer_at, footer_len)?;
    let computed = crc32fast::hash(&footer);
    if computed != footer_crc {
        return Err(bad(
            footer_at,
            format!(
                "footer checksum mismatch (stored {footer_crc:#010x}, computed {computed:#010x})"
            ),
        ));
    }
    let summary = ArchiveSummary::decode(&footer, len, path, footer_at)?;
    if summary
        .index_position
        .checked_add(u64::from(summary.index_len))
        != Some(footer_at)
        || summary.index_position < HEADER_LEN as u64
    {
        return Err(bad(
            footer_at,
            "footer places the block index elsewhere than right before the footer".into(),
        ));
    }
    let index = src.read(summary.index_position, summary.index_len as usize)?;
    let computed = crc32fast::hash(&index);
    if computed != summary.index_crc {
        return Err(bad(
            summary.index_position,
            format!(
                "block index checksum mismatch (stored {:#010x}, computed {computed:#010x})",
                summary.index_crc
            ),
        ));
    }
    let mut blocks = Vec::with_capacity(summary.block_count as usize);
    let mut expect_pos = HEADER_LEN as u64;
    let mut expect_offset = summary.base_offset;
    let mut max_ts = i64::MIN;
    let mut raw_total = 0u64;
    for (i, chunk) in index.chunks_exact(INDEX_ENTRY_LEN).enumerate() {
        let at = summary.index_position + (i * INDEX_ENTRY_LEN) as u64;
        let Some((e, reserved)) = BlockEntry::decode(chunk) else {
            return Err(bad(at, format!("block index entry {i} is cut short")));
        };
        let why = if reserved != 0 {
            Some("reserved bits set")
        } else if e.position != expect_pos {
            Some("block does not start where the previous one ends")
        } else if e.first_offset != expect_offset
            || e.last_offset < e.first_offset
            || e.last_offset >= summary.next_offset
        {
            Some("block offsets do not continue the previous block's within the footer's range")
        } else if e.compressed_len == 0 || e.raw_len == 0 || e.raw_len > MAX_RAW_BLOCK {
            Some("block sizes are out of range")
        } else if e.max_timestamp > summary.max_timestamp {
            Some("block timestamp exceeds the footer's time range")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(bad(at, format!("block index entry {i}: {why}")));
        }
        expect_pos += u64::from(e.compressed_len);
        expect_offset = e.last_offset + 1;
        max_ts = max_ts.max(e.max_timestamp);
        raw_total += u64::from(e.raw_len);
        blocks.push(e);
    }
    if expect_pos != summary.index_position
        || expect_offset != summary.next_offset
        || max_ts != summary.max_timestamp
        || raw_total != summary.raw_bytes
    {
        return Err(bad(
            summary.index_position,
            "block index does not cover the footer's byte, offset and time ranges exactly".into(),
        ));
    }
    Ok((summary, blocks))
}

/// Decompresses and checks one block: CRC of the compressed bytes, exact raw
/// size, and every batch inside parsed (batch CRC), chained from the entry's
/// first offset to its last, with the entry's largest timestamp.
fn decode_block(compressed: &[u8], entry: &BlockEntry, path: &Path) -> Result<Bytes> {
    let bad = |pos: u64, why: String| Error::corrupted(path, pos, why);
    let computed = crc32fast::hash(compressed);
    if computed != entry.crc {
        return Err(bad(
            entry.position,
            format!(
                "block at offsets {}..={}: checksum mismatch (stored {:#010x}, computed {computed:#010x})",
                entry.first_offset, entry.last_offset, entry.crc
            ),
        ));
    }
    let raw_len = entry.raw_len as usize;
    let raw = if raw_len <= BULK_DECODE_LIMIT {
        zstd::bulk::decompress(compressed, raw_len)
    } else {
        use std::io::Read;
        zstd::stream::read::Decoder::with_buffer(compressed).and_then(|d| {
            let mut out = Vec::with_capacity(BULK_DECODE_LIMIT);
            d.take(raw_len as u64 + 1).read_to_end(&mut out)?;
            Ok(out)
        })
    }
    .map_err(|e| {
        bad(
            entry.position,
            format!(
                "block at offsets {}..={}: cannot decompress: {e}",
                entry.first_offset, entry.last_offset
            ),
        )
    })?;
    if raw.len() != raw_len {
        return Err(bad(
            entry.position,
            format!(
                "block at offsets {}..={}: decompressed to {} bytes, the index says {raw_len}",
                entry.first_offset,
                entry.last_offset,
                raw.len()
            ),
        ));
    }
    let mut pos = 0usize;
    let mut expect = entry.first_offset;
    let mut max_ts = i64::MIN;
    while let Some(rest) = raw.get(pos..).filter(|rest| !rest.is_empty()) {
        let view = BatchView::parse(rest).map_err(|e| {
            bad(
                entry.position,
                format!(
                    "block at offsets {}..={}: batch at byte {pos} of the decompressed block: {e}",
                    entry.first_offset, entry.last_offset
                ),
            )
        })?;
        if view.header.base_offset != expect {
            return Err(bad(
                entry.position,
                format!(
                    "block at offsets {}..={}: batch at byte {pos} starts at offset {} where {expect} was expected",
                    entry.first_offset, entry.last_offset, view.header.base_offset
                ),
            ));
        }
        expect = view.header.next_offset();
        max_ts = max_ts.max(view.header.max_timestamp);
        pos += view.header.length as usize;
    }
    if expect != entry.last_offset + 1 || max_ts != entry.max_timestamp {
        return Err(bad(
            entry.position,
            format!(
                "block at offsets {}..={}: its batches end before offset {expect} or have a different largest timestamp",
                entry.first_offset, entry.last_offset
            ),
        ));
    }
    Ok(Bytes::from(raw))
}

/// Checks a whole archive segment held in memory — header, trailer, footer,
/// index and every block with every batch — and returns its summary. The
/// entry point of the `archive_decode` fuzz target; `name` is used in errors.
pub fn verify_bytes(bytes: &[u8], name: &Path) -> Result<ArchiveSummary> {
    let src = MemSource { bytes, path: name };
    let (summary, blocks) = open_source(&src, name)?;
    for e in &blocks {
        let compressed = src.read(e.position, e.compressed_len as usize)?;
        decode_block(&compressed, e, name)?;
    }
    Ok(summary)
}

/// Where the compressed blocks of an archive whose bytes are not in a local
/// file come from (the remote warm tier: ranged GETs through a cache).
pub(crate) trait BlockFetcher: Send + Sync + std::fmt::Debug {
    /// The compressed bytes of block `i` of `archive` (exactly
    /// `compressed_len` of them, checked by the caller).
    fn compressed_block(&self, archive: &Archive, i: usize) -> Result<Bytes>;
    /// Where the bytes are, for people (`s3://bucket/key`).
    fn location(&self) -> String;
    /// Removes the bytes held elsewhere, once the archive's local record is
    /// gone (warm retention), and forgets any cached blocks of `archive`.
    fn remove_source(&self, archive: &Archive) -> Result<()>;
}

/// Opens archives recorded locally by a marker file but held elsewhere
/// (the remote warm tier, which implements it: the storage layer knows no
/// object store).
pub(crate) trait RemoteArchives: Send + Sync + std::fmt::Debug {
    /// Opens the archive the marker file at `path` records for `topic`
    /// (no request).
    fn open_marker(&self, topic: &str, path: &Path) -> Result<Archive>;
}

/// An archive known by its header and its tail (index, footer, trailer)
/// only, as recorded locally when it was uploaded: reads of other bytes are
/// refused (blocks come through the fetcher).
struct TailSource<'a> {
    len: u64,
    head: &'a [u8],
    tail: &'a [u8],
    path: &'a Path,
}

impl Source for TailSource<'_> {
    fn len(&self) -> u64 {
        self.len
    }
    fn read(&self, pos: u64, len: usize) -> Result<Vec<u8>> {
        let tail_at = self.len.saturating_sub(self.tail.len() as u64);
        let end = pos.saturating_add(len as u64);
        if end <= self.head.len() as u64
            && let Some(bytes) = self.head.get(pos as usize..end as usize)
        {
            return Ok(bytes.to_vec());
        }
        if pos >= tail_at
            && end <= self.len
            && let from = (pos - tail_at) as usize
            && let Some(bytes) = from.checked_add(len).and_then(|to| self.tail.get(from..to))
        {
            return Ok(bytes.to_vec());
        }
        Err(Error::corrupted(
            self.path,
            pos,
            format!("bytes {pos}..{end} lie outside the recorded header and tail of the archive"),
        ))
    }
}

/// Identities handed to opened archives, never reused within a process.
static NEXT_ARCHIVE_ID: AtomicU64 = AtomicU64::new(1);

/// A validated archive segment: its footer and block index in memory. Blocks
/// are read and checked on demand, each read opening the file anew, so a
/// year of warm archives holds no file descriptors while idle.
#[derive(Debug)]
pub(crate) struct Archive {
    /// This opening's identity, unique in the process (what caches key
    /// blocks by: a path or an address can come back holding other records).
    pub(crate) id: u64,
    pub(crate) path: PathBuf,
    pub(crate) summary: ArchiveSummary,
    pub(crate) blocks: Vec<BlockEntry>,
    /// Set for an archive whose bytes live elsewhere (the remote warm
    /// tier): blocks are fetched through it instead of read from `path`.
    pub(crate) fetcher: Option<std::sync::Arc<dyn BlockFetcher>>,
}

impl Archive {
    /// Opens `path`, checking everything but the blocks' contents.
    pub(crate) fn open(path: &Path) -> Result<Archive> {
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .len();
        let (summary, blocks) = open_source(
            &FileSource {
                file: &file,
                path,
                len,
            },
            path,
        )?;
        Ok(Archive {
            id: NEXT_ARCHIVE_ID.fetch_add(1, Ordering::Relaxed),
            path: path.to_path_buf(),
            summary,
            blocks,
            fetcher: None,
        })
    }

    /// Opens an archive of `len` bytes held elsewhere from its first
    /// `head` bytes and last `tail` bytes (at least from the block index to
    /// the end), checking them like [`Archive::open`]; `path` names it in
    /// errors, `fetcher` brings its blocks.
    #[cfg_attr(
        not(feature = "tier-s3"),
        expect(
            dead_code,
            reason = "only the object-store warm tier (feature tier-s3) uses it"
        )
    )]
    pub(crate) fn open_recorded(
        path: &Path,
        len: u64,
        head: &[u8],
        tail: &[u8],
        fetcher: std::sync::Arc<dyn BlockFetcher>,
    ) -> Result<Archive> {
        let src = TailSource {
            len,
            head,
            tail,
            path,
        };
        let (summary, blocks) = open_source(&src, path)?;
        Ok(Archive {
            id: NEXT_ARCHIVE_ID.fetch_add(1, Ordering::Relaxed),
            path: path.to_path_buf(),
            summary,
            blocks,
            fetcher: Some(fetcher),
        })
    }

    /// Where the block index starts: the archive's bytes from here to its
    /// end are what [`Archive::open_recorded`] needs besides the header.
    #[cfg_attr(
        not(feature = "tier-s3"),
        expect(
            dead_code,
            reason = "only the object-store warm tier (feature tier-s3) uses it"
        )
    )]
    pub(crate) fn index_position(&self) -> u64 {
        self.summary.index_position
    }

    pub(crate) fn base(&self) -> u64 {
        self.summary.base_offset
    }

    pub(crate) fn next(&self) -> u64 {
        self.summary.next_offset
    }

    /// Reads, decompresses and checks block `i`. A file that retention
    /// removed meanwhile is an `Io` error of kind `NotFound`.
    pub(crate) fn read_block(&self, i: usize) -> Result<Bytes> {
        let e = self.blocks.get(i).ok_or_else(|| {
            Error::invalid(
                format!("block {i} of archive {}", self.path.display()),
                format!("the archive has {} blocks", self.blocks.len()),
            )
        })?;
        if let Some(fetcher) = &self.fetcher {
            let compressed = fetcher.compressed_block(self, i)?;
            if compressed.len() != e.compressed_len as usize {
                return Err(Error::corrupted(
                    &self.path,
                    e.position,
                    format!(
                        "block at offsets {}..={}: fetched {} bytes, the index says {}",
                        e.first_offset,
                        e.last_offset,
                        compressed.len(),
                        e.compressed_len
                    ),
                ));
            }
            return decode_block(&compressed, e, &self.path);
        }
        let file = File::open(&self.path).map_err(|err| Error::io("open", &self.path, err))?;
        let src = FileSource {
            file: &file,
            path: &self.path,
            len: self.summary.file_bytes,
        };
        let compressed = src.read(e.position, e.compressed_len as usize)?;
        decode_block(&compressed, e, &self.path)
    }

    /// The block holding `offset` (the last one if `offset` is past the end).
    pub(crate) fn block_for_offset(&self, offset: u64) -> usize {
        self.blocks
            .partition_point(|b| b.last_offset < offset)
            .min(self.blocks.len() - 1)
    }
}

mod write;

pub(crate) use write::{ArchiveMeta, write_archive};

#[cfg(test)]
mod tests;
