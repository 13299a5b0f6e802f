//! Appending: offset assignment, batch encoding, space reservation, rolling
//! and sealing segments.
//!
//! Owns the writer's path from values to bytes in the active segment. It
//! never waits for durability itself (that is `durability.rs`) and never
//! interprets a value.

use std::fs::File;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::storage::batch;
use crate::storage::index::IndexBuilder;
use crate::storage::io::Io;
use crate::storage::mmap;
use crate::storage::segment::{self, FOOTER_LEN, Footer, Segment};

use super::read::Batches;
use super::{Durability, Shared, Writer, flusher, now_micros};

/// A bound on a log's local bytes set from outside the log (the remote warm
/// tier's local-disk ceiling while uploads fail). The log's bytes are a
/// cached count: what they were when the bound was (re)armed, plus every
/// batch admitted since, so an append costs no syscall.
#[derive(Debug, Clone)]
#[cfg_attr(
    not(feature = "tier-s3"),
    expect(
        dead_code,
        reason = "only the object-store warm tier (feature tier-s3) arms it"
    )
)]
pub(crate) struct AppendCeiling {
    /// Topic and partition, for the error.
    pub(crate) topic: String,
    /// See `topic`.
    pub(crate) partition: u32,
    /// The log's bytes (segment files) when the bound was armed.
    pub(crate) held_bytes: u64,
    /// Encoded bytes of the batches admitted since.
    pub(crate) admitted_bytes: u64,
    /// The bound.
    pub(crate) limit: u64,
    /// Why the bound is armed (the last upload failure).
    pub(crate) cause: String,
}

impl AppendCeiling {
    /// Counts a batch of `encoded` bytes in, or refuses it
    /// ([`Error::LocalDiskCeiling`]) when it would pass the bound.
    fn admit(&mut self, encoded: u64) -> Result<()> {
        let would = self
            .held_bytes
            .saturating_add(self.admitted_bytes)
            .saturating_add(encoded);
        if would > self.limit {
            return Err(Error::LocalDiskCeiling {
                topic: self.topic.clone(),
                partition: self.partition,
                local_bytes: would,
                ceiling: self.limit,
                cause: self.cause.clone(),
            });
        }
        self.admitted_bytes = self.admitted_bytes.saturating_add(encoded);
        Ok(())
    }
}

impl Shared {
    /// The `appended_at` of the next batch: the wall clock, but never below
    /// the previous batch's, so append times never decrease within a log
    /// (the dedup rebuild binary-searches them).
    pub(super) fn next_appended_at(self: &Arc<Self>, w: &mut Writer) -> i64 {
        let last = match w.last_appended_at {
            Some(t) => t,
            None => {
                let earliest = self.segments().first().map_or(w.next_offset, |s| s.base);
                let last = if w.next_offset > earliest {
                    Batches::new(self.clone(), w.next_offset - 1, false)
                        .and_then(|mut b| b.next().transpose())
                } else {
                    Ok(None)
                };
                // The clamp is a guard against the clock stepping back: a
                // last batch that cannot be read (damage in a sealed segment,
                // which open trusts) must not fail this append.
                let t = match last {
                    Ok(b) => b.and_then(|b| b.header.appended_at).unwrap_or(i64::MIN),
                    Err(e) => {
                        log::warn!(
                            "{}: last batch's append time unreadable: {e}",
                            self.dir.display()
                        );
                        i64::MIN
                    }
                };
                w.last_appended_at = Some(t);
                t
            }
        };
        now_micros().max(last)
    }

