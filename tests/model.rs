//! Model-based test: random operation sequences against a plain in-memory log.
mod common;

use common::tiny_config;
use eventfabric::{Log, ReadLimit};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append(i64, Vec<u8>),
    AppendBatch(Vec<(i64, Vec<u8>)>),
    Flush,
    Read { from: u64, max: usize },
    ReadFromTime(i64),
    Roll,
    Reopen,
    Truncate(u64),
    DeleteBefore(u64),
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..40),
        1 => proptest::collection::vec(any::<u8>(), 100..700),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let ts = 0i64..40;
    prop_oneof![
        6 => (ts.clone(), value()).prop_map(|(t, v)| Op::Append(t, v)),
        6 => proptest::collection::vec((ts.clone(), value()), 1..12).prop_map(Op::AppendBatch),
        1 => Just(Op::Flush),
        3 => (any::<u64>(), 1usize..50).prop_map(|(from, max)| Op::Read { from, max }),
        3 => (0i64..42).prop_map(Op::ReadFromTime),
        1 => Just(Op::Roll),
        2 => Just(Op::Reopen),
        1 => any::<u64>().prop_map(Op::Truncate),
        1 => any::<u64>().prop_map(Op::DeleteBefore),
    ]
}

/// What the log must hold: records by offset, starting at `earliest`.
#[derive(Default)]
struct Model {
    earliest: u64,
    records: Vec<(i64, Vec<u8>)>,
}

impl Model {
    fn next(&self) -> u64 {
        self.earliest + self.records.len() as u64
    }
}

fn check_all(log: &Log, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(log.next_offset(), model.next());
    let got = common::read_all(log).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(log.earliest_offset() <= model.earliest);
    // Offsets below the model's earliest may still be held (retention removes
    // whole segments only); every held record at or above it must match.
    let held: Vec<_> = got
        .into_iter()
        .filter(|(o, ..)| *o >= model.earliest)
        .collect();
    prop_assert_eq!(held.len(), model.records.len());
    for (i, (o, t, v)) in held.iter().enumerate() {
        prop_assert_eq!(*o, model.earliest + i as u64);
        prop_assert_eq!((*t, v), (model.records[i].0, &model.records[i].1));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = tiny_config();
        let mut log = Log::open(dir.path(), config.clone()).expect("open");
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Append(t, v) => {
                    let r = log.append_batch_with_timestamps(&[(t, &v)]).expect("append");
                    prop_assert_eq!(r.start, model.next());
                    model.records.push((t, v));
                }
                Op::AppendBatch(batch) => {
                    let r = log.append_batch_with_timestamps(&batch).expect("append batch");
                    prop_assert_eq!(r.clone(), model.next()..model.next() + batch.len() as u64);
                    model.records.extend(batch);
                }
                Op::Flush => log.flush().expect("flush"),
                Op::Read { from, max } => {
                    let from = model.earliest + from % (model.records.len() as u64 + 1);
                    let got = log.read(from, ReadLimit::records(max)).expect("read");
                    let start = (from - model.earliest) as usize;
                    let want: Vec<_> = model.records[start..].iter().take(max).collect();
                    prop_assert_eq!(got.len(), want.len());
                    for (i, (r, (t, v))) in got.iter().zip(want).enumerate() {
                        prop_assert_eq!(r.offset, from + i as u64);
                        prop_assert_eq!((r.timestamp, &r.value[..]), (*t, &v[..]));
                    }
                }
                Op::ReadFromTime(t) => {
                    // Retention may keep older records than the model; compare
                    // against everything the log holds.
                    let held = common::read_all(&log).expect("read all");
                    let want = held.iter().find(|(_, ts, _)| *ts >= t).map(|(o, ..)| *o);
                    prop_assert_eq!(log.offset_for_time(t).expect("time lookup"), want);
                }
                Op::Roll => log.roll().expect("roll"),
                Op::Reopen => {
                    log.close().expect("close");
                    log = Log::open(dir.path(), config.clone()).expect("reopen");
                    prop_assert!(log.recovery_report().truncations.is_empty());
                }
                Op::Truncate(o) => {
                    let o = model.earliest.max(log.earliest_offset())
                        + o % (model.next() - model.earliest.max(log.earliest_offset()) + 1);
                    log.truncate(o).expect("truncate");
                    model.records.truncate((o - model.earliest) as usize);
                }
                Op::DeleteBefore(o) => {
                    let o = o % (model.next() + 1);
                    log.delete_segments_before(o).expect("delete before");
                    let earliest = log.earliest_offset();
                    prop_assert!(earliest <= o.max(log.segments()[0].base_offset));
                    if earliest > model.earliest {
                        model.records.drain(..(earliest - model.earliest) as usize);
                        model.earliest = earliest;
                    }
                }
            }
            check_all(&log, &model)?;
        }
        log.close().expect("close");
        let log = Log::open(dir.path(), config).expect("final reopen");
        check_all(&log, &model)?;
    }
}
