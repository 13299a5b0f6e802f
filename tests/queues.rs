//! Queues and the dead-letter queue end to end: poison messages through
//! their retry schedule into the DLQ and back by replay, TTL expiry, the
//! DLQ-rate alert, the in-flight cap, tenant filtering, blocking fetches
//! woken by appends and nacks, and competing consumers under stress.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventfabric::{
    Backoff, Clock, DlqFilter, DlqRateAlert, DlqRateEvent, DlqReason, Draft, Envelope, Fabric,
    FabricConfig, Failure, FsyncPolicy, ManualClock, NackOutcome, QueueConfig, ReadLimit,
    RetryPolicy, StartFrom, TopicConfig, Ttl,
};
use serde_json::json;
use sha2::{Digest, Sha256};

const TOPIC: &str = "billing.domain.v1";

fn setup(partitions: u32) -> (tempfile::TempDir, Fabric) {
    let dir = tempfile::tempdir().unwrap();
    let fabric = Fabric::open(dir.path(), FabricConfig::with_fsync(FsyncPolicy::Os)).unwrap();
    fabric
        .create_topic(TOPIC, TopicConfig::with_partitions(partitions))
        .unwrap();
    (dir, fabric)
}

fn publish(fabric: &Fabric, tenant: &str, payload: serde_json::Value) -> (Envelope, (u32, u64)) {
    let mut p = fabric.producer(TOPIC, "test").unwrap();
    let (e, at) = p
        .send(Draft::new("billing.invoice.issued", Some(tenant), payload))
        .unwrap();
    (e, (at.partition, at.offset))
}

fn manual_config(clock: &Arc<ManualClock>) -> QueueConfig {
    let mut c = QueueConfig::default();
    c.clock = clock.clone();
    c
}

fn real_now() -> i64 {
    eventfabric::SystemClock.wall_micros()
}

