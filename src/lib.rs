//! eventfabric: an embeddable event-log storage engine.
//!
//! The core is the partition [`Log`]: a directory of memory-mapped,
//! append-only segments with sparse offset/time indexes, CRC-checked record
//! batches, three durability modes, crash recovery that scans only the
//! unsynced tail, one writer and any number of readers (in this process or
//! others). The on-disk format is specified in `docs/FORMAT.md`.
//!
//! ```
//! use eventfabric::{Log, LogConfig, ReadLimit};
//!
//! let dir = tempfile::tempdir()?;
//! let log = Log::open(dir.path(), LogConfig::default())?;
//! let first = log.append(b"billing.invoice.issued")?;
//! let more = log.append_batch(&[&b"a"[..], b"b", b"c"])?;
//! assert_eq!((first, more), (0, 1..4));
//! log.flush()?;
//!
//! let records = log.read(0, ReadLimit::records(10))?;
//! assert_eq!(records.len(), 4);
//! assert_eq!(&records[0].value[..], b"billing.invoice.issued");
//! log.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! On top of it, a [`Fabric`] holds named topics of partition logs; a
//! [`Producer`] enriches, validates, encodes ([`Envelope`], MessagePack) and
//! routes events by Kafka's murmur2 partitioner; a [`Reader`] reads them back
//! from the earliest or latest offset, per-partition offsets or a time.
//!
//! ```
//! use eventfabric::{Draft, Fabric, FabricConfig, StartFrom, TopicConfig};
//! use serde_json::json;
//!
//! let dir = tempfile::tempdir()?;
//! let fabric = Fabric::open(dir.path(), FabricConfig::default())?;
//! fabric.create_topic("billing.domain.v1", TopicConfig::with_partitions(6))?;
//!
//! let mut producer = fabric.producer("billing.domain.v1", "billing-service")?;
//! let payload = json!({"invoice_id": "inv-456", "amount": 12500, "currency": "USD"});
//! let draft = Draft::new("billing.invoice.issued", Some("tenant-123"), payload);
//! let (event, at) = producer.send(draft)?; // event_id, emitted_at, source, ... filled in
//!
//! for read in fabric.reader("billing.domain.v1", StartFrom::Earliest)? {
//!     let read = read?;
//!     assert_eq!((read.partition, read.offset), (at.partition, at.offset));
//!     assert_eq!(read.envelope, event);
//! }
//! fabric.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The API at a glance
//!
//! Every public name lives at the crate root; the modules are private.
//!
//! - **Data directory and topics**: [`Fabric`] (open, read-only views,
//!   topic administration, `flush`, `close`, `maintain`, `verify`),
//!   [`FabricConfig`], [`TopicConfig`], [`TopicInfo`], [`FsyncPolicy`],
//!   [`ColdAction`].
//! - **Events**: [`Envelope`] (owned), [`EnvelopeRef`] (zero-copy view),
//!   [`Draft`] (what a producer enriches), [`SchemaVersion`], [`Ttl`],
//!   [`EnvelopeError`] and [`FieldProblem`] (every field problem at once).
//! - **Publishing**: [`Producer`] (`send`, `publish`, batches), [`Published`],
//!   [`PublishOutcome`] (appended, duplicate, dropped), [`DedupStats`],
//!   [`partition_for_key`].
//! - **Reading**: [`Reader`] from a [`StartFrom`] (earliest, latest,
//!   offsets, a time), yielding [`ReadEvent`] or [`RawEvent`].
//! - **Consumer groups**: [`Fabric::consumer`] → [`Consumer`]
//!   ([`ConsumerConfig`], [`DeliveryMode`], [`CommitDurability`]),
//!   [`GroupStatus`], [`PartitionStatus`], [`Fabric::replay`] →
//!   [`ReplaySession`] ([`ReplayConfig`], [`ReplayBound`]), [`ResetTo`].
//! - **Queues and dead letters**: [`Fabric::queue`] → [`Queue`]
//!   ([`QueueConfig`], [`QueueMessage`], [`Failure`], [`NackOutcome`],
//!   [`QueueStats`], [`RetryPolicy`], [`Backoff`]); [`Fabric::dead_letters`]
//!   → [`DeadLetters`] ([`DlqEntry`], [`DlqFilter`], [`DlqReason`],
//!   [`DeadLetter`], [`ReplayReport`]).
//! - **Retention tiers**: [`Fabric::maintain`], [`MaintainReport`],
//!   [`MaintenanceHandle`], [`PartitionTiers`], [`ArchiveInfo`], [`Tier`].
//! - **Snapshots**: [`export_snapshot`], [`import_snapshot`],
//!   [`inspect_snapshot`] with [`ExportOptions`] and [`Bound`].
//! - **The partition log itself**: [`Log`], [`LogConfig`], [`Durability`],
//!   [`ReadLimit`], [`Record`], [`RecoveryMode`], [`RecoveryReport`].
//! - **Checking and repairing**: [`verify`]/[`repair`] (one partition),
//!   [`verify_data_dir`]/[`repair_data_dir`] (everything in a data
//!   directory), with file-and-byte findings.
//! - **Time**: [`Clock`], [`SystemClock`], [`ManualClock`] (tests drive time).
//! - **Errors**: [`Error`] (one `#[non_exhaustive]` enum; every variant names
//!   what and where) and [`Result`].
//!
//! Cargo features: `cli` (default) builds the `fabric` binary;
//! `failpoints` compiles in test hooks (`testing`, fault injection,
//! simulated crashes) — never needed by a host. The layers and the path of
//! an event through them: `docs/ARCHITECTURE.md`.
#![deny(unsafe_code)]
// Library code never panics on a `None`, an `Err` or an index past the end
// of a slice: it returns an error naming what and where (tests may unwrap
// and index). Bytes from files are read through `storage::le` (bounds-checked,
// `Error::Corrupted` with file and byte). Justified exceptions carry
// `#[expect(clippy::expect_used | clippy::indexing_slicing, reason = ...)]`
// on the smallest item, stating the invariant.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]
#![warn(missing_docs)]

