//! Durability: syncing, group commit, checkpoints and a clean close.
//!
//! Owns when appended bytes become durable (the three `Durability` modes),
//! the background flush the group-commit flusher asks for, and the
//! checkpoint that bounds recovery. It never encodes or appends batches.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::storage::checkpoint::Checkpoint;
use crate::storage::segment::{self, FOOTER_LEN};

use super::{DurableState, Shared, flusher};

impl Shared {
    /// Waits until offsets below `target` are durable, syncing if no one else is.
    ///
    /// A truncate may remove offsets below `target` while this waits: only
    /// offsets the log still holds can become durable, so the wait ends once
    /// everything below `min(target, next offset)` is (the records a repair
    /// removed are gone, whether or not their sync had completed).
    pub(super) fn wait_durable(&self, target: u64) -> Result<()> {
        let mut d = self.durable.lock();
        loop {
            self.check_poison()?;
            // Truncate lowers `next_offset` under this lock.
            let target = target.min(self.next_offset.load(Ordering::Acquire));
            if d.durable_offset >= target {
                return Ok(());
            }
            if d.syncing {
                self.durable_cv.wait(&mut d);
                continue;
            }
            d.syncing = true;
            let truncations = d.truncations;
            drop(d);
            self.gather_concurrent_appends();
            let started = Instant::now();
            let result = self.sync_active();
            self.last_sync_nanos
                .store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            d = self.durable.lock();
            d.syncing = false;
            match result {
                // A truncate during the sync: `upto` may name removed offsets
                // (and the file synced may be the replaced one); the truncate
                // itself set what is durable.
                Ok(_) if d.truncations != truncations => {}
                Ok(upto) => self.advance_durable(&mut d, upto),
                Err(e) => {
                    self.durable_cv.notify_all();
                    drop(d);
                    return Err(self.poison(e));
                }
            }
            self.durable_cv.notify_all();
        }
    }

    /// Before a sync: while other appenders are still landing batches, give
    /// them a moment so this one sync covers them too instead of each waiting
    /// for the next. The window is bounded by a quarter of the last sync's
    /// duration (so it never costs more than batching saves) and 250 µs; a
    /// lone appender sees no new batch on the first looks and goes straight on.
    pub(super) fn gather_concurrent_appends(&self) {
        let last_sync = Duration::from_nanos(self.last_sync_nanos.load(Ordering::Relaxed));
        let window = (last_sync / 4).min(Duration::from_micros(250));
        let deadline = crate::clock::deadline(Instant::now(), window);
        let mut seen = self.next_offset.load(Ordering::Acquire);
        let mut quiet = 0;
        while quiet < 3 && Instant::now() < deadline {
            std::thread::yield_now();
            let now = self.next_offset.load(Ordering::Acquire);
            if now == seen {
                quiet += 1;
            } else {
                quiet = 0;
                seen = now;
            }
        }
    }

    pub(super) fn advance_durable(&self, d: &mut DurableState, upto: u64) {
        d.durable_offset = d.durable_offset.max(upto);
        self.durable_hint.store(d.durable_offset, Ordering::Release);
    }

    /// Syncs the active file; returns the offset below which all is durable.
    pub(super) fn sync_active(&self) -> Result<u64> {
        // Read the offset before the file: if a roll happens in between, the
        // sealed segment was synced by the roll, so the claim still holds.
        let upto = self.next_offset.load(Ordering::Acquire);
        self.unsynced_bytes.store(0, Ordering::Release);
        let active = self.active_file.lock().clone();
        if let Some((file, path)) = active {
            self.io.sync_data(&file, &path)?;
        }
        Ok(upto)
    }

