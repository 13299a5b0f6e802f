//! Entry points of the fuzz targets in `fuzz/`, one function per target, so
//! that the cargo-fuzz binaries (`fuzz/fuzz_targets/*.rs`, one call each) and
//! the stable replay of every saved reproducer (`tests/fuzz_regressions.rs`)
//! run exactly the same code. Hidden from the docs; not for applications.
//!
//! Every entry point must return normally whatever its input: a library
//! `Err` is a pass. A panic is a finding — either a bug the library hit on
//! hostile input (an overflow, an index out of range), or one of the oracles
//! below (a parsed batch that does not re-encode to its bytes, a peek that
//! disagrees with the full envelope decoder, an archive that verifies but
//! contradicts itself).
//!
//! The byte layouts repeated here (batch, footer, checkpoint, archive,
//! snapshot) are used only to *repair checksums* of fuzzer-made inputs, so
//! mutations reach the code behind the CRC checks; never to judge results.
//! Their integer fields are read through `storage::le`, like the library's.
#![expect(
    clippy::indexing_slicing,
    reason = "a fuzz harness behind `failpoints`, not host code: its checksum fixers and \
              oracles slice regions their own loops just bounded, and a panic in it is a \
              reported finding, which is what a harness is for"
)]

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use bytes::Bytes;

use crate::envelope::{EnvelopeHead, EnvelopeRef};
use crate::storage::batch::{BatchEncoder, BatchView, HEADER_LEN, parse_header};
use crate::storage::le;
use crate::{Durability, Log, LogConfig, ReadLimit, RecoveryMode};

const PATH: &str = "fuzz-input";

/// The fuzz targets, by the name of their directory under
/// `fuzz/regressions/` and their binary in `fuzz/fuzz_targets/`.
pub const TARGETS: [&str; 6] = [
    "batch_decode",
    "recovery_segment",
    "recovery_two_segments",
    "snapshot_decode",
    "archive_decode",
    "state_decode",
];

/// Runs the entry point of the target called `target` on `data`; the
/// recovery targets write their files under `scratch` (emptied first).
/// `Err` when no target has that name.
pub fn run(target: &str, data: &[u8], scratch: &Path) -> Result<(), String> {
    match target {
        "batch_decode" => batch_decode(data),
        "recovery_segment" => recovery_segment(data, scratch),
        "recovery_two_segments" => recovery_two_segments(data, scratch),
        "snapshot_decode" => snapshot_decode(data),
        "archive_decode" => archive_decode(data),
        "state_decode" => state_decode(data),
        _ => return Err(format!("no fuzz entry point is called {target:?}")),
    }
    Ok(())
}

/// Whether this build of the library panics on arithmetic overflow. The
/// replay test asserts it: a reproducer of an overflow only fails when the
/// library is built with overflow checks (`Cargo.toml` enables them for the
/// release profile too).
pub fn overflow_checks_enabled() -> bool {
    let max = std::hint::black_box(u8::MAX);
    std::panic::catch_unwind(|| std::hint::black_box(max) + std::hint::black_box(1)).is_err()
}

// ---------------------------------------------------------------------------
// batch_decode
// ---------------------------------------------------------------------------

/// Target `batch_decode`: arbitrary bytes into the batch decoder, then the
/// same bytes with the batch CRC repaired. A batch that parses must agree
/// with `parse_header`, iterate fully and re-encode to exactly its bytes.
pub fn batch_decode(data: &[u8]) {
    // The raw bytes, as a reader of a damaged file would see them.
    check_batch(data);
    // The same bytes with the CRC repaired, so mutations of the header fields
    // and records get past the checksum and exercise the structural checks.
    if let Ok(h) = parse_header(data) {
        let len = h.length as usize;
        if len >= h.header_len() && len <= data.len() {
            let mut fixed = data[..len].to_vec();
            let crc = crc32fast::hash(&fixed[16..]);
            fixed[12..16].copy_from_slice(&crc.to_le_bytes());
            check_batch(&fixed);
        }
    }
}

