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

// ---------------------------------------------------------------- writing

struct Writer {
    out: BufWriter<File>,
    tmp: PathBuf,
    written: u64,
    blocks: u64,
    records: u64,
    block: Vec<u8>,
    block_records: u32,
    block_partition: u32,
}

impl Writer {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io("write", &self.tmp, e))?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn push(&mut self, partition: u32, offset: u64, timestamp: i64, value: &[u8]) -> Result<()> {
        if self.block_records > 0
            && (partition != self.block_partition
                || self.block.len() + RECORD_HEADER_LEN + value.len() > TARGET_BLOCK_BYTES
                || self.block_records as usize >= MAX_BLOCK_RECORDS)
        {
            self.flush_block()?;
        }
        self.block_partition = partition;
        self.block.extend_from_slice(&offset.to_le_bytes());
        self.block.extend_from_slice(&timestamp.to_le_bytes());
        self.block
            .extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.block.extend_from_slice(value);
        self.block_records += 1;
        self.records += 1;
        Ok(())
    }

    fn flush_block(&mut self) -> Result<()> {
        if self.block_records == 0 {
            return Ok(());
        }
        let mut head = [0u8; BLOCK_HEADER_LEN];
        head[0..4].copy_from_slice(&BLOCK_MAGIC.to_le_bytes());
        head[4..8].copy_from_slice(&self.block_partition.to_le_bytes());
        head[8..12].copy_from_slice(&self.block_records.to_le_bytes());
        head[12..16].copy_from_slice(&(self.block.len() as u32).to_le_bytes());
        let sum = crc(&[&head[..16], &self.block]);
        head[16..20].copy_from_slice(&sum.to_le_bytes());
        self.write(&head)?;
        let block = std::mem::take(&mut self.block);
        self.write(&block)?;
        self.block = block;
        self.block.clear();
        self.block_records = 0;
        self.blocks += 1;
        Ok(())
    }
}

fn json_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|e| Error::invalid("snapshot metadata", format!("cannot serialise: {e}")))
}

/// Exports `topic` of `fabric` to the snapshot file `path` (replacing it
/// atomically: written to `<path>.tmp`, synced, renamed, directory synced).
/// See [`export_with_progress`].
pub fn export(
    fabric: &Fabric,
    topic: &str,
    path: impl AsRef<Path>,
    options: &ExportOptions,
) -> Result<ExportSummary> {
    export_with_progress(fabric, topic, path, options, &mut |_| {})
}

