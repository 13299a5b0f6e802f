//! The README's main job: open a data directory, declare the three contract
//! topics, publish the seed events and a few thousand generated ones, read
//! them back; then the delivery side — a duplicate publish answered by the
//! dedup cache, a consumer group committing its cursors, a queue that sends
//! a poison message to the dead-letter queue — and retention moving old
//! audit segments to the warm tier while replay still reads them; finally a
//! peek at the partition log underneath.
//!
//! `cargo run --example quickstart`
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use eventfabric::fixtures::{FixtureGenerator, FixtureKind};
use eventfabric::{
    ConsumerConfig, DlqFilter, DlqReason, Draft, Envelope, Fabric, FabricConfig, Failure,
    FsyncPolicy, QueueConfig, ReadLimit, StartFrom, TopicConfig,
};

const TOPICS: [(&str, FixtureKind, u32); 3] = [
    ("billing.domain.v1", FixtureKind::BillingInvoiceIssued, 6),
    ("auth.audit.v1", FixtureKind::AuthUserLoginSucceeded, 3),
    (
        "workflow.events.v1",
        FixtureKind::WorkflowInstanceCompleted,
        3,
    ),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let fabric = Fabric::open(dir.path(), FabricConfig::default())?;
    for (topic, _, partitions) in TOPICS {
        let mut config = TopicConfig::with_partitions(partitions);
        config.fsync = FsyncPolicy::Group;
        if topic == "auth.audit.v1" {
            // A compliance topic: one day hot, a year warm (compressed
            // archive segments), small segments so this demo has some to move.
            config.segment_bytes = 64 << 10;
            config.retention_ms = Some(86_400_000);
            config.warm_retention_ms = 365 * 86_400_000;
        }
        fabric.create_topic(topic, config)?;
    }

    // The three seed events of the contract, exactly as shipped.
    let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seed-events");
    let started = Instant::now();
    for (topic, kind, _) in TOPICS {
        let text = std::fs::read(format!("{seeds}/{}.json", kind.event_type()))?;
        let seed = Envelope::from_json(&text)?;
        let mut producer = fabric.producer(topic, kind.source())?;
        let at = producer.publish(&seed)?;
        println!(
            "seed {:<28} -> {topic} partition {} offset {}",
            seed.event_type, at.partition, at.offset
        );
        // A few thousand generated events, published in batches of 250.
        let mut generator = FixtureGenerator::new(7, 25);
        let events: Vec<Envelope> = generator.iter(kind).take(3_000).collect();
        for chunk in events.chunks(250) {
            producer.publish_batch(chunk)?;
        }
    }
    // A follow-up event: the producer fills in id, times, source, correlation.
    let mut billing = fabric.producer("billing.domain.v1", "billing-service")?;
    let (invoice, _) = billing.publish_typed(
        "billing.invoice.issued",
        Some("tenant-123"),
        &serde_json::json!({"invoice_id": "inv-9", "amount": 4200, "currency": "EUR"}),
    )?;
    let (paid, at) = billing.send(
        Draft::new(
            "billing.invoice.paid",
            Some("tenant-123"),
            serde_json::json!({"invoice_id": "inv-9"}),
        )
        .caused_by(&invoice),
    )?;
    fabric.flush()?;
    println!(
        "published 9,005 events in {:?}; {} caused by {} (correlation {}) at partition {} offset {}",
        started.elapsed(),
        paid.event_type,
        invoice.event_id,
        paid.correlation_id,
        at.partition,
        at.offset
    );

    // Read everything back, decoded and validated, and summarise.
    let started = Instant::now();
    for (topic, _, _) in TOPICS {
        let mut per_tenant: BTreeMap<String, u64> = BTreeMap::new();
        let mut count = 0u64;
        for event in fabric.reader(topic, StartFrom::Earliest)? {
            let event = event?;
            count += 1;
            let tenant = event.envelope.tenant_id.unwrap_or_else(|| "-".into());
            *per_tenant.entry(tenant).or_default() += 1;
        }
        let info = fabric.topic_info(topic)?;
        let busiest = per_tenant
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(tenant, n)| format!("busiest {tenant} with {n}"))
            .unwrap_or_else(|| "none".into());
        println!(
            "{topic:<20} {count:>5} events over {} partitions, {} tenants ({busiest})",
            info.offsets.len(),
            per_tenant.len(),
        );
    }
    println!("read back in {:?}", started.elapsed());

    // From a time: everything emitted at or after the seeds' generated clock start.
    let later = FixtureGenerator::START + jiff::SignedDuration::from_mins(10);
    let recent = fabric
        .reader("auth.audit.v1", StartFrom::Time(later))?
        .count();
    println!("auth.audit.v1 events emitted since {later}: about {recent}");

    // Effectively-once publishing: the same event_id within the topic's
    // dedup window (2 minutes by default) appends nothing.
    let again = billing.publish(&invoice)?;
    println!(
        "re-published {}: {:?}, still partition {} offset {}",
        invoice.event_id, again.outcome, again.partition, again.offset
    );

    // A consumer group: durable cursors, committed after each handled batch.
    let mut group = fabric.consumer("invoicing", "billing.domain.v1", ConsumerConfig::default())?;
    let mut consumed = 0;
    loop {
        let batch = group.poll(Duration::from_millis(20))?;
        if batch.is_empty() {
            break;
        }
        consumed += batch.len();
        group.commit()?;
    }
    println!(
        "group invoicing consumed {consumed} events and committed; lag {}",
        group.status().lag()
    );
    group.close()?;

    // A queue with per-message acks; the first message is poison and goes
    // straight to workflow.events.v1.dlq with its reason and payload hash.
    // (The generated workflow events carry a ttl that passed long ago: the
    // queue skips and counts them instead of delivering them.)
    let mut workflow = fabric.producer("workflow.events.v1", "workflow-engine")?;
    for i in 0..100 {
        workflow.send(Draft::new(
            "workflow.instance.completed",
            Some("tenant-123"),
            serde_json::json!({"instance_id": format!("wf-{i}"), "status": "succeeded"}),
        ))?;
    }
    let queue = fabric.queue(
        "workflow-workers",
        "workflow.events.v1",
        QueueConfig::default(),
    )?;
    let (mut acked, mut poisoned) = (0, false);
    loop {
        let messages = queue.fetch(500, Duration::from_millis(20))?;
        let Some((first, rest)) = messages.split_first() else {
            break;
        };
        if poisoned {
            queue.ack(first)?;
            acked += 1;
        } else {
            queue.nack(
                first,
                Failure::fatal(DlqReason::SchemaViolation, "output.result is missing"),
            )?;
            poisoned = true;
        }
        queue.ack_all(rest)?;
        acked += rest.len();
    }
    for letter in fabric
        .dead_letters("workflow.events.v1")?
        .list(&DlqFilter::default())?
    {
        let json = letter.to_json();
        println!(
            "queue acked {acked}, skipped {} expired; dead letter: reason {}, from partition {} offset {}, payload sha256 {}",
            queue.stats().expired,
            json["reason"],
            letter.letter.partition,
            letter.letter.offset,
            json["payload_sha256"]
        );
    }
    // Fabric::close refuses while a queue, reader or group member is open.
    drop(queue);

    // Retention: sealed audit segments past one day move to the warm tier;
    // replay from the earliest offset reads across warm and hot alike.
    let report = fabric.maintain()?;
    let replayed = fabric.reader("auth.audit.v1", StartFrom::Earliest)?.count();
    println!(
        "maintain: {} segment(s) to warm, {} -> {} bytes, in {:?}; replay from earliest reads {replayed} events",
        report.segments_to_warm, report.bytes_before, report.bytes_after, report.elapsed
    );

    // Underneath, each partition is a plain partition log.
    let log = fabric.partition("billing.domain.v1", 0)?;
    let first = log.read(log.earliest_offset(), ReadLimit::records(1))?;
    println!(
        "partition log {}: offsets {}..{}, {} segment(s), first record {} bytes of MessagePack",
        log.dir().display(),
        log.earliest_offset(),
        log.next_offset(),
        log.segments().len(),
        first.first().map_or(0, |r| r.value.len())
    );
    fabric.close()?;
    Ok(())
}
