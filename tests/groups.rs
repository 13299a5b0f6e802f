//! Consumer groups end to end: sharing partitions, commits and resumption,
//! session expiry and the ownership fence, delivery modes, idempotent
//! consumption, TTL, seek/pause/lag, replay sessions, locking, torn cursor
//! logs, and a bounded concurrent stress run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eventfabric::{
    CommitDurability, ConsumerConfig, DeliveryMode, ManualClock, ReplayBound, ReplayConfig, ResetTo,
};
use eventfabric::{
    Draft, Envelope, Error, Fabric, FabricConfig, FsyncPolicy, RawEvent, ReplaySession,
    TopicConfig, Ttl,
};
use serde_json::json;

const TOPIC: &str = "billing.domain.v1";
const NOW: Duration = Duration::ZERO;

fn open(dir: &std::path::Path, partitions: u32) -> Fabric {
    let fabric = Fabric::open(dir, FabricConfig::with_fsync(FsyncPolicy::Os)).unwrap();
    if !fabric.topics().contains(&TOPIC.to_string()) {
        fabric
            .create_topic(TOPIC, TopicConfig::with_partitions(partitions))
            .unwrap();
    }
    fabric
}

/// Publishes `count` events with keys spread over partitions; returns them.
fn publish(fabric: &Fabric, count: usize, tag: &str) -> Vec<Envelope> {
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    (0..count)
        .map(|i| {
            let draft = Draft::new("billing.invoice.issued", Some("t-1"), json!({"i": i}))
                .partition_key(&format!("{tag}-{i}"));
            producer.send(draft).unwrap().0
        })
        .collect()
}

fn config(clock: &Arc<ManualClock>) -> ConsumerConfig {
    let mut c = ConsumerConfig::default();
    c.clock = clock.clone();
    c.auto_commit_interval = None;
    c.commit_durability = CommitDurability::Os;
    c.session_timeout = Duration::from_secs(10);
    c
}

fn ids(batch: &[RawEvent]) -> Vec<uuid::Uuid> {
    batch
        .iter()
        .map(|e| e.envelope().unwrap().event_id)
        .collect()
}

/// Polls until a poll returns nothing.
fn drain(consumer: &mut eventfabric::Consumer) -> Vec<RawEvent> {
    let mut all = Vec::new();
    loop {
        let batch = consumer.poll(NOW).unwrap();
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

#[test]
fn a_consumer_can_move_to_another_thread() {
    fn send<T: Send>() {}
    send::<eventfabric::Consumer>();
    send::<ReplaySession>();
}

#[test]
fn members_share_partitions_and_a_new_member_resumes_from_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), 4);
    let events = publish(&fabric, 200, "a");
    let clock = Arc::new(ManualClock::default());
    let mut a = fabric.consumer("g", TOPIC, config(&clock)).unwrap();
    let mut b = fabric.consumer("g", TOPIC, config(&clock)).unwrap();
    a.commit().unwrap(); // adopts the rebalance caused by b's join
    let (pa, pb): (BTreeSet<u32>, BTreeSet<u32>) = (
        a.assignment().iter().copied().collect(),
        b.assignment().iter().copied().collect(),
    );
    assert_eq!(pa.len() + pb.len(), 4);
    assert!(pa.is_disjoint(&pb), "{pa:?} {pb:?}");
    let got_a = drain(&mut a);
    let got_b = drain(&mut b);
    assert!(got_a.iter().all(|e| pa.contains(&e.partition)));
    assert!(got_b.iter().all(|e| pb.contains(&e.partition)));
    let mut all: Vec<_> = ids(&got_a);
    all.extend(ids(&got_b));
    all.sort();
    let mut expected: Vec<_> = events.iter().map(|e| e.event_id).collect();
    expected.sort();
    assert_eq!(all, expected);
    // Order per partition.
    for batch in [&got_a, &got_b] {
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        for e in batch.iter() {
            if let Some(prev) = last.insert(e.partition, e.offset) {
                assert_eq!(e.offset, prev + 1);
            }
        }
    }
    a.commit().unwrap();
    b.commit().unwrap();
    drop((a, b));
    let mut c = fabric.consumer("g", TOPIC, config(&clock)).unwrap();
    assert!(drain(&mut c).is_empty(), "everything was committed");
    let more = publish(&fabric, 10, "b");
    let got = drain(&mut c);
    assert_eq!(
        ids(&got).into_iter().collect::<BTreeSet<_>>(),
        more.iter().map(|e| e.event_id).collect()
    );
    assert_eq!(c.status().lag(), 10, "delivered but not committed");
    c.commit().unwrap();
    assert_eq!(c.status().lag(), 0);
    // Another group reads everything independently (fan-out).
    let mut other = fabric.consumer("audit", TOPIC, config(&clock)).unwrap();
    assert_eq!(drain(&mut other).len(), 210);
}

