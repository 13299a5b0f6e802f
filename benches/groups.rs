//! Criterion benchmarks of consumer groups (issue 4):
//!
//! - `e2e_latency`: publish one event in one thread (`Os` durability) →
//!   `poll` returning it in another, one event at a time; the p50/p99 of the
//!   sorted samples are printed (targets p50 ≤ 10 µs, p99 ≤ 50 µs).
//! - `group_consume`: one member consuming 1 M small envelopes from one
//!   partition, committing every 1,000 messages, with `Sync` and `Os` commit
//!   durability (target ≥ 5 M msg/s).
//! - `reopen_100_groups`: `Fabric::open` plus one member joining each of 100
//!   groups (each reads its cursor log) (target < 100 ms).
//! - `join_group_with_100k_processed_ids`: joining an effectively-once group
//!   whose cursor log holds a full 100,000-id processed window.
//!
//! `cargo bench --bench groups -- --warm-up-time 1 --measurement-time 3`.
//! Data lives under target/bench-data.
mod common;

use common::bench_dir;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eventfabric::{CommitDurability, ConsumerConfig, DeliveryMode};
use eventfabric::{Draft, Envelope, Fabric, FabricConfig, FsyncPolicy, TopicConfig};
use serde_json::json;

const TOPIC: &str = "bench.groups.v1";

fn open(dir: &Path, create: bool) -> Fabric {
    let fabric = Fabric::open(dir, FabricConfig::with_fsync(FsyncPolicy::Os)).expect("open");
    if create {
        let mut config = TopicConfig::with_partitions(1);
        config.fsync = FsyncPolicy::Os;
        // These benches republish one envelope (one event_id) over and over:
        // with the dedup window on, every publish after the first would be
        // answered as a duplicate and append nothing. Dedup has its own bench.
        config.dedup_window_ms = 0;
        fabric.create_topic(TOPIC, config).expect("topic");
    }
    fabric
}

/// A small envelope: 100 bytes encoded.
fn small_envelope(fabric: &Fabric) -> Envelope {
    let producer = fabric.producer(TOPIC, "b").expect("producer");
    let mut e = producer
        .prepare(Draft::new(
            "system.node.up",
            None,
            json!({"n": "0123456789abcde"}),
        ))
        .expect("envelope");
    producer.enrich(&mut e);
    e.correlation_id = "c".into();
    assert_eq!(e.to_bytes().len(), 100, "the benchmark's record size");
    e
}

fn e2e_latency(c: &mut Criterion) {
    let dir = bench_dir("groups-latency");
    let fabric = open(&dir, true);
    let envelope = small_envelope(&fabric);
    let (to_consumer, from_producer) = crossbeam::channel::bounded::<Instant>(1);
    let (to_producer, from_consumer) = crossbeam::channel::bounded::<Duration>(1);
    let consumer_fabric = fabric.clone();
    let consumer = std::thread::spawn(move || {
        let mut config = ConsumerConfig::default();
        config.auto_commit_interval = None;
        let mut member = consumer_fabric
            .consumer("latency", TOPIC, config)
            .expect("consumer");
        while let Ok(sent) = from_producer.recv() {
            loop {
                let batch = member.poll(Duration::from_secs(5)).expect("poll");
                if !batch.is_empty() {
                    let _ = to_producer.send(sent.elapsed());
                    break;
                }
            }
        }
    });
    let mut producer = fabric.producer(TOPIC, "b").expect("producer");
    let one = |producer: &mut eventfabric::Producer| -> Duration {
        // The consumer is parked in poll before the publish starts.
        std::thread::sleep(Duration::from_micros(200));
        let start = Instant::now();
        to_consumer.send(start).expect("send");
        producer.publish(&envelope).expect("publish");
        from_consumer.recv().expect("latency")
    };
    let mut samples: Vec<Duration> = (0..3_000).map(|_| one(&mut producer)).collect();
    samples.sort();
    let pct = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    eprintln!(
        "e2e latency publish -> poll (Os, one at a time, {} samples): p50 {:?} p99 {:?} p99.9 {:?}",
        samples.len(),
        pct(0.5),
        pct(0.99),
        pct(0.999)
    );
    let mut g = c.benchmark_group("groups");
    g.sample_size(10);
    g.bench_function("e2e_latency_publish_to_poll", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| one(&mut producer)).sum())
    });
    g.finish();
    drop(to_consumer);
    consumer.join().expect("consumer thread");
}

