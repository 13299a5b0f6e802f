//! `commitlog`: the crates.io `commitlog` crate (zowens/commitlog, 0.2).
//!
//! Batches go through one reused `MessageBuf` and `CommitLog::append`. Reads use
//! `CommitLog::read(offset, ReadLimit::max_bytes(..))`, which returns a
//! `MessageBuf` whose construction (`MessageBuf::from_bytes`) verifies every
//! message's CRC32C.
//!
//! API surprises handled here:
//! * `CommitLog::flush` msyncs the index but only calls `File::flush` (a no-op)
//!   on the segment, so it does not make appended records durable. `sync`
//!   therefore also `fdatasync`s the active segment file (`<base offset>.log`,
//!   the highest-numbered one) through a handle of our own. Segments are 1 GB
//!   (the crate default), so no workload here rolls a segment.
//! * Reads are bounded in bytes, not records, and fail if the first message is
//!   larger than the limit; reading one record needs its size (header 20 bytes
//!   + payload). The workload passes the payload size in [`Opts::max_payload`].

use std::fs::File;
use std::path::{Path, PathBuf};

use commitlog::message::{MessageBuf, MessageSet};
use commitlog::{CommitLog, LogOptions, ReadLimit};

use super::{Engine, Opts, Res};

pub const NAME: &str = "commitlog";
pub const DESCRIBE: &str = "crates.io `commitlog` 0.2 (segment 1 GB, message_max_bytes 16 MiB), one MessageBuf per batch; \
CRC32C verified by MessageBuf::from_bytes on read; sync = CommitLog::flush + fdatasync of the active segment \
(flush alone does not fsync the segment)";

const HEADER: usize = 20;
const SCAN_CHUNK: usize = 1 << 20;

pub struct Commitlog {
    log: CommitLog,
    dir: PathBuf,
    buf: MessageBuf,
    seg: Option<(PathBuf, File)>,
    one_record: usize,
}

pub fn open(dir: &Path, opts: Opts) -> Res<Box<dyn Engine>> {
    let mut o = LogOptions::new(dir);
    o.message_max_bytes(16 << 20);
    let log = CommitLog::new(o)?;
    Ok(Box::new(Commitlog {
        log,
        dir: dir.to_path_buf(),
        buf: MessageBuf::default(),
        seg: None,
        // +1: with a limit of exactly one message's size, a read of the last
        // message of a segment finds an empty range and fails.
        one_record: HEADER + opts.max_payload.max(1) + 1,
    }))
}

impl Commitlog {
    /// The highest-numbered `.log` file: the active segment.
    fn active_segment(&mut self) -> Res<&File> {
        let mut newest: Option<PathBuf> = None;
        for e in std::fs::read_dir(&self.dir)? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "log") && newest.as_ref().is_none_or(|n| p > *n) {
                newest = Some(p);
            }
        }
        let newest = newest.ok_or("commitlog: no segment file")?;
        if self.seg.as_ref().is_none_or(|(p, _)| *p != newest) {
            let f = File::open(&newest)?;
            self.seg = Some((newest, f));
        }
        Ok(&self.seg.as_ref().unwrap().1)
    }
}

impl Engine for Commitlog {
    fn name(&self) -> &'static str {
        NAME
    }

    fn append_batch(&mut self, recs: &[&[u8]]) -> Res<()> {
        self.buf.clear();
        for r in recs {
            self.buf
                .push(r)
                .map_err(|e| format!("commitlog: MessageBuf::push: {e:?}"))?;
        }
        self.log.append(&mut self.buf)?;
        Ok(())
    }

    fn sync(&mut self) -> Res<()> {
        self.log.flush()?;
        self.active_segment()?.sync_data()?;
        Ok(())
    }

    fn scan_all(&mut self) -> Res<(u64, u64)> {
        let (mut recs, mut bytes) = (0u64, 0u64);
        let mut off = 0u64;
        loop {
            let buf = self.log.read(off, ReadLimit::max_bytes(SCAN_CHUNK))?;
            if buf.is_empty() {
                break;
            }
            let mut last = off;
            for m in buf.iter() {
                recs += 1;
                bytes += m.payload().len() as u64;
                last = m.offset();
            }
            off = last + 1;
        }
        Ok((recs, bytes))
    }

    fn read_at(&mut self, offset: u64) -> Res<usize> {
        let buf = self
            .log
            .read(offset, ReadLimit::max_bytes(self.one_record))?;
        let m = buf.iter().next().ok_or("commitlog: offset not found")?;
        if m.offset() != offset {
            return Err(format!("commitlog: asked for offset {offset}, got {}", m.offset()).into());
        }
        Ok(m.payload().len())
    }

    fn next_offset(&self) -> Option<u64> {
        Some(self.log.next_offset())
    }

    fn close(self: Box<Self>) -> Res<()> {
        // CommitLog has no close; dropping it unmaps the index.
        Ok(())
    }
}
