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

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};

use crate::error::{Error, Result};
use crate::storage::batch::{self, BatchEncoder, BatchHeader, BatchView, RecordRef};
use crate::storage::checkpoint::{self, Checkpoint};
mod flusher;
use crate::storage::index::IndexBuilder;
use crate::storage::io::{FaultInjector, Io};
use crate::storage::lock::DirLock;
use crate::storage::mmap;
use crate::storage::notify::AppendSignal;
use crate::storage::segment::{self, FOOTER_LEN, Footer, Segment};

/// When an append counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// `append` returns only once the batch is on stable storage (`fdatasync`).
    /// Concurrent appenders share syncs: one sync covers every batch written
    /// before it started. Survives a process crash and a power loss.
    Always,
    /// `append` returns once the batch is in the page cache; a sync covering it
    /// is issued at most `max_delay` later, or as soon as `max_bytes` are
    /// unsynced. Survives a process crash; a power loss can lose at most the
    /// last `max_delay` / `max_bytes` of appends.
    GroupCommit {
        /// Longest time an appended batch stays unsynced.
        max_delay: Duration,
        /// Unsynced bytes that trigger a sync right away.
        max_bytes: u64,
    },
    /// The kernel writes back when it likes; only [`Log::flush`], segment rolls
    /// and [`Log::close`] sync. Survives a process crash; a power loss can lose
    /// everything appended since the last of those.
    Os,
}

impl Default for Durability {
    fn default() -> Self {
        Durability::GroupCommit {
            max_delay: Duration::from_millis(10),
            max_bytes: 4 << 20,
        }
    }
}

/// How recovery treats damage it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RecoveryMode {
    /// Truncate a torn or zeroed tail of unsynced data; refuse to open (with
    /// [`Error::Corrupted`]) when damage sits in data that was already durable.
    #[default]
    TruncateTornTail,
    /// Also truncate at corruption: everything from the first damaged batch
    /// on is removed (and reported). For explicit repair only.
    TruncateAtFirstDamage,
}

/// Settings of one partition log.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LogConfig {
    /// Roll to a new segment once the active one would exceed this size.
    pub segment_bytes: u64,
    /// Roll a non-empty active segment once it is older than this.
    pub segment_max_age: Option<Duration>,
    /// When appends count as done.
    pub durability: Durability,
    /// Largest single record value accepted (default 1 MiB).
    pub max_record_bytes: usize,
    /// Largest encoded batch accepted (default 64 MiB).
    pub max_batch_bytes: usize,
    /// Log bytes between sparse index entries (default 4 KiB).
    pub index_interval_bytes: u32,
    /// Largest step by which the active segment's disk space is reserved ahead
    /// of the writer (default 8 MiB; steps start at 64 KiB and double).
    pub preallocate_bytes: u64,
    /// Synced bytes after which the active segment's checkpoint is refreshed,
    /// bounding how much recovery has to scan (default 32 MiB).
    pub checkpoint_interval_bytes: u64,
    /// What recovery does with damage.
    pub recovery: RecoveryMode,
    /// Test hook (feature `failpoints`): fail chosen file operations.
    #[cfg(feature = "failpoints")]
    pub fault_injector: Option<Arc<dyn FaultInjector>>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 256 << 20,
            segment_max_age: None,
            durability: Durability::default(),
            max_record_bytes: 1 << 20,
            max_batch_bytes: 64 << 20,
            index_interval_bytes: 4096,
            preallocate_bytes: 8 << 20,
            checkpoint_interval_bytes: 32 << 20,
            recovery: RecoveryMode::default(),
            #[cfg(feature = "failpoints")]
            fault_injector: None,
        }
    }
}

impl LogConfig {
    /// The faults to inject into this log's file operations (a test seam,
    /// compiled in with the `failpoints` feature only).
    pub(crate) fn faults(&self) -> Option<Arc<dyn FaultInjector>> {
        #[cfg(feature = "failpoints")]
        return self.fault_injector.clone();
        #[cfg(not(feature = "failpoints"))]
        None
    }

