//! The exclusive writer lock of a log directory.
//!
//! Owns the `writer.lock` file: an `flock` held for as long as a writer has the
//! directory open, with the holder's pid written inside so a refused writer can
//! name it. `flock` locks belong to the open file, so a second writer in the
//! same process is refused exactly like one in another process, and the lock
//! disappears with the process, even on kill -9. It never blocks readers.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Error, Result};

/// The pid the lock's holder wrote into the file (0 when unreadable).
fn recorded_pid(file: &File) -> u32 {
    let mut buf = [0u8; 32];
    let n = file.read_at(&mut buf, 0).unwrap_or(0);
    String::from_utf8_lossy(buf.get(..n).unwrap_or_default())
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Holds the lock until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock of a partition log directory (`writer.lock`), or fails
    /// with [`Error::Locked`] naming the holder.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        DirLock::acquire_file(dir, "writer.lock")
    }

    /// Takes the lock held in `dir/<file_name>`.
    pub(crate) fn acquire_file(dir: &Path, file_name: &str) -> Result<DirLock> {
        let path = dir.join(file_name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        // A child this process is spawning holds copies of our descriptors
        // (and so our flocks) between its fork and its exec. A lock that
        // names our own pid may be that window, not a second owner: look
        // again for a short while before refusing.
        let patience = std::time::Instant::now() + std::time::Duration::from_millis(200);
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                    let pid = recorded_pid(&file);
                    if pid == std::process::id() && std::time::Instant::now() < patience {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                        continue;
                    }
                    return Err(Error::Locked {
                        path: dir.to_path_buf(),
                        pid,
                    });
                }
                Err(e) => return Err(Error::io("lock", &path, e.into())),
            }
        }
        // A fixed-width overwrite, not truncate-and-write: truncating a file
        // to zero makes ext4 flush it on close (auto_da_alloc), milliseconds
        // that every open would pay.
        let record = format!("{:>10}\n", std::process::id());
        file.write_all_at(record.as_bytes(), 0)
            .map_err(|e| Error::io("write", &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        if len != record.len() as u64 {
            file.set_len(record.len() as u64)
                .map_err(|e| Error::io("write", &path, e))?;
        }
        Ok(DirLock { _file: file })
    }
}
