//! The producer-side dedup cache and at-most-once sampling, through the
//! public API: a duplicate within the window returns the original position
//! and appends nothing; the window runs from the original's append time,
//! whatever its `emitted_at`, across restarts and wherever the original is
//! (warm tier or hot log); outside the window (by time, by count) it appends;
//! the cache survives a clean restart and a kill -9; retention and
//! truncation evict; racing producers append each id once; a model-based
//! proptest; `system.` events sampled above the rate, others never. (The
//! kill -9 test lives in `tests/dedup_crash.rs`: a process that forks
//! children shares its lock files with them until they exec, which would
//! make the close-and-reopen steps here see their own lock as held.)
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventfabric::fixtures::{FixtureGenerator, FixtureKind};
use eventfabric::{
    Envelope, Fabric, FabricConfig, FsyncPolicy, Log, PublishOutcome, Published, TopicConfig,
};
use jiff::Timestamp;
use proptest::prelude::*;

const TOPIC: &str = "billing.dedup.v1";

fn reopen(fabric: Fabric, dir: &std::path::Path) -> Fabric {
    fabric.close().unwrap();
    Fabric::open(dir, os()).unwrap()
}

fn os() -> FabricConfig {
    FabricConfig::with_fsync(FsyncPolicy::Os)
}

fn config(partitions: u32) -> TopicConfig {
    let mut c = TopicConfig::with_partitions(partitions);
    c.fsync = FsyncPolicy::Os;
    c
}

fn open(dir: &std::path::Path, c: TopicConfig) -> Fabric {
    let fabric = Fabric::open(dir, os()).unwrap();
    fabric.create_topic(TOPIC, c).unwrap();
    fabric
}

/// A valid envelope with a deterministic id `n`, emitted `age` ago, keyed by `key`.
fn event(n: u64, age: Duration, key: &str) -> Envelope {
    let mut e = FixtureGenerator::new(n, 10).next(FixtureKind::all()[(n % 3) as usize]);
    e.event_id = Envelope::event_id_from_parts(1_780_000_000_000 + n, n as u16, n);
    let emitted = Timestamp::now() - jiff::SignedDuration::try_from(age).unwrap();
    e.emitted_at = emitted;
    e.occurred_at = emitted;
    e.partition_key = key.to_string();
    e
}

fn fresh(n: u64) -> Envelope {
    event(n, Duration::ZERO, &format!("key-{n}"))
}

fn total_records(fabric: &Fabric) -> u64 {
    fabric
        .topic_info(TOPIC)
        .unwrap()
        .offsets
        .iter()
        .map(|(e, n)| n - e)
        .sum()
}

/// Every (partition, offset, event_id) the topic holds.
fn stored_ids(fabric: &Fabric) -> Vec<(u32, u64, uuid::Uuid)> {
    fabric
        .reader(TOPIC, eventfabric::StartFrom::Earliest)
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (r.partition, r.offset, r.envelope.event_id)
        })
        .collect()
}

