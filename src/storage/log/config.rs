//! Log configuration: durability modes, recovery modes and `LogConfig` with
//! its validation.
//!
//! Owns the knobs a log is opened with and the bounds they must respect. It
//! never opens a file nor holds state: a config is plain data.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::storage::batch;
use crate::storage::io::FaultInjector;

/// When an append counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// `append` returns only once the batch is on stable storage (`fdatasync`).
    /// Concurrent appenders share syncs: one sync covers every batch written
    /// before it started. Survives a process crash and a power loss.
    Always,
    /// `append` returns once the batch is in the page cache; a sync covering it
    /// is issued at most `max_delay` later, or as soon as `max_bytes` are
    /// unsynced. Survives a process crash; a power loss can lose at most the
    /// last `max_delay` / `max_bytes` of appends.
    GroupCommit {
        /// Longest time an appended batch stays unsynced.
        max_delay: Duration,
        /// Unsynced bytes that trigger a sync right away.
        max_bytes: u64,
    },
    /// The kernel writes back when it likes; only [`Log::flush`], segment rolls
    /// and [`Log::close`] sync. Survives a process crash; a power loss can lose
    /// everything appended since the last of those.
    Os,
}

impl Default for Durability {
    fn default() -> Self {
        Durability::GroupCommit {
            max_delay: Duration::from_millis(10),
            max_bytes: 4 << 20,
        }
    }
}

/// How recovery treats damage it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RecoveryMode {
    /// Truncate a torn or zeroed tail of unsynced data; refuse to open (with
    /// [`Error::Corrupted`]) when damage sits in data that was already durable.
    #[default]
    TruncateTornTail,
    /// Also truncate at corruption: everything from the first damaged batch
    /// on is removed (and reported). For explicit repair only.
    TruncateAtFirstDamage,
}

/// Settings of one partition log.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LogConfig {
    /// Roll to a new segment once the active one would exceed this size.
    pub segment_bytes: u64,
    /// Roll a non-empty active segment once it is older than this.
    pub segment_max_age: Option<Duration>,
    /// When appends count as done.
    pub durability: Durability,
    /// Largest single record value accepted (default 1 MiB).
    pub max_record_bytes: usize,
    /// Largest encoded batch accepted (default 64 MiB).
    pub max_batch_bytes: usize,
    /// Log bytes between sparse index entries (default 4 KiB).
    pub index_interval_bytes: u32,
    /// Largest step by which the active segment's disk space is reserved ahead
    /// of the writer (default 8 MiB; steps start at 64 KiB and double).
    pub preallocate_bytes: u64,
    /// Synced bytes after which the active segment's checkpoint is refreshed,
    /// bounding how much recovery has to scan (default 32 MiB).
    pub checkpoint_interval_bytes: u64,
    /// What recovery does with damage.
    pub recovery: RecoveryMode,
    /// Test hook (feature `failpoints`): fail chosen file operations.
    #[cfg(feature = "failpoints")]
    pub fault_injector: Option<Arc<dyn FaultInjector>>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 256 << 20,
            segment_max_age: None,
            durability: Durability::default(),
            max_record_bytes: 1 << 20,
            max_batch_bytes: 64 << 20,
            index_interval_bytes: 4096,
            preallocate_bytes: 8 << 20,
            checkpoint_interval_bytes: 32 << 20,
            recovery: RecoveryMode::default(),
            #[cfg(feature = "failpoints")]
            fault_injector: None,
        }
    }
}

impl LogConfig {
    /// The faults to inject into this log's file operations (a test seam,
    /// compiled in with the `failpoints` feature only).
    pub(crate) fn faults(&self) -> Option<Arc<dyn FaultInjector>> {
        #[cfg(feature = "failpoints")]
        return self.fault_injector.clone();
        #[cfg(not(feature = "failpoints"))]
        None
    }

    /// Checks every setting against its limits, naming the first one out of range.
    pub fn validate(&self) -> Result<()> {
        if self.segment_bytes < 1024 || self.segment_bytes > 2 << 30 {
            return Err(Error::invalid(
                "segment_bytes",
                format!("{} is outside 1 KiB..=2 GiB", self.segment_bytes),
            ));
        }
        if self.max_record_bytes == 0 || self.max_record_bytes > 1 << 30 {
            return Err(Error::invalid("max_record_bytes", "must be in 1..=1 GiB"));
        }
        if self.max_batch_bytes < batch::HEADER_LEN + batch::RECORD_OVERHEAD
            || self.max_batch_bytes > 1 << 30
        {
            return Err(Error::invalid("max_batch_bytes", "must be in 68 B..=1 GiB"));
        }
        if self.index_interval_bytes == 0 {
            return Err(Error::invalid("index_interval_bytes", "must be positive"));
        }
        if let Durability::GroupCommit { max_delay, .. } = self.durability {
            crate::clock::check_duration("group commit max_delay", max_delay, crate::clock::HOUR)?;
        }
        Ok(())
    }
}
