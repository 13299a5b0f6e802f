//! The one error type of the public API.
//!
//! Every variant says what failed and where (file, byte position, offset), so a
//! message can be shown to an operator as it is. This module only describes
//! errors; it never decides how to recover from them.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in eventfabric.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`"write"`, `"sync"`, `"open"`...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The disk is full: the space for the next segment chunk could not be reserved.
    /// Nothing was written; records accepted before are intact and the log stays usable.
    #[error(
        "no space left to grow {path} to {wanted} bytes: free some disk space and retry; nothing was written"
    )]
    NoSpace {
        /// The segment that could not grow.
        path: PathBuf,
        /// The file length that was asked for.
        wanted: u64,
    },

    /// Bytes on disk fail their checksum or structure in a place where a torn
    /// write is impossible (a sealed segment, or a damaged batch followed by
    /// data that was already durable).
    #[error("corruption in {path} at byte {position}: {reason}")]
    Corrupted {
        /// The damaged file.
        path: PathBuf,
        /// Byte position of the damage within that file.
        position: u64,
        /// What is wrong there.
        reason: String,
    },

    /// A previous write or sync failed; the log refuses appends until it is reopened.
    #[error(
        "log {path} is poisoned by an earlier failed {cause}; reopen it to recover from what is on disk"
    )]
    Poisoned {
        /// The log directory.
        path: PathBuf,
        /// Which operation failed first.
        cause: String,
    },

    /// Another writer holds the directory lock.
    #[error("{path} is locked by pid {pid}: another writer has it open; stop it or open read-only")]
    Locked {
        /// The locked directory.
        path: PathBuf,
        /// The pid recorded by the holder (0 if unknown).
        pid: u32,
    },

    /// A single record is larger than the configured maximum.
    #[error(
        "record of {size} bytes exceeds the maximum record size of {max} bytes; nothing was written"
    )]
    RecordTooLarge {
        /// The record's size.
        size: usize,
        /// The configured limit.
        max: usize,
    },

    /// A batch is larger than one on-disk batch may be.
    #[error(
        "batch of {size} bytes exceeds the maximum batch size of {max} bytes; split it, nothing was written"
    )]
    BatchTooLarge {
        /// The encoded batch size.
        size: usize,
        /// The limit.
        max: usize,
    },

    /// The log was opened read-only and a write was attempted.
    #[error("log {path} is open read-only; open it as the writer to {op}")]
    ReadOnly {
        /// The log directory.
        path: PathBuf,
        /// The refused operation.
        op: &'static str,
    },

    /// An offset outside the log's retained range was asked for.
    #[error("offset {offset} is out of range: the log holds offsets {earliest}..{next}")]
    OffsetOutOfRange {
        /// The requested offset.
        offset: u64,
        /// The earliest offset still retained.
        earliest: u64,
        /// The next offset to be assigned.
        next: u64,
    },

    /// No topic of that name exists in the data directory.
    #[error(
        "topic {topic:?} does not exist in {}; create it first (fabric topic create {topic} --partitions N)",
        data_dir.display()
    )]
    UnknownTopic {
        /// The topic asked for.
        topic: String,
        /// The data directory looked in.
        data_dir: PathBuf,
    },

    /// The topic was deleted after this handle (producer, reader, consumer)
    /// was taken.
    #[error("topic {topic:?} was deleted; create it again before producing or reading")]
    TopicDeleted {
        /// The deleted topic.
        topic: String,
    },

    /// A topic of that name already exists.
    #[error(
        "topic {topic:?} already exists in {}; delete it first or pick another name",
        data_dir.display()
    )]
    TopicExists {
        /// The topic.
        topic: String,
        /// The data directory.
        data_dir: PathBuf,
    },

    /// A partition number beyond the topic's partitions.
    #[error(
        "partition {partition} of topic {topic:?} does not exist: the topic has {partitions} partitions"
    )]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: u32,
        /// How many the topic has.
        partitions: u32,
    },

    /// A consumer-group member used a partition the group's assignment gave
    /// to another member (or to none).
    #[error(
        "partition {partition} is not owned by member {member} of group {group:?}: it owns {owned:?}"
    )]
    NotOwned {
        /// The group.
        group: String,
        /// The member.
        member: u64,
        /// The partition used.
        partition: u32,
        /// The partitions the member owns.
        owned: Vec<u32>,
    },

    /// A record that had to be an event envelope is not one.
    #[error(
        "record at offset {offset} of topic {topic:?} partition {partition} is not an eventfabric envelope: {reason}"
    )]
    NotAnEnvelope {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The record's offset.
        offset: u64,
        /// Why it is not one.
        reason: String,
    },

    /// An event failed envelope validation; every field problem is kept
    /// (`EnvelopeError::problems`). Nothing was appended.
    #[error("event refused, nothing was appended: {0}")]
    Envelope(#[from] crate::envelope::EnvelopeError),

    /// Compressing or decompressing an archive block failed.
    #[error("compression failed for {}: {reason}", path.display())]
    Compression {
        /// The archive being written or read.
        path: PathBuf,
        /// What the compressor said.
        reason: String,
    },

    /// A directory given as a data directory is not one.
    #[error("{} is not an eventfabric data directory (no topics/ inside); check --data", path.display())]
    NotADataDir {
        /// The directory.
        path: PathBuf,
    },

    /// A writing operation on a data directory opened read-only.
    #[error("the data directory {} is open read-only; open it as the writer to {op}", path.display())]
    ReadOnlyFabric {
        /// The data directory.
        path: PathBuf,
        /// The refused operation.
        op: String,
    },

    /// A bad argument or configuration value (only that: conditions a caller
    /// branches on have their own variants).
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The setting or argument.
        what: String,
        /// Why it is refused.
        reason: String,
    },

    /// An offset that retention already removed from every readable tier
    /// (hot and warm) was asked for.
    #[error(
        "offset {requested} of topic {topic:?} partition {partition} is no longer retained (removed by retention); the earliest available offset is {earliest}"
    )]
    OffsetExpired {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The requested offset.
        requested: u64,
        /// The earliest offset still readable (warm or hot).
        earliest: u64,
    },

    /// A consumer group's committed cursor or a queue's ack floor points
    /// past the end of its partition: records it had counted as consumed
    /// were removed (a power loss that cut records the cursor was committed
    /// past before this guarantee existed, a repair, or a recreated topic).
    /// Nothing is skipped or treated as acked silently: reset the cursor.
    #[error(
        "{consumer} has its cursor at offset {cursor} of topic {topic:?} partition {partition}, but the partition ends at {log_end}: records below the cursor were removed (recovery or repair); reset it (`fabric group reset`, group::reset, or delete the queue's state) to go on"
    )]
    CursorBeyondLog {
        /// The consumer: `consumer group "g"` or `queue "q"`.
        consumer: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The persisted cursor (next offset to deliver) or ack floor.
        cursor: u64,
        /// The partition's end (next offset to be written) now.
        log_end: u64,
    },

    /// [`crate::Fabric::close`] found handles that still keep the data
    /// directory open (and locked); nothing was closed.
    #[error(
        "cannot close {path}: still open: {}; drop them first (the directory stays locked until the last one is dropped)",
        open.join("; ")
    )]
    InUse {
        /// The data directory.
        path: PathBuf,
        /// What is still open, e.g. `queue "q" on topic "t"`.
        open: Vec<String>,
    },

    /// A principal is not allowed an operation on a resource by the ACLs
    /// (`<data>/governance/acls.json`). Nothing was done.
    #[error(
        "access denied: principal {principal:?}{} may not {operation} {resource}: {reason}",
        tenant.as_deref().map(|t| format!(" (tenant {t:?})")).unwrap_or_default()
    )]
    AccessDenied {
        /// Who asked.
        principal: String,
        /// The tenant the handle is bound to, if any.
        tenant: Option<String>,
        /// The refused operation (`produce`, `consume`, ...).
        operation: &'static str,
        /// The resource, e.g. `topic "billing.domain.v1"`.
        resource: String,
        /// Which rule decided (a deny, or no allow under default deny).
        reason: String,
    },

    /// A quota refused the operation (or a throttle's deadline passed). Nothing was written.
    #[error("quota exceeded for {subject}: {limit}; {advice}")]
    QuotaExceeded {
        /// Whose quota: `tenant "t"`, `tenant "t" producer "p"` or `default`.
        subject: String,
        /// Which limit, with its value, e.g. `events_per_sec 1000`.
        limit: String,
        /// What to do about it.
        advice: String,
    },

    /// A payload does not match the catalog schema of its event type and
    /// version (or none is registered) on a topic that requires schemas.
    /// Lists every problem; never contains payload values.
    #[error(
        "payload of {event_type} {version} refused by the schema catalog: {}",
        problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ")
    )]
    SchemaViolation {
        /// The event type.
        event_type: String,
        /// The event's schema version.
        version: String,
        /// Every problem: JSON pointer, failed keyword, message.
        problems: Vec<PayloadViolation>,
    },
    /// A request to the object store holding the remote warm tier failed or
    /// was refused: the store is unreachable, the bucket does not exist,
    /// credentials are missing or rejected, or an object is not what was
    /// uploaded. Data on local disk is untouched: hot segments stay until
    /// their upload is confirmed.
    #[error("object store {location}: {op}: {reason}")]
    ObjectStore {
        /// What was being done (`"upload"`, `"head"`, `"read range"`, `"list"`...).
        op: &'static str,
        /// The bucket and key (`s3://bucket/prefix/...`) or the endpoint concerned.
        location: String,
        /// What went wrong, as the store or client said it (never a credential).
        reason: String,
    },

    /// A partition's local bytes would pass the remote warm tier's
    /// local-disk ceiling (`RemoteWarmConfig::local_ceiling_bytes`) while its
    /// uploads to the object store fail: the append is refused (nothing was
    /// written) until an upload succeeds and frees the hot tier.
    #[error(
        "topic {topic:?} partition {partition}: append refused: {local_bytes} local bytes would pass the local-disk ceiling of {ceiling} while uploads to the warm tier fail ({cause})"
    )]
    LocalDiskCeiling {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The partition's local (hot) bytes with the refused append.
        local_bytes: u64,
        /// The configured ceiling.
        ceiling: u64,
        /// Why uploads fail: the last upload error, with the store's message.
        cause: String,
    },

    /// Moving a sealed hot segment to the remote warm tier failed (the store
    /// is unreachable, the bucket missing, credentials refused, the upload
    /// not confirmed, or its backoff not over): the segment stays hot and
    /// readable, and the move is tried again by a later maintenance run.
    #[error(
        "tier move of topic {topic:?} partition {partition} segment {segment_base:020} to the warm tier failed: {cause}"
    )]
    TierMoveFailed {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The first offset of the segment that stays hot.
        segment_base: u64,
        /// The failure (usually [`Error::ObjectStore`], naming the operation,
        /// the `s3://bucket/key` and the store's message).
        #[source]
        cause: Box<Error>,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupted(
        path: impl Into<PathBuf>,
        position: u64,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corrupted {
            path: path.into(),
            position,
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// One reason a payload does not match its schema.
///
/// Defined here rather than in `governance::schema` so that [`Error`], the
/// bottom layer, can carry it; the schema validator builds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PayloadViolation {
    /// Where in the payload, as a JSON pointer (`/lines/3/sku`); empty for the payload itself.
    pub pointer: String,
    /// The JSON Schema keyword that failed (`type`, `required`, `enum`, ...),
    /// or `catalog` when no schema is registered for the event.
    pub rule: String,
    /// What is wrong, from schema facts only (never the payload's value).
    pub message: String,
}

impl fmt::Display for PayloadViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() {
            "(payload)"
        } else {
            &self.pointer
        };
        write!(f, "{at}: {}: {}", self.rule, self.message)
    }
}
