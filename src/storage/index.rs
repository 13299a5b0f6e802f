//! The sparse offset-and-time index of one segment.
//!
//! Owns the index entry layout and the searches over it. An entry is written
//! every `index_interval_bytes` of log and points at a batch start; it also
//! carries the largest record timestamp seen *before* that batch, which makes
//! it a max-timestamp (time) index as well: that running maximum never
//! decreases, so "first record with timestamp >= t" is a binary search even
//! when record timestamps are out of order.
//!
//! An index is a cache. It never decides what the log contains: a missing,
//! short or corrupt index is rebuilt from its segment, never trusted blindly.
//!
//! ```text
//! entry := relative_offset:u32 position:u32 max_timestamp_before:i64   (16 bytes, LE)
//! ```

/// Size of one index entry in bytes.
pub(crate) const ENTRY_LEN: usize = 16;

/// One decoded index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    /// Offset of the batch minus the segment's base offset.
    pub relative_offset: u32,
    /// Byte position of the batch in the segment file.
    pub position: u32,
    /// Largest timestamp of any record before this batch in the segment.
    pub max_timestamp_before: i64,
}

impl IndexEntry {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_le_bytes());
        out.extend_from_slice(&self.position.to_le_bytes());
        out.extend_from_slice(&self.max_timestamp_before.to_le_bytes());
    }

    /// Decodes one whole entry; its length is in its type, so no read can
    /// fall short (and none needs a bounds check).
    fn decode(entry: &[u8; ENTRY_LEN]) -> IndexEntry {
        let [r0, r1, r2, r3, p0, p1, p2, p3, max_timestamp_before @ ..] = *entry;
        IndexEntry {
            relative_offset: u32::from_le_bytes([r0, r1, r2, r3]),
            position: u32::from_le_bytes([p0, p1, p2, p3]),
            max_timestamp_before: i64::from_le_bytes(max_timestamp_before),
        }
    }
}

/// A read-only view of index bytes (in memory or mapped).
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexView<'a> {
    entries: &'a [[u8; ENTRY_LEN]],
}