#[test]
fn a_duplicate_within_the_window_returns_the_original_position_and_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), config(3));
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    let first = producer.publish(&fresh(1)).unwrap();
    assert_eq!(first.outcome, PublishOutcome::Appended);
    let again = producer.publish(&fresh(1)).unwrap();
    assert_eq!(
        again,
        Published {
            outcome: PublishOutcome::Duplicate,
            ..first
        }
    );
    assert!(again.is_duplicate());
    assert_eq!(total_records(&fabric), 1);
    // A different producer of the same topic shares the cache.
    let mut other = fabric.producer(TOPIC, "other").unwrap();
    assert!(other.publish(&fresh(1)).unwrap().is_duplicate());
    assert_eq!(
        other.dedup_lookup(fresh(1).event_id),
        Some((first.partition, first.offset))
    );

    // publish_batch: against the cache and within the batch.
    let batch = vec![fresh(2), fresh(1), fresh(3), fresh(2), fresh(4)];
    let out = producer.publish_batch(&batch).unwrap();
    let outcomes: Vec<PublishOutcome> = out.iter().map(|p| p.outcome).collect();
    use PublishOutcome::{Appended, Duplicate};
    assert_eq!(
        outcomes,
        [Appended, Duplicate, Appended, Duplicate, Appended]
    );
    assert_eq!(
        (out[1].partition, out[1].offset),
        (first.partition, first.offset)
    );
    assert_eq!(
        (out[3].partition, out[3].offset),
        (out[0].partition, out[0].offset)
    );
    assert_eq!(total_records(&fabric), 4);
    let ids: Vec<_> = stored_ids(&fabric)
        .into_iter()
        .map(|(_, _, id)| id)
        .collect();
    let distinct: HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "an id was stored twice: {ids:?}");
    let stats = fabric.dedup_stats(TOPIC).unwrap().unwrap();
    assert_eq!(stats.entries, 4);
    assert!(stats.allocated_bytes > 0);
}

#[test]
fn outside_the_window_by_time_or_by_count_it_appends_again() {
    // By time: the window runs from the original's append, not from its
    // emitted_at, in this process and after a restart.
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(1);
    c.dedup_window_ms = 1_000;
    let fabric = open(dir.path(), c);
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    let old = event(100, 90 * DAY, "k");
    let first = producer.publish(&old).unwrap();
    assert!(!first.is_duplicate());
    assert!(producer.publish(&old).unwrap().is_duplicate());
    std::thread::sleep(Duration::from_millis(1_100));
    let second = producer.publish(&old).unwrap();
    assert_eq!(
        second.outcome,
        PublishOutcome::Appended,
        "outside the window"
    );
    assert_eq!(second.offset, first.offset + 1);
    drop(producer);
    std::thread::sleep(Duration::from_millis(1_100));
    let fabric = reopen(fabric, dir.path());
    assert_eq!(fabric.dedup_stats(TOPIC).unwrap().unwrap().entries, 0);
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    let third = producer.publish(&old).unwrap();
    assert_eq!(
        third.outcome,
        PublishOutcome::Appended,
        "outside the window after a restart"
    );
    assert_eq!(total_records(&fabric), 3);

    // The rebuild starts where the window starts: older batches before it
    // (found by binary search over append times), newer ones after it.
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(2);
    c.dedup_window_ms = 3_000;
    let fabric = open(dir.path(), c);
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    for n in 0..30 {
        producer
            .publish(&event(n, 90 * DAY, &format!("k{n}")))
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(3_200));
    let recent: Vec<Envelope> = (30..50)
        .map(|n| event(n, 90 * DAY, &format!("k{n}")))
        .collect();
    producer.publish_batch(&recent[..10]).unwrap();
    for e in &recent[10..] {
        producer.publish(e).unwrap();
    }
    drop(producer);
    let fabric = reopen(fabric, dir.path());
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    assert_eq!(fabric.dedup_stats(TOPIC).unwrap().unwrap().entries, 20);
    let out = producer.publish_batch(&recent).unwrap();
    assert!(out.iter().all(|p| p.is_duplicate()), "{out:?}");
    for n in 0..30 {
        let again = producer
            .publish(&event(n, 90 * DAY, &format!("k{n}")))
            .unwrap();
        assert_eq!(again.outcome, PublishOutcome::Appended, "event {n}");
    }
    assert_eq!(total_records(&fabric), 80);

    let dir = tempfile::tempdir().unwrap();
    let mut c = config(1);
    c.dedup_window_ms = 60_000;
    c.dedup_max_entries = 3;
    let fabric = open(dir.path(), c);
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    let recent = event(101, Duration::from_secs(50), "k");
    assert!(!producer.publish(&recent).unwrap().is_duplicate());
    assert!(producer.publish(&recent).unwrap().is_duplicate());
    // By count: three entries at most; the oldest committed goes first.
    for n in 0..3 {
        producer.publish(&fresh(n)).unwrap();
    }
    assert!(
        !producer.publish(&recent).unwrap().is_duplicate(),
        "evicted by count"
    );
    assert!(producer.publish(&fresh(2)).unwrap().is_duplicate());
    assert_eq!(total_records(&fabric), 5);

    // A window of 0 turns dedup off.
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(1);
    c.dedup_window_ms = 0;
    let fabric = open(dir.path(), c);
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    producer.publish(&fresh(1)).unwrap();
    assert!(!producer.publish(&fresh(1)).unwrap().is_duplicate());
    assert!(fabric.dedup_stats(TOPIC).unwrap().is_none());
}