#[test]
fn a_poison_message_retries_on_schedule_lands_in_the_dlq_and_replays_exactly_once() {
    let (_dir, fabric) = setup(2);
    let clock = Arc::new(ManualClock::new(real_now()));
    let mut config = manual_config(&clock);
    config.retry = RetryPolicy {
        max_attempts: 3,
        backoff: Backoff::Exponential {
            initial: Duration::from_millis(100),
            multiplier: 2.0,
            max: Duration::from_secs(10),
            jitter: 0.0,
        },
    };
    let queue = fabric.queue("invoicing", TOPIC, config.clone()).unwrap();
    let (good, _) = publish(&fabric, "tenant-1", json!({"amount": 10}));
    let (poison, poison_at) = publish(&fabric, "tenant-2", json!({"amount": -1}));

    let mut failures = Vec::new();
    let mut schedule = Vec::new();
    let mut delivered_attempts = Vec::new();
    loop {
        let got = queue.try_fetch(10).unwrap();
        for m in got {
            let e = m.envelope().unwrap();
            if e.event_id == good.event_id {
                queue.ack(&m).unwrap();
                continue;
            }
            assert_eq!(e.event_id, poison.event_id);
            delivered_attempts.push(m.attempt);
            let now = clock.wall_micros();
            failures.push(now);
            let error = format!("amount must be positive (attempt {})", m.attempt);
            match queue.nack(&m, Failure::retry(error)).unwrap() {
                NackOutcome::Retry { next_attempt, at } => {
                    assert_eq!(next_attempt, m.attempt + 1);
                    schedule.push(at - now);
                    // Not a microsecond early...
                    clock.set(at - 1);
                    assert!(queue.try_fetch(10).unwrap().is_empty());
                    clock.set(at);
                }
                NackOutcome::DeadLettered { partition, offset } => {
                    assert_eq!(partition, poison_at.0);
                    assert_eq!(offset, 0);
                }
                NackOutcome::Stale => panic!("a current delivery was called stale"),
            }
        }
        if queue.stats().dead_lettered == 1 {
            break;
        }
        assert!(
            delivered_attempts.len() <= 3,
            "more deliveries than attempts"
        );
    }
    assert_eq!(delivered_attempts, [1, 2, 3]);
    assert_eq!(
        schedule,
        [100_000, 200_000],
        "exponential backoff 100 ms, 200 ms"
    );

    // The dead letter carries every field, and the original bytes untouched.
    let letters = fabric.dead_letters(TOPIC).unwrap();
    assert_eq!(letters.topic(), "billing.domain.v1.dlq");
    assert_eq!(
        fabric
            .topic_info(letters.topic())
            .unwrap()
            .config
            .partitions,
        2
    );
    let all = letters.list(&DlqFilter::default()).unwrap();
    assert_eq!(all.len(), 1);
    let entry = &all[0];
    let original = fabric
        .partition(TOPIC, poison_at.0)
        .unwrap()
        .read(poison_at.1, ReadLimit::records(1))
        .unwrap()
        .remove(0);
    let l = &entry.letter;
    assert_eq!(l.reason, DlqReason::MaxAttemptsExceeded);
    assert_eq!(l.error, "amount must be positive (attempt 3)");
    assert_eq!(l.attempts, 3);
    assert_eq!(l.first_failure_micros, failures[0]);
    assert_eq!(l.last_failure_micros, failures[2]);
    assert_eq!(l.topic, TOPIC);
    assert_eq!((l.partition, l.offset), poison_at);
    assert_eq!(l.timestamp, original.timestamp);
    assert_eq!(l.consumer, "invoicing");
    assert_eq!(
        l.envelope, original.value,
        "original envelope bytes untouched"
    );
    // The hash covers the payload as stored (MessagePack), not the envelope.
    let payload = eventfabric::EnvelopeRef::decode(&original.value)
        .unwrap()
        .payload_bytes;
    let digest: [u8; 32] = Sha256::digest(payload).into();
    assert_eq!(entry.payload_sha256, digest);
    assert_eq!(entry.event_id(), Some(poison.event_id));
    assert!(entry.dead_lettered_micros <= real_now());
    assert_eq!(
        letters.get(entry.dlq_partition, entry.dlq_offset).unwrap(),
        *entry
    );
    let json = entry.to_json();
    for field in [
        "reason",
        "error",
        "attempts",
        "first_failure_at",
        "last_failure_at",
        "original_topic",
        "original_partition",
        "original_offset",
        "consumer",
        "payload_sha256",
        "event_id",
        "dead_lettered_at",
        "envelope",
    ] {
        assert!(!json[field].is_null(), "JSON lacks {field}: {json}");
    }

    // Acked on the source: nothing more, even after a restart.
    clock.advance(Duration::from_secs(3_600));
    assert!(queue.try_fetch(10).unwrap().is_empty());
    drop(queue);
    let queue = fabric.queue("invoicing", TOPIC, config.clone()).unwrap();
    assert!(queue.try_fetch(10).unwrap().is_empty());

    // Filters that do not match replay nothing.
    let other_reason = DlqFilter {
        reason: Some(DlqReason::Expired),
        ..DlqFilter::default()
    };
    assert!(
        letters
            .replay(&other_reason, None)
            .unwrap()
            .replayed
            .is_empty()
    );
    let other_id = DlqFilter {
        event_id: Some(good.event_id),
        ..DlqFilter::default()
    };
    assert!(letters.replay(&other_id, None).unwrap().replayed.is_empty());
    let future = DlqFilter {
        from: Some(jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)),
        ..DlqFilter::default()
    };
    assert!(letters.list(&future).unwrap().is_empty());

    // Replay: back in the source, consumed exactly once.
    let by_id = DlqFilter {
        event_id: Some(poison.event_id),
        reason: Some(DlqReason::MaxAttemptsExceeded),
        ..DlqFilter::default()
    };
    let report = letters.replay(&by_id, Some(1_000.0)).unwrap();
    assert_eq!(report.replayed.len(), 1);
    assert_eq!(report.replayed[0].event_id, poison.event_id);
    let mut seen = Vec::new();
    for _ in 0..3 {
        for m in queue.try_fetch(10).unwrap() {
            seen.push((m.envelope().unwrap().event_id, m.attempt));
            queue.ack(&m).unwrap();
        }
    }
    assert_eq!(seen, [(poison.event_id, 1)]);

    // Replay again, and after a restart of everything: nothing.
    let again = letters.replay(&DlqFilter::default(), None).unwrap();
    assert!(again.replayed.is_empty());
    assert_eq!(again.already_replayed, 1);
    drop((queue, letters));
    let path = fabric.path().to_path_buf();
    fabric.close().unwrap();
    let fabric = Fabric::open(&path, FabricConfig::default()).unwrap();
    let again = fabric
        .dead_letters(TOPIC)
        .unwrap()
        .replay(&DlqFilter::default(), None)
        .unwrap();
    assert!(again.replayed.is_empty());
    let queue = fabric.queue("invoicing", TOPIC, config).unwrap();
    assert!(queue.try_fetch(10).unwrap().is_empty());
}

