//! The partition log: one directory of segments with one writer and many readers.
//!
//! Owns appending (offset assignment, batch encoding, space reservation,
//! rolling), durability (the three [`Durability`] modes, group commit,
//! poisoning after a failed write or sync), recovery on open, truncation and
//! deletion of old segments, and reads by offset or time. It never interprets
//! record values: they are opaque bytes to it.

use std::fs::{self, File};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::error::{Error, Result};
use crate::storage::batch::BatchEncoder;
use crate::storage::io::Io;
use crate::storage::lock::DirLock;
use crate::storage::notify::AppendSignal;
use crate::storage::segment::{self, Segment};

mod append;
mod config;
mod durability;
mod flusher;
mod read;
mod recovery;
mod truncate;

pub use config::{Durability, LogConfig, RecoveryMode};
pub use read::{Batch, Batches, ReadLimit, Record, Records};
pub(crate) use recovery::{list_segment_bases, read_footer};

pub(crate) use append::AppendCeiling;
use append::create_segment;
use read::parse_batch_at;
pub use recovery::{RecoveryReport, Truncation};
use recovery::{Resume, recover, recover_read_only, remove_temporaries};

/// What one segment holds, for inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The segment file.
    pub path: PathBuf,
    /// First offset.
    pub base_offset: u64,
    /// One past the last offset.
    pub next_offset: u64,
    /// Bytes of batches.
    pub size_bytes: u64,
    /// Whether the segment is sealed (footer written).
    pub sealed: bool,
    /// Largest record timestamp (`None` when empty).
    pub max_timestamp: Option<i64>,
}

/// A partition log. `Send + Sync`: share it between threads (e.g. in an `Arc`).
///
/// Dropping a writable log closes it like [`Log::close`], ignoring errors.
#[derive(Debug)]
pub struct Log {
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    dir: PathBuf,
    config: LogConfig,
    io: Io,
    read_only: bool,
    segments: RwLock<Arc<Vec<Arc<Segment>>>>,
    writer: Mutex<Option<Writer>>,
    /// Active file and its path, for syncing without the writer mutex.
    active_file: Mutex<Option<(Arc<File>, PathBuf)>>,
    next_offset: AtomicU64,
    /// Mirror of `durable.durable_offset` for the append path's batch header.
    durable_hint: AtomicU64,
    /// Threads blocked in `wait_for`; appends notify only when there are some.
    waiters: AtomicU64,
    /// How long the last sync took, bounding the group-commit gather window.
    last_sync_nanos: AtomicU64,
    durable: Mutex<DurableState>,
    durable_cv: Condvar,
    poison: Mutex<Option<String>>,
    poisoned: AtomicBool,
    /// Set while something outside the log bounds its bytes (the remote
    /// warm tier's local-disk ceiling while uploads fail).
    /// `append_refused` is its lock-free fast-path flag.
    append_refusal: Mutex<Option<AppendCeiling>>,
    append_refused: AtomicBool,
    pub(crate) flush_scheduled: AtomicBool,
    crashed: AtomicBool,
    unsynced_bytes: AtomicU64,
    appended: Condvar,
    appended_lock: Mutex<()>,
    /// The topic-wide signal bumped after each append, when one is attached.
    append_signal: std::sync::OnceLock<Arc<AppendSignal>>,
    /// Read-only views: the active segment's file, held open so its inode
    /// cannot be reused by a file a truncate creates at the same path (which
    /// `Segment::extend_from_file` tells apart by inode).
    tail_pin: Mutex<Option<File>>,
    /// Read-only views: the last tail found not to be proven damage, as
    /// (inode, position, modification time), so that a tail that stays torn
    /// (a crashed writer not restarted yet) is not re-read on every refresh.
    tail_clean: Mutex<Option<(u64, u64, SystemTime)>>,
    report: RecoveryReport,
}

