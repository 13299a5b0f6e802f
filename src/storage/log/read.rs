//! Reads: records and verified batches by offset, read limits, and the
//! refresh of read-only views.
//!
//! Owns iterating the published part of segments and waking waiters after
//! appends. It never writes to a segment file.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::storage::batch::{self, BatchHeader, BatchView, RecordRef};
use crate::storage::checkpoint::Checkpoint;
use crate::storage::segment::{self, Segment};

use super::Shared;
use super::recovery::{
    batch_now_at, check_same_file, is_race_with_writer, list_segment_bases, read_only_damage,
    recover_read_only,
};

/// A record read from the log; `value` shares the segment's memory map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Offset within the partition.
    pub offset: u64,
    /// Microseconds since the Unix epoch.
    pub timestamp: i64,
    /// The record's bytes (zero-copy).
    pub value: Bytes,
}

/// Bounds for [`Log::read`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimit {
    /// At most this many records.
    pub max_records: usize,
    /// Stop before exceeding this many value bytes (at least one record is returned).
    pub max_bytes: usize,
}

impl ReadLimit {
    /// At most `n` records, any size.
    pub fn records(n: usize) -> Self {
        ReadLimit {
            max_records: n,
            max_bytes: usize::MAX,
        }
    }

    /// At most `n` value bytes (but at least one record).
    pub fn bytes(n: usize) -> Self {
        ReadLimit {
            max_records: usize::MAX,
            max_bytes: n,
        }
    }
}

impl Shared {
    /// Wakes `wait_for` callers and the attached topic signal after new
    /// records became visible.
    pub(super) fn notify_appended(&self) {
        // Pairs with the SeqCst increment in `wait_for`: either this load sees
        // the waiter, or the waiter's check sees the new next_offset.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) > 0 {
            let _g = self.appended_lock.lock();
            self.appended.notify_all();
        }
        if let Some(signal) = self.append_signal.get() {
            signal.notify();
        }
    }

    pub(super) fn refresh(&self) -> Result<()> {
        let before = self.next_offset.load(Ordering::Acquire);
        let result = self.refresh_segments();
        if self.next_offset.load(Ordering::Acquire) != before {
            self.notify_appended();
        }
        result
    }

    pub(super) fn refresh_segments(&self) -> Result<()> {
        let current = self.segments();
        // The common case while tailing: same segment files, the last one
        // still active. Extend it in place, so iterators holding it see the
        // new batches, and scan only what was appended.
        let on_disk = list_segment_bases(&self.dir)?;
        if on_disk.iter().copied().eq(current.iter().map(|s| s.base))
            && let Some(last) = current.last().filter(|s| !s.is_sealed())
        {
            match last.extend_from_file() {
                Ok(segment::Extended::Grown) => {
                    self.next_offset
                        .store(last.next_offset(), Ordering::Release);
                    return self.check_read_only_tail(last);
                }
                // Sealed, replaced by a repair, or raced with the writer:
                // look again in full.
                Ok(segment::Extended::Sealed | segment::Extended::Replaced) => {}
                Err(e) if is_race_with_writer(&e) => {}
                Err(e) => return Err(e),
            }
        }
        let recovered = recover_read_only(&self.dir, &self.config, &self.io)?;
        let mut fresh = recovered.segments;
        let mut pin = None;
        if let Some((active, file, ..)) = recovered.active {
            fresh.push(active);
            pin = Some(file);
        }
        // Keep segment objects we already have (their maps and indexes) when
        // they map the very file now at the path; take the fresh view
        // otherwise. A truncate may have replaced a sealed segment by a new
        // file with the same base (and even the same length): the inode tells
        // them apart, and it cannot have been reused while the old object
        // maps the old file.
        let merged: Vec<Arc<Segment>> = fresh
            .into_iter()
            .map(|f| {
                current
                    .iter()
                    .find(|c| {
                        c.base == f.base
                            && c.is_sealed()
                            && f.is_sealed()
                            && c.is_loaded()
                            && c.file_id() != 0
                            && c.file_id() == f.file_id()
                            && c.committed_len() == f.committed_len()
                            && c.next_offset() == f.next_offset()
                    })
                    .cloned()
                    .unwrap_or(f)
            })
            .collect();
        let next = merged.last().map_or(0, |s| s.next_offset());
        *self.segments.write() = Arc::new(merged);
        *self.tail_pin.lock() = pin;
        self.next_offset.store(next, Ordering::Release);
        Ok(())
    }

    /// After a read-only view extended its active segment: when bytes that
    /// are not a valid batch stop it and they are proven to be synced data
    /// (below the checkpoint, or vouched for by a later batch), an error
    /// naming file and byte. A batch still being written ends the view.
    pub(super) fn check_read_only_tail(&self, seg: &Segment) -> Result<()> {
        let view = seg.view()?;
        let pos = view.committed_len;
        // Only the header position is looked at through the map (the
        // scan just read it too); anything further is read with `pread`.
        let head = view
            .map
            .get(pos as usize..)
            .map_or(&[][..], |r| r.get(..batch::HEADER_LEN).unwrap_or(r));
        if head.iter().all(|&b| b == 0) {
            return Ok(());
        }
        let file = match File::open(&seg.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("open", &seg.path, e)),
        };
        let look = {
            use std::os::unix::fs::MetadataExt;
            let meta = file
                .metadata()
                .map_err(|e| Error::io("stat", &seg.path, e))?;
            if meta.ino() != seg.file_id() {
                // Replaced since: the next refresh looks again in full.
                return Ok(());
            }
            // Nothing was written since the last look found no proof.
            let look = meta.modified().ok().map(|m| (meta.ino(), pos, m));
            if look.is_some() && *self.tail_clean.lock() == look {
                return Ok(());
            }
            look
        };
        if let Some(c) = Checkpoint::load(&self.dir)
            .filter(|c| c.segment_base == seg.base && pos < c.trusted_len)
        {
            // The checkpoint was read after the scan: the writer may have
            // finished the batch at `pos` and checkpointed past it since.
            if check_same_file(&file, &seg.path).is_err()
                || batch_now_at(&file, &seg.path, pos, view.next_offset)?
            {
                return Ok(());
            }
            return Err(Error::corrupted(
                &seg.path,
                pos,
                format!(
                    "not a valid batch; the checkpoint records the first {} bytes of this segment (offsets below {}) as synced, so this is damaged durable data, not a torn write",
                    c.trusted_len, c.next_offset
                ),
            ));
        }
        match read_only_damage(&file, &seg.path, pos, view.next_offset, None)? {
            Some(err) => Err(err),
            None => {
                *self.tail_clean.lock() = look;
                Ok(())
            }
        }
    }
}

