//! Shared helpers of the eventfabric fuzz targets: a cheap per-process scratch
//! directory, a small input splitter, optional checksum repair (so mutations
//! reach the code behind the CRC checks) and the "open, read everything,
//! append, reopen" exercise run on every recovered directory.
//!
//! The byte layouts repeated here (batch, footer, checkpoint) mirror
//! `src/batch.rs`, `src/segment.rs` and `src/checkpoint.rs`; they are used
//! only to *repair checksums* of fuzzer-made files, never to judge results.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use eventfabric::batch::HEADER_LEN;
use eventfabric::{Durability, Log, LogConfig, RecoveryMode};

/// Name of the first segment file (base offset 0).
pub const SEGMENT0: &str = "00000000000000000000.log";
/// Name of the first segment's index file.
pub const INDEX0: &str = "00000000000000000000.index";
/// Name of the recovery checkpoint file.
pub const CHECKPOINT: &str = "checkpoint";
/// Size of a checkpoint file (`src/checkpoint.rs`).
pub const CHECKPOINT_LEN: usize = 56;
/// Size of a sealed segment's footer (`src/segment.rs`).
pub const FOOTER_LEN: usize = 64;

const BATCH_MAGIC: [u8; 4] = [0xEF, b'F', b'L', b'B'];
const FOOTER_MAGIC: [u8; 4] = [0xEF, b'F', b'S', b'F'];
const CHECKPOINT_MAGIC: [u8; 4] = [0xEF, b'F', b'C', b'P'];

/// Flag bits of the first input byte of the recovery targets.
pub mod flags {
    /// Also write an index file and a `checkpoint` file taken from the input.
    pub const AUX_FILES: u8 = 1 << 0;
    /// Repair CRCs of batches, footers and the checkpoint (and the index
    /// length/CRC fields that point at the index file) before writing.
    pub const FIX_CRCS: u8 = 1 << 1;
    /// Recover with `RecoveryMode::TruncateAtFirstDamage`.
    pub const REPAIR_MODE: u8 = 1 << 2;
    /// Use a 64-byte index interval (dense index) instead of 4 KiB.
    pub const DENSE_INDEX: u8 = 1 << 3;
    /// (two-segment target) Also write an index file for the first segment.
    pub const INDEX_FIRST: u8 = 1 << 4;
    /// Roll the active segment after the append (seals it: footer, index).
    pub const ROLL: u8 = 1 << 5;
    /// (two-segment target) Leave out the first segment (and its index):
    /// the second is then the only one, at an arbitrary base offset.
    pub const NO_FIRST: u8 = 1 << 6;
}

/// Splits fuzzer input into fields; short input yields short/zero fields.
pub struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { rest: data }
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.rest.len());
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        head
    }

    pub fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    pub fn u16(&mut self) -> u16 {
        let b = self.take(2);
        let mut a = [0u8; 2];
        a[..b.len()].copy_from_slice(b);
        u16::from_le_bytes(a)
    }

    pub fn u64(&mut self) -> u64 {
        let b = self.take(8);
        let mut a = [0u8; 8];
        a[..b.len()].copy_from_slice(b);
        u64::from_le_bytes(a)
    }

    /// A chunk whose length is a little-endian u16 read first.
    pub fn chunk(&mut self) -> &'a [u8] {
        let n = self.u16() as usize;
        self.take(n)
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(usize::MAX)
    }
}

/// The file name of the segment with base offset `base`.
pub fn segment_name(base: u64) -> String {
    format!("{base:020}.log")
}

/// The file name of the index of the segment with base offset `base`.
pub fn index_name(base: u64) -> String {
    format!("{base:020}.index")
}

/// A fresh, empty directory private to this process (and `tag`), emptied
/// on every call. Lives under /dev/shm when it exists (no disk I/O).
pub fn scratch_dir(tag: &str) -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    let root = ROOT.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let parent = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        parent.join(format!("eventfabric-fuzz-{}", std::process::id()))
    });
    let dir = root.join(tag);
    match fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("harness: cannot clean {}: {e}", dir.display()),
    }
    fs::create_dir_all(&dir).expect("harness: create scratch dir");
    dir
}

