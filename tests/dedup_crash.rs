//! The dedup cache across a kill -9: a child process publishes with
//! `Always` durability and is killed at a random moment, several rounds in
//! a row; after each, every acknowledged `event_id` republished is a
//! duplicate at its original position and no id is ever stored twice.
//! (Its own test binary: see the note in `tests/dedup.rs`.)
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eventfabric::fixtures::{FixtureGenerator, FixtureKind};
use eventfabric::{Envelope, Fabric, FabricConfig, FsyncPolicy, TopicConfig};
use jiff::Timestamp;

const TOPIC: &str = "billing.dedup.v1";

fn os() -> FabricConfig {
    FabricConfig::with_fsync(FsyncPolicy::Os)
}

fn config(partitions: u32) -> TopicConfig {
    let mut c = TopicConfig::with_partitions(partitions);
    c.fsync = FsyncPolicy::Os;
    c
}

/// A valid envelope with the deterministic id `n`, emitted now.
fn fresh(n: u64) -> Envelope {
    let mut e = FixtureGenerator::new(n, 10).next(FixtureKind::all()[(n % 3) as usize]);
    e.event_id = Envelope::event_id_from_parts(1_780_000_000_000 + n, n as u16, n);
    let now = Timestamp::now();
    e.emitted_at = now;
    e.occurred_at = now;
    e.partition_key = format!("key-{n}");
    e
}

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

fn child(test: &str, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Child: publishes events 0, 1, 2, ... with `Always` durability, printing
/// each acknowledged number.
#[test]
fn kill9_child_publisher() {
    let Ok(dir) = std::env::var("EF_DEDUP_KILL9_DIR") else {
        return;
    };
    let fabric = Fabric::open(&dir, FabricConfig::with_fsync(FsyncPolicy::Always)).unwrap();
    if !fabric.topics().contains(&TOPIC.to_string()) {
        fabric.create_topic(TOPIC, config(3)).unwrap();
    }
    let start: u64 = std::env::var("EF_DEDUP_START").unwrap().parse().unwrap();
    let mut producer = fabric.producer(TOPIC, "child").unwrap();
    for n in start.. {
        // Every event twice: the second must be a duplicate in the child too.
        producer.publish(&fresh(n)).unwrap();
        assert!(producer.publish(&fresh(n)).unwrap().is_duplicate());
        println!("ACK {n}");
    }
}

#[test]
fn the_cache_survives_kill_9_and_every_id_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut attempted = 0u64;
    for round in 0..4u64 {
        let mut proc = child(
            "kill9_child_publisher",
            &[
                ("EF_DEDUP_KILL9_DIR", dir.path().display().to_string()),
                // Each round restarts a little before where the last one
                // was acknowledged, so it republishes ids already stored.
                ("EF_DEDUP_START", attempted.saturating_sub(5).to_string()),
            ],
        )
        .spawn()
        .unwrap();
        let stdout = proc.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut acked = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(Ok(line)) = lines.next() {
            if let Some(n) = line
                .strip_prefix("ACK ")
                .and_then(|n| n.parse::<u64>().ok())
            {
                acked = Some(n);
                if n >= attempted + 20 + round * 7 || Instant::now() > deadline {
                    break;
                }
            }
        }
        proc.kill().unwrap();
        let status = proc.wait().unwrap();
        assert!(!status.success(), "the child ended on its own: {status}");
        let acked = acked.expect("child acknowledged nothing");
        attempted = acked + 2; // it may have appended up to one more

        // After the crash: every acknowledged id is a duplicate, in place.
        let fabric = Fabric::open(dir.path(), os()).unwrap();
        let stored = stored_ids(&fabric);
        let mut producer = fabric.producer(TOPIC, "parent").unwrap();
        for n in 0..=acked {
            let p = producer.publish(&fresh(n)).unwrap();
            assert!(
                p.is_duplicate(),
                "round {round}: acknowledged event {n} appended again"
            );
        }
        assert_eq!(stored_ids(&fabric), stored, "a duplicate was appended");
        let distinct: HashSet<_> = stored.iter().map(|s| s.2).collect();
        assert_eq!(distinct.len(), stored.len(), "an id is stored twice");
        drop(producer);
        fabric.close().unwrap();
    }
}
