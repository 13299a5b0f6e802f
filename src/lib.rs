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
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod archive;
pub mod batch;
mod checkpoint;
mod dedup;
pub mod dlq;
pub mod dlq_replay;
pub mod envelope;
mod error;
pub mod fabric;
pub mod fixtures;
mod flusher;
#[doc(hidden)]
pub mod fuzzing;
pub mod governance;
pub mod group;
mod idempotent;
mod index;
pub mod io;
mod lock;
mod log;
mod mmap;
mod notify;
pub mod partitioner;
pub mod producer;
pub mod queue;
mod queue_state;
pub mod reader;
pub mod retry;
mod sampling;
mod segment;
pub mod snapshot;
mod statelog;
pub mod tier;
pub mod topic;
mod verify;

pub use crate::dedup::DedupStats;
pub use crate::dlq::{
    DeadLetter, DeadLetters, DlqEntry, DlqFilter, DlqRateAlert, DlqRateEvent, DlqReason,
};
pub use crate::dlq_replay::{ReplayReport, Replayed};
pub use crate::envelope::{Envelope, EnvelopeError, EnvelopeRef, FieldProblem, SchemaVersion, Ttl};
pub use crate::error::{Error, Result};
pub use crate::fabric::{Fabric, FabricConfig};
pub use crate::group::{
    CommitDurability, Consumer, ConsumerConfig, DeliveryMode, GroupStatus, ReplaySession,
};
pub use crate::io::{Fault, FaultInjector, FaultPlan, IoOp};
pub use crate::log::{
    Batch, Batches, Durability, Log, LogConfig, ReadLimit, Record, Records, RecoveryMode,
    RecoveryReport, SegmentInfo, Truncation,
};
pub use crate::producer::{Draft, Producer, PublishOutcome, Published};
pub use crate::queue::{
    Clock, Failure, ManualClock, NackOutcome, Queue, QueueConfig, QueueMessage, QueueStats,
    SystemClock,
};
pub use crate::reader::{RawEvent, ReadEvent, Reader, StartFrom};
pub use crate::retry::{Backoff, RetryPolicy};
pub use crate::snapshot::{Bound, ExportOptions, ExportSummary, ImportSummary};
pub use crate::tier::{
    EarliestChange, MaintainReport, MaintenanceHandle, PartitionTiers, Tier, TierMove,
};
pub use crate::topic::{ColdAction, FsyncPolicy, TopicConfig, TopicInfo};
pub use crate::verify::{
    DamageCut, DataDirRepair, DataDirReport, DirFinding, Finding, RepairReport, Severity,
    VerifyReport, repair, repair_data_dir, verify, verify_data_dir,
};
