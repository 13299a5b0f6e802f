//! Writes seed inputs for the `archive_decode` target, made with the library
//! itself: `cargo run --example make_archive_seeds -- <out dir>` (default
//! `seeds`) creates `<out>/archive_decode/`. Each seed is a flags byte (1:
//! repair CRCs) followed by an archive segment that eventfabric wrote.
//! Deterministic but for the archive's `created_at` field.

use std::fs;
use std::path::Path;

use eventfabric::fixtures::{FixtureGenerator, FixtureKind};
use eventfabric::{ColdAction, Fabric, FabricConfig, FsyncPolicy, TopicConfig};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const DAY_US: i64 = 86_400_000_000;

/// Archives of one topic whose sealed segments hold `batches`.
fn archives(work: &Path, batches: &[Vec<(i64, Vec<u8>)>]) -> Result<Vec<Vec<u8>>> {
    let _ = fs::remove_dir_all(work);
    let fabric = Fabric::open(work, FabricConfig::with_fsync(FsyncPolicy::Os))?;
    let mut c = TopicConfig::with_partitions(1);
    c.fsync = FsyncPolicy::Os;
    c.warm_retention_ms = 365 * 86_400_000;
    c.cold_action = ColdAction::Delete;
    fabric.create_topic("seed.archive.v1", c)?;
    let log = fabric.partition("seed.archive.v1", 0)?;
    let mut latest = 0;
    for b in batches {
        log.append_batch_with_timestamps(b)?;
        latest = b.iter().map(|r| r.0).max().unwrap_or(latest).max(latest);
    }
    log.roll()?;
    let now = jiff::Timestamp::from_microsecond(latest + 30 * DAY_US)?;
    fabric.maintain_at(now)?;
    let mut out = Vec::new();
    for p in fabric.tier_summary("seed.archive.v1")? {
        for a in p.warm {
            out.push(fs::read(&a.path)?);
        }
    }
    fabric.close()?;
    Ok(out)
}

fn write(dir: &Path, name: &str, flags: u8, archive: &[u8]) -> Result<()> {
    fs::create_dir_all(dir)?;
    let mut bytes = vec![flags];
    bytes.extend_from_slice(archive);
    fs::write(dir.join(name), bytes)?;
    Ok(())
}

fn main() -> Result<()> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "seeds".into());
    let dir = Path::new(&out).join("archive_decode");
    let work = tempfile::tempdir()?;
    let t0 = FixtureGenerator::START.as_microsecond();
    // Envelopes of the three seed kinds: schema versions in the footer.
    let mut generator = FixtureGenerator::new(5, 3);
    let envelopes: Vec<(i64, Vec<u8>)> = (0..12)
        .map(|i| {
            let e = generator.next(FixtureKind::all()[i % 3]);
            (e.emitted_at.as_microsecond(), e.to_bytes())
        })
        .collect();
    let a = archives(
        &work.path().join("a"),
        &[envelopes[..5].to_vec(), envelopes[5..].to_vec()],
    )?;
    write(&dir, "envelopes", 0, &a[0])?;
    write(&dir, "envelopes-fix-crcs", 1, &a[0])?;
    // Opaque records (not envelopes), odd timestamps, an empty value.
    let opaque = vec![
        (t0 - 5, b"x".to_vec()),
        (i64::MIN + 1, Vec::new()),
        (t0 + 9, b"opaque".to_vec()),
    ];
    let b = archives(&work.path().join("b"), &[opaque])?;
    write(&dir, "opaque-records", 1, &b[0])?;
    // Two blocks: batches past the 256 KiB block target (compressible values).
    let big: Vec<Vec<(i64, Vec<u8>)>> = (0..3)
        .map(|i| {
            vec![
                (t0 + i, vec![b'a' + i as u8; 100_000]),
                (t0 + i, vec![b'z'; 40_000]),
            ]
        })
        .collect();
    let c = archives(&work.path().join("c"), &big)?;
    write(&dir, "two-blocks", 1, &c[0])?;
    println!("{}: {} seeds", dir.display(), fs::read_dir(&dir)?.count());
    Ok(())
}
