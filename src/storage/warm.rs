//! Warm reads: a partition's archive segments and the cursor that reads
//! across them and the hot log as one offset range.
//!
//! Owns the in-memory list of one partition's archive segments (loading
//! them, dropping leftovers of an interrupted tiering), the block cache of
//! decompressed archive blocks shared by a fabric's partitions, and
//! [`PartitionView`], which serves an offset from whichever readable tier
//! holds it. It must never write an archive (that is tier maintenance) and
//! never interpret record bytes.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::storage::archive::{ARCHIVE_EXTENSION, Archive, RemoteArchives};
use crate::storage::batch::{self, BatchView};
use crate::storage::io::Io;
use crate::storage::log::{Log, Record, Records};

/// Decompressed blocks kept for reuse, shared by all partitions (each at most
/// a block, ~256 KiB): bounds the memory warm reads hold besides each
/// reader's current block.
const BLOCK_CACHE_ENTRIES: usize = 16;

pub(crate) fn archive_name(base: u64) -> String {
    format!("{base:020}.{ARCHIVE_EXTENSION}")
}

/// Name of the local marker of a remote archive (`<base:020>.remote`).
pub(crate) fn marker_name(base: u64) -> String {
    format!("{base:020}.remote")
}

fn parse_marker_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".remote")?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// Opens the remote archive a marker records, through the fabric's remote tier.
fn open_remote(
    remote: Option<&Arc<dyn RemoteArchives>>,
    topic: &str,
    path: &Path,
) -> Result<Archive> {
    match remote {
        Some(r) => r.open_marker(topic, path),
        None => Err(Error::invalid(
            format!("remote archive {}", path.display()),
            "it lives in an object store, but this fabric has no remote warm tier (FabricConfig::remote_warm, feature tier-s3)",
        )),
    }
}

pub(crate) fn parse_archive_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(ARCHIVE_EXTENSION)?.strip_suffix('.')?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// Decompressed blocks shared by every warm partition of a fabric, keyed by
/// the archive's identity ([`Archive::id`], unique to one opening of one
/// file) and block number. Never by path or address: a topic deleted and
/// created again reuses both, and must never be served the old blocks.
#[derive(Debug, Default)]
pub(crate) struct BlockCache {
    entries: Mutex<VecDeque<((u64, usize), Bytes)>>,
}

impl BlockCache {
    pub(crate) fn get_or_load(&self, archive: &Archive, i: usize) -> Result<Bytes> {
        let key = (archive.id, i);
        if let Some((_, b)) = self.entries.lock().iter().find(|(k, _)| *k == key) {
            return Ok(b.clone());
        }
        let block = archive.read_block(i)?;
        let mut entries = self.entries.lock();
        if !entries.iter().any(|(k, _)| *k == key) {
            if entries.len() >= BLOCK_CACHE_ENTRIES {
                entries.pop_front();
            }
            entries.push_back((key, block.clone()));
        }
        Ok(block)
    }

    /// Drops the blocks of `archives` (no longer listed). A reader still
    /// holding one of them may cache a block again: harmless, as no other
    /// archive shares its identity, and evicted like any other entry.
    pub(crate) fn forget(&self, archives: &[Arc<Archive>]) {
        if archives.is_empty() {
            return;
        }
        self.entries
            .lock()
            .retain(|((id, _), _)| archives.iter().all(|a| a.id != *id));
    }
}

/// The warm tier of one partition: its archive segments, oldest first,
/// contiguous in offsets.
#[derive(Debug)]
pub(crate) struct WarmPartition {
    topic: String,
    partition: u32,
    pub(crate) dir: PathBuf,
    pub(crate) read_only: bool,
    archives: RwLock<Arc<Vec<Arc<Archive>>>>,
    cache: Arc<BlockCache>,
    /// Opens the archives recorded by markers (the remote warm tier).
    remote: Option<Arc<dyn RemoteArchives>>,
}

impl WarmPartition {
    pub(crate) fn snapshot(&self) -> Arc<Vec<Arc<Archive>>> {
        self.archives.read().clone()
    }

    /// First warm offset, if the warm tier holds anything.
    pub(crate) fn earliest(&self) -> Option<u64> {
        self.archives.read().first().map(|a| a.base())
    }