// Layers, bottom up; a module imports only from the layers below it (see
// docs/ARCHITECTURE.md).
mod clock;
mod consume;
pub mod envelope;
mod error;
mod fabric;
pub mod governance;
pub mod observe;
mod ops;
mod produce;
mod storage;
mod tier;
mod topic;

pub mod fixtures;
#[cfg(feature = "failpoints")]
pub mod fuzzing;
#[cfg(feature = "failpoints")]
pub mod testing;

pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::consume::dlq::{
    DeadLetter, DeadLetters, DlqEntry, DlqFilter, DlqIter, DlqRateAlert, DlqRateEvent, DlqReason,
};
pub use crate::consume::dlq_replay::{ReplayReport, Replayed};
pub use crate::consume::group::{
    CommitDurability, Consumer, ConsumerConfig, DeliveryMode, GroupStatus, PartitionStatus,
    ReplayBound, ReplayConfig, ReplaySession, ResetTo,
};
pub use crate::consume::queue::{
    Failure, NackOutcome, Queue, QueueConfig, QueueMessage, QueueStats,
};
pub use crate::consume::reader::{RawEvent, ReadEvent, Reader, StartFrom};
pub use crate::consume::retry::{Backoff, RetryPolicy};
pub use crate::envelope::{Envelope, EnvelopeError, EnvelopeRef, FieldProblem, SchemaVersion, Ttl};
pub use crate::error::{Error, Result};
pub use crate::fabric::{Fabric, FabricConfig, PartitionCheck, PartitionRepair};
pub use crate::ops::snapshot::{
    Bound, ExportOptions, ExportSummary, ImportSummary, PartitionContents, SnapshotInfo,
    SnapshotRecord, export as export_snapshot,
    export_with_progress as export_snapshot_with_progress, import as import_snapshot,
    import_with_progress as import_snapshot_with_progress, inspect as inspect_snapshot,
};
pub use crate::ops::verify::{
    DataDirRepair, DataDirReport, DirFinding, Severity, repair_data_dir, verify_data_dir,
};
pub use crate::produce::dedup::DedupStats;
pub use crate::produce::partitioner::partition_for_key;
pub use crate::produce::producer::{Draft, Producer, PublishOutcome, Published};
pub use crate::storage::log::{
    Batch, Batches, Durability, Log, LogConfig, ReadLimit, Record, Records, RecoveryMode,
    RecoveryReport, SegmentInfo, Truncation,
};
pub use crate::storage::verify::{DamageCut, Finding, RepairReport, VerifyReport, repair, verify};
#[cfg(feature = "tier-s3")]
pub use crate::tier::objstore::{
    ObjectStoreConfig, PendingRange, RemoteObject, RemoteStore, S3Credentials, UploadReceipt,
};
#[cfg(feature = "tier-s3")]
pub use crate::tier::remote::{RemoteArchiveCheck, RemoteWarmConfig};
#[cfg(feature = "tier-s3")]
pub use crate::tier::remote_settings::REMOTE_SETTINGS_FILE;
pub use crate::tier::{
    ArchiveInfo, COLD_DIR, EarliestChange, MaintainReport, MaintenanceHandle, PartitionTiers, Tier,
    TierMove, WARM_DIR,
};
pub use crate::topic::{ColdAction, FsyncPolicy, TopicConfig, TopicInfo};
