//! One segment of a partition log: a file of batches, its index and its footer.
//!
//! Owns the segment file layout (`<base offset:020>.log` holding batches, then
//! on sealing a 64-byte checksummed footer), scanning a segment to validate it
//! and rebuild its index, telling a torn tail from corruption, and the shared
//! read-side state of a segment (its map, committed length and index).
//! It never decides when to roll, sync or truncate: that is the log's job.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::storage::batch::{self, BATCH_MAGIC, BatchView};
use crate::storage::index::{IndexBuilder, IndexView};
use crate::storage::io::Io;
use crate::storage::le::{i64_at, u32_at, u64_at};
use crate::storage::mmap;

/// Magic of a sealed segment's footer: shares the batch magic's first byte so
/// a scanner reading "the next batch header" at the end of data sees it.
pub(crate) const FOOTER_MAGIC: [u8; 4] = [0xEF, b'F', b'S', b'F'];
const FOOTER_VERSION: u8 = 1;
const F_MAGIC_AT: usize = 0;
const F_VERSION_AT: usize = F_MAGIC_AT + 4;
const F_RESERVED_AT: usize = F_VERSION_AT + 1;
const F_LENGTH_AT: usize = F_RESERVED_AT + 3;
const F_CRC_AT: usize = F_LENGTH_AT + 4;
const F_BASE_AT: usize = F_CRC_AT + 4;
const F_LAST_AT: usize = F_BASE_AT + 8;
const F_DATA_LEN_AT: usize = F_LAST_AT + 8;
const F_MAX_TS_AT: usize = F_DATA_LEN_AT + 8;
const F_INDEX_CRC_AT: usize = F_MAX_TS_AT + 8;
const F_INDEX_LEN_AT: usize = F_INDEX_CRC_AT + 4;
const F_RESERVED2_AT: usize = F_INDEX_LEN_AT + 4;
/// Size of a sealed segment's footer.
pub(crate) const FOOTER_LEN: usize = F_RESERVED2_AT + 8;

/// The summary written at the end of a sealed segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    pub base_offset: u64,
    pub last_offset: u64,
    pub data_len: u64,
    pub max_timestamp: i64,
    pub index_crc: u32,
    pub index_len: u32,
}

impl Footer {
    pub(crate) fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut b = [0u8; FOOTER_LEN];
        b[F_MAGIC_AT..F_MAGIC_AT + 4].copy_from_slice(&FOOTER_MAGIC);
        b[F_VERSION_AT] = FOOTER_VERSION;
        b[F_LENGTH_AT..F_LENGTH_AT + 4].copy_from_slice(&(FOOTER_LEN as u32).to_le_bytes());
        b[F_BASE_AT..F_BASE_AT + 8].copy_from_slice(&self.base_offset.to_le_bytes());
        b[F_LAST_AT..F_LAST_AT + 8].copy_from_slice(&self.last_offset.to_le_bytes());
        b[F_DATA_LEN_AT..F_DATA_LEN_AT + 8].copy_from_slice(&self.data_len.to_le_bytes());
        b[F_MAX_TS_AT..F_MAX_TS_AT + 8].copy_from_slice(&self.max_timestamp.to_le_bytes());
        b[F_INDEX_CRC_AT..F_INDEX_CRC_AT + 4].copy_from_slice(&self.index_crc.to_le_bytes());
        b[F_INDEX_LEN_AT..F_INDEX_LEN_AT + 4].copy_from_slice(&self.index_len.to_le_bytes());
        let crc = crc32fast::hash(&b[F_BASE_AT..]);
        b[F_CRC_AT..F_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a footer; `None` unless magic, version, length and CRC all hold.
    pub(crate) fn decode(b: &[u8]) -> Option<Footer> {
        let b = b.first_chunk::<FOOTER_LEN>()?;
        if b[F_MAGIC_AT..F_MAGIC_AT + 4] != FOOTER_MAGIC
            || b[F_VERSION_AT] != FOOTER_VERSION
            || b[F_RESERVED_AT..F_RESERVED_AT + 3] != [0, 0, 0]
            || u32_at(b, F_LENGTH_AT)? as usize != FOOTER_LEN
            || u32_at(b, F_CRC_AT)? != crc32fast::hash(&b[F_BASE_AT..])
            || u64_at(b, F_RESERVED2_AT)? != 0
        {
            return None;
        }
        let footer = Footer {
            base_offset: u64_at(b, F_BASE_AT)?,
            last_offset: u64_at(b, F_LAST_AT)?,
            data_len: u64_at(b, F_DATA_LEN_AT)?,
            max_timestamp: i64_at(b, F_MAX_TS_AT)?,
            index_crc: u32_at(b, F_INDEX_CRC_AT)?,
            index_len: u32_at(b, F_INDEX_LEN_AT)?,
        };
        (footer.last_offset >= footer.base_offset
            && footer.last_offset < u64::MAX - 1
            && footer.last_offset - footer.base_offset < u64::from(u32::MAX))
        .then_some(footer)
    }
}

/// `<dir>/<base:020>.log`
pub(crate) fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

/// `<dir>/<base:020>.index`
pub(crate) fn index_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.index"))
}

