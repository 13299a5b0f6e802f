//! What a queue persists: per partition an ack floor, the acked offsets
//! above it, how far first deliveries got, and the attempt history of
//! messages that were redelivered or failed.
//!
//! Owns the queue state-record layout (`docs/FORMAT.md`, "Queue state
//! records") inside a [`crate::storage::statelog`] container: encoding, decoding and
//! folding a sequence of records back into [`Persisted`]. Acked offsets are
//! stored as runs (delta-encoded LEB128), so in-order acks cost a few bytes
//! each and a snapshot of a mostly contiguous set is tiny. It never decides
//! when to write or compact (that is [`crate::consume::queue`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::error::{Error, Result};
use crate::storage::le::LeReader;

/// Version byte leading every queue state record.
pub(crate) const QUEUE_STATE_VERSION: u8 = 1;
const KIND_BINDING: u8 = 0;
const KIND_ACKS: u8 = 1;
const KIND_DELIVERED: u8 = 2;
const KIND_HISTORY: u8 = 3;
const KIND_SNAPSHOT: u8 = 4;

/// Delivery and failure history of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct History {
    /// Deliveries so far.
    pub(crate) attempts: u32,
    /// First failure, µs (0: none yet).
    pub(crate) first_failure: i64,
    /// Last failure, µs (0: none yet).
    pub(crate) last_failure: i64,
    /// Not to be redelivered before this time, µs (0: at once).
    pub(crate) retry_at: i64,
    /// The last failure's text.
    pub(crate) error: String,
}

/// The persisted state of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PartitionState {
    /// Every offset below is done.
    pub(crate) floor: u64,
    /// Done offsets at or above `floor`, as runs (memory grows with the
    /// number of gaps, not of offsets: a run decoded from a few bytes stays
    /// a few bytes).
    pub(crate) acked: OffsetRuns,
    /// Every offset below was delivered at least once (or skipped).
    pub(crate) delivered_to: u64,
    /// History of messages redelivered or failed, by offset.
    pub(crate) history: HashMap<u64, History>,
}

/// A set of offsets stored as disjoint, non-adjacent runs `start..end`
/// keyed by `start`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OffsetRuns(BTreeMap<u64, u64>);

impl OffsetRuns {
    /// Whether `offset` is in the set.
    pub(crate) fn contains(&self, offset: u64) -> bool {
        self.0
            .range(..=offset)
            .next_back()
            .is_some_and(|(_, &end)| offset < end)
    }

    /// Adds `start..end`, merging with the runs it touches.
    pub(crate) fn insert_range(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let (mut s, mut e) = (start, end);
        if let Some((&ps, &pe)) = self.0.range(..=s).next_back()
            && pe >= s
        {
            s = ps;
            e = e.max(pe);
        }
        let touched: Vec<(u64, u64)> = self.0.range(s..=e).map(|(&a, &b)| (a, b)).collect();
        for (a, b) in touched {
            self.0.remove(&a);
            e = e.max(b);
        }
        self.0.insert(s, e);
    }

    /// Removes the run starting exactly at `offset`; returns its end.
    fn take_run_at(&mut self, offset: u64) -> Option<u64> {
        self.0.remove(&offset)
    }

    /// Drops every offset below `floor`.
    fn retain_from(&mut self, floor: u64) {
        let below: Vec<(u64, u64)> = self.0.range(..floor).map(|(&a, &b)| (a, b)).collect();
        for (start, end) in below {
            self.0.remove(&start);
            if end > floor {
                self.0.insert(floor, end);
            }
        }
    }

    /// The runs, ascending.
    pub(crate) fn runs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.0.iter().map(|(&s, &e)| (s, e))
    }
}

impl PartitionState {
    /// Whether `offset` is done (acked, dead-lettered or skipped for good).
    pub(crate) fn is_done(&self, offset: u64) -> bool {
        offset < self.floor || self.acked.contains(offset)
    }

