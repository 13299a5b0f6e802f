//! The narrow seam every file operation of the engine passes through.
//!
//! Owns: opening, writing, reserving, syncing, renaming and removing files, and
//! the optional [`FaultInjector`] that tests use to fail any of those calls
//! (a failed write, a failed sync, a full disk, a crash after N operations).
//! It never decides what to write; it never maps memory (that is `mmap`).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
#[cfg(any(test, feature = "failpoints"))]
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// The kinds of operation a [`FaultInjector`] is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoOp {
    /// Creating or opening a file for writing.
    Create,
    /// Writing bytes at a position.
    Write,
    /// `fdatasync` / `fsync` of a file.
    Sync,
    /// `fsync` of a directory.
    SyncDir,
    /// Reserving file space (`fallocate`).
    Allocate,
    /// Zeroing a range of a file.
    ZeroRange,
    /// Changing a file's length.
    SetLen,
    /// Renaming a file.
    Rename,
    /// Removing a file.
    Remove,
}

/// What an injected fault does to the operation it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(
    not(any(test, feature = "failpoints")),
    expect(
        dead_code,
        reason = "only an injector makes a fault, and without failpoints there is none"
    )
)]
pub enum Fault {
    /// The operation does nothing and fails with this OS error number.
    Fail(i32),
    /// A write stores only its first `n` bytes, then fails with `EIO`.
    Torn(usize),
}

/// Decides, before each file operation, whether it should fail.
///
/// Production code passes no injector; tests use [`FaultPlan`] or their own.
pub trait FaultInjector: Send + Sync + fmt::Debug {
    /// Called before `op` on `path`; `len` is the byte count for writes.
    fn check(&self, op: IoOp, path: &Path, len: usize) -> Option<Fault>;
}

/// A simple scripted [`FaultInjector`]: counts operations and fails chosen ones.
#[cfg(any(test, feature = "failpoints"))]
#[derive(Debug, Default)]
pub struct FaultPlan {
    seen: AtomicU64,
    rules: Vec<(Option<IoOp>, u64, Fault, bool)>,
    per_op: parking_lot::Mutex<std::collections::HashMap<IoOp, u64>>,
}

#[cfg(any(test, feature = "failpoints"))]
impl FaultPlan {
    /// A plan that fails nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fails the `nth` (1-based) operation of kind `op` with `fault`.
    pub fn fail_nth(mut self, op: IoOp, nth: u64, fault: Fault) -> Self {
        self.rules.push((Some(op), nth, fault, false));
        self
    }

    /// Simulates a crash: every operation after the first `n` fails with `EIO`.
    pub fn crash_after(mut self, n: u64) -> Self {
        self.rules
            .push((None, n + 1, Fault::Fail(libc_eio()), true));
        self
    }

    /// Operations seen so far.
    pub fn operations(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }
}

fn libc_eio() -> i32 {
    rustix::io::Errno::IO.raw_os_error()
}

#[cfg(any(test, feature = "failpoints"))]
impl FaultInjector for FaultPlan {
    fn check(&self, op: IoOp, _path: &Path, _len: usize) -> Option<Fault> {
        let total = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        let nth_of_kind = {
            let mut per = self.per_op.lock();
            let n = per.entry(op).or_insert(0);
            *n += 1;
            *n
        };
        self.rules.iter().find_map(|&(kind, nth, fault, onward)| {
            let count = match kind {
                Some(k) if k == op => nth_of_kind,
                Some(_) => return None,
                None => total,
            };
            let hit = if onward { count >= nth } else { count == nth };
            hit.then_some(fault)
        })
    }
}

/// The file-operation seam. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Io {
    faults: Option<Arc<dyn FaultInjector>>,
}

impl fmt::Debug for Io {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Io")
            .field("faults", &self.faults.is_some())
            .finish()
    }
}

impl Io {
    pub(crate) fn new(faults: Option<Arc<dyn FaultInjector>>) -> Self {
        Io { faults }
    }

    fn gate(&self, op: IoOp, path: &Path, len: usize) -> Option<Fault> {
        self.faults.as_ref().and_then(|f| f.check(op, path, len))
    }