/// Parses a segment file name back into its base offset.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".log")?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// Result of scanning batches forward from a trusted point.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Position just past the last valid batch.
    pub end: u64,
    /// Offset after the last valid batch.
    pub next_offset: u64,
    /// Where and why scanning stopped, if not at the end of the bytes or at zeros.
    pub damage: Option<(u64, String)>,
    /// A valid footer found right after the last batch.
    pub footer: Option<Footer>,
}

/// Scans batches in `bytes[from..]`, expecting offsets to continue at
/// `next_offset`, feeding each valid batch to `index`.
///
/// With `thorough`, zeros where the next header should be are checked to run
/// to the end of `bytes` (data after them is damage). Only the writer (or a
/// reader of a private copy) may be thorough: a reader sharing a map with a
/// live writer must never touch bytes past the next header, which the writer
/// may trim away (mmap invariant 1).
pub(crate) fn scan(
    bytes: &[u8],
    base_offset: u64,
    from: u64,
    next_offset: u64,
    index: &mut IndexBuilder,
    thorough: bool,
) -> Scan {
    let mut pos = from as usize;
    let mut next = next_offset;
    loop {
        let rest = bytes.get(pos..).unwrap_or_default();
        if rest.is_empty() || rest.iter().take(batch::HEADER_LEN).all(|&b| b == 0) {
            // The end of data, or the start of zero-filled (reserved) space.
            return Scan {
                end: pos as u64,
                next_offset: next,
                damage: if thorough {
                    first_nonzero(rest).map(|_| (pos as u64, "zeros followed by data".into()))
                } else {
                    None
                },
                footer: None,
            };
        }
        if rest.starts_with(&FOOTER_MAGIC)
            && let Some(f) = Footer::decode(rest)
            && f.base_offset == base_offset
            && f.data_len == pos as u64
            && f.last_offset.checked_add(1) == Some(next)
        {
            return Scan {
                end: pos as u64,
                next_offset: next,
                damage: None,
                footer: Some(f),
            };
        }
        match BatchView::parse(rest) {
            Ok(view)
                if view.header.base_offset == next
                    && pos + (view.header.length as usize) <= u32::MAX as usize
                    && view.header.next_offset() - base_offset <= u64::from(u32::MAX) =>
            {
                let rel = (next - base_offset) as u32;
                index.add_batch(rel, pos as u32, view.header.max_timestamp);
                next = view.header.next_offset();
                pos += view.header.length as usize;
            }
            Ok(view) => {
                return Scan {
                    end: pos as u64,
                    next_offset: next,
                    damage: Some((
                        pos as u64,
                        format!(
                            "batch has base offset {} where {} was expected",
                            view.header.base_offset, next
                        ),
                    )),
                    footer: None,
                };
            }
            Err(e) => {
                return Scan {
                    end: pos as u64,
                    next_offset: next,
                    damage: Some((pos as u64, e.to_string())),
                    footer: None,
                };
            }
        }
    }
}