fn check_batch(data: &[u8]) {
    let header = parse_header(data);
    let Ok(view) = BatchView::parse(data) else {
        return;
    };
    let h = view.header;
    assert_eq!(
        header.as_ref().ok(),
        Some(&h),
        "parse_header disagrees with BatchView::parse"
    );
    assert_eq!(view.as_bytes().len(), h.length as usize);

    let mut enc = BatchEncoder::default();
    enc.begin(h.base_offset, h.durable_offset, h.appended_at);
    let mut n: u64 = 0;
    for r in view.records() {
        assert_eq!(
            Some(r.offset),
            h.base_offset.checked_add(n),
            "record offsets are not consecutive"
        );
        assert_eq!(
            &view.as_bytes()[r.value_start..r.value_start + r.value.len()],
            r.value
        );
        enc.push(r.timestamp, r.value);
        n += 1;
    }
    assert_eq!(
        n,
        u64::from(h.count),
        "records() yields a different count than the header"
    );
    assert_eq!(
        enc.finish(),
        view.as_bytes(),
        "re-encoding a parsed batch changed its bytes"
    );
}

// ---------------------------------------------------------------------------
// snapshot_decode
// ---------------------------------------------------------------------------

/// Target `snapshot_decode`: arbitrary bytes into `snapshot::decode` (the
/// validation every import runs first), then with every CRC recomputed. A
/// file that decodes has the footer's record count, only listed partitions,
/// strictly increasing offsets per partition and valid envelopes.
pub fn snapshot_decode(data: &[u8]) {
    check_snapshot(data);
    if let Some(fixed) = repair_snapshot(data) {
        check_snapshot(&fixed);
    }
}

fn check_snapshot(data: &[u8]) {
    let Ok((info, records)) = crate::ops::snapshot::decode(data) else {
        return;
    };
    assert_eq!(records.len() as u64, info.records, "footer count disagrees");
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    for r in &records {
        assert!(info.partitions.contains(&r.partition), "unlisted partition");
        if let Some(&prev) = last.get(&r.partition) {
            assert!(r.offset > prev, "offsets do not increase");
        }
        last.insert(r.partition, r.offset);
        assert!(
            EnvelopeRef::decode(&r.value).is_ok(),
            "invalid envelope accepted"
        );
    }
}

fn put_crc(b: &mut [u8], at: usize, crc: u32) {
    if let Some(slot) = b.get_mut(at..at + 4) {
        slot.copy_from_slice(&crc.to_le_bytes());
    }
}

/// Recomputes every CRC of a snapshot-shaped input (header, header metadata,
/// blocks, footer) and points the trailer at the footer, as far as the
/// length fields allow.
fn repair_snapshot(data: &[u8]) -> Option<Vec<u8>> {
    let mut b = data.to_vec();
    let meta_len = le_u32(&b, 16)?;
    let meta_end = 32usize.checked_add(meta_len)?;
    let meta_crc = crc32fast::hash(b.get(32..meta_end)?);
    put_crc(&mut b, 20, meta_crc);
    let header_crc = crc32fast::hash(b.get(..28)?);
    put_crc(&mut b, 28, header_crc);
    let mut pos = meta_end;
    loop {
        match b.get(pos..pos + 4)? {
            b"SBLK" => {
                let len = le_u32(&b, pos + 12)?;
                let end = (pos + 20).checked_add(len)?;
                let mut h = crc32fast::Hasher::new();
                h.update(b.get(pos..pos + 16)?);
                h.update(b.get(pos + 20..end)?);
                let crc = h.finalize();
                put_crc(&mut b, pos + 16, crc);
                pos = end;
            }
            b"SFTR" => {
                let len = le_u32(&b, pos + 20)?;
                let end = (pos + 24).checked_add(len)?;
                let crc = crc32fast::hash(b.get(pos..end)?);
                put_crc(&mut b, end, crc);
                if let Some(slot) = b.get_mut(end + 4..end + 12) {
                    slot.copy_from_slice(&(pos as u64).to_le_bytes());
                }
                return Some(b);
            }
            _ => return Some(b),
        }
    }
}

