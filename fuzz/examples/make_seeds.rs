//! Writes seed inputs for the fuzz targets, made with the library itself:
//! `cargo run --example make_seeds -- <out dir>` (default `seeds`) creates
//! `<out>/batch_decode/`, `<out>/recovery_segment/` and
//! `<out>/recovery_two_segments/`. Deterministic: fixed timestamps and values.

use std::fs;
use std::path::Path;

use eventfabric::batch::BatchEncoder;
use eventfabric::{Durability, Log, LogConfig};
use eventfabric_fuzz::{CHECKPOINT_LEN, FOOTER_LEN, flags, looks_like_checkpoint};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn batch(base: u64, durable: u64, records: &[(i64, &[u8])]) -> Vec<u8> {
    let mut enc = BatchEncoder::default();
    enc.begin(base, durable, Some(1_780_000_000_000_000 + base as i64));
    for (ts, v) in records {
        enc.push(*ts, v);
    }
    enc.finish().to_vec()
}

fn config(segment_bytes: u64, dense: bool) -> LogConfig {
    let mut c = LogConfig::default();
    c.segment_bytes = segment_bytes;
    c.durability = Durability::Os;
    if dense {
        c.index_interval_bytes = 64;
    }
    c
}

/// Appends `n` small batches with fixed timestamps (some out of order).
fn fill(log: &Log, n: usize, start: i64) -> Result<()> {
    for i in 0..n {
        let t = start + (i as i64 % 3) * 7 - (i as i64 % 2) * 5;
        let v1 = format!("event-{i}");
        let v2 = format!("payload.{}", i * 13);
        if i % 2 == 0 {
            log.append_batch_with_timestamps(&[(t, v1.as_bytes()), (t + 3, v2.as_bytes())])?;
        } else {
            log.append_batch_with_timestamps(&[(t, v1.as_bytes())])?;
        }
    }
    Ok(())
}

/// Drops the zero-filled reserved space after the data of an active segment.
fn strip_zeros(mut b: Vec<u8>) -> Vec<u8> {
    let end = b.iter().rposition(|&x| x != 0).map_or(0, |p| p + 1);
    b.truncate(end);
    b
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    fs::read(dir.join(name)).unwrap_or_default()
}

fn u16_chunk(out: &mut Vec<u8>, chunk: &[u8]) {
    let n = chunk.len().min(u16::MAX as usize);
    out.extend_from_slice(&(n as u16).to_le_bytes());
    out.extend_from_slice(&chunk[..n]);
}

fn checkpoint_field(cp: &[u8]) -> Vec<u8> {
    let mut c = cp.to_vec();
    c.resize(CHECKPOINT_LEN, 0);
    c
}

/// `flags [checkpoint index_len index] segment` (recovery_segment layout).
fn one_segment_input(f: u8, cp: &[u8], index: &[u8], seg: &[u8]) -> Vec<u8> {
    let mut out = vec![f];
    if f & flags::AUX_FILES != 0 {
        out.extend_from_slice(&checkpoint_field(cp));
        u16_chunk(&mut out, index);
    }
    out.extend_from_slice(seg);
    out
}

/// recovery_two_segments layout.
fn two_segment_input(
    f: u8,
    base2: u64,
    seg1: &[u8],
    cp: &[u8],
    index2: &[u8],
    index1: &[u8],
    seg2: &[u8],
) -> Vec<u8> {
    let mut out = vec![f];
    out.extend_from_slice(&base2.to_le_bytes());
    u16_chunk(&mut out, seg1);
    if f & flags::AUX_FILES != 0 {
        out.extend_from_slice(&checkpoint_field(cp));
        u16_chunk(&mut out, index2);
    }
    if f & flags::INDEX_FIRST != 0 {
        u16_chunk(&mut out, index1);
    }
    out.extend_from_slice(seg2);
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    fs::create_dir_all(dir)?;
    fs::write(dir.join(name), bytes)?;
    Ok(())
}

fn batch_seeds(out: &Path) -> Result<()> {
    let out = out.join("batch_decode");
    write(
        &out,
        "one-record",
        &batch(0, 0, &[(1_700_000_000_000_000, b"hello")]),
    )?;
    write(
        &out,
        "three-records-out-of-order",
        &batch(42, 40, &[(5, b"a"), (3, b""), (9, b"ccc")]),
    )?;
    write(&out, "empty-value", &batch(7, 7, &[(0, b"")]))?;
    write(
        &out,
        "negative-and-extreme-ts",
        &batch(
            1 << 40,
            1 << 39,
            &[(-1, b"x"), (i64::MIN, b"y"), (i64::MAX, b"z")],
        ),
    )?;
    write(
        &out,
        "near-max-offset",
        &batch(u64::MAX - 2, u64::MAX, &[(1, b"p"), (2, b"q")]),
    )?;
    let big = vec![0xA5u8; 300];
    write(
        &out,
        "larger-value",
        &batch(100, 0, &[(10, &big), (11, b"tail")]),
    )?;
    // Trailing bytes after a valid batch are ignored by parse.
    let mut trailing = batch(3, 0, &[(1, b"abc")]);
    trailing.extend_from_slice(&batch(4, 0, &[(2, b"def")]));
    write(&out, "two-batches-back-to-back", &trailing)?;
    Ok(())
}