#[test]
fn a_non_retryable_failure_is_dead_lettered_at_once_with_its_reason() {
    let (_dir, fabric) = setup(1);
    let queue = fabric.queue("q", TOPIC, QueueConfig::default()).unwrap();
    publish(&fabric, "tenant-1", json!({}));
    let m = queue.try_fetch(1).unwrap().remove(0);
    let outcome = queue
        .nack(
            &m,
            Failure::fatal(DlqReason::SchemaViolation, "amount missing"),
        )
        .unwrap();
    assert_eq!(
        outcome,
        NackOutcome::DeadLettered {
            partition: 0,
            offset: 0
        }
    );
    let entry = fabric.dead_letters(TOPIC).unwrap().get(0, 0).unwrap();
    assert_eq!(entry.letter.reason, DlqReason::SchemaViolation);
    assert_eq!(entry.letter.attempts, 1);
    assert_eq!(entry.letter.error, "amount missing");
    // The existing readers refuse dead letters and say where to look.
    let err = fabric
        .reader("billing.domain.v1.dlq", StartFrom::Earliest)
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dead letter") && err.contains("fabric dlq"),
        "{err}"
    );
    let err = fabric
        .queue("q2", "billing.domain.v1.dlq", QueueConfig::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("dead-letter topic"), "{err}");
}

