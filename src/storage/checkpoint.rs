//! The active segment's recovery checkpoint: how far it is known to be durable.
//!
//! Owns the `checkpoint` file of a log directory: a small checksummed record
//! saying "segment B was synced up to byte L, holding offsets below N, and its
//! index file's first K bytes (CRC C) cover that prefix". Recovery trusts that
//! prefix and scans only what follows, so reopening costs time proportional to
//! the unsynced tail rather than to the segment. It never holds data: a missing
//! or damaged checkpoint only means scanning the active segment from byte 0.
//! Its two parts are used separately: an index prefix that does not match only
//! moves the scan's start to byte 0, while the durability proof (`trusted_len`,
//! `next_offset`) still makes damage below `trusted_len` corruption.
//!
//! ```text
//! checkpoint := magic[4]="\xEFFCP" version:u8 reserved[3] crc:u32   -- crc over bytes 12..56
//!               segment_base:u64 trusted_len:u64 next_offset:u64
//!               max_timestamp:i64 index_len:u32 index_crc:u32 reserved:u32
//! ```

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::storage::io::Io;
use crate::storage::le::{i64_at, u32_at, u64_at};

const MAGIC: [u8; 4] = [0xEF, b'F', b'C', b'P'];
const VERSION: u8 = 1;
const CRC_AT: usize = 8;
const BASE_AT: usize = CRC_AT + 4;
const TRUSTED_AT: usize = BASE_AT + 8;
const NEXT_AT: usize = TRUSTED_AT + 8;
const MAX_TS_AT: usize = NEXT_AT + 8;
const INDEX_LEN_AT: usize = MAX_TS_AT + 8;
const INDEX_CRC_AT: usize = INDEX_LEN_AT + 4;
const RESERVED_AT: usize = INDEX_CRC_AT + 4;
const LEN: usize = RESERVED_AT + 4;

/// A durable prefix of the active segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub segment_base: u64,
    pub trusted_len: u64,
    pub next_offset: u64,
    pub max_timestamp: i64,
    pub index_len: u32,
    pub index_crc: u32,
}

pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join("checkpoint")
}

impl Checkpoint {
    fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[..4].copy_from_slice(&MAGIC);
        b[4] = VERSION;
        b[BASE_AT..BASE_AT + 8].copy_from_slice(&self.segment_base.to_le_bytes());
        b[TRUSTED_AT..TRUSTED_AT + 8].copy_from_slice(&self.trusted_len.to_le_bytes());
        b[NEXT_AT..NEXT_AT + 8].copy_from_slice(&self.next_offset.to_le_bytes());
        b[MAX_TS_AT..MAX_TS_AT + 8].copy_from_slice(&self.max_timestamp.to_le_bytes());
        b[INDEX_LEN_AT..INDEX_LEN_AT + 4].copy_from_slice(&self.index_len.to_le_bytes());
        b[INDEX_CRC_AT..INDEX_CRC_AT + 4].copy_from_slice(&self.index_crc.to_le_bytes());
        let crc = crc32fast::hash(&b[BASE_AT..]);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a checkpoint; `None` for anything but a whole, valid one.
    pub(crate) fn decode(b: &[u8]) -> Option<Checkpoint> {
        let b: &[u8; LEN] = b.try_into().ok()?;
        if b[..4] != MAGIC || b[4] != VERSION || b[5..8] != [0, 0, 0] {
            return None;
        }
        if u32_at(b, CRC_AT)? != crc32fast::hash(&b[BASE_AT..]) || u32_at(b, RESERVED_AT)? != 0 {
            return None;
        }
        Some(Checkpoint {
            segment_base: u64_at(b, BASE_AT)?,
            trusted_len: u64_at(b, TRUSTED_AT)?,
            next_offset: u64_at(b, NEXT_AT)?,
            max_timestamp: i64_at(b, MAX_TS_AT)?,
            index_len: u32_at(b, INDEX_LEN_AT)?,
            index_crc: u32_at(b, INDEX_CRC_AT)?,
        })
    }

    /// Reads the directory's checkpoint, if there is a valid one.
    pub(crate) fn load(dir: &Path) -> Option<Checkpoint> {
        std::fs::read(path(dir))
            .ok()
            .and_then(|b| Checkpoint::decode(&b))
    }

    /// Replaces the directory's checkpoint atomically. The directory is not
    /// synced: if the rename is lost, the previous checkpoint (still true of
    /// an append-only segment) is what recovery finds.
    pub(crate) fn store(&self, io: &Io, dir: &Path) -> Result<()> {
        io.write_file_replace(dir, &path(dir), &self.encode(), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let c = Checkpoint {
            segment_base: 1,
            trusted_len: 2,
            next_offset: 3,
            max_timestamp: -4,
            index_len: 16,
            index_crc: 6,
        };
        let b = c.encode();
        assert_eq!(Checkpoint::decode(&b), Some(c));
        for i in 0..LEN {
            let mut d = b;
            d[i] ^= 1;
            assert_eq!(Checkpoint::decode(&d), None, "byte {i}");
        }
        assert_eq!(Checkpoint::decode(&b[..LEN - 1]), None);
    }
}
