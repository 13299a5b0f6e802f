//! Criterion benchmarks of queues: one thread fetching batches of 1,000
//! and acking every message individually — `ack` per message (one
//! state-log write each, what survives kill -9 the moment it returns) and
//! `ack_all` per fetched batch (still one ack per message, out of order
//! allowed, one write per batch) — over small envelopes with a 100-byte
//! payload, `Os` durability.
//!
//! `cargo bench --bench queues`. Target (issue 4): ≥ 1 M acked messages/s
//! from one thread. Data lives under target/bench-data.
mod common;

use common::bench_dir;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eventfabric::{Draft, Fabric, FabricConfig, FsyncPolicy, QueueConfig, TopicConfig};
use serde_json::json;

const MESSAGES: u64 = 200_000;

/// A topic of `MESSAGES` events with a 100-byte payload each.
fn filled(dir: &Path) -> Fabric {
    let fabric = Fabric::open(dir, FabricConfig::with_fsync(FsyncPolicy::Os)).expect("open");
    let mut config = TopicConfig::with_partitions(1);
    config.fsync = FsyncPolicy::Os;
    config.segment_bytes = 256 << 20;
    fabric.create_topic("bench.v1", config).expect("topic");
    let mut producer = fabric.producer("bench.v1", "bench").expect("producer");
    let body = "x".repeat(100);
    let mut batch = Vec::with_capacity(1000);
    let mut bytes = 0;
    for i in 0..MESSAGES {
        let draft = Draft::new("billing.invoice.issued", Some("t1"), json!(body));
        let envelope = producer.prepare(draft).expect("valid");
        if i == 0 {
            bytes = envelope.to_bytes().len();
        }
        batch.push(envelope);
        if batch.len() == 1000 {
            producer.publish_batch(&batch).expect("publish");
            batch.clear();
        }
    }
    eprintln!("encoded envelope: {bytes} bytes (payload 100 bytes)");
    fabric
}

/// Drains a fresh queue over the filled topic; returns the time spent.
fn drain(fabric: &Fabric, name: &str, per_message: bool) -> Duration {
    let mut config = QueueConfig::default();
    config.max_ack_pending = 10_000;
    let queue = fabric.queue(name, "bench.v1", config).expect("queue");
    let start = Instant::now();
    let mut acked = 0;
    while acked < MESSAGES {
        let got = queue.try_fetch(1000).expect("fetch");
        assert!(!got.is_empty(), "drained early at {acked}");
        if per_message {
            for m in &got {
                queue.ack(m).expect("ack");
            }
        } else {
            queue.ack_all(&got).expect("ack_all");
        }
        acked += got.len() as u64;
    }
    let took = start.elapsed();
    drop(queue);
    took
}

fn acks(c: &mut Criterion) {
    let dir = bench_dir("queues");
    let fabric = filled(&dir);
    let runs = AtomicU64::new(0);
    let mut g = c.benchmark_group("queue_drain");
    g.sample_size(10);
    g.throughput(Throughput::Elements(MESSAGES));
    for (label, per_message) in [("ack_each", true), ("ack_all_per_fetch", false)] {
        g.bench_function(label, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let n = runs.fetch_add(1, Ordering::Relaxed);
                        drain(&fabric, &format!("bench-q{n}"), per_message)
                    })
                    .sum()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, acks);
criterion_main!(benches);