/// [`export`], calling `progress` with the running record count after every
/// block written. Streams: memory stays at about one block whatever the size
/// of the topic. Every exported record must be a valid envelope (its
/// `schema_version` is catalogued); reads go through [`crate::Reader`].
pub fn export_with_progress(
    fabric: &Fabric,
    topic: &str,
    path: impl AsRef<Path>,
    options: &ExportOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<ExportSummary> {
    let path = path.as_ref();
    let info = fabric.topic_info(topic)?;
    let partitions: Vec<u32> = match &options.partitions {
        Some(list) => {
            let set: BTreeSet<u32> = list.iter().copied().collect();
            if let Some(&bad) = set.iter().find(|&&p| p >= info.config.partitions) {
                return Err(Error::invalid(
                    format!("partition {bad} of topic {topic:?}"),
                    format!("the topic has partitions 0..{}", info.config.partitions),
                ));
            }
            set.into_iter().collect()
        }
        None => (0..info.config.partitions).collect(),
    };
    let header_meta = HeaderMeta {
        topic: topic.to_string(),
        config: info.config.clone(),
        partitions: partitions.clone(),
        from: options.from,
        to: options.to,
        exported_at: crate::clock::now_micros(),
    };
    let meta = json_bytes(&header_meta)?;
    let file_name = path.file_name().ok_or_else(|| {
        Error::invalid(
            format!("export file {}", path.display()),
            "it names no file",
        )
    })?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let file = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    let mut w = Writer {
        out: BufWriter::with_capacity(1 << 20, file),
        tmp: tmp.clone(),
        written: 0,
        blocks: 0,
        records: 0,
        block: Vec::with_capacity(TARGET_BLOCK_BYTES + 4096),
        block_records: 0,
        block_partition: 0,
    };
    let result = (|| {
        let mut head = [0u8; HEADER_LEN];
        head[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
        head[8..12].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        head[12..16].copy_from_slice(&0u32.to_le_bytes());
        head[16..20].copy_from_slice(&(meta.len() as u32).to_le_bytes());
        head[20..24].copy_from_slice(&crc(&[&meta]).to_le_bytes());
        // 24..28 reserved, zero.
        let sum = crc(&[&head[..28]]);
        head[28..32].copy_from_slice(&sum.to_le_bytes());
        w.write(&head)?;
        w.write(&meta)?;

        let mut versions = BTreeSet::new();
        let mut contents = Vec::new();
        let mut value_bytes = 0u64;
        for &p in &partitions {
            // Every readable tier: retention may have moved the start to warm.
            let view = fabric.partition_view(topic, p)?;
            let (earliest, end) = fabric.retained_range_checked(topic, p, &view.log)?;
            let start = match options.from {
                Bound::Unbounded => earliest,
                Bound::Offset(o) => o.clamp(earliest, end),
                Bound::Time(t) => view.offset_for_time(t)?.unwrap_or(end),
            };
            let stop = match options.to {
                Bound::Offset(o) => o.min(end),
                _ => end,
            };
            let mut part = PartitionContents {
                partition: p,
                records: 0,
                offsets: None,
                min_timestamp: None,
            };
            if start < stop {
                let mut reader = fabric
                    .reader(topic, StartFrom::Offsets(BTreeMap::from([(p, start)])))?
                    .with_partitions(&[p])?;
                while let Some(raw) = reader.next_raw() {
                    let raw = raw?;
                    if raw.offset >= stop {
                        break;
                    }
                    if let Bound::Time(t) = options.from
                        && raw.timestamp < t
                    {
                        continue;
                    }
                    if let Bound::Time(t) = options.to
                        && raw.timestamp >= t
                    {
                        continue;
                    }
                    let envelope = raw.envelope().map_err(|e| {
                        Error::invalid(
                            format!(
                                "record at offset {} of topic {topic:?} partition {p}",
                                raw.offset
                            ),
                            format!("{e}; only envelopes can be exported"),
                        )
                    })?;
                    if !versions.contains(envelope.schema_version) {
                        versions.insert(envelope.schema_version.to_string());
                    }
                    let blocks_before = w.blocks;
                    w.push(p, raw.offset, raw.timestamp, &raw.value)?;
                    if w.blocks != blocks_before {
                        progress(w.records);
                    }
                    value_bytes += raw.value.len() as u64;
                    part.records += 1;
                    part.offsets = Some(match part.offsets {
                        None => (raw.offset, raw.offset),
                        Some((first, _)) => (first, raw.offset),
                    });
                    part.min_timestamp = Some(
                        part.min_timestamp
                            .map_or(raw.timestamp, |m| m.min(raw.timestamp)),
                    );
                }
            }
            w.flush_block()?;
            contents.push(part);
        }
        progress(w.records);
        let schema_versions: Vec<String> = versions.into_iter().collect();
        let footer_meta = json_bytes(&FooterMeta {
            schema_versions: schema_versions.clone(),
            partitions: contents,
        })?;
        let footer_at = w.written;
        let mut fixed = [0u8; FOOTER_FIXED_LEN - 4];
        fixed[0..4].copy_from_slice(&FOOTER_MAGIC.to_le_bytes());
        fixed[4..12].copy_from_slice(&w.blocks.to_le_bytes());
        fixed[12..20].copy_from_slice(&w.records.to_le_bytes());
        let mut len = [0u8; 4];
        len.copy_from_slice(&(footer_meta.len() as u32).to_le_bytes());
        let sum = crc(&[&fixed, &len, &footer_meta]);
        w.write(&fixed)?;
        w.write(&len)?;
        w.write(&footer_meta)?;
        w.write(&sum.to_le_bytes())?;
        let mut trailer = [0u8; TRAILER_LEN];
        trailer[0..8].copy_from_slice(&footer_at.to_le_bytes());
        trailer[8..16].copy_from_slice(&SNAPSHOT_END_MAGIC);
        w.write(&trailer)?;
        let file = w
            .out
            .into_inner()
            .map_err(|e| Error::io("write", &tmp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io("sync", &tmp, e))?;
        drop(file);
        fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        crate::topic::sync_dir(&dir)?;
        Ok(ExportSummary {
            path: path.to_path_buf(),
            records: w.records,
            value_bytes,
            file_bytes: w.written,
            schema_versions,
        })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

// ---------------------------------------------------------------- reading

/// A streaming, validating snapshot decoder over any byte source.
struct Decoder<R> {
    input: R,
    path: PathBuf,
    position: u64,
    info: SnapshotInfo,
    blocks: u64,
    records: u64,
    /// Last offset seen per partition (offsets must increase).
    last_offset: BTreeMap<u32, u64>,
    finished: bool,
}

impl<R: Read> Decoder<R> {
    fn corrupt(&self, at: u64, reason: impl Into<String>) -> Error {
        Error::corrupted(
            &self.path,
            at,
            format!(
                "{}; the snapshot is damaged or truncated, nothing was imported",
                reason.into()
            ),
        )
    }

    fn read_exact(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        let at = self.position;
        let mut done = 0;
        while done < buf.len() {
            match self.input.read(&mut buf[done..]) {
                Ok(0) => {
                    return Err(self.corrupt(
                        at + done as u64,
                        format!(
                            "file ends inside the {what} ({} of {} bytes present)",
                            done,
                            buf.len()
                        ),
                    ));
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("read", &self.path, e)),
            }
        }
        self.position += buf.len() as u64;
        Ok(())
    }

    fn read_vec(&mut self, len: usize, what: &str) -> Result<Vec<u8>> {
        if len > MAX_BLOCK_BYTES {
            return Err(self.corrupt(
                self.position,
                format!("{what} claims {len} bytes, more than the {MAX_BLOCK_BYTES} allowed"),
            ));
        }
        let mut v = vec![0u8; len];
        self.read_exact(&mut v, what)?;
        Ok(v)
    }

    fn open(input: R, path: &Path) -> Result<Decoder<R>> {
        let mut head = [0u8; HEADER_LEN];
        let mut d = Decoder {
            input,
            path: path.to_path_buf(),
            position: 0,
            info: SnapshotInfo {
                topic: String::new(),
                config: TopicConfig::default(),
                partitions: Vec::new(),
                from: Bound::Unbounded,
                to: Bound::Unbounded,
                exported_at: 0,
                schema_versions: Vec::new(),
                contents: Vec::new(),
                records: 0,
            },
            blocks: 0,
            records: 0,
            last_offset: BTreeMap::new(),
            finished: false,
        };
        d.read_exact(&mut head, "file header")?;
        if head[0..8] != SNAPSHOT_MAGIC {
            return Err(d.corrupt(0, "not an eventfabric snapshot (bad magic)"));
        }
        let version = u32::from_le_bytes(head[8..12].try_into().unwrap_or_default());
        let stored = u32::from_le_bytes(head[28..32].try_into().unwrap_or_default());
        if crc(&[&head[..28]]) != stored {
            return Err(d.corrupt(28, "file header checksum mismatch"));
        }
        if version != SNAPSHOT_VERSION {
            return Err(d.corrupt(
                8,
                format!(
                    "unsupported snapshot version {version}, this build reads version {SNAPSHOT_VERSION}"
                ),
            ));
        }
        if head[12..16] != [0; 4] || head[24..28] != [0; 4] {
            return Err(d.corrupt(
                12,
                "unknown flags or non-zero reserved bytes in the file header",
            ));
        }
        let meta_len = u32::from_le_bytes(head[16..20].try_into().unwrap_or_default()) as usize;
        let meta_crc = u32::from_le_bytes(head[20..24].try_into().unwrap_or_default());
        let meta = d.read_vec(meta_len, "header metadata")?;
        if crc(&[&meta]) != meta_crc {
            return Err(d.corrupt(HEADER_LEN as u64, "header metadata checksum mismatch"));
        }
        let header: HeaderMeta = serde_json::from_slice(&meta).map_err(|e| {
            d.corrupt(
                HEADER_LEN as u64,
                format!("malformed header metadata ({e})"),
            )
        })?;
        header
            .config
            .validate()
            .map_err(|e| d.corrupt(HEADER_LEN as u64, format!("invalid topic settings ({e})")))?;
        if header
            .partitions
            .iter()
            .any(|&p| p >= header.config.partitions)
            || header.partitions.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(d.corrupt(
                HEADER_LEN as u64,
                "partition list is not ascending within the topic's partition count",
            ));
        }
        d.info.topic = header.topic;
        d.info.config = header.config;
        d.info.partitions = header.partitions;
        d.info.from = header.from;
        d.info.to = header.to;
        d.info.exported_at = header.exported_at;
        Ok(d)
    }

    /// The next block's records, or `None` after a valid footer and trailer
    /// that end the file.
    fn next_block(&mut self) -> Result<Option<Vec<SnapshotRecord>>> {
        if self.finished {
            return Ok(None);
        }
        let at = self.position;
        let mut magic = [0u8; 4];
        self.read_exact(&mut magic, "block or footer header")?;
        match u32::from_le_bytes(magic) {
            BLOCK_MAGIC => self.block(at, magic).map(Some),
            FOOTER_MAGIC => {
                self.footer(at, magic)?;
                self.finished = true;
                Ok(None)
            }
            _ => Err(self.corrupt(at, "neither a block nor the footer starts here (bad magic)")),
        }
    }

    fn block(&mut self, at: u64, magic: [u8; 4]) -> Result<Vec<SnapshotRecord>> {
        let mut rest = [0u8; BLOCK_HEADER_LEN - 4];
        self.read_exact(&mut rest, "block header")?;
        let field = |i: usize| u32::from_le_bytes(rest[i..i + 4].try_into().unwrap_or_default());
        let (partition, count, len, stored) = (field(0), field(4), field(8), field(12));
        let payload = self.read_vec(len as usize, "block")?;
        if crc(&[&magic, &rest[..12], &payload]) != stored {
            return Err(self.corrupt(at, "block checksum mismatch"));
        }
        if !self.info.partitions.contains(&partition) {
            return Err(self.corrupt(
                at + 4,
                format!("block of partition {partition}, which the header does not list"),
            ));
        }
        let mut records =
            Vec::with_capacity((count as usize).min(payload.len() / RECORD_HEADER_LEN + 1));
        let mut pos = 0usize;
        let body = at + BLOCK_HEADER_LEN as u64;
        for _ in 0..count {
            let Some(head) = payload.get(pos..pos + RECORD_HEADER_LEN) else {
                return Err(self.corrupt(body + pos as u64, "record header runs past its block"));
            };
            let offset = u64::from_le_bytes(head[0..8].try_into().unwrap_or_default());
            let timestamp = i64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
            let vlen = u32::from_le_bytes(head[16..20].try_into().unwrap_or_default()) as usize;
            let start = pos + RECORD_HEADER_LEN;
            let Some(value) = payload.get(start..start.saturating_add(vlen)) else {
                return Err(self.corrupt(body + pos as u64, "record value runs past its block"));
            };
            if self
                .last_offset
                .get(&partition)
                .is_some_and(|&last| offset <= last)
            {
                return Err(self.corrupt(
                    body + pos as u64,
                    format!("offset {offset} of partition {partition} does not increase"),
                ));
            }
            if let Err(e) = crate::envelope::EnvelopeRef::decode(value) {
                return Err(self.corrupt(
                    body + start as u64,
                    format!("record at offset {offset} of partition {partition} is not a valid envelope ({e})"),
                ));
            }
            self.last_offset.insert(partition, offset);
            records.push(SnapshotRecord {
                partition,
                offset,
                timestamp,
                value: value.to_vec(),
            });
            pos = start + vlen;
        }
        if pos != payload.len() {
            return Err(self.corrupt(
                body + pos as u64,
                format!(
                    "{} bytes after the block's {count} records",
                    payload.len() - pos
                ),
            ));
        }
        self.blocks += 1;
        self.records += u64::from(count);
        Ok(records)
    }

    fn footer(&mut self, at: u64, magic: [u8; 4]) -> Result<()> {
        let mut fixed = [0u8; FOOTER_FIXED_LEN - 4];
        fixed[0..4].copy_from_slice(&magic);
        self.read_exact(&mut fixed[4..], "footer")?;
        let mut len = [0u8; 4];
        self.read_exact(&mut len, "footer")?;
        let meta = self.read_vec(u32::from_le_bytes(len) as usize, "footer metadata")?;
        let mut stored = [0u8; 4];
        self.read_exact(&mut stored, "footer checksum")?;
        if crc(&[&fixed, &len, &meta]) != u32::from_le_bytes(stored) {
            return Err(self.corrupt(at, "footer checksum mismatch"));
        }
        let blocks = u64::from_le_bytes(fixed[4..12].try_into().unwrap_or_default());
        let records = u64::from_le_bytes(fixed[12..20].try_into().unwrap_or_default());
        if blocks != self.blocks || records != self.records {
            return Err(self.corrupt(
                at,
                format!(
                    "footer counts {blocks} blocks and {records} records, the file holds {} and {}",
                    self.blocks, self.records
                ),
            ));
        }
        let footer: FooterMeta = serde_json::from_slice(&meta)
            .map_err(|e| self.corrupt(at, format!("malformed footer metadata ({e})")))?;
        let mut trailer = [0u8; TRAILER_LEN];
        let trailer_at = self.position;
        self.read_exact(&mut trailer, "trailer")?;
        if trailer[8..16] != SNAPSHOT_END_MAGIC
            || u64::from_le_bytes(trailer[0..8].try_into().unwrap_or_default()) != at
        {
            return Err(self.corrupt(trailer_at, "trailer does not point at the footer"));
        }
        let mut extra = [0u8; 1];
        if self
            .input
            .read(&mut extra)
            .map_err(|e| Error::io("read", &self.path, e))?
            != 0
        {
            return Err(self.corrupt(self.position, "bytes after the trailer"));
        }
        let counted: u64 = footer.partitions.iter().map(|p| p.records).sum();
        if counted != records {
            return Err(self.corrupt(at, "footer partition counts do not add up"));
        }
        self.info.schema_versions = footer.schema_versions;
        self.info.contents = footer.partitions;
        self.info.records = records;
        Ok(())
    }
}

/// Validates a whole snapshot held in memory — header, every block and
/// record, footer, trailer — and returns its description and records.
/// Meant for tests and fuzzing; files go through [`inspect`] and [`import`].
#[doc(hidden)]
#[cfg(any(test, feature = "failpoints"))]
pub fn decode(bytes: &[u8]) -> Result<(SnapshotInfo, Vec<SnapshotRecord>)> {
    let mut d = Decoder::open(bytes, Path::new("<memory>"))?;
    let mut all = Vec::new();
    while let Some(block) = d.next_block()? {
        all.extend(block);
    }
    Ok((d.info, all))
}

fn open_file(path: &Path) -> Result<Decoder<BufReader<File>>> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    Decoder::open(BufReader::with_capacity(1 << 20, file), path)
}

/// Reads and validates the whole snapshot file at `path` (every checksum)
/// and describes it, without importing anything.
pub fn inspect(path: impl AsRef<Path>) -> Result<SnapshotInfo> {
    let mut d = open_file(path.as_ref())?;
    while d.next_block()?.is_some() {}
    Ok(d.info)
}

/// Imports the snapshot at `path` into `fabric`: into topic `rename` (or the
/// exported topic's name), created with the exported settings when it does
/// not exist, otherwise appended to (it must have every exported partition).
///
/// The whole file is validated first; a damaged or truncated file is an
/// error naming the file and byte, and nothing is imported. Records keep
/// their partition, order, timestamp and bytes (so `event_id`s); they get
/// the target partition's next offsets. A record whose `event_id` the
/// target already holds — in its dedup cache, or anywhere in the target
/// partition from the snapshot's earliest timestamp on — is skipped and
/// counted, so importing the same file twice appends nothing the second time.
pub fn import(
    fabric: &Fabric,
    path: impl AsRef<Path>,
    rename: Option<&str>,
) -> Result<ImportSummary> {
    import_with_progress(fabric, path, rename, &mut |_| {})
}

/// [`import`], calling `progress` with the running count of records handled.
pub fn import_with_progress(
    fabric: &Fabric,
    path: impl AsRef<Path>,
    rename: Option<&str>,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportSummary> {
    let path = path.as_ref();
    let info = inspect(path)?;
    let name = rename.unwrap_or(&info.topic).to_string();
    let created = !fabric.topics().contains(&name);
    let mut known: HashSet<u128> = HashSet::new();
    if created {
        fabric.create_topic(&name, info.config.clone())?;
    } else {
        let target = fabric.topic_info(&name)?;
        if let Some(&p) = info
            .partitions
            .iter()
            .find(|&&p| p >= target.config.partitions)
        {
            return Err(Error::invalid(
                format!("import of {} into topic {name:?}", path.display()),
                format!(
                    "the snapshot holds partition {p} but the topic has {} partitions; add partitions first; nothing was imported",
                    target.config.partitions
                ),
            ));
        }
        // Ids the target already holds in the time span the snapshot covers:
        // a record keeps its timestamp, so a copy of it lies at or after it,
        // in the warm tier as well as the hot one.
        for part in &info.contents {
            let Some(since) = part.min_timestamp else {
                continue;
            };
            let p = part.partition;
            let Some(from) = fabric.partition_view(&name, p)?.offset_for_time(since)? else {
                continue;
            };
            let mut reader = fabric
                .reader(&name, StartFrom::Offsets(BTreeMap::from([(p, from)])))?
                .with_partitions(&[p])?;
            while let Some(raw) = reader.next_raw() {
                if let Some(id) = event_id_of(&raw?.value) {
                    known.insert(id);
                }
            }
        }
    }
    let handle = fabric.handle(&name)?;
    let mut d = open_file(path)?;
    let mut summary = ImportSummary {
        topic: name.clone(),
        created,
        records: info.records,
        appended: 0,
        duplicates_skipped: 0,
        bytes: 0,
    };
    let mut buf = Vec::new();
    let mut items = Vec::new();
    let mut out = Vec::new();
    let mut handled = 0u64;
    let guard = fabric.publish_guard(&handle);
    while let Some(block) = d.next_block()? {
        let logs = handle.partitions();
        buf.clear();
        items.clear();
        out.clear();
        for r in &block {
            let id = event_id_of(&r.value).unwrap_or(0);
            if known.contains(&id) {
                summary.duplicates_skipped += 1;
                continue;
            }
            let start = buf.len();
            buf.extend_from_slice(&r.value);
            items.push(Item {
                partition: r.partition,
                start,
                end: buf.len(),
                timestamp: r.timestamp,
                id,
                system: false,
            });
        }
        // A block (one partition's records) goes in as batches no larger
        // than a segment: one oversized batch would make one oversized
        // segment, which retention could not move while it is active.
        let limit = {
            let config = handle.config.read();
            usize::try_from(config.segment_bytes)
                .unwrap_or(usize::MAX)
                .min(config.max_batch_bytes)
        };
        let mut chunk_start = 0;
        let mut bytes = crate::storage::batch::HEADER_LEN;
        for (i, item) in items.iter().enumerate() {
            let size = item.end - item.start + crate::storage::batch::RECORD_OVERHEAD;
            if i > chunk_start && bytes + size > limit {
                append_items(
                    &handle,
                    &guard,
                    &logs,
                    &buf,
                    &items[chunk_start..i],
                    false,
                    &mut out,
                )?;
                chunk_start = i;
                bytes = crate::storage::batch::HEADER_LEN;
            }
            bytes += size;
        }
        append_items(
            &handle,
            &guard,
            &logs,
            &buf,
            &items[chunk_start..],
            false,
            &mut out,
        )?;
        for (item, published) in items.iter().zip(&out) {
            match published.outcome {
                PublishOutcome::Appended => {
                    summary.appended += 1;
                    summary.bytes += (item.end - item.start) as u64;
                }
                PublishOutcome::Duplicate | PublishOutcome::Dropped => {
                    summary.duplicates_skipped += 1;
                }
            }
        }
        handled += block.len() as u64;
        progress(handled);
    }
    for log in handle.partitions().iter() {
        log.flush()?;
    }
    Ok(summary)
}