#[test]
fn the_cache_survives_a_clean_restart_and_honours_the_window_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(4);
    c.dedup_window_ms = 60_000;
    let fabric = open(dir.path(), c);
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    let mut first = BTreeMap::new();
    for n in 0..200 {
        first.insert(n, producer.publish(&fresh(n)).unwrap());
    }
    let old = event(999, Duration::from_secs(120), "k");
    producer.publish(&old).unwrap();
    drop(producer);
    let fabric = reopen(fabric, dir.path());
    assert_eq!(fabric.dedup_stats(TOPIC).unwrap().unwrap().entries, 201);
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    for (n, original) in &first {
        let again = producer.publish(&fresh(*n)).unwrap();
        assert!(
            again.is_duplicate(),
            "event {n} appended again after restart"
        );
        assert_eq!(
            (again.partition, again.offset),
            (original.partition, original.offset)
        );
    }
    // Emitted before the window, appended inside it: still a duplicate.
    assert!(
        producer.publish(&old).unwrap().is_duplicate(),
        "an old emitted_at left the window early"
    );
    assert_eq!(total_records(&fabric), 201);
}

#[test]
fn truncation_and_retention_evict_ids_whose_records_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(1);
    c.segment_bytes = 4096;
    let fabric = open(dir.path(), c);
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    let log = fabric.partition(TOPIC, 0).unwrap();

    // Truncate, then reuse the offsets with other events: the cached offset
    // of event 1 now holds event 50, which must not be reported as event 1.
    let a = producer.publish(&fresh(1)).unwrap();
    producer.publish(&fresh(2)).unwrap();
    log.truncate(a.offset).unwrap();
    let c50 = producer.publish(&fresh(50)).unwrap();
    assert_eq!(c50.offset, a.offset, "offset reused after truncate");
    let again = producer.publish(&fresh(1)).unwrap();
    assert_eq!(again.outcome, PublishOutcome::Appended);
    assert!(producer.publish(&fresh(2)).unwrap().outcome == PublishOutcome::Appended);
    assert!(producer.publish(&fresh(1)).unwrap().is_duplicate());

    // Retention: roll segments and delete the old ones.
    for n in 100..200 {
        producer.publish(&fresh(n)).unwrap();
    }
    log.roll().unwrap();
    let cut = log.next_offset();
    assert!(log.delete_segments_before(cut).unwrap() > 0);
    assert!(log.earliest_offset() > 0);
    let before = log.next_offset();
    let re = producer.publish(&fresh(100)).unwrap();
    assert_eq!(
        re.outcome,
        PublishOutcome::Appended,
        "purged id still deduped"
    );
    assert_eq!(re.offset, before);
    // Ids still held are still duplicates.
    producer.publish(&fresh(300)).unwrap();
    assert!(producer.publish(&fresh(300)).unwrap().is_duplicate());
}

