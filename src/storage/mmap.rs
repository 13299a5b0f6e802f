//! The only module with `unsafe` code: read-only shared memory maps of log files.
//!
//! Owns turning a file into a [`Bytes`] backed by a `MAP_SHARED`, `PROT_READ`
//! mapping. It never writes through a map: all writes go through `io` with
//! `pwrite`, so a full disk can only ever be an error from `fallocate` or
//! `pwrite`, never a SIGBUS on a store.
//!
//! Soundness rests on two invariants that the rest of the crate maintains and
//! documents where it acts on files:
//! 1. **No shrinking under a map.** A file is never truncated below a length
//!    that any live map of it covers and that a reader may touch. Segments are
//!    only trimmed past their committed end (sealing keeps the footer, a clean
//!    close keeps the page holding the next header), a repair rewrites a kept
//!    prefix into a new file and renames it into place, and retention unlinks
//!    whole files (an unlinked inode stays valid while mapped). Recovery zeroes
//!    a torn tail with `fallocate(ZERO_RANGE)` instead of shrinking the file.
//!    Read-only views never look past the header position after the last
//!    valid batch (`segment::scan` with `thorough = false`), and `verify`
//!    reads a private copy instead of a map.
//! 2. **Readers only look at published bytes.** In-process readers dereference
//!    only `[0, committed_len)`, which the writer never modifies after
//!    publishing it (release/acquire on the committed length). Other processes
//!    may see bytes change under them past the end they have validated; every
//!    batch they accept is verified by CRC first, so a concurrent change is an
//!    invalid batch (the end of their view), never undefined data returned.

use std::fs::File;
use std::path::Path;

use bytes::Bytes;

use crate::error::{Error, Result};

/// Maps the first `len` bytes of `file` read-only and shared; with
/// `populate`, the page tables are filled up front (`MAP_POPULATE`), which is
/// much cheaper for data that will be read whole than a fault per page.
///
/// The caller guarantees that `file` is at least `len` bytes long now, and
/// that the crate's "no shrinking under a map" invariant covers it.
pub(crate) fn map_read_only(file: &File, path: &Path, len: u64, populate: bool) -> Result<Bytes> {
    if len == 0 {
        return Ok(Bytes::new());
    }
    let len = usize::try_from(len)
        .map_err(|_| Error::invalid("map length", format!("{len} bytes do not fit in memory")))?;
    let actual = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    if actual < len as u64 {
        return Err(Error::invalid(
            "map length",
            format!(
                "{} is {actual} bytes, shorter than the {len} to map",
                path.display()
            ),
        ));
    }
    // SAFETY: the map is read-only (PROT_READ) and shared. The length check
    // above holds at the moment of mapping and the file is never shrunk below
    // a mapped length afterwards (invariant 1 of this module), so no access
    // within the map can fault with SIGBUS. Readers only dereference bytes
    // that are immutable once published, or validate by CRC anything another
    // process may still be writing (invariant 2).
    let mut options = memmap2::MmapOptions::new();
    options.len(len);
    if populate {
        options.populate();
    }
    #[expect(
        unsafe_code,
        reason = "memmap2's map is unsafe: a mapped file changed or shrunk by anyone breaks Rust's aliasing rules; the invariants above exclude it"
    )]
    let map = unsafe { options.map(file) }.map_err(|e| Error::io("map", path, e))?;
    Ok(Bytes::from_owner(map))
}
