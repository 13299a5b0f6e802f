//! Reading remote archives block by block: the bounded cache of fetched
//! compressed blocks (shared by a fabric) and the fetcher of one remote
//! archive, which brings a missed block with those after it in one ranged
//! GET and, while the reader decodes them, fetches the next window in the
//! background (read-ahead for sequential replay).
//!
//! Owns the cache's bound and eviction (least recently used, by compressed
//! bytes) and the read-ahead's bound: at most one background GET of at most
//! `read_ahead_bytes` per archive being read, so memory stays within the
//! cache bound plus one window per open archive. It never checks block
//! contents (the archive reader does, CRC and batch chain) and never decides
//! what is uploaded or deleted.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::storage::archive::{Archive, BlockFetcher};
use crate::tier::objstore::{PendingRange, RemoteStore};

/// A byte-bounded LRU of fetched compressed blocks, keyed by archive
/// identity ([`Archive::id`]) and block number.
#[derive(Debug)]
pub(crate) struct RemoteBlockCache {
    limit: u64,
    inner: Mutex<CacheInner>,
    /// How blocks were fetched (for tests and stats).
    pub(crate) counts: FetchCounts,
}

#[derive(Debug, Default)]
struct CacheInner {
    bytes: u64,
    tick: u64,
    entries: HashMap<(u64, usize), (Bytes, u64)>,
    by_age: BTreeMap<u64, (u64, usize)>,
    hits: u64,
    misses: u64,
}

impl RemoteBlockCache {
    pub(crate) fn new(limit: u64) -> RemoteBlockCache {
        RemoteBlockCache {
            limit,
            inner: Mutex::new(CacheInner::default()),
            counts: FetchCounts::default(),
        }
    }

    /// Whether block `key` is held (without counting a hit or miss).
    fn contains(&self, key: (u64, usize)) -> bool {
        self.inner.lock().entries.contains_key(&key)
    }

    pub(crate) fn get(&self, key: (u64, usize)) -> Option<Bytes> {
        let mut c = self.inner.lock();
        c.tick += 1;
        let tick = c.tick;
        let Some((bytes, age)) = c.entries.get_mut(&key) else {
            c.misses += 1;
            return None;
        };
        let (bytes, old) = (bytes.clone(), std::mem::replace(age, tick));
        c.by_age.remove(&old);
        c.by_age.insert(tick, key);
        c.hits += 1;
        Some(bytes)
    }

    pub(crate) fn insert(&self, key: (u64, usize), block: Bytes) {
        let size = block.len() as u64;
        if size > self.limit {
            return;
        }
        let mut c = self.inner.lock();
        c.tick += 1;
        let tick = c.tick;
        if let Some((old, age)) = c.entries.insert(key, (block, tick)) {
            c.bytes -= old.len() as u64;
            c.by_age.remove(&age);
        }
        c.by_age.insert(tick, key);
        c.bytes += size;
        while c.bytes > self.limit {
            let Some((_, victim)) = c.by_age.pop_first() else {
                break;
            };
            if let Some((b, _)) = c.entries.remove(&victim) {
                c.bytes -= b.len() as u64;
            }
        }
    }

    /// Drops every block of archive `id` (removed from the tier).
    pub(crate) fn forget(&self, id: u64) {
        let mut c = self.inner.lock();
        let doomed: Vec<(u64, usize)> = c.entries.keys().filter(|k| k.0 == id).copied().collect();
        for k in doomed {
            if let Some((b, age)) = c.entries.remove(&k) {
                c.bytes -= b.len() as u64;
                c.by_age.remove(&age);
            }
        }
    }

    /// (bytes held, hits, misses).
    #[cfg(test)]
    pub(crate) fn stats(&self) -> (u64, u64, u64) {
        let c = self.inner.lock();
        (c.bytes, c.hits, c.misses)
    }
}

/// How blocks of remote archives were fetched, since the fabric opened.
#[derive(Debug, Default)]
pub(crate) struct FetchCounts {
    /// Ranged GETs a reader waited for from the start (a miss nothing was
    /// bringing).
    pub(crate) on_demand: AtomicU64,
    /// Ranged GETs started in the background, ahead of the reader.
    pub(crate) ahead: AtomicU64,
    /// Background GETs whose blocks a reader then used.
    pub(crate) ahead_used: AtomicU64,
}

/// Brings the blocks of one remote archive: from the cache, else from the
/// background GET bringing it, else one ranged GET covering the missed
/// block and those after it up to the read-ahead; then, when the reader is
/// within one read-ahead of the end of what was fetched, starts the GET of
/// the next window in the background.
#[derive(Debug)]
pub(crate) struct RemoteBlocks {
    store: Arc<RemoteStore>,
    key: String,
    cache: Arc<RemoteBlockCache>,
    read_ahead: u64,
    ahead: Mutex<Ahead>,
}

/// The read-ahead of one archive.
#[derive(Debug, Default)]
struct Ahead {
    /// First block no GET has asked for yet.
    next_block: usize,
    /// The background GET in flight, at most one: the blocks it brings and
    /// the GET.
    pending: Option<(Range<usize>, u64, PendingRange)>,
}