#[test]
fn expired_events_are_skipped_counted_and_dead_lettered_only_when_asked() {
    let (_dir, fabric) = setup(1);
    let mut p = fabric.producer(TOPIC, "test").unwrap();
    let short = Draft::new("billing.invoice.issued", Some("t"), json!({"n": 1}))
        .ttl(Ttl::from_millis(1_000).unwrap());
    let long = Draft::new("billing.invoice.issued", Some("t"), json!({"n": 2}))
        .ttl(Ttl::from_millis(3_600_000).unwrap());
    let (expired, _) = p.send(short).unwrap();
    let (fresh, _) = p.send(long).unwrap();
    let clock = Arc::new(ManualClock::new(real_now() + 5_000_000));

    let dropping = fabric.queue("drop", TOPIC, manual_config(&clock)).unwrap();
    let got = dropping.try_fetch(10).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].envelope().unwrap().event_id, fresh.event_id);
    assert_eq!(dropping.stats().expired, 1);
    let none = fabric.dead_letters(TOPIC).unwrap();
    assert!(none.list(&DlqFilter::default()).unwrap().is_empty());

    let mut config = manual_config(&clock);
    config.dead_letter_expired = true;
    let routing = fabric.queue("route", TOPIC, config).unwrap();
    let got = routing.try_fetch(10).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(routing.stats().expired, 1);
    let letters = fabric
        .dead_letters(TOPIC)
        .unwrap()
        .list(&DlqFilter::default())
        .unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].letter.reason, DlqReason::Expired);
    assert_eq!(letters[0].event_id(), Some(expired.event_id));
    assert_eq!(letters[0].letter.consumer, "route");
    // Not expired yet on a clock before the deadline.
    let early = Arc::new(ManualClock::new(
        expired.emitted_at.as_microsecond() + 999_000,
    ));
    let before = fabric.queue("early", TOPIC, manual_config(&early)).unwrap();
    assert_eq!(before.try_fetch(10).unwrap().len(), 2);
    assert_eq!(before.stats().expired, 0);

    // Expiring while waiting for a retry: not redelivered, dead-lettered.
    let mut config = manual_config(&early);
    config.dead_letter_expired = true;
    let retrying = fabric.queue("retrying", TOPIC, config).unwrap();
    let got = retrying.try_fetch(10).unwrap();
    let short_one = got
        .iter()
        .find(|m| m.envelope().unwrap().event_id == expired.event_id)
        .unwrap();
    retrying
        .nack(
            short_one,
            Failure::retry_after("later", Duration::from_secs(5)),
        )
        .unwrap();
    early.advance(Duration::from_secs(6));
    assert!(retrying.try_fetch(10).unwrap().is_empty());
    assert_eq!(retrying.stats().expired, 1);
    let letters = fabric
        .dead_letters(TOPIC)
        .unwrap()
        .list(&DlqFilter::default())
        .unwrap();
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[1].letter.reason, DlqReason::Expired);
    assert_eq!(letters[1].letter.consumer, "retrying");
    assert_eq!(letters[1].letter.attempts, 1);
}

