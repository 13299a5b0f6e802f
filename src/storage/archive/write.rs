//! Writing an archive segment from a sealed hot segment's batches.
//!
//! Owns the writer's pass over the batches (verifying each, grouping them into
//! zstd blocks, cataloguing what the caller reads of each record) and the
//! index, footer and trailer it appends. It never reads record values itself
//! (the caller's [`SchemaVersionOf`] does) and never renames the file into
//! place.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::{Error, Result};
use crate::storage::batch::BatchView;
use crate::storage::io::Io;

use super::{
    ARCHIVE_MAGIC, ARCHIVE_VERSION, ArchiveSummary, BLOCK_TARGET_BYTES, BlockEntry, CODEC_ZSTD,
    HEADER_LEN, INDEX_ENTRY_LEN, TRAILER_MAGIC, ZSTD_LEVEL,
};

/// How the caller reads a record value's schema version for the footer's
/// catalogue: `None` when the value carries none (counted in
/// `undecoded_records`). The layer that knows the record format provides it,
/// so the storage layer stays blind to values.
pub(crate) type SchemaVersionOf = dyn Fn(&[u8]) -> Option<&str>;

/// Everything a new archive needs to know besides the batches.
#[derive(Clone)]
pub(crate) struct ArchiveMeta<'a> {
    /// Topic named in the footer.
    pub topic: &'a str,
    /// Partition named in the footer.
    pub partition: u32,
    /// Creation time named in the footer (µs since the epoch).
    pub created_at: i64,
    /// Reads each record's schema version for the footer's catalogue.
    pub schema_version_of: &'a SchemaVersionOf,
}

impl std::fmt::Debug for ArchiveMeta<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveMeta")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Writes an archive segment of `data` (a sealed segment's batches, offsets
/// `base..next`) to `path` through `io`, then syncs it. Every batch is
/// verified first: damaged data is never archived. Returns the summary.
pub(crate) fn write_archive(
    io: &Io,
    path: &Path,
    data: &[u8],
    source: &Path,
    base: u64,
    meta: &ArchiveMeta<'_>,
) -> Result<ArchiveSummary> {
    let file = io.open_rw(path, true)?;
    io.set_len(&file, path, 0)?;
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(&ARCHIVE_MAGIC);
    header.extend_from_slice(&[ARCHIVE_VERSION, CODEC_ZSTD, 0, 0]);
    io.write_at(&file, path, &header, 0)?;
    let mut file_pos = HEADER_LEN as u64;
    let mut blocks: Vec<BlockEntry> = Vec::new();
    let mut schemas: BTreeSet<String> = BTreeSet::new();
    let mut undecoded = 0u64;
    let mut min_ts = i64::MAX;
    let mut max_ts = i64::MIN;
    let mut expect = base;
    let mut compressor =
        zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| Error::Compression {
            path: path.to_path_buf(),
            reason: format!("zstd compressor: {e}"),
        })?;
    let mut pos = 0usize;
    while pos < data.len() {
        let block_start = pos;
        let first_offset = expect;
        let mut block_max = i64::MIN;
        while let Some(rest) = data.get(pos..).filter(|rest| !rest.is_empty())
            && pos - block_start < BLOCK_TARGET_BYTES
        {
            let view = BatchView::parse(rest)
                .map_err(|e| Error::corrupted(source, pos as u64, e.to_string()))?;
            if view.header.base_offset != expect {
                return Err(Error::corrupted(
                    source,
                    pos as u64,
                    format!(
                        "batch starts at offset {} where {expect} was expected",
                        view.header.base_offset
                    ),
                ));
            }
            for r in view.records() {
                min_ts = min_ts.min(r.timestamp);
                match (meta.schema_version_of)(r.value) {
                    Some(version) => {
                        if !schemas.contains(version) {
                            schemas.insert(version.to_owned());
                        }
                    }
                    None => undecoded += 1,
                }
            }
            block_max = block_max.max(view.header.max_timestamp);
            expect = view.header.next_offset();
            pos += view.header.length as usize;
        }
        // `pos` only advanced over whole, parsed batches inside `data`.
        let raw = data.get(block_start..pos).ok_or_else(|| {
            Error::corrupted(
                source,
                block_start as u64,
                "batch runs past the segment data",
            )
        })?;
        let compressed = compressor.compress(raw).map_err(|e| Error::Compression {
            path: path.to_path_buf(),
            reason: format!("zstd compression: {e}"),
        })?;
        io.write_at(&file, path, &compressed, file_pos)?;
        blocks.push(BlockEntry {
            first_offset,
            last_offset: expect - 1,
            max_timestamp: block_max,
            position: file_pos,
            compressed_len: compressed.len() as u32,
            raw_len: raw.len() as u32,
            crc: crc32fast::hash(&compressed),
        });
        file_pos += compressed.len() as u64;
        max_ts = max_ts.max(block_max);
    }
    if blocks.is_empty() {
        return Err(Error::invalid(
            format!("archive of {}", source.display()),
            "the segment holds no records",
        ));
    }
    let mut index = Vec::with_capacity(blocks.len() * INDEX_ENTRY_LEN);
    for b in &blocks {
        b.encode(&mut index);
    }
    let summary = ArchiveSummary {
        topic: meta.topic.to_owned(),
        partition: meta.partition,
        base_offset: base,
        next_offset: expect,
        min_timestamp: min_ts,
        max_timestamp: max_ts,
        record_count: expect - base,
        raw_bytes: data.len() as u64,
        block_count: blocks.len() as u32,
        created_at: meta.created_at,
        undecoded_records: undecoded,
        schema_versions: schemas
            .into_iter()
            .filter(|v| v.len() <= u8::MAX as usize)
            .take(u16::MAX as usize)
            .collect(),
        file_bytes: 0,
        index_position: file_pos,
        index_len: index.len() as u32,
        index_crc: crc32fast::hash(&index),
    };
    let footer = summary.encode();
    let mut tail = index;
    tail.extend_from_slice(&footer);
    tail.extend_from_slice(&(footer.len() as u32).to_le_bytes());
    tail.extend_from_slice(&crc32fast::hash(&footer).to_le_bytes());
    tail.extend_from_slice(&[ARCHIVE_VERSION, CODEC_ZSTD, 0, 0]);
    tail.extend_from_slice(&TRAILER_MAGIC);
    io.write_at(&file, path, &tail, file_pos)?;
    io.sync_all(&file, path)?;
    Ok(ArchiveSummary {
        file_bytes: file_pos + tail.len() as u64,
        ..summary
    })
}
