//! The producer-side dedup cache of one topic: `event_id` → where that event
//! was appended, for the topic's dedup window.
//!
//! Owns the in-memory map (O(1) lookups, bounded by time and by entry count),
//! the claim protocol that makes two producers racing the same `event_id`
//! append it exactly once, and the rebuild from the log tail when a topic is
//! opened. It persists nothing: every entry is a fact the partition logs
//! already hold, so after a restart or a crash the cache is rebuilt from the
//! window's worth of records and can never claim an event the logs lost. It
//! must never decide on its own that a cached position is still valid:
//! retention and truncation remove records under it, so the producer checks
//! a hit against the partition (warm and hot tiers) before trusting it
//! ([`crate::produce::producer`]).
//!
//! The window is measured on the time the fabric first stored the event:
//! the `appended_at` the log stamps on each batch (batch format version 2),
//! never on the producer-supplied `emitted_at` (the record timestamp), which
//! a relay, backfill or import may set months back. Append times never
//! decrease within a partition, so the rebuild finds the window's first
//! batch by binary search over the partition's retained range (warm + hot,
//! [`PartitionSource::retained_range`](crate::topic::PartitionSource::retained_range)). A version 1 batch (written before the
//! format had `appended_at`) is judged by its record timestamps, as then.
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::clock::now_micros;
use crate::error::{Error, Result};
use crate::storage::batch::{BatchHeader, BatchView, RecordIter};
use crate::storage::log::Log;
use crate::storage::warm::{PartitionView, TierRecords};
use crate::topic::{PartitionSource, WeakSource};

/// Where an event was appended: its partition, offset and the time the
/// window is measured from (its batch's `appended_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) partition: u32,
    pub(crate) offset: u64,
    pub(crate) appended_at: i64,
}

/// A map slot: an id being appended right now, or appended at a position.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// A producer claimed the id and is appending it; others wait.
    Pending,
    /// Appended; `seq` ties the slot to its entry in the eviction queue.
    At { position: Position, seq: u64 },
}

/// A fast hasher for event ids. UUIDv7 ids are half timestamp, half random;
/// folding both halves and multiplying by a seeded odd constant spreads them
/// over the table in one multiplication, where SipHash would cost ~20 ns of
/// the 100 ns lookup budget. The per-process seed keeps crafted ids from
/// colliding on purpose.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdHasherBuilder {
    seed: u64,
}

impl IdHasherBuilder {
    fn new() -> Self {
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64);
        IdHasherBuilder { seed: seed | 1 }
    }
}

impl BuildHasher for IdHasherBuilder {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher { state: self.seed }
    }
}

/// See [`IdHasherBuilder`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdHasher {
    state: u64,
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.state
    }

    fn write_u128(&mut self, id: u128) {
        let folded = (id as u64) ^ ((id >> 64) as u64).rotate_left(29) ^ self.state;
        let h = folded.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.state = h ^ (h >> 29);
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state = (self.state ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3);
        }
    }
}

/// An eviction-queue entry: the append time is copied here so the common
/// check "is the oldest entry still in the window?" needs no table probe.
#[derive(Debug, Clone, Copy)]
struct Queued {
    id: u128,
    seq: u64,
    appended_at: i64,
}

#[derive(Debug)]
struct State {
    map: HashMap<u128, Slot, IdHasherBuilder>,
    /// Committed ids in insertion order with the `seq` of their slot; an
    /// entry whose `seq` no longer matches the map is stale and skipped.
    order: VecDeque<Queued>,
    next_seq: u64,
    /// Map slots that are [`Slot::Pending`] (not counted against the cap).
    pending: usize,
}

/// The dedup cache of one topic, shared by all its producers in the process.
#[derive(Debug)]
pub(crate) struct DedupCache {
    window_us: i64,
    max_entries: usize,
    state: Mutex<State>,
    /// Signalled whenever a pending claim is committed or abandoned.
    resolved: Condvar,
}

/// The event id of an encoded envelope as the cache's key
/// ([`crate::envelope::peek_event_id`]).
pub(crate) fn event_id_of(value: &[u8]) -> Option<u128> {
    crate::envelope::peek_event_id(value).map(|id| id.as_u128())
}

