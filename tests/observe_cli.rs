//! `fabric stats --json` and `fabric metrics` (issue 14) over a fixture data
//! directory with a known shape: the JSON document has the documented fields
//! and values, and the Prometheus text is parsed by a real text-format
//! parser (`prometheus-parse`) and carries the lag and storage gauges with
//! the documented names and labels.

mod common;

use std::time::Duration;

use eventfabric::observe::names;
use eventfabric::observe::stats::FabricStats;
use eventfabric::{
    ConsumerConfig, DlqReason, Draft, Fabric, FabricConfig, Failure, QueueConfig, TopicConfig,
};
use serde_json::{Value, json};

const TOPIC: &str = "billing.domain.v1";

/// 6 events on 2 partitions (3 each by key), group `invoicing` committed
/// after 4 of them (lag 2), one event dead-lettered by queue `mailer`.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fabric = Fabric::open(dir.path(), FabricConfig::default()).unwrap();
    fabric
        .create_topic(TOPIC, TopicConfig::with_partitions(2))
        .unwrap();
    let mut producer = fabric.producer(TOPIC, "billing-service").unwrap();
    for n in 0..6 {
        let draft = Draft::new("billing.invoice.issued", Some("t1"), json!({"n": n}));
        producer.send(draft).unwrap();
    }
    let mut consumer = fabric
        .consumer("invoicing", TOPIC, ConsumerConfig::default())
        .unwrap();
    consumer.set_max_poll_records(4).unwrap();
    assert_eq!(consumer.poll(Duration::from_millis(200)).unwrap().len(), 4);
    consumer.commit().unwrap();
    let queue = fabric
        .queue("mailer", TOPIC, QueueConfig::default())
        .unwrap();
    let m = queue.fetch(1, Duration::from_millis(200)).unwrap();
    queue
        .nack(
            &m[0],
            Failure::fatal(DlqReason::SchemaViolation, "amount missing"),
        )
        .unwrap();
    drop((producer, consumer, queue));
    fabric.close().unwrap();
    dir
}

#[test]
fn stats_json_has_topics_partitions_tiers_dlq_sizes_and_group_lag() {
    let dir = fixture();
    let text = common::fabric_ok(dir.path(), &["stats", "--json"], b"");
    let doc: Value = serde_json::from_str(&text).unwrap();
    // The document is the library's typed snapshot, field for field.
    let stats: FabricStats = serde_json::from_value(doc.clone()).unwrap();
    let topic = stats.topics.iter().find(|t| t.name == TOPIC).unwrap();
    assert_eq!(topic.records, 6);
    assert_eq!(topic.dlq_records, 1);
    assert_eq!(topic.partitions.len(), 2);
    let next: u64 = topic.partitions.iter().map(|p| p.next_offset).sum();
    assert_eq!(next, 6);
    for p in &topic.partitions {
        let tiers: Vec<&str> = p.tiers.iter().map(|t| t.tier.as_str()).collect();
        assert_eq!(tiers, ["hot", "warm", "cold"]);
        assert!(p.tiers[0].segments >= 1, "{p:?}");
    }
    let hot: u64 = topic.partitions.iter().map(|p| p.tiers[0].bytes).sum();
    assert!(hot > 6 * 50, "6 envelopes take more than {hot} hot bytes");
    let dlq = stats
        .topics
        .iter()
        .find(|t| t.name == "billing.domain.v1.dlq")
        .unwrap();
    assert_eq!(dlq.records, 1);
    let group = stats
        .groups
        .iter()
        .find(|g| g.group == "invoicing")
        .unwrap();
    assert_eq!((group.topic.as_str(), group.lag), (TOPIC, 2));
    assert_eq!(group.partitions.iter().map(|p| p.lag).sum::<u64>(), 2);
    // The JSON field names are the contract of docs/METRICS.md.
    let t = &doc["topics"][0];
    for field in ["name", "records", "dlq_records", "partitions"] {
        assert!(t.get(field).is_some(), "topic field {field} in {t}");
    }
    let p = &t["partitions"][0];
    for field in ["partition", "earliest_offset", "next_offset", "tiers"] {
        assert!(p.get(field).is_some(), "partition field {field} in {p}");
    }
    let g = &doc["groups"][0];
    for field in ["group", "topic", "lag", "members", "partitions"] {
        assert!(g.get(field).is_some(), "group field {field} in {g}");
    }
    for field in ["partition", "committed", "end", "lag"] {
        assert!(g["partitions"][0].get(field).is_some(), "{field} in {g}");
    }
}

#[test]
fn metrics_prometheus_text_parses_and_carries_lag_and_storage_gauges() {
    let dir = fixture();
    let text = common::fabric_ok(dir.path(), &["metrics"], b"");
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let gauge = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let sample = scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == name
                    && s.labels.len() == labels.len()
                    && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            })
            .unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{text}"));
        match sample.value {
            prometheus_parse::Value::Gauge(v) => v,
            ref other => panic!("{name} is not a gauge: {other:?}"),
        }
    };
    let group = [(names::TOPIC, TOPIC), (names::CONSUMER_GROUP, "invoicing")];
    assert_eq!(gauge(names::CONSUMERGROUP_LAG_SUM, &group), 2.0);
    let per_partition: f64 = ["0", "1"]
        .iter()
        .map(|p| {
            gauge(
                names::CONSUMER_LAG,
                &[
                    (names::TOPIC, TOPIC),
                    (names::PARTITION, p),
                    (names::CONSUMER_GROUP, "invoicing"),
                ],
            )
        })
        .sum();
    assert_eq!(per_partition, 2.0);
    assert!(
        gauge(
            names::STORAGE_BYTES,
            &[(names::TOPIC, TOPIC), (names::TIER, "hot")]
        ) > 0.0
    );
    assert_eq!(
        gauge(
            names::STORAGE_BYTES,
            &[(names::TOPIC, TOPIC), (names::TIER, "cold")]
        ),
        0.0
    );
    for family in [
        names::CONSUMER_LAG,
        names::CONSUMERGROUP_LAG_SUM,
        names::STORAGE_BYTES,
    ] {
        assert!(scrape.docs.contains_key(family), "no HELP for {family}");
    }
}
