//! Criterion benchmarks of the partition log: the workloads of docs/PERFORMANCE.md.
//!
//! `cargo bench --bench log` runs them all; `cargo bench --bench log -- append`
//! one group. Data lives under target/bench-data (same filesystem as the
//! checkout, unlike a tmpfs /tmp).
mod common;

use common::bench_dir;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use eventfabric::{Durability, Log, LogConfig, ReadLimit};

fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn config(durability: Durability) -> LogConfig {
    let mut c = LogConfig::default();
    c.durability = durability;
    c
}

/// Appends `n` records of `size` bytes in batches of `batch`, then syncs.
fn fill(dir: &Path, n: usize, size: usize, batch: usize, durability: Durability) -> Duration {
    let values: Vec<Vec<u8>> = (0..batch).map(|i| payload(size, i as u64)).collect();
    let log = Log::open(dir, config(durability)).expect("open");
    let start = Instant::now();
    for _ in 0..n / batch {
        log.append_batch(&values).expect("append");
    }
    log.flush().expect("flush");
    let took = start.elapsed();
    log.close().expect("close");
    took
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    for (n, size) in [(1_000_000usize, 100usize), (500_000, 1024)] {
        g.throughput(Throughput::Bytes((n * size) as u64));
        g.bench_function(
            BenchmarkId::new("os_batch100", format!("{n}x{size}B")),
            |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| fill(&bench_dir("append"), n, size, 100, Durability::Os))
                        .sum()
                })
            },
        );
    }
    g.finish();
}

fn scan(c: &mut Criterion) {
    let mut g = c.benchmark_group("scan");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for (n, size) in [(1_000_000usize, 100usize), (500_000, 1024)] {
        let dir = bench_dir(&format!("scan-{size}"));
        fill(&dir, n, size, 100, Durability::Os);
        let log = Log::open(&dir, LogConfig::default()).expect("reopen");
        g.throughput(Throughput::Bytes((n * size) as u64));
        g.bench_function(
            BenchmarkId::new("crc_verified", format!("{n}x{size}B")),
            |b| {
                b.iter(|| {
                    let mut records = 0usize;
                    let mut bytes = 0usize;
                    for batch in log.batches(0).expect("batches") {
                        for r in batch.expect("batch").records() {
                            records += 1;
                            bytes += r.value.len();
                        }
                    }
                    assert_eq!(records, n);
                    bytes
                })
            },
        );
    }
    g.finish();
}

fn random_reads(c: &mut Criterion) {
    let mut g = c.benchmark_group("random_read");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let n = 1_000_000u64;
    let dir = bench_dir("random");
    fill(&dir, n as usize, 100, 100, Durability::Os);
    let log = Log::open(&dir, LogConfig::default()).expect("reopen");
    let reads = 100_000u64;
    g.throughput(Throughput::Elements(reads));
    g.bench_function("by_offset_100k", |b| {
        let mut x = 0x1234_5678u64;
        b.iter(|| {
            for _ in 0..reads {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let r = log.read(x % n, ReadLimit::records(1)).expect("read");
                assert_eq!(r.len(), 1);
            }
        })
    });
    g.finish();
}

fn reopen(c: &mut Criterion) {
    let mut g = c.benchmark_group("reopen");
    g.sample_size(20);
    for (label, n, segment) in [
        ("100MB", 100_000usize, 256u64 << 20),
        ("1GiB", 1_048_576, 256 << 20),
    ] {
        let dir = bench_dir(&format!("reopen-{label}"));
        let values: Vec<Vec<u8>> = (0..100).map(|i| payload(1000, i)).collect();
        let mut cfg = config(Durability::Os);
        cfg.segment_bytes = segment;
        let log = Log::open(&dir, cfg.clone()).expect("open");
        for _ in 0..n / 100 {
            log.append_batch(&values).expect("append");
        }
        log.close().expect("close");
        g.bench_function(BenchmarkId::new("clean_close", label), |b| {
            b.iter(|| {
                let log = Log::open(&dir, cfg.clone()).expect("reopen");
                assert!(log.next_offset() > 0);
                log.close().expect("close");
            })
        });
    }
    // A crash leaving a 64 MiB tail that no checkpoint covers.
    let dir = bench_dir("reopen-crash");
    let mut cfg = config(Durability::Os);
    cfg.checkpoint_interval_bytes = 1 << 40;
    let values: Vec<Vec<u8>> = (0..100).map(|i| payload(1000, i)).collect();
    let log = Log::open(&dir, cfg.clone()).expect("open");
    for _ in 0..(64 << 20) / (100 * 1012) {
        log.append_batch(&values).expect("append");
    }
    log.simulate_crash();
    g.bench_function("after_crash_64MiB_unsynced_tail", |b| {
        b.iter(|| {
            let log = Log::open(&dir, cfg.clone()).expect("reopen");
            assert!(log.recovery_report().scanned_bytes >= 60 << 20);
            log.simulate_crash();
        })
    });
    g.finish();
}

fn durable(c: &mut Criterion) {
    let mut g = c.benchmark_group("always");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let values: Vec<Vec<u8>> = (0..100).map(|i| payload(100, i)).collect();
    g.throughput(Throughput::Elements(100));
    let log = Log::open(bench_dir("always-1"), config(Durability::Always)).expect("open");
    g.bench_function("one_appender_batch100", |b| {
        b.iter(|| log.append_batch(&values).expect("append"))
    });
    drop(log);
    let log = Arc::new(Log::open(bench_dir("always-8"), config(Durability::Always)).expect("open"));
    let per_thread = 200u64;
    g.throughput(Throughput::Elements(8 * per_thread));
    g.bench_function("eight_appenders_single_records", |b| {
        b.iter(|| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let log = log.clone();
                    std::thread::spawn(move || {
                        for _ in 0..per_thread {
                            log.append(&[7u8; 100]).expect("append");
                        }
                    })
                })
                .collect();
            threads
                .into_iter()
                .for_each(|t| t.join().expect("appender"));
        })
    });
    let log1 = Log::open(bench_dir("always-single"), config(Durability::Always)).expect("open");
    g.throughput(Throughput::Elements(per_thread));
    g.bench_function("one_appender_single_records", |b| {
        b.iter(|| {
            for _ in 0..per_thread {
                log1.append(&[7u8; 100]).expect("append");
            }
        })
    });
    g.finish();
}

criterion_group!(benches, append, scan, random_reads, reopen, durable);
criterion_main!(benches);