    pub(crate) fn block(&self, archive: &Arc<Archive>, i: usize) -> Result<Bytes> {
        self.cache.get_or_load(archive, i)
    }

    /// Lists and opens the archive segments in `dir`. A writer removes
    /// leftover temporary files and archives that fail validation while the
    /// hot log still holds their records (an interrupted tiering); any other
    /// invalid archive is an error naming file and byte. Markers
    /// (`<base>.remote`) are opened through `remote`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn load(
        dir: &Path,
        topic: &str,
        partition: u32,
        log: &Log,
        io: Option<&Io>,
        cache: Arc<BlockCache>,
        known: &[Arc<Archive>],
        remote: Option<Arc<dyn RemoteArchives>>,
    ) -> Result<WarmPartition> {
        let mut bases = Vec::new();
        let mut markers = std::collections::HashSet::new();
        match fs::read_dir(dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(|e| Error::io("list", dir, e))?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if let Some(base) = parse_archive_name(&name) {
                        bases.push(base);
                    } else if let Some(base) = parse_marker_name(&name) {
                        bases.push(base);
                        markers.insert(base);
                    } else if name.ends_with(".tmp")
                        && let Some(io) = io
                    {
                        io.remove(&entry.path())?;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("list", dir, e)),
        }
        bases.sort_unstable();
        if let Some([twice, _]) = bases.array_windows().find(|[a, b]| a == b) {
            return Err(Error::corrupted(
                dir.join(marker_name(*twice)),
                0,
                format!(
                    "both a local archive and a remote-archive marker start at offset {twice}: one of them must go",
                ),
            ));
        }
        let hot_earliest = log.earliest_offset();
        let mut archives: Vec<Arc<Archive>> = Vec::new();
        for base in bases {
            let is_remote = markers.contains(&base);
            let path = dir.join(if is_remote {
                marker_name(base)
            } else {
                archive_name(base)
            });
            if let Some(a) = known.iter().find(|a| a.base() == base) {
                // Already validated (a read-only view looking again).
                archives.push(a.clone());
                continue;
            }
            let opened = if is_remote {
                open_remote(remote.as_ref(), topic, &path)
            } else {
                Archive::open(&path)
            }
            .and_then(|a| {
                let s = &a.summary;
                if s.topic != topic || s.partition != partition || s.base_offset != base {
                    return Err(Error::corrupted(
                        &path,
                        0,
                        format!(
                            "archive holds topic {:?} partition {} from offset {}, not what its place says ({topic:?} partition {partition} from {base})",
                            s.topic, s.partition, s.base_offset
                        ),
                    ));
                }
                Ok(a)
            });
            match opened {
                Ok(a) => {
                    if let Some(prev) = archives.last()
                        && prev.next() != a.base()
                    {
                        return Err(Error::corrupted(
                            &path,
                            0,
                            format!(
                                "archive starts at offset {} but the previous one ends before {}",
                                a.base(),
                                prev.next()
                            ),
                        ));
                    }
                    archives.push(Arc::new(a));
                }
                // Deleted by the writer's retention between listing and opening.
                Err(Error::Io { source, .. })
                    if io.is_none() && source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) if io.is_some() && hot_earliest <= base => {
                    // The hot log still holds these records: the archive is
                    // the unfinished half of a tiering, and the hot copy wins.
                    log::warn!("tiering recovery: removing {} ({e})", path.display());
                    if let Some(io) = io {
                        io.remove(&path)?;
                        io.sync_dir(dir)?;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(last) = archives.last()
            && last.next() < hot_earliest
        {
            return Err(Error::corrupted(
                &last.path,
                0,
                format!(
                    "warm tier ends before offset {} but the hot log {} starts at {hot_earliest}: offsets in between are missing",
                    last.next(),
                    log.dir().display()
                ),
            ));
        }
        Ok(WarmPartition {
            topic: topic.to_owned(),
            partition,
            dir: dir.to_path_buf(),
            read_only: io.is_none(),
            archives: RwLock::new(Arc::new(archives)),
            cache,
            remote,
        })
    }

    /// Read-only views: picks up archives the writer added or removed.
    pub(crate) fn reload(&self, log: &Log) -> Result<()> {
        if !self.read_only {
            return Ok(());
        }
        // Archives already known are kept (with their cached blocks); only
        // new files are opened and validated.
        let old = self.snapshot();
        let fresh = WarmPartition::load(
            &self.dir,
            &self.topic,
            self.partition,
            log,
            None,
            self.cache.clone(),
            &old,
            self.remote.clone(),
        )?
        .snapshot();
        let gone: Vec<Arc<Archive>> = old
            .iter()
            .filter(|a| !fresh.iter().any(|f| f.id == a.id))
            .cloned()
            .collect();
        *self.archives.write() = fresh;
        self.cache.forget(&gone);
        Ok(())
    }

    pub(crate) fn push(&self, archive: Arc<Archive>) {
        let mut list = self.archives.write();
        let mut next = Vec::clone(&list);
        next.push(archive);
        *list = Arc::new(next);
    }

    pub(crate) fn pop_first(&self) {
        let mut list = self.archives.write();
        let next: Vec<_> = list.iter().skip(1).cloned().collect();
        *list = Arc::new(next);
    }

    /// The first offset whose record timestamp is at or after `ts`, if a warm record is that recent.
    pub(crate) fn offset_for_time(&self, ts: i64) -> Result<Option<u64>> {
        for a in self.snapshot().iter() {
            if a.summary.max_timestamp < ts {
                continue;
            }
            for (i, b) in a.blocks.iter().enumerate() {
                if b.max_timestamp < ts {
                    continue;
                }
                let block = self.block(a, i)?;
                let mut pos = 0usize;
                while let Some(rest) = block.get(pos..).filter(|rest| !rest.is_empty()) {
                    let view = BatchView::parse(rest)
                        .map_err(|e| Error::corrupted(&a.path, b.position, e.to_string()))?;
                    if view.header.max_timestamp >= ts
                        && let Some(r) = view.records().find(|r| r.timestamp >= ts)
                    {
                        return Ok(Some(r.offset));
                    }
                    pos += view.header.length as usize;
                }
            }
        }
        Ok(None)
    }
}

/// Streams records out of the warm tier, one decompressed block at a time.
#[derive(Debug)]
pub(crate) struct WarmRecords {
    warm: Arc<WarmPartition>,
    archives: Arc<Vec<Arc<Archive>>>,
    archive: usize,
    block: usize,
    /// The current decompressed block and the position of the batch being read.
    current: Option<(Bytes, usize)>,
    next: u64,
}

impl WarmRecords {
    pub(crate) fn new(
        warm: Arc<WarmPartition>,
        archives: Arc<Vec<Arc<Archive>>>,
        from: u64,
    ) -> WarmRecords {
        let archive = archives.partition_point(|a| a.next() <= from);
        let block = archives
            .get(archive)
            .map_or(0, |a| a.block_for_offset(from));
        WarmRecords {
            warm,
            archives,
            archive,
            block,
            current: None,
            next: from,
        }
    }

    pub(crate) fn advance(&mut self) -> Result<Option<Record>> {
        loop {
            if let Some((block, pos)) = &mut self.current {
                while let Some(rest) = block.get(*pos..).filter(|rest| !rest.is_empty()) {
                    // The block passed `decode_block`: every batch in it is whole and verified.
                    // (`current` is only ever a block of `archives[archive]`.)
                    let corrupted = |e: batch::BatchError| {
                        let path = self.archives.get(self.archive).map(|a| a.path.as_path());
                        Error::corrupted(path.unwrap_or(Path::new("")), 0, e.to_string())
                    };
                    let header = batch::parse_header(rest).map_err(corrupted)?;
                    let len = header.length as usize;
                    if header.next_offset() > self.next {
                        // `parse_header` checked that `rest` holds `len` bytes.
                        let whole = rest.get(..len).unwrap_or(rest);
                        let view = BatchView::trusted(whole, header);
                        if let Some(r) = view.records_from(self.next).next() {
                            self.next = r.offset + 1;
                            let start = *pos + r.value_start;
                            return Ok(Some(Record {
                                offset: r.offset,
                                timestamp: r.timestamp,
                                value: block.slice(start..start + r.value.len()),
                            }));
                        }
                    }
                    *pos += len;
                }
                self.current = None;
                self.block += 1;
            }
            let Some(archive) = self.archives.get(self.archive) else {
                return Ok(None);
            };
            if self.block >= archive.blocks.len() || archive.next() <= self.next {
                self.archive += 1;
                self.block = self
                    .archives
                    .get(self.archive)
                    .map_or(0, |a| a.block_for_offset(self.next));
                continue;
            }
            if archive
                .blocks
                .get(self.block)
                .is_none_or(|b| b.last_offset < self.next)
            {
                self.block += 1;
                continue;
            }
            let archive = archive.clone();
            self.current = Some((self.warm.block(&archive, self.block)?, 0));
        }
    }
}

impl Iterator for WarmRecords {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        self.advance().transpose()
    }
}

/// Where a cursor reads from: the warm tier or the hot log.
#[derive(Debug)]
pub(crate) enum TierRecords {
    Warm(WarmRecords),
    Hot(Records),
}

/// The tiers one partition is read through.
#[derive(Debug, Clone)]
pub(crate) struct PartitionView {
    pub(crate) topic: String,
    pub(crate) partition: u32,
    pub(crate) log: Arc<Log>,
    pub(crate) warm: Arc<WarmPartition>,
}

impl PartitionView {
    /// The earliest readable offset: the warm tier's first, else the hot log's.
    pub(crate) fn earliest(&self) -> Result<u64> {
        if self.warm.read_only {
            self.warm.reload(&self.log)?;
        }
        // The hot log first: maintenance lists an archive before it takes
        // the segment out of the hot log, so a move between the two reads is
        // seen by the second (the other order could miss both copies).
        let hot = self.log.earliest_offset();
        let warm = self.warm.earliest();
        Ok(warm.map_or(hot, |w| w.min(hot)))
    }

    /// An iterator from `from`, in whichever tier holds it. Offsets that
    /// retention removed are [`Error::OffsetExpired`].
    pub(crate) fn open(&self, from: u64) -> Result<TierRecords> {
        let mut reloaded = false;
        for _ in 0..8 {
            let hot_before = self.log.earliest_offset();
            let snap = self.warm.snapshot();
            if let (Some(first), Some(last)) = (snap.first(), snap.last())
                && from >= first.base()
                && from < last.next()
            {
                return Ok(TierRecords::Warm(WarmRecords::new(
                    self.warm.clone(),
                    snap,
                    from,
                )));
            }
            if from >= hot_before {
                match self.log.iter(from) {
                    Ok(r) => return Ok(TierRecords::Hot(r)),
                    Err(Error::OffsetOutOfRange { .. }) if self.log.earliest_offset() > from => {
                        continue; // tiered away meanwhile: look again
                    }
                    Err(e) => return Err(e),
                }
            }
            if self.log.earliest_offset() != hot_before {
                continue; // raced with maintenance
            }
            if self.warm.read_only && !reloaded {
                self.warm.reload(&self.log)?;
                reloaded = true;
                continue;
            }
            let earliest = snap.first().map_or(hot_before, |a| a.base());
            return Err(Error::OffsetExpired {
                topic: self.topic.clone(),
                partition: self.partition,
                requested: from,
                earliest,
            });
        }
        Err(Error::invalid(
            format!(
                "read of topic {:?} partition {}",
                self.topic, self.partition
            ),
            "maintenance kept moving segments under it; retry",
        ))
    }

    /// The first offset whose record timestamp is at or after `ts` in any
    /// readable tier, or `None` when no record is that recent.
    pub(crate) fn offset_for_time(&self, ts: i64) -> Result<Option<u64>> {
        if self.warm.read_only {
            self.warm.reload(&self.log)?;
        }
        for _ in 0..8 {
            let hot_before = self.log.earliest_offset();
            if let Some(o) = self.warm.offset_for_time(ts)? {
                return Ok(Some(o));
            }
            let found = self.log.offset_for_time(ts);
            if self.log.earliest_offset() == hot_before {
                return found;
            }
        }
        Err(Error::invalid(
            format!(
                "time lookup in topic {:?} partition {}",
                self.topic, self.partition
            ),
            "maintenance kept moving segments under it; retry",
        ))
    }
}
