//! kill -9 of a process consuming in a group, then the delivery-mode
//! guarantees after reopening: at-least-once resumes exactly at the last
//! commit that completed (redelivering the uncommitted tail), at-most-once
//! never hands out again what it handed out.
//!
//! The child is a test function of this binary that does nothing unless its
//! environment variable is set (as in tests/processes.rs).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use eventfabric::{CommitDurability, ConsumerConfig, DeliveryMode};
use eventfabric::{Draft, Fabric, FabricConfig, FsyncPolicy, TopicConfig};
use serde_json::json;

const TOPIC: &str = "crash.topic.v1";

fn produce(fabric: &Fabric, n: usize) {
    let mut producer = fabric.producer(TOPIC, "crash").unwrap();
    for i in 0..n {
        producer
            .send(Draft::new(
                "crash.thing.happened",
                Some("t"),
                json!({"i": i}),
            ))
            .unwrap();
    }
}

fn config(mode: DeliveryMode) -> ConsumerConfig {
    let mut c = ConsumerConfig::with_delivery(mode);
    c.max_poll_records = 7;
    c.auto_commit_interval = None;
    c.commit_durability = CommitDurability::Sync;
    c
}

/// Child: polls and commits forever, producing more when caught up.
#[test]
fn kill9_child_group_consumer() {
    let Ok(dir) = std::env::var("EF_GROUP_KILL9_DIR") else {
        return;
    };
    let mode = match std::env::var("EF_GROUP_KILL9_MODE").as_deref() {
        Ok("most") => DeliveryMode::AtMostOnce,
        _ => DeliveryMode::AtLeastOnce,
    };
    let fabric = Fabric::open(&dir, FabricConfig::with_fsync(FsyncPolicy::Os)).unwrap();
    let mut member = fabric.consumer("g", TOPIC, config(mode)).unwrap();
    for polls in 0u64.. {
        let batch = member.poll(Duration::ZERO).unwrap();
        let Some(last) = batch.last() else {
            produce(&fabric, 50);
            continue;
        };
        // At-most-once: committed before poll returned.
        println!("HANDED {}", last.offset + 1);
        // At-least-once: an explicit commit every third batch only, so the
        // uncommitted tail is usually more than one batch.
        if polls % 3 == 2 {
            println!("COMMITTING {}", last.offset + 1);
            member.commit().unwrap();
            println!("COMMIT {}", last.offset + 1);
        }
    }
}

fn crash_rounds(mode: &str, delivery: DeliveryMode) {
    let dir = tempfile::tempdir().unwrap();
    {
        let fabric = Fabric::open(dir.path(), FabricConfig::with_fsync(FsyncPolicy::Os)).unwrap();
        fabric
            .create_topic(TOPIC, TopicConfig::with_partitions(1))
            .unwrap();
        produce(&fabric, 100);
        fabric.close().unwrap();
    }
    for round in 0..6 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "kill9_child_group_consumer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("EF_GROUP_KILL9_DIR", dir.path())
            .env("EF_GROUP_KILL9_MODE", mode)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut handed, mut committing, mut committed) = (0u64, 0u64, 0u64);
        let mut note = |line: &str| {
            if let Some(v) = line.strip_prefix("HANDED ") {
                handed = v.parse().unwrap();
                return true;
            } else if let Some(v) = line.strip_prefix("COMMITTING ") {
                committing = v.parse().unwrap();
            } else if let Some(v) = line.strip_prefix("COMMIT ") {
                committed = v.parse().unwrap();
            }
            false
        };
        let stop_after = 20 + round * 13;
        let mut seen = 0;
        for line in lines.by_ref() {
            seen += usize::from(note(&line.unwrap()));
            if seen >= stop_after {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL, somewhere in a poll or a commit
        child.wait().unwrap();
        // What it printed before dying is still in the pipe: each line is
        // one write, so the last complete line is the last step it finished.
        for line in lines.map_while(Result::ok) {
            note(&line);
        }
        let fabric = Fabric::open(dir.path(), FabricConfig::with_fsync(FsyncPolicy::Os)).unwrap();
        let mut member = fabric.consumer("g", TOPIC, config(delivery)).unwrap();
        let restart = member.position(0).unwrap();
        match delivery {
            DeliveryMode::AtMostOnce => assert!(
                restart >= handed,
                "round {round}: at-most-once restarts at {restart}, but {handed} was handed out"
            ),
            _ => {
                // The last printed commit completed; one started after it
                // may have completed unprinted. Nothing handed out after
                // that is committed.
                assert!(
                    restart == committed || restart == committing,
                    "round {round}: restart {restart}, last commit {committed}, \
                     commit in flight {committing}, last handed {handed}"
                );
                let batch = member.poll(Duration::ZERO).unwrap();
                if let Some(first) = batch.first() {
                    assert_eq!(
                        first.offset, restart,
                        "round {round}: redelivery starts at the cursor"
                    );
                }
            }
        }
        drop(member);
        fabric.close().unwrap();
    }
}

#[test]
fn at_least_once_resumes_at_the_last_completed_commit_after_kill_9() {
    crash_rounds("least", DeliveryMode::AtLeastOnce);
}

#[test]
fn at_most_once_never_redelivers_after_kill_9() {
    crash_rounds("most", DeliveryMode::AtMostOnce);
}
