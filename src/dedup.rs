//! The producer-side dedup cache of one topic: `event_id` → where that event
//! was appended, for the topic's dedup window.
//!
//! Owns the in-memory map (O(1) lookups, bounded by time and by entry count),
//! the claim protocol that makes two producers racing the same `event_id`
//! append it exactly once, and the rebuild from the log tail when a topic is
//! opened. It persists nothing: every entry is a fact the partition logs
//! already hold, so after a restart or a crash the cache is rebuilt from the
//! window's worth of records (found with the time index) and can never claim
//! an event the logs lost. It must never decide on its own that a cached
//! position is still valid: retention and truncation remove records under
//! it, so the producer checks a hit against the log before trusting it
//! ([`crate::producer`]).
//!
//! The window is measured on the record timestamp, which is the envelope's
//! `emitted_at`: a retry of the same envelope carries the same `emitted_at`,
//! and the rebuild can find exactly those records through
//! [`Log::offset_for_time`].

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::error::Result;
use crate::log::{Log, now_micros};

/// Where an event was appended: its partition, offset and record timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) partition: u32,
    pub(crate) offset: u64,
    pub(crate) timestamp: i64,
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

/// An eviction-queue entry: the timestamp is copied here so the common
/// check "is the oldest entry still in the window?" needs no table probe.
#[derive(Debug, Clone, Copy)]
struct Queued {
    id: u128,
    seq: u64,
    timestamp: i64,
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

    /// Rebuilds the cache from the logs' tails: every record whose timestamp
    /// is within the window of `now_us`, found with each partition's time
    /// index, reading only the event id bytes of each record. When more than
    /// `max_entries` qualify, the most recent (by record timestamp) are kept.
    pub(crate) fn rebuild(
        window_ms: u64,
        max_entries: u64,
        logs: &[Arc<Log>],
        now_us: i64,
    ) -> Result<DedupCache> {
        let cache = DedupCache::new(window_ms, max_entries);
        let since = now_us.saturating_sub(cache.window_us);
        let mut starts = Vec::with_capacity(logs.len());
        for log in logs {
            // At most the newest `max_entries` records of each partition can
            // be kept, which bounds the scan (and its memory) on a busy topic.
            let floor = log.next_offset().saturating_sub(cache.max_entries as u64);
            starts.push(log.offset_for_time(since)?.map(|from| from.max(floor)));
        }
        let candidates: u64 = logs
            .iter()
            .zip(&starts)
            .filter_map(|(log, from)| from.map(|f| log.next_offset().saturating_sub(f)))
            .sum();
        let mut found: Vec<(u128, Position)> = Vec::with_capacity(
            usize::try_from(candidates)
                .unwrap_or(0)
                .min(cache.max_entries * 2),
        );
        for ((partition, log), from) in logs.iter().enumerate().zip(starts) {
            let Some(from) = from else {
                continue;
            };
            for batch in log.batches(from)? {
                let batch = batch?;
                for r in batch.records() {
                    if r.timestamp < since {
                        continue;
                    }
                    if let Some(id) = event_id_of(r.value) {
                        found.push((
                            id,
                            Position {
                                partition: partition as u32,
                                offset: r.offset,
                                timestamp: r.timestamp,
                            },
                        ));
                    }
                }
            }
        }
        if found.len() > cache.max_entries {
            let cut = found.len() - cache.max_entries;
            found.select_nth_unstable_by_key(cut, |(_, p)| p.timestamp);
            found.drain(..cut);
        }
        // Oldest first, so count eviction later removes the oldest. Each
        // partition's records are (nearly) in time order: the stable sort
        // merges those runs instead of sorting from scratch.
        if logs.len() > 1 {
            found.sort_by_key(|(_, p)| p.timestamp);
        }
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
            timestamp: position.timestamp,
        });
    }

    fn in_window(&self, position: &Position, now_us: i64) -> bool {
        position.timestamp >= now_us.saturating_sub(self.window_us)
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
            if !over_cap && front.timestamp >= since {
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

/// A topic's dedup cache, rebuilt from the log tails on first use (the first
/// producer or import of the topic in this process), so opening a data
/// directory does not pay for the windows of topics nobody produces to.
#[derive(Debug)]
pub(crate) struct LazyDedup {
    window_ms: u64,
    max_entries: u64,
    cache: std::sync::OnceLock<DedupCache>,
    building: Mutex<()>,
}

impl LazyDedup {
    /// The cache, rebuilt from `logs` (the topic's partitions) the first time.
    pub(crate) fn get(&self, logs: &[Arc<Log>]) -> Result<&DedupCache> {
        if let Some(cache) = self.cache.get() {
            return Ok(cache);
        }
        let _building = self.building.lock();
        if let Some(cache) = self.cache.get() {
            return Ok(cache);
        }
        let cache = DedupCache::rebuild(self.window_ms, self.max_entries, logs, now_micros())?;
        Ok(self.cache.get_or_init(|| cache))
    }
}

/// The dedup cache and sampler a topic handle carries: the cache only for a
/// writer with the window on, the sampler when the topic sets a rate.
pub(crate) fn topic_guards(
    config: &crate::topic::TopicConfig,
    read_only: bool,
) -> (Option<LazyDedup>, Option<crate::sampling::SystemSampler>) {
    let dedup = (!read_only && config.dedup_window_ms > 0).then(|| LazyDedup {
        window_ms: config.dedup_window_ms,
        max_entries: config.dedup_max_entries,
        cache: std::sync::OnceLock::new(),
        building: Mutex::new(()),
    });
    let sampler = config
        .system_events_per_sec
        .map(crate::sampling::SystemSampler::new);
    (dedup, sampler)
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

    fn at(partition: u32, offset: u64, timestamp: i64) -> Position {
        Position {
            partition,
            offset,
            timestamp,
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