#[test]
fn the_dlq_rate_alert_fires_only_past_its_threshold() {
    let (_dir, fabric) = setup(1);
    let events: Arc<Mutex<Vec<DlqRateEvent>>> = Arc::default();
    let sink = events.clone();
    let clock = Arc::new(ManualClock::new(real_now()));
    let mut config = manual_config(&clock);
    config.dlq_alert = Some(DlqRateAlert {
        threshold: 2,
        window: Duration::from_secs(60),
        callback: Arc::new(move |e| sink.lock().unwrap().push(e)),
    });
    let queue = fabric.queue("q", TOPIC, config).unwrap();
    for _ in 0..5 {
        publish(&fabric, "t", json!({}));
    }
    let mut fired_after = Vec::new();
    for m in queue.try_fetch(10).unwrap() {
        queue
            .nack(&m, Failure::fatal(DlqReason::RejectedByPolicy, "no"))
            .unwrap();
        fired_after.push(events.lock().unwrap().len());
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(
        fired_after,
        [0, 0, 1, 1, 1],
        "fires once, on the third in 60 s"
    );
    let e = events.lock().unwrap()[0].clone();
    assert_eq!(
        (e.count, e.threshold, e.queue.as_str(), e.topic.as_str()),
        (3, 2, "q", TOPIC)
    );
}

#[test]
fn the_cap_stops_new_deliveries_and_tenant_filtering_skips_others() {
    let (_dir, fabric) = setup(1);
    let mut config = QueueConfig::default();
    config.max_ack_pending = 2;
    config.tenant = Some("tenant-a".into());
    let queue = fabric.queue("q", TOPIC, config).unwrap();
    for i in 0..8 {
        publish(
            &fabric,
            if i % 2 == 0 { "tenant-a" } else { "tenant-b" },
            json!({"i": i}),
        );
    }
    let first = queue.try_fetch(10).unwrap();
    assert_eq!(first.len(), 2);
    assert!(queue.try_fetch(10).unwrap().is_empty(), "at the cap");
    queue.ack(&first[1]).unwrap();
    let next = queue.try_fetch(10).unwrap();
    assert_eq!(next.len(), 1);
    queue.ack_all(&[first[0].clone(), next[0].clone()]).unwrap();
    let rest = queue.try_fetch(10).unwrap();
    assert_eq!(rest.len(), 1);
    for m in first.iter().chain(&next).chain(&rest) {
        assert_eq!(m.envelope().unwrap().tenant_id, Some("tenant-a"));
    }
    assert_eq!(
        queue.stats().filtered,
        4,
        "every tenant-b event was skipped"
    );
    // Acking something never delivered is an error; acking twice is not.
    queue.ack(&rest[0]).unwrap();
    queue.ack(&rest[0]).unwrap();
    let mut bogus = rest[0].clone();
    bogus.offset = 1_000;
    assert!(queue.ack(&bogus).is_err());
}

#[test]
fn a_blocked_fetch_wakes_on_append_and_on_a_nack_of_another_consumer() {
    let (_dir, fabric) = setup(3);
    let mut config = QueueConfig::default();
    config.max_ack_pending = 1;
    let queue = fabric.queue("q", TOPIC, config).unwrap();
    let q = queue.clone();
    let waiter = std::thread::spawn(move || q.fetch(1, Duration::from_secs(30)).unwrap());
    std::thread::sleep(Duration::from_millis(50));
    publish(&fabric, "t", json!({}));
    let got = waiter.join().unwrap();
    assert_eq!(got.len(), 1, "woken by the append");

    // At the cap, a second consumer blocks until the first gives back.
    let q = queue.clone();
    let waiter = std::thread::spawn(move || q.fetch(1, Duration::from_secs(30)).unwrap());
    std::thread::sleep(Duration::from_millis(50));
    queue
        .nack(&got[0], Failure::retry_after("later", Duration::ZERO))
        .unwrap();
    let again = waiter.join().unwrap();
    assert_eq!(again.len(), 1, "woken by the nack");
    assert_eq!((again[0].offset, again[0].attempt), (got[0].offset, 2));
}

#[test]
fn competing_consumers_get_each_message_once() {
    let (_dir, fabric) = setup(4);
    let queue = fabric.queue("q", TOPIC, QueueConfig::default()).unwrap();
    const N: usize = 3_000;
    let done = Arc::new(AtomicBool::new(false));
    let producer = {
        let fabric = fabric.clone();
        std::thread::spawn(move || {
            let mut p = fabric.producer(TOPIC, "stress").unwrap();
            for i in 0..N {
                let tenant = format!("t{}", i % 17);
                p.send(Draft::new(
                    "billing.invoice.issued",
                    Some(&tenant),
                    json!({"i": i}),
                ))
                .unwrap();
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let (queue, done) = (queue.clone(), done.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let got = queue.fetch(16, Duration::from_millis(20)).unwrap();
                    for m in &got {
                        assert_eq!(m.attempt, 1);
                        seen.push((m.partition, m.offset));
                    }
                    // Acks out of order: last first.
                    for m in got.iter().rev() {
                        queue.ack(m).unwrap();
                    }
                }
                seen
            })
        })
        .collect();
    producer.join().unwrap();
    while queue.stats().acked < N as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    done.store(true, Ordering::SeqCst);
    let mut all = Vec::new();
    for c in consumers {
        all.extend(c.join().unwrap());
    }
    let distinct: BTreeSet<_> = all.iter().copied().collect();
    assert_eq!(all.len(), N, "every message delivered");
    assert_eq!(distinct.len(), N, "none delivered twice");
    let per_partition: BTreeMap<u32, usize> = all.iter().fold(BTreeMap::new(), |mut m, (p, _)| {
        *m.entry(*p).or_default() += 1;
        m
    });
    assert_eq!(per_partition.values().sum::<usize>(), N);
}

#[test]
fn queue_handles_are_send_and_sync() {
    fn shareable<T: Send + Sync + Clone>() {}
    shareable::<eventfabric::Queue>();
    shareable::<eventfabric::DeadLetters>();
}

const DAY_MS: u64 = 86_400_000;

/// A one-partition topic with small segments whose sealed ones retention
/// moves to the warm tier (7-day hot retention, a year of warm).
fn tiered_setup() -> (tempfile::TempDir, Fabric) {
    let dir = tempfile::tempdir().unwrap();
    let fabric = Fabric::open(dir.path(), FabricConfig::with_fsync(FsyncPolicy::Os)).unwrap();
    let mut c = TopicConfig::with_partitions(1);
    c.fsync = FsyncPolicy::Os;
    c.segment_bytes = 2048;
    c.retention_ms = Some(7 * DAY_MS);
    c.warm_retention_ms = 365 * DAY_MS;
    fabric.create_topic(TOPIC, c).unwrap();
    (dir, fabric)
}

/// Moves every sealed segment of the topic to the warm tier; returns how
/// many records are left in the hot log's range.
fn tier_everything_sealed(fabric: &Fabric) -> u64 {
    let later = jiff::Timestamp::from_microsecond(real_now() + 30 * DAY_MS as i64 * 1000).unwrap();
    fabric.maintain_at(later).unwrap();
    let log = fabric.partition(TOPIC, 0).unwrap();
    assert!(
        log.earliest_offset() > 0,
        "retention moved segments to warm"
    );
    log.next_offset() - log.earliest_offset()
}

#[test]
fn a_new_queue_on_a_tiered_topic_delivers_the_warm_events_too() {
    let (_dir, fabric) = tiered_setup();
    for i in 0..60 {
        publish(&fabric, "t", json!({ "i": i }));
    }
    let hot = tier_everything_sealed(&fabric);
    assert!(hot < 60);
    let queue = fabric
        .queue("fresh", TOPIC, QueueConfig::default())
        .unwrap();
    let mut offsets = Vec::new();
    loop {
        let got = queue.try_fetch(100).unwrap();
        if got.is_empty() {
            break;
        }
        offsets.extend(got.iter().map(|m| m.offset));
        queue.ack_all(&got).unwrap();
    }
    assert_eq!(offsets, (0..60).collect::<Vec<u64>>());
}

#[test]
fn unacked_messages_moved_to_warm_are_redelivered_after_a_restart() {
    let (dir, fabric) = tiered_setup();
    for i in 0..60 {
        publish(&fabric, "t", json!({ "i": i }));
    }
    {
        let queue = fabric.queue("q", TOPIC, QueueConfig::default()).unwrap();
        let got = queue.try_fetch(100).unwrap();
        assert_eq!(got.len(), 60);
        // Acks only the last ten; the rest were in flight when it stopped.
        queue.ack_all(&got[50..]).unwrap();
        queue.flush().unwrap();
    }
    tier_everything_sealed(&fabric);
    fabric.close().unwrap();
    let fabric = Fabric::open(dir.path(), FabricConfig::with_fsync(FsyncPolicy::Os)).unwrap();
    let queue = fabric.queue("q", TOPIC, QueueConfig::default()).unwrap();
    let got = queue.try_fetch(100).unwrap();
    let offsets: Vec<u64> = got.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, (0..50).collect::<Vec<u64>>());
    assert!(
        got.iter().all(|m| m.attempt == 2),
        "counted as a redelivery"
    );
}

