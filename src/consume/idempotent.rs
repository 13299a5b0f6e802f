//! The processed-event window of an idempotent consumer (effectively-once,
//! consumer side).
//!
//! Owns the bounded set of `event_id`s (each with an optional entity version)
//! that a consumer group recorded as processed, with eviction by count and by
//! age. The group's cursor store persists it inside the same state-log record
//! as the cursor commit, so the cursor and the ids it covers become durable
//! together (see `docs/FORMAT.md`, "Consumer group cursor logs"). It never
//! does I/O and never decides what to deliver: the consumer asks it.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

use uuid::Uuid;

/// An `event_id` as a hash key: hashed as one 128-bit integer, not as a
/// length-prefixed byte slice (half the hashing work of `Uuid`'s own `Hash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IdKey(Uuid);

impl std::hash::Hash for IdKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(self.0.as_u128());
    }
}

/// Bounded map of processed `event_id` → (highest entity version, when first
/// recorded, µs since the epoch).
#[derive(Debug, Clone)]
pub(crate) struct ProcessedWindow {
    max_ids: usize,
    max_age_micros: i64,
    map: HashMap<IdKey, (u64, i64)>,
    /// Insertion order with record times, for eviction (oldest first)
    /// without hashing the survivors.
    order: VecDeque<(Uuid, i64)>,
}

impl ProcessedWindow {
    /// A window keeping at most `max_ids` ids, none older than `max_age_micros`.
    pub(crate) fn new(max_ids: usize, max_age_micros: i64) -> Self {
        ProcessedWindow {
            max_ids: max_ids.max(1),
            max_age_micros: max_age_micros.max(1),
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether `id` was recorded with an entity version at least `version`
    /// (events without a version use 0: any record of the id covers them).
    pub(crate) fn covers(&self, id: &Uuid, version: u64) -> bool {
        self.map
            .get(&IdKey(*id))
            .is_some_and(|&(v, _)| v >= version)
    }

    /// Records `id` as processed at `version`, recorded at `at_micros`; then
    /// evicts what falls outside the bounds as of `at_micros`.
    pub(crate) fn record(&mut self, id: Uuid, version: u64, at_micros: i64) {
        match self.map.entry(IdKey(id)) {
            Entry::Occupied(mut entry) => {
                let kept = entry.get_mut();
                kept.0 = kept.0.max(version);
            }
            Entry::Vacant(slot) => {
                slot.insert((version, at_micros));
                self.order.push_back((id, at_micros));
            }
        }
        self.evict(at_micros);
    }

    /// Drops the oldest ids beyond the count bound and ids older than the age
    /// bound as of `now_micros`.
    pub(crate) fn evict(&mut self, now_micros: i64) {
        while let Some(&(id, at)) = self.order.front() {
            let too_many = self.order.len() > self.max_ids;
            let too_old = now_micros.saturating_sub(at) > self.max_age_micros;
            if !(too_many || too_old) {
                break;
            }
            self.order.pop_front();
            self.map.remove(&IdKey(id));
        }
    }

    /// Makes room for `more` ids without rehashing (bounded by the window).
    pub(crate) fn reserve(&mut self, more: usize) {
        let room = more.min(self.max_ids.saturating_sub(self.order.len()));
        self.map.reserve(room);
        self.order.reserve(room);
    }

    /// Number of ids held.
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// Every id with its version and record time, oldest first (what a
    /// snapshot persists).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (Uuid, u64, i64)> + '_ {
        self.order.iter().filter_map(|(id, _)| {
            let &(version, at) = self.map.get(&IdKey(*id))?;
            Some((*id, version, at))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn versions_cover_older_and_equal_versions_only() {
        let mut w = ProcessedWindow::new(10, 1_000_000);
        w.record(id(1), 5, 0);
        assert!(w.covers(&id(1), 0));
        assert!(w.covers(&id(1), 5));
        assert!(!w.covers(&id(1), 6));
        assert!(!w.covers(&id(2), 0));
        w.record(id(1), 3, 0);
        assert!(w.covers(&id(1), 5), "a lower version never lowers the mark");
    }

    #[test]
    fn eviction_by_count_and_by_age_drops_the_oldest() {
        let mut w = ProcessedWindow::new(3, 100);
        for n in 0..5 {
            w.record(id(n), 0, n as i64);
        }
        assert_eq!(w.len(), 3);
        assert!(!w.covers(&id(1), 0));
        assert!(w.covers(&id(2), 0));
        w.evict(103);
        assert!(!w.covers(&id(2), 0), "older than 100 µs");
        assert!(w.covers(&id(3), 0));
        let kept: Vec<_> = w.entries().map(|(i, _, _)| i).collect();
        assert_eq!(kept, [id(3), id(4)]);
    }
}
