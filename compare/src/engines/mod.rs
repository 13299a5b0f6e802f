//! The engines under comparison, each behind the same small [`Engine`] trait.
//!
//! An engine owns one directory. The harness opens it through [`EngineSpec::open`],
//! drives it, and closes it with [`Engine::close`]; "reopen" in the workloads
//! means a clean close followed by a fresh open of the same directory.

use std::path::Path;

pub mod commitlog;
#[cfg(feature = "eventfabric")]
pub mod eventfabric;
pub mod mmap;
pub mod plain;
pub mod sqlite;

/// Error type used by the harness: any engine error, boxed.
pub type BoxErr = Box<dyn std::error::Error + Send + Sync + 'static>;
/// Result alias used by the harness.
pub type Res<T> = Result<T, BoxErr>;

/// Per-open options that the workload decides.
#[derive(Clone, Copy, Debug)]
pub struct Opts {
    /// The workload wants every batch durable before the next one (the fsync
    /// workload). Engines that can make a batch durable as part of the append
    /// itself (SQLite `synchronous=FULL`, eventfabric `Durability::Always`) are
    /// configured that way and then treat [`Engine::sync`] as a no-op;
    /// the others fsync in `sync`, which the workload calls after every batch.
    pub sync_each_batch: bool,
    /// Largest payload the workload writes. Only commitlog needs it: its reads
    /// are bounded in bytes, not records, so reading exactly one record needs
    /// the record's size.
    pub max_payload: usize,
}

/// One engine instance, open on one directory.
pub trait Engine {
    /// Short name used in tables and `--only`.
    fn name(&self) -> &'static str;
    /// Appends one batch; records get consecutive offsets from the log's end.
    fn append_batch(&mut self, recs: &[&[u8]]) -> Res<()>;
    /// Makes everything appended so far durable (fsync or equivalent).
    fn sync(&mut self) -> Res<()>;
    /// Reads every record from offset 0, verifying checksums where the engine
    /// stores them. Returns (records, payload bytes).
    fn scan_all(&mut self) -> Res<(u64, u64)>;
    /// Reads the record at `offset` and returns its payload length.
    fn read_at(&mut self, offset: u64) -> Res<usize>;
    /// Number of records the engine knows of, if its API tells (used to check
    /// that a reopen found everything).
    fn next_offset(&self) -> Option<u64>;
    /// Clean close.
    fn close(self: Box<Self>) -> Res<()>;
}

/// How to open an engine.
pub struct EngineSpec {
    pub name: &'static str,
    /// One line for the report: what the engine is and how it is configured.
    pub describe: &'static str,
    pub open: fn(&Path, Opts) -> Res<Box<dyn Engine>>,
}

/// All engines compiled in, in table column order.
pub fn all() -> Vec<EngineSpec> {
    #[allow(unused_mut)]
    let mut v = vec![
        EngineSpec {
            name: plain::NAME,
            describe: plain::DESCRIBE,
            open: plain::open,
        },
        EngineSpec {
            name: plain::NAME_FLUSHED,
            describe: plain::DESCRIBE_FLUSHED,
            open: plain::open_flushed,
        },
        EngineSpec {
            name: mmap::NAME,
            describe: mmap::DESCRIBE,
            open: mmap::open,
        },
        EngineSpec {
            name: commitlog::NAME,
            describe: commitlog::DESCRIBE,
            open: commitlog::open,
        },
        EngineSpec {
            name: sqlite::NAME,
            describe: sqlite::DESCRIBE,
            open: sqlite::open,
        },
    ];
    #[cfg(feature = "eventfabric")]
    v.push(EngineSpec {
        name: eventfabric::NAME,
        describe: eventfabric::DESCRIBE,
        open: eventfabric::open,
    });
    v
}

/// Record framing shared by the `plain` and `mmap` engines:
/// `len: u32 LE | crc32: u32 LE | payload`.
pub mod frame {
    pub const HEADER: usize = 8;

    /// Writes the 8-byte header for `payload` into `out`.
    #[inline]
    pub fn header(payload: &[u8]) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        h[4..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
        h
    }

    /// Splits a header into (len, crc).
    #[inline]
    pub fn parse(h: &[u8]) -> (usize, u32) {
        let len = u32::from_le_bytes(h[..4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(h[4..8].try_into().unwrap());
        (len, crc)
    }

    #[inline]
    pub fn verify(payload: &[u8], crc: u32, what: &str, pos: u64) -> super::Res<()> {
        if crc32fast::hash(payload) != crc {
            return Err(format!("{what}: CRC mismatch in record at byte {pos}").into());
        }
        Ok(())
    }
}