fn recovery_segment_seeds(out: &Path, work: &Path) -> Result<()> {
    let out = out.join("recovery_segment");

    // A closed log: batches, index and checkpoint; dense index for entries.
    let d = work.join("closed");
    let log = Log::open(&d, config(4096, true))?;
    fill(&log, 12, 1_000_000)?;
    log.close()?;
    let seg = strip_zeros(read(&d, "00000000000000000000.log"));
    let idx = read(&d, "00000000000000000000.index");
    let cp = read(&d, "checkpoint");
    assert!(looks_like_checkpoint(&cp), "closed log has a checkpoint");
    write(&out, "plain", &one_segment_input(0, &[], &[], &seg))?;
    write(
        &out,
        "plain-fix",
        &one_segment_input(flags::FIX_CRCS, &[], &[], &seg),
    )?;
    let aux = flags::AUX_FILES | flags::DENSE_INDEX;
    write(
        &out,
        "with-checkpoint",
        &one_segment_input(aux, &cp, &idx, &seg),
    )?;
    write(
        &out,
        "with-checkpoint-fix-roll",
        &one_segment_input(aux | flags::FIX_CRCS | flags::ROLL, &cp, &idx, &seg),
    )?;

    // Torn tail: the last batch cut short.
    let torn = &seg[..seg.len() - 7];
    write(&out, "torn-tail", &one_segment_input(0, &[], &[], torn))?;
    write(
        &out,
        "torn-tail-repair-mode",
        &one_segment_input(flags::REPAIR_MODE, &[], &[], torn),
    )?;

    // Checkpoint behind the data: reopen, append more, crash (no checkpoint).
    let log = Log::open(&d, config(4096, true))?;
    fill(&log, 5, 2_000_000)?;
    log.flush()?;
    log.simulate_crash();
    let seg2 = strip_zeros(read(&d, "00000000000000000000.log"));
    let idx2 = read(&d, "00000000000000000000.index");
    let cp2 = read(&d, "checkpoint");
    write(
        &out,
        "checkpoint-behind-tail",
        &one_segment_input(aux, &cp2, &idx2, &seg2),
    )?;

    // Damage in the middle of durable data (one byte flipped).
    let mut damaged = seg2.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x40;
    write(
        &out,
        "damaged-middle",
        &one_segment_input(0, &[], &[], &damaged),
    )?;
    write(
        &out,
        "damaged-middle-repair-mode",
        &one_segment_input(flags::REPAIR_MODE, &[], &[], &damaged),
    )?;

    // A sealed segment (footer at the end) as the only file.
    let d = work.join("sealed");
    let log = Log::open(&d, config(4096, true))?;
    fill(&log, 6, 3_000_000)?;
    log.roll()?;
    log.close()?;
    let sealed = read(&d, "00000000000000000000.log");
    let sidx = read(&d, "00000000000000000000.index");
    write(
        &out,
        "sealed-only",
        &one_segment_input(0, &[], &[], &sealed),
    )?;
    write(
        &out,
        "sealed-with-index",
        &one_segment_input(flags::AUX_FILES | flags::FIX_CRCS, &[], &sidx, &sealed),
    )?;
    // Only the footer of that segment, CRCs repaired: its fields (data
    // length, offsets, index pointer) against a file that holds nothing else,
    // small enough that mutations land on them (found log.rs `read_footer`'s
    // `data_len + FOOTER_LEN` overflow).
    write(
        &out,
        "sealed-footer-only-fix",
        &one_segment_input(flags::FIX_CRCS, &[], &[], &sealed[sealed.len() - FOOTER_LEN..]),
    )?;
    // Sealed, but the trim past the footer did not happen (zeros after it).
    let mut untrimmed = sealed.clone();
    untrimmed.extend_from_slice(&[0u8; 100]);
    write(
        &out,
        "sealed-untrimmed",
        &one_segment_input(0, &[], &[], &untrimmed),
    )?;
    Ok(())
}

