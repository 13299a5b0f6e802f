//! Little-endian field reads from bytes that came from a file, bounds-checked
//! and written once.
//!
//! Owns the two ways every decoder reads a fixed-width integer: at a fixed
//! position (`u32_at` and friends: `None` past the end, for hot paths that
//! check a length once) and in sequence ([`LeReader`]: each field named, a
//! short read an [`Error::Corrupted`] naming the file and the byte where the
//! field starts). It never panics on short input and never knows what the
//! fields mean.

use std::path::Path;

use crate::error::{Error, Result};

/// The `N` bytes at `at`, if all are there.
fn array_at<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    let end = at.checked_add(N)?;
    bytes.get(at..end)?.try_into().ok()
}

/// The little-endian `u16` at byte `at`.
pub(crate) fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    array_at(bytes, at).map(u16::from_le_bytes)
}

/// The little-endian `u32` at byte `at`.
pub(crate) fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    array_at(bytes, at).map(u32::from_le_bytes)
}

/// The little-endian `u64` at byte `at`.
pub(crate) fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    array_at(bytes, at).map(u64::from_le_bytes)
}

/// The little-endian `i64` at byte `at`.
pub(crate) fn i64_at(bytes: &[u8], at: usize) -> Option<i64> {
    array_at(bytes, at).map(i64::from_le_bytes)
}

/// Reads named fields one after another from bytes of a file, reporting a
/// short read as corruption at the field's byte position in that file.
#[derive(Debug)]
pub(crate) struct LeReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
    /// Position of `bytes[0]` within the file.
    base: u64,
}

impl<'a> LeReader<'a> {
    /// A reader of `bytes`, which start at byte `base` of the file `path`.
    pub(crate) fn new(bytes: &'a [u8], path: &'a Path, base: u64) -> Self {
        LeReader {
            bytes,
            pos: 0,
            path,
            base,
        }
    }

    /// Position in the file of the next field.
    pub(crate) fn position(&self) -> u64 {
        self.base.saturating_add(self.pos as u64)
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    /// The next `n` bytes, named `field` in the error when they are not there.
    pub(crate) fn bytes(&mut self, n: usize, field: &str) -> Result<&'a [u8]> {
        let taken = self
            .pos
            .checked_add(n)
            .and_then(|end| self.bytes.get(self.pos..end));
        match taken {
            Some(b) => {
                self.pos += n;
                Ok(b)
            }
            None => Err(self.corrupted(format!(
                "{field} ({n} bytes) is cut short: {} bytes left",
                self.remaining()
            ))),
        }
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N]> {
        let b = self.bytes(N, field)?;
        b.try_into()
            .map_err(|_| self.corrupted(format!("{field} is cut short")))
    }

    /// The next byte.
    pub(crate) fn u8(&mut self, field: &str) -> Result<u8> {
        self.array::<1>(field).map(|[b]| b)
    }

    /// The next little-endian `u16`.
    pub(crate) fn u16(&mut self, field: &str) -> Result<u16> {
        self.array(field).map(u16::from_le_bytes)
    }

    /// The next little-endian `u32`.
    pub(crate) fn u32(&mut self, field: &str) -> Result<u32> {
        self.array(field).map(u32::from_le_bytes)
    }

    /// The next little-endian `u64`.
    pub(crate) fn u64(&mut self, field: &str) -> Result<u64> {
        self.array(field).map(u64::from_le_bytes)
    }

    /// The next little-endian `i64`.
    pub(crate) fn i64(&mut self, field: &str) -> Result<i64> {
        self.array(field).map(i64::from_le_bytes)
    }

    /// A corruption error at the current position.
    pub(crate) fn corrupted(&self, reason: impl Into<String>) -> Error {
        Error::corrupted(self.path, self.position(), reason)
    }

    /// A corruption error at `position` of the file (a field read earlier).
    pub(crate) fn corrupted_at(&self, position: u64, reason: impl Into<String>) -> Error {
        Error::corrupted(self.path, position, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_position_reads_stop_at_the_end_instead_of_panicking() {
        let b = [1u8, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(u32_at(&b, 0), Some(1));
        assert_eq!(u64_at(&b, 4), Some(2));
        assert_eq!(u16_at(&b, 11), None);
        assert_eq!(u64_at(&b, usize::MAX), None);
        assert_eq!(i64_at(&b, 5), None);
    }

    #[test]
    fn a_short_field_is_corruption_at_its_own_byte_in_the_file() {
        let b = [7u8, 1, 0, 9];
        let mut r = LeReader::new(&b, Path::new("x.state"), 100);
        assert_eq!(r.u8("version").ok(), Some(7));
        assert_eq!(r.u16("count").ok(), Some(1));
        match r.u32("crc") {
            Err(Error::Corrupted {
                path,
                position,
                reason,
            }) => {
                assert_eq!((path.as_path(), position), (Path::new("x.state"), 103));
                assert!(reason.contains("crc"), "{reason}");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        // A failed read consumes nothing.
        assert_eq!(r.u8("last").ok(), Some(9));
        assert_eq!(r.remaining(), 0);
        let wide = [
            1u8, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ];
        let mut r = LeReader::new(&wide, Path::new("x"), 0);
        assert_eq!((r.u64("a").ok(), r.i64("b").ok()), (Some(1), Some(-1)));
    }
}
