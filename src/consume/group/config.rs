//! The settings of a consumer-group member: delivery mode, commit
//! durability, where a new cursor starts, and their bounds.
//!
//! Owns [`ConsumerConfig`] and the enums it is made of; it must never hold
//! runtime state or touch the disk.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};

/// When a group's cursor moves relative to handing events out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryMode {
    /// Positions are committed after the handler processed the batch (the
    /// next `poll` counts the previous batch as processed for auto-commit; an
    /// explicit [`Consumer::commit`] commits everything handed out). After a
    /// crash the uncommitted tail is delivered again.
    #[default]
    AtLeastOnce,
    /// Each batch's end positions are committed before `poll` returns it:
    /// nothing is ever delivered twice; a crash loses the batch in hand.
    AtMostOnce,
    /// At-least-once delivery plus the group's processed-id window: an event
    /// whose `event_id` the group already recorded as processed (committed
    /// together with the cursor) is skipped instead of delivered again.
    EffectivelyOnce,
}

/// How durable a commit is when it returns. Either way a commit never
/// persists a position past the partition log's durable offset: when the
/// log is behind, the commit syncs it first (on the writer's fabric), so a
/// power loss cannot leave a cursor above the records it kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitDurability {
    /// `fdatasync` before returning: survives power loss.
    #[default]
    Sync,
    /// In the page cache: survives a process crash (kill -9), not power loss.
    Os,
}

/// Where a partition without a committed cursor starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CursorStart {
    /// The earliest offset held.
    #[default]
    Earliest,
    /// The end of the partition when the member takes it over.
    Latest,
}

/// Settings of one group member.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// Delivery guarantee (default at-least-once).
    pub delivery: DeliveryMode,
    /// Most events one `poll` returns (default 500).
    pub max_poll_records: usize,
    /// A member that does not poll (or commit) for this long loses its
    /// partitions to the others (default 10 s).
    pub session_timeout: Duration,
    /// Commit automatically from `poll` when this long passed since the last
    /// commit (default 5 s); `None`: only explicit commits.
    pub auto_commit_interval: Option<Duration>,
    /// Durability of every commit (default `Sync`).
    pub commit_durability: CommitDurability,
    /// Where partitions without a committed cursor start (default earliest).
    pub start: CursorStart,
    /// Route events skipped for an expired TTL to the dead-letter queue
    /// `<topic>.dlq` (reason `expired`), besides counting them.
    pub expired_to_dlq: bool,
    /// Processed-id window (effectively-once): most ids kept (default 100 000).
    /// The first member to open the group's cursor log sets the window.
    pub processed_window_ids: usize,
    /// Processed-id window: longest time an id is kept (default 24 h).
    pub processed_window_age: Duration,
    /// Hand out only records the partition log already made durable (below
    /// [`crate::Log::durable_offset`]), for handlers that must never act on
    /// an event a power loss could still remove; they wait for the topic's
    /// next sync (its fsync policy, or a [`Fabric::flush`]). Default off:
    /// records are handed out as soon as they are appended.
    pub durable_only: bool,
    /// Time source (default [`SystemClock`]).
    pub clock: Arc<dyn Clock>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            delivery: DeliveryMode::AtLeastOnce,
            max_poll_records: 500,
            session_timeout: Duration::from_secs(10),
            auto_commit_interval: Some(Duration::from_secs(5)),
            commit_durability: CommitDurability::Sync,
            start: CursorStart::Earliest,
            expired_to_dlq: false,
            processed_window_ids: 100_000,
            processed_window_age: Duration::from_secs(24 * 3600),
            durable_only: false,
            clock: Arc::new(SystemClock),
        }
    }
}

impl ConsumerConfig {
    /// Default settings with `delivery`.
    pub fn with_delivery(delivery: DeliveryMode) -> Self {
        ConsumerConfig {
            delivery,
            ..ConsumerConfig::default()
        }
    }

    pub(super) fn validate(&self) -> Result<()> {
        if self.max_poll_records == 0 {
            return Err(Error::invalid("max_poll_records", "must be at least 1"));
        }
        if self.session_timeout.is_zero() {
            return Err(Error::invalid("session_timeout", "must be positive"));
        }
        use crate::clock::{DAY, check_duration};
        check_duration("session_timeout", self.session_timeout, DAY)?;
        if let Some(every) = self.auto_commit_interval {
            check_duration("auto_commit_interval", every, DAY)?;
        }
        check_duration("processed_window_age", self.processed_window_age, 365 * DAY)?;
        Ok(())
    }
}
