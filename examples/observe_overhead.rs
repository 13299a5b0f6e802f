//! Measures what metrics cost on the publish path (issue 14): publish
//! throughput with no recorder (the facade's no-op) against the same run
//! with a recorder installed on the publishing thread, one backed by the
//! atomic registry that metrics exporters (e.g. the Prometheus one) use.
//! Rounds alternate off/on; medians and bests are printed (the best of
//! many rounds is the figure least disturbed by other work on the machine).
//!
//! `cargo run --release --example observe_overhead [events] [rounds]`

use std::sync::Arc;
use std::time::Instant;

use eventfabric::{Draft, Fabric, FabricConfig, FsyncPolicy, TopicConfig};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};
use serde_json::json;

/// A recorder keeping every series in an atomic registry, as exporters do.
struct AtomicRecorder(Arc<Registry<Key, AtomicStorage>>);

impl Recorder for AtomicRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.0
            .get_or_create_counter(key, |c| Counter::from_arc(c.clone()))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.0
            .get_or_create_gauge(key, |g| Gauge::from_arc(g.clone()))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.0
            .get_or_create_histogram(key, |h| Histogram::from_arc(h.clone()))
    }
}

/// Publishes `events` fresh events to a new topic; returns events per second.
fn publish_run(events: usize) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let fabric = Fabric::open(dir.path(), FabricConfig::with_fsync(FsyncPolicy::Os)).expect("open");
    fabric
        .create_topic("bench.domain.v1", TopicConfig::with_partitions(4))
        .expect("create");
    let mut producer = fabric
        .producer("bench.domain.v1", "bench")
        .expect("producer");
    let envelopes: Vec<_> = (0..events)
        .map(|n| {
            let draft = Draft::new(
                "bench.item.created",
                Some("t"),
                json!({"n": n, "pad": "x".repeat(200)}),
            )
            .partition_key(&format!("k{n}"));
            producer.prepare(draft).expect("valid draft")
        })
        .collect();
    let started = Instant::now();
    for e in &envelopes {
        producer.publish(e).expect("publish");
    }
    let rate = events as f64 / started.elapsed().as_secs_f64();
    drop(producer);
    fabric.close().expect("close");
    rate
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let events: usize = args
        .next()
        .map_or(100_000, |a| a.parse().expect("events: a number"));
    let rounds: usize = args
        .next()
        .map_or(5, |a| a.parse().expect("rounds: a number"));
    let registry = Arc::new(Registry::atomic());
    let recorder = AtomicRecorder(registry.clone());
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let a = publish_run(events);
        let b = metrics::with_local_recorder(&recorder, || publish_run(events));
        println!("round {round}: no recorder {a:.0}/s, recorder {b:.0}/s");
        off.push(a);
        on.push(b);
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let (best_off, best_on) = (best(&off), best(&on));
    let (off, on) = (median(off), median(on));
    println!(
        "median over {rounds} rounds of {events} publishes: no recorder {off:.0}/s, recorder {on:.0}/s, overhead {:.1} %",
        (off - on) / off * 100.0
    );
    println!(
        "best of {rounds} rounds: no recorder {best_off:.0}/s, recorder {best_on:.0}/s, overhead {:.1} %",
        (best_off - best_on) / best_off * 100.0
    );
    let mut series = 0;
    registry.visit_counters(|_, _| series += 1);
    assert!(
        series > 0,
        "the recorder saw no counter: the hooks are not wired"
    );
}