// ---------------------------------------------------------------------------
// archive_decode
// ---------------------------------------------------------------------------

const ARCHIVE_FIX_CRCS: u8 = 1;
const ARCHIVE_TRAILER_LEN: usize = 16;
const ARCHIVE_ENTRY_LEN: usize = 48;

/// Target `archive_decode`: the first byte is flags (bit 0: repair the
/// block, index and footer CRCs), the rest an archive segment (warm/cold
/// tier file) for `archive::verify_bytes`. An archive that verifies must
/// agree with itself (size, record count, blocks, time range).
pub fn archive_decode(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if flags & ARCHIVE_FIX_CRCS != 0 {
        let _ = fix_archive_crcs(&mut bytes);
    }
    let name = Path::new("fuzz.archive");
    if let Ok(s) = crate::storage::archive::verify_bytes(&bytes, name) {
        assert_eq!(s.file_bytes, bytes.len() as u64);
        assert_eq!(
            Some(s.record_count),
            s.next_offset.checked_sub(s.base_offset)
        );
        assert!(s.block_count > 0 && s.min_timestamp <= s.max_timestamp);
        assert!(s.raw_bytes >= s.record_count.saturating_mul(16));
    }
}

fn le_u16(b: &[u8], at: usize) -> Option<usize> {
    le::u16_at(b, at).map(usize::from)
}
fn le_u32(b: &[u8], at: usize) -> Option<usize> {
    le::u32_at(b, at).and_then(|v| usize::try_from(v).ok())
}
fn le_u64(b: &[u8], at: usize) -> Option<usize> {
    le::u64_at(b, at).and_then(|v| usize::try_from(v).ok())
}

/// Rewrites the block CRCs, the index CRC and the footer CRC to match the
/// bytes (mirrors the layout in `src/archive.rs`; only used to repair sums).
fn fix_archive_crcs(b: &mut [u8]) -> Option<()> {
    let trailer = b.len().checked_sub(ARCHIVE_TRAILER_LEN)?;
    let footer_len = le_u32(b, trailer)?;
    let footer = trailer.checked_sub(footer_len)?;
    let topic_len = le_u16(b, footer)?;
    // Fields after the topic: partition u32, base, next, min_ts, max_ts,
    // count, raw (u64 each), block_count u32, index_position u64, index_len
    // u32, index_crc u32.
    let after_topic = footer.checked_add(2 + topic_len)?;
    let index_pos_at = after_topic.checked_add(4 + 6 * 8 + 4)?;
    let index_pos = le_u64(b, index_pos_at)?;
    let index_len = le_u32(b, index_pos_at + 8)?;
    let index_crc_at = index_pos_at + 12;
    let index_end = index_pos.checked_add(index_len)?;
    if index_end > b.len() {
        return None;
    }
    for e in (index_pos..index_end).step_by(ARCHIVE_ENTRY_LEN) {
        if e + ARCHIVE_ENTRY_LEN > index_end {
            break;
        }
        let pos = le_u64(b, e + 24)?;
        let len = le_u32(b, e + 32)?;
        if let Some(block) = b.get(pos..pos.checked_add(len)?) {
            let crc = crc32fast::hash(block);
            b[e + 40..e + 44].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&b[index_pos..index_end]);
    b.get_mut(index_crc_at..index_crc_at + 4)?
        .copy_from_slice(&crc.to_le_bytes());
    let crc = crc32fast::hash(b.get(footer..trailer)?);
    b.get_mut(trailer + 4..trailer + 8)?
        .copy_from_slice(&crc.to_le_bytes());
    Some(())
}

// ---------------------------------------------------------------------------
// state_decode
// ---------------------------------------------------------------------------

/// Target `state_decode`: the first byte picks the decoder (mod 4): 0 — a
/// whole state-log file whose intact payloads then go through the
/// cursor-log and queue-state decoders; 1 — the rest cut into payloads
/// (each a length byte and that many bytes) straight into those decoders,
/// past the container's CRCs; 2 — a dead-letter record; 3 — a record for
/// the field peeks. The field peeks run on every input ([`record_peeks`]).
pub fn state_decode(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            if let Ok(records) = state_log(rest) {
                let _ = cursor_records(&records);
                let _ = queue_records(&records);
            }
        }
        1 => {
            let records = length_prefixed(rest);
            let _ = cursor_records(&records);
            let _ = queue_records(&records);
        }
        2 => {
            let _ = dead_letter(rest);
        }
        _ => {}
    }
    record_peeks(rest);
}

