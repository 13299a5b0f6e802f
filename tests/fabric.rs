//! The fabric level: topics are declared and persisted crash-safely, names
//! cannot escape the data directory, producers enrich and route events like
//! Kafka, per-key order holds under concurrent producers, readers start where
//! asked, and a data directory has one writer.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::time::Duration;

use eventfabric::fixtures::{FixtureGenerator, FixtureKind};
use eventfabric::partition_for_key;
use eventfabric::{
    Draft, Envelope, Error, Fabric, FabricConfig, FsyncPolicy, StartFrom, TopicConfig,
};
use serde_json::json;

fn os() -> FabricConfig {
    FabricConfig::with_fsync(FsyncPolicy::Os)
}

fn seed(name: &str) -> Envelope {
    let text = fs::read(format!(
        "{}/tests/fixtures/seed-events/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    Envelope::from_json(&text).unwrap()
}

#[test]
fn topics_are_created_listed_grown_deleted_and_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = Fabric::open(dir.path(), os()).unwrap();
    let mut config = TopicConfig::with_partitions(3);
    config.retention_ms = Some(30 * 86_400_000);
    config.segment_bytes = 1 << 20;
    fabric
        .create_topic("billing.domain.v1", config.clone())
        .unwrap();
    fabric
        .create_topic("auth.audit.v1", TopicConfig::with_partitions(1))
        .unwrap();
    let again = fabric.create_topic("auth.audit.v1", TopicConfig::with_partitions(1));
    assert!(again.unwrap_err().to_string().contains("already exists"));
    assert_eq!(fabric.topics(), ["auth.audit.v1", "billing.domain.v1"]);
    assert!(
        dir.path()
            .join("topics/billing.domain.v1/topic.json")
            .is_file()
    );
    assert!(dir.path().join("topics/billing.domain.v1/2").is_dir());

    fabric.add_partitions("billing.domain.v1", 5).unwrap();
    let shrink = fabric.add_partitions("billing.domain.v1", 2).unwrap_err();
    assert!(shrink.to_string().contains("never removed"), "{shrink}");
    fabric.delete_topic("auth.audit.v1").unwrap();
    assert!(!dir.path().join("topics/auth.audit.v1").exists());
    fabric.close().unwrap();

    let fabric = Fabric::open(dir.path(), os()).unwrap();
    assert_eq!(fabric.topics(), ["billing.domain.v1"]);
    let info = fabric.topic_info("billing.domain.v1").unwrap();
    config.partitions = 5;
    assert_eq!(info.config, config);
    assert_eq!(info.offsets.len(), 5);
}

#[test]
fn topic_names_that_could_escape_the_data_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let fabric = Fabric::open(&data, os()).unwrap();
    let long = "a".repeat(250);
    for name in [
        "",
        "..",
        ".",
        "../escape",
        "a/../../b",
        "/etc/passwd",
        "a/b",
        "a\\b",
        "a\0b",
        "a..b",
        ".hidden",
        "trailing.",
        "UPPER.case",
        "spa ce",
        "ünï",
        &long,
    ] {
        let err = fabric
            .create_topic(name, TopicConfig::with_partitions(1))
            .unwrap_err();
        assert!(
            matches!(err, Error::Invalid { .. }) && err.to_string().contains("topic name"),
            "{name:?}: {err}"
        );
    }
    let at_limit = "a".repeat(249);
    fabric
        .create_topic(&at_limit, TopicConfig::with_partitions(1))
        .unwrap();
    // Nothing was created outside topics/, and only the one valid topic inside.
    let mut outside: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    outside.sort();
    assert_eq!(outside, ["data"]);
    assert_eq!(fs::read_dir(data.join("topics")).unwrap().count(), 1);
    let zero = fabric.create_topic("zero.partitions", TopicConfig::with_partitions(0));
    assert!(zero.unwrap_err().to_string().contains("partitions"));
}

#[test]
fn a_damaged_topic_file_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = Fabric::open(dir.path(), os()).unwrap();
    fabric
        .create_topic("billing.domain.v1", TopicConfig::with_partitions(2))
        .unwrap();
    fabric.close().unwrap();
    let path = dir.path().join("topics/billing.domain.v1/topic.json");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(
        &path,
        text.replace("\"partitions\": 2", "\"partitions\": 3"),
    )
    .unwrap();
    let err = Fabric::open(dir.path(), os()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Corrupted { .. })
            && msg.contains("topic.json")
            && msg.contains("checksum"),
        "{msg}"
    );
    fs::write(&path, "{not json").unwrap();
    let msg = Fabric::open_read_only(dir.path()).unwrap_err().to_string();
    assert!(
        msg.contains("topic.json") && msg.contains("not valid JSON"),
        "{msg}"
    );
}