#[test]
fn an_unacked_message_is_visible_again_exactly_one_visibility_timeout_after_hand_out() {
    let (_dir, fabric) = setup(1);
    let start = real_now();
    let clock = Arc::new(ManualClock::new(start));
    let mut config = manual_config(&clock);
    config.visibility_timeout = Duration::from_secs(30);
    config.retry = RetryPolicy {
        max_attempts: 3,
        backoff: Backoff::List(vec![Duration::from_secs(600)]),
    };
    let queue = fabric.queue("visibility", TOPIC, config).unwrap();
    publish(&fabric, "t", json!({"n": 1}));
    let first = queue.try_fetch(1).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempt, 1);
    let vt = 30_000_000;

    // One µs before the deadline: still invisible.
    clock.set(start + vt - 1);
    assert!(queue.try_fetch(1).unwrap().is_empty());
    // At the deadline: visible again, no backoff added, counted as attempt 2.
    clock.set(start + vt);
    let second = queue.try_fetch(1).unwrap();
    assert_eq!(
        second.len(),
        1,
        "visible again at hand-out + visibility_timeout"
    );
    assert_eq!(second[0].attempt, 2);
    assert_eq!(queue.stats().timed_out, 1);

    // Noticed late: still measured from the deadline, not from the fetch
    // that notices it (the next hand-out is visible at once).
    let handed = start + vt;
    clock.set(handed + vt + 5_000_000);
    let third = queue.try_fetch(1).unwrap();
    assert_eq!(
        third.len(),
        1,
        "visible since its deadline, not after a backoff"
    );
    assert_eq!(third[0].attempt, 3);

    // The third timeout exhausts max_attempts: dead-lettered, not redelivered.
    clock.set(handed + vt + 5_000_000 + vt);
    assert!(queue.try_fetch(1).unwrap().is_empty());
    assert_eq!(queue.stats().dead_lettered, 1);
    let letters = fabric
        .dead_letters(TOPIC)
        .unwrap()
        .list(&DlqFilter::default())
        .unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].letter.reason, DlqReason::MaxAttemptsExceeded);
    assert_eq!(letters[0].letter.attempts, 3);
}

