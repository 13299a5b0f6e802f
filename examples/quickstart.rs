//! The README's main job: open a partition log, append, read back, reopen.
use std::time::Instant;

use eventfabric::{Log, LogConfig, ReadLimit};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("billing.domain.v1-0");
    let mut config = LogConfig::default();
    config.segment_bytes = 1 << 20;

    let log = Log::open(&path, config.clone())?;
    let started = Instant::now();
    let values: Vec<String> = (0..100_000)
        .map(|i| format!("{{\"event_type\":\"billing.invoice.issued\",\"n\":{i}}}"))
        .collect();
    for chunk in values.chunks(100) {
        log.append_batch(chunk)?;
    }
    log.flush()?;
    println!(
        "appended {} records in {:?} into {} segments under {}",
        log.next_offset(),
        started.elapsed(),
        log.segments().len(),
        path.display()
    );
    let first = log.read(0, ReadLimit::records(2))?;
    for r in &first {
        println!(
            "offset {} @ {}µs: {}",
            r.offset,
            r.timestamp,
            String::from_utf8_lossy(&r.value)
        );
    }
    log.close()?;

    let started = Instant::now();
    let log = Log::open(&path, config)?;
    println!(
        "reopened in {:?}; next offset {}",
        started.elapsed(),
        log.next_offset()
    );
    let mut count = 0u64;
    for batch in log.batches(0)? {
        count += batch?.records().count() as u64;
    }
    println!("read back {count} records, every batch checksum verified");
    let mid = log.read(54_321, ReadLimit::records(1))?;
    println!("offset 54321: {}", String::from_utf8_lossy(&mid[0].value));
    Ok(())
}