fn two_segment_seeds(out: &Path, work: &Path) -> Result<()> {
    let out = out.join("recovery_two_segments");
    let d = work.join("two");
    let log = Log::open(&d, config(1024, true))?;
    fill(&log, 14, 5_000_000)?;
    log.close()?;
    let segs = log_segments(&d)?;
    assert!(segs.len() >= 2, "expected a roll, got {segs:?}");
    // The first two segments only (the first is sealed).
    let base2 = segs[1];
    let seg1 = read(&d, &eventfabric_fuzz::segment_name(0));
    let idx1 = read(&d, &eventfabric_fuzz::index_name(0));
    let seg2_raw = read(&d, &eventfabric_fuzz::segment_name(base2));
    let idx2 = read(&d, &eventfabric_fuzz::index_name(base2));
    let cp = read(&d, "checkpoint");
    let sealed2 =
        seg2_raw.len() >= 64 && seg2_raw[seg2_raw.len() - 64..][..4] == [0xEF, b'F', b'S', b'F'];
    let seg2 = if sealed2 {
        seg2_raw.clone()
    } else {
        strip_zeros(seg2_raw.clone())
    };
    let all = flags::AUX_FILES | flags::INDEX_FIRST | flags::DENSE_INDEX;
    write(
        &out,
        "contiguous",
        &two_segment_input(0, base2, &seg1, &[], &[], &[], &seg2),
    )?;
    write(
        &out,
        "contiguous-with-indexes",
        &two_segment_input(all, base2, &seg1, &cp, &idx2, &idx1, &seg2),
    )?;
    write(
        &out,
        "contiguous-with-indexes-fix-roll",
        &two_segment_input(
            all | flags::FIX_CRCS | flags::ROLL,
            base2,
            &seg1,
            &cp,
            &idx2,
            &idx1,
            &seg2,
        ),
    )?;
    write(
        &out,
        "gap",
        &two_segment_input(0, base2 + 5, &seg1, &[], &[], &[], &seg2),
    )?;
    write(
        &out,
        "gap-repair-mode",
        &two_segment_input(flags::REPAIR_MODE, base2 + 5, &seg1, &[], &[], &[], &seg2),
    )?;
    // First segment lost its footer (torn seal) while a later one exists.
    let unsealed = &seg1[..seg1.len() - 64];
    write(
        &out,
        "first-without-footer",
        &two_segment_input(0, base2, unsealed, &[], &[], &[], &seg2),
    )?;
    write(
        &out,
        "first-without-footer-repair-mode",
        &two_segment_input(flags::REPAIR_MODE, base2, unsealed, &[], &[], &[], &seg2),
    )?;
    // Index of the first segment damaged (must be rebuilt, never trusted).
    let mut bad_idx1 = idx1.clone();
    if let Some(b) = bad_idx1.get_mut(5) {
        *b ^= 0xFF;
    }
    write(
        &out,
        "first-index-damaged",
        &two_segment_input(
            flags::INDEX_FIRST | flags::DENSE_INDEX,
            base2,
            &seg1,
            &[],
            &[],
            &bad_idx1,
            &seg2,
        ),
    )?;
    // A lone segment at the top of the offset space (NO_FIRST): its batches
    // end at u64::MAX - 1, the last offset an append can still take.
    let top = u64::MAX - 7;
    let mut high = Vec::new();
    for i in 0..3u64 {
        let t = i as i64 * 10;
        high.extend_from_slice(&batch(
            top + 2 * i,
            top + 2 * i,
            &[(t, b"high"), (t + 1, b"offsets")],
        ));
    }
    write(
        &out,
        "top-of-offsets-only",
        &two_segment_input(flags::NO_FIRST, top, &[], &[], &[], &[], &high),
    )?;
    // (The same with ROLL, which then appends past u64::MAX, is kept under
    // regressions/recovery_two_segments/append-past-top-of-offsets: a seed
    // that panics would stop every plain fuzzing run at start-up.)
    Ok(())
}

fn log_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut bases: Vec<u64> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    bases.sort_unstable();
    Ok(bases)
}

/// Snapshot files exported from small topics of fixture events: whole, a
/// partition subset with an offset range, and an empty range.
fn snapshot_seeds(out: &Path, work: &Path) -> Result<()> {
    use eventfabric::snapshot::{Bound, ExportOptions, export};
    use eventfabric::{Fabric, FabricConfig, FsyncPolicy, TopicConfig};
    let dir = out.join("snapshot_decode");
    let data = work.join("snapshot-data");
    let fabric = Fabric::open(&data, FabricConfig::with_fsync(FsyncPolicy::Os))?;
    let mut config = TopicConfig::with_partitions(2);
    config.fsync = FsyncPolicy::Os;
    fabric.create_topic("seed.snap.v1", config)?;
    let mut generator = eventfabric::fixtures::FixtureGenerator::new(7, 3);
    let events: Vec<_> = generator.mixed().take(6).collect();
    fabric
        .producer("seed.snap.v1", "seeds")?
        .publish_batch(&events)?;
    let mut subset = ExportOptions::default();
    subset.partitions = Some(vec![1]);
    subset.from = Bound::Offset(1);
    let mut empty = ExportOptions::default();
    empty.from = Bound::Offset(1000);
    for (name, options) in [
        ("whole", ExportOptions::default()),
        ("subset", subset),
        ("empty", empty),
    ] {
        let file = work.join(format!("{name}.snap"));
        export(&fabric, "seed.snap.v1", &file, &options)?;
        write(&dir, name, &fs::read(&file)?)?;
    }
    fabric.close()?;
    Ok(())
}

fn main() -> Result<()> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "seeds".into());
    let out = Path::new(&out);
    let work = tempfile::tempdir()?;
    batch_seeds(out)?;
    recovery_segment_seeds(out, work.path())?;
    two_segment_seeds(out, work.path())?;
    snapshot_seeds(out, work.path())?;
    for t in [
        "batch_decode",
        "recovery_segment",
        "recovery_two_segments",
        "snapshot_decode",
    ] {
        let n = fs::read_dir(out.join(t))?.count();
        println!("{}: {n} seeds", out.join(t).display());
    }
    Ok(())
}