#[test]
fn a_second_writer_is_refused_with_the_holders_pid() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = Fabric::open(dir.path(), os()).unwrap();
    let err = Fabric::open(dir.path(), os()).unwrap_err();
    match &err {
        Error::Locked { pid, .. } => assert_eq!(*pid, std::process::id()),
        other => panic!("expected Locked, got {other}"),
    }
    assert!(
        err.to_string()
            .contains(&format!("locked by pid {}", std::process::id()))
    );
    // Readers are never refused.
    let reader = Fabric::open_read_only(dir.path()).unwrap();
    assert!(reader.is_read_only());
    assert!(reader.producer("x", "svc").is_err());
    drop(fabric);
    Fabric::open(dir.path(), os()).unwrap();
}

#[test]
fn producing_to_a_missing_topic_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = Fabric::open(dir.path(), os()).unwrap();
    let err = fabric.producer("billing.domain.v1", "svc").unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(fabric.topics().is_empty());
}

#[test]
fn the_producer_enriches_drafts() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = Fabric::open(dir.path(), os()).unwrap();
    fabric
        .create_topic("billing.domain.v1", TopicConfig::with_partitions(4))
        .unwrap();
    let mut producer = fabric
        .producer("billing.domain.v1", "billing-service")
        .unwrap();
    let draft = Draft::new(
        "billing.invoice.issued",
        Some("tenant-7"),
        json!({"invoice_id": "inv-1", "amount": 12500}),
    );
    let (parent, at) = producer.send(draft).unwrap();
    assert_eq!(parent.event_id.get_version_num(), 7);
    assert_eq!(parent.source, "billing-service");
    assert_eq!(parent.partition_key, "tenant-7");
    assert!(!parent.correlation_id.is_empty());
    assert!(parent.causation_id.is_none());
    assert_eq!(at.partition, partition_for_key("tenant-7", 4));
    let now = jiff::Timestamp::now();
    assert!((now - parent.emitted_at).as_secs().abs() < 60);

    let child = Draft::new("billing.invoice.paid", Some("tenant-7"), json!({})).caused_by(&parent);
    let (child, _) = producer.send(child).unwrap();
    assert_eq!(child.correlation_id, parent.correlation_id);
    assert_eq!(
        child.causation_id.as_deref(),
        Some(&*parent.event_id.to_string())
    );

    // A tenant-less system event is keyed by its event type.
    let (system, _) = producer
        .send(Draft::new("system.node.started", None, json!({"node": 1})))
        .unwrap();
    assert_eq!(system.partition_key, "system.node.started");
    assert_eq!(system.tenant_id, None);

    // Fields given are kept.
    let given = seed("billing.invoice.issued");
    let (kept, _) = producer
        .send(Draft::from_value(given.to_json_value()).unwrap())
        .unwrap();
    assert_eq!(kept, given);

    #[derive(serde::Serialize)]
    struct Login {
        user_id: String,
        mfa: bool,
    }
    let (typed, _) = producer
        .publish_typed(
            "auth.user.login_succeeded",
            Some("tenant-1"),
            &Login {
                user_id: "u-1".into(),
                mfa: true,
            },
        )
        .unwrap();
    assert_eq!(typed.payload, json!({"user_id": "u-1", "mfa": true}));

    let events: Vec<_> = fabric
        .reader("billing.domain.v1", StartFrom::Earliest)
        .unwrap()
        .map(|e| e.unwrap().envelope)
        .collect();
    assert_eq!(events.len(), 5);
    assert!(events.contains(&parent) && events.contains(&given) && events.contains(&typed));
}

#[test]
fn invalid_events_are_refused_and_nothing_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = Fabric::open(dir.path(), os()).unwrap();
    fabric
        .create_topic("t.v1", TopicConfig::with_partitions(1))
        .unwrap();
    let mut producer = fabric.producer("t.v1", "svc").unwrap();
    let err = producer
        .prepare(Draft::new("Not-A-Type", None, json!({})))
        .unwrap_err();
    let fields: Vec<&str> = err.fields().collect();
    assert!(
        fields.contains(&"event_type") && fields.contains(&"tenant_id"),
        "{fields:?}"
    );

    let good = seed("billing.invoice.issued");
    let mut bad = good.clone();
    bad.event_type = "billing".into();
    let err = producer.publish_batch(&[good.clone(), bad]).unwrap_err();
    assert!(err.to_string().contains("event_type"), "{err}");
    assert_eq!(fabric.topic_info("t.v1").unwrap().offsets, [(0, 0)]);
    let mut v4 = good;
    v4.event_id = uuid::Uuid::from_u128(0x0194a5c1_3f24_4b7a_bc59_5f23d81f5b1a);
    assert!(
        producer
            .publish(&v4)
            .unwrap_err()
            .to_string()
            .contains("event_id")
    );
    assert_eq!(fabric.topic_info("t.v1").unwrap().offsets, [(0, 0)]);
}