    /// Checks every setting against its limits, naming the first one out of range.
    pub fn validate(&self) -> Result<()> {
        if self.segment_bytes < 1024 || self.segment_bytes > 2 << 30 {
            return Err(Error::invalid(
                "segment_bytes",
                format!("{} is outside 1 KiB..=2 GiB", self.segment_bytes),
            ));
        }
        if self.max_record_bytes == 0 || self.max_record_bytes > 1 << 30 {
            return Err(Error::invalid("max_record_bytes", "must be in 1..=1 GiB"));
        }
        if self.max_batch_bytes < batch::HEADER_LEN + batch::RECORD_OVERHEAD
            || self.max_batch_bytes > 1 << 30
        {
            return Err(Error::invalid("max_batch_bytes", "must be in 68 B..=1 GiB"));
        }
        if self.index_interval_bytes == 0 {
            return Err(Error::invalid("index_interval_bytes", "must be positive"));
        }
        if let Durability::GroupCommit { max_delay, .. } = self.durability {
            crate::clock::check_duration("group commit max_delay", max_delay, crate::clock::HOUR)?;
        }
        Ok(())
    }
}

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

/// A torn tail recovery removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The segment file.
    pub path: PathBuf,
    /// Byte position from which data was removed.
    pub position: u64,
    /// How many bytes (up to the file's end) were zeroed or dropped.
    pub bytes_removed: u64,
    /// The first offset that was not kept.
    pub first_offset_removed: u64,
    /// Why the bytes were not a valid batch.
    pub reason: String,
}

