//! Snapshot export and import: a topic's records over an offset or time
//! range in one portable, versioned, checksummed file.
//!
//! Owns the snapshot file format (docs/FORMAT.md, "Snapshot file"), the
//! streaming exporter (reads through [`Reader`](crate::Reader), writes block
//! by block to a temporary name, fsyncs, renames) and the importer, which
//! validates the whole file — every checksum, count and the footer — before
//! it appends the first record, so a damaged or truncated file imports
//! nothing. It must never hold a whole topic in memory, never modify the
//! source topic, and never append a record whose `event_id` the target
//! already holds (the dedup cache and a scan of the target's overlapping
//! tail decide).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::consume::reader::StartFrom;
use crate::error::{Error, Result};
use crate::fabric::Fabric;
use crate::produce::dedup::event_id_of;
use crate::produce::producer::{Item, PublishOutcome, append_items};
use crate::topic::PartitionSource;
use crate::topic::TopicConfig;

mod decode;
mod export;
mod import;

#[cfg(any(test, feature = "failpoints"))]
pub use decode::decode;
use decode::open_file;
pub use export::{export, export_with_progress};
pub use import::{import, import_with_progress, inspect};

/// First bytes of every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"EFSNAP\r\n";
/// Last bytes of every complete snapshot file.
pub const SNAPSHOT_END_MAGIC: [u8; 8] = *b"EFSNEND\n";
/// The snapshot file version this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

const HEADER_LEN: usize = 32;
const BLOCK_MAGIC: u32 = u32::from_le_bytes(*b"SBLK");
const FOOTER_MAGIC: u32 = u32::from_le_bytes(*b"SFTR");
const BLOCK_HEADER_LEN: usize = 20;
const RECORD_HEADER_LEN: usize = 20;
const FOOTER_FIXED_LEN: usize = 24;
const TRAILER_LEN: usize = 16;
/// Largest block payload or metadata a reader accepts (bounds allocation on
/// untrusted lengths); the exporter writes blocks of about 1 MiB.
pub const MAX_BLOCK_BYTES: usize = 64 << 20;
const TARGET_BLOCK_BYTES: usize = 1 << 20;
const MAX_BLOCK_RECORDS: usize = 8192;

/// One end of an export range: an offset (in every exported partition) or a
/// record time (µs since the epoch, the envelope's `emitted_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Bound {
    /// No limit on this side.
    #[default]
    Unbounded,
    /// An offset: `from` is inclusive, `to` exclusive.
    Offset(u64),
    /// A record timestamp in µs: `from` is inclusive, `to` exclusive.
    Time(i64),
}

/// What to export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportOptions {
    /// Only these partitions (all when `None`).
    pub partitions: Option<Vec<u32>>,
    /// Start of the range (inclusive).
    pub from: Bound,
    /// End of the range (exclusive); the export never goes past the end each
    /// partition had when the export started.
    pub to: Bound,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    /// The file written.
    pub path: PathBuf,
    /// Records exported.
    pub records: u64,
    /// Record value bytes exported.
    pub value_bytes: u64,
    /// Size of the file.
    pub file_bytes: u64,
    /// Distinct envelope `schema_version`s present.
    pub schema_versions: Vec<String>,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// The topic imported into.
    pub topic: String,
    /// Whether the topic was created by this import.
    pub created: bool,
    /// Records in the file.
    pub records: u64,
    /// Records appended.
    pub appended: u64,
    /// Records skipped because the topic already held their `event_id`.
    pub duplicates_skipped: u64,
    /// Record value bytes appended.
    pub bytes: u64,
}

/// What a snapshot file holds, from its header and footer (all checksums verified).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// The exported topic's name.
    pub topic: String,
    /// Its settings at export time.
    pub config: TopicConfig,
    /// The partitions exported.
    pub partitions: Vec<u32>,
    /// The requested range.
    pub from: Bound,
    /// The requested range's end.
    pub to: Bound,
    /// Export time, µs since the epoch.
    pub exported_at: i64,
    /// Distinct envelope `schema_version`s present (from the footer).
    #[serde(default)]
    pub schema_versions: Vec<String>,
    /// Per-partition contents (from the footer).
    #[serde(default)]
    pub contents: Vec<PartitionContents>,
    /// Records in the file (from the footer).
    #[serde(default)]
    pub records: u64,
}

/// What one partition contributed to a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionContents {
    /// The partition.
    pub partition: u32,
    /// Records exported from it.
    pub records: u64,
    /// Its first and last exported offsets (`None` when it exported nothing).
    pub offsets: Option<(u64, u64)>,
    /// Smallest record timestamp exported from it.
    pub min_timestamp: Option<i64>,
}

/// The header's JSON metadata.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderMeta {
    topic: String,
    config: TopicConfig,
    partitions: Vec<u32>,
    from: Bound,
    to: Bound,
    exported_at: i64,
}

/// The footer's JSON metadata.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FooterMeta {
    schema_versions: Vec<String>,
    partitions: Vec<PartitionContents>,
}

/// One record of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// Its partition in the exported topic.
    pub partition: u32,
    /// Its offset in the exported topic.
    pub offset: u64,
    /// Its record timestamp (µs).
    pub timestamp: i64,
    /// The encoded envelope, exactly as stored.
    pub value: Vec<u8>,
}

fn crc(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}