#[test]
fn a_member_that_misses_its_session_loses_its_partitions_and_cannot_commit_them() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), 2);
    publish(&fabric, 50, "a");
    let clock = Arc::new(ManualClock::default());
    let mut small = config(&clock);
    small.max_poll_records = 5;
    let mut a = fabric.consumer("g", TOPIC, small).unwrap();
    let mut b = fabric.consumer("g", TOPIC, config(&clock)).unwrap();
    a.commit().unwrap();
    let a_part = a.assignment().to_vec();
    assert_eq!(a_part.len(), 1);
    let a_part = a_part[0];
    let a_got = a.poll(NOW).unwrap();
    assert_eq!(a_got.len(), 5);
    // a stops polling; b keeps going past a's session timeout.
    clock.advance(Duration::from_secs(6));
    b.commit().unwrap();
    clock.advance(Duration::from_secs(6));
    b.commit().unwrap();
    assert_eq!(b.assignment(), &[0, 1], "b took over a's partition");
    assert_eq!(b.status().members, vec![b.member_id()]);
    // b redelivers what a had not committed, and commits it all.
    let b_got = drain(&mut b);
    let redelivered: BTreeSet<_> = ids(&b_got).into_iter().collect();
    assert!(ids(&a_got).iter().all(|id| redelivered.contains(id)));
    b.commit().unwrap();
    let end = fabric.partition(TOPIC, a_part).unwrap().next_offset();
    assert_eq!(b.status().partitions[a_part as usize].committed, Some(end));
    // a comes back: its commit must not write its old position (5) over b's.
    a.commit().unwrap();
    assert_eq!(b.status().partitions[a_part as usize].committed, Some(end));
    assert_eq!(b.status().members.len(), 2, "a rejoined");
    // Ownership is never shared.
    b.commit().unwrap();
    let (pa, pb): (BTreeSet<u32>, BTreeSet<u32>) = (
        a.assignment().iter().copied().collect(),
        b.assignment().iter().copied().collect(),
    );
    assert!(
        pa.is_disjoint(&pb) && pa.len() + pb.len() == 2,
        "{pa:?} {pb:?}"
    );
}

#[test]
fn a_partition_lost_and_regained_between_polls_restarts_from_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), 3);
    publish(&fabric, 60, "a");
    let end1 = fabric.partition(TOPIC, 1).unwrap().next_offset();
    assert!(end1 > 3);
    let clock = Arc::new(ManualClock::default());
    let mut small = config(&clock);
    small.max_poll_records = 3;
    let mut a = fabric.consumer("g", TOPIC, small).unwrap();
    let _b = fabric.consumer("g", TOPIC, config(&clock)).unwrap();
    a.commit().unwrap();
    assert_eq!(a.assignment(), &[0, 1]);
    a.pause(0).unwrap();
    assert_eq!(a.poll(NOW).unwrap().len(), 3);
    assert_eq!(a.position(1), Some(3));
    // c takes partition 1 from a, consumes and commits all of it, leaves;
    // partition 1 goes back to a, which has not polled meanwhile.
    let mut c = fabric.consumer("g", TOPIC, config(&clock)).unwrap();
    assert_eq!(c.assignment(), &[1]);
    assert_eq!(drain(&mut c).len() as u64, end1);
    c.commit().unwrap();
    drop(c);
    // a's stale position (3) must neither be committed nor read from.
    a.commit().unwrap();
    assert_eq!(a.assignment(), &[0, 1]);
    assert_eq!(a.status().partitions[1].committed, Some(end1));
    assert_eq!(a.position(1), Some(end1));
}