#[test]
fn racing_producers_append_each_id_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), config(4));
    let ids: Vec<u64> = (0..400).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let results: Vec<Vec<(u64, Published)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let fabric = fabric.clone();
                let mut order = ids.clone();
                // Each thread its own order; half the threads in batches.
                order.rotate_left((t * 97) as usize % ids.len());
                if t % 2 == 1 {
                    order.reverse();
                }
                s.spawn(move || {
                    let mut producer = fabric.producer(TOPIC, "racer").unwrap();
                    let mut out = Vec::new();
                    if t < 2 {
                        for n in order {
                            out.push((n, producer.publish(&fresh(n)).unwrap()));
                            assert!(Instant::now() < deadline, "stress test overran");
                        }
                    } else {
                        for chunk in order.chunks(7) {
                            let envs: Vec<Envelope> = chunk.iter().map(|&n| fresh(n)).collect();
                            let published = producer.publish_batch(&envs).unwrap();
                            out.extend(chunk.iter().copied().zip(published));
                        }
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(total_records(&fabric), ids.len() as u64);
    let mut position: HashMap<u64, (u32, u64)> = HashMap::new();
    let mut appended: HashMap<u64, usize> = HashMap::new();
    for thread in &results {
        for (n, p) in thread {
            let at = (p.partition, p.offset);
            assert_eq!(
                *position.entry(*n).or_insert(at),
                at,
                "id {n} at two positions"
            );
            if p.outcome == PublishOutcome::Appended {
                *appended.entry(*n).or_default() += 1;
            }
        }
    }
    assert!(
        appended.values().all(|&c| c == 1),
        "an id was appended twice or never"
    );
    assert_eq!(appended.len(), ids.len());
    let stored: HashMap<(u32, u64), uuid::Uuid> = stored_ids(&fabric)
        .into_iter()
        .map(|(p, o, id)| ((p, o), id))
        .collect();
    for (n, at) in position {
        assert_eq!(stored[&at], fresh(n).event_id);
    }
}

#[test]
fn publish_replay_bypasses_dedup() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), config(1));
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    let first = producer.publish(&fresh(7)).unwrap();
    let replay = producer.publish_replay(&fresh(7)).unwrap();
    assert_eq!(replay.outcome, PublishOutcome::Appended);
    assert_eq!(replay.offset, first.offset + 1);
    // The cache now points at the replayed copy.
    let again = producer.publish(&fresh(7)).unwrap();
    assert!(again.is_duplicate());
    assert_eq!(again.offset, replay.offset);
    assert_eq!(total_records(&fabric), 2);
}

#[test]
fn system_events_beyond_the_rate_are_dropped_and_counted_others_never() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(2);
    c.system_events_per_sec = Some(5);
    let fabric = open(dir.path(), c);
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    let mut health = fresh(0);
    health.event_type = "system.health.checked".into();
    health.tenant_id = None;
    let started = Instant::now();
    let mut appended = 0u64;
    let mut business = 0u64;
    for n in 0..200u64 {
        let mut e = health.clone();
        e.event_id = fresh(1000 + n).event_id;
        let p = producer.publish(&e).unwrap();
        match p.outcome {
            PublishOutcome::Appended => appended += 1,
            PublishOutcome::Dropped => assert_eq!(p.offset, Published::NO_OFFSET),
            PublishOutcome::Duplicate => panic!("not a duplicate"),
        }
        let b = producer.publish(&fresh(n)).unwrap();
        assert_eq!(
            b.outcome,
            PublishOutcome::Appended,
            "a billing event was dropped"
        );
        business += 1;
    }
    // Batches too.
    let batch: Vec<Envelope> = (0..50u64)
        .map(|n| {
            let mut e = health.clone();
            e.event_id = fresh(5000 + n).event_id;
            e
        })
        .chain((0..50u64).map(|n| fresh(7000 + n)))
        .collect();
    let out = producer.publish_batch(&batch).unwrap();
    appended += out[..50].iter().filter(|p| !p.is_dropped()).count() as u64;
    assert!(
        out[50..]
            .iter()
            .all(|p| p.outcome == PublishOutcome::Appended)
    );
    business += 50;
    let secs = started.elapsed().as_secs_f64();
    let allowed = 5 + (secs * 5.0).ceil() as u64;
    assert!(
        appended >= 5 && appended <= allowed,
        "{appended} system events in {secs}s"
    );
    assert_eq!(producer.system_events_dropped(), 250 - appended);
    assert_eq!(fabric.system_events_dropped(TOPIC).unwrap(), 250 - appended);
    assert_eq!(total_records(&fabric), business + appended);
}

