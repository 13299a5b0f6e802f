//! Kill -9 of a process acking queue messages in a loop: after every
//! restart, each message whose ack returned stays acked, every other
//! message is redelivered, and attempt counts keep growing.
//!
//! The child side is a test function of this same binary that does nothing
//! unless its environment variable is set (the pattern of tests/processes.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use eventfabric::{
    Backoff, Draft, Fabric, FabricConfig, FsyncPolicy, QueueConfig, RetryPolicy, TopicConfig,
};
use serde_json::json;

const TOPIC: &str = "billing.domain.v1";
const EVENTS: u64 = 2_000;

fn config() -> QueueConfig {
    let mut c = QueueConfig::default();
    // Nothing times out or is dead-lettered within the test.
    c.visibility_timeout = Duration::from_secs(3_600);
    c.max_ack_pending = 10_000;
    c.retry = RetryPolicy {
        max_attempts: 1_000,
        backoff: Backoff::List(vec![Duration::ZERO]),
    };
    // Small, so that kills also land during compactions.
    c.compact_after_bytes = 4 << 10;
    c
}

/// Child: fetches and acks forever, leaving every fifth message unacked.
#[test]
fn queue_kill9_child() {
    let Ok(dir) = std::env::var("EF_QUEUE_KILL9_DIR") else {
        return;
    };
    let fabric = Fabric::open(&dir, FabricConfig::default()).expect("child open");
    let queue = fabric.queue("crash", TOPIC, config()).expect("child queue");
    loop {
        let got = queue.fetch(7, Duration::from_millis(50)).expect("fetch");
        for m in got.iter().rev() {
            println!("DELIVERED {} {} {}", m.partition, m.offset, m.attempt);
        }
        for m in got.iter().rev() {
            if m.offset % 5 == 4 {
                continue;
            }
            println!("ACKING {} {}", m.partition, m.offset);
            queue.ack(m).expect("ack");
            println!("ACK {} {}", m.partition, m.offset);
        }
        // Paced, so that ten kills land at different points of the run
        // instead of after it.
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// What the parent learnt from the children's output.
#[derive(Default)]
struct Seen {
    /// Messages whose ack returned.
    acked: BTreeSet<(u32, u64)>,
    /// Messages whose ack started but was not seen to return.
    in_doubt: BTreeSet<(u32, u64)>,
    /// The highest attempt seen per message.
    attempts: BTreeMap<(u32, u64), u32>,
}

impl Seen {
    /// Checks and records one line; true for a completed ack.
    fn handle(&mut self, line: &str, round: u64) -> bool {
        let words: Vec<&str> = line.split(' ').collect();
        match words[0] {
            "DELIVERED" if words.len() == 4 => {
                let k = key(&words);
                let attempt: u32 = words[3].parse().unwrap();
                assert!(
                    !self.acked.contains(&k),
                    "round {round}: acked {k:?} was redelivered"
                );
                let before = self.attempts.insert(k, attempt).unwrap_or(0);
                assert!(
                    attempt > before,
                    "round {round}: attempts of {k:?} reset: {before} then {attempt}"
                );
                self.in_doubt.remove(&k);
                false
            }
            "ACKING" if words.len() == 3 => {
                self.in_doubt.insert(key(&words));
                false
            }
            "ACK" if words.len() == 3 => {
                let k = key(&words);
                self.in_doubt.remove(&k);
                self.acked.insert(k);
                true
            }
            _ => false,
        }
    }
}

/// The child process, killed when the parent's assertions fail too (it
/// loops forever otherwise).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn key(words: &[&str]) -> (u32, u64) {
    (words[1].parse().unwrap(), words[2].parse().unwrap())
}

#[test]
fn acked_messages_stay_acked_and_the_rest_is_redelivered_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = BTreeSet::new();
    {
        let fabric = Fabric::open(dir.path(), FabricConfig::with_fsync(FsyncPolicy::Os)).unwrap();
        fabric
            .create_topic(TOPIC, TopicConfig::with_partitions(3))
            .unwrap();
        let mut p = fabric.producer(TOPIC, "crash").unwrap();
        for i in 0..EVENTS {
            let tenant = format!("t{}", i % 11);
            let (_, at) = p
                .send(Draft::new(
                    "billing.invoice.issued",
                    Some(&tenant),
                    json!({"i": i}),
                ))
                .unwrap();
            all.insert((at.partition, at.offset));
        }
        drop(p);
        fabric.close().unwrap();
    }
    let mut seen = Seen::default();
    for round in 0..10u64 {
        let mut child = KillOnDrop(
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "queue_kill9_child",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("EF_QUEUE_KILL9_DIR", dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let stdout = child.0.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let kill_after = 5 + round * 7;
        let ackable = all.iter().filter(|(_, o)| o % 5 != 4).count();
        let acked_before = seen.acked.len();
        let mut acks = 0;
        while acks < kill_after && seen.acked.len() < ackable {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the child made no progress for 30 s");
            acks += u64::from(seen.handle(&line, round));
        }
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        reader.join().unwrap();
        // What the child printed before it died.
        for line in rx.try_iter() {
            seen.handle(&line, round);
        }
        assert!(
            seen.acked.len() > acked_before,
            "round {round}: the child acked nothing before the kill"
        );
    }
    let Seen {
        acked,
        in_doubt,
        attempts,
    } = seen;
    assert!(
        acked.len() > 50,
        "the child made progress: {} acks",
        acked.len()
    );

    // Reopen: drain what is left.
    let fabric = Fabric::open(dir.path(), FabricConfig::default()).unwrap();
    let queue = fabric.queue("crash", TOPIC, config()).unwrap();
    let mut redelivered = BTreeSet::new();
    loop {
        let got = queue.try_fetch(100).unwrap();
        if got.is_empty() {
            break;
        }
        for m in &got {
            let k = (m.partition, m.offset);
            assert!(
                !acked.contains(&k),
                "acked {k:?} was redelivered after the last kill"
            );
            assert!(
                m.attempt > attempts.get(&k).copied().unwrap_or(0),
                "attempts of {k:?} reset"
            );
            assert!(redelivered.insert(k), "{k:?} delivered twice in one drain");
        }
        queue.ack_all(&got).unwrap();
    }
    for k in &all {
        assert!(
            acked.contains(k) || redelivered.contains(k) || in_doubt.contains(k),
            "{k:?} was neither acked nor redelivered: lost"
        );
    }
    assert!(
        in_doubt.len() <= 10,
        "at most one ack in doubt per kill: {in_doubt:?}"
    );
    assert!(!redelivered.is_empty());
    eprintln!(
        "{} messages: {} acked before the kills, {} in doubt, {} redelivered after the last kill",
        all.len(),
        acked.len(),
        in_doubt.len(),
        redelivered.len()
    );
}