fn length_prefixed(mut rest: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let n = (len as usize).min(tail.len());
        out.push(tail[..n].to_vec());
        rest = &tail[n..];
    }
    out
}

/// Parses `bytes` as a state-log file, as recovery does; the intact payloads.
pub fn state_log(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    crate::storage::statelog::parse_bytes(bytes, Path::new(PATH)).map_err(|e| e.to_string())
}

/// Replays state-log payloads as a consumer group's cursor log; how many
/// partitions end up committed.
pub fn cursor_records(records: &[Vec<u8>]) -> Result<usize, String> {
    crate::consume::group::store::replay_for_fuzzing(records, Path::new(PATH))
        .map_err(|e| e.to_string())
}

/// Folds state-log payloads as a queue's state log.
pub fn queue_records(records: &[Vec<u8>]) -> Result<(), String> {
    crate::consume::queue_state::fold(records, Path::new(PATH))
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Decodes `bytes` as a dead-letter record.
pub fn dead_letter(bytes: &[u8]) -> Result<(), String> {
    crate::consume::dlq::decode(&Bytes::copy_from_slice(bytes), 0, 0).map(drop)
}

/// Runs every field peek on `bytes` and panics if one disagrees with the
/// full envelope decoder: where the decoder accepts the bytes, each peek
/// returns what it decoded; where the bytes are not exactly one MessagePack
/// value (bytes after the envelope array, or an array cut short), no peek
/// takes them for an envelope. (Peeks do not validate field contents, so a
/// well-framed record the decoder refuses for, say, its event type may still
/// be peeked.)
pub fn record_peeks(bytes: &[u8]) {
    let peeked_id = crate::envelope::peek_event_id(bytes);
    let peeked_ttl = crate::envelope::peek_ttl_millis(bytes);
    let head = EnvelopeHead::peek(bytes);
    let dedup_id = crate::produce::dedup::event_id_of(bytes);
    match EnvelopeRef::decode(bytes) {
        Ok(full) => {
            assert_eq!(peeked_id, Some(full.event_id), "group event_id peek");
            assert_eq!(peeked_ttl, Some(full.ttl_millis), "group ttl peek");
            assert_eq!(dedup_id, Some(full.event_id.as_u128()), "dedup event_id");
            if let Some(head) = head {
                assert_eq!(head, EnvelopeHead::of(&full), "envelope head peek");
            }
        }
        Err(e) if !crate::envelope::is_one_value(bytes) => {
            assert_eq!(
                peeked_id, None,
                "group event_id peek of a non-envelope ({e})"
            );
            assert_eq!(peeked_ttl, None, "group ttl peek of a non-envelope ({e})");
            assert_eq!(dedup_id, None, "dedup event_id of a non-envelope ({e})");
            assert_eq!(head, None, "envelope head peek of a non-envelope ({e})");
        }
        Err(_) => {}
    }
}

// ---------------------------------------------------------------------------
// recovery_segment, recovery_two_segments
// ---------------------------------------------------------------------------

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
    /// A splitter over `data`.
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

    /// One byte (0 when none is left).
    pub fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    /// A little-endian u16 (missing bytes read as 0).
    pub fn u16(&mut self) -> u16 {
        let b = self.take(2);
        let mut a = [0u8; 2];
        a[..b.len()].copy_from_slice(b);
        u16::from_le_bytes(a)
    }

    /// A little-endian u64 (missing bytes read as 0).
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

/// Target `recovery_segment`: the input as segment
/// `00000000000000000000.log`, optionally with an index file and a
/// checkpoint cut from it, recovered in `scratch` as a reader and as the
/// writer ([`exercise`]). Input: `flags:u8` then, if `flags & AUX_FILES`:
/// `checkpoint[56] index_len:u16 index[index_len]`; the rest is the segment.
pub fn recovery_segment(data: &[u8], scratch: &Path) {
    let mut input = Input::new(data);
    let f = input.u8();
    let mut files = Vec::new();
    let mut index: Option<Vec<u8>> = None;
    let mut checkpoint: Option<Vec<u8>> = None;
    if f & flags::AUX_FILES != 0 {
        checkpoint = Some(input.take(CHECKPOINT_LEN).to_vec());
        index = Some(input.chunk().to_vec());
    }
    let mut segment = input.rest().to_vec();
    let extra_ts = segment
        .get(..8)
        .map_or(0, |b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
    if f & flags::FIX_CRCS != 0 {
        fix_segment(&mut segment, index.as_deref());
        if let Some(cp) = checkpoint.as_mut() {
            fix_checkpoint(cp, index.as_deref());
        }
    }
    files.push((SEGMENT0.to_string(), segment));
    if let Some(ix) = index {
        files.push((INDEX0.to_string(), ix));
    }
    if let Some(cp) = checkpoint {
        files.push((CHECKPOINT.to_string(), cp));
    }
    exercise(scratch, &files, f, extra_ts);
}

/// Target `recovery_two_segments`: two segment files cut from the input,
/// `00000000000000000000.log` and one whose base offset comes from the
/// input (footer validation of sealed segments, gaps, the active segment
/// after a sealed one), recovered in `scratch` ([`exercise`]).
///
/// Input: `flags:u8 base2:u64 seg1_len:u16 seg1[seg1_len]`, then if
/// `flags & AUX_FILES`: `checkpoint[56] index2_len:u16 index2[..]` (index of
/// the second segment), then if `flags & INDEX_FIRST`: `index1_len:u16
/// index1[..]`; the rest is the second segment. With `flags & NO_FIRST` the
/// first segment is parsed but not written.
pub fn recovery_two_segments(data: &[u8], scratch: &Path) {
    let mut input = Input::new(data);
    let f = input.u8();
    let base2 = input.u64();
    let mut seg1 = input.chunk().to_vec();
    let mut checkpoint: Option<Vec<u8>> = None;
    let mut index2: Option<Vec<u8>> = None;
    let mut index1: Option<Vec<u8>> = None;
    if f & flags::AUX_FILES != 0 {
        checkpoint = Some(input.take(CHECKPOINT_LEN).to_vec());
        index2 = Some(input.chunk().to_vec());
    }
    if f & flags::INDEX_FIRST != 0 {
        index1 = Some(input.chunk().to_vec());
    }
    let mut seg2 = input.rest().to_vec();
    if f & flags::FIX_CRCS != 0 {
        fix_segment(&mut seg1, index1.as_deref());
        fix_segment(&mut seg2, index2.as_deref());
        if let Some(cp) = checkpoint.as_mut() {
            fix_checkpoint(cp, index2.as_deref());
        }
    }
    let extra_ts = base2 as i64;
    let mut files = Vec::new();
    if f & flags::NO_FIRST == 0 {
        files.push((SEGMENT0.to_string(), seg1));
        if let Some(ix) = index1 {
            files.push((INDEX0.to_string(), ix));
        }
    }
    // base2 == 0 names the same file: the second segment then replaces the first.
    files.push((segment_name(base2), seg2));
    if let Some(ix) = index2 {
        files.push((index_name(base2), ix));
    }
    if let Some(cp) = checkpoint {
        files.push((CHECKPOINT.to_string(), cp));
    }
    exercise(scratch, &files, f, extra_ts);
}

/// Empties `dir` (creating it) and writes `files` (name, bytes) into it.
/// Panics (a harness failure, not a finding) when the file system refuses.
#[expect(
    clippy::expect_used,
    reason = "a fuzz harness that cannot write its scratch files must stop loudly"
)]
pub fn write_files(dir: &Path, files: &[(String, Vec<u8>)]) {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("harness: cannot clean {}: {e}", dir.display()),
    }
    fs::create_dir_all(dir).expect("harness: create scratch dir");
    for (name, bytes) in files {
        fs::write(dir.join(name), bytes).expect("harness: write input file");
    }
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
            if let Some((len, crc)) = le::u32_at(f, 52).and_then(|stated| index_ref(stated, index))
            {
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
        let Some(len) = le::u32_at(seg, p + 8).map(|len| len as usize) else {
            continue;
        };
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
    if let Some((len, crc)) = le::u32_at(cp, 44).and_then(|stated| index_ref(stated, index)) {
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
    let mut c = LogConfig {
        segment_bytes: 4096,
        durability: Durability::Os,
        ..LogConfig::default()
    };
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
    static STRICT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
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

/// Point reads at offsets taken from the log itself (every segment's base,
/// its middle and its end) and from the input: each goes through the
/// segment's sparse index, which the input may have supplied.
pub fn probe_offsets(log: &Log, extra: u64) {
    let mut offsets = vec![0, 1, u64::MAX - 1, u64::MAX, extra];
    for s in log.segments() {
        let (base, end) = (s.base_offset, s.next_offset.max(s.base_offset));
        let middle = base + (end - base) / 2;
        offsets.extend([base, middle, end.saturating_sub(1), end]);
    }
    for o in offsets {
        let _ = log.read(o, ReadLimit::records(2));
    }
}

/// Everything the recovery targets do with a prepared directory: open it
/// read-only and read everything; open it as the writer, read, look up
/// times and offsets, append, optionally roll and append again, close; open
/// it read-only again. `files` is written afresh into `dir` before each pass.
pub fn exercise(dir: &Path, files: &[(String, Vec<u8>)], flag_bits: u8, extra_ts: i64) {
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();
    let cap = total + 1024;

    // Pass 1: a reader first, on the untouched bytes.
    write_files(dir, files);
    if let Ok(ro) = Log::open_read_only(dir) {
        drain(&ro, cap);
        probe_times(&ro, extra_ts);
        probe_offsets(&ro, extra_ts as u64);
        let _ = ro.refresh();
        drain(&ro, cap);
    }

    // Pass 2: the writer recovers, reads, appends, closes; then a reader.
    write_files(dir, files);
    if let Ok(log) = Log::open(dir, config(flag_bits)) {
        let _ = log.recovery_report();
        let _ = log.segments();
        drain(&log, cap);
        probe_times(&log, extra_ts);
        probe_offsets(&log, extra_ts as u64);
        let _ = log.read(log.earliest_offset(), ReadLimit::records(8));
        let _ = log.append(b"fuzz");
        if flag_bits & flags::ROLL != 0 {
            let _ = log.roll();
            let _ = log.append(b"after roll");
        }
        drain(&log, cap);
        let _ = log.close();
    }
    if let Ok(ro) = Log::open_read_only(dir) {
        drain(&ro, cap);
        probe_times(&ro, extra_ts);
    }
}
