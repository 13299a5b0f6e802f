//! Criterion benchmarks of the fabric level: publishing generated seed-like
//! envelopes (~300 B encoded) through the full producer path — validation,
//! enrichment check, MessagePack encoding, murmur2 partitioning, append — from
//! one thread with `Os` durability, and decoding consumers: `decode` builds
//! each owned [`Envelope`] (payload as a JSON value), `fields` decodes and
//! validates every envelope field in place ([`eventfabric::EnvelopeRef`]),
//! leaving the payload encoded.
//!
//! `cargo bench --bench fabric`. Targets (issue 3): publish ≥ 1.5 M events/s,
//! decode-consume ≥ 3 M events/s. Data lives under target/bench-data.
mod common;

use common::bench_dir;
use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use eventfabric::fixtures::{FixtureGenerator, FixtureKind};
use eventfabric::{Envelope, Fabric, FabricConfig, FsyncPolicy, StartFrom, TopicConfig};

/// Seed-like envelopes cycling through the three kinds (267–340 B encoded).
fn envelopes(n: usize) -> Vec<Envelope> {
    let mut generator = FixtureGenerator::new(42, 1000);
    let kinds = FixtureKind::all();
    (0..n).map(|i| generator.next(kinds[i % 3])).collect()
}

fn open(dir: &Path, partitions: u32) -> Fabric {
    let fabric = Fabric::open(dir, FabricConfig::with_fsync(FsyncPolicy::Os)).expect("open");
    let mut config = TopicConfig::with_partitions(partitions);
    config.fsync = FsyncPolicy::Os;
    config.segment_bytes = 64 << 20;
    // Dedup off: the benches republish one pool of events, which the dedup
    // window (measured on append time) answers as duplicates.
    config.dedup_window_ms = 0;
    fabric.create_topic("bench.v1", config).expect("topic");
    fabric
}

fn publish(c: &mut Criterion) {
    // About 1,000 distinct events, reused: like events an application just
    // built, they are in cache (a 10,000-event pool measures cache misses).
    let pool = envelopes(1_000);
    let bytes: usize = pool.iter().map(|e| e.to_bytes().len()).sum();
    eprintln!("mean encoded envelope: {} bytes", bytes / pool.len().max(1));
    let mut g = c.benchmark_group("publish");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for partitions in [1u32, 8] {
        for batch in [1usize, 100] {
            let dir = bench_dir(&format!("publish-{partitions}-{batch}"));
            let fabric = open(&dir, partitions);
            let mut producer = fabric.producer("bench.v1", "bench").expect("producer");
            g.throughput(Throughput::Elements(pool.len() as u64));
            g.bench_function(
                BenchmarkId::new(format!("os_{partitions}p"), format!("batch{batch}")),
                |b| {
                    b.iter(|| {
                        if batch == 1 {
                            for e in &pool {
                                producer.publish(e).expect("publish");
                            }
                        } else {
                            for chunk in pool.chunks(batch) {
                                producer.publish_batch(chunk).expect("publish");
                            }
                        }
                    })
                },
            );
            drop(producer);
            fabric.close().expect("close");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    g.finish();
}

fn consume(c: &mut Criterion) {
    let n = 200_000usize;
    let dir = bench_dir("consume");
    let fabric = open(&dir, 1);
    let pool = envelopes(10_000);
    let mut producer = fabric.producer("bench.v1", "bench").expect("producer");
    for _ in 0..n / pool.len() {
        for chunk in pool.chunks(100) {
            producer.publish_batch(chunk).expect("publish");
        }
    }
    fabric.flush().expect("flush");
    let mut g = c.benchmark_group("consume");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("decode_1p", |b| {
        b.iter(|| {
            let reader = fabric
                .reader("bench.v1", StartFrom::Earliest)
                .expect("reader");
            let mut count = 0usize;
            for event in reader {
                std::hint::black_box(event.expect("event"));
                count += 1;
            }
            assert_eq!(count, n);
        })
    });
    g.bench_function("fields_1p", |b| {
        b.iter(|| {
            let mut reader = fabric
                .reader("bench.v1", StartFrom::Earliest)
                .expect("reader");
            let mut count = 0usize;
            while let Some(raw) = reader.next_raw() {
                let raw = raw.expect("record");
                let envelope = raw.envelope().expect("envelope");
                std::hint::black_box(envelope.event_type);
                count += 1;
            }
            assert_eq!(count, n);
        })
    });
    g.finish();
    drop(producer);
    fabric.close().expect("close");
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, publish, consume);
criterion_main!(benches);
