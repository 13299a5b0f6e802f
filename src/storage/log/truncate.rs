//! Truncation and deletion: cutting a log back to an offset and removing
//! old segments.
//!
//! Owns rewriting the segment that holds the cut and dropping whole
//! segments before an offset. It never touches what lies below the cut
//! nor decides retention (the caller names the offset).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::storage::batch::{self, BatchEncoder};
use crate::storage::checkpoint::{self};
use crate::storage::index::IndexBuilder;
use crate::storage::mmap;
use crate::storage::segment::{self, Segment};

use super::read::{committed_region, parse_batch_at};
use super::{Shared, Writer};

impl Shared {
    pub(super) fn truncate(&self, offset: u64) -> Result<()> {
        let mut guard = self.writer.lock();
        let w = self.writer_mut(&mut guard)?;
        if offset >= w.next_offset {
            return Ok(());
        }
        let segments = self.segments();
        let earliest = segments.first().map_or(0, |s| s.base);
        if offset < earliest {
            return Err(Error::OffsetOutOfRange {
                offset,
                earliest,
                next: w.next_offset,
            });
        }
        let keep_idx = segments.iter().rposition(|s| s.base <= offset).unwrap_or(0);
        let Some((before, [target, after @ ..])) = segments.split_at_checked(keep_idx) else {
            // No segment at all: nothing holds `offset`.
            return Err(Error::OffsetOutOfRange {
                offset,
                earliest,
                next: w.next_offset,
            });
        };
        let result = self.rewrite_prefix(w, target, offset, after);
        let new_segments: Vec<Arc<Segment>> = match result {
            Ok(seg) => {
                let mut list: Vec<_> = before.to_vec();
                list.push(seg);
                list
            }
            Err(e) => return Err(self.poison(e)),
        };
        *self.segments.write() = Arc::new(new_segments);
        // Everything kept is durable: earlier segments are sealed, and the
        // rewritten prefix was synced before it was renamed into place.
        let mut d = self.durable.lock();
        self.next_offset.store(offset, Ordering::Release);
        d.durable_offset = offset;
        d.truncations += 1;
        self.durable_hint.store(offset, Ordering::Release);
        // Waiters for removed offsets re-check against the new end.
        self.durable_cv.notify_all();
        Ok(())
    }

