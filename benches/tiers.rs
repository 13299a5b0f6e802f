//! Criterion benchmarks of retention tiers on generated seed-like envelopes
//! (~290 B encoded, fresh events from `fixtures`, no repeats):
//!
//! - `codec`: the candidate block codecs on the batches of real hot segments
//!   (lz4_flex, zstd at levels -1, 1, 3) — compression throughput, with the
//!   ratio and decompression speed printed to stderr;
//! - `tiering`: `maintain_at` rewriting sealed hot segments into warm archive
//!   segments (verify batches, catalog schema versions, compress, write,
//!   fsync, rename, delete the hot files), in hot bytes per second, one
//!   thread, on the project disk and on tmpfs (`/dev/shm`: CPU only);
//! - `replay`: reading every event back from warm and, in the same run, from
//!   hot, raw (`next_raw`) and with every envelope field decoded in place;
//! - `maintain_noop`: `maintain_at` with nothing to do on 100 topics × 8
//!   partitions, each with a sealed segment of recent events.
//!
//! `cargo bench --bench tiers -- --warm-up-time 1 --measurement-time 3`.
//! Targets (issue 5): tiering ≥ 500 MB/s at ≥ 3× compression, warm replay
//! ≥ 2 M events/s, no-op maintain < 1 ms. Data lives under target/bench-data.
mod common;

use common::bench_dir;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use eventfabric::fixtures::{FixtureGenerator, FixtureKind};
use eventfabric::{Envelope, Fabric, FabricConfig, FsyncPolicy, StartFrom, TopicConfig};
use jiff::Timestamp;

const TOPIC: &str = "bench.tiers.v1";
const DAY_US: i64 = 86_400_000_000;

/// Fresh seed-like envelopes cycling through the three kinds.
fn envelopes(n: usize, seed: u64) -> Vec<Envelope> {
    let mut generator = FixtureGenerator::new(seed, 1000);
    let kinds = FixtureKind::all();
    (0..n).map(|i| generator.next(kinds[i % 3])).collect()
}

fn topic_config(segment_bytes: u64) -> TopicConfig {
    let mut c = TopicConfig::with_partitions(1);
    c.fsync = FsyncPolicy::Os;
    c.segment_bytes = segment_bytes;
    c.warm_retention_ms = 365 * 86_400_000;
    c
}

/// A fabric whose topic holds `events` in sealed segments (plus an empty active one).
fn filled(dir: &Path, events: &[Envelope], segment_bytes: u64) -> Fabric {
    let fabric = Fabric::open(dir, FabricConfig::with_fsync(FsyncPolicy::Os)).expect("open");
    fabric
        .create_topic(TOPIC, topic_config(segment_bytes))
        .expect("topic");
    let mut producer = fabric.producer(TOPIC, "bench").expect("producer");
    for chunk in events.chunks(100) {
        producer.publish_batch(chunk).expect("publish");
    }
    let log = fabric.partition(TOPIC, 0).expect("partition");
    log.roll().expect("roll");
    fabric.flush().expect("flush");
    fabric
}

/// Well past the fixtures' June 2026 timestamps plus hot retention.
fn later() -> Timestamp {
    Timestamp::from_microsecond(FixtureGenerator::START.as_microsecond() + 30 * DAY_US)
        .expect("time")
}

fn hot_bytes(fabric: &Fabric) -> u64 {
    let log = fabric.partition(TOPIC, 0).expect("partition");
    log.segments().iter().map(|s| s.size_bytes).sum()
}