#[test]
fn at_most_once_commits_before_handing_out_and_at_least_once_after() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), 1);
    publish(&fabric, 30, "a");
    let clock = Arc::new(ManualClock::default());
    let mut cfg = config(&clock);
    cfg.max_poll_records = 10;
    cfg.delivery = DeliveryMode::AtMostOnce;
    let mut most = fabric.consumer("most", TOPIC, cfg.clone()).unwrap();
    assert_eq!(most.poll(NOW).unwrap().len(), 10);
    drop(most); // a crash: no commit call
    cfg.delivery = DeliveryMode::AtLeastOnce;
    let mut least = fabric.consumer("least", TOPIC, cfg.clone()).unwrap();
    assert_eq!(least.poll(NOW).unwrap().len(), 10);
    least.commit().unwrap();
    assert_eq!(least.poll(NOW).unwrap()[0].offset, 10);
    drop(least);
    let mut most = fabric
        .consumer("most", TOPIC, {
            let mut c = cfg.clone();
            c.delivery = DeliveryMode::AtMostOnce;
            c
        })
        .unwrap();
    assert_eq!(most.poll(NOW).unwrap()[0].offset, 10, "never redelivered");
    let mut least = fabric.consumer("least", TOPIC, cfg).unwrap();
    assert_eq!(
        least.poll(NOW).unwrap()[0].offset,
        10,
        "uncommitted redelivered"
    );
}

#[test]
fn effectively_once_skips_event_ids_already_processed() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), 1);
    let events = publish(&fabric, 5, "a");
    // A producer retry without dedup: the same events appended again.
    // (`publish_replay` bypasses the producer dedup cache, which would
    // otherwise answer with the original positions.)
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    for e in &events {
        producer.publish_replay(e).unwrap();
    }
    let clock = Arc::new(ManualClock::default());
    let mut cfg = config(&clock);
    cfg.delivery = DeliveryMode::EffectivelyOnce;
    let mut c = fabric.consumer("g", TOPIC, cfg.clone()).unwrap();
    let first = c.poll(NOW).unwrap();
    assert_eq!(
        ids(&first),
        events.iter().map(|e| e.event_id).collect::<Vec<_>>()
    );
    assert_eq!(c.duplicates_skipped(), 5);
    c.commit().unwrap();
    assert!(c.already_processed(events[0].event_id, 0));
    assert!(!c.already_processed(events[0].event_id, 1));
    c.record_processed(&first[0], 7).unwrap();
    c.commit().unwrap();
    drop(c);
    // After a restart, a rewind redelivers nothing already processed.
    let mut c = fabric.consumer("g", TOPIC, cfg.clone()).unwrap();
    assert!(c.already_processed(events[0].event_id, 7));
    c.seek(0, 0).unwrap();
    assert!(drain(&mut c).is_empty());
    let fresh = publish(&fabric, 2, "b");
    assert_eq!(
        ids(&drain(&mut c)),
        fresh.iter().map(|e| e.event_id).collect::<Vec<_>>()
    );
    // At-least-once does not look at the window.
    cfg.delivery = DeliveryMode::AtLeastOnce;
    let mut plain = fabric.consumer("plain", TOPIC, cfg).unwrap();
    assert_eq!(drain(&mut plain).len(), 12);
}