    /// Writes the active segment's checkpoint if enough was synced since the
    /// last one (or always, when `force`). Runs under the writer lock so it
    /// cannot interleave with a roll.
    pub(super) fn checkpoint_if_due(&self, force: bool) -> Result<()> {
        let mut guard = self.writer.lock();
        let Some(w) = guard.as_mut() else {
            return Ok(());
        };
        let grown = w.position - w.checkpointed_len;
        if grown == 0 || (!force && grown < self.config.checkpoint_interval_bytes) {
            return Ok(());
        }
        self.io
            .sync_data(&w.file, &w.segment.path)
            .map_err(|e| self.poison(e))?;
        let index = w.segment.index_bytes()?;
        let ipath = segment::index_path(&self.dir, w.segment.base);
        // The index file only grows while its segment is active: append the
        // new entries in place. The checkpoint names the prefix it covers by
        // length and CRC, so an older checkpoint stays valid against a longer
        // file, and losing the checkpoint's rename (no directory sync) only
        // means recovery starts from the previous checkpoint. A file written
        // from byte 0 may just have been created: its directory entry is
        // made durable before a checkpoint names it (else a power loss could
        // keep the checkpoint and lose the index, costing a scan from 0).
        let result = self
            .io
            .open_rw(&ipath, true)
            .and_then(|file| {
                let from = w.index_file_len.min(index.len() as u64);
                self.io.write_at(
                    &file,
                    &ipath,
                    index.get(from as usize..).unwrap_or_default(),
                    from,
                )?;
                self.io.sync_data(&file, &ipath)?;
                if from == 0 {
                    self.io.sync_dir(&self.dir)?;
                }
                Ok(())
            })
            .and_then(|()| {
                Checkpoint {
                    segment_base: w.segment.base,
                    trusted_len: w.position,
                    next_offset: w.next_offset,
                    max_timestamp: w.max_timestamp,
                    index_len: index.len() as u32,
                    index_crc: crc32fast::hash(&index),
                }
                .store(&self.io, &self.dir)
            });
        result.map_err(|e| self.poison(e))?;
        w.index_file_len = index.len() as u64;
        w.checkpointed_len = w.position;
        let mut d = self.durable.lock();
        self.advance_durable(&mut d, w.next_offset);
        Ok(())
    }

    pub(super) fn close(&self) -> Result<()> {
        if self.read_only || self.writer.lock().is_none() {
            return Ok(());
        }
        let result = if self.poisoned.load(Ordering::Acquire) {
            self.check_poison()
        } else {
            let target = self.next_offset.load(Ordering::Acquire);
            self.wait_durable(target)
                .and_then(|()| self.checkpoint_if_due(true))
                .and_then(|()| self.trim_reserved())
        };
        *self.writer.lock() = None;
        *self.active_file.lock() = None;
        result
    }

    /// On a clean close, gives back most of the reserved space so the next
    /// open has almost nothing past the data to check. Keeps the page that
    /// holds the next header position whole, so a reader in another process
    /// that looks for a new batch there never touches a page past the end
    /// (mmap invariant 1).
    pub(super) fn trim_reserved(&self) -> Result<()> {
        let mut guard = self.writer.lock();
        let Some(w) = guard.as_mut() else {
            return Ok(());
        };
        let keep = (w.position + FOOTER_LEN as u64).next_multiple_of(4096);
        if keep < w.reserved {
            self.io.set_len(&w.file, &w.segment.path, keep)?;
            self.io.sync_all(&w.file, &w.segment.path)?;
            w.reserved = keep;
        }
        Ok(())
    }
}

impl flusher::BackgroundFlush for Shared {
    /// Called by the background flusher for `GroupCommit` logs.
    fn background_flush(&self) {
        self.flush_scheduled.store(false, Ordering::Release);
        if self.read_only
            || self.poisoned.load(Ordering::Acquire)
            || self.crashed.load(Ordering::Acquire)
        {
            return;
        }
        let target = self.next_offset.load(Ordering::Acquire);
        if self.wait_durable(target).is_ok() {
            let _ = self.checkpoint_if_due(false);
        }
    }
}