/// A config whose hot tier keeps no sealed segment: the next maintenance
/// moves every sealed segment to the warm tier (kept there for a year).
fn tiering(partitions: u32) -> TopicConfig {
    let mut c = config(partitions);
    c.segment_bytes = 4096;
    c.retention_bytes = Some(1);
    c.warm_retention_ms = 365 * 86_400_000;
    c
}

/// Seals the active segments and lets maintenance move them to warm.
fn tier_everything(fabric: &Fabric, partitions: u32) {
    for p in 0..partitions {
        fabric.partition(TOPIC, p).unwrap().roll().unwrap();
    }
    let report = fabric.maintain().unwrap();
    assert!(
        report.segments_to_warm > 0,
        "nothing moved to warm: {report:?}"
    );
    assert_eq!(report.segments_deleted, 0, "{report:?}");
    for p in 0..partitions {
        let log = fabric.partition(TOPIC, p).unwrap();
        assert_eq!(
            log.earliest_offset(),
            log.next_offset(),
            "hot tier kept records"
        );
        assert_eq!(fabric.earliest_available(TOPIC, p).unwrap(), 0);
    }
}

const DAY: Duration = Duration::from_secs(86_400);

#[test]
fn a_retry_within_the_window_of_its_first_append_is_a_duplicate_whatever_its_emitted_at() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), config(3));
    let mut producer = fabric.producer(TOPIC, "relay").unwrap();
    // A relay resending an outbox, a backfill: emitted months ago.
    let old = event(1, 90 * DAY, "k1");
    let older = event(2, 400 * DAY, "k2");
    let first = producer.publish(&old).unwrap();
    assert_eq!(first.outcome, PublishOutcome::Appended);
    let batch = producer
        .publish_batch(std::slice::from_ref(&older))
        .unwrap();
    assert_eq!(batch[0].outcome, PublishOutcome::Appended);
    // In this process.
    let again = producer.publish(&old).unwrap();
    assert_eq!(
        again,
        Published {
            outcome: PublishOutcome::Duplicate,
            ..first
        }
    );
    drop(producer);
    // After a restart: the cache is rebuilt from the log.
    let fabric = reopen(fabric, dir.path());
    let mut producer = fabric.producer(TOPIC, "relay").unwrap();
    let again = producer.publish(&old).unwrap();
    assert_eq!(
        again,
        Published {
            outcome: PublishOutcome::Duplicate,
            ..first
        },
        "a retry after a restart was stored again"
    );
    let out = producer.publish_batch(&[older, old]).unwrap();
    assert_eq!(
        out,
        vec![
            Published {
                outcome: PublishOutcome::Duplicate,
                ..batch[0]
            },
            Published {
                outcome: PublishOutcome::Duplicate,
                ..first
            }
        ]
    );
    assert_eq!(total_records(&fabric), 2);
}