#[test]
fn expired_events_are_skipped_counted_and_committed() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), 1);
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    for i in 0..10 {
        let mut draft = Draft::new("billing.invoice.issued", Some("t-1"), json!({"i": i}));
        if i % 2 == 0 {
            draft = draft.ttl(Ttl::from_millis(60_000).unwrap());
        }
        producer.send(draft).unwrap();
    }
    let clock = Arc::new(ManualClock::default());
    let mut c = fabric.consumer("g", TOPIC, config(&clock)).unwrap();
    let mut early = fabric.consumer("early", TOPIC, config(&clock)).unwrap();
    assert_eq!(drain(&mut early).len(), 10, "nothing expired yet");
    clock.advance(Duration::from_secs(120));
    let got = drain(&mut c);
    assert_eq!(got.len(), 5);
    assert!(
        got.iter()
            .all(|e| e.envelope().unwrap().ttl_millis.is_none())
    );
    assert_eq!(c.expired_count(), 5);
    c.commit().unwrap();
    assert_eq!(c.status().expired, 5);
    assert_eq!(
        c.status().lag(),
        0,
        "expired events are consumed, not lagging"
    );
    drop(c);
    let described = fabric.describe_group("g").unwrap();
    assert_eq!(described[0].expired, 5);
    // Asked to, the skip also dead-letters each expired event, bytes untouched.
    let mut cfg = config(&clock);
    cfg.expired_to_dlq = true;
    let mut routed = fabric.consumer("g2", TOPIC, cfg).unwrap();
    assert_eq!(drain(&mut routed).len(), 5);
    assert_eq!(routed.expired_count(), 5);
    let letters = fabric
        .dead_letters(TOPIC)
        .unwrap()
        .list(&eventfabric::DlqFilter::default())
        .unwrap();
    assert_eq!(letters.len(), 5);
    let originals: Vec<_> = fabric
        .reader(TOPIC, eventfabric::StartFrom::Earliest)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.envelope.ttl.is_some())
        .map(|e| (e.partition, e.offset, e.envelope.to_bytes()))
        .collect();
    for (entry, (partition, offset, bytes)) in letters.iter().zip(&originals) {
        assert_eq!(entry.letter.reason, eventfabric::DlqReason::Expired);
        assert_eq!(entry.letter.consumer, "g2");
        assert_eq!(
            (entry.letter.partition, entry.letter.offset),
            (*partition, *offset)
        );
        assert_eq!(&entry.letter.envelope[..], &bytes[..]);
    }
}

#[test]
fn seek_pause_resume_and_lag() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), 2);
    publish(&fabric, 40, "a");
    let clock = Arc::new(ManualClock::default());
    let mut c = fabric.consumer("g", TOPIC, config(&clock)).unwrap();
    let ends: Vec<u64> = (0..2)
        .map(|p| fabric.partition(TOPIC, p).unwrap().next_offset())
        .collect();
    assert_eq!(c.status().lag(), 40);
    assert_eq!(c.lag(), BTreeMap::from([(0, ends[0]), (1, ends[1])]));
    c.pause(1).unwrap();
    let got = drain(&mut c);
    assert!(got.iter().all(|e| e.partition == 0));
    assert_eq!(got.len() as u64, ends[0]);
    c.resume(1).unwrap();
    assert_eq!(drain(&mut c).len() as u64, ends[1]);
    c.seek(0, 1).unwrap();
    let again = drain(&mut c);
    assert_eq!(again.first().map(|e| e.offset), Some(1));
    assert_eq!(again.len() as u64, ends[0] - 1);
    assert!(matches!(
        c.seek(0, ends[0] + 1),
        Err(Error::OffsetOutOfRange { .. })
    ));
    c.seek_to_time(
        1,
        jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1),
    )
    .unwrap();
    assert_eq!(c.position(1), Some(ends[1]));
    c.seek_to_time(1, jiff::Timestamp::UNIX_EPOCH).unwrap();
    assert_eq!(c.position(1), Some(0));
    c.commit().unwrap();
    let status = c.status();
    assert_eq!(status.partitions[0].committed, Some(ends[0]));
    assert_eq!(status.partitions[1].lag, ends[1]);
}

