//! Criterion benchmarks of the producer-side dedup cache (issue 4 targets):
//!
//! - `dedup_lookup/hit_1m` and `miss_1m`: one cache lookup with 1 million
//!   ids in the window (target < 100 ns);
//! - `publish_dedup/{off,on}_batch{1,100}`: publishing fresh ~300 B
//!   envelopes (new `event_id` each) from one thread, `Os` durability, one
//!   partition, with the topic's dedup window off and on (target: on costs
//!   < 15 % throughput);
//! - `reopen_1m/{off,on}`: `Fabric::open` of a data directory whose topic
//!   holds 1 million events inside the window, then `dedup_stats` — with
//!   dedup on this rebuilds the cache from the log tail, as the topic's first
//!   producer does (target < 100 ms).
//!
//! `cargo bench --bench dedup -- --warm-up-time 1 --measurement-time 3`.
//! Data lives under target/bench-data.
mod common;

use common::bench_dir;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use eventfabric::fixtures::{FixtureGenerator, FixtureKind};
use eventfabric::{Envelope, Fabric, FabricConfig, FsyncPolicy, TopicConfig};
use jiff::Timestamp;

const MILLION: u64 = 1_000_000;

/// Seed-like envelopes emitted now (so inside the window), kinds cycling.
fn pool(n: usize) -> Vec<Envelope> {
    let mut generator = FixtureGenerator::new(42, 1000);
    let kinds = FixtureKind::all();
    let now = Timestamp::now();
    (0..n)
        .map(|i| {
            let mut e = generator.next(kinds[i % 3]);
            e.emitted_at = now;
            e
        })
        .collect()
}

/// A distinct UUIDv7 for sequence number `n`.
fn id(n: u64) -> uuid::Uuid {
    let n = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n;
    Envelope::event_id_from_parts(1_790_000_000_000 + (n >> 40), (n >> 20) as u16, n)
}

fn topic_config(dedup: bool) -> TopicConfig {
    let mut config = TopicConfig::with_partitions(1);
    config.fsync = FsyncPolicy::Os;
    config.segment_bytes = 256 << 20;
    // The defaults: a 2-minute window and at most 1 M ids.
    if !dedup {
        config.dedup_window_ms = 0;
    }
    config
}

/// A data directory whose topic `bench.v1` holds `n` fresh events.
fn filled(name: &str, n: u64, dedup: bool) -> (PathBuf, Fabric) {
    let dir = bench_dir(name);
    let fabric = Fabric::open(&dir, FabricConfig::with_fsync(FsyncPolicy::Os)).expect("open");
    fabric
        .create_topic("bench.v1", topic_config(dedup))
        .expect("topic");
    let mut producer = fabric.producer("bench.v1", "bench").expect("producer");
    let mut batch = pool(1000);
    let mut next = 0u64;
    while next < n {
        for e in &mut batch {
            e.event_id = id(next);
            next += 1;
        }
        producer.publish_batch(&batch).expect("publish");
    }
    (dir, fabric)
}

fn lookup(c: &mut Criterion) {
    let (_dir, fabric) = filled("dedup-lookup", MILLION, true);
    let stats = fabric.dedup_stats("bench.v1").unwrap().unwrap();
    eprintln!(
        "dedup cache: {} entries, {} bytes allocated, {:.1} bytes per entry",
        stats.entries,
        stats.allocated_bytes,
        stats.allocated_bytes as f64 / stats.entries as f64
    );
    let producer = fabric.producer("bench.v1", "bench").unwrap();
    let mut g = c.benchmark_group("dedup_lookup");
    g.sample_size(20);
    g.throughput(Throughput::Elements(1));
    let mut n = 0u64;
    g.bench_function("hit_1m", |b| {
        b.iter(|| {
            n = (n + 7_919) % MILLION;
            producer.dedup_lookup(id(n)).expect("a hit")
        })
    });
    let mut m = MILLION;
    g.bench_function("miss_1m", |b| {
        b.iter(|| {
            m += 1;
            assert!(producer.dedup_lookup(id(m)).is_none());
        })
    });
    g.finish();
}