impl DedupCache {
    /// An empty cache for a window of `window_ms` holding at most `max_entries` ids.
    pub(crate) fn new(window_ms: u64, max_entries: u64) -> DedupCache {
        DedupCache {
            window_us: (window_ms as i64).saturating_mul(1000),
            max_entries: usize::try_from(max_entries).unwrap_or(usize::MAX).max(1),
            state: Mutex::new(State {
                map: HashMap::with_hasher(IdHasherBuilder::new()),
                order: VecDeque::new(),
                next_seq: 0,
                pending: 0,
            }),
            resolved: Condvar::new(),
        }
    }

    /// Rebuilds the cache from the partitions' tails: every record appended
    /// within the window of `now_us`, read from the warm tier and the hot log
    /// alike, taking only the event id bytes of each record. At most the
    /// newest `max_entries` records of each partition are read; when more
    /// than `max_entries` qualify, the most recently appended are kept.
    pub(crate) fn rebuild(
        window_ms: u64,
        max_entries: u64,
        source: &Arc<dyn PartitionSource>,
        topic: &str,
        logs: &[Arc<Log>],
        now_us: i64,
    ) -> Result<DedupCache> {
        let cache = DedupCache::new(window_ms, max_entries);
        let since = now_us.saturating_sub(cache.window_us);
        let mut found: Vec<(u128, Position)> = Vec::new();
        for (partition, log) in logs.iter().enumerate() {
            let partition = partition as u32;
            let (earliest, end) = source.retained_range(topic, partition, log);
            // At most the newest `max_entries` records of each partition can
            // be kept, which bounds the scan (and its memory) on a busy topic.
            let floor = earliest.max(end.saturating_sub(cache.max_entries as u64));
            if floor >= end {
                continue;
            }
            let tiers = Tiered {
                view: source.partition_view(topic, partition)?,
            };
            let from = tiers.window_start(floor, end, since)?;
            found.reserve(
                usize::try_from(end - from)
                    .unwrap_or(0)
                    .min(cache.max_entries),
            );
            tiers.walk(from, end, &mut |header, records| {
                for r in records {
                    let appended_at = header.appended_at.unwrap_or(r.timestamp);
                    if appended_at < since {
                        continue;
                    }
                    if let Some(id) = event_id_of(r.value) {
                        found.push((
                            id,
                            Position {
                                partition,
                                offset: r.offset,
                                appended_at,
                            },
                        ));
                    }
                }
                true
            })?;
        }
        // One total order (a batch's records share its append time), so
        // which ids survive the cap does not depend on the scan order.
        let key = |p: &Position| (p.appended_at, p.partition, p.offset);
        if found.len() > cache.max_entries {
            let cut = found.len() - cache.max_entries;
            found.select_nth_unstable_by_key(cut, |(_, p)| key(p));
            found.drain(..cut);
        }
        // Oldest first, so count eviction later removes the oldest. Each
        // partition's records are in append order: the stable sort merges
        // those runs instead of sorting from scratch.
        found.sort_by_key(|(_, p)| key(p));
        {
            let mut st = cache.state.lock();
            Self::bulk_insert(&mut st, found);
        }
        Ok(cache)
    }

    /// Inserts `found` (oldest first) into an empty cache: the queue in
    /// time order, the table sized once. (Inserting in bucket order, to make
    /// consecutive inserts touch neighbouring memory, was measured: no gain
    /// beyond noise at 1 M ids, so it is not done.)
    fn bulk_insert(st: &mut State, found: Vec<(u128, Position)>) {
        st.map.reserve(found.len());
        st.order.reserve(found.len());
        for (id, position) in found {
            Self::insert_locked(st, id, position);
        }
    }

    fn insert_locked(st: &mut State, id: u128, position: Position) {
        let seq = st.next_seq;
        st.next_seq += 1;
        let slot = Slot::At { position, seq };
        match st.map.get_mut(&id) {
            Some(current) => {
                if matches!(current, Slot::Pending) {
                    st.pending -= 1;
                }
                *current = slot;
            }
            None => {
                st.map.insert(id, slot);
            }
        }
        st.order.push_back(Queued {
            id,
            seq,
            appended_at: position.appended_at,
        });
    }

    fn in_window(&self, position: &Position, now_us: i64) -> bool {
        position.appended_at >= now_us.saturating_sub(self.window_us)
    }

    /// Looks `id` up without claiming it: its position when appended within
    /// the window (not yet checked against the log).
    pub(crate) fn lookup(&self, id: u128, now_us: i64) -> Option<Position> {
        match self.state.lock().map.get(&id) {
            Some(Slot::At { position, .. }) if self.in_window(position, now_us) => Some(*position),
            _ => None,
        }
    }