#[test]
fn batches_are_routed_like_kafka_and_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = Fabric::open(dir.path(), os()).unwrap();
    fabric
        .create_topic("billing.domain.v1", TopicConfig::with_partitions(6))
        .unwrap();
    let mut producer = fabric.producer("billing.domain.v1", "svc").unwrap();
    let mut generator = FixtureGenerator::new(7, 20);
    let events: Vec<Envelope> = generator
        .iter(FixtureKind::BillingInvoiceIssued)
        .take(500)
        .collect();
    let published = producer.publish_batch(&events).unwrap();
    let mut next = [0u64; 6];
    for (e, p) in events.iter().zip(&published) {
        assert_eq!(p.partition, partition_for_key(&e.partition_key, 6));
        assert_eq!(
            p.offset, next[p.partition as usize],
            "offsets are dense per partition"
        );
        next[p.partition as usize] += 1;
    }
    let mut read: HashMap<(u32, u64), Envelope> = HashMap::new();
    for e in fabric
        .reader("billing.domain.v1", StartFrom::Earliest)
        .unwrap()
    {
        let e = e.unwrap();
        assert_eq!(e.timestamp, e.envelope.emitted_at.as_microsecond());
        read.insert((e.partition, e.offset), e.envelope);
    }
    assert_eq!(read.len(), 500);
    let mut raw_reader = fabric
        .reader("billing.domain.v1", StartFrom::Earliest)
        .unwrap();
    let mut raw_count = 0;
    while let Some(raw) = raw_reader.next_raw() {
        let raw = raw.unwrap();
        let fields = raw.envelope().unwrap();
        let full = &read[&(raw.partition, raw.offset)];
        assert_eq!(fields.event_id, full.event_id);
        assert_eq!(fields.payload().unwrap(), full.payload);
        raw_count += 1;
    }
    assert_eq!(raw_count, 500);
    for (e, p) in events.iter().zip(&published) {
        assert_eq!(&read[&(p.partition, p.offset)], e);
    }
}

