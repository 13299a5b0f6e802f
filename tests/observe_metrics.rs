//! Metrics of issue 14: a recording recorder (installed for this thread only)
//! watches a publish / duplicate / refused publish / group poll and commit /
//! queue ack, nack and dead-letter scenario and the test asserts the exact
//! metric names, label sets and values the library emitted. Without a
//! recorder nothing may be recorded (the library installs none).

use std::collections::BTreeMap;
use std::time::Duration;

use eventfabric::observe::names;
use eventfabric::{
    ConsumerConfig, DlqReason, Draft, Fabric, FabricConfig, Failure, QueueConfig, TopicConfig,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde_json::json;

const TOPIC: &str = "billing.domain.v1";

/// One emitted metric: name and sorted `label=value` pairs.
type Series = (String, Vec<(String, String)>);

fn draft(n: u32) -> Draft {
    Draft::new(
        "billing.invoice.issued",
        Some("tenant-1"),
        json!({"invoice": n}),
    )
}

/// Runs the scenario under a thread-local recorder; returns every series with
/// its value (counters and gauges as numbers, histograms as sample counts).
fn scenario() -> BTreeMap<Series, f64> {
    let dir = tempfile::tempdir().unwrap();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let fabric = Fabric::open(dir.path(), FabricConfig::default()).unwrap();
        fabric
            .create_topic(TOPIC, TopicConfig::with_partitions(2))
            .unwrap();
        let mut producer = fabric.producer(TOPIC, "billing-service").unwrap();
        let mut first = None;
        for n in 0..3 {
            let (event, _) = producer.send(draft(n)).unwrap();
            first.get_or_insert(event);
        }
        // The same event again: a dedup hit, not an append.
        let again = producer.publish(first.as_ref().unwrap()).unwrap();
        assert!(again.is_duplicate());
        // An event type that is not domain.entity.action: refused.
        let bad = Draft::new("not-a-type", Some("tenant-1"), json!({}));
        assert!(producer.send(bad).is_err());

        let mut consumer = fabric
            .consumer("invoicing", TOPIC, ConsumerConfig::default())
            .unwrap();
        let got = consumer.poll(Duration::from_millis(200)).unwrap();
        assert_eq!(got.len(), 3);
        consumer.commit().unwrap();

        let queue = fabric
            .queue("mailer", TOPIC, QueueConfig::default())
            .unwrap();
        let messages = queue.fetch(10, Duration::from_millis(200)).unwrap();
        assert_eq!(messages.len(), 3);
        queue.ack_all(&messages[..2]).unwrap();
        queue
            .nack(
                &messages[2],
                Failure::fatal(DlqReason::SchemaViolation, "amount missing"),
            )
            .unwrap();
        drop((consumer, queue, producer));
        fabric.close().unwrap();
    });
    let mut out = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let mut labels: Vec<(String, String)> = key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        labels.sort();
        let value = match value {
            DebugValue::Counter(n) => n as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(samples) => samples.len() as f64,
        };
        out.insert((key.name().to_owned(), labels), value);
    }
    out
}

fn series(name: &str, labels: &[(&str, &str)]) -> Series {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.sort();
    (name.to_owned(), labels)
}

#[test]
fn a_publish_consume_dlq_scenario_emits_the_documented_names_and_labels() {
    let got = scenario();
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        *got.get(&series(name, labels))
            .unwrap_or_else(|| panic!("no series {name} {labels:?} in {got:#?}"))
    };
    // 3 events + 1 dead letter appended (each its own batch).
    assert_eq!(value(names::APPEND_RECORDS_TOTAL, &[]), 4.0);
    assert!(value(names::APPEND_BYTES_TOTAL, &[]) > 4.0 * 100.0);
    assert_eq!(value(names::APPEND_DURATION_SECONDS, &[]), 4.0);
    assert!(value(names::FSYNC_DURATION_SECONDS, &[]) >= 1.0);
    assert_eq!(value(names::DEDUP_HITS_TOTAL, &[]), 1.0);
    assert_eq!(
        value(
            names::PUBLISH_REJECTED_TOTAL,
            &[(names::REASON, names::REJECT_ENVELOPE)]
        ),
        1.0
    );
    let group = [(names::TOPIC, TOPIC), (names::CONSUMER_GROUP, "invoicing")];
    assert_eq!(value(names::CONSUME_SUCCESS_TOTAL, &group), 3.0);
    assert_eq!(value(names::CONSUMERGROUP_LAG_SUM, &group), 0.0);
    for partition in ["0", "1"] {
        let labels = [
            (names::TOPIC, TOPIC),
            (names::PARTITION, partition),
            (names::CONSUMER_GROUP, "invoicing"),
        ];
        assert_eq!(value(names::CONSUMER_LAG, &labels), 0.0);
    }
    let queue = [(names::TOPIC, TOPIC), (names::CONSUMER_GROUP, "mailer")];
    assert_eq!(value(names::CONSUME_SUCCESS_TOTAL, &queue), 2.0);
    assert_eq!(value(names::CONSUME_ERROR_TOTAL, &queue), 1.0);
    assert_eq!(value(names::QUEUE_INFLIGHT, &queue), 0.0);
    assert_eq!(
        value(
            names::DLQ_RECORDS_TOTAL,
            &[(names::TOPIC, TOPIC), (names::REASON, "schema_violation")]
        ),
        1.0
    );
    // Nothing outside the pinned names, and no event-id or tenant label.
    for (name, labels) in got.keys() {
        assert!(names::ALL_METRICS.contains(&name.as_str()), "{name}");
        for (label, _) in labels {
            assert!(
                [
                    names::TOPIC,
                    names::PARTITION,
                    names::CONSUMER_GROUP,
                    names::REASON,
                    names::TIER
                ]
                .contains(&label.as_str()),
                "{name} has label {label}"
            );
        }
    }
}

#[test]
fn every_pinned_metric_name_is_prometheus_style_and_documented() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/METRICS.md"))
        .expect("docs/METRICS.md exists");
    for name in names::ALL_METRICS {
        assert!(name.starts_with("eventfabric_"), "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{name}"
        );
        assert!(
            doc.contains(&format!("`{name}`")),
            "{name} missing from docs/METRICS.md"
        );
    }
}