#[test]
fn a_nack_after_a_visibility_timeout_keeps_the_policys_backoff() {
    let (_dir, fabric) = setup(1);
    let start = real_now();
    let clock = Arc::new(ManualClock::new(start));
    let mut config = manual_config(&clock);
    config.visibility_timeout = Duration::from_secs(30);
    config.retry = RetryPolicy {
        max_attempts: 5,
        backoff: Backoff::List(vec![Duration::from_secs(7), Duration::from_secs(11)]),
    };
    let queue = fabric.queue("nacks", TOPIC, config).unwrap();
    publish(&fabric, "t", json!({"n": 1}));
    assert_eq!(queue.try_fetch(1).unwrap().len(), 1);
    clock.set(start + 30_000_000);
    let again = queue.try_fetch(1).unwrap();
    assert_eq!(again[0].attempt, 2);
    let now = start + 30_000_000 + 1_000;
    clock.set(now);
    let outcome = queue.nack(&again[0], Failure::retry("boom")).unwrap();
    // The delay after attempt 2 of the list: 11 s from the nack.
    assert_eq!(
        outcome,
        NackOutcome::Retry {
            next_attempt: 3,
            at: now + 11_000_000
        }
    );
    clock.set(now + 11_000_000 - 1);
    assert!(queue.try_fetch(1).unwrap().is_empty());
    clock.set(now + 11_000_000);
    assert_eq!(queue.try_fetch(1).unwrap()[0].attempt, 3);
}

#[test]
fn the_dead_letters_of_a_topic_with_none_yet_are_an_empty_dlq() {
    let (_dir, fabric) = setup(2);
    let letters = fabric.dead_letters(TOPIC).unwrap();
    assert!(letters.list(&DlqFilter::default()).unwrap().is_empty());
    // A topic that does not exist is still an error naming it.
    let missing = fabric.dead_letters("no.such.v1").unwrap_err().to_string();
    assert!(missing.contains("no.such.v1"), "{missing}");
    // A dead-letter topic has no dead-letter queue of its own.
    assert!(fabric.dead_letters(&format!("{TOPIC}.dlq")).is_err());
    assert!(!fabric.topics().iter().any(|t| t.ends_with(".dlq.dlq")));
    // The first dead letter then lands in it as usual.
    let clock = Arc::new(ManualClock::new(real_now()));
    let queue = fabric.queue("q", TOPIC, manual_config(&clock)).unwrap();
    publish(&fabric, "t", json!({"n": 1}));
    let m = queue.try_fetch(1).unwrap().remove(0);
    let outcome = queue
        .nack(&m, Failure::fatal(DlqReason::HandlerError, "no"))
        .unwrap();
    assert!(matches!(outcome, NackOutcome::DeadLettered { .. }));
    assert_eq!(letters.list(&DlqFilter::default()).unwrap().len(), 1);
}