/// Parses and verifies the batch at `pos` of a published segment region.
pub(super) fn parse_batch_at<'a>(
    map: &'a Bytes,
    committed: u64,
    pos: u64,
    path: &Path,
) -> Result<BatchView<'a>> {
    let region = committed_region(map, pos, committed, path)?;
    BatchView::parse(region).map_err(|e| Error::corrupted(path, pos, e.to_string()))
}

/// Bytes `pos..committed` of a segment's map, or corruption at `pos` when
/// the map does not hold them (a position or length read from a damaged file).
pub(super) fn committed_region<'a>(
    map: &'a [u8],
    pos: u64,
    committed: u64,
    path: &Path,
) -> Result<&'a [u8]> {
    usize::try_from(pos)
        .ok()
        .zip(usize::try_from(committed).ok())
        .and_then(|(from, to)| map.get(from..to))
        .ok_or_else(|| {
            Error::corrupted(
                path,
                pos,
                format!(
                    "batch position {pos} is not inside the committed {committed} bytes of a \
                     {}-byte segment map",
                    map.len()
                ),
            )
        })
}

/// A verified batch handed out by [`Batches`]; shares the segment's map.
#[derive(Debug, Clone)]
pub struct Batch {
    bytes: Bytes,
    pub(super) header: BatchHeader,
    from: u64,
}

impl Batch {
    /// The batch header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// Records at or after the offset the iteration started from.
    pub fn records(&self) -> crate::storage::batch::RecordIter<'_> {
        BatchView::trusted(&self.bytes, self.header).records_from(self.from)
    }

    /// The owned, zero-copy form of a record from [`Batch::records`].
    pub fn record(&self, r: RecordRef<'_>) -> Record {
        Record {
            offset: r.offset,
            timestamp: r.timestamp,
            value: self
                .bytes
                .slice(r.value_start..r.value_start + r.value.len()),
        }
    }
}

/// Iterator over verified batches; see [`Log::batches`].
#[derive(Debug)]
pub struct Batches {
    shared: Arc<Shared>,
    segment: Option<Arc<Segment>>,
    position: u64,
    next_offset: u64,
    from: u64,
    failed: bool,
    /// Scans verify every batch; point reads trust batches this process
    /// already verified.
    verify_every_batch: bool,
}