    /// Marks `offset` done, advancing the floor over contiguous done offsets.
    pub(crate) fn mark_done(&mut self, offset: u64) {
        self.mark_done_range(offset, offset.saturating_add(1));
    }

    /// Marks `start..end` done, in time independent of its length.
    pub(crate) fn mark_done_range(&mut self, start: u64, end: u64) {
        if start <= self.floor {
            self.floor = self.floor.max(end);
            self.advance();
        } else {
            self.acked.insert_range(start, end);
        }
    }

    /// Drops acked runs the floor passed (cutting one it stands inside at
    /// the floor), then moves the floor over the run that starts there.
    fn advance(&mut self) {
        self.acked.retain_from(self.floor);
        while let Some(end) = self.acked.take_run_at(self.floor) {
            self.floor = end;
        }
    }

    /// Advances the floor over acked offsets and drops what it passed.
    pub(crate) fn normalise(&mut self) {
        self.advance();
        let floor = self.floor;
        let acked = &self.acked;
        self.history
            .retain(|&o, _| o >= floor && !acked.contains(o));
    }
}

/// Everything a queue's state log says, folded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Persisted {
    /// The topic the queue reads (from its binding record).
    pub(crate) topic: Option<String>,
    /// Per partition.
    pub(crate) partitions: BTreeMap<u32, PartitionState>,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends sorted, distinct `offsets` as runs: count, then (gap from the
/// previous run's end, length) per run.
fn put_runs(out: &mut Vec<u8>, offsets: impl IntoIterator<Item = u64>) {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for o in offsets {
        match runs.last_mut() {
            Some((start, len)) if *start + *len == o => *len += 1,
            _ => runs.push((o, 1)),
        }
    }
    put_run_list(out, runs);
}

/// Appends ascending, disjoint `(start, length)` runs.
fn put_run_list(out: &mut Vec<u8>, runs: Vec<(u64, u64)>) {
    put_varint(out, runs.len() as u64);
    let mut end = 0;
    for (start, len) in runs {
        put_varint(out, start - end);
        put_varint(out, len);
        end = start + len;
    }
}

fn header(kind: u8, partition: u32) -> Vec<u8> {
    let mut out = vec![QUEUE_STATE_VERSION, kind];
    out.extend_from_slice(&partition.to_le_bytes());
    out
}

/// The record binding the state to `topic`.
pub(crate) fn binding(topic: &str) -> Vec<u8> {
    let mut out = vec![QUEUE_STATE_VERSION, KIND_BINDING];
    out.extend_from_slice(topic.as_bytes());
    out
}

/// Offsets of `partition` acked (sorted, distinct).
pub(crate) fn acks(partition: u32, offsets: &[u64]) -> Vec<u8> {
    let mut out = header(KIND_ACKS, partition);
    put_runs(&mut out, offsets.iter().copied());
    out
}

/// Every offset of `partition` below `to` was delivered at least once.
pub(crate) fn delivered(partition: u32, to: u64) -> Vec<u8> {
    let mut out = header(KIND_DELIVERED, partition);
    out.extend_from_slice(&to.to_le_bytes());
    out
}

fn put_history(out: &mut Vec<u8>, offset: u64, h: &History) {
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&h.attempts.to_le_bytes());
    out.extend_from_slice(&h.first_failure.to_le_bytes());
    out.extend_from_slice(&h.last_failure.to_le_bytes());
    out.extend_from_slice(&h.retry_at.to_le_bytes());
    // Error texts are evidence for the DLQ, bounded like there.
    let mut cut = h.error.len().min(64 << 10);
    while !h.error.is_char_boundary(cut) {
        cut -= 1;
    }
    out.extend_from_slice(&(cut as u32).to_le_bytes());
    out.extend_from_slice(h.error.get(..cut).unwrap_or_default().as_bytes());
}