    pub(super) fn append<'v>(
        self: &Arc<Self>,
        count: usize,
        records: impl Iterator<Item = (i64, &'v [u8])> + Clone,
    ) -> Result<(Range<u64>, i64)> {
        self.check_writable("append")?;
        let started = Instant::now();
        if count == 0 {
            let next = self.next_offset.load(Ordering::Acquire);
            return Ok((next..next, now_micros()));
        }
        let mut encoded = batch::HEADER_LEN;
        for (_, v) in records.clone() {
            if v.len() > self.config.max_record_bytes {
                return Err(Error::RecordTooLarge {
                    size: v.len(),
                    max: self.config.max_record_bytes,
                });
            }
            encoded += v.len() + batch::RECORD_OVERHEAD;
        }
        if encoded > self.config.max_batch_bytes {
            return Err(Error::BatchTooLarge {
                size: encoded,
                max: self.config.max_batch_bytes,
            });
        }
        if self.append_refused.load(Ordering::Acquire)
            && let Some(ceiling) = self.append_refusal.lock().as_mut()
        {
            ceiling.admit(encoded as u64)?;
        }
        let (range, appended_at) = {
            let mut guard = self.writer.lock();
            let w = self.writer_mut(&mut guard)?;
            self.check_poison()?;
            // Offsets stay below u64::MAX (a batch may not end there), so
            // "one past the last offset" always exists.
            if w.next_offset
                .checked_add(count as u64)
                .is_none_or(|end| end == u64::MAX)
            {
                return Err(Error::invalid(
                    "offset",
                    format!(
                        "appending {count} records at offset {} would pass the largest offset",
                        w.next_offset
                    ),
                ));
            }
            let too_big = w.position + encoded as u64 > self.config.segment_bytes;
            let too_old = self
                .config
                .segment_max_age
                .is_some_and(|age| w.opened_at.elapsed() >= age);
            if w.position > 0 && (too_big || too_old) {
                self.roll(w)?;
            }
            let durable = self.durable_hint.load(Ordering::Acquire);
            let appended_at = self.next_appended_at(w);
            w.encoder
                .begin_with_count(w.next_offset, durable, Some(appended_at), count);
            w.encoder.reserve(encoded);
            for (ts, v) in records {
                w.encoder.push(ts, v);
            }
            let max_ts = w.encoder.max_timestamp();
            let end = w.position + encoded as u64;
            self.reserve(w, end)?;
            let bytes = w.encoder.finish();
            debug_assert_eq!(bytes.len(), encoded);
            if let Err(e) = self
                .io
                .write_at(&w.file, &w.segment.path, bytes, w.position)
            {
                return Err(self.poison(e));
            }
            let start = w.next_offset;
            w.last_appended_at = Some(appended_at);
            w.segment
                .index_batch((start - w.segment.base) as u32, w.position as u32, max_ts);
            w.position = end;
            w.next_offset += count as u64;
            w.max_timestamp = w.max_timestamp.max(max_ts);
            w.segment.publish(end, w.next_offset, max_ts);
            self.next_offset.store(w.next_offset, Ordering::Release);
            (start..w.next_offset, appended_at)
        };
        self.notify_appended();
        match self.config.durability {
            Durability::Always => {
                self.wait_durable(range.end)?;
                self.checkpoint_if_due(false)?;
            }
            Durability::GroupCommit {
                max_delay,
                max_bytes,
            } => {
                let before = self
                    .unsynced_bytes
                    .fetch_add(encoded as u64, Ordering::AcqRel);
                if before < max_bytes && before + encoded as u64 >= max_bytes {
                    flusher::schedule(self, Instant::now());
                } else if !self.flush_scheduled.swap(true, Ordering::AcqRel) {
                    flusher::schedule(self, crate::clock::deadline(Instant::now(), max_delay));
                }
            }
            Durability::Os => {}
        }
        crate::observe::appended(count, encoded, started.elapsed());
        Ok((range, appended_at))
    }

    /// Makes sure the active file has disk space reserved up to `end` and a
    /// map covering it, growing in doubling steps up to `preallocate_bytes`.
    pub(super) fn reserve(&self, w: &mut Writer, end: u64) -> Result<()> {
        if end <= w.reserved {
            return Ok(());
        }
        let step = w
            .reserved
            .max(64 << 10)
            .min(self.config.preallocate_bytes.max(64 << 10));
        let cap = self.config.segment_bytes.max(end);
        let target = (w.reserved + step).max(end).min(cap);
        self.io.allocate(&w.file, &w.segment.path, target)?;
        let map = mmap::map_read_only(&w.file, &w.segment.path, target, false)?;
        w.segment.set_map(map);
        w.reserved = target;
        Ok(())
    }

    /// Seals the active segment (index file, footer, sync, trim) and starts the next.
    pub(super) fn roll(&self, w: &mut Writer) -> Result<()> {
        self.seal_active(w).map_err(|e| self.poison(e))?;
        let (seg, file) = create_segment(
            &self.io,
            &self.dir,
            w.next_offset,
            self.config.index_interval_bytes,
        )
        .map_err(|e| self.poison(e))?;
        let file = Arc::new(file);
        {
            let mut segs = self.segments.write();
            let mut list = Vec::clone(&segs);
            list.push(seg.clone());
            *segs = Arc::new(list);
        }
        *self.active_file.lock() = Some((file.clone(), seg.path.clone()));
        w.segment = seg;
        w.file = file;
        w.position = 0;
        w.reserved = 0;
        w.max_timestamp = i64::MIN;
        w.opened_at = Instant::now();
        w.checkpointed_len = 0;
        w.index_file_len = 0;
        let mut d = self.durable.lock();
        self.advance_durable(&mut d, w.next_offset);
        self.durable_cv.notify_all();
        Ok(())
    }

    pub(super) fn seal_active(&self, w: &mut Writer) -> Result<()> {
        let seg = &w.segment;
        let index = seg.index_bytes()?;
        let ipath = segment::index_path(&self.dir, seg.base);
        self.io.write_file_atomic(&self.dir, &ipath, &index)?;
        let footer = Footer {
            base_offset: seg.base,
            last_offset: w.next_offset - 1,
            data_len: w.position,
            max_timestamp: w.max_timestamp,
            index_crc: crc32fast::hash(&index),
            index_len: index.len() as u32,
        };
        self.io
            .write_at(&w.file, &seg.path, &footer.encode(), w.position)?;
        self.io.sync_data(&w.file, &seg.path)?;
        // Trimming only removes reserved space past the footer, which no
        // reader ever touches (mmap invariant 1).
        let len = w.position + FOOTER_LEN as u64;
        self.io.set_len(&w.file, &seg.path, len)?;
        self.io.sync_all(&w.file, &seg.path)?;
        seg.seal();
        Ok(())
    }
}

pub(super) fn create_segment(
    io: &Io,
    dir: &Path,
    base: u64,
    interval: u32,
) -> Result<(Arc<Segment>, File)> {
    let path = segment::segment_path(dir, base);
    let file = io.open_rw(&path, true)?;
    io.sync_dir(dir)?;
    let seg = Segment::active(
        base,
        path,
        Bytes::new(),
        0,
        base,
        IndexBuilder::new(interval),
    );
    Ok((Arc::new(seg), file))
}