#[test]
fn an_ack_is_never_persisted_for_a_record_a_power_loss_can_remove() {
    let (dir, fabric) = setup(1);
    for i in 0..10 {
        publish(&fabric, "t", json!({ "i": i }));
    }
    fabric.flush().unwrap();
    for i in 10..15 {
        publish(&fabric, "t", json!({ "i": i }));
    }
    {
        let queue = fabric.queue("q", TOPIC, QueueConfig::default()).unwrap();
        let got = queue.try_fetch(100).unwrap();
        assert_eq!(got.len(), 15);
        queue.ack(&got[12]).unwrap();
        queue.flush().unwrap();
        let durable = fabric.partition(TOPIC, 0).unwrap().durable_offset();
        assert!(
            durable > 12,
            "ack of 12 persisted while the log is durable to {durable}"
        );
    }
    // Power loss: the partition keeps only what its last sync covered.
    let log = fabric.partition(TOPIC, 0).unwrap();
    log.truncate(log.durable_offset()).unwrap();
    drop(log);
    fabric.close().unwrap();
    let fabric = Fabric::open(dir.path(), FabricConfig::with_fsync(FsyncPolicy::Os)).unwrap();
    let end = fabric.partition(TOPIC, 0).unwrap().next_offset();
    let mut fresh = Vec::new();
    for i in 0..5 {
        fresh.push(publish(&fabric, "t", json!({ "fresh": i })).0.event_id);
    }
    let queue = fabric.queue("q", TOPIC, QueueConfig::default()).unwrap();
    let got: Vec<_> = queue
        .try_fetch(100)
        .unwrap()
        .iter()
        .map(|m| m.envelope().unwrap().event_id)
        .collect();
    for id in fresh {
        assert!(
            got.contains(&id),
            "a record appended after the power loss (end {end}) was treated as acked"
        );
    }
}

#[test]
fn an_ack_floor_past_the_recovered_log_end_is_reported_naming_queue_and_partition() {
    let (_dir, fabric) = setup(1);
    for i in 0..15 {
        publish(&fabric, "t", json!({ "i": i }));
    }
    {
        let queue = fabric.queue("q", TOPIC, QueueConfig::default()).unwrap();
        let got = queue.try_fetch(100).unwrap();
        queue.ack_all(&got).unwrap();
    }
    fabric.partition(TOPIC, 0).unwrap().truncate(10).unwrap();
    let err = fabric
        .queue("q", TOPIC, QueueConfig::default())
        .unwrap_err();
    assert!(
        matches!(
            &err,
            eventfabric::Error::CursorBeyondLog { consumer, topic, partition: 0, cursor: 15, log_end: 10 }
                if consumer.contains("\"q\"") && topic == TOPIC
        ),
        "{err:?}"
    );
}

#[test]
fn a_durable_only_queue_hands_out_only_synced_records() {
    let (_dir, fabric) = setup(1);
    for i in 0..3 {
        publish(&fabric, "t", json!({ "i": i }));
    }
    fabric.flush().unwrap();
    for i in 3..7 {
        publish(&fabric, "t", json!({ "i": i }));
    }
    let mut config = QueueConfig::default();
    config.durable_only = true;
    let queue = fabric.queue("careful", TOPIC, config).unwrap();
    assert_eq!(queue.try_fetch(100).unwrap().len(), 3);
    assert!(
        queue
            .fetch(100, Duration::from_millis(30))
            .unwrap()
            .is_empty()
    );
    fabric.flush().unwrap();
    assert_eq!(queue.fetch(100, Duration::from_secs(5)).unwrap().len(), 4);
}