/// What recovery found and did when the log was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Bytes of the active segment scanned (the untrusted tail).
    pub scanned_bytes: u64,
    /// Tails removed.
    pub truncations: Vec<Truncation>,
    /// Segment files removed because they followed removed damage.
    pub dropped_segments: Vec<PathBuf>,
}

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
    /// Set while something outside the log refuses its appends (the remote
    /// warm tier's local-disk ceiling): the error's operation, place and
    /// reason. `append_refused` is its lock-free fast-path flag.
    append_refusal: Mutex<Option<(String, String)>>,
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

    /// Refuses appends with [`Error::ObjectStore`] (op `"append"`, at
    /// `location`, for `reason`) from now on, or (`None`) accepts them again.
    pub(crate) fn refuse_appends(&self, refusal: Option<(String, String)>) {
        let refused = refusal.is_some();
        *self.shared.append_refusal.lock() = refusal;
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
        let doomed: Vec<(PathBuf, PathBuf)> = segs[..count]
            .iter()
            .map(|s| {
                (
                    s.path.clone(),
                    segment::index_path(&self.shared.dir, s.base),
                )
            })
            .collect();
        *segs = Arc::new(segs[count..].to_vec());
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

    /// The `appended_at` of the next batch: the wall clock, but never below
    /// the previous batch's, so append times never decrease within a log
    /// (the dedup rebuild binary-searches them).
    fn next_appended_at(self: &Arc<Self>, w: &mut Writer) -> i64 {
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

    fn append<'v>(
        self: &Arc<Self>,
        count: usize,
        records: impl Iterator<Item = (i64, &'v [u8])> + Clone,
    ) -> Result<(Range<u64>, i64)> {
        self.check_writable("append")?;
        if self.append_refused.load(Ordering::Acquire)
            && let Some((location, reason)) = self.append_refusal.lock().clone()
        {
            return Err(Error::ObjectStore {
                op: "append",
                location,
                reason,
            });
        }
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
        Ok((range, appended_at))
    }

    /// Makes sure the active file has disk space reserved up to `end` and a
    /// map covering it, growing in doubling steps up to `preallocate_bytes`.
    fn reserve(&self, w: &mut Writer, end: u64) -> Result<()> {
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
    fn roll(&self, w: &mut Writer) -> Result<()> {
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

    fn seal_active(&self, w: &mut Writer) -> Result<()> {
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

    /// Waits until offsets below `target` are durable, syncing if no one else is.
    ///
    /// A truncate may remove offsets below `target` while this waits: only
    /// offsets the log still holds can become durable, so the wait ends once
    /// everything below `min(target, next offset)` is (the records a repair
    /// removed are gone, whether or not their sync had completed).
    fn wait_durable(&self, target: u64) -> Result<()> {
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
    fn gather_concurrent_appends(&self) {
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

    fn advance_durable(&self, d: &mut DurableState, upto: u64) {
        d.durable_offset = d.durable_offset.max(upto);
        self.durable_hint.store(d.durable_offset, Ordering::Release);
    }

    /// Syncs the active file; returns the offset below which all is durable.
    fn sync_active(&self) -> Result<u64> {
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

    /// Called by the background flusher for `GroupCommit` logs.
    pub(crate) fn background_flush(&self) {
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

    /// Writes the active segment's checkpoint if enough was synced since the
    /// last one (or always, when `force`). Runs under the writer lock so it
    /// cannot interleave with a roll.
    fn checkpoint_if_due(&self, force: bool) -> Result<()> {
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
                self.io
                    .write_at(&file, &ipath, &index[from as usize..], from)?;
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

    fn close(&self) -> Result<()> {
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
    fn trim_reserved(&self) -> Result<()> {
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

    fn truncate(&self, offset: u64) -> Result<()> {
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
        let target = segments[keep_idx].clone();
        let result = self.rewrite_prefix(w, &target, offset, &segments[keep_idx + 1..]);
        let new_segments: Vec<Arc<Segment>> = match result {
            Ok(seg) => {
                let mut list: Vec<_> = segments[..keep_idx].to_vec();
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
    fn rewrite_prefix(
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
            let region = &view.map[pos as usize..view.committed_len as usize];
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

    fn delete_segments_before(&self, offset: u64) -> Result<usize> {
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

    /// Wakes `wait_for` callers and the attached topic signal after new
    /// records became visible.
    fn notify_appended(&self) {
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

    fn refresh(&self) -> Result<()> {
        let before = self.next_offset.load(Ordering::Acquire);
        let result = self.refresh_segments();
        if self.next_offset.load(Ordering::Acquire) != before {
            self.notify_appended();
        }
        result
    }

    fn refresh_segments(&self) -> Result<()> {
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
    fn check_read_only_tail(&self, seg: &Segment) -> Result<()> {
        let view = seg.view()?;
        let pos = view.committed_len;
        // Only the header position is looked at through the map (the
        // scan just read it too); anything further is read with `pread`.
        let head = view
            .map
            .get(pos as usize..)
            .map_or(&[][..], |r| &r[..r.len().min(batch::HEADER_LEN)]);
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
fn parse_batch_at<'a>(
    map: &'a Bytes,
    committed: u64,
    pos: u64,
    path: &Path,
) -> Result<BatchView<'a>> {
    let region = &map[pos as usize..committed as usize];
    BatchView::parse(region).map_err(|e| Error::corrupted(path, pos, e.to_string()))
}

fn create_segment(io: &Io, dir: &Path, base: u64, interval: u32) -> Result<(Arc<Segment>, File)> {
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

fn remove_temporaries(io: &Io, dir: &Path) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        if entry.file_name().to_string_lossy().ends_with(".tmp") {
            io.remove(&entry.path())?;
        }
    }
    Ok(())
}

pub(crate) fn list_segment_bases(dir: &Path) -> Result<Vec<u64>> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    let mut bases = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        if let Some(base) = entry
            .file_name()
            .to_str()
            .and_then(segment::parse_segment_name)
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

struct Recovered {
    segments: Vec<Arc<Segment>>,
    /// The active segment with its writable file, committed and reserved length.
    active: Option<(Arc<Segment>, File, u64, u64)>,
    /// What the checkpoint lets the writer resume from (with `active`).
    resume: Option<Resume>,
    report: RecoveryReport,
}

/// Where the writer of a recovered active segment stands with its checkpoint.
#[derive(Debug, Clone, Copy)]
struct Resume {
    /// Bytes the last checkpoint (with a usable index part) covers; 0 makes
    /// the next checkpoint rewrite the index file and the checkpoint whole.
    checkpointed_len: u64,
    /// Every offset below this is known to be on stable storage.
    durable_offset: u64,
    /// Bytes of the index file that are known to be right.
    index_file_len: u64,
}

impl Resume {
    fn nothing(base: u64) -> Resume {
        Resume {
            checkpointed_len: 0,
            durable_offset: base,
            index_file_len: 0,
        }
    }
}

pub(crate) fn read_footer(file: &File, path: &Path, len: u64, base: u64) -> Result<Option<Footer>> {
    if len < FOOTER_LEN as u64 {
        return Ok(None);
    }
    let mut buf = [0u8; FOOTER_LEN];
    match Io::default().read_at(file, path, &mut buf, len - FOOTER_LEN as u64) {
        Ok(()) => {}
        // The writer trimmed the file since `len` was read: it just sealed
        // it; the caller's next look finds the footer at the new end.
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    }
    Ok(Footer::decode(&buf).filter(|f| {
        f.base_offset == base && f.data_len.checked_add(FOOTER_LEN as u64) == Some(len)
    }))
}

/// A read-only look at a directory that a live writer may change while it is
/// read (a segment sealed and trimmed, or deleted by retention, between two
/// system calls): such a race surfaces as a missing file, a short read or a
/// file shorter than just measured, and the look is simply taken again.
fn recover_read_only(dir: &Path, config: &LogConfig, io: &Io) -> Result<Recovered> {
    let mut attempt = 0;
    loop {
        match recover(dir, config, io, false) {
            Err(e) if attempt < 5 && is_race_with_writer(&e) => attempt += 1,
            other => return other,
        }
    }
}

fn is_race_with_writer(e: &Error) -> bool {
    match e {
        Error::Io { source, .. } => matches!(
            source.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::UnexpectedEof
        ),
        Error::Invalid { what, .. } => what == "map length",
        _ => false,
    }
}

/// Opens every segment: sealed ones are trusted through their footers; the
/// last one is scanned from its checkpoint and, when `writable`, its torn
/// tail is zeroed.
fn recover(dir: &Path, config: &LogConfig, io: &Io, writable: bool) -> Result<Recovered> {
    let bases = list_segment_bases(dir)?;
    let mut report = RecoveryReport::default();
    let mut segments: Vec<Arc<Segment>> = Vec::new();
    let mut expected: Option<u64> = None;
    let interval = config.index_interval_bytes;
    for (i, &base) in bases.iter().enumerate() {
        let path = segment::segment_path(dir, base);
        let is_last = i + 1 == bases.len();
        if base >= u64::MAX - 1 {
            return Err(Error::corrupted(
                &path,
                0,
                "segment base offset is at the top of the offset range, where no record can be",
            ));
        }
        if let Some(exp) = expected.filter(|&e| e != base) {
            let err = Error::corrupted(
                &path,
                0,
                format!("segment starts at offset {base} but the previous one ends before {exp}"),
            );
            if writable && config.recovery == RecoveryMode::TruncateAtFirstDamage {
                drop_segments(io, dir, &bases[i..], &mut report)?;
                break;
            }
            return Err(err);
        }
        let file = File::open(&path).map_err(|e| Error::io("open", &path, e))?;
        let meta = file.metadata().map_err(|e| Error::io("stat", &path, e))?;
        let len = meta.len();
        if let Some(footer) = read_footer(&file, &path, len, base)? {
            expected = Some(footer.last_offset + 1);
            let seg = Segment::sealed_lazy(dir, footer, interval, writable.then(|| io.clone()));
            // Which file this is, so a read-only refresh can tell it from one
            // a truncate put at the same path.
            seg.set_file_id(std::os::unix::fs::MetadataExt::ino(&meta));
            segments.push(Arc::new(seg));
            continue;
        }
        if !is_last && config.recovery != RecoveryMode::TruncateAtFirstDamage {
            return Err(Error::corrupted(
                &path,
                len.saturating_sub(FOOTER_LEN as u64),
                "sealed segment has no valid footer, yet a later segment follows it",
            ));
        }
        let active = recover_active(dir, config, io, writable, base, &path, &mut report)?;
        match active {
            ActiveOutcome::Sealed(seg) => {
                expected = Some(seg.next_offset());
                segments.push(seg);
            }
            ActiveOutcome::Active(seg, file, pos, reserved, resume) => {
                if !is_last {
                    drop_segments(io, dir, &bases[i + 1..], &mut report)?;
                }
                return Ok(Recovered {
                    segments,
                    active: Some((seg, file, pos, reserved)),
                    resume: Some(resume),
                    report,
                });
            }
        }
    }
    Ok(Recovered {
        segments,
        active: None,
        resume: None,
        report,
    })
}

fn drop_segments(io: &Io, dir: &Path, bases: &[u64], report: &mut RecoveryReport) -> Result<()> {
    for &b in bases {
        let p = segment::segment_path(dir, b);
        log::warn!(
            "recovery: dropping {} (it follows removed damage)",
            p.display()
        );
        io.remove(&p)?;
        io.remove(&segment::index_path(dir, b))?;
        report.dropped_segments.push(p);
    }
    // A checkpoint must not outlive its segment: a later segment created at
    // the same base would otherwise inherit its durability proof.
    if Checkpoint::load(dir).is_some_and(|c| bases.contains(&c.segment_base)) {
        io.remove(&checkpoint::path(dir))?;
    }
    io.sync_dir(dir)
}

enum ActiveOutcome {
    Sealed(Arc<Segment>),
    Active(Arc<Segment>, File, u64, u64, Resume),
}

fn recover_active(
    dir: &Path,
    config: &LogConfig,
    io: &Io,
    writable: bool,
    base: u64,
    path: &Path,
    report: &mut RecoveryReport,
) -> Result<ActiveOutcome> {
    let file = if writable {
        io.open_rw(path, false)?
    } else {
        io.open_ro(path)?
    };
    let len = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    let map = mmap::map_read_only(&file, path, len, false)?;
    let interval = config.index_interval_bytes;
    let checkpoint = Checkpoint::load(dir).filter(|c| {
        c.segment_base == base
            && c.trusted_len <= len
            && c.next_offset >= base
            && c.next_offset - base <= u64::from(u32::MAX)
            && c.next_offset < u64::MAX
    });
    // The checkpoint has two parts: a durability proof (the first
    // `trusted_len` bytes, offsets below `next_offset`, were synced) and an
    // index prefix to resume from. A rejected index only costs a scan from
    // byte 0; the proof still holds.
    let resumed = checkpoint.and_then(|c| {
        let ipath = segment::index_path(dir, base);
        segment::load_index_file(&ipath, c.index_crc, c.index_len)
            .map(|ix| IndexBuilder::resume(interval, ix.to_vec(), c.max_timestamp))
    });
    let index_ok = resumed.is_some();
    let (start, next, mut builder) = match (checkpoint, resumed) {
        (Some(c), Some(b)) => (c.trusted_len, c.next_offset, b),
        _ => (0, base, IndexBuilder::new(interval)),
    };
    // Only the writer may look past the end of the data (see `segment::scan`).
    let scan = segment::scan(&map, base, start, next, &mut builder, writable);
    report.scanned_bytes += scan.end.saturating_sub(start);
    if let Some(footer) = scan.footer {
        // Sealed, but the trim past the footer did not reach the disk.
        if writable {
            io.set_len(&file, path, footer.data_len + FOOTER_LEN as u64)?;
            io.sync_all(&file, path)?;
        }
        return Ok(ActiveOutcome::Sealed(Arc::new(Segment::sealed_lazy(
            dir,
            footer,
            interval,
            writable.then(|| io.clone()),
        ))));
    }
    // Below the checkpoint's trusted length everything was synced: bytes
    // there that are not valid batches (or batches ending early) are damage.
    let stop = scan.damage.as_ref().map_or(scan.end, |d| d.0);
    let proof = checkpoint.filter(|c| stop < c.trusted_len);
    let cut = scan.damage.clone().or_else(|| {
        proof.map(|c| {
            (
                scan.end,
                format!(
                    "the batches end at byte {} before offset {}",
                    scan.end, c.next_offset
                ),
            )
        })
    });
    if let Some((pos, why)) = cut {
        if let Some(c) = proof
            && (!writable || config.recovery != RecoveryMode::TruncateAtFirstDamage)
        {
            if !writable {
                check_same_file(&file, path)?;
            }
            return Err(Error::corrupted(
                path,
                pos,
                format!(
                    "{why}; the checkpoint records the first {} bytes of this segment (offsets below {}) as synced, so this is damaged durable data, not a torn write",
                    c.trusted_len, c.next_offset
                ),
            ));
        }
        if !writable {
            if let Some(err) = read_only_damage(&file, path, pos, scan.next_offset, Some(&why))? {
                return Err(err);
            }
        } else {
            if let Some(later) = segment::find_durable_batch_after(&map, pos, scan.next_offset)
                && config.recovery != RecoveryMode::TruncateAtFirstDamage
            {
                return Err(Error::corrupted(
                    path,
                    pos,
                    format!(
                        "{why}; the valid batch at byte {} (offset {}) records offsets below {} as already durable, so this is damaged durable data, not a torn write",
                        later.position, later.base_offset, later.durable_offset
                    ),
                ));
            }
            if proof.is_some() {
                // Cutting below the checkpoint: it no longer describes the segment.
                io.remove(&checkpoint::path(dir))?;
                io.sync_dir(dir)?;
            }
            let t = Truncation {
                path: path.to_path_buf(),
                position: pos,
                bytes_removed: len - pos,
                first_offset_removed: scan.next_offset,
                reason: why,
            };
            log::warn!(
                "recovery: truncating {} at byte {} ({} bytes from offset {}): {}",
                path.display(),
                t.position,
                t.bytes_removed,
                t.first_offset_removed,
                t.reason
            );
            // Zero rather than shrink: a reader elsewhere may map these pages
            // (mmap invariant 1), and stale batches must never be chained later.
            io.zero_range(&file, path, pos, len)?;
            io.sync_data(&file, path)?;
            report.truncations.push(t);
        }
    }
    let resume = match checkpoint {
        Some(c) if proof.is_none() => Resume {
            // A rejected index part makes the next checkpoint rewrite the
            // index file from byte 0 (and so a clean close writes one).
            checkpointed_len: if index_ok { c.trusted_len } else { 0 },
            durable_offset: c.next_offset,
            index_file_len: if index_ok { u64::from(c.index_len) } else { 0 },
        },
        _ => Resume::nothing(base),
    };
    let seg = Arc::new(Segment::active(
        base,
        path.to_path_buf(),
        map,
        scan.end,
        scan.next_offset,
        builder,
    ));
    if !writable {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata().map_err(|e| Error::io("stat", path, e))?;
        seg.set_file_id(meta.ino());
    }
    Ok(ActiveOutcome::Active(seg, file, scan.end, len, resume))
}

/// For a read-only view: fails with a race (which the caller's retry loop
/// absorbs) when the file at `path` is no longer `file`, e.g. a truncate
/// renamed a rewritten one over it, so a checkpoint just read may describe
/// the other file.
fn check_same_file(file: &File, path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let ours = file.metadata().map_err(|e| Error::io("stat", path, e))?;
    let now = fs::metadata(path).map_err(|e| Error::io("stat", path, e))?;
    if ours.ino() != now.ino() || ours.dev() != now.dev() {
        return Err(Error::io(
            "open",
            path,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "replaced by the writer while being read",
            ),
        ));
    }
    Ok(())
}

/// A read-only view's scan of `file` stopped at byte `pos` (offset `next`)
/// on bytes that are not a valid batch. They may be a batch the writer is
/// still writing, or a torn tail no writer has recovered yet: then the view
/// ends there (`None`). But when a valid batch after them records `next` as
/// already durable, they are damaged synced data, and the view must say so.
///
/// Reads the rest of the file with `pread`, never through the map: the
/// writer may trim the file past the next header, and a map touching the
/// trimmed pages would fault (mmap invariant 1); a read just comes back short.
fn read_only_damage(
    file: &File,
    path: &Path,
    pos: u64,
    next: u64,
    why: Option<&str>,
) -> Result<Option<Error>> {
    let len = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    let rest = pread_range(file, path, pos, len)?;
    if is_batch_at(&rest, next) {
        // The writer finished the batch since the scan looked.
        return Ok(None);
    }
    let Some(later) = segment::find_durable_batch_after(&rest, 0, next) else {
        return Ok(None);
    };
    // The batch at `pos` may have been completed, synced and followed while
    // the read above went on: look at it once more. The later batch exists,
    // so a batch that was being written is whole by now.
    if batch_now_at(file, path, pos, next)? {
        return Ok(None);
    }
    let why = match why {
        Some(w) => w.to_owned(),
        None => BatchView::parse(&rest).err().map_or_else(
            || "batch does not continue the offsets".to_owned(),
            |e| e.to_string(),
        ),
    };
    Ok(Some(Error::corrupted(
        path,
        pos,
        format!(
            "{why}; the valid batch at byte {} (offset {}) records offsets below {} as already durable, so this is damaged durable data, not a torn write or a batch being written",
            pos + later.position,
            later.base_offset,
            later.durable_offset
        ),
    )))
}

/// Whether `bytes` start with a valid batch holding offset `next` first.
fn is_batch_at(bytes: &[u8], next: u64) -> bool {
    BatchView::parse(bytes).is_ok_and(|v| v.header.base_offset == next)
}

/// Reads the batch at `pos` of `file` afresh (with `pread`) and tells
/// whether it is now a valid batch starting at offset `next`.
fn batch_now_at(file: &File, path: &Path, pos: u64, next: u64) -> Result<bool> {
    let head = pread_range(file, path, pos, pos + batch::HEADER_LEN as u64)?;
    let Ok(header) = batch::parse_header(&head) else {
        return Ok(false);
    };
    let whole = pread_range(file, path, pos, pos + u64::from(header.length))?;
    Ok(is_batch_at(&whole, next))
}

/// Bytes `from..to` of `file` read with `pread` (shorter if the file is).
fn pread_range(file: &File, path: &Path, from: u64, to: u64) -> Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let len = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    let mut buf = vec![0u8; to.min(len).saturating_sub(from) as usize];
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], from + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read", path, e)),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// A verified batch handed out by [`Batches`]; shares the segment's map.
#[derive(Debug, Clone)]
pub struct Batch {
    bytes: Bytes,
    header: BatchHeader,
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
    fn new(shared: Arc<Shared>, from: u64, verify_every_batch: bool) -> Result<Batches> {
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
                let region = &view.map[start as usize..view.committed_len as usize];
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
    batches: Batches,
    /// The current batch and the offset of its next record.
    current: Option<(Batch, u64)>,
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