/// Position of the first non-zero byte of `bytes`.
fn first_nonzero(bytes: &[u8]) -> Option<usize> {
    let mut chunks = bytes.chunks_exact(64);
    let mut skipped = 0;
    for chunk in chunks.by_ref() {
        if chunk.iter().any(|&b| b != 0) {
            return chunk.iter().position(|&b| b != 0).map(|p| skipped + p);
        }
        skipped += 64;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b != 0)
        .map(|p| skipped + p)
}

/// A valid batch found after damage, proving the damage is not a torn tail.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LaterBatch {
    pub position: u64,
    pub base_offset: u64,
    pub durable_offset: u64,
}

/// Looks past damage at `from` for a valid batch that continues the offsets
/// and states that offsets at or above `damaged_offset` were already durable
/// when it was written. Such a batch proves the damage hit synced data
/// (corruption), rather than an unsynced tail that a crash may tear.
pub(crate) fn find_durable_batch_after(
    bytes: &[u8],
    from: u64,
    damaged_offset: u64,
) -> Option<LaterBatch> {
    let mut pos = from as usize + 1;
    while pos + batch::HEADER_LEN <= bytes.len() {
        let found = bytes
            .get(pos..)?
            .windows(4)
            .position(|w| w == BATCH_MAGIC)
            .map(|p| pos + p)?;
        if let Some(candidate) = bytes.get(found..)
            && let Ok(view) = BatchView::parse(candidate)
            && view.header.base_offset > damaged_offset
            && view.header.durable_offset > damaged_offset
        {
            return Some(LaterBatch {
                position: found as u64,
                base_offset: view.header.base_offset,
                durable_offset: view.header.durable_offset,
            });
        }
        pos = found + 1;
    }
    None
}

/// What [`Segment::extend_from_file`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extended {
    /// Still the active segment; any new batches are published.
    Grown,
    /// The writer sealed it.
    Sealed,
    /// The file at the path is no longer the one mapped.
    Replaced,
}

/// Read-side parts of a sealed segment, loaded on first use.
#[derive(Debug, Clone)]
struct Loaded {
    map: Bytes,
    index: Bytes,
}

/// Shared state of one segment, read by any number of threads.
pub(crate) struct Segment {
    pub base: u64,
    pub path: PathBuf,
    committed_len: AtomicU64,
    next_offset: AtomicU64,
    max_timestamp: AtomicI64,
    sealed: AtomicBool,
    /// Map covering at least `committed_len` bytes; replaced as the file grows.
    map: RwLock<Bytes>,
    /// The index: growing for the active segment, fixed once sealed.
    index: RwLock<SegmentIndex>,
    /// For sealed segments opened from disk: what to load lazily.
    lazy: Mutex<Option<LazySealed>>,
    /// Fast path past `lazy` once loaded.
    loaded: AtomicBool,
    /// Inode of the mapped file, for read-only views (0 when not tracked).
    file_id: AtomicU64,
    /// Point reads: one bit per 64-byte slot of the segment, set once the
    /// batch starting in that slot passed its CRC in this process.
    verified: OnceLock<Box<[AtomicU64]>>,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("path", &self.path)
            .field("base", &self.base)
            .field("next_offset", &self.next_offset())
            .field("committed_len", &self.committed_len())
            .field("sealed", &self.is_sealed())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum SegmentIndex {
    Building(IndexBuilder),
    Fixed(Bytes),
}

#[derive(Debug)]
struct LazySealed {
    footer: Footer,
    index_interval: u32,
    /// Writers may repair a bad index file; read-only opens keep the rebuilt
    /// index in memory.
    io: Option<Io>,
    dir: PathBuf,
}

/// A consistent view of a segment's published bytes.
#[derive(Debug, Clone)]
pub(crate) struct SegmentView {
    pub map: Bytes,
    pub committed_len: u64,
    pub next_offset: u64,
    pub sealed: bool,
}

impl Segment {
    /// An active (writable or tailing) segment.
    pub(crate) fn active(
        base: u64,
        path: PathBuf,
        map: Bytes,
        committed_len: u64,
        next_offset: u64,
        index: IndexBuilder,
    ) -> Segment {
        Segment {
            base,
            path,
            committed_len: AtomicU64::new(committed_len),
            next_offset: AtomicU64::new(next_offset),
            max_timestamp: AtomicI64::new(index.max_timestamp()),
            sealed: AtomicBool::new(false),
            map: RwLock::new(map),
            index: RwLock::new(SegmentIndex::Building(index)),
            lazy: Mutex::new(None),
            loaded: AtomicBool::new(true),
            file_id: AtomicU64::new(0),
            verified: OnceLock::new(),
        }
    }

