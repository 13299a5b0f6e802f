//! [`PartitionSource`]: what the layers above topics may ask of a data
//! directory.
//!
//! Producers, readers, consumer groups, queues, the DLQ and tier maintenance
//! are given a `PartitionSource` instead of the [`Fabric`](crate::Fabric)
//! facade, which implements it: so no module below the facade imports it,
//! and every capability they use is listed here. It owns no state; it must
//! never grow a method that hands out a producer, a consumer or the facade.

use std::path::Path;
use std::sync::Arc;

use crate::error::Result;
use crate::storage::io::Io;
use crate::storage::log::Log;
use crate::storage::warm::PartitionView;
use crate::topic::handle::{OpenHandle, TopicHandle};
use crate::topic::{TopicConfig, TopicInfo};

/// The narrow view of one open data directory.
pub(crate) trait PartitionSource: Send + Sync + std::fmt::Debug {
    /// The data directory.
    fn path(&self) -> &Path;
    /// Whether the directory is open read-only (alongside a writer).
    fn is_read_only(&self) -> bool;
    /// For a read-only view: picks up what the writer changed since the last look.
    fn refresh(&self) -> Result<()>;
    /// The open handle of `topic` (an error naming it when unknown or deleted).
    fn handle(&self, topic: &str) -> Result<Arc<TopicHandle>>;
    /// Settings and per-partition offset ranges (warm and hot) of `topic`.
    fn topic_info(&self, topic: &str) -> Result<TopicInfo>;
    /// The hot log of one partition.
    fn partition(&self, topic: &str, partition: u32) -> Result<Arc<Log>>;
    /// One partition read through its warm and hot tiers.
    fn partition_view(&self, topic: &str, partition: u32) -> Result<PartitionView>;
    /// The earliest warm offset this process last listed for a partition
    /// (a fallback when the warm tier cannot be listed now).
    fn known_earliest(&self, topic: &str, partition: u32) -> Option<u64>;
    /// Creates a topic (the DLQ of a topic is created on first use).
    fn create_topic(&self, name: &str, config: TopicConfig) -> Result<()>;
    /// The I/O seam state logs are opened with (fault injection in tests).
    fn state_io(&self) -> Io;
    /// Registers a handle that keeps the directory open while it lives.
    fn track(&self, what: String) -> OpenHandle;
    /// A reference that does not keep the directory open (background work).
    fn downgrade(&self) -> WeakSource;

    /// The earliest offset of `partition` still readable (warm or hot).
    fn earliest_available(&self, topic: &str, partition: u32) -> Result<u64> {
        self.partition_view(topic, partition)?.earliest()
    }

    /// The offsets a partition can be read from: the earliest available in
    /// any readable tier (warm or hot) and the end. The one place consumers
    /// and the dedup cache ask a partition for its range, so a cursor in the
    /// warm tier is never clamped up to the hot log's start (which would
    /// skip events).
    ///
    /// When the warm tier cannot be listed (see
    /// [`PartitionSource::retained_range_checked`], which callers that can
    /// fail should use) the error is logged and the range starts at the warm
    /// tier this process last listed, else the hot log's start.
    fn retained_range(&self, topic: &str, partition: u32, log: &Log) -> (u64, u64) {
        match self.retained_range_checked(topic, partition, log) {
            Ok(range) => range,
            Err(e) => {
                let hot = log.earliest_offset();
                let earliest = self
                    .known_earliest(topic, partition)
                    .map_or(hot, |w| w.min(hot));
                log::warn!(
                    "retained range of topic {topic:?} partition {partition}: {e}; using earliest offset {earliest}"
                );
                (earliest, log.next_offset())
            }
        }
    }

    /// [`PartitionSource::retained_range`], returning the error when the
    /// warm tier cannot be listed (a read-only view's reload meeting a
    /// damaged archive, an I/O error) instead of guessing.
    fn retained_range_checked(&self, topic: &str, partition: u32, log: &Log) -> Result<(u64, u64)> {
        let earliest = self.earliest_available(topic, partition)?;
        Ok((earliest, log.next_offset()))
    }
}

/// A [`PartitionSource`] reference that does not keep its directory open.
#[derive(Clone)]
pub(crate) struct WeakSource(
    pub(crate) Arc<dyn Fn() -> Option<Arc<dyn PartitionSource>> + Send + Sync>,
);

impl WeakSource {
    /// The source, while something else keeps it open.
    pub(crate) fn upgrade(&self) -> Option<Arc<dyn PartitionSource>> {
        (self.0)()
    }
}

impl std::fmt::Debug for WeakSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WeakSource")
    }
}