#[test]
fn an_original_moved_to_the_warm_tier_within_the_window_is_still_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), tiering(2));
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    let mut first = BTreeMap::new();
    for n in 0..40 {
        // Fresh and months-old events alike.
        let e = event(
            n,
            if n % 2 == 0 { Duration::ZERO } else { 90 * DAY },
            &format!("key-{n}"),
        );
        first.insert(n, (e.clone(), producer.publish(&e).unwrap()));
    }
    tier_everything(&fabric, 2);
    // Without a restart: the cached position is now in warm.
    for (n, (e, original)) in &first {
        let again = producer.publish(e).unwrap();
        assert_eq!(
            again,
            Published {
                outcome: PublishOutcome::Duplicate,
                ..*original
            },
            "event {n}, tiered to warm, appended again"
        );
    }
    assert_eq!(total_records(&fabric), 40);
    drop(producer);
    // After a restart: the rebuild reads the warm tier too.
    let fabric = reopen(fabric, dir.path());
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    let envs: Vec<Envelope> = first.values().map(|(e, _)| e.clone()).collect();
    let out = producer.publish_batch(&envs).unwrap();
    for ((n, (_, original)), got) in first.iter().zip(&out) {
        assert_eq!(
            *got,
            Published {
                outcome: PublishOutcome::Duplicate,
                ..*original
            },
            "event {n}, in warm, appended again after a restart"
        );
    }
    // Half in warm, half in hot: both are found after another restart.
    for n in 100..110 {
        producer.publish(&fresh(n)).unwrap();
    }
    drop(producer);
    let fabric = reopen(fabric, dir.path());
    assert_eq!(fabric.dedup_stats(TOPIC).unwrap().unwrap().entries, 50);
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    assert!(producer.publish(&fresh(105)).unwrap().is_duplicate());
    assert!(producer.publish(&first[&7].0).unwrap().is_duplicate());
    assert_eq!(total_records(&fabric), 50);
}

#[test]
fn events_stored_before_the_append_time_existed_keep_their_emitted_at_window() {
    // A partition written by a build whose batches (version 1) had no
    // append time: the window is judged on their record timestamps, as then.
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), config(1));
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    let fresh_ones: Vec<Envelope> = (0..5).map(fresh).collect();
    let old_ones: Vec<Envelope> = (5..10).map(|n| event(n, 90 * DAY, "k")).collect();
    for e in old_ones.iter().chain(&fresh_ones) {
        producer.publish(e).unwrap();
    }
    let part = fabric.partition(TOPIC, 0).unwrap().dir().to_path_buf();
    drop(producer);
    fabric.close().unwrap();
    // Rewrite the segment's batches as version 1; drop the index and the
    // checkpoint (caches that recovery rebuilds).
    let mut segments = 0;
    for entry in std::fs::read_dir(&part).unwrap() {
        let path = entry.unwrap().path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("index") => std::fs::remove_file(&path).unwrap(),
            Some("log") => {
                let bytes = std::fs::read(&path).unwrap();
                let mut v1 = Vec::new();
                let mut pos = 0;
                while let Ok(view) = eventfabric::testing::batch::BatchView::parse(&bytes[pos..]) {
                    let mut enc = eventfabric::testing::batch::BatchEncoder::default();
                    enc.begin(view.header.base_offset, view.header.durable_offset, None);
                    for r in view.records() {
                        enc.push(r.timestamp, r.value);
                    }
                    v1.extend_from_slice(enc.finish());
                    pos += view.header.length as usize;
                }
                assert_eq!(pos, bytes.iter().rposition(|&b| b != 0).unwrap() + 1);
                v1.resize(bytes.len(), 0);
                std::fs::write(&path, v1).unwrap();
                segments += 1;
            }
            _ if path.file_name().is_some_and(|n| n == "checkpoint") => {
                std::fs::remove_file(&path).unwrap()
            }
            _ => {}
        }
    }
    assert_eq!(segments, 1);
    let fabric = Fabric::open(dir.path(), os()).unwrap();
    let log = fabric.partition(TOPIC, 0).unwrap();
    let versions: Vec<u8> = log
        .batches(0)
        .unwrap()
        .map(|b| b.unwrap().header().version)
        .collect();
    assert_eq!(versions, vec![1; 10]);
    drop(log);
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    assert_eq!(fabric.dedup_stats(TOPIC).unwrap().unwrap().entries, 5);
    for (i, e) in fresh_ones.iter().enumerate() {
        let again = producer.publish(e).unwrap();
        assert_eq!(
            again.outcome,
            PublishOutcome::Duplicate,
            "fresh v1 event {i}"
        );
        assert_eq!(again.offset, 5 + i as u64);
    }
    for e in &old_ones {
        assert_eq!(
            producer.publish(e).unwrap().outcome,
            PublishOutcome::Appended
        );
    }
    // New appends are version 2, behind the version 1 ones; after a restart
    // both kinds are found.
    drop(producer);
    let fabric = reopen(fabric, dir.path());
    assert_eq!(fabric.dedup_stats(TOPIC).unwrap().unwrap().entries, 10);
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    for e in old_ones.iter().chain(&fresh_ones) {
        assert!(producer.publish(e).unwrap().is_duplicate());
    }
    assert_eq!(total_records(&fabric), 15);
}

