//! Model-based test of a consumer group: random joins, leaves, closes,
//! session expiries (a manual clock), polls, commits, produces and crashes
//! (every handle dropped without a commit, the fabric reopened), checked
//! against an in-memory model of the committed cursors.
//!
//! Properties: an event is only handed out by the partition's owner at that
//! moment; per partition a member hands out consecutive offsets, continuing
//! its own position or restarting exactly at the committed cursor (so after
//! a crash at-least-once redelivers exactly the uncommitted tail); a commit
//! stores either the old cursor or the member's own position; at-most-once
//! never hands out an event twice; at-least-once loses nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use eventfabric::{CommitDurability, ConsumerConfig, DeliveryMode, ManualClock};
use eventfabric::{Consumer, Draft, Fabric, FabricConfig, FsyncPolicy, TopicConfig};
use proptest::prelude::*;
use serde_json::json;

const TOPIC: &str = "model.topic.v1";
const PARTITIONS: u32 = 3;
const SESSION: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
enum Op {
    Produce(u8),
    Join,
    Leave(usize),
    Close(usize),
    Poll(usize),
    Commit(usize),
    Advance(u8),
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u8..8).prop_map(Op::Produce),
        2 => Just(Op::Join),
        1 => (0usize..4).prop_map(Op::Leave),
        1 => (0usize..4).prop_map(Op::Close),
        5 => (0usize..4).prop_map(Op::Poll),
        3 => (0usize..4).prop_map(Op::Commit),
        1 => (1u8..8).prop_map(Op::Advance),
        1 => Just(Op::Crash),
    ]
}

struct Member {
    consumer: Consumer,
    /// Model: next offset this member hands out, per partition it holds.
    pos: BTreeMap<u32, u64>,
}

struct Run {
    dir: tempfile::TempDir,
    fabric: Option<Fabric>,
    clock: Arc<ManualClock>,
    mode: DeliveryMode,
    members: Vec<Member>,
    /// Model: committed cursor per partition (0 = never committed, earliest).
    committed: BTreeMap<u32, u64>,
    /// Model: event ids per partition, by offset.
    log: BTreeMap<u32, Vec<uuid::Uuid>>,
    delivered: BTreeSet<(u32, u64)>,
    produced: usize,
}

impl Run {
    fn fabric(&self) -> &Fabric {
        self.fabric.as_ref().unwrap()
    }

    fn config(&self) -> ConsumerConfig {
        let mut c = ConsumerConfig::with_delivery(self.mode);
        c.clock = self.clock.clone();
        c.session_timeout = SESSION;
        c.auto_commit_interval = None;
        c.commit_durability = CommitDurability::Os;
        c.max_poll_records = 4;
        c
    }

    /// Drops model positions of partitions the member no longer holds.
    fn forget_lost(&mut self, i: usize) {
        let m = &mut self.members[i];
        let held: BTreeSet<u32> = m.consumer.assignment().iter().copied().collect();
        m.pos.retain(|p, _| held.contains(p));
    }

    fn check_committed(&mut self, i: usize) -> Result<(), TestCaseError> {
        let status = self.members[i].consumer.status();
        for p in &status.partitions {
            let stored = p.committed.unwrap_or(0);
            let model = self.committed[&p.partition];
            let own = self.members[i].pos.get(&p.partition).copied();
            prop_assert!(
                stored == model || Some(stored) == own,
                "partition {}: committed {stored}, model {model}, member position {own:?}",
                p.partition
            );
            self.committed.insert(p.partition, stored);
        }
        Ok(())
    }