struct Writer {
    segment: Arc<Segment>,
    file: Arc<File>,
    position: u64,
    reserved: u64,
    next_offset: u64,
    max_timestamp: i64,
    opened_at: Instant,
    encoder: BatchEncoder,
    checkpointed_len: u64,
    /// Bytes of the active segment's index file already written.
    index_file_len: u64,
    /// `appended_at` of the last batch written (read from the log on the
    /// first append after open).
    last_appended_at: Option<i64>,
    _lock: DirLock,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("segment", &self.segment)
            .field("position", &self.position)
            .field("next_offset", &self.next_offset)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct DurableState {
    durable_offset: u64,
    syncing: bool,
    /// Bumped by every truncate: a sync that started before one may have
    /// covered offsets the truncate removed, so its result is not applied.
    truncations: u64,
}

/// Wall-clock now in µs since the Unix epoch (the unit of every record
/// timestamp); 0 if the clock reads before 1970. The crate's one reading of it.
pub(crate) use crate::clock::now_micros;

impl Log {
    /// Opens (creating if needed) the log in `dir` as its only writer,
    /// recovering from any crash: see `docs/FORMAT.md` for what is trusted,
    /// scanned and truncated.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        let lock = DirLock::acquire(&dir)?;
        let io = Io::new(config.faults());
        remove_temporaries(&io, &dir)?;
        let recovered = recover(&dir, &config, &io, true)?;
        let mut segments = recovered.segments;
        let resume = recovered.resume;
        let (active, file, position, reserved) = match recovered.active {
            Some(a) => {
                segments.push(a.0.clone());
                a
            }
            None => {
                let base = segments.last().map_or(0, |s| s.next_offset());
                let (seg, file) = create_segment(&io, &dir, base, config.index_interval_bytes)?;
                segments.push(seg.clone());
                (seg, file, 0, 0)
            }
        };
        let next_offset = active.next_offset();
        // Only the checkpointed prefix is known to be on disk; what recovery
        // kept past it may still sit in the page cache after a process crash.
        let Resume {
            checkpointed_len,
            durable_offset,
            index_file_len,
        } = resume.unwrap_or(Resume::nothing(active.base));
        let file = Arc::new(file);
        let writer = Writer {
            max_timestamp: active.max_timestamp(),
            segment: active.clone(),
            file: file.clone(),
            position,
            reserved,
            next_offset,
            opened_at: Instant::now(),
            encoder: BatchEncoder::default(),
            checkpointed_len,
            index_file_len,
            last_appended_at: None,
            _lock: lock,
        };
        let shared = Shared::new(dir, config, io, false, segments, recovered.report);
        *shared.writer.lock() = Some(writer);
        *shared.active_file.lock() = Some((file, active.path.clone()));
        shared.next_offset.store(next_offset, Ordering::Release);
        // What recovery kept is what is on disk now: durable by definition,
        // except in the active segment past the last sync, which we cannot know.
        shared.durable.lock().durable_offset = durable_offset;
        shared.durable_hint.store(durable_offset, Ordering::Release);
        Ok(Log {
            shared: Arc::new(shared),
        })
    }

