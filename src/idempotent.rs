//! The processed-event window of an idempotent consumer (effectively-once,
//! consumer side).
//!
//! Owns the bounded set of `event_id`s (each with an optional entity version)
//! that a consumer group recorded as processed, with eviction by count and by
//! age. The group's cursor store persists it inside the same state-log record
//! as the cursor commit, so the cursor and the ids it covers become durable
//! together (see `docs/FORMAT.md`, "Consumer group cursor logs"). It never
//! does I/O and never decides what to deliver: the consumer asks it.

use std::collections::{HashMap, VecDeque};

use uuid::Uuid;

/// Bounded map of processed `event_id` → (highest entity version, when first
/// recorded, µs since the epoch).
#[derive(Debug, Clone)]
pub(crate) struct ProcessedWindow {
    max_ids: usize,
    max_age_micros: i64,
    map: HashMap<Uuid, (u64, i64)>,
    /// Insertion order, for eviction (oldest first).
    order: VecDeque<Uuid>,
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
        self.map.get(id).is_some_and(|&(v, _)| v >= version)
    }

    /// Records `id` as processed at `version`, recorded at `at_micros`; then
    /// evicts what falls outside the bounds as of `at_micros`.
    pub(crate) fn record(&mut self, id: Uuid, version: u64, at_micros: i64) {
        match self.map.get_mut(&id) {
            Some(entry) => entry.0 = entry.0.max(version),
            None => {
                self.map.insert(id, (version, at_micros));
                self.order.push_back(id);
            }
        }
        self.evict(at_micros);
    }

    /// Drops the oldest ids beyond the count bound and ids older than the age
    /// bound as of `now_micros`.
    pub(crate) fn evict(&mut self, now_micros: i64) {
        while let Some(oldest) = self.order.front() {
            let at = self.map.get(oldest).map_or(i64::MIN, |&(_, at)| at);
            let too_many = self.order.len() > self.max_ids;
            let too_old = now_micros.saturating_sub(at) > self.max_age_micros;
            if !(too_many || too_old) {
                break;
            }
            if let Some(id) = self.order.pop_front() {
                self.map.remove(&id);
            }
        }
    }

    /// Number of ids held.
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// Every id with its version and record time, oldest first (what a
    /// snapshot persists).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (Uuid, u64, i64)> + '_ {
        self.order.iter().filter_map(|id| {
            let &(version, at) = self.map.get(id)?;
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