fn publish(c: &mut Criterion) {
    let mut g = c.benchmark_group("publish_dedup");
    g.sample_size(10);
    for dedup in [false, true] {
        for batch in [1usize, 100] {
            // Steady state: the topic (and with dedup on, the cache at its
            // default cap of 1 M ids, default 2-minute window) already holds
            // 1 M events, so every publish also evicts the oldest id.
            let name = format!("dedup-publish-{dedup}-{batch}");
            let (dir, fabric) = filled(&name, MILLION, dedup);
            let mut producer = fabric.producer("bench.v1", "bench").expect("producer");
            let mut events = pool(batch);
            let mut next = MILLION;
            g.throughput(Throughput::Elements(batch as u64));
            let label = if dedup { "on" } else { "off" };
            g.bench_function(BenchmarkId::new(label, format!("batch{batch}")), |b| {
                b.iter(|| {
                    for e in &mut events {
                        e.event_id = id(next);
                        next += 1;
                    }
                    if batch == 1 {
                        producer.publish(&events[0]).expect("publish");
                    } else {
                        producer.publish_batch(&events).expect("publish");
                    }
                })
            });
            drop(producer);
            fabric.close().expect("close");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    g.finish();
}

/// The dedup cost measured robustly on a noisy machine: dedup on and off
/// publish in alternating rounds of 20,000 fresh events in the same process
/// (both topics prefilled with 1 M events, the cache at its 1 M cap), and
/// the median of the per-round on/off throughput ratios is reported.
fn publish_interleaved(_c: &mut Criterion) {
    for batch in [1usize, 100] {
        let (dir_off, off) = filled(&format!("dedup-inter-off-{batch}"), MILLION, false);
        let (dir_on, on) = filled(&format!("dedup-inter-on-{batch}"), MILLION, true);
        let mut producers = [
            off.producer("bench.v1", "bench").expect("producer"),
            on.producer("bench.v1", "bench").expect("producer"),
        ];
        let mut events = pool(batch);
        let mut next = [MILLION, MILLION];
        let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let mut ratios = Vec::new();
        const ROUND: u64 = 20_000;
        for round in 0..16 {
            let mut this = [0f64; 2];
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for mode in order {
                let started = Instant::now();
                let mut done = 0u64;
                while done < ROUND {
                    for e in &mut events {
                        e.event_id = id(next[mode]);
                        next[mode] += 1;
                    }
                    if batch == 1 {
                        producers[mode].publish(&events[0]).expect("publish");
                    } else {
                        producers[mode].publish_batch(&events).expect("publish");
                    }
                    done += batch as u64;
                }
                this[mode] = done as f64 / started.elapsed().as_secs_f64();
            }
            if round >= 2 {
                // The first two rounds warm up.
                rates[0].push(this[0]);
                rates[1].push(this[1]);
                ratios.push(this[1] / this[0]);
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (r_off, r_on, ratio) = (
            median(&mut rates[0]),
            median(&mut rates[1]),
            median(&mut ratios),
        );
        eprintln!(
            "publish_dedup_interleaved/batch{batch}: off {:.0} events/s, on {:.0} events/s, median on/off ratio {:.3} (cost {:.1} %)",
            r_off,
            r_on,
            ratio,
            (1.0 - ratio) * 100.0
        );
        drop(producers);
        off.close().expect("close");
        on.close().expect("close");
        let _ = std::fs::remove_dir_all(&dir_off);
        let _ = std::fs::remove_dir_all(&dir_on);
    }
}

fn reopen(c: &mut Criterion) {
    let mut g = c.benchmark_group("reopen_1m");
    g.sample_size(10);
    for dedup in [false, true] {
        let (dir, fabric) = filled(&format!("dedup-reopen-{dedup}"), MILLION, dedup);
        fabric.close().expect("close");
        let label = if dedup { "on" } else { "off" };
        g.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    let fabric = Fabric::open(&dir, FabricConfig::with_fsync(FsyncPolicy::Os))
                        .expect("reopen");
                    // The first producer rebuilds the cache; so does this.
                    let stats = fabric.dedup_stats("bench.v1").unwrap();
                    total += started.elapsed();
                    if dedup {
                        assert_eq!(stats.unwrap().entries as u64, MILLION);
                    }
                    fabric.close().expect("close");
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, lookup, publish, publish_interleaved, reopen);
criterion_main!(benches);