// ------------------------------------------------------------ model

#[derive(Debug, Clone)]
enum Op {
    Publish(u8),
    Batch(Vec<u8>),
    Truncate(u8, u8),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u8..24).prop_map(Op::Publish),
        2 => prop::collection::vec(0u8..24, 1..6).prop_map(Op::Batch),
        1 => (0u8..2, 0u8..4).prop_map(|(p, back)| Op::Truncate(p, back)),
        1 => Just(Op::Reopen),
    ]
}

/// The cache as specified: committed ids in commit order (re-appending an
/// id moves it to the back), at most `cap` of them; a hit counts only if the
/// log still holds that id at that position. The log keeps each record's id
/// and its batch's append time (read back from the partition).
#[derive(Default)]
struct Model {
    cache: VecDeque<(u128, (u32, u64))>,
    log: [Vec<(u128, i64)>; 2],
}

/// The `appended_at` of the batch holding `offset` of partition `p`.
fn appended_at(fabric: &Fabric, p: u32, offset: u64) -> i64 {
    let log = fabric.partition(TOPIC, p).unwrap();
    let batch = log.batches(offset).unwrap().next().unwrap().unwrap();
    batch
        .header()
        .appended_at
        .expect("the log writes version 2 batches")
}

impl Model {
    fn lookup(&self, id: u128) -> Option<(u32, u64)> {
        let &(_, at) = self.cache.iter().find(|(i, _)| *i == id)?;
        let stored = self.log[at.0 as usize].get(at.1 as usize)?;
        (stored.0 == id).then_some(at)
    }

    fn commit(&mut self, id: u128, at: (u32, u64), cap: usize) {
        self.cache.retain(|(i, _)| *i != id);
        self.cache.push_back((id, at));
        while self.cache.len() > cap {
            self.cache.pop_front();
        }
    }