/// The history of one message (replaces any earlier one).
pub(crate) fn history(partition: u32, offset: u64, h: &History) -> Vec<u8> {
    let mut out = header(KIND_HISTORY, partition);
    put_history(&mut out, offset, h);
    out
}

/// A partition's whole state; `histories` must not name acked offsets.
pub(crate) fn snapshot<'a>(
    partition: u32,
    state: &PartitionState,
    histories: impl ExactSizeIterator<Item = (u64, &'a History)>,
) -> Vec<u8> {
    let mut out = header(KIND_SNAPSHOT, partition);
    out.extend_from_slice(&state.floor.to_le_bytes());
    out.extend_from_slice(&state.delivered_to.to_le_bytes());
    put_run_list(
        &mut out,
        state.acked.runs().map(|(s, e)| (s, e - s)).collect(),
    );
    out.extend_from_slice(&(histories.len() as u32).to_le_bytes());
    for (offset, h) in histories {
        put_history(&mut out, offset, h);
    }
    out
}

/// Reads the variable-length parts of a queue state record on top of the
/// crate's one bounds-checked reader: every short or malformed field is an
/// [`Error::Corrupted`] at its byte, never a default.
struct Parser<'a> {
    r: LeReader<'a>,
}

impl<'a> Parser<'a> {
    fn varint(&mut self, field: &str) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.r.u8(field)?;
            v |= u64::from(b & 0x7F).checked_shl(shift).ok_or_else(|| {
                self.r
                    .corrupted(format!("{field}: varint overflows 64 bits"))
            })?;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self
            .r
            .corrupted(format!("{field}: varint longer than 10 bytes")))
    }
    /// Decodes runs as `(start, end)` pairs. Each run costs the same to
    /// apply whatever its length, so a corrupt length cannot make recovery
    /// allocate in proportion to it.
    fn runs(&mut self, mut each: impl FnMut(u64, u64)) -> Result<()> {
        let count = self.varint("run count")?;
        let mut end = 0u64;
        for _ in 0..count {
            let overflow = |r: &LeReader<'a>| r.corrupted("acked run overflows u64");
            let start = end
                .checked_add(self.varint("run gap")?)
                .ok_or_else(|| overflow(&self.r))?;
            let len = self.varint("run length")?;
            end = start.checked_add(len).ok_or_else(|| overflow(&self.r))?;
            each(start, end);
        }
        Ok(())
    }
    fn history(&mut self) -> Result<(u64, History)> {
        let r = &mut self.r;
        let offset = r.u64("history offset")?;
        let attempts = r.u32("history attempts")?;
        let first_failure = r.i64("history first_failure")?;
        let last_failure = r.i64("history last_failure")?;
        let retry_at = r.i64("history retry_at")?;
        let len = r.u32("history error length")? as usize;
        let at = r.position();
        let text = r.bytes(len, "history error text")?;
        let error = String::from_utf8(text.to_vec())
            .map_err(|_| r.corrupted_at(at, "history error text is not UTF-8"))?;
        Ok((
            offset,
            History {
                attempts,
                first_failure,
                last_failure,
                retry_at,
                error,
            },
        ))
    }
}

/// Folds the payloads of a queue state log, in file order. A malformed
/// payload is [`Error::Corrupted`] naming the file, the record and the byte
/// within its payload where the bad field starts.
pub(crate) fn fold(records: &[Vec<u8>], path: &Path) -> Result<Persisted> {
    let mut state = Persisted::default();
    for (i, record) in records.iter().enumerate() {
        apply(&mut state, record, path).map_err(|e| match e {
            Error::Corrupted {
                path,
                position,
                reason,
            } => Error::Corrupted {
                path,
                position,
                reason: format!(
                    "queue state record {i} ({} bytes, inside an intact state-log record) is \
                     malformed at byte {position} of its payload: {reason}",
                    record.len()
                ),
            },
            other => other,
        })?;
    }
    for p in state.partitions.values_mut() {
        p.normalise();
    }
    Ok(state)
}