    /// Opens the log in `dir` for reading only, alongside a writer in this or
    /// another process. Never writes, truncates or repairs anything: an
    /// incomplete batch at the tail (being written, or torn by a crash) is
    /// where this view ends, while damage in data proven synced is
    /// [`Error::Corrupted`] naming file and byte. Call [`Log::refresh`] to see
    /// what the writer appended since.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Log> {
        let dir = dir.as_ref().to_path_buf();
        let config = LogConfig::default();
        let io = Io::new(None);
        if !dir.is_dir() {
            return Err(Error::io(
                "open",
                &dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such log directory"),
            ));
        }
        let recovered = recover_read_only(&dir, &config, &io)?;
        let mut segments = recovered.segments;
        let mut pin = None;
        if let Some((active, file, ..)) = recovered.active {
            segments.push(active);
            pin = Some(file);
        }
        let next = segments.last().map_or(0, |s| s.next_offset());
        let shared = Shared::new(dir, config, io, true, segments, recovered.report);
        shared.next_offset.store(next, Ordering::Release);
        *shared.tail_pin.lock() = pin;
        Ok(Log {
            shared: Arc::new(shared),
        })
    }

    /// The directory this log owns.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The settings in force.
    pub fn config(&self) -> &LogConfig {
        &self.shared.config
    }

    /// What recovery did when this log was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.shared.report
    }

    /// The offset the next appended record will get.
    pub fn next_offset(&self) -> u64 {
        self.shared.next_offset.load(Ordering::Acquire)
    }

    /// The earliest offset still held.
    pub fn earliest_offset(&self) -> u64 {
        self.shared.segments().first().map_or(0, |s| s.base)
    }

    /// Every offset below this one is known to be on stable storage.
    pub fn durable_offset(&self) -> u64 {
        self.shared.durable.lock().durable_offset
    }

    /// From now on refuses every append that would take the log's bytes past
    /// `ceiling` ([`Error::LocalDiskCeiling`]), or (`None`) accepts them again.
    #[cfg_attr(
        not(feature = "tier-s3"),
        expect(
            dead_code,
            reason = "only the object-store warm tier (feature tier-s3) uses it"
        )
    )]
    pub(crate) fn refuse_appends(&self, ceiling: Option<AppendCeiling>) {
        let refused = ceiling.is_some();
        *self.shared.append_refusal.lock() = ceiling;
        self.shared.append_refused.store(refused, Ordering::Release);
    }

    /// Whether a failed write or sync has poisoned the log.
    pub fn is_poisoned(&self) -> bool {
        self.shared.poisoned.load(Ordering::Acquire)
    }

    /// Appends one record stamped with the current time; returns its offset.
    pub fn append(&self, value: &[u8]) -> Result<u64> {
        Ok(self.append_batch(&[value])?.start)
    }

    /// Appends records stamped with the current time as one atomic batch:
    /// readers see all of them or none. Returns the offsets assigned.
    pub fn append_batch<V: AsRef<[u8]>>(&self, values: &[V]) -> Result<Range<u64>> {
        let ts = now_micros();
        self.shared
            .append(values.len(), values.iter().map(|v| (ts, v.as_ref())))
            .map(|(offsets, _)| offsets)
    }

    /// Appends `(timestamp in µs since the epoch, value)` pairs as one atomic batch.
    pub fn append_batch_with_timestamps<V: AsRef<[u8]>>(
        &self,
        records: &[(i64, V)],
    ) -> Result<Range<u64>> {
        self.append_stamped(records).map(|(offsets, _)| offsets)
    }

    /// [`Log::append_batch_with_timestamps`], also returning the batch's
    /// `appended_at`: the log's wall clock when it wrote the batch (µs since
    /// the epoch, never below the previous batch's), which the dedup window
    /// is measured on.
    pub fn append_stamped<V: AsRef<[u8]>>(
        &self,
        records: &[(i64, V)],
    ) -> Result<(Range<u64>, i64)> {
        self.shared
            .append(records.len(), records.iter().map(|(t, v)| (*t, v.as_ref())))
    }

    /// Makes everything appended so far durable (one `fdatasync`, shared with
    /// concurrent callers) and refreshes the recovery checkpoint if due.
    pub fn flush(&self) -> Result<()> {
        self.shared.check_writable("flush")?;
        let target = self.next_offset();
        self.shared.wait_durable(target)?;
        self.shared.checkpoint_if_due(false)
    }

    /// Seals the active segment and starts a new one (a no-op when it is empty).
    pub fn roll(&self) -> Result<()> {
        self.shared.check_writable("roll")?;
        let mut guard = self.shared.writer.lock();
        let w = self.shared.writer_mut(&mut guard)?;
        if w.position > 0 {
            self.shared.roll(w)?;
        }
        Ok(())
    }

    /// Test support: drops the handle the way a killed process would, with no
    /// final sync and no checkpoint, releasing the directory lock.
    #[doc(hidden)]
    #[cfg(any(test, feature = "failpoints"))]
    pub fn simulate_crash(self) {
        self.shared.crashed.store(true, Ordering::Release);
        *self.shared.writer.lock() = None;
        *self.shared.active_file.lock() = None;
    }

    /// Flushes, writes the recovery checkpoint and releases the writer lock.
    /// Readers created from this log keep working.
    pub fn close(self) -> Result<()> {
        self.shared.close()
    }

    /// Reads records from `from` on, within `limit`. An empty vector means
    /// `from` is the end of the log. Each batch's CRC is verified the first
    /// time this process reads it; later point reads of it skip the check.
    pub fn read(&self, from: u64, limit: ReadLimit) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for batch in Batches::new(self.shared.clone(), from, false)? {
            let batch = batch?;
            for r in batch.records() {
                if out.len() >= limit.max_records
                    || (!out.is_empty() && bytes.saturating_add(r.value.len()) > limit.max_bytes)
                {
                    return Ok(out);
                }
                bytes += r.value.len();
                out.push(batch.record(r));
            }
        }
        Ok(out)
    }

    /// Iterates over batches from the one holding `from`; records before
    /// `from` are skipped by [`Batch::records`]. Each batch's CRC is verified.
    /// The iterator ends at the current end of the log and can be polled
    /// again later to pick up new batches.
    pub fn batches(&self, from: u64) -> Result<Batches> {
        Batches::new(self.shared.clone(), from, true)
    }

    /// Iterates over records from `from` (see [`Log::batches`]).
    pub fn iter(&self, from: u64) -> Result<Records> {
        Ok(Records {
            batches: self.batches(from)?,
            current: None,
        })
    }

    /// The first offset whose record timestamp is at or after `timestamp`
    /// (µs since the epoch), or `None` if no record is that recent.
    pub fn offset_for_time(&self, timestamp: i64) -> Result<Option<u64>> {
        for seg in self.shared.segments().iter() {
            if seg.next_offset() == seg.base || seg.max_timestamp() < timestamp {
                continue;
            }
            let start = seg.position_for_time(timestamp)?;
            let view = seg.view()?;
            let mut pos = start;
            while pos < view.committed_len {
                let b = parse_batch_at(&view.map, view.committed_len, pos, &seg.path)?;
                if b.header.max_timestamp >= timestamp
                    && let Some(r) = b.records().find(|r| r.timestamp >= timestamp)
                {
                    return Ok(Some(r.offset));
                }
                pos += u64::from(b.header.length);
            }
        }
        Ok(None)
    }

    /// Removes every record at or after `offset` (a repair). The segment that
    /// holds `offset` is rewritten into a new file holding the kept prefix;
    /// later segments are deleted, newest first, and then the new file is
    /// renamed into place, so readers still mapping the old files are safe and
    /// a crash at any step leaves a log that opens with every record below
    /// `offset` intact. Threads waiting for the removed records to become
    /// durable return.
    pub fn truncate(&self, offset: u64) -> Result<()> {
        self.shared.check_writable("truncate")?;
        self.shared.truncate(offset)
    }

    /// Deletes sealed segments whose records all lie below `offset`; never the
    /// active segment. Readers that still map a deleted file keep reading it.
    /// Returns how many segments were deleted.
    pub fn delete_segments_before(&self, offset: u64) -> Result<usize> {
        self.shared.check_writable("delete segments")?;
        self.shared.delete_segments_before(offset)
    }

    /// The segment handles, oldest first (a cheap snapshot for tiering).
    pub(crate) fn segment_handles(&self) -> Arc<Vec<Arc<Segment>>> {
        self.shared.segments()
    }

    /// Takes the sealed segments whose records all lie below `offset` out of
    /// the log (a prefix, never the active segment) under the writer lock, and
    /// returns their `(segment, index)` files for the caller to delete outside
    /// any lock. Readers that already hold one of them keep reading it.
    pub(crate) fn detach_sealed_before(&self, offset: u64) -> Result<Vec<(PathBuf, PathBuf)>> {
        self.shared.check_writable("detach segments")?;
        let _writer = self.shared.writer.lock();
        let mut segs = self.shared.segments.write();
        let count = segs
            .iter()
            .take_while(|s| s.is_sealed() && s.next_offset() <= offset)
            .count()
            .min(segs.len().saturating_sub(1));
        // `count` is at most `len - 1` (the active segment stays).
        let (detached, kept) = segs
            .split_at_checked(count)
            .unwrap_or((&[], segs.as_slice()));
        let doomed: Vec<(PathBuf, PathBuf)> = detached
            .iter()
            .map(|s| {
                (
                    s.path.clone(),
                    segment::index_path(&self.shared.dir, s.base),
                )
            })
            .collect();
        let kept = kept.to_vec();
        *segs = Arc::new(kept);
        Ok(doomed)
    }

    /// The segments, oldest first.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.shared
            .segments()
            .iter()
            .map(|s| SegmentInfo {
                path: s.path.clone(),
                base_offset: s.base,
                next_offset: s.next_offset(),
                size_bytes: s.committed_len(),
                sealed: s.is_sealed(),
                max_timestamp: (s.next_offset() > s.base).then(|| s.max_timestamp()),
            })
            .collect()
    }

    /// For a read-only log: picks up what the writer appended, rolled or
    /// deleted since the last look. A no-op for the writer's own handle.
    pub fn refresh(&self) -> Result<()> {
        if !self.shared.read_only {
            return Ok(());
        }
        self.shared.refresh()
    }

    /// Attaches the signal this log bumps after every append (a reader's
    /// refresh that finds new records bumps it too). Set once per log.
    pub(crate) fn attach_append_signal(&self, signal: Arc<AppendSignal>) {
        let _ = self.shared.append_signal.set(signal);
    }

    /// Blocks until the log holds an offset at or above `offset` or `timeout`
    /// passes; returns whether it does. Wakes on appends of this handle's
    /// writer (no polling).
    pub fn wait_for(&self, offset: u64, timeout: Duration) -> bool {
        let deadline = crate::clock::deadline(Instant::now(), timeout);
        let mut guard = self.shared.appended_lock.lock();
        self.shared.waiters.fetch_add(1, Ordering::SeqCst);
        let reached = loop {
            if self.next_offset() > offset {
                break true;
            }
            if self
                .shared
                .appended
                .wait_until(&mut guard, deadline)
                .timed_out()
            {
                break self.next_offset() > offset;
            }
        };
        self.shared.waiters.fetch_sub(1, Ordering::AcqRel);
        reached
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        if !self.shared.read_only && !self.shared.crashed.load(Ordering::Acquire) {
            let _ = self.shared.close();
        }
    }
}

