//! Model-based test of a queue: random fetches by several consumers, acks
//! in any order, nacks with and without delay, clock jumps past visibility
//! timeouts and retry times, publishes and restarts (drop + reopen of the
//! queue and the fabric), against an in-memory model driven by the same
//! manual clock — nothing sleeps.
//!
//! Checked after every step: a message handed out is never acked or
//! dead-lettered, never in flight with another consumer, never early (before
//! its retry time), and carries the attempt number the model counted across
//! restarts; the number in flight never exceeds the cap; nack outcomes match.
//! At the end a drain must leave every message acked or in the DLQ (once).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use eventfabric::{
    Backoff, Draft, Fabric, FabricConfig, Failure, FsyncPolicy, ManualClock, NackOutcome, Queue,
    QueueConfig, QueueMessage, RetryPolicy, TopicConfig,
};
use proptest::prelude::*;
use serde_json::json;

const TOPIC: &str = "billing.domain.v1";
const VISIBILITY_MS: u64 = 1_000;
const CAP: usize = 4;
const MAX_ATTEMPTS: u32 = 3;
const BACKOFF_MS: [u64; 2] = [500, 1_500];
const START: i64 = 1_900_000_000_000_000;

#[derive(Debug, Clone)]
enum Op {
    Publish(u8),
    Fetch {
        consumer: usize,
        max: usize,
    },
    Ack {
        consumer: usize,
        pick: usize,
    },
    Nack {
        consumer: usize,
        pick: usize,
        delay_ms: Option<u64>,
    },
    Advance(u64),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (1u8..4).prop_map(Op::Publish),
        6 => (0usize..3, 1usize..4).prop_map(|(consumer, max)| Op::Fetch { consumer, max }),
        4 => (0usize..3, any::<usize>()).prop_map(|(consumer, pick)| Op::Ack { consumer, pick }),
        2 => (0usize..3, any::<usize>(), proptest::option::of(0u64..2_000))
            .prop_map(|(consumer, pick, delay_ms)| Op::Nack { consumer, pick, delay_ms }),
        3 => (0u64..2_500).prop_map(Op::Advance),
        1 => Just(Op::Restart),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum S {
    /// Deliverable once the clock reaches `not_before`.
    Available {
        not_before: i64,
    },
    InFlight {
        deadline: i64,
        attempt: u32,
    },
    Acked,
    Dead,
}

#[derive(Debug, Clone, Copy)]
struct Msg {
    attempts: u32,
    state: S,
}

struct World {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    clock: Arc<ManualClock>,
    fabric: Option<Fabric>,
    queue: Option<Queue>,
    model: BTreeMap<(u32, u64), Msg>,
    held: [Vec<QueueMessage>; 3],
    published: u64,
}

fn config(clock: &Arc<ManualClock>) -> QueueConfig {
    let mut c = QueueConfig::default();
    c.visibility_timeout = Duration::from_millis(VISIBILITY_MS);
    c.max_ack_pending = CAP;
    c.retry = RetryPolicy {
        max_attempts: MAX_ATTEMPTS,
        backoff: Backoff::List(
            BACKOFF_MS
                .iter()
                .map(|&ms| Duration::from_millis(ms))
                .collect(),
        ),
    };
    // Tiny, so that runs compact the state log many times.
    c.compact_after_bytes = 600;
    c.clock = clock.clone();
    c
}

fn backoff_after(attempts: u32) -> i64 {
    let i = (attempts.max(1) as usize - 1).min(BACKOFF_MS.len() - 1);
    BACKOFF_MS[i] as i64 * 1000
}

fn fail<T: std::fmt::Display>(e: T) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let fabric = Fabric::open(&path, FabricConfig::with_fsync(FsyncPolicy::Os)).unwrap();
        fabric
            .create_topic(TOPIC, TopicConfig::with_partitions(2))
            .unwrap();
        let clock = Arc::new(ManualClock::new(START));
        let queue = fabric.queue("invoicing", TOPIC, config(&clock)).unwrap();
        World {
            _dir: dir,
            path,
            clock,
            fabric: Some(fabric),
            queue: Some(queue),
            model: BTreeMap::new(),
            held: Default::default(),
            published: 0,
        }
    }

    fn now(&self) -> i64 {
        use eventfabric::Clock;
        self.clock.wall_micros()
    }

    fn queue(&self) -> &Queue {
        self.queue.as_ref().unwrap()
    }

    /// A failed attempt, as the queue applies it.
    fn failed(&mut self, key: (u32, u64), delay: Option<i64>) -> S {
        let now = self.now();
        let m = self.model.get_mut(&key).unwrap();
        m.state = if m.attempts >= MAX_ATTEMPTS {
            S::Dead
        } else {
            S::Available {
                not_before: now + delay.unwrap_or_else(|| backoff_after(m.attempts)),
            }
        };
        m.state
    }

    fn publish(&mut self, n: u8) -> Result<(), TestCaseError> {
        let fabric = self.fabric.as_ref().unwrap();
        let mut producer = fabric.producer(TOPIC, "model").map_err(fail)?;
        for _ in 0..n {
            let i = self.published;
            self.published += 1;
            let tenant = format!("tenant-{}", i % 5);
            let draft = Draft::new("billing.invoice.issued", Some(&tenant), json!({ "n": i }));
            let (_, at) = producer.send(draft).map_err(fail)?;
            let fresh = self.model.insert(
                (at.partition, at.offset),
                Msg {
                    attempts: 0,
                    state: S::Available { not_before: 0 },
                },
            );
            prop_assert!(fresh.is_none());
        }
        Ok(())
    }

    fn fetch(&mut self, consumer: usize, max: usize) -> Result<usize, TestCaseError> {
        let now = self.now();
        // A visibility timeout: the delivery counted as an attempt; visible
        // again from its deadline on (no backoff), or dead after the last.
        for m in self.model.values_mut() {
            if let S::InFlight { deadline, .. } = m.state
                && deadline <= now
            {
                m.state = if m.attempts >= MAX_ATTEMPTS {
                    S::Dead
                } else {
                    S::Available {
                        not_before: deadline,
                    }
                };
            }
        }
        let got = self.queue().try_fetch(max).map_err(fail)?;
        prop_assert!(got.len() <= max);
        for m in &got {
            let key = (m.partition, m.offset);
            let msg = self
                .model
                .get_mut(&key)
                .ok_or_else(|| fail("unknown message"))?;
            match msg.state {
                S::Available { not_before } => prop_assert!(
                    not_before <= now,
                    "{key:?} handed out {} µs before its retry time",
                    not_before - now
                ),
                other => prop_assert!(false, "{key:?} handed out while {other:?}"),
            }
            prop_assert_eq!(m.attempt, msg.attempts + 1, "attempt of {:?}", key);
            msg.attempts += 1;
            msg.state = S::InFlight {
                deadline: now + VISIBILITY_MS as i64 * 1000,
                attempt: m.attempt,
            };
        }
        let in_flight = self
            .model
            .values()
            .filter(|m| matches!(m.state, S::InFlight { .. }))
            .count();
        prop_assert!(in_flight <= CAP, "{in_flight} in flight, cap {CAP}");
        let n = got.len();
        self.held[consumer].extend(got);
        Ok(n)
    }

    fn take_held(&mut self, consumer: usize, pick: usize) -> Option<QueueMessage> {
        let held = &mut self.held[consumer];
        (!held.is_empty()).then(|| held.swap_remove(pick % held.len()))
    }

    fn ack(&mut self, consumer: usize, pick: usize) -> Result<(), TestCaseError> {
        let Some(m) = self.take_held(consumer, pick) else {
            return Ok(());
        };
        self.queue().ack(&m).map_err(fail)?;
        let msg = self.model.get_mut(&(m.partition, m.offset)).unwrap();
        if msg.state != S::Dead {
            msg.state = S::Acked;
        }
        Ok(())
    }

    fn nack(
        &mut self,
        consumer: usize,
        pick: usize,
        delay_ms: Option<u64>,
    ) -> Result<(), TestCaseError> {
        let Some(m) = self.take_held(consumer, pick) else {
            return Ok(());
        };
        let key = (m.partition, m.offset);
        let failure = match delay_ms {
            Some(ms) => Failure::retry_after("handler failed", Duration::from_millis(ms)),
            None => Failure::retry("handler failed"),
        };
        let outcome = self.queue().nack(&m, failure).map_err(fail)?;
        let current =
            matches!(self.model[&key].state, S::InFlight { attempt, .. } if attempt == m.attempt);
        if !current {
            prop_assert_eq!(outcome, NackOutcome::Stale);
            return Ok(());
        }
        let attempts = self.model[&key].attempts;
        match self.failed(key, delay_ms.map(|ms| ms as i64 * 1000)) {
            S::Dead => prop_assert!(
                matches!(outcome, NackOutcome::DeadLettered { .. }),
                "{outcome:?}"
            ),
            S::Available { not_before } => prop_assert_eq!(
                outcome,
                NackOutcome::Retry {
                    next_attempt: attempts + 1,
                    at: not_before
                }
            ),
            other => prop_assert!(false, "model state {other:?} after a failure"),
        }
        Ok(())
    }

    fn restart(&mut self) -> Result<(), TestCaseError> {
        drop(self.queue.take());
        self.fabric.take().unwrap().close().map_err(fail)?;
        let fabric =
            Fabric::open(&self.path, FabricConfig::with_fsync(FsyncPolicy::Os)).map_err(fail)?;
        self.queue = Some(
            fabric
                .queue("invoicing", TOPIC, config(&self.clock))
                .map_err(fail)?,
        );
        self.fabric = Some(fabric);
        // The consumers died with the process; what they held is redelivered
        // at once, or dead-lettered when it was on its last attempt.
        self.held = Default::default();
        for m in self.model.values_mut() {
            if let S::InFlight { .. } = m.state {
                m.state = if m.attempts >= MAX_ATTEMPTS {
                    S::Dead
                } else {
                    S::Available { not_before: 0 }
                };
            }
        }
        Ok(())
    }

    /// Advances far past every timer and consumes everything.
    fn drain(&mut self) -> Result<(), TestCaseError> {
        self.held = Default::default();
        let mut empty_rounds = 0;
        while empty_rounds < 2 {
            self.clock.advance(Duration::from_secs(3_600));
            let n = self.fetch(0, 100)?;
            let held = std::mem::take(&mut self.held[0]);
            self.queue().ack_all(&held).map_err(fail)?;
            for m in &held {
                self.model.get_mut(&(m.partition, m.offset)).unwrap().state = S::Acked;
            }
            empty_rounds = if n == 0 { empty_rounds + 1 } else { 0 };
        }
        for (key, m) in &self.model {
            prop_assert!(
                matches!(m.state, S::Acked | S::Dead),
                "{key:?} was lost: {m:?}"
            );
        }
        let dead: BTreeSet<(u32, u64)> = self
            .model
            .iter()
            .filter(|(_, m)| m.state == S::Dead)
            .map(|(k, _)| *k)
            .collect();
        let fabric = self.fabric.as_ref().unwrap();
        let letters = match fabric.dead_letters(TOPIC) {
            Ok(d) => d.list(&Default::default()).map_err(fail)?,
            Err(_) => Vec::new(),
        };
        let got: Vec<(u32, u64)> = letters
            .iter()
            .map(|e| (e.letter.partition, e.letter.offset))
            .collect();
        let got_set: BTreeSet<_> = got.iter().copied().collect();
        prop_assert_eq!(
            got.len(),
            got_set.len(),
            "a message was dead-lettered twice"
        );
        prop_assert_eq!(got_set, dead);
        for e in &letters {
            let m = self.model[&(e.letter.partition, e.letter.offset)];
            prop_assert_eq!(e.letter.attempts, m.attempts);
            prop_assert!(e.hash_matches());
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn a_queue_behaves_like_its_model(ops in proptest::collection::vec(op(), 1..70)) {
        let mut w = World::new();
        w.publish(3)?;
        for op in ops {
            match op {
                Op::Publish(n) => w.publish(n)?,
                Op::Fetch { consumer, max } => { w.fetch(consumer, max)?; }
                Op::Ack { consumer, pick } => w.ack(consumer, pick)?,
                Op::Nack { consumer, pick, delay_ms } => w.nack(consumer, pick, delay_ms)?,
                Op::Advance(ms) => w.clock.advance(Duration::from_millis(ms)),
                Op::Restart => w.restart()?,
            }
        }
        w.drain()?;
    }
}