    /// Opens (creating if asked) a file for reading and writing.
    pub(crate) fn open_rw(&self, path: &Path, create: bool) -> Result<File> {
        if let Some(Fault::Fail(errno)) = self.gate(IoOp::Create, path, 0) {
            return Err(Error::io("open", path, io::Error::from_raw_os_error(errno)));
        }
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io("open", path, e))
    }

    /// Opens a file read-only. Reads are never faulted.
    pub(crate) fn open_ro(&self, path: &Path) -> Result<File> {
        File::open(path).map_err(|e| Error::io("open", path, e))
    }

    /// Writes all of `buf` at `pos`.
    pub(crate) fn write_at(&self, file: &File, path: &Path, buf: &[u8], pos: u64) -> Result<()> {
        match self.gate(IoOp::Write, path, buf.len()) {
            Some(Fault::Fail(errno)) => {
                return Err(Error::io(
                    "write",
                    path,
                    io::Error::from_raw_os_error(errno),
                ));
            }
            Some(Fault::Torn(n)) => {
                // The first `n` bytes, or all of them when fewer.
                let torn = buf.get(..n).unwrap_or(buf);
                file.write_all_at(torn, pos)
                    .map_err(|e| Error::io("write", path, e))?;
                return Err(Error::io(
                    "write",
                    path,
                    io::Error::from_raw_os_error(libc_eio()),
                ));
            }
            None => {}
        }
        file.write_all_at(buf, pos)
            .map_err(|e| Error::io("write", path, e))
    }

    /// Reads exactly `buf.len()` bytes at `pos`.
    pub(crate) fn read_at(&self, file: &File, path: &Path, buf: &mut [u8], pos: u64) -> Result<()> {
        file.read_exact_at(buf, pos)
            .map_err(|e| Error::io("read", path, e))
    }

    /// `fdatasync`: the file's data (and the size that data needs) is durable.
    pub(crate) fn sync_data(&self, file: &File, path: &Path) -> Result<()> {
        if let Some(fault) = self.gate(IoOp::Sync, path, 0) {
            return Err(Error::io("sync", path, fault_error(fault)));
        }
        let started = std::time::Instant::now();
        let synced = file.sync_data().map_err(|e| Error::io("sync", path, e));
        crate::observe::fsynced(started.elapsed());
        synced
    }

    /// `fsync`: data and all metadata (such as a shrunk length) are durable.
    pub(crate) fn sync_all(&self, file: &File, path: &Path) -> Result<()> {
        if let Some(fault) = self.gate(IoOp::Sync, path, 0) {
            return Err(Error::io("sync", path, fault_error(fault)));
        }
        let started = std::time::Instant::now();
        let synced = file.sync_all().map_err(|e| Error::io("sync", path, e));
        crate::observe::fsynced(started.elapsed());
        synced
    }

    /// `fsync` of a directory, making creations, renames and removals in it durable.
    pub(crate) fn sync_dir(&self, dir: &Path) -> Result<()> {
        if let Some(fault) = self.gate(IoOp::SyncDir, dir, 0) {
            return Err(Error::io("sync directory", dir, fault_error(fault)));
        }
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("sync directory", dir, e))
    }

    /// Reserves disk blocks so the file is at least `len` bytes long and every
    /// byte below `len` is backed by disk space. A full disk is [`Error::NoSpace`].
    pub(crate) fn allocate(&self, file: &File, path: &Path, len: u64) -> Result<()> {
        let current = file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .len();
        if len <= current {
            return Ok(());
        }
        if let Some(fault) = self.gate(IoOp::Allocate, path, 0) {
            let err = fault_error(fault);
            return Err(no_space_or_io(err, path, len, "reserve space for"));
        }
        match rustix::fs::fallocate(
            file,
            rustix::fs::FallocateFlags::empty(),
            current,
            len - current,
        ) {
            Ok(()) => Ok(()),
            Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => {
                // No fallocate on this filesystem: writing zeros allocates the
                // blocks just as surely, and fails with ENOSPC the same way.
                write_zeros(file, path, current, len)
            }
            Err(e) => Err(no_space_or_io(e.into(), path, len, "reserve space for")),
        }
    }

    /// Makes bytes `from..to` read as zeros without changing the file length.
    pub(crate) fn zero_range(&self, file: &File, path: &Path, from: u64, to: u64) -> Result<()> {
        if to <= from {
            return Ok(());
        }
        if let Some(fault) = self.gate(IoOp::ZeroRange, path, 0) {
            return Err(Error::io("zero", path, fault_error(fault)));
        }
        match rustix::fs::fallocate(
            file,
            rustix::fs::FallocateFlags::ZERO_RANGE,
            from,
            to - from,
        ) {
            Ok(()) => Ok(()),
            Err(_) => write_zeros(file, path, from, to),
        }
    }

    /// Sets the file length.
    pub(crate) fn set_len(&self, file: &File, path: &Path, len: u64) -> Result<()> {
        if let Some(fault) = self.gate(IoOp::SetLen, path, 0) {
            return Err(Error::io("set length of", path, fault_error(fault)));
        }
        file.set_len(len)
            .map_err(|e| Error::io("set length of", path, e))
    }

    /// Renames `from` to `to` (atomic on POSIX filesystems).
    pub(crate) fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        if let Some(fault) = self.gate(IoOp::Rename, from, 0) {
            return Err(Error::io("rename", from, fault_error(fault)));
        }
        fs::rename(from, to).map_err(|e| Error::io("rename", from, e))
    }

    /// Removes a file; a file that is already gone is not an error.
    pub(crate) fn remove(&self, path: &Path) -> Result<()> {
        if let Some(fault) = self.gate(IoOp::Remove, path, 0) {
            return Err(Error::io("remove", path, fault_error(fault)));
        }
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", path, e)),
        }
    }

    /// Writes `bytes` to `path` atomically: a temporary file, synced, renamed
    /// over the target, and the directory synced.
    pub(crate) fn write_file_atomic(&self, dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
        self.write_file_replace(dir, path, bytes, true)
    }

    /// Like [`Io::write_file_atomic`], syncing the directory only if asked.
    pub(crate) fn write_file_replace(
        &self,
        dir: &Path,
        path: &Path,
        bytes: &[u8],
        sync_dir: bool,
    ) -> Result<()> {
        let tmp = path.with_extension(tmp_extension(path));
        let file = self.open_rw(&tmp, true)?;
        self.set_len(&file, &tmp, 0)?;
        self.write_at(&file, &tmp, bytes, 0)?;
        self.sync_data(&file, &tmp)?;
        drop(file);
        self.rename(&tmp, path)?;
        if sync_dir {
            self.sync_dir(dir)?;
        }
        Ok(())
    }
}

fn tmp_extension(path: &Path) -> String {
    match path.extension() {
        Some(ext) => format!("{}.tmp", ext.to_string_lossy()),
        None => "tmp".to_owned(),
    }
}

fn fault_error(fault: Fault) -> io::Error {
    match fault {
        Fault::Fail(errno) => io::Error::from_raw_os_error(errno),
        Fault::Torn(_) => io::Error::from_raw_os_error(libc_eio()),
    }
}

fn no_space_or_io(err: io::Error, path: &Path, wanted: u64, op: &'static str) -> Error {
    if err.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error()) {
        Error::NoSpace {
            path: path.to_path_buf(),
            wanted,
        }
    } else {
        Error::io(op, path, err)
    }
}

fn write_zeros(file: &File, path: &Path, from: u64, to: u64) -> Result<()> {
    const CHUNK: usize = 1 << 20;
    let zeros = vec![0u8; CHUNK.min((to - from) as usize)];
    let mut pos = from;
    while pos < to {
        let n = ((to - pos) as usize).min(zeros.len());
        file.write_all_at(zeros.get(..n).unwrap_or(&zeros), pos)
            .map_err(|e| no_space_or_io(e, path, to, "write zeros to"))?;
        pos += n as u64;
    }
    Ok(())
}