#[test]
fn a_replay_session_respects_its_range_and_rate_and_moves_only_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), 2);
    publish(&fabric, 100, "a");
    let clock = Arc::new(ManualClock::default());
    let mut other = fabric.consumer("other", TOPIC, config(&clock)).unwrap();
    drain(&mut other);
    other.commit().unwrap();
    let before = other.status();
    drop(other);

    let mut replay = ReplayConfig::new(ReplayBound::Offset(5));
    replay.to = Some(ReplayBound::Offset(20));
    replay.rate = Some(100.0);
    replay.consumer = config(&clock);
    let mut session = fabric.replay(TOPIC, "replayer", replay).unwrap();
    assert_eq!(session.range()[&0], (5, 20));
    // The bucket starts with a tenth of a second's worth: 10 events.
    assert_eq!(session.poll(NOW).unwrap().len(), 10);
    assert!(session.poll(NOW).unwrap().is_empty(), "rate limited");
    clock.advance(Duration::from_millis(50));
    assert_eq!(session.poll(NOW).unwrap().len(), 5);
    let mut seen = Vec::new();
    while !session.is_done() {
        clock.advance(Duration::from_millis(100));
        let batch = session.poll(NOW).unwrap();
        assert!(batch.len() <= 10);
        seen.extend(batch);
    }
    assert_eq!(session.delivered(), 30);
    assert!(seen.iter().all(|e| (5..20).contains(&e.offset)));
    session.finish().unwrap();
    let status = fabric.describe_group("replayer").unwrap();
    assert!(status[0].partitions.iter().all(|p| p.committed == Some(20)));
    let after = fabric.describe_group("other").unwrap();
    let committed =
        |s: &[eventfabric::PartitionStatus]| s.iter().map(|p| p.committed).collect::<Vec<_>>();
    assert_eq!(
        committed(&after[0].partitions),
        committed(&before.partitions)
    );

    // A time range: everything emitted from the epoch on, for a new group.
    let mut by_time = ReplayConfig::new(ReplayBound::Time(jiff::Timestamp::UNIX_EPOCH));
    by_time.consumer = config(&clock);
    let mut session = fabric.replay(TOPIC, "fresh", by_time).unwrap();
    let mut n = 0;
    while !session.is_done() {
        n += session.poll(NOW).unwrap().len();
    }
    assert_eq!(n, 100);
    // A live member elsewhere in the group refuses a replay into it.
    let _member = fabric.consumer("busy", TOPIC, config(&clock)).unwrap();
    let mut again = ReplayConfig::new(ReplayBound::Offset(0));
    again.consumer = config(&clock);
    let err = fabric.replay(TOPIC, "busy", again).unwrap_err();
    assert!(err.to_string().contains("other live members"), "{err}");
}

#[test]
fn the_cursor_lock_refuses_a_second_owner_and_reset_while_live() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), 2);
    publish(&fabric, 20, "a");
    let clock = Arc::new(ManualClock::default());
    let mut c = fabric.consumer("g", TOPIC, config(&clock)).unwrap();
    drain(&mut c);
    c.commit().unwrap();
    // Another handle on the directory (as another process would be).
    let reader = Fabric::open_read_only(dir.path()).unwrap();
    let err = reader.consumer("g", TOPIC, config(&clock)).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    let err = reader
        .reset_group("g", TOPIC, ResetTo::Earliest)
        .unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    drop(c);
    let positions = reader.reset_group("g", TOPIC, ResetTo::Offset(3)).unwrap();
    assert!(positions.values().all(|&o| o == 3));
    // A read-only fabric may consume and commit under the group lock.
    let mut ro = reader.consumer("g", TOPIC, config(&clock)).unwrap();
    assert_eq!(drain(&mut ro).len(), 20 - 2 * 3);
    ro.commit().unwrap();
    drop(ro);
    assert_eq!(fabric.describe_group("g").unwrap()[0].lag(), 0);
    assert_eq!(
        fabric.list_groups().unwrap(),
        vec![("g".to_string(), vec![TOPIC.to_string()])]
    );
    let positions = fabric.reset_group("g", TOPIC, ResetTo::Latest).unwrap();
    assert_eq!(positions.values().sum::<u64>(), 20);
}

#[test]
fn a_torn_last_commit_falls_back_to_the_commit_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), 1);
    publish(&fabric, 20, "a");
    let clock = Arc::new(ManualClock::default());
    let mut cfg = config(&clock);
    cfg.max_poll_records = 5;
    cfg.commit_durability = CommitDurability::Sync;
    let mut c = fabric.consumer("g", TOPIC, cfg.clone()).unwrap();
    c.poll(NOW).unwrap();
    c.commit().unwrap();
    let path = dir.path().join("groups/g").join(format!("{TOPIC}.cursors"));
    let synced = std::fs::metadata(&path).unwrap().len();
    c.poll(NOW).unwrap();
    c.commit().unwrap();
    drop(c);
    let full = std::fs::read(&path).unwrap();
    for cut in synced as usize..full.len() {
        for fill in [None, Some(0u8), Some(0xFF)] {
            let mut bytes = full[..cut].to_vec();
            if let Some(b) = fill {
                bytes.resize(full.len(), b);
            }
            if bytes == full {
                continue; // the fill rewrote the bytes that were there
            }
            std::fs::write(&path, &bytes).unwrap();
            let mut c = fabric.consumer("g", TOPIC, cfg.clone()).unwrap();
            assert_eq!(c.poll(NOW).unwrap()[0].offset, 5, "cut {cut} fill {fill:?}");
        }
    }
    // Damage in a record that a later record vouches for is refused.
    let mut bytes = full.clone();
    bytes[16 + 20] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();
    match fabric.consumer("g", TOPIC, cfg) {
        Err(Error::Corrupted { .. }) => {}
        Err(other) => panic!("expected corruption, got {other}"),
        Ok(_) => panic!("a damaged durable commit was accepted"),
    }
}