/// Writes `files` (name, bytes) into a freshly emptied `dir`.
pub fn write_files(dir: &Path, files: &[(String, Vec<u8>)]) {
    for (name, bytes) in files {
        fs::write(dir.join(name), bytes).expect("harness: write input file");
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// The length and CRC an index pointer (footer or checkpoint) must carry to
/// match `index`: its stated length clamped to the file, and that prefix's CRC.
fn index_ref(stated_len: u32, index: Option<&[u8]>) -> Option<(u32, u32)> {
    let index = index?;
    let len = (stated_len as usize).min(index.len());
    Some((len as u32, crc32fast::hash(&index[..len])))
}

/// Repairs the CRC of every footer-looking and batch-looking region of a
/// segment so that mutated segments still get past the checksum checks.
/// Footers also get their index length/CRC pointed at `index` (if given).
pub fn fix_segment(seg: &mut [u8], index: Option<&[u8]>) {
    // Footers: magic at p, 64 bytes; crc at 12 covers 16..64.
    let mut p = 0;
    while p + FOOTER_LEN <= seg.len() {
        if seg[p..p + 4] == FOOTER_MAGIC {
            let f = &mut seg[p..p + FOOTER_LEN];
            if let Some((len, crc)) = index_ref(u32_at(f, 52), index) {
                put_u32(f, 52, len);
                put_u32(f, 48, crc);
            }
            let crc = crc32fast::hash(&f[16..]);
            put_u32(f, 12, crc);
        }
        p += 1;
    }
    // Batches: magic at p, length at 8; crc at 12 covers 16..length. Fix the
    // later ones first so a batch nested in another is fixed before the outer.
    let starts: Vec<usize> = (0..seg.len().saturating_sub(HEADER_LEN - 1))
        .filter(|&p| seg[p..p + 4] == BATCH_MAGIC)
        .collect();
    for &p in starts.iter().rev() {
        let len = u32_at(seg, p + 8) as usize;
        if len >= HEADER_LEN && len <= seg.len() - p {
            let crc = crc32fast::hash(&seg[p + 16..p + len]);
            put_u32(seg, p + 12, crc);
        }
    }
}

/// Repairs a checkpoint's CRC and points its index length/CRC at `index`.
pub fn fix_checkpoint(cp: &mut [u8], index: Option<&[u8]>) {
    if cp.len() != CHECKPOINT_LEN {
        return;
    }
    if let Some((len, crc)) = index_ref(u32_at(cp, 44), index) {
        put_u32(cp, 44, len);
        put_u32(cp, 48, crc);
    }
    let crc = crc32fast::hash(&cp[12..]);
    put_u32(cp, 8, crc);
}

/// Whether `cp` looks like a checkpoint at all (for seed sanity checks).
pub fn looks_like_checkpoint(cp: &[u8]) -> bool {
    cp.len() == CHECKPOINT_LEN && cp[..4] == CHECKPOINT_MAGIC
}

/// The small writer configuration the recovery targets use.
pub fn config(flag_bits: u8) -> LogConfig {
    let mut c = LogConfig::default();
    c.segment_bytes = 4096;
    c.durability = Durability::Os;
    if flag_bits & flags::REPAIR_MODE != 0 {
        c.recovery = RecoveryMode::TruncateAtFirstDamage;
    }
    if flag_bits & flags::DENSE_INDEX != 0 {
        c.index_interval_bytes = 64;
    }
    c
}

/// Reads every record from the earliest offset; errors end the read (they
/// are fine), an endless iterator is a bug. Returns the records read.
pub fn drain(log: &Log, cap: usize) -> usize {
    let Ok(iter) = log.iter(log.earliest_offset()) else {
        return 0;
    };
    let mut n = 0usize;
    let mut last: Option<u64> = None;
    let strict = strict();
    for r in iter {
        let Ok(r) = r else { break };
        n += 1;
        assert!(
            n <= cap,
            "Log::iter yielded more than {cap} records from a tiny directory (endless iterator?)"
        );
        if let Some(prev) = last.filter(|_| strict) {
            assert_eq!(
                Some(r.offset),
                prev.checked_add(1),
                "Log::iter yielded offset {} after {prev}",
                r.offset
            );
        }
        last = Some(r.offset);
    }
    n
}

/// `EVENTFABRIC_FUZZ_STRICT=1` also asserts that iteration yields
/// consecutive offsets (a correctness property, not a crash-freedom one).
fn strict() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("EVENTFABRIC_FUZZ_STRICT").is_some_and(|v| v == "1"))
}

/// Looks up a few timestamps, including ones taken from the log itself.
pub fn probe_times(log: &Log, extra: i64) {
    let mut ts = vec![i64::MIN, -1, 0, 1, i64::MAX, extra];
    ts.extend(log.segments().iter().filter_map(|s| s.max_timestamp));
    for t in ts {
        let _ = log.offset_for_time(t);
    }
}

/// Everything the recovery targets do with a prepared directory.
/// `files` is written afresh before each pass.
pub fn exercise(tag: &str, files: &[(String, Vec<u8>)], flag_bits: u8, extra_ts: i64) {
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();
    let cap = total + 1024;

    // Pass 1: a reader first, on the untouched bytes.
    let dir = scratch_dir(tag);
    write_files(&dir, files);
    if let Ok(ro) = Log::open_read_only(&dir) {
        drain(&ro, cap);
        probe_times(&ro, extra_ts);
        let _ = ro.refresh();
        drain(&ro, cap);
    }

    // Pass 2: the writer recovers, reads, appends, closes; then a reader.
    let dir = scratch_dir(tag);
    write_files(&dir, files);
    if let Ok(log) = Log::open(&dir, config(flag_bits)) {
        let _ = log.recovery_report();
        let _ = log.segments();
        drain(&log, cap);
        probe_times(&log, extra_ts);
        let _ = log.read(log.earliest_offset(), eventfabric::ReadLimit::records(8));
        let _ = log.append(b"fuzz");
        if flag_bits & flags::ROLL != 0 {
            let _ = log.roll();
            let _ = log.append(b"after roll");
        }
        drain(&log, cap);
        let _ = log.close();
    }
    if let Ok(ro) = Log::open_read_only(&dir) {
        drain(&ro, cap);
        probe_times(&ro, extra_ts);
    }
}
