//! Writes seed inputs for the `state_decode` target, made with the library
//! itself: `cargo run --example make_state_seeds -- <out dir>` (default
//! `seeds`) creates `<out>/state_decode/`: a group's cursor log and a queue's
//! state log (mode byte 0), a dead-letter record (mode 2) and envelope
//! records with and without a ttl (mode 3).

use std::fs;
use std::path::Path;
use std::time::Duration;

use eventfabric::fixtures::{FixtureGenerator, FixtureKind};
use eventfabric::{
    ConsumerConfig, DlqReason, Fabric, FabricConfig, Failure, FsyncPolicy, QueueConfig, ReadLimit,
    TopicConfig, Ttl,
};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const TOPIC: &str = "seed.state.v1";

fn seed(dir: &Path, name: &str, mode: u8, bytes: &[u8]) -> Result<()> {
    let mut out = vec![mode];
    out.extend_from_slice(bytes);
    fs::write(dir.join(name), out)?;
    Ok(())
}

fn main() -> Result<()> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "seeds".into());
    let dir = Path::new(&out).join("state_decode");
    fs::create_dir_all(&dir)?;
    let work = tempfile::tempdir()?;
    let fabric = Fabric::open(work.path(), FabricConfig::with_fsync(FsyncPolicy::Os))?;
    let mut config = TopicConfig::with_partitions(2);
    config.fsync = FsyncPolicy::Os;
    fabric.create_topic(TOPIC, config)?;
    let mut producer = fabric.producer(TOPIC, "seeds")?;
    let mut generator = FixtureGenerator::new(3, 4);
    for i in 0..20u64 {
        let mut e = generator.next(FixtureKind::WorkflowInstanceCompleted);
        e.ttl = if i % 2 == 0 {
            None
        } else {
            Ttl::from_millis(3_600_000 + i)
        };
        e.emitted_at = jiff::Timestamp::now();
        producer.publish(&e)?;
    }
    // A record of each shape for the peeks.
    let log = fabric.partition(TOPIC, 0)?;
    for (i, record) in log.read(0, ReadLimit::records(2))?.iter().enumerate() {
        seed(&dir, &format!("record-{i}"), 3, &record.value)?;
    }
    // A cursor log with commits and processed ids.
    let mut consumer = fabric.consumer("seeds", TOPIC, ConsumerConfig::default())?;
    let batch = consumer.poll(Duration::from_millis(50))?;
    consumer.commit()?;
    if let Some(first) = batch.first() {
        consumer.record_processed(first, 3)?;
        consumer.commit()?;
    }
    consumer.close()?;
    // A queue state log with acks, a retry and a dead letter.
    let queue = fabric.queue("seeds", TOPIC, QueueConfig::default())?;
    let messages = queue.fetch(20, Duration::from_millis(50))?;
    if let [first, second, rest @ ..] = &messages[..] {
        queue.nack(first, Failure::fatal(DlqReason::HandlerError, "seed"))?;
        queue.nack(second, Failure::retry("again"))?;
        queue.ack_all(rest)?;
    }
    queue.flush()?;
    drop(queue);
    let dlq = fabric.partition(&format!("{TOPIC}.dlq"), 0)?;
    for (i, record) in dlq.read(0, ReadLimit::records(1))?.iter().enumerate() {
        seed(&dir, &format!("dead-letter-{i}"), 2, &record.value)?;
    }
    fabric.close()?;
    for entry in walk(work.path())? {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".cursors") || name == "state" {
            seed(&dir, &format!("statelog-{name}"), 0, &fs::read(&entry)?)?;
        }
    }
    println!("seeds written to {}", dir.display());
    Ok(())
}

fn walk(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}