#[test]
fn poll_blocks_until_an_append_wakes_it() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), 3);
    let mut c = fabric
        .consumer("g", TOPIC, ConsumerConfig::default())
        .unwrap();
    assert!(c.poll(Duration::from_millis(20)).unwrap().is_empty());
    let f = fabric.clone();
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        publish(&f, 1, "late")
    });
    let got = c.poll(Duration::from_secs(30)).unwrap();
    let sent = producer.join().unwrap();
    assert_eq!(ids(&got), vec![sent[0].event_id]);
}

#[test]
fn a_member_on_a_read_only_view_follows_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), 2);
    publish(&fabric, 5, "a");
    let view = Fabric::open_read_only(dir.path()).unwrap();
    let mut c = view
        .consumer("g", TOPIC, ConsumerConfig::default())
        .unwrap();
    assert_eq!(drain(&mut c).len(), 5);
    let writer = fabric.clone();
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        publish(&writer, 3, "b")
    });
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while got.len() < 3 && std::time::Instant::now() < deadline {
        got.extend(c.poll(Duration::from_secs(5)).unwrap());
    }
    let sent = producer.join().unwrap();
    let mut expected: Vec<_> = sent.iter().map(|e| e.event_id).collect();
    let mut got = ids(&got);
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    c.commit().unwrap();
    assert_eq!(c.status().lag(), 0);
}

#[test]
fn partitions_added_to_the_topic_are_assigned_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), 1);
    let clock = Arc::new(ManualClock::default());
    let mut a = fabric.consumer("g", TOPIC, config(&clock)).unwrap();
    let mut b = fabric.consumer("g", TOPIC, config(&clock)).unwrap();
    a.commit().unwrap();
    assert_eq!(a.assignment().len() + b.assignment().len(), 1);
    fabric.add_partitions(TOPIC, 4).unwrap();
    let events = publish(&fabric, 40, "grown");
    let mut got = drain(&mut a);
    got.extend(drain(&mut b));
    got.extend(drain(&mut a));
    assert_eq!(a.assignment().len() + b.assignment().len(), 4);
    assert_eq!(a.assignment().len(), 2);
    let mut got = ids(&got);
    got.sort();
    let mut expected: Vec<_> = events.iter().map(|e| e.event_id).collect();
    expected.sort();
    assert_eq!(got, expected);
}

/// Several groups and members, producers appending, members joining and
/// leaving: every group sees every event, and no partition is owned by two
/// live members at the same time.
#[test]
fn concurrent_groups_members_and_producers() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), 6);
    let total = 3000usize;
    let done = Arc::new(AtomicBool::new(false));
    let producer = {
        let f = fabric.clone();
        std::thread::spawn(move || {
            let mut ids = Vec::new();
            for round in 0..30 {
                ids.extend(
                    publish(&f, total / 30, &format!("r{round}"))
                        .iter()
                        .map(|e| e.event_id),
                );
                std::thread::sleep(Duration::from_millis(2));
            }
            ids
        })
    };
    let mut workers = Vec::new();
    for group in ["g1", "g2"] {
        for member in 0..3 {
            let f = fabric.clone();
            let done = done.clone();
            workers.push(std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut cfg = ConsumerConfig::default();
                cfg.max_poll_records = 50;
                cfg.commit_durability = CommitDurability::Os;
                while !done.load(Ordering::Acquire) {
                    // Members leave and rejoin: the last member stays.
                    let mut c = f.consumer(group, TOPIC, cfg.clone()).unwrap();
                    for _ in 0..(5 + member * 7) {
                        let batch = c.poll(Duration::from_millis(5)).unwrap();
                        for e in &batch {
                            assert!(c.assignment().contains(&e.partition));
                        }
                        seen.extend(batch.iter().map(|e| e.envelope().unwrap().event_id));
                        c.commit().unwrap();
                        if done.load(Ordering::Acquire) {
                            break;
                        }
                    }
                    if member == 0 {
                        // Keeps polling until done: someone always consumes.
                        while !done.load(Ordering::Acquire) {
                            let batch = c.poll(Duration::from_millis(5)).unwrap();
                            seen.extend(batch.iter().map(|e| e.envelope().unwrap().event_id));
                            c.commit().unwrap();
                            let status = c.status();
                            let owners: Vec<_> =
                                status.partitions.iter().map(|p| p.member).collect();
                            assert!(
                                owners
                                    .iter()
                                    .all(|o| o.is_none_or(|m| status.members.contains(&m)))
                            );
                        }
                        c.close().unwrap();
                        break;
                    }
                    drop(c);
                }
                (group, seen)
            }));
        }
    }
    let produced = producer.join().unwrap();
    // Let the groups catch up, then stop.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let lags: u64 = ["g1", "g2"]
            .iter()
            .map(|g| {
                fabric
                    .describe_group(g)
                    .map(|s| s.iter().map(|t| t.lag()).sum())
                    .unwrap_or(u64::MAX)
            })
            .sum();
        if lags == 0 || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done.store(true, Ordering::Release);
    let mut per_group: BTreeMap<&str, BTreeSet<uuid::Uuid>> = BTreeMap::new();
    for w in workers {
        let (group, seen) = w.join().unwrap();
        per_group.entry(group).or_default().extend(seen);
    }
    let produced: BTreeSet<_> = produced.into_iter().collect();
    assert_eq!(produced.len(), total);
    for (group, seen) in per_group {
        assert_eq!(seen, produced, "group {group} missed events");
    }
}