    /// Claims each of `ids` for appending or finds where it was appended,
    /// under one lock (so the table probes of a batch overlap instead of
    /// paying a memory round trip each behind a lock acquisition).
    ///
    /// For each id, in order, `decided(index, found)` is called: `None` — the
    /// caller now owns a pending claim and must [`DedupCache::commit_many`]
    /// or [`DedupCache::abandon`] it; `Some(position)` — appended before at
    /// `position`, which `verify` confirmed against the log (a position that
    /// fails `verify` was removed by retention or truncation: the id is
    /// claimed instead). Blocks while another producer holds a pending claim
    /// on an id, so racing producers append it once; `ids` must be ascending
    /// so that no two waiters wait on each other. On an error from `verify`,
    /// the ids decided so far stay decided (the caller abandons its claims).
    pub(crate) fn claim_many(
        &self,
        ids: &[u128],
        now_us: i64,
        verify: &mut dyn FnMut(u128, Position) -> Result<bool>,
        decided: &mut dyn FnMut(usize, Option<Position>),
    ) -> Result<()> {
        use std::collections::hash_map::Entry;
        let mut st = self.state.lock();
        for (i, &id) in ids.iter().enumerate() {
            loop {
                let seen = match st.map.entry(id) {
                    Entry::Occupied(e) => match *e.get() {
                        Slot::Pending => None,
                        Slot::At { position, .. } if self.in_window(&position, now_us) => {
                            Some(position)
                        }
                        Slot::At { .. } => {
                            *e.into_mut() = Slot::Pending;
                            st.pending += 1;
                            decided(i, None);
                            break;
                        }
                    },
                    Entry::Vacant(e) => {
                        e.insert(Slot::Pending);
                        st.pending += 1;
                        decided(i, None);
                        break;
                    }
                };
                match seen {
                    // Pending elsewhere: wait for it to be committed or abandoned.
                    None => self.resolved.wait(&mut st),
                    Some(position) => {
                        // Rare (a real duplicate): checked under the lock so
                        // that a stale entry turns into our claim atomically.
                        if verify(id, position)? {
                            decided(i, Some(position));
                        } else {
                            st.map.insert(id, Slot::Pending);
                            st.pending += 1;
                            decided(i, None);
                        }
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Records where claimed ids were appended and evicts what fell out of
    /// the window or over the entry cap, under one lock.
    pub(crate) fn commit_many(
        &self,
        appended: impl IntoIterator<Item = (u128, Position)>,
        now_us: i64,
    ) {
        let mut st = self.state.lock();
        for (id, position) in appended {
            Self::insert_locked(&mut st, id, position);
        }
        self.evict_locked(&mut st, now_us);
        drop(st);
        self.resolved.notify_all();
    }

    /// Releases a claim whose append failed: nothing was appended.
    pub(crate) fn abandon(&self, id: u128) {
        let mut st = self.state.lock();
        if matches!(st.map.get(&id), Some(Slot::Pending)) {
            st.map.remove(&id);
            st.pending -= 1;
        }
        drop(st);
        self.resolved.notify_all();
    }

    /// Points `id` at a new position regardless of what it held (a deliberate
    /// re-append, e.g. a DLQ replay).
    pub(crate) fn overwrite(&self, id: u128, position: Position, now_us: i64) {
        let mut st = self.state.lock();
        if matches!(st.map.get(&id), Some(Slot::Pending)) {
            // Another producer is appending it right now; its commit wins.
            return;
        }
        Self::insert_locked(&mut st, id, position);
        self.evict_locked(&mut st, now_us);
    }

    fn evict_locked(&self, st: &mut State, now_us: i64) {
        let since = now_us.saturating_sub(self.window_us);
        while let Some(&front) = st.order.front() {
            let over_cap = st.map.len() - st.pending > self.max_entries;
            if !over_cap && front.appended_at >= since {
                break;
            }
            st.order.pop_front();
            // Remove the id only if this queue entry is still its live one
            // (not re-appended or reclaimed since).
            if let std::collections::hash_map::Entry::Occupied(e) = st.map.entry(front.id)
                && matches!(e.get(), Slot::At { seq, .. } if *seq == front.seq)
            {
                e.remove();
            }
        }
        // Stale queue entries wait until they reach the front; bound them so
        // a churn of re-appends cannot grow the queue without limit.
        if st.order.len() > 2 * st.map.len() + 1024 {
            let State { map, order, .. } = st;
            order.retain(|q| matches!(map.get(&q.id), Some(Slot::At { seq, .. }) if *seq == q.seq));
        }
    }

    /// Ids currently held (committed or pending).
    pub(crate) fn len(&self) -> usize {
        self.state.lock().map.len()
    }

    /// Bytes the cache's tables have allocated: the hash table (key, slot and
    /// one control byte per bucket) plus the eviction queue.
    pub(crate) fn allocated_bytes(&self) -> usize {
        let st = self.state.lock();
        let bucket = std::mem::size_of::<(u128, Slot)>() + 1;
        // hashbrown keeps 1/8 of the buckets free: buckets = capacity * 8 / 7,
        // rounded up to a power of two.
        let buckets = if st.map.capacity() == 0 {
            0
        } else {
            (st.map.capacity() * 8 / 7).next_power_of_two()
        };
        buckets * bucket + st.order.capacity() * std::mem::size_of::<Queued>()
    }
}

/// Public view of a topic's dedup cache, for tools and benchmarks.
#[derive(Debug, Clone)]
pub struct DedupStats {
    /// Event ids held.
    pub entries: usize,
    /// Bytes allocated by the cache's tables.
    pub allocated_bytes: usize,
}

impl DedupCache {
    pub(crate) fn stats(&self) -> DedupStats {
        DedupStats {
            entries: self.len(),
            allocated_bytes: self.allocated_bytes(),
        }
    }
}

/// A topic's dedup cache, rebuilt from the partitions' tails on first use
/// (the first producer or import of the topic in this process), so opening a
/// data directory does not pay for the windows of topics nobody produces to.
#[derive(Debug)]
pub(crate) struct LazyDedup {
    window_ms: u64,
    max_entries: u64,
    /// The fabric and topic, to read the warm tier (weak: a topic handle
    /// must not keep its fabric open).
    source: WeakSource,
    topic: String,
    cache: std::sync::OnceLock<DedupCache>,
    building: Mutex<()>,
}

impl LazyDedup {
    /// The cache, rebuilt from `logs` (the topic's partitions) and their warm
    /// tiers the first time.
    pub(crate) fn get(&self, logs: &[Arc<Log>]) -> Result<&DedupCache> {
        if let Some(cache) = self.cache.get() {
            return Ok(cache);
        }
        let _building = self.building.lock();
        if let Some(cache) = self.cache.get() {
            return Ok(cache);
        }
        let source = self.upgrade()?;
        let cache = DedupCache::rebuild(
            self.window_ms,
            self.max_entries,
            &source,
            &self.topic,
            logs,
            now_micros(),
        )?;
        Ok(self.cache.get_or_init(|| cache))
    }

    /// The data directory the topic belongs to, for reads across its tiers.
    fn upgrade(&self) -> Result<Arc<dyn PartitionSource>> {
        self.source.upgrade().ok_or_else(|| {
            Error::invalid(
                format!("topic {:?}", self.topic),
                "its fabric was closed; open it again to produce",
            )
        })
    }

    /// Whether the partition still holds the record of `id` at `position`,
    /// in its warm tier or hot log: retention or truncation may have
    /// removed it, and a truncated offset may be reused.
    pub(crate) fn still_holds(
        &self,
        logs: &[Arc<Log>],
        position: Position,
        id: u128,
    ) -> Result<bool> {
        let Some(log) = logs.get(position.partition as usize) else {
            return Ok(false);
        };
        let source = self.upgrade()?;
        let (earliest, end) = source.retained_range(&self.topic, position.partition, log);
        if position.offset < earliest || position.offset >= end {
            return Ok(false);
        }
        let view = source.partition_view(&self.topic, position.partition)?;
        let first = match view.open(position.offset) {
            Ok(TierRecords::Hot(mut r)) => r.next(),
            Ok(TierRecords::Warm(mut w)) => w.next(),
            Err(Error::OffsetExpired { .. } | Error::OffsetOutOfRange { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        match first {
            Some(Ok(r)) => Ok(r.offset == position.offset && event_id_of(&r.value) == Some(id)),
            // An archive retention removed meanwhile: the record is gone.
            Some(Err(Error::Io { source, .. }))
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(false)
            }
            Some(Err(e)) => Err(e),
            None => Ok(false),
        }
    }
}

/// One partition's retained batches, warm tier then hot log, for the rebuild.
struct Tiered {
    view: PartitionView,
}

impl Tiered {
    /// The first offset in `floor..end` the rebuild must read: the first
    /// batch appended at or after `since`, found by binary search (append
    /// times never decrease within a partition; a version 1 batch, which has
    /// none, counts as earlier: all of them precede the version 2 ones), or,
    /// when the first record whose timestamp is at or after `since` sits in a
    /// version 1 batch, that record (version 1 batches keep the old rule).
    fn window_start(&self, floor: u64, end: u64, since: i64) -> Result<u64> {
        let (mut lo, mut hi) = (floor, end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.batch_at(mid, end)? {
                Some(h) if h.appended_at.is_some_and(|t| t >= since) => {
                    hi = h.base_offset.max(lo);
                }
                Some(h) => lo = h.next_offset().clamp(mid + 1, hi),
                // Removed meanwhile by retention: older than anything kept.
                None => lo = mid + 1,
            }
        }
        if let Some(o) = self.view.offset_for_time(since)?
            && (floor..lo).contains(&o)
            && self
                .batch_at(o, end)?
                .is_some_and(|h| h.appended_at.is_none())
        {
            return Ok(o);
        }
        Ok(lo)
    }

    /// The header of the batch holding `offset`, if it is still retained.
    fn batch_at(&self, offset: u64, end: u64) -> Result<Option<BatchHeader>> {
        let mut found = None;
        self.walk(offset, end, &mut |h, _| {
            found = Some(*h);
            false
        })?;
        Ok(found.filter(|h| h.base_offset <= offset))
    }

    /// Calls `visit` with each retained batch holding offsets in `from..end`
    /// (and its records from `from` on), in offset order, until it returns
    /// false. Offsets that retention removed are skipped; a segment that
    /// maintenance moves from hot to warm meanwhile is looked up again.
    fn walk(
        &self,
        from: u64,
        end: u64,
        visit: &mut dyn FnMut(&BatchHeader, RecordIter<'_>) -> bool,
    ) -> Result<()> {
        let log = &self.view.log;
        let mut next = from;
        let mut end = end;
        let mut stalls = 0;
        while next < end {
            let before = next;
            let hot_earliest = log.earliest_offset();
            if next >= hot_earliest {
                match log.batches(next) {
                    Ok(batches) => {
                        for b in batches {
                            let b = b?;
                            let h = *b.header();
                            if h.base_offset >= end || !visit(&h, b.records()) {
                                return Ok(());
                            }
                            next = h.next_offset();
                        }
                    }
                    // Moved to the warm tier meanwhile: look there.
                    Err(Error::OffsetOutOfRange { .. }) if log.earliest_offset() > next => {}
                    Err(e) => return Err(e),
                }
            } else {
                let snap = self.view.warm.snapshot();
                let Some(first) = snap.iter().position(|a| next < a.next()) else {
                    // Nothing warm holds it: removed meanwhile (or a gap a
                    // move in progress closes): go on from the hot log.
                    next = next.max(log.earliest_offset());
                    stalls += usize::from(next == before);
                    if stalls > 8 {
                        return Err(moving(&self.view));
                    }
                    continue;
                };
                // Offsets below the first archive were removed by retention.
                let later = snap.get(first..).unwrap_or_default();
                if let Some(archive) = later.first() {
                    next = next.max(archive.base());
                }
                'archives: for archive in later {
                    for i in archive.block_for_offset(next)..archive.blocks.len() {
                        let block = match archive.read_block(i) {
                            Ok(block) => block,
                            // Removed by retention meanwhile: look again.
                            Err(Error::Io { source, .. })
                                if source.kind() == std::io::ErrorKind::NotFound =>
                            {
                                break 'archives;
                            }
                            Err(e) => return Err(e),
                        };
                        let mut rest: &[u8] = &block;
                        while !rest.is_empty() {
                            // The block passed `decode_block`: its batches are whole and verified.
                            let h = crate::storage::batch::parse_header(rest)
                                .map_err(|e| Error::corrupted(&archive.path, 0, e.to_string()))?;
                            let (batch, tail) =
                                rest.split_at_checked(h.length as usize).ok_or_else(|| {
                                    Error::corrupted(&archive.path, 0, "batch runs past its block")
                                })?;
                            if h.next_offset() > next {
                                if h.base_offset >= end {
                                    return Ok(());
                                }
                                let view = BatchView::trusted(batch, h);
                                if !visit(&h, view.records_from(next)) {
                                    return Ok(());
                                }
                                next = h.next_offset();
                            }
                            rest = tail;
                        }
                    }
                }
            }
            if next == before {
                // No progress: a truncation shortened the log, or
                // maintenance moved what we were about to read.
                end = end.min(log.next_offset());
                stalls += 1;
                if stalls > 8 {
                    return Err(moving(&self.view));
                }
            }
        }
        Ok(())
    }
}

fn moving(view: &PartitionView) -> Error {
    Error::invalid(
        format!(
            "dedup rebuild of topic {:?} partition {}",
            view.topic, view.partition
        ),
        "maintenance kept moving segments under it; retry",
    )
}

impl LazyDedup {
    /// The (not yet built) cache of `topic`, reading through `source`.
    pub(crate) fn new(source: WeakSource, topic: &str, window_ms: u64, max_entries: u64) -> Self {
        LazyDedup {
            window_ms,
            max_entries,
            source,
            topic: topic.to_owned(),
            cache: std::sync::OnceLock::new(),
            building: Mutex::new(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(c: &DedupCache, id: u128, now: i64) -> Option<Position> {
        let mut out = None;
        c.claim_many(&[id], now, &mut |_, _| Ok(true), &mut |_, found| {
            out = found
        })
        .unwrap();
        out
    }

    fn commit(c: &DedupCache, id: u128, position: Position, now: i64) {
        c.commit_many([(id, position)], now);
    }

    fn at(partition: u32, offset: u64, appended_at: i64) -> Position {
        Position {
            partition,
            offset,
            appended_at,
        }
    }

    #[test]
    fn claim_commit_lookup_and_window() {
        let c = DedupCache::new(1, 10); // 1 ms = 1000 µs
        assert_eq!(claim(&c, 7, 5_000), None);
        commit(&c, 7, at(0, 3, 5_000), 5_000);
        assert!(claim(&c, 7, 5_500) == Some(at(0, 3, 5_000)));
        assert_eq!(c.lookup(7, 6_000), Some(at(0, 3, 5_000)));
        assert_eq!(c.lookup(7, 6_001), None, "outside the window");
        assert_eq!(claim(&c, 7, 6_001), None);
        c.abandon(7);
        assert_eq!(
            c.lookup(7, 5_000),
            None,
            "abandoned claim removed the stale entry"
        );
    }

    #[test]
    fn bulk_insert_keeps_every_id_and_the_newest_copy() {
        let c = DedupCache::new(60_000, 100_000);
        // 20,000 ids, every tenth one twice.
        let mut found = Vec::new();
        for i in 0..20_000u64 {
            let id = u128::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
            found.push((id, at(0, i, i as i64)));
            if i % 10 == 0 {
                found.push((id, at(1, i, i as i64)));
            }
        }
        DedupCache::bulk_insert(&mut c.state.lock(), found);
        assert_eq!(c.len(), 20_000);
        for i in 0..20_000u64 {
            let id = u128::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
            let want = at(u32::from(i % 10 == 0), i, i as i64);
            assert_eq!(c.lookup(id, 0), Some(want), "id {i}");
        }
        // The queue evicts in time order: shrink the cap by committing more.
        let c2 = DedupCache::new(60_000, 5_000);
        let found: Vec<_> = (0..20_000u64)
            .map(|i| (u128::from(i) << 64 | 1, at(0, i, i as i64)))
            .collect();
        DedupCache::bulk_insert(&mut c2.state.lock(), found);
        assert_eq!(claim(&c2, u128::MAX, 0), None);
        commit(&c2, u128::MAX, at(0, 99_999, 0), 0);
        assert_eq!(c2.len(), 5_000);
        assert_eq!(c2.lookup(u128::from(15_000u64) << 64 | 1, 0), None);
        assert!(c2.lookup(u128::from(15_001u64) << 64 | 1, 0).is_some());
    }

    #[test]
    fn count_cap_evicts_oldest() {
        let c = DedupCache::new(60_000, 3);
        for id in 0..5u128 {
            assert_eq!(claim(&c, id, 0), None);
            commit(&c, id, at(0, id as u64, 0), 0);
        }
        assert_eq!(c.len(), 3);
        assert_eq!(c.lookup(0, 0), None);
        assert_eq!(c.lookup(1, 0), None);
        assert!(c.lookup(4, 0).is_some());
    }

    #[test]
    fn fixed_position_id_matches_decoder() {
        let e = crate::fixtures::FixtureGenerator::new(1, 10)
            .next(crate::fixtures::FixtureKind::all()[0]);
        let bytes = e.to_bytes();
        assert_eq!(event_id_of(&bytes), Some(e.event_id.as_u128()));
        assert_eq!(event_id_of(b"not an envelope"), None);
    }
}