    fn poll(&mut self, i: usize) -> Result<usize, TestCaseError> {
        let batch = self.members[i].consumer.poll(Duration::ZERO).unwrap();
        let status = self.members[i].consumer.status();
        let me = self.members[i].consumer.member_id();
        self.forget_lost(i);
        for e in &batch {
            prop_assert_eq!(status.partitions[e.partition as usize].member, Some(me));
            let cont = self.members[i].pos.get(&e.partition).copied();
            let restart = self.committed[&e.partition];
            prop_assert!(
                Some(e.offset) == cont || e.offset == restart,
                "partition {} offset {}: expected {:?} or the cursor {}",
                e.partition,
                e.offset,
                cont,
                restart
            );
            prop_assert_eq!(
                e.envelope().unwrap().event_id,
                self.log[&e.partition][e.offset as usize]
            );
            let fresh = self.delivered.insert((e.partition, e.offset));
            if self.mode == DeliveryMode::AtMostOnce {
                prop_assert!(
                    fresh,
                    "at-most-once redelivered {}/{}",
                    e.partition,
                    e.offset
                );
            }
            self.members[i].pos.insert(e.partition, e.offset + 1);
        }
        if self.mode == DeliveryMode::AtMostOnce {
            for e in &batch {
                self.committed.insert(e.partition, e.offset + 1);
            }
            self.check_committed(i)?;
        }
        Ok(batch.len())
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        let n = self.members.len();
        match op {
            Op::Produce(count) => {
                let mut producer = self.fabric().producer(TOPIC, "model").unwrap();
                for _ in 0..count {
                    let key = format!("k{}", self.produced);
                    self.produced += 1;
                    let draft = Draft::new("model.thing.happened", Some("t"), json!({}))
                        .partition_key(&key);
                    let (event, at) = producer.send(draft).unwrap();
                    let log = self.log.entry(at.partition).or_default();
                    prop_assert_eq!(log.len() as u64, at.offset);
                    log.push(event.event_id);
                }
            }
            Op::Join if n < 4 => {
                let consumer = self.fabric().consumer("g", TOPIC, self.config()).unwrap();
                self.members.push(Member {
                    consumer,
                    pos: BTreeMap::new(),
                });
            }
            Op::Leave(i) if i < n => drop(self.members.remove(i)),
            Op::Close(i) if i < n => {
                self.members[i].consumer.commit().unwrap();
                self.forget_lost(i);
                self.check_committed(i)?;
                let m = self.members.remove(i);
                m.consumer.close().unwrap();
            }
            Op::Poll(i) if i < n => {
                self.poll(i)?;
            }
            Op::Commit(i) if i < n => {
                self.members[i].consumer.commit().unwrap();
                self.forget_lost(i);
                self.check_committed(i)?;
            }
            Op::Advance(secs) => self.clock.advance(Duration::from_secs(u64::from(secs))),
            Op::Crash => {
                self.members.clear();
                drop(self.fabric.take());
                self.fabric = Some(
                    Fabric::open(self.dir.path(), FabricConfig::with_fsync(FsyncPolicy::Os))
                        .unwrap(),
                );
            }
            _ => {}
        }
        Ok(())
    }
}

fn run(mode: DeliveryMode, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let fabric = Fabric::open(dir.path(), FabricConfig::with_fsync(FsyncPolicy::Os)).unwrap();
    fabric
        .create_topic(TOPIC, TopicConfig::with_partitions(PARTITIONS))
        .unwrap();
    let mut run = Run {
        dir,
        fabric: Some(fabric),
        clock: Arc::new(ManualClock::default()),
        mode,
        members: Vec::new(),
        committed: (0..PARTITIONS).map(|p| (p, 0)).collect(),
        log: (0..PARTITIONS).map(|p| (p, Vec::new())).collect(),
        delivered: BTreeSet::new(),
        produced: 0,
    };
    for op in ops {
        run.apply(op)?;
    }
    // A last member drains the group: every event was handed out at least
    // once (at-least-once), and at-most-once never repeated one.
    run.members.clear();
    run.members.push(Member {
        consumer: run.fabric().consumer("g", TOPIC, run.config()).unwrap(),
        pos: BTreeMap::new(),
    });
    while run.poll(0)? > 0 {}
    if mode != DeliveryMode::AtMostOnce {
        let all: usize = run.log.values().map(Vec::len).sum();
        prop_assert_eq!(run.delivered.len(), all, "events were never delivered");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn at_least_once_group_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(DeliveryMode::AtLeastOnce, ops)?;
    }

    #[test]
    fn effectively_once_group_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(DeliveryMode::EffectivelyOnce, ops)?;
    }

    #[test]
    fn at_most_once_group_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(DeliveryMode::AtMostOnce, ops)?;
    }
}