    /// A sealed segment trusted through its footer; map and index load on first read.
    pub(crate) fn sealed_lazy(
        dir: &Path,
        footer: Footer,
        index_interval: u32,
        io: Option<Io>,
    ) -> Segment {
        Segment {
            base: footer.base_offset,
            path: segment_path(dir, footer.base_offset),
            committed_len: AtomicU64::new(footer.data_len),
            next_offset: AtomicU64::new(footer.last_offset + 1),
            max_timestamp: AtomicI64::new(footer.max_timestamp),
            sealed: AtomicBool::new(true),
            map: RwLock::new(Bytes::new()),
            index: RwLock::new(SegmentIndex::Fixed(Bytes::new())),
            lazy: Mutex::new(Some(LazySealed {
                footer,
                index_interval,
                io,
                dir: dir.to_path_buf(),
            })),
            loaded: AtomicBool::new(false),
            file_id: AtomicU64::new(0),
            verified: OnceLock::new(),
        }
    }

    pub(crate) fn committed_len(&self) -> u64 {
        self.committed_len.load(Ordering::Acquire)
    }

    pub(crate) fn next_offset(&self) -> u64 {
        self.next_offset.load(Ordering::Acquire)
    }

    pub(crate) fn max_timestamp(&self) -> i64 {
        self.max_timestamp.load(Ordering::Acquire)
    }

    pub(crate) fn is_sealed(&self) -> bool {
        self.sealed.load(Ordering::Acquire)
    }

    /// Installs a larger map (before publishing bytes that need it).
    pub(crate) fn set_map(&self, map: Bytes) {
        *self.map.write() = map;
    }

    /// Records a batch written at `position` in the index (writer only, before publishing).
    pub(crate) fn index_batch(&self, relative_offset: u32, position: u32, max_ts: i64) {
        if let SegmentIndex::Building(b) = &mut *self.index.write() {
            b.add_batch(relative_offset, position, max_ts);
        }
    }

    /// Publishes bytes up to `len` holding offsets below `next_offset`.
    pub(crate) fn publish(&self, len: u64, next_offset: u64, max_ts: i64) {
        self.max_timestamp.fetch_max(max_ts, Ordering::AcqRel);
        self.next_offset.store(next_offset, Ordering::Release);
        self.committed_len.store(len, Ordering::Release);
    }

    /// Remembers which file (inode) this view of the segment maps.
    pub(crate) fn set_file_id(&self, id: u64) {
        self.file_id.store(id, Ordering::Release);
    }

    /// The inode recorded by [`Segment::set_file_id`] (0 when not tracked).
    pub(crate) fn file_id(&self) -> u64 {
        self.file_id.load(Ordering::Acquire)
    }