fn group_consume(c: &mut Criterion) {
    const N: usize = 1_000_000;
    let dir = bench_dir("groups-consume");
    let fabric = open(&dir, true);
    let envelope = small_envelope(&fabric);
    eprintln!("record size: {} bytes", envelope.to_bytes().len());
    let mut producer = fabric.producer(TOPIC, "b").expect("producer");
    let batch: Vec<Envelope> = vec![envelope; 1000];
    for _ in 0..N / 1000 {
        producer.publish_batch(&batch).expect("publish");
    }
    let mut g = c.benchmark_group("groups");
    g.sample_size(10).throughput(Throughput::Elements(N as u64));
    for (name, durability) in [
        ("sync", CommitDurability::Sync),
        ("os", CommitDurability::Os),
    ] {
        let mut config = ConsumerConfig::default();
        config.max_poll_records = 1000;
        config.auto_commit_interval = None;
        config.commit_durability = durability;
        let mut member = fabric
            .consumer(&format!("consume-{name}"), TOPIC, config)
            .expect("consumer");
        g.bench_function(format!("consume_1M_commit_every_1000_{name}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    member.seek(0, 0).expect("seek");
                    let start = Instant::now();
                    let mut got = 0;
                    while got < N {
                        let events = member.poll(Duration::ZERO).expect("poll");
                        got += events.len();
                        member.commit().expect("commit");
                    }
                    total += start.elapsed();
                }
                total
            })
        });
    }
    g.finish();
}

fn reopen_100_groups(c: &mut Criterion) {
    let dir = bench_dir("groups-reopen");
    {
        let fabric = open(&dir, true);
        let envelope = small_envelope(&fabric);
        let mut producer = fabric.producer(TOPIC, "b").expect("producer");
        producer
            .publish_batch(&vec![envelope; 1000])
            .expect("publish");
        for g in 0..100 {
            let mut config = ConsumerConfig::default();
            config.max_poll_records = 10;
            config.commit_durability = CommitDurability::Os;
            let mut member = fabric
                .consumer(&format!("group-{g}"), TOPIC, config)
                .expect("consumer");
            for _ in 0..50 {
                member.poll(Duration::ZERO).expect("poll");
                member.commit().expect("commit");
            }
        }
        fabric.flush().expect("flush");
    }
    let mut g = c.benchmark_group("groups");
    g.sample_size(10);
    g.bench_function("reopen_fabric_and_join_100_groups", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let fabric = open(&dir, false);
                let members: Vec<_> = (0..100)
                    .map(|g| {
                        fabric
                            .consumer(&format!("group-{g}"), TOPIC, ConsumerConfig::default())
                            .expect("join")
                    })
                    .collect();
                total += start.elapsed();
                assert!(members.iter().all(|m| m.position(0) == Some(500)));
                drop(members);
                drop(fabric);
            }
            total
        })
    });
    g.finish();
}

fn join_with_full_window(c: &mut Criterion) {
    const IDS: usize = 100_000;
    let dir = bench_dir("groups-window");
    let fabric = open(&dir, true);
    let template = small_envelope(&fabric);
    let mut producer = fabric.producer(TOPIC, "b").expect("producer");
    for _ in 0..IDS / 1000 {
        let batch: Vec<Envelope> = (0..1000)
            .map(|_| {
                let mut e = template.clone();
                e.event_id = Envelope::new_event_id();
                e
            })
            .collect();
        producer.publish_batch(&batch).expect("publish");
    }
    let config = || {
        let mut config = ConsumerConfig::with_delivery(DeliveryMode::EffectivelyOnce);
        config.max_poll_records = 1000;
        config.commit_durability = CommitDurability::Os;
        config
    };
    {
        let mut member = fabric
            .consumer("window", TOPIC, config())
            .expect("consumer");
        let mut got = 0;
        while got < IDS {
            got += member.poll(Duration::ZERO).expect("poll").len();
            member.commit().expect("commit");
        }
    }
    let mut g = c.benchmark_group("groups");
    g.sample_size(10);
    g.bench_function("join_group_with_100k_processed_ids", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let member = fabric.consumer("window", TOPIC, config()).expect("join");
                total += start.elapsed();
                assert_eq!(member.position(0), Some(IDS as u64));
                drop(member);
            }
            total
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    e2e_latency,
    group_consume,
    reopen_100_groups,
    join_with_full_window
);
criterion_main!(benches);