impl Shared {
    fn new(
        dir: PathBuf,
        config: LogConfig,
        io: Io,
        read_only: bool,
        segments: Vec<Arc<Segment>>,
        report: RecoveryReport,
    ) -> Shared {
        Shared {
            dir,
            config,
            io,
            read_only,
            segments: RwLock::new(Arc::new(segments)),
            writer: Mutex::new(None),
            active_file: Mutex::new(None),
            next_offset: AtomicU64::new(0),
            durable_hint: AtomicU64::new(0),
            waiters: AtomicU64::new(0),
            last_sync_nanos: AtomicU64::new(0),
            durable: Mutex::new(DurableState {
                durable_offset: 0,
                syncing: false,
                truncations: 0,
            }),
            durable_cv: Condvar::new(),
            poison: Mutex::new(None),
            poisoned: AtomicBool::new(false),
            append_refusal: Mutex::new(None),
            append_refused: AtomicBool::new(false),
            flush_scheduled: AtomicBool::new(false),
            crashed: AtomicBool::new(false),
            unsynced_bytes: AtomicU64::new(0),
            appended: Condvar::new(),
            appended_lock: Mutex::new(()),
            append_signal: std::sync::OnceLock::new(),
            tail_pin: Mutex::new(None),
            tail_clean: Mutex::new(None),
            report,
        }
    }

    pub(crate) fn segments(&self) -> Arc<Vec<Arc<Segment>>> {
        self.segments.read().clone()
    }

    fn check_writable(&self, op: &'static str) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly {
                path: self.dir.clone(),
                op,
            });
        }
        self.check_poison()
    }

    fn check_poison(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned {
                path: self.dir.clone(),
                cause: self.poison.lock().clone().unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// Records that `err` from `op` leaves the files in an unknown state.
    fn poison(&self, err: Error) -> Error {
        {
            let mut p = self.poison.lock();
            if p.is_none() {
                *p = Some(err.to_string());
            }
        }
        self.poisoned.store(true, Ordering::Release);
        let _guard = self.durable.lock();
        self.durable_cv.notify_all();
        err
    }

    fn writer_mut<'a>(&self, guard: &'a mut Option<Writer>) -> Result<&'a mut Writer> {
        guard.as_mut().ok_or_else(|| Error::ReadOnly {
            path: self.dir.clone(),
            op: "write after close",
        })
    }
}