fn codec(c: &mut Criterion) {
    let dir = bench_dir("tiers-codec");
    let fabric = filled(&dir, &envelopes(100_000, 11), 16 << 20);
    // The batches exactly as the hot segments hold them.
    let mut raw = Vec::new();
    for s in fabric.partition(TOPIC, 0).expect("partition").segments() {
        let bytes = std::fs::read(&s.path).expect("segment");
        raw.extend_from_slice(&bytes[..s.size_bytes as usize]);
    }
    fabric.close().expect("close");
    const BLOCK: usize = 256 << 10;
    let blocks: Vec<&[u8]> = raw.chunks(BLOCK).collect();
    type Compress = fn(&[u8]) -> Vec<u8>;
    type Decompress = fn(&[u8]) -> Vec<u8>;
    let codecs: [(&str, Compress, Decompress); 4] = [
        (
            "lz4",
            |b| lz4_flex::block::compress(b),
            |c| lz4_flex::block::decompress(c, BLOCK).expect("lz4"),
        ),
        (
            "zstd-1",
            |b| zstd::bulk::compress(b, -1).expect("zstd"),
            |c| zstd::bulk::decompress(c, BLOCK).expect("zstd"),
        ),
        (
            "zstd1",
            |b| zstd::bulk::compress(b, 1).expect("zstd"),
            |c| zstd::bulk::decompress(c, BLOCK).expect("zstd"),
        ),
        (
            "zstd3",
            |b| zstd::bulk::compress(b, 3).expect("zstd"),
            |c| zstd::bulk::decompress(c, BLOCK).expect("zstd"),
        ),
    ];
    let mut g = c.benchmark_group("tiers_codec");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(raw.len() as u64));
    for (name, compress, decompress) in codecs {
        let packed: Vec<Vec<u8>> = blocks.iter().map(|b| compress(b)).collect();
        let size: usize = packed.iter().map(Vec::len).sum();
        let started = Instant::now();
        let rounds = 5;
        for _ in 0..rounds {
            for p in &packed {
                std::hint::black_box(decompress(p));
            }
        }
        let secs = started.elapsed().as_secs_f64() / rounds as f64;
        eprintln!(
            "codec {name}: ratio {:.2} on {} MB of hot-segment batches ({} KiB blocks); decompression {:.0} MB/s",
            raw.len() as f64 / size as f64,
            raw.len() >> 20,
            BLOCK >> 10,
            raw.len() as f64 / secs / 1e6
        );
        g.bench_function(BenchmarkId::new("compress", name), |b| {
            b.iter(|| {
                for block in &blocks {
                    std::hint::black_box(compress(block));
                }
            })
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn tiering(c: &mut Criterion) {
    let events = envelopes(100_000, 12);
    let probe_dir = bench_dir("tiers-tiering-probe");
    let probe = filled(&probe_dir, &events, 16 << 20);
    let bytes = hot_bytes(&probe);
    let report = probe.maintain_at(later()).expect("maintain");
    eprintln!(
        "tiering: {} hot bytes in {} segments -> {} archive bytes: ratio {:.2}",
        report.bytes_before,
        report.segments_to_warm,
        report.bytes_after,
        report.bytes_before as f64 / report.bytes_after as f64
    );
    probe.close().expect("close");
    let _ = std::fs::remove_dir_all(&probe_dir);
    let mut g = c.benchmark_group("tiers_tiering");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes));
    // On the project disk (fsyncs, unlinks) and, where there is one, on
    // tmpfs (/dev/shm), where the same work costs only CPU.
    let shm = Path::new("/dev/shm");
    let places: Vec<(&str, Option<&Path>)> = if shm.is_dir() {
        vec![("hot_to_warm", None), ("hot_to_warm_tmpfs", Some(shm))]
    } else {
        vec![("hot_to_warm", None)]
    };
    for (name, root) in places {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let dir = match root {
                        Some(r) => {
                            let d = r.join(format!(
                                "eventfabric-bench-tiering-{}-{i}",
                                std::process::id()
                            ));
                            let _ = std::fs::remove_dir_all(&d);
                            d
                        }
                        None => bench_dir(&format!("tiers-tiering-{i}")),
                    };
                    let fabric = filled(&dir, &events, 16 << 20);
                    let started = Instant::now();
                    let r = fabric.maintain_at(later()).expect("maintain");
                    total += started.elapsed();
                    assert!(r.segments_to_warm > 0);
                    fabric.close().expect("close");
                    let _ = std::fs::remove_dir_all(&dir);
                }
                total
            })
        });
    }
    g.finish();
}

fn replay(c: &mut Criterion) {
    let n = 200_000usize;
    let events = envelopes(n, 13);
    let dir = bench_dir("tiers-replay");
    let fabric = filled(&dir, &events, 16 << 20);
    let hot_dir = bench_dir("tiers-replay-hot");
    let hot = filled(&hot_dir, &events, 16 << 20);
    let r = fabric.maintain_at(later()).expect("maintain");
    assert_eq!(
        fabric.partition(TOPIC, 0).expect("log").earliest_offset(),
        n as u64
    );
    eprintln!("replay: {} segments in warm", r.segments_to_warm);
    let mut g = c.benchmark_group("tiers_replay");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    for (tier, f) in [("warm", &fabric), ("hot", &hot)] {
        g.bench_function(BenchmarkId::new("raw", tier), |b| {
            b.iter(|| {
                let mut reader = f.reader(TOPIC, StartFrom::Earliest).expect("reader");
                let mut count = 0usize;
                while let Some(raw) = reader.next_raw() {
                    std::hint::black_box(raw.expect("record").offset);
                    count += 1;
                }
                assert_eq!(count, n);
            })
        });
        g.bench_function(BenchmarkId::new("fields", tier), |b| {
            b.iter(|| {
                let mut reader = f.reader(TOPIC, StartFrom::Earliest).expect("reader");
                let mut count = 0usize;
                while let Some(raw) = reader.next_raw() {
                    let raw = raw.expect("record");
                    std::hint::black_box(raw.envelope().expect("envelope").event_type);
                    count += 1;
                }
                assert_eq!(count, n);
            })
        });
    }
    g.finish();
    fabric.close().expect("close");
    hot.close().expect("close");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&hot_dir);
}

fn maintain_noop(c: &mut Criterion) {
    let dir = bench_dir("tiers-noop");
    let fabric = Fabric::open(&dir, FabricConfig::with_fsync(FsyncPolicy::Os)).expect("open");
    let events = envelopes(8, 14);
    for t in 0..100 {
        let name = format!("bench.noop{t}.v1");
        let mut config = topic_config(1 << 20);
        config.partitions = 8;
        config.retention_bytes = Some(1 << 30);
        fabric.create_topic(&name, config).expect("topic");
        for p in 0..8 {
            let log = fabric.partition(&name, p).expect("partition");
            let values: Vec<Vec<u8>> = events.iter().map(Envelope::to_bytes).collect();
            log.append_batch(&values).expect("append");
            log.roll().expect("roll");
        }
    }
    // Records stamped now: nothing is past 7 days, nothing over 1 GiB.
    let r = fabric.maintain().expect("maintain");
    assert_eq!((r.partitions_checked, r.segments_to_warm), (800, 0));
    let mut g = c.benchmark_group("tiers_maintain");
    g.sample_size(20);
    g.bench_function("noop_100_topics_x_8_partitions", |b| {
        b.iter(|| {
            let r = fabric.maintain().expect("maintain");
            assert_eq!(r.segments_to_warm + r.segments_deleted, 0);
        })
    });
    g.finish();
    fabric.close().expect("close");
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, codec, tiering, replay, maintain_noop);
criterion_main!(benches);