/// A clock whose wall time is fixed (µs), for TTL boundaries.
#[derive(Debug)]
struct WallAt(i64);

impl eventfabric::Clock for WallAt {
    fn monotonic(&self) -> Duration {
        Duration::ZERO
    }
    fn wall_micros(&self) -> i64 {
        self.0
    }
}

#[test]
fn an_event_expires_exactly_at_emitted_at_plus_ttl_for_groups_and_queues() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), 1);
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    let draft = Draft::new("billing.invoice.issued", Some("t-1"), json!({"i": 0}))
        .ttl(Ttl::from_millis(60_000).unwrap());
    let (sent, _) = producer.send(draft).unwrap();
    let expires = sent.emitted_at.as_microsecond() + 60_000_000;
    for (name, now, delivered) in [("before", expires - 1, true), ("at", expires, false)] {
        let mut cfg = ConsumerConfig::default();
        cfg.clock = Arc::new(WallAt(now));
        let mut c = fabric.consumer(name, TOPIC, cfg).unwrap();
        let got = drain(&mut c);
        assert_eq!(
            got.len(),
            usize::from(delivered),
            "group, clock {name} expiry"
        );
        assert_eq!(c.expired_count(), u64::from(!delivered));

        let mut qc = eventfabric::QueueConfig::default();
        qc.clock = Arc::new(eventfabric::ManualClock::new(now));
        let queue = fabric.queue(name, TOPIC, qc).unwrap();
        let got = queue.try_fetch(10).unwrap();
        assert_eq!(
            got.len(),
            usize::from(delivered),
            "queue, clock {name} expiry"
        );
        assert_eq!(queue.stats().expired, u64::from(!delivered));
    }
}

#[test]
fn close_refuses_while_a_reader_queue_or_consumer_is_open_and_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), 2);
    publish(&fabric, 4, "close");
    let reader = fabric
        .reader(TOPIC, eventfabric::StartFrom::Earliest)
        .unwrap();
    let queue = fabric
        .queue("billing-q", TOPIC, eventfabric::QueueConfig::default())
        .unwrap();
    let consumer = fabric
        .consumer("projector", TOPIC, ConsumerConfig::default())
        .unwrap();
    let err = fabric.clone().close().unwrap_err();
    let text = err.to_string();
    for named in ["Reader", TOPIC, "\"billing-q\"", "\"projector\""] {
        assert!(text.contains(named), "{named} missing from: {text}");
    }
    assert!(matches!(err, Error::InUse { .. }), "{err:?}");
    // Nothing was closed: the handles still work.
    assert_eq!(queue.try_fetch(10).unwrap().len(), 4);
    drop((reader, queue, consumer));
    // Another handle on the same fabric is named too.
    let other = fabric.clone();
    let err = fabric.close().unwrap_err();
    assert!(err.to_string().contains("Fabric"), "{err}");
    other.close().unwrap();
    // Closed for real: the directory can be opened again at once.
    let again = Fabric::open(dir.path(), FabricConfig::with_fsync(FsyncPolicy::Os)).unwrap();
    again.close().unwrap();
}