impl Batches {
    pub(super) fn new(shared: Arc<Shared>, from: u64, verify_every_batch: bool) -> Result<Batches> {
        let segments = shared.segments();
        let earliest = segments.first().map_or(0, |s| s.base);
        let next = shared.next_offset.load(Ordering::Acquire);
        if from < earliest || from > next {
            return Err(Error::OffsetOutOfRange {
                offset: from,
                earliest,
                next,
            });
        }
        let segment = segments.iter().rev().find(|s| s.base <= from).cloned();
        let position = match &segment {
            Some(s) => s.floor_for_offset(from)?.1,
            None => 0,
        };
        Ok(Batches {
            shared,
            segment,
            position,
            next_offset: from,
            from,
            failed: false,
            verify_every_batch,
        })
    }

    fn advance(&mut self) -> Result<Option<Batch>> {
        loop {
            let Some(seg) = self.segment.clone() else {
                let segments = self.shared.segments();
                self.segment = segments
                    .iter()
                    .find(|s| s.base == self.next_offset)
                    .cloned();
                if self.segment.is_none() {
                    return Ok(None);
                }
                self.position = 0;
                continue;
            };
            let view = seg.view()?;
            if self.position < view.committed_len {
                let start = self.position;
                let region = committed_region(&view.map, start, view.committed_len, &seg.path)?;
                let header = batch::parse_header(region)
                    .map_err(|e| Error::corrupted(&seg.path, start, e.to_string()))?;
                self.position += u64::from(header.length);
                if header.next_offset() <= self.next_offset {
                    continue;
                }
                if header.base_offset > self.next_offset {
                    return Err(Error::corrupted(
                        &seg.path,
                        start,
                        format!(
                            "batch starts at offset {} where {} was expected",
                            header.base_offset, self.next_offset
                        ),
                    ));
                }
                if self.verify_every_batch || !seg.is_verified(start) {
                    BatchView::parse(region)
                        .map_err(|e| Error::corrupted(&seg.path, start, e.to_string()))?;
                    if !self.verify_every_batch {
                        seg.mark_verified(start, view.map.len());
                    }
                }
                self.next_offset = header.next_offset();
                let start = start as usize;
                return Ok(Some(Batch {
                    bytes: view.map.slice(start..start + header.length as usize),
                    header,
                    from: self.from,
                }));
            }
            if view.sealed && view.next_offset <= self.next_offset {
                self.segment = None;
                continue;
            }
            // A read-only refresh may have replaced this segment's object
            // (sealed, or re-read after the writer rolled): switch to the
            // current one and carry on from the same position.
            let current = self
                .shared
                .segments()
                .iter()
                .rev()
                .find(|s| s.base == seg.base)
                .cloned();
            if let Some(fresh) = current.filter(|s| !Arc::ptr_eq(s, &seg)) {
                self.segment = Some(fresh);
                continue;
            }
            return Ok(None);
        }
    }
}

impl Iterator for Batches {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.failed {
            return None;
        }
        match self.advance() {
            Ok(b) => b.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Iterator over zero-copy records; see [`Log::iter`].
#[derive(Debug)]
pub struct Records {
    pub(super) batches: Batches,
    /// The current batch and the offset of its next record.
    pub(super) current: Option<(Batch, u64)>,
}

impl Iterator for Records {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        loop {
            if let Some((batch, next)) = &mut self.current {
                let view = BatchView::trusted(&batch.bytes, batch.header);
                if let Some(r) = view.records_from(*next).next() {
                    *next = r.offset + 1;
                    return Some(Ok(batch.record(r)));
                }
                self.current = None;
            }
            match self.batches.next()? {
                Ok(b) => {
                    let first = b.from.max(b.header.base_offset);
                    self.current = Some((b, first));
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_position_outside_the_committed_map_is_corruption_at_that_byte() {
        let map = [0u8; 100];
        let path = Path::new("00000000000000000000.log");
        assert_eq!(committed_region(&map, 10, 40, path).unwrap().len(), 30);
        for (pos, committed) in [(10, 101), (60, 40), (u64::MAX, 100)] {
            match committed_region(&map, pos, committed, path) {
                Err(Error::Corrupted {
                    path: p,
                    position,
                    reason,
                }) => {
                    assert_eq!((p.as_path(), position), (path, pos));
                    assert!(reason.contains("100-byte segment map"), "{reason}");
                }
                other => panic!("{pos}..{committed}: expected Error::Corrupted, got {other:?}"),
            }
        }
        let err = parse_batch_at(&Bytes::from_static(&[0; 8]), 8, 9, path).unwrap_err();
        assert!(
            matches!(err, Error::Corrupted { position: 9, .. }),
            "{err:?}"
        );
    }
}