    /// Whether the segment's file is mapped (always for active segments; for
    /// sealed ones once first read). A mapped file's inode cannot be reused.
    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// For a read-only view of a live writer's active segment: maps what the
    /// file holds now and publishes the batches that became valid since.
    pub(crate) fn extend_from_file(&self) -> Result<Extended> {
        use std::os::unix::fs::MetadataExt;
        let file = File::open(&self.path).map_err(|e| Error::io("open", &self.path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io("stat", &self.path, e))?;
        let known = self.file_id.load(Ordering::Acquire);
        if known != 0 && known != meta.ino() {
            // A repair renamed a rewritten file over this one.
            return Ok(Extended::Replaced);
        }
        let len = meta.len();
        let mut map = self.map.read().clone();
        if len > map.len() as u64 {
            map = mmap::map_read_only(&file, &self.path, len, false)?;
            self.set_map(map.clone());
        }
        let mut index = self.index.write();
        let SegmentIndex::Building(builder) = &mut *index else {
            return Ok(Extended::Sealed);
        };
        let found = scan(
            &map,
            self.base,
            self.committed_len(),
            self.next_offset(),
            builder,
            false,
        );
        let max_ts = builder.max_timestamp();
        drop(index);
        self.publish(found.end, found.next_offset, max_ts);
        if found.footer.is_some() {
            self.seal();
            return Ok(Extended::Sealed);
        }
        Ok(Extended::Grown)
    }

    /// Marks the segment sealed, freezing its index.
    pub(crate) fn seal(&self) {
        let mut index = self.index.write();
        if let SegmentIndex::Building(b) = &*index {
            *index = SegmentIndex::Fixed(Bytes::copy_from_slice(b.bytes()));
        }
        self.sealed.store(true, Ordering::Release);
    }

    /// A copy of the index bytes built so far.
    pub(crate) fn index_bytes(&self) -> Result<Bytes> {
        self.ensure_loaded()?;
        Ok(match &*self.index.read() {
            SegmentIndex::Building(b) => Bytes::copy_from_slice(b.bytes()),
            SegmentIndex::Fixed(b) => b.clone(),
        })
    }

    /// The published bytes and their bounds, consistent with each other.
    pub(crate) fn view(&self) -> Result<SegmentView> {
        self.ensure_loaded()?;
        // Load the length first: the writer installs a map covering a length
        // before publishing that length, so the map read next covers it.
        let committed_len = self.committed_len();
        let next_offset = self.next_offset();
        let sealed = self.is_sealed();
        let map = self.map.read().clone();
        Ok(SegmentView {
            committed_len: committed_len.min(map.len() as u64),
            map,
            next_offset,
            sealed,
        })
    }

    /// Where to start scanning for `offset`: (the offset of the batch
    /// starting there, its byte position).
    pub(crate) fn floor_for_offset(&self, offset: u64) -> Result<(u64, u64)> {
        self.ensure_loaded()?;
        let rel = offset.saturating_sub(self.base).min(u64::from(u32::MAX)) as u32;
        let (r, p) = match &*self.index.read() {
            SegmentIndex::Building(b) => b.view().floor_for_offset(rel),
            SegmentIndex::Fixed(b) => IndexView::new(b).floor_for_offset(rel),
        };
        Ok((self.base + u64::from(r), u64::from(p)))
    }

    /// Byte position at which to start scanning for the first record at or after `ts`.
    pub(crate) fn position_for_time(&self, ts: i64) -> Result<u64> {
        self.ensure_loaded()?;
        Ok(u64::from(match &*self.index.read() {
            SegmentIndex::Building(b) => b.view().position_for_time(ts),
            SegmentIndex::Fixed(b) => IndexView::new(b).position_for_time(ts),
        }))
    }

    /// Maps a sealed segment and loads (or rebuilds) its index on first use.
    fn ensure_loaded(&self) -> Result<()> {
        if self.loaded.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut lazy = self.lazy.lock();
        let Some(info) = lazy.as_ref() else {
            return Ok(());
        };
        let loaded = load_sealed(&self.path, info)?;
        *self.map.write() = loaded.map;
        *self.index.write() = SegmentIndex::Fixed(loaded.index);
        *lazy = None;
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether the batch at `position` was verified by an earlier point read.
    pub(crate) fn is_verified(&self, position: u64) -> bool {
        let slot = (position / 64) as usize;
        self.verified
            .get()
            .and_then(|bits| bits.get(slot / 64))
            .is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (slot % 64)) != 0)
    }

