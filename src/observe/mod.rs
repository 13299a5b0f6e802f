//! Observability hooks: the one place the other layers call to report what
//! they did, turned into metrics through the `metrics` facade (issue 14).
//!
//! Owns the mapping from an engine event (a batch appended, an fsync, a
//! refused publish, a dedup hit, a poll, a commit's lag, a queue delivery, a
//! dead letter, a tier move) to the metric names of [`names`]. It must never
//! install a recorder, open a port, block, or fail the operation it reports
//! on: without a recorder every call is a no-op of the facade. Label values
//! stay bounded: topic, partition, group, queue, tier and reason, never an
//! event id or a tenant.
//!
//! It sits below every layer (it imports none of them: callers pass names
//! and numbers), so any layer may call it. Every hook is one call from the layer that knows the fact, so the call
//! sites stay one line each.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

pub mod names;
pub mod stats;

/// A batch of `records` records (`bytes` encoded bytes) was appended to a
/// partition log in `elapsed` (durability wait included).
pub(crate) fn appended(records: usize, bytes: usize, elapsed: Duration) {
    counter!(names::APPEND_RECORDS_TOTAL).increment(records as u64);
    counter!(names::APPEND_BYTES_TOTAL).increment(bytes as u64);
    histogram!(names::APPEND_DURATION_SECONDS).record(elapsed);
}

/// One `fdatasync`/`fsync` of a data file took `elapsed`.
pub(crate) fn fsynced(elapsed: Duration) {
    histogram!(names::FSYNC_DURATION_SECONDS).record(elapsed);
}

/// A producer refused an event for `reason` (one of `names::REJECT_*`).
pub(crate) fn publish_rejected(reason: &'static str) {
    counter!(names::PUBLISH_REJECTED_TOTAL, names::REASON => reason).increment(1);
}

/// A publish was answered from the dedup cache instead of appending.
pub(crate) fn dedup_hit() {
    counter!(names::DEDUP_HITS_TOTAL).increment(1);
}

/// A group or queue consumer of `topic` got `events` events (group poll) or
/// settled them successfully (queue ack).
pub(crate) fn consumed(topic: &str, group: &str, events: usize) {
    if events > 0 {
        counter!(names::CONSUME_SUCCESS_TOTAL, names::TOPIC => topic.to_owned(),
            names::CONSUMER_GROUP => group.to_owned())
        .increment(events as u64);
    }
}

/// A group poll of `topic` failed, or a queue message was nacked.
pub(crate) fn consume_failed(topic: &str, group: &str) {
    counter!(names::CONSUME_ERROR_TOTAL, names::TOPIC => topic.to_owned(),
        names::CONSUMER_GROUP => group.to_owned())
    .increment(1);
}

/// The lag of `group` on `topic`: `(partition, lag)` pairs, each set as a
/// gauge, and their sum (set after each commit).
pub(crate) fn group_lag(topic: &str, group: &str, lags: impl Iterator<Item = (u32, u64)>) {
    let mut sum = 0u64;
    for (partition, lag) in lags {
        sum = sum.saturating_add(lag);
        gauge!(names::CONSUMER_LAG, names::TOPIC => topic.to_owned(),
            names::PARTITION => partition.to_string(),
            names::CONSUMER_GROUP => group.to_owned())
        .set(lag as f64);
    }
    gauge!(names::CONSUMERGROUP_LAG_SUM, names::TOPIC => topic.to_owned(),
        names::CONSUMER_GROUP => group.to_owned())
    .set(sum as f64);
}

/// Queue `queue` of `topic` has `in_flight` messages in flight now.
pub(crate) fn queue_inflight(topic: &str, queue: &str, in_flight: usize) {
    gauge!(names::QUEUE_INFLIGHT, names::TOPIC => topic.to_owned(),
        names::CONSUMER_GROUP => queue.to_owned())
    .set(in_flight as f64);
}

/// Queue `queue` of `topic` delivered a message again.
pub(crate) fn queue_redelivered(topic: &str, queue: &str) {
    counter!(names::QUEUE_REDELIVERIES_TOTAL, names::TOPIC => topic.to_owned(),
        names::CONSUMER_GROUP => queue.to_owned())
    .increment(1);
}

/// A record of `topic` was written to its dead-letter topic for `reason`.
pub(crate) fn dead_lettered(topic: &str, reason: &'static str) {
    counter!(names::DLQ_RECORDS_TOTAL, names::TOPIC => topic.to_owned(),
        names::REASON => reason)
    .increment(1);
}

/// Retention moved a segment to `to` (`warm`, `cold` or `deleted`).
pub(crate) fn tier_moved(to: &'static str) {
    counter!(names::TIER_MOVES_TOTAL, names::TIER => to).increment(1);
}
