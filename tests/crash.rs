//! Crash property: everything after the last completed sync may be cut at any
//! byte, zeroed, or replaced by garbage (pages independently); reopening must
//! keep every synced record byte-identical, return no corrupt record, and
//! accept new appends. See shared CRASH-MODEL.md.
mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use common::{XorShift, read_all, tiny_config};
use eventfabric::Log;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Damage {
    /// The file ends at this fraction of the unsynced tail.
    Cut(u16),
    /// A range of the unsynced tail reads as zeros.
    Zero(u16, u16),
    /// A range of the unsynced tail holds random bytes.
    Garbage(u16, u16, u64),
    /// Some 4 KiB pages of the unsynced tail were never written back.
    LostPages(u64),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<u16>().prop_map(Damage::Cut),
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| Damage::Zero(a, b)),
        (any::<u16>(), any::<u16>(), any::<u64>()).prop_map(|(a, b, s)| Damage::Garbage(a, b, s)),
        any::<u64>().prop_map(Damage::LostPages),
    ]
}

fn apply(path: &std::path::Path, durable_len: u64, damage: &Damage) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open segment");
    let len = file.metadata().expect("stat").len();
    if len <= durable_len {
        return;
    }
    let tail = len - durable_len;
    let at = |f: u16| durable_len + tail * u64::from(f) / u64::from(u16::MAX);
    match *damage {
        Damage::Cut(f) => file.set_len(at(f)).expect("cut"),
        Damage::Zero(a, b) => {
            let (a, b) = (at(a.min(b)), at(a.max(b)));
            file.write_all_at(&vec![0u8; (b - a) as usize], a)
                .expect("zero");
        }
        Damage::Garbage(a, b, seed) => {
            let (a, b) = (at(a.min(b)), at(a.max(b)));
            let mut rng = XorShift(seed | 1);
            let junk: Vec<u8> = (a..b).map(|_| rng.next() as u8).collect();
            file.write_all_at(&junk, a).expect("garbage");
        }
        Damage::LostPages(seed) => {
            let mut rng = XorShift(seed | 1);
            let first_page = durable_len / 4096;
            for page in first_page..len.div_ceil(4096) {
                if rng.below(2) == 0 {
                    let start = (page * 4096).max(durable_len);
                    let end = ((page + 1) * 4096).min(len);
                    file.write_all_at(&vec![0u8; (end - start) as usize], start)
                        .expect("lose page");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn synced_records_survive_any_damage_to_the_unsynced_tail(
        batches in proptest::collection::vec(proptest::collection::vec(0usize..300, 1..8), 1..40),
        flush_points in proptest::collection::vec(any::<bool>(), 40),
        damage in damage(),
        big_segments in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = tiny_config();
        if big_segments {
            config.segment_bytes = 1 << 20;
        }
        let log = Log::open(dir.path(), config.clone()).expect("open");
        let mut written = Vec::new();
        // The byte length of the active segment known to be synced.
        let mut synced: (u64, u64) = (0, 0);
        for (i, sizes) in batches.iter().enumerate() {
            let segs_before = log.segments().len();
            let values: Vec<Vec<u8>> = sizes
                .iter()
                .enumerate()
                .map(|(j, len)| common::value_for(log.next_offset() + j as u64, *len))
                .collect();
            log.append_batch(&values).expect("append");
            written.extend(values);
            let segs = log.segments();
            if segs.len() != segs_before {
                // A roll syncs all it seals; the new segment starts unsynced.
                synced = (segs[segs.len() - 1].base_offset, 0);
            }
            if flush_points[i % flush_points.len()] {
                log.flush().expect("flush");
                let last = &log.segments()[log.segments().len() - 1];
                synced = (last.base_offset, last.size_bytes);
            }
        }
        let durable = log.durable_offset();
        let active = log.segments().last().cloned().expect("a segment");
        log.simulate_crash();
        let durable_len = if active.base_offset == synced.0 { synced.1 } else { 0 };
        apply(&active.path, durable_len, &damage);

        let log = Log::open(dir.path(), config.clone()).expect("reopen after crash");
        let got = read_all(&log).expect("read after crash");
        prop_assert!(got.len() as u64 >= durable, "lost synced records: {} < {}", got.len(), durable);
        for (o, _, v) in &got {
            prop_assert_eq!(v, &written[*o as usize], "record {} differs", o);
        }
        prop_assert_eq!(log.next_offset(), got.len() as u64);
        let next = log.append(b"after the crash").expect("append after crash");
        prop_assert_eq!(next, got.len() as u64);
        log.close().expect("close");
        let log = Log::open(dir.path(), config).expect("reopen again");
        let again = read_all(&log).expect("read again");
        prop_assert_eq!(again.len(), got.len() + 1);
        prop_assert_eq!(&again.last().expect("last").2[..], b"after the crash");
    }
}
