//! Every metric name, metric label name and OpenTelemetry attribute name the
//! crate emits, pinned in one place (issue 14), so dashboards, alerts and the
//! still-evolving OpenTelemetry messaging conventions can be followed by
//! editing this file alone.
//!
//! It owns names only: it never emits anything and never formats a value.
//! docs/METRICS.md lists the same names with type, unit and labels; the
//! observe tests assert the emitted names against these constants.

/// Counter: records appended to any partition log.
pub const APPEND_RECORDS_TOTAL: &str = "eventfabric_append_records_total";
/// Counter (bytes): encoded batch bytes appended to any partition log.
pub const APPEND_BYTES_TOTAL: &str = "eventfabric_append_bytes_total";
/// Histogram (seconds): time of one batch append, durability wait included.
pub const APPEND_DURATION_SECONDS: &str = "eventfabric_append_duration_seconds";
/// Histogram (seconds): time of one `fdatasync`/`fsync` of a data file.
pub const FSYNC_DURATION_SECONDS: &str = "eventfabric_fsync_duration_seconds";
/// Counter: events a producer refused, label [`REASON`] (one of the
/// `REJECT_*` values).
pub const PUBLISH_REJECTED_TOTAL: &str = "eventfabric_publish_rejected_total";
/// Counter: publishes answered from the dedup cache (not appended again).
pub const DEDUP_HITS_TOTAL: &str = "eventfabric_dedup_hits_total";
/// Gauge: a group's lag on one partition, labels [`TOPIC`], [`PARTITION`],
/// [`CONSUMER_GROUP`] (kafka_exporter's names).
pub const CONSUMER_LAG: &str = "eventfabric_consumer_lag";
/// Gauge: a group's lag summed over a topic's partitions, labels [`TOPIC`],
/// [`CONSUMER_GROUP`].
pub const CONSUMERGROUP_LAG_SUM: &str = "eventfabric_consumergroup_lag_sum";
/// Counter: events handed to a consumer (group poll) or acked (queue),
/// labels [`TOPIC`], [`CONSUMER_GROUP`].
pub const CONSUME_SUCCESS_TOTAL: &str = "eventfabric_consume_success_total";
/// Counter: failed polls (group) and nacks (queue), labels [`TOPIC`],
/// [`CONSUMER_GROUP`].
pub const CONSUME_ERROR_TOTAL: &str = "eventfabric_consume_error_total";
/// Gauge: messages of a queue in flight now, labels [`TOPIC`], [`CONSUMER_GROUP`].
pub const QUEUE_INFLIGHT: &str = "eventfabric_queue_inflight";
/// Counter: queue deliveries after the first, labels [`TOPIC`], [`CONSUMER_GROUP`].
pub const QUEUE_REDELIVERIES_TOTAL: &str = "eventfabric_queue_redeliveries_total";
/// Counter: records written to a dead-letter topic, labels [`TOPIC`] (the
/// source topic) and [`REASON`] (the DLQ reason code's name).
pub const DLQ_RECORDS_TOTAL: &str = "eventfabric_dlq_records_total";
/// Counter: publishes delayed or refused by a tenant quota, label [`TENANT`]
/// (reserved: the crate has no quota layer yet, so nothing emits it).
pub const QUOTA_THROTTLED_TOTAL: &str = "eventfabric_quota_throttled_total";
/// Counter: segments moved by retention, label [`TIER`] (the destination:
/// `warm`, `cold`, `deleted`).
pub const TIER_MOVES_TOTAL: &str = "eventfabric_tier_moves_total";
/// Gauge (bytes): bytes a topic holds in one tier, labels [`TOPIC`], [`TIER`]
/// (written by `fabric metrics` from a snapshot).
pub const STORAGE_BYTES: &str = "eventfabric_storage_bytes";

/// Every metric name above, for tests and for documentation checks.
pub const ALL_METRICS: &[&str] = &[
    APPEND_RECORDS_TOTAL,
    APPEND_BYTES_TOTAL,
    APPEND_DURATION_SECONDS,
    FSYNC_DURATION_SECONDS,
    PUBLISH_REJECTED_TOTAL,
    DEDUP_HITS_TOTAL,
    CONSUMER_LAG,
    CONSUMERGROUP_LAG_SUM,
    CONSUME_SUCCESS_TOTAL,
    CONSUME_ERROR_TOTAL,
    QUEUE_INFLIGHT,
    QUEUE_REDELIVERIES_TOTAL,
    DLQ_RECORDS_TOTAL,
    QUOTA_THROTTLED_TOTAL,
    TIER_MOVES_TOTAL,
    STORAGE_BYTES,
];

/// Label: topic name.
pub const TOPIC: &str = "topic";
/// Label: partition number (decimal).
pub const PARTITION: &str = "partition";
/// Label: consumer group (or queue) name; kafka_exporter spells it so.
pub const CONSUMER_GROUP: &str = "consumergroup";
/// Label: why something was refused or dead-lettered.
pub const REASON: &str = "reason";
/// Label: tenant (only on the quota metric, which a host opts into).
pub const TENANT: &str = "tenant";
/// Label: storage tier (`hot`, `warm`, `cold`, `deleted`).
pub const TIER: &str = "tier";

/// [`REASON`] of [`PUBLISH_REJECTED_TOTAL`]: the envelope failed validation.
pub const REJECT_ENVELOPE: &str = "envelope";
/// [`REASON`] of [`PUBLISH_REJECTED_TOTAL`]: the payload failed its schema
/// (reserved until a schema catalog refuses events).
pub const REJECT_SCHEMA: &str = "schema";
/// [`REASON`] of [`PUBLISH_REJECTED_TOTAL`]: an access rule refused it (reserved).
pub const REJECT_ACL: &str = "acl";
/// [`REASON`] of [`PUBLISH_REJECTED_TOTAL`]: a quota refused it (reserved).
pub const REJECT_QUOTA: &str = "quota";

/// OTel attribute: the messaging system; always [`MESSAGING_SYSTEM_VALUE`].
pub const MESSAGING_SYSTEM: &str = "messaging.system";
/// The value of [`MESSAGING_SYSTEM`].
pub const MESSAGING_SYSTEM_VALUE: &str = "eventfabric";
/// OTel attribute: `send`, `receive`, `process` or `settle`.
pub const MESSAGING_OPERATION_TYPE: &str = "messaging.operation.type";
/// OTel attribute: the topic.
pub const MESSAGING_DESTINATION_NAME: &str = "messaging.destination.name";
/// OTel attribute: the partition number.
pub const MESSAGING_DESTINATION_PARTITION_ID: &str = "messaging.destination.partition.id";
/// OTel attribute: the event's `event_id`.
pub const MESSAGING_MESSAGE_ID: &str = "messaging.message.id";
/// OTel attribute: the event's `correlation_id`.
pub const MESSAGING_MESSAGE_CONVERSATION_ID: &str = "messaging.message.conversation_id";
/// OTel attribute: the consumer group.
pub const MESSAGING_CONSUMER_GROUP_NAME: &str = "messaging.consumer.group.name";
/// OTel attribute: events in one batch operation.
pub const MESSAGING_BATCH_MESSAGE_COUNT: &str = "messaging.batch.message_count";
