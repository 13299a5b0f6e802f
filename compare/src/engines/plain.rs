//! `plain`: one append-only file written through a `BufWriter<File>`.
//!
//! Each record is framed as `len:u32 crc32:u32 payload` (crc32fast per record).
//! There is no index file: on open the whole file is scanned (verifying every
//! CRC) to build an in-memory `Vec<u64>` mapping offset → byte position, which
//! serves random reads (`pread` of the frame) and tells where to append. So
//! "reopen" costs a full scan, by design: this is the baseline a log with an
//! on-disk index should beat. A torn or corrupt tail is cut off on open.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::frame::{self, HEADER};
use super::{Engine, Opts, Res};

pub const NAME: &str = "plain";
pub const DESCRIBE: &str = "one file, BufWriter<File> (1 MiB buffer), frames `len:u32 crc32:u32 payload`; \
in-memory offset→position Vec built by a full CRC-verifying scan on open; sync = flush + fdatasync";

const BUF: usize = 1 << 20;

/// `plain-batch`: the same engine, but each batch is flushed to the page cache
/// before `append_batch` returns — the crash semantics eventfabric gives every
/// append (survives kill -9), which the 1 MiB user-space buffer does not.
pub const NAME_FLUSHED: &str = "plain-batch";
pub const DESCRIBE_FLUSHED: &str = "as plain, but the BufWriter is flushed after every batch, so an \
acknowledged batch survives a process crash (the guarantee eventfabric's appends give)";

pub fn open_flushed(dir: &Path, opts: Opts) -> Res<Box<dyn Engine>> {
    let mut engine = open_plain(dir, opts)?;
    engine.flush_each_batch = true;
    Ok(engine)
}

pub struct Plain {
    /// Used for `pread` and `fdatasync` only (never its file position).
    file: File,
    path: PathBuf,
    writer: BufWriter<File>,
    dirty: bool,
    flush_each_batch: bool,
    /// offset → byte position of the frame.
    index: Vec<u64>,
    /// End of valid data (= where the next frame goes).
    end: u64,
    buf: Vec<u8>,
}

pub fn open(dir: &Path, opts: Opts) -> Res<Box<dyn Engine>> {
    Ok(open_plain(dir, opts)?)
}

fn open_plain(dir: &Path, _opts: Opts) -> Res<Box<Plain>> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("data.log");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    let mut index = Vec::new();
    let (end, torn) = scan(&path, |pos, _| index.push(pos))?;
    if torn {
        file.set_len(end)?;
    }
    // A separate O_APPEND file description, so that neither scans nor preads
    // (which use their own descriptions / positional I/O) move its position.
    let wfile = OpenOptions::new().append(true).open(&path)?;
    Ok(Box::new(Plain {
        writer: BufWriter::with_capacity(BUF, wfile),
        file,
        path,
        dirty: false,
        flush_each_batch: false,
        index,
        end,
        buf: Vec::new(),
    }))
}

/// Reads the file from the start through a 1 MiB `BufReader`, verifying every
/// CRC and calling `f(position, payload)` per record. Stops at the first short
/// or corrupt frame. Returns (end of valid data, whether bytes follow it).
fn scan(path: &Path, mut f: impl FnMut(u64, &[u8])) -> Res<(u64, bool)> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut rd = BufReader::with_capacity(BUF, file);
    let mut pos = 0u64;
    let mut h = [0u8; HEADER];
    let mut payload = Vec::new();
    loop {
        match rd.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.into()),
        }
        let (n, crc) = frame::parse(&h);
        if pos + (HEADER + n) as u64 > len {
            break;
        }
        payload.resize(n, 0);
        rd.read_exact(&mut payload)?;
        if crc32fast::hash(&payload) != crc {
            break;
        }
        f(pos, &payload);
        pos += (HEADER + n) as u64;
    }
    Ok((pos, pos != len))
}

impl Plain {
    fn flush_writer(&mut self) -> Res<()> {
        if self.dirty {
            self.writer.flush()?;
            self.dirty = false;
        }
        Ok(())
    }
}

impl Engine for Plain {
    fn name(&self) -> &'static str {
        NAME
    }

    fn append_batch(&mut self, recs: &[&[u8]]) -> Res<()> {
        for r in recs {
            self.writer.write_all(&frame::header(r))?;
            self.writer.write_all(r)?;
            self.index.push(self.end);
            self.end += (HEADER + r.len()) as u64;
        }
        self.dirty = true;
        if self.flush_each_batch {
            self.writer.flush()?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Res<()> {
        self.flush_writer()?;
        self.file.sync_data()?;
        Ok(())
    }

    fn scan_all(&mut self) -> Res<(u64, u64)> {
        self.flush_writer()?;
        let (mut recs, mut bytes) = (0u64, 0u64);
        let (end, _) = scan(&self.path, |_, p| {
            recs += 1;
            bytes += p.len() as u64;
        })?;
        if end != self.end {
            return Err(format!(
                "plain: scan stopped at byte {end} of {} (corrupt frame)",
                self.end
            )
            .into());
        }
        Ok((recs, bytes))
    }

    fn read_at(&mut self, offset: u64) -> Res<usize> {
        self.flush_writer()?;
        let i = offset as usize;
        let pos = *self.index.get(i).ok_or("plain: offset out of range")?;
        let next = self.index.get(i + 1).copied().unwrap_or(self.end);
        self.buf.resize((next - pos) as usize, 0);
        self.file.read_exact_at(&mut self.buf, pos)?;
        let (n, crc) = frame::parse(&self.buf);
        frame::verify(&self.buf[HEADER..HEADER + n], crc, NAME, pos)?;
        Ok(n)
    }

    fn next_offset(&self) -> Option<u64> {
        Some(self.index.len() as u64)
    }

    fn close(mut self: Box<Self>) -> Res<()> {
        self.flush_writer()?;
        Ok(())
    }
}