    fn rebuild(&mut self, cap: usize) {
        // The newest `cap` by (append time, partition, offset).
        let mut all: Vec<(i64, (u32, u64), u128)> = Vec::new();
        for (p, log) in self.log.iter().enumerate() {
            for (o, &(id, appended_at)) in log.iter().enumerate() {
                all.push((appended_at, (p as u32, o as u64), id));
            }
        }
        all.sort();
        let keep = all.len().saturating_sub(cap);
        self.cache.clear();
        for (_, at, id) in all.into_iter().skip(keep) {
            self.cache.retain(|(i, _)| *i != id);
            self.cache.push_back((id, at));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_cache_behaves_like_its_model(ops in prop::collection::vec(op(), 1..40)) {
        const CAP: usize = 6;
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(2);
        c.dedup_max_entries = CAP as u64;
        let mut fabric = open(dir.path(), c);
        let mut model = Model::default();
        // Distinct, increasing emitted_at for every publish (within the window).
        let base = Timestamp::now().as_microsecond() - 60_000_000;
        let mut clock = 0i64;
        let mut make = |n: u8| {
            clock += 1000;
            let mut e = event(u64::from(n), Duration::ZERO, &format!("key-{}", n % 2));
            e.partition_key = if n.is_multiple_of(2) { "a".into() } else { "c".into() };
            e.emitted_at = Timestamp::from_microsecond(base + clock).unwrap();
            e
        };
        // The cache is rebuilt from the log by the first producer after a
        // reopen (not by the reopen itself): a truncation in between counts.
        let mut rebuild_pending = false;
        for op in ops {
            if rebuild_pending && matches!(op, Op::Publish(_) | Op::Batch(_)) {
                model.rebuild(CAP);
                rebuild_pending = false;
            }
            match op {
                Op::Publish(n) => {
                    let e = make(n);
                    let mut producer = fabric.producer(TOPIC, "p").unwrap();
                    let got = producer.publish(&e).unwrap();
                    let id = e.event_id.as_u128();
                    match model.lookup(id) {
                        Some(at) => {
                            prop_assert_eq!(got.outcome, PublishOutcome::Duplicate);
                            prop_assert_eq!((got.partition, got.offset), at);
                        }
                        None => {
                            prop_assert_eq!(got.outcome, PublishOutcome::Appended);
                            let p = got.partition as usize;
                            prop_assert_eq!(got.offset, model.log[p].len() as u64);
                            model.log[p].push((id, appended_at(&fabric, got.partition, got.offset)));
                            model.commit(id, (got.partition, got.offset), CAP);
                        }
                    }
                }
                Op::Batch(ns) => {
                    let envs: Vec<Envelope> = ns.iter().map(|&n| make(n)).collect();
                    let mut producer = fabric.producer(TOPIC, "p").unwrap();
                    let got = producer.publish_batch(&envs).unwrap();
                    // The model: ids decided in ascending order against the
                    // cache, then appended per partition in input order.
                    let mut decided: HashMap<u128, Option<(u32, u64)>> = HashMap::new();
                    let mut distinct: Vec<u128> = envs.iter().map(|e| e.event_id.as_u128()).collect();
                    distinct.sort_unstable();
                    distinct.dedup();
                    for id in distinct {
                        let found = model.lookup(id);
                        if found.is_none() {
                            // Claimed now: a stale entry stops counting.
                            model.cache.retain(|(i, _)| *i != id);
                        }
                        decided.insert(id, found);
                    }
                    let mut first: HashMap<u128, (u32, u64)> = HashMap::new();
                    let mut partitions: Vec<u32> = got.iter().map(|g| g.partition).collect();
                    partitions.sort_unstable();
                    partitions.dedup();
                    for p in partitions {
                        for (e, g) in envs.iter().zip(&got) {
                            let id = e.event_id.as_u128();
                            if g.partition != p || decided[&id].is_some() || first.contains_key(&id) {
                                continue;
                            }
                            prop_assert_eq!(g.outcome, PublishOutcome::Appended);
                            prop_assert_eq!(g.offset, model.log[p as usize].len() as u64);
                            model.log[p as usize].push((id, appended_at(&fabric, p, g.offset)));
                            model.commit(id, (p, g.offset), CAP);
                            first.insert(id, (p, g.offset));
                        }
                    }
                    let mut seen = HashSet::new();
                    for (e, g) in envs.iter().zip(&got) {
                        let id = e.event_id.as_u128();
                        let expect = decided[&id].or(first.get(&id).copied()).unwrap();
                        prop_assert_eq!((g.partition, g.offset), expect);
                        let repeat = !seen.insert(id);
                        if decided[&id].is_some() || repeat {
                            prop_assert_eq!(g.outcome, PublishOutcome::Duplicate);
                        }
                    }
                }
                Op::Truncate(p, back) => {
                    let log: Arc<Log> = fabric.partition(TOPIC, u32::from(p)).unwrap();
                    let keep = model.log[p as usize].len().saturating_sub(back as usize);
                    log.truncate(keep as u64).unwrap();
                    model.log[p as usize].truncate(keep);
                }
                Op::Reopen => {
                    fabric = reopen(fabric, dir.path());
                    rebuild_pending = true;
                }
            }
        }
    }
}