    /// Rewrites `target` keeping offsets below `offset` into a new file,
    /// deletes `later` segments and renames the new file into place; the
    /// result becomes the active segment.
    ///
    /// The steps are ordered so that a crash (or power loss) after any of them
    /// leaves a directory that opens and holds every record below `offset`
    /// unchanged, followed by a prefix of the records the truncate removes:
    /// the checkpoint goes first (it may describe a file about to change);
    /// later segments are deleted newest first, each deletion made durable
    /// before the next, so the log is always a prefix of itself ending in a
    /// valid segment; only then is the footer-less prefix renamed over
    /// `target`, now the last segment, where recovery expects an unsealed one.
    pub(super) fn rewrite_prefix(
        &self,
        w: &mut Writer,
        target: &Arc<Segment>,
        offset: u64,
        later: &[Arc<Segment>],
    ) -> Result<Arc<Segment>> {
        let view = target.view()?;
        let (mut expected, mut pos) = target.floor_for_offset(offset)?;
        // Walk to the cut. Only headers of batches wholly before it are read,
        // and the walk trusts the offset chain rather than the header at the
        // cut, so a damaged batch can be cut away.
        let mut cut_batch = None;
        while expected < offset && pos < view.committed_len {
            let region = committed_region(&view.map, pos, view.committed_len, &target.path)?;
            let h = batch::parse_header(region)
                .map_err(|e| Error::corrupted(&target.path, pos, e.to_string()))?;
            if h.next_offset() > offset {
                cut_batch = Some(parse_batch_at(
                    &view.map,
                    view.committed_len,
                    pos,
                    &target.path,
                )?);
                break;
            }
            pos += u64::from(h.length);
            expected = h.next_offset();
        }
        let mut prefix = view.map.slice(..pos as usize).to_vec();
        let mut encoder = BatchEncoder::default();
        if let Some(b) = cut_batch.filter(|b| b.header.base_offset < offset) {
            encoder.begin(
                b.header.base_offset,
                b.header.durable_offset.min(offset),
                b.header.appended_at,
            );
            for r in b.records().take_while(|r| r.offset < offset) {
                encoder.push(r.timestamp, r.value);
            }
            prefix.extend_from_slice(encoder.finish());
        }
        // Rebuild the index of the kept prefix (cheap, and exact).
        let mut builder = IndexBuilder::new(self.config.index_interval_bytes);
        let scan = segment::scan(&prefix, target.base, 0, target.base, &mut builder, true);
        debug_assert_eq!(scan.next_offset, offset);
        self.io.remove(&checkpoint::path(&self.dir))?;
        self.io.sync_dir(&self.dir)?;
        // A crash before the rename leaves this temporary file, which the
        // next open deletes.
        let tmp = target.path.with_extension("log.tmp");
        let file = self.io.open_rw(&tmp, true)?;
        self.io.set_len(&file, &tmp, 0)?;
        self.io.allocate(&file, &tmp, prefix.len().max(1) as u64)?;
        self.io.write_at(&file, &tmp, &prefix, 0)?;
        self.io.sync_data(&file, &tmp)?;
        for seg in later.iter().rev() {
            self.io.remove(&seg.path)?;
            self.io.remove(&segment::index_path(&self.dir, seg.base))?;
            self.io.sync_dir(&self.dir)?;
        }
        self.io.rename(&tmp, &target.path)?;
        // The old index describes the replaced file (a cache: harmless if a
        // crash leaves it, as no checkpoint names it).
        self.io
            .remove(&segment::index_path(&self.dir, target.base))?;
        self.io.sync_dir(&self.dir)?;
        let reserved = file
            .metadata()
            .map_err(|e| Error::io("stat", &target.path, e))?
            .len();
        let map = mmap::map_read_only(&file, &target.path, reserved, false)?;
        let seg = Arc::new(Segment::active(
            target.base,
            target.path.clone(),
            map,
            prefix.len() as u64,
            offset,
            builder,
        ));
        let file = Arc::new(file);
        *self.active_file.lock() = Some((file.clone(), seg.path.clone()));
        w.max_timestamp = seg.max_timestamp();
        w.segment = seg.clone();
        w.file = file;
        w.position = prefix.len() as u64;
        w.reserved = reserved;
        w.next_offset = offset;
        w.checkpointed_len = 0;
        w.index_file_len = 0;
        w.opened_at = Instant::now();
        Ok(seg)
    }

    pub(super) fn delete_segments_before(&self, offset: u64) -> Result<usize> {
        let _writer = self.writer.lock();
        let doomed: Vec<Arc<Segment>> = {
            let mut segs = self.segments.write();
            let (doomed, kept): (Vec<_>, Vec<_>) = segs
                .iter()
                .cloned()
                .partition(|s| s.is_sealed() && s.next_offset() <= offset);
            // Never leave a hole: only a prefix of the log may go.
            let prefix = segs
                .iter()
                .take_while(|s| s.is_sealed() && s.next_offset() <= offset)
                .count();
            if prefix != doomed.len() {
                return Err(Error::invalid(
                    "delete_segments_before",
                    "segments are not in order",
                ));
            }
            *segs = Arc::new(kept);
            doomed
        };
        for seg in &doomed {
            self.io.remove(&seg.path)?;
            self.io.remove(&segment::index_path(&self.dir, seg.base))?;
        }
        if !doomed.is_empty() {
            self.io.sync_dir(&self.dir)?;
        }
        Ok(doomed.len())
    }
}