impl RemoteBlocks {
    pub(crate) fn new(
        store: Arc<RemoteStore>,
        key: String,
        cache: Arc<RemoteBlockCache>,
        read_ahead: u64,
    ) -> RemoteBlocks {
        RemoteBlocks {
            store,
            key,
            cache,
            read_ahead,
            ahead: Mutex::new(Ahead::default()),
        }
    }

    /// The blocks from `first` that one GET brings (through the last one
    /// ending within `read_ahead` bytes of `first`'s start, at least
    /// `first`), and their byte range.
    fn window(&self, archive: &Archive, first: usize) -> Option<(Range<usize>, Range<u64>)> {
        let start = archive.blocks.get(first)?.position;
        let mut last = first;
        while let Some(next) = archive.blocks.get(last + 1) {
            let end = next.position + u64::from(next.compressed_len);
            if end.saturating_sub(start) > self.read_ahead {
                break;
            }
            last += 1;
        }
        let e = archive.blocks.get(last)?;
        Some((
            first..last + 1,
            start..e.position + u64::from(e.compressed_len),
        ))
    }

    /// Caches the blocks `blocks` out of `fetched` (the bytes from `start`);
    /// returns block `want`'s.
    fn keep(
        &self,
        archive: &Archive,
        blocks: Range<usize>,
        start: u64,
        fetched: &Bytes,
        want: usize,
    ) -> Result<Bytes> {
        let mut wanted = None;
        for j in blocks {
            let Some(e) = archive.blocks.get(j) else {
                break;
            };
            let from = e.position.saturating_sub(start) as usize;
            let to = from + e.compressed_len as usize;
            if to > fetched.len() {
                return Err(self.short(archive, j));
            }
            let block = fetched.slice(from..to);
            if j == want {
                wanted = Some(block.clone());
            }
            self.cache.insert((archive.id, j), block);
        }
        wanted.ok_or_else(|| self.short(archive, want))
    }

    fn short(&self, archive: &Archive, i: usize) -> Error {
        Error::corrupted(
            &archive.path,
            0,
            format!(
                "block {i} of {} is not within the bytes fetched for it",
                self.store.location(&self.key)
            ),
        )
    }

    /// Starts the GET of the window after what was fetched, in the
    /// background, when at most one read-ahead of fetched bytes is left
    /// past the reader's block `i` and no GET is in flight.
    fn read_ahead_from(&self, archive: &Archive, i: usize) {
        let mut a = self.ahead.lock();
        match a.pending.as_ref().map(|(blocks, _, _)| blocks.end > i) {
            Some(true) => return,
            // The reader went past it (other readers brought the blocks).
            Some(false) => a.pending = None,
            None => {}
        }
        let first = a.next_block.max(i + 1);
        let (Some(next), Some(here)) = (archive.blocks.get(first), archive.blocks.get(i)) else {
            return;
        };
        // Bytes already fetched past the reader's block: more than one
        // read-ahead of them and there is no hurry.
        let fetched_ahead = next
            .position
            .saturating_sub(here.position + u64::from(here.compressed_len));
        if fetched_ahead > self.read_ahead {
            return;
        }
        if self.cache.contains((archive.id, first)) {
            return;
        }
        let Some((blocks, range)) = self.window(archive, first) else {
            return;
        };
        // A GET that cannot start (a bad key) fails again, visibly, on demand.
        if let Ok(p) = self.store.spawn_get_range(&self.key, range.clone()) {
            self.cache.counts.ahead.fetch_add(1, Ordering::Relaxed);
            a.next_block = blocks.end;
            a.pending = Some((blocks, range.start, p));
        }
    }
}

impl BlockFetcher for RemoteBlocks {
    fn compressed_block(&self, archive: &Archive, i: usize) -> Result<Bytes> {
        if let Some(b) = self.cache.get((archive.id, i)) {
            self.read_ahead_from(archive, i);
            return Ok(b);
        }
        let pending = {
            let mut a = self.ahead.lock();
            if a.pending.as_ref().is_some_and(|(b, _, _)| b.contains(&i)) {
                a.pending.take()
            } else {
                None
            }
        };
        if let Some((blocks, start, p)) = pending {
            match p.wait() {
                Ok(fetched) => {
                    self.cache.counts.ahead_used.fetch_add(1, Ordering::Relaxed);
                    let b = self.keep(archive, blocks, start, &fetched, i)?;
                    self.read_ahead_from(archive, i);
                    return Ok(b);
                }
                // Fetched again below, on demand, whose error is the one returned.
                Err(e) => log::debug!("read-ahead of {}: {e}", self.store.location(&self.key)),
            }
        }
        let Some((blocks, range)) = self.window(archive, i) else {
            return Err(self.short(archive, i));
        };
        self.cache.counts.on_demand.fetch_add(1, Ordering::Relaxed);
        let fetched = self.store.get_range(&self.key, range.clone())?;
        self.ahead.lock().next_block = blocks.end;
        let b = self.keep(archive, blocks, range.start, &fetched, i)?;
        self.read_ahead_from(archive, i);
        Ok(b)
    }

    fn location(&self) -> String {
        self.store.location(&self.key)
    }

    fn remove_source(&self, archive: &Archive) -> Result<()> {
        self.cache.forget(archive.id);
        self.store.delete(&self.key)
    }
}