    /// Remembers that the batch at `position` passed its CRC.
    pub(crate) fn mark_verified(&self, position: u64, map_len: usize) {
        let bits = self.verified.get_or_init(|| {
            (0..map_len.div_ceil(64 * 64))
                .map(|_| AtomicU64::new(0))
                .collect()
        });
        let slot = (position / 64) as usize;
        if let Some(w) = bits.get(slot / 64) {
            w.fetch_or(1 << (slot % 64), Ordering::Relaxed);
        }
    }
}

fn load_sealed(path: &Path, info: &LazySealed) -> Result<Loaded> {
    let footer = info.footer;
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let map = mmap::map_read_only(&file, path, footer.data_len, true)?;
    let ipath = index_path(&info.dir, footer.base_offset);
    if let Some(index) = load_index_file(&ipath, footer.index_crc, footer.index_len)
        .filter(|ix| IndexView::new(ix).is_consistent(footer.data_len))
    {
        return Ok(Loaded { map, index });
    }
    // The index is a cache: rebuild it from the segment and, as the writer,
    // replace the file so the next open finds it whole.
    let mut builder = IndexBuilder::new(info.index_interval);
    let scan = scan(
        &map,
        footer.base_offset,
        0,
        footer.base_offset,
        &mut builder,
        false,
    );
    let index = Bytes::copy_from_slice(builder.bytes());
    if scan.end != footer.data_len || scan.next_offset != footer.last_offset + 1 {
        // Damaged data. The index of the valid prefix is still a correct
        // sparse index: every lookup lands at or before the damage, and a
        // read that goes on meets the damaged batch and fails naming file
        // and byte (its CRC is checked). Keeping it lets records before the
        // damage be read and lets a repair cut the damage away (`truncate`
        // views the segment). It stays in memory only: the footer's index
        // checksum would refuse it, and the next load rebuilds it again.
        let (pos, why) = scan
            .damage
            .unwrap_or((scan.end, "segment ends before its footer says".into()));
        log::warn!(
            "{}: sealed segment damaged at byte {pos} ({why}); its index is rebuilt up to there, in memory only",
            path.display()
        );
        return Ok(Loaded { map, index });
    }
    if let Some(io) = &info.io {
        log::warn!(
            "rebuilt index {} from its segment (missing, short or failing its checksum)",
            ipath.display()
        );
        io.write_file_atomic(&info.dir, &ipath, &index)?;
    }
    Ok(Loaded { map, index })
}

/// Reads an index file and checks it against the length and CRC the footer
/// or checkpoint recorded; `None` when missing or different.
pub(crate) fn load_index_file(path: &Path, crc: u32, len: u32) -> Option<Bytes> {
    let file = File::open(path).ok()?;
    let actual = file.metadata().ok()?.len();
    if actual < u64::from(len) {
        return None;
    }
    let map = mmap::map_read_only(&file, path, u64::from(len), false).ok()?;
    (crc32fast::hash(&map) == crc).then_some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_round_trips_and_rejects_damage() {
        let f = Footer {
            base_offset: 10,
            last_offset: 99,
            data_len: 4096,
            max_timestamp: 77,
            index_crc: 5,
            index_len: 32,
        };
        let bytes = f.encode();
        assert_eq!(Footer::decode(&bytes), Some(f));
        for i in 0..FOOTER_LEN {
            let mut d = bytes;
            d[i] ^= 0x10;
            assert_eq!(Footer::decode(&d), None, "byte {i}");
        }
        assert_eq!(Footer::decode(&[0u8; FOOTER_LEN]), None);
    }

    #[test]
    fn segment_names_round_trip() {
        let p = segment_path(Path::new("/x"), 42);
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(name, "00000000000000000042.log");
        assert_eq!(parse_segment_name(name), Some(42));
        assert_eq!(parse_segment_name("42.log"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.log"), None);
    }
}
