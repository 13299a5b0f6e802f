//! What a queue hands out and hands back: messages, failures, nack
//! outcomes and counters.
//!
//! Owns the public value types of a queue; it must never change queue state.

use std::time::Duration;

use bytes::Bytes;

use crate::consume::dlq::DlqReason;
use crate::envelope::{EnvelopeError, EnvelopeRef};

/// A message handed out by [`Queue::fetch`](super::Queue::fetch): ack or nack it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    /// Its partition.
    pub partition: u32,
    /// Its offset.
    pub offset: u64,
    /// The record timestamp (µs; the envelope's `emitted_at`).
    pub timestamp: i64,
    /// This delivery's number: 1 for the first, counting across restarts.
    pub attempt: u32,
    /// The encoded envelope.
    pub value: Bytes,
}

impl QueueMessage {
    /// Decodes the envelope in place.
    pub fn envelope(&self) -> std::result::Result<EnvelopeRef<'_>, EnvelopeError> {
        EnvelopeRef::decode(&self.value)
    }
}

/// Why a handler gave a message back, and whether to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The reason recorded if the message is dead-lettered now.
    pub reason: DlqReason,
    /// The error text (kept as evidence in the dead letter).
    pub error: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// Redeliver after this instead of the policy's backoff.
    pub delay: Option<Duration>,
}

impl Failure {
    /// A retryable handler error: redelivered after the policy's backoff.
    pub fn retry(error: impl Into<String>) -> Failure {
        Failure {
            reason: DlqReason::HandlerError,
            error: error.into(),
            retryable: true,
            delay: None,
        }
    }

    /// A retryable handler error redelivered after `delay` (`nack(delay)`).
    pub fn retry_after(error: impl Into<String>, delay: Duration) -> Failure {
        Failure {
            delay: Some(delay),
            ..Failure::retry(error)
        }
    }

    /// A failure no retry can fix: dead-lettered at once with `reason`.
    pub fn fatal(reason: DlqReason, error: impl Into<String>) -> Failure {
        Failure {
            reason,
            error: error.into(),
            retryable: false,
            delay: None,
        }
    }
}

/// What [`Queue::nack`](super::Queue::nack) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NackOutcome {
    /// Redelivered (as attempt `next_attempt`) at or after `at` (µs).
    Retry {
        /// The attempt number of the next delivery.
        next_attempt: u32,
        /// Earliest redelivery time, µs since the epoch.
        at: i64,
    },
    /// Sent to the dead-letter queue at this `.dlq` partition and offset.
    DeadLettered {
        /// Partition of `<topic>.dlq`.
        partition: u32,
        /// Offset there.
        offset: u64,
    },
    /// Nothing: this delivery is no longer current (it timed out and the
    /// message was redelivered or acked since).
    Stale,
}

/// Counters of a queue since it was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// Deliveries (first and repeated).
    pub delivered: u64,
    /// Deliveries after the first.
    pub redelivered: u64,
    /// Acks that marked a message done.
    pub acked: u64,
    /// Nacks that took effect.
    pub nacked: u64,
    /// Visibility timeouts.
    pub timed_out: u64,
    /// Messages sent to the dead-letter queue.
    pub dead_lettered: u64,
    /// Events past `emitted_at + ttl` that were not delivered.
    pub expired: u64,
    /// Events of other tenants skipped.
    pub filtered: u64,
    /// Messages in flight now.
    pub in_flight: u64,
    /// Messages waiting for a retry now.
    pub waiting: u64,
}
