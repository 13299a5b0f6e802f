//! The settings of a queue and their bounds.
//!
//! Owns [`QueueConfig`] and its validation; it must never hold runtime
//! state or touch the disk.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::consume::dlq::DlqRateAlert;
use crate::consume::retry::RetryPolicy;
use crate::error::{Error, Result};

/// Settings of a [`Queue`](super::Queue). Start from `QueueConfig::default()` and set fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QueueConfig {
    /// Deliver only events of this tenant (others are skipped and counted).
    pub tenant: Option<String>,
    /// An unacked message is visible again exactly this long after it was
    /// handed out (from its deadline, whenever the next fetch comes), with no
    /// retry backoff; the timed-out delivery counts as an attempt toward
    /// `retry.max_attempts` (SQS's receive count), so a message timing out
    /// on its last attempt is dead-lettered (`max_attempts_exceeded`).
    /// Backoff applies to nacks only.
    pub visibility_timeout: Duration,
    /// Most messages delivered and not yet acked or dead-lettered (in flight
    /// or waiting for a retry), like JetStream's `MaxAckPending`: at the cap,
    /// fetch hands out no new message (due retries of counted ones still go).
    pub max_ack_pending: usize,
    /// Attempts and backoff.
    pub retry: RetryPolicy,
    /// Dead-letter expired events (reason `expired`) instead of dropping them.
    pub dead_letter_expired: bool,
    /// Called when dead letters over a sliding window pass a threshold.
    pub dlq_alert: Option<DlqRateAlert>,
    /// The state log is synced at least this often while the queue is used
    /// (acks and attempt counts written since the last sync may be lost to a
    /// power loss, never to a process crash).
    pub sync_interval: Duration,
    /// Compact the state log when it grows past this many bytes (and past
    /// twice its size after the last compaction).
    pub compact_after_bytes: u64,
    /// Hand out only records the partition log already made durable (below
    /// [`crate::Log::durable_offset`]), for handlers that must never act on
    /// an event a power loss could still remove; they wait for the topic's
    /// next sync. Default off.
    pub durable_only: bool,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            tenant: None,
            visibility_timeout: Duration::from_secs(30),
            max_ack_pending: 1000,
            retry: RetryPolicy::default(),
            dead_letter_expired: false,
            dlq_alert: None,
            sync_interval: Duration::from_millis(100),
            compact_after_bytes: 4 << 20,
            durable_only: false,
            clock: Arc::new(SystemClock),
        }
    }
}

impl QueueConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        self.retry.validate()?;
        if self.max_ack_pending == 0 {
            return Err(Error::invalid(
                "queue max_ack_pending",
                "must be at least 1",
            ));
        }
        if self.visibility_timeout.is_zero() {
            return Err(Error::invalid(
                "queue visibility_timeout",
                "must be longer than zero",
            ));
        }
        if let Some(a) = &self.dlq_alert
            && a.window.is_zero()
        {
            return Err(Error::invalid(
                "dlq alert window",
                "must be longer than zero",
            ));
        }
        use crate::clock::{DAY, HOUR, check_duration};
        // SQS's limit: a message invisible for longer is a lost message.
        check_duration(
            "queue visibility_timeout",
            self.visibility_timeout,
            12 * HOUR,
        )?;
        if let Some(a) = &self.dlq_alert {
            check_duration("dlq alert window", a.window, 7 * DAY)?;
        }
        Ok(())
    }
}