#[test]
fn per_key_order_holds_under_concurrent_producers() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = Fabric::open(dir.path(), os()).unwrap();
    fabric
        .create_topic("orders.v1", TopicConfig::with_partitions(4))
        .unwrap();
    let template = seed("billing.invoice.issued");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let mut producer = fabric
                .producer("orders.v1", &format!("producer-{t}"))
                .unwrap();
            let template = template.clone();
            std::thread::spawn(move || {
                for i in 0..400u64 {
                    let mut e = template.clone();
                    e.event_id = uuid::Uuid::nil(); // enrichment gives each a fresh v7 id
                    e.source = String::new();
                    e.partition_key = format!("t{t}-k{}", i % 8);
                    e.payload = json!({"seq": i / 8});
                    if i % 3 == 0 {
                        producer.publish(&e).unwrap();
                    } else {
                        producer.publish_batch(&[e]).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut last: BTreeMap<String, (u32, i64)> = BTreeMap::new();
    let mut count = 0;
    for e in fabric.reader("orders.v1", StartFrom::Earliest).unwrap() {
        let e = e.unwrap();
        count += 1;
        let key = e.envelope.partition_key.clone();
        assert_eq!(e.partition, partition_for_key(&key, 4));
        assert!(e.envelope.source.starts_with("producer-"));
        let seq = e.envelope.payload["seq"].as_i64().unwrap();
        let expected = last.get(&key).map_or(0, |(_, s)| s + 1);
        assert_eq!(
            seq, expected,
            "key {key} out of order at offset {}",
            e.offset
        );
        last.insert(key, (e.partition, seq));
    }
    assert_eq!(count, 1600);
    assert_eq!(last.len(), 32);
}

#[test]
fn readers_start_from_earliest_latest_offsets_or_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = Fabric::open(dir.path(), os()).unwrap();
    fabric
        .create_topic("auth.audit.v1", TopicConfig::with_partitions(2))
        .unwrap();
    let mut producer = fabric.producer("auth.audit.v1", "svc").unwrap();
    let mut generator = FixtureGenerator::new(3, 5);
    let events: Vec<Envelope> = generator
        .iter(FixtureKind::AuthUserLoginSucceeded)
        .take(200)
        .collect();
    producer.publish_batch(&events).unwrap();

    let all = fabric
        .reader("auth.audit.v1", StartFrom::Earliest)
        .unwrap()
        .count();
    assert_eq!(all, 200);
    let mut latest = fabric.reader("auth.audit.v1", StartFrom::Latest).unwrap();
    assert!(latest.next().is_none());
    let from_10 = fabric
        .reader("auth.audit.v1", StartFrom::Offset(10))
        .unwrap();
    let positions = from_10.positions();
    assert!(positions.values().all(|&o| o == 10));
    for e in from_10 {
        assert!(e.unwrap().offset >= 10);
    }
    let exact = fabric
        .reader(
            "auth.audit.v1",
            StartFrom::Offsets(BTreeMap::from([(1, 5)])),
        )
        .unwrap()
        .with_partitions(&[1])
        .unwrap();
    let offsets: Vec<u64> = exact.map(|e| e.unwrap().offset).collect();
    assert_eq!(offsets.first(), Some(&5));
    assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1));
    let out_of_range = fabric.reader(
        "auth.audit.v1",
        StartFrom::Offsets(BTreeMap::from([(0, 9999)])),
    );
    assert!(matches!(out_of_range, Err(Error::OffsetOutOfRange { .. })));

    // From a time: exactly the events emitted at or after it.
    let mut times: Vec<jiff::Timestamp> = events.iter().map(|e| e.emitted_at).collect();
    times.sort();
    let cut = times[120];
    let expected = events.iter().filter(|e| e.emitted_at >= cut).count();
    let got: Vec<_> = fabric
        .reader("auth.audit.v1", StartFrom::Time(cut))
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    // Every event emitted at or after the cut is read, and each partition
    // starts at an event at or after it (emitted_at need not be monotonic).
    for e in events.iter().filter(|e| e.emitted_at >= cut) {
        assert!(got.iter().any(|g| &g.envelope == e));
    }
    for p in 0..2 {
        let first = got.iter().find(|g| g.partition == p).unwrap();
        assert!(first.envelope.emitted_at >= cut);
    }
    assert!(
        got.len() >= expected && got.len() < 200,
        "{} vs {expected}",
        got.len()
    );

    // Waiting: a reader at the end is woken by an append from another thread.
    let mut tail = fabric
        .reader("auth.audit.v1", StartFrom::Latest)
        .unwrap()
        .with_partitions(&[0])
        .unwrap();
    assert!(!tail.wait(Duration::from_millis(20)).unwrap());
    let mut p2 = fabric.producer("auth.audit.v1", "svc").unwrap();
    let mut one = events
        .iter()
        .find(|e| partition_for_key(&e.partition_key, 2) == 0)
        .unwrap()
        .clone();
    // A new event (the same id would be a duplicate within the dedup window).
    one.event_id = Envelope::new_event_id();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        p2.publish(&one).unwrap();
    });
    assert!(tail.wait(Duration::from_secs(10)).unwrap());
    assert_eq!(tail.next().unwrap().unwrap().partition, 0);
    writer.join().unwrap();
}

#[test]
fn a_read_only_fabric_follows_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = Fabric::open(dir.path(), os()).unwrap();
    let reader_fabric = Fabric::open_read_only(dir.path()).unwrap();
    assert!(reader_fabric.topics().is_empty());
    fabric
        .create_topic("workflow.events.v1", TopicConfig::with_partitions(2))
        .unwrap();
    reader_fabric.refresh().unwrap();
    assert_eq!(reader_fabric.topics(), ["workflow.events.v1"]);
    let mut reader = reader_fabric
        .reader("workflow.events.v1", StartFrom::Earliest)
        .unwrap();
    assert!(reader.next().is_none());
    let mut producer = fabric.producer("workflow.events.v1", "svc").unwrap();
    let mut generator = FixtureGenerator::new(9, 3);
    let events: Vec<Envelope> = generator
        .iter(FixtureKind::WorkflowInstanceCompleted)
        .take(50)
        .collect();
    producer.publish_batch(&events).unwrap();
    fabric.add_partitions("workflow.events.v1", 3).unwrap();
    assert!(reader.wait(Duration::from_secs(10)).unwrap());
    let got: Vec<_> = reader.by_ref().map(|e| e.unwrap().envelope).collect();
    assert_eq!(got.len(), 50);
    for e in &events {
        assert!(got.contains(e));
    }
    assert_eq!(
        reader_fabric
            .topic_info("workflow.events.v1")
            .unwrap()
            .offsets
            .len(),
        2
    );
    reader_fabric.refresh().unwrap();
    assert_eq!(
        reader_fabric
            .topic_info("workflow.events.v1")
            .unwrap()
            .config
            .partitions,
        3
    );
}