/// A power loss: the partition loses every record after its last completed
/// sync (`durable_offset`), then everything is reopened.
fn power_loss(dir: &std::path::Path, fabric: Fabric) -> Fabric {
    for p in 0..fabric.topic_info(TOPIC).unwrap().config.partitions {
        let log = fabric.partition(TOPIC, p).unwrap();
        log.truncate(log.durable_offset()).unwrap();
    }
    drop(fabric);
    Fabric::open(dir, FabricConfig::with_fsync(FsyncPolicy::Os)).unwrap()
}

#[test]
fn a_durable_cursor_never_points_past_what_a_power_loss_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), 1);
    publish(&fabric, 10, "a");
    fabric.flush().unwrap();
    publish(&fabric, 5, "b");
    let mut cfg = ConsumerConfig::default();
    cfg.commit_durability = CommitDurability::Sync;
    cfg.auto_commit_interval = None;
    {
        let mut c = fabric.consumer("g", TOPIC, cfg.clone()).unwrap();
        assert_eq!(drain(&mut c).len(), 15);
        c.commit().unwrap();
        let committed = c.status().partitions[0].committed.unwrap();
        let durable = fabric.partition(TOPIC, 0).unwrap().durable_offset();
        assert!(
            committed <= durable,
            "cursor {committed} persisted past the durable offset {durable}"
        );
    }
    let fabric = power_loss(dir.path(), fabric);
    let end = fabric.partition(TOPIC, 0).unwrap().next_offset();
    let fresh = publish(&fabric, 5, "c");
    let mut c = fabric.consumer("g", TOPIC, cfg).unwrap();
    let got = drain(&mut c);
    let got_ids = ids(&got);
    for e in &fresh {
        assert!(
            got_ids.contains(&e.event_id),
            "a record appended after the power loss (log end {end}) was skipped"
        );
    }
}

#[test]
fn a_cursor_past_the_recovered_log_end_is_reported_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), 1);
    publish(&fabric, 15, "a");
    {
        let mut c = fabric
            .consumer("g", TOPIC, ConsumerConfig::default())
            .unwrap();
        assert_eq!(drain(&mut c).len(), 15);
        c.commit().unwrap();
    }
    // Recovery (or a repair) removed records below the committed cursor.
    fabric.partition(TOPIC, 0).unwrap().truncate(10).unwrap();
    let err = fabric
        .consumer("g", TOPIC, ConsumerConfig::default())
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::CursorBeyondLog { consumer, topic, partition: 0, cursor: 15, log_end: 10 }
                if consumer.contains("\"g\"") && topic == TOPIC
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("reset"), "says how to go on: {text}");
    // After a reset the group reads on from the log as it is.
    fabric.reset_group("g", TOPIC, ResetTo::Latest).unwrap();
    let fresh = publish(&fabric, 2, "b");
    let mut c = fabric
        .consumer("g", TOPIC, ConsumerConfig::default())
        .unwrap();
    assert_eq!(
        ids(&drain(&mut c)),
        fresh.iter().map(|e| e.event_id).collect::<Vec<_>>()
    );
}

#[test]
fn a_durable_only_consumer_is_handed_only_synced_records() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = open(dir.path(), 1);
    publish(&fabric, 3, "a");
    fabric.flush().unwrap();
    publish(&fabric, 4, "b");
    let mut cfg = ConsumerConfig::default();
    cfg.durable_only = true;
    let mut c = fabric.consumer("careful", TOPIC, cfg).unwrap();
    let log = fabric.partition(TOPIC, 0).unwrap();
    assert!(log.durable_offset() < log.next_offset());
    let first = drain(&mut c);
    assert_eq!(first.len(), 3, "only what a sync made durable");
    assert!(
        first
            .iter()
            .all(|e| e.offset < fabric.partition(TOPIC, 0).unwrap().durable_offset())
    );
    fabric.flush().unwrap();
    assert_eq!(drain(&mut c).len(), 4);
}