impl<'a> IndexView<'a> {
    /// Views `bytes`, ignoring a trailing partial entry.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        let (entries, _partial) = bytes.as_chunks::<ENTRY_LEN>();
        IndexView { entries }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entry `i`; callers are the searches below, which only probe `i < len()`.
    #[expect(
        clippy::indexing_slicing,
        reason = "every caller is a search over 0..len() that probes only indexes below len(); \
                  an Option here would put an unreachable branch on the point-read path"
    )]
    fn get(&self, i: usize) -> IndexEntry {
        IndexEntry::decode(&self.entries[i])
    }

    /// Index of the first entry for which `pred` is false, given that `pred`
    /// is true for a prefix of the entries.
    fn partition_point(&self, pred: impl Fn(IndexEntry) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(self.get(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// `partition_point(|e| e.relative_offset <= target)`, by interpolation:
    /// entries are spread almost evenly over offsets, so a guess from the
    /// first and last entry lands within a few entries of the answer, and a
    /// point read pays one or two cache misses instead of a binary search's
    /// dozen. Narrows by binary search if the guesses stop converging.
    fn offset_partition_point(&self, target: u32) -> usize {
        let (mut lo, mut hi) = (0usize, self.len());
        for _ in 0..4 {
            if hi - lo <= 8 {
                break;
            }
            let (first, last) = (
                self.get(lo).relative_offset,
                self.get(hi - 1).relative_offset,
            );
            if target < first {
                return lo;
            }
            if target >= last {
                return hi;
            }
            let span = u64::from(last - first).max(1);
            let guess = lo + ((u64::from(target - first) * (hi - 1 - lo) as u64) / span) as usize;
            // Probe a small window around the guess.
            let a = guess.saturating_sub(2).max(lo);
            let b = (guess + 3).min(hi);
            if self.get(a).relative_offset > target {
                hi = a;
            } else if b < hi && self.get(b).relative_offset <= target {
                lo = b + 1;
            } else {
                lo = a + 1;
                hi = b;
                break;
            }
        }
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.get(mid).relative_offset <= target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The last indexed batch starting at or before `relative_offset` as
    /// (its relative offset, its position), or (0, 0) when none: the place to
    /// start scanning for that offset.
    pub(crate) fn floor_for_offset(&self, relative_offset: u32) -> (u32, u32) {
        match self.offset_partition_point(relative_offset) {
            0 => (0, 0),
            n => {
                let e = self.get(n - 1);
                (e.relative_offset, e.position)
            }
        }
    }

    /// Position of the last indexed batch before which every record is older
    /// than `timestamp` (0 when none): the place to start scanning for the
    /// first record with a timestamp at or after `timestamp`.
    pub(crate) fn position_for_time(&self, timestamp: i64) -> u32 {
        match self.partition_point(|e| e.max_timestamp_before < timestamp) {
            0 => 0,
            n => self.get(n - 1).position,
        }
    }

    /// Whether the entries are well formed for a segment of `data_len` bytes:
    /// strictly increasing offsets and positions, non-decreasing timestamps.
    pub(crate) fn is_consistent(&self, data_len: u64) -> bool {
        let mut previous: Option<IndexEntry> = None;
        (0..self.len()).all(|i| {
            let e = self.get(i);
            let ok = u64::from(e.position) < data_len
                && previous.is_none_or(|p| {
                    e.relative_offset > p.relative_offset
                        && e.position > p.position
                        && e.max_timestamp_before >= p.max_timestamp_before
                });
            previous = Some(e);
            ok
        })
    }
}

/// Accumulates the index of a segment as batches are appended or scanned.
#[derive(Debug, Clone)]
pub(crate) struct IndexBuilder {
    bytes: Vec<u8>,
    interval: u32,
    last_entry_position: u32,
    max_timestamp: i64,
}

impl IndexBuilder {
    pub(crate) fn new(interval: u32) -> Self {
        IndexBuilder {
            bytes: Vec::new(),
            interval: interval.max(1),
            last_entry_position: 0,
            max_timestamp: i64::MIN,
        }
    }

    /// Resumes from entries already written for the first part of a segment.
    pub(crate) fn resume(interval: u32, bytes: Vec<u8>, max_timestamp: i64) -> Self {
        let view = IndexView::new(&bytes);
        let last_entry_position = match view.len() {
            0 => 0,
            n => view.get(n - 1).position,
        };
        let whole = view.len() * ENTRY_LEN;
        let mut bytes = bytes;
        bytes.truncate(whole);
        IndexBuilder {
            bytes,
            interval: interval.max(1),
            last_entry_position,
            max_timestamp,
        }
    }

    /// Records a batch about to be (or just) placed at `position`.
    pub(crate) fn add_batch(&mut self, relative_offset: u32, position: u32, batch_max_ts: i64) {
        if position >= self.last_entry_position.saturating_add(self.interval) {
            IndexEntry {
                relative_offset,
                position,
                max_timestamp_before: self.max_timestamp,
            }
            .encode(&mut self.bytes);
            self.last_entry_position = position;
        }
        self.max_timestamp = self.max_timestamp.max(batch_max_ts);
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn view(&self) -> IndexView<'_> {
        IndexView::new(&self.bytes)
    }

    /// Largest timestamp of any batch added so far (`i64::MIN` when none).
    pub(crate) fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn interpolation_agrees_with_binary_search(
            gaps in proptest::collection::vec(1u32..5000, 0..300),
            target in any::<u32>(),
        ) {
            let mut b = IndexBuilder::new(1);
            let mut rel = 0u32;
            for (i, g) in gaps.iter().enumerate() {
                rel = rel.saturating_add(*g);
                b.add_batch(rel, (i as u32 + 1) * 16, 0);
            }
            let v = b.view();
            let t = target % rel.saturating_add(10).max(1);
            let want = v.partition_point(|e| e.relative_offset <= t);
            prop_assert_eq!(v.offset_partition_point(t), want);
        }
    }

    #[test]
    fn lookups_find_the_floor_entry() {
        let mut b = IndexBuilder::new(100);
        // batches of 60 bytes, 10 records each, timestamps out of order
        let ts = [50, 10, 70, 60, 90, 80];
        for (i, t) in ts.iter().enumerate() {
            b.add_batch(i as u32 * 10, i as u32 * 60, *t);
        }
        let v = b.view();
        assert!(v.is_consistent(360));
        assert_eq!(v.len(), 2); // at positions 120 and 240
        assert_eq!(v.floor_for_offset(0), (0, 0));
        assert_eq!(v.floor_for_offset(19), (0, 0));
        assert_eq!(v.floor_for_offset(20), (20, 120));
        assert_eq!(v.floor_for_offset(55), (40, 240));
        // entry at 120 has max before = 50; at 240 max before = 70
        assert_eq!(v.position_for_time(40), 0);
        assert_eq!(v.position_for_time(51), 120);
        assert_eq!(v.position_for_time(71), 240);
    }
}
