//! `mmap`: the naive memory-mapped log.
//!
//! One sparse file, `set_len` to a capacity (1 GiB, doubled by remapping when
//! full), mapped read-write with `memmap2::MmapMut`; records are memcpy'd into
//! the map with the same `len:u32 crc32:u32 payload` framing as `plain`. The
//! end of the data is the first zero length field (payloads are never empty).
//! Like `plain` it has no index file: open scans the map verifying CRCs and
//! builds an in-memory offset → position `Vec<u64>`. `sync` msyncs the range
//! written since the previous sync.

use std::fs::{File, OpenOptions};
use std::path::Path;

use memmap2::MmapMut;

use super::frame::{self, HEADER};
use super::{Engine, Opts, Res};

pub const NAME: &str = "mmap";
pub const DESCRIBE: &str = "one sparse file (set_len 1 GiB, doubled when full) mapped with memmap2::MmapMut, \
same framing as plain, memcpy into the map; in-memory offset index built by scanning on open; \
sync = msync(MS_SYNC) of the range written since the last sync";

const INITIAL_CAPACITY: u64 = 1 << 30;

pub struct Mmap {
    file: File,
    map: MmapMut,
    index: Vec<u64>,
    end: usize,
    synced: usize,
    grown: bool,
}

/// Maps the whole file read-write.
fn map(file: &File) -> Res<MmapMut> {
    // SAFETY: the mapping is backed by a file in a directory this engine owns
    // exclusively for its lifetime (the harness creates a fresh directory per
    // engine and never opens two instances on it at once), so no other process
    // or mapping truncates or modifies it behind our back, and the map is only
    // accessed through `&`/`&mut` borrows of `Mmap` that cannot outlive it.
    let m = unsafe { MmapMut::map_mut(file)? };
    Ok(m)
}

pub fn open(dir: &Path, _opts: Opts) -> Res<Box<dyn Engine>> {
    std::fs::create_dir_all(dir)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join("data.mmap"))?;
    if file.metadata()?.len() < INITIAL_CAPACITY {
        file.set_len(INITIAL_CAPACITY)?;
    }
    let map = map(&file)?;
    let mut index = Vec::new();
    let end = scan(&map, |pos, _| index.push(pos as u64));
    // Zero a torn tail so that the end marker is where we think it is.
    let mut e = Mmap {
        file,
        map,
        index,
        end,
        synced: end,
        grown: false,
    };
    let tail = e.map.len().min(end + HEADER);
    if e.map[end..tail].iter().any(|&b| b != 0) {
        e.map[end..tail].fill(0);
    }
    Ok(Box::new(e))
}

/// Walks the frames from 0, verifying CRCs, until a zero length, a frame that
/// does not fit, or a bad CRC. Returns the end of valid data.
fn scan(map: &[u8], mut f: impl FnMut(usize, &[u8])) -> usize {
    let mut pos = 0usize;
    while pos + HEADER <= map.len() {
        let (n, crc) = frame::parse(&map[pos..pos + HEADER]);
        if n == 0 || pos + HEADER + n > map.len() {
            break;
        }
        let p = &map[pos + HEADER..pos + HEADER + n];
        if crc32fast::hash(p) != crc {
            break;
        }
        f(pos, p);
        pos += HEADER + n;
    }
    pos
}

impl Mmap {
    fn ensure(&mut self, need: usize) -> Res<()> {
        if self.end + need + HEADER <= self.map.len() {
            return Ok(());
        }
        let mut cap = self.map.len() as u64 * 2;
        while (cap as usize) < self.end + need + HEADER {
            cap *= 2;
        }
        // Write back what is dirty before dropping the old mapping's view.
        self.map.flush_async()?;
        self.file.set_len(cap)?;
        self.map = map(&self.file)?;
        self.grown = true;
        Ok(())
    }
}

impl Engine for Mmap {
    fn name(&self) -> &'static str {
        NAME
    }

    fn append_batch(&mut self, recs: &[&[u8]]) -> Res<()> {
        let need: usize = recs.iter().map(|r| HEADER + r.len()).sum();
        self.ensure(need)?;
        for r in recs {
            if r.is_empty() {
                return Err(
                    "mmap: empty payloads are not supported (length 0 marks the end)".into(),
                );
            }
            let p = self.end;
            self.map[p..p + HEADER].copy_from_slice(&frame::header(r));
            self.map[p + HEADER..p + HEADER + r.len()].copy_from_slice(r);
            self.index.push(p as u64);
            self.end = p + HEADER + r.len();
        }
        Ok(())
    }

    fn sync(&mut self) -> Res<()> {
        if self.end > self.synced {
            self.map.flush_range(self.synced, self.end - self.synced)?;
            self.synced = self.end;
        }
        if self.grown {
            self.file.sync_all()?;
            self.grown = false;
        }
        Ok(())
    }

    fn scan_all(&mut self) -> Res<(u64, u64)> {
        let (mut recs, mut bytes) = (0u64, 0u64);
        let end = scan(
            &self.map[..self.end + HEADER.min(self.map.len() - self.end)],
            |_, p| {
                recs += 1;
                bytes += p.len() as u64;
            },
        );
        if end != self.end {
            return Err(format!(
                "mmap: scan stopped at byte {end} of {} (corrupt frame)",
                self.end
            )
            .into());
        }
        Ok((recs, bytes))
    }

    fn read_at(&mut self, offset: u64) -> Res<usize> {
        let pos = *self
            .index
            .get(offset as usize)
            .ok_or("mmap: offset out of range")? as usize;
        let (n, crc) = frame::parse(&self.map[pos..pos + HEADER]);
        frame::verify(
            &self.map[pos + HEADER..pos + HEADER + n],
            crc,
            NAME,
            pos as u64,
        )?;
        Ok(n)
    }

    fn next_offset(&self) -> Option<u64> {
        Some(self.index.len() as u64)
    }

    fn close(self: Box<Self>) -> Res<()> {
        // Clean close: unmap; the kernel writes dirty pages back.
        Ok(())
    }
}
