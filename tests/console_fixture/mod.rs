//! The data directory the operator-console tests (`fabric ui`, `fabric top`,
//! the runbook) run over, built once here: two topics, a consumer group
//! with lag, a queue that dead-lettered one event with a reason.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use eventfabric::{
    ConsumerConfig, DlqReason, Draft, Fabric, FabricConfig, Failure, QueueConfig, TopicConfig,
};
use serde_json::json;

/// The topic with a group and a dead letter.
pub const BILLING: &str = "billing.invoice.v1";
/// A second topic, no consumers.
pub const ORDERS: &str = "orders.placed.v1";
/// The consumer group on [`BILLING`].
pub const GROUP: &str = "invoice-mailer";
/// The queue on [`BILLING`] that dead-letters one event.
pub const QUEUE: &str = "invoice-checker";
/// The dead letter's error text.
pub const DLQ_ERROR: &str = "amount must be positive";
/// The group's lag on [`BILLING`] after [`build`]: events published after its commit.
pub const GROUP_LAG: u64 = 3;
/// Events in [`BILLING`] after [`build`].
pub const BILLING_EVENTS: u64 = 5 + GROUP_LAG;

/// Fills `dir` (an empty directory): [`BILLING`] with 2 partitions and
/// [`BILLING_EVENTS`] events, [`ORDERS`] with 4 events, group [`GROUP`]
/// committed after the first 5 billing events (lag [`GROUP_LAG`]), queue
/// [`QUEUE`] that dead-letters the first billing event as a schema
/// violation ([`DLQ_ERROR`]) and acks the rest.
pub fn build(dir: &Path) {
    let fabric = Fabric::open(dir, FabricConfig::default()).unwrap();
    fabric
        .create_topic(BILLING, TopicConfig::with_partitions(2))
        .unwrap();
    fabric
        .create_topic(ORDERS, TopicConfig::with_partitions(1))
        .unwrap();
    let mut billing = fabric.producer(BILLING, "fixture").unwrap();
    for i in 0..5 {
        billing
            .send(
                Draft::new(
                    "billing.invoice.issued",
                    Some("tenant-1"),
                    json!({"invoice": i, "amount": if i == 0 { -5 } else { 10 * i }}),
                )
                .partition_key(&format!("customer-{i}")),
            )
            .unwrap();
    }
    let mut orders = fabric.producer(ORDERS, "fixture").unwrap();
    for i in 0..4 {
        orders
            .send(Draft::new(
                "orders.order.placed",
                Some("tenant-1"),
                json!({"order": i}),
            ))
            .unwrap();
    }
    let mut config = ConsumerConfig::default();
    config.auto_commit_interval = None;
    let mut consumer = fabric.consumer(GROUP, BILLING, config).unwrap();
    let mut seen = 0;
    for _ in 0..50 {
        seen += consumer.poll(Duration::from_millis(100)).unwrap().len();
        if seen >= 5 {
            break;
        }
    }
    assert_eq!(seen, 5, "the group read the first five events");
    consumer.commit().unwrap();
    consumer.close().unwrap();
    for i in 5..BILLING_EVENTS {
        billing
            .send(Draft::new(
                "billing.invoice.issued",
                Some("tenant-1"),
                json!({"invoice": i, "amount": 10 * i}),
            ))
            .unwrap();
    }
    let queue = fabric
        .queue(QUEUE, BILLING, QueueConfig::default())
        .unwrap();
    let mut dead = false;
    for _ in 0..50 {
        let got = queue.try_fetch(100).unwrap();
        if got.is_empty() {
            break;
        }
        for m in &got {
            let envelope = m.envelope().unwrap().to_envelope().unwrap();
            let negative = envelope.payload["amount"].as_i64().unwrap_or(0) < 0;
            if negative && !dead {
                queue
                    .nack(m, Failure::fatal(DlqReason::SchemaViolation, DLQ_ERROR))
                    .unwrap();
                dead = true;
            } else {
                queue.ack(m).unwrap();
            }
        }
    }
    assert!(dead, "the negative invoice was dead-lettered");
    drop((billing, orders, queue));
    fabric.close().unwrap();
}