fn apply(state: &mut Persisted, record: &[u8], path: &Path) -> Result<()> {
    let mut p = Parser {
        r: LeReader::new(record, path, 0),
    };
    let version = p.r.u8("queue state version")?;
    if version != QUEUE_STATE_VERSION {
        return Err(p.r.corrupted_at(
            0,
            format!("unknown version {version}; this build reads {QUEUE_STATE_VERSION}"),
        ));
    }
    let kind = p.r.u8("queue state record kind")?;
    if kind == KIND_BINDING {
        let name = p.r.bytes(p.r.remaining(), "topic binding")?;
        let topic = String::from_utf8(name.to_vec())
            .map_err(|_| p.r.corrupted_at(2, "the bound topic name is not UTF-8"))?;
        state.topic = Some(topic);
        return Ok(());
    }
    let partition = p.r.u32("partition")?;
    let part = state.partitions.entry(partition).or_default();
    match kind {
        KIND_ACKS => {
            p.runs(|start, end| part.mark_done_range(start, end))?;
        }
        KIND_DELIVERED => {
            part.delivered_to = part.delivered_to.max(p.r.u64("delivered_to")?);
        }
        KIND_HISTORY => {
            let (offset, h) = p.history()?;
            part.history.insert(offset, h);
        }
        KIND_SNAPSHOT => {
            let mut fresh = PartitionState {
                floor: p.r.u64("snapshot floor")?,
                delivered_to: p.r.u64("snapshot delivered_to")?,
                ..PartitionState::default()
            };
            p.runs(|start, end| fresh.acked.insert_range(start, end))?;
            for _ in 0..p.r.u32("snapshot history count")? {
                let (offset, h) = p.history()?;
                fresh.history.insert(offset, h);
            }
            *part = fresh;
        }
        _ => return Err(p.r.corrupted_at(1, format!("unknown record kind {kind}"))),
    }
    match p.r.remaining() {
        0 => Ok(()),
        extra => Err(p.r.corrupted(format!("{extra} bytes after the last field"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_fold_back_into_the_state_they_describe() {
        let h = History {
            attempts: 3,
            first_failure: 10,
            last_failure: 20,
            retry_at: 30,
            error: "boom ✗".into(),
        };
        let records = vec![
            binding("billing.domain.v1"),
            delivered(0, 10),
            acks(0, &[0, 1, 2, 5, 7, 8]),
            history(0, 3, &h),
            acks(1, &[4]),
        ];
        let got = fold(&records, Path::new("x")).unwrap();
        assert_eq!(got.topic.as_deref(), Some("billing.domain.v1"));
        let p0 = &got.partitions[&0];
        assert_eq!(p0.floor, 3);
        assert_eq!(p0.acked.runs().collect::<Vec<_>>(), [(5, 6), (7, 9)]);
        assert_eq!(p0.delivered_to, 10);
        assert_eq!(p0.history[&3], h);
        assert_eq!(
            got.partitions[&1].acked.runs().collect::<Vec<_>>(),
            [(4, 5)]
        );

        let snap = snapshot(0, p0, p0.history.iter().map(|(&o, h)| (o, h)));
        let again = fold(&[binding("billing.domain.v1"), snap], Path::new("x")).unwrap();
        assert_eq!(again.partitions[&0], *p0);
    }

    /// The run set against a plain set of offsets, under random marks.
    #[test]
    fn partition_state_matches_a_set_of_done_offsets() {
        use proptest::prelude::*;
        proptest!(ProptestConfig::with_cases(200), |(marks in proptest::collection::vec((0u64..64, 1u64..6), 0..60))| {
            let mut state = PartitionState::default();
            let mut model = std::collections::BTreeSet::new();
            for (start, len) in marks {
                state.mark_done_range(start, start + len);
                model.extend(start..start + len);
                let mut floor = 0;
                while model.contains(&floor) {
                    floor += 1;
                }
                prop_assert_eq!(state.floor, floor);
                for o in 0..80 {
                    prop_assert_eq!(state.is_done(o), model.contains(&o), "offset {}", o);
                }
            }
            state.normalise();
            let snap = snapshot(0, &state, std::iter::empty());
            let again = fold(&[snap], Path::new("x")).unwrap();
            prop_assert_eq!(&again.partitions[&0], &state);
        });
    }

    /// A few bytes describing an enormous run decode to a few bytes.
    #[test]
    fn a_huge_run_costs_no_memory_to_apply() {
        let mut record = header(KIND_ACKS, 0);
        put_run_list(
            &mut record,
            vec![(10, u64::MAX / 2), (u64::MAX / 2 + 20, 1 << 40)],
        );
        let got = fold(&[record], Path::new("x")).unwrap();
        let p = &got.partitions[&0];
        assert_eq!(p.floor, 0);
        assert!(p.is_done(10) && p.is_done(u64::MAX / 2 + 9) && !p.is_done(u64::MAX / 2 + 10));
        assert_eq!(p.acked.runs().count(), 2);
    }

    #[test]
    fn contiguous_acks_are_a_few_bytes() {
        let offsets: Vec<u64> = (1_000_000..1_100_000).collect();
        assert!(acks(0, &offsets).len() < 16);
    }

    #[test]
    fn malformed_records_are_refused() {
        for bad in [
            vec![2, KIND_ACKS, 0, 0, 0, 0, 0],
            vec![QUEUE_STATE_VERSION, 9, 0, 0, 0, 0],
            vec![QUEUE_STATE_VERSION, KIND_DELIVERED, 0, 0, 0, 0, 1],
            {
                let mut r = acks(0, &[1]);
                r.push(0);
                r
            },
        ] {
            assert!(fold(&[bad], Path::new("x")).is_err());
        }
    }

    /// The corruption of one test below: (file, byte, reason).
    fn corruption(records: &[Vec<u8>], path: &Path) -> (std::path::PathBuf, u64, String) {
        match fold(records, path) {
            Err(Error::Corrupted {
                path,
                position,
                reason,
            }) => (path, position, reason),
            other => panic!("expected Error::Corrupted, got {other:?}"),
        }
    }

    #[test]
    fn a_cut_or_damaged_record_is_corruption_naming_file_record_and_byte() {
        let path = Path::new("queues/q/billing.state");
        let h = History {
            attempts: 2,
            first_failure: 1,
            last_failure: 2,
            retry_at: 3,
            error: "timeout".into(),
        };
        let whole = history(4, 7, &h);
        for cut in 0..whole.len() {
            let cut_short = whole.get(..cut).unwrap().to_vec();
            let (p, position, reason) = corruption(&[binding("t"), cut_short], path);
            assert_eq!(p, path, "cut {cut}");
            assert!(position <= cut as u64, "cut {cut}: byte {position}");
            assert!(
                reason.contains("queue state record 1"),
                "cut {cut}: {reason}"
            );
        }
        // version, kind, partition (bytes 2..6), delivered_to (6..14): a
        // record cut inside delivered_to is reported at that field's byte,
        // never read as 0.
        let d = delivered(0, 10);
        let (_, position, reason) = corruption(&[d.get(..9).unwrap().to_vec()], path);
        assert_eq!(position, 6, "{reason}");
        assert!(reason.contains("delivered_to"), "{reason}");
        // An unknown kind is named at its own byte; trailing bytes after them.
        let (_, position, _) = corruption(&[vec![QUEUE_STATE_VERSION, 9, 0, 0, 0, 0]], path);
        assert_eq!(position, 1);
        let mut long = d.clone();
        long.push(0);
        let (_, position, reason) = corruption(&[long], path);
        assert_eq!(position, d.len() as u64, "{reason}");
    }
}
