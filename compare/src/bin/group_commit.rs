//! Group commit under `Durability::Always`: one appender against eight, with
//! latency percentiles, next to this machine's own `fdatasync` latency, in one
//! run. `cargo run --release -p eventfabric-compare --bin group_commit [-- SECONDS]`.
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventfabric::{Durability, Log, LogConfig};

fn percentiles(mut lat: Vec<Duration>) -> (f64, f64) {
    lat.sort();
    let at = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3;
    (at(0.50), at(0.99))
}

/// This machine's limit: 4 KiB pwrite + fdatasync on a plain file.
fn raw_fdatasync(dir: &std::path::Path, secs: f64) -> (f64, f64, f64) {
    let path = dir.join("raw");
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .expect("open");
    let buf = vec![7u8; 4096];
    let mut lat = Vec::new();
    let start = Instant::now();
    let mut pos = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        let t = Instant::now();
        f.write_all_at(&buf, pos).expect("write");
        f.sync_data().expect("sync");
        lat.push(t.elapsed());
        pos += 4096;
    }
    let rate = lat.len() as f64 / start.elapsed().as_secs_f64();
    let (p50, p99) = percentiles(lat);
    (rate, p50, p99)
}

/// `threads` appenders of single 100-byte records for `secs` seconds.
fn appenders(dir: &std::path::Path, threads: usize, batch: usize, secs: f64) -> (f64, f64, f64) {
    let mut c = LogConfig::default();
    c.durability = Durability::Always;
    let _ = std::fs::remove_dir_all(dir);
    let log = Arc::new(Log::open(dir, c).expect("open"));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || {
                let values: Vec<Vec<u8>> = (0..batch).map(|i| vec![i as u8; 100]).collect();
                let mut lat = Vec::new();
                while start.elapsed().as_secs_f64() < secs {
                    let t = Instant::now();
                    log.append_batch(&values).expect("append");
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let lat: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("appender"))
        .collect();
    let rate = (lat.len() * batch) as f64 / start.elapsed().as_secs_f64();
    let (p50, p99) = percentiles(lat);
    (rate, p50, p99)
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(4.0);
    let root = std::env::current_dir()
        .expect("cwd")
        .join("target/group-commit-data");
    std::fs::create_dir_all(&root).expect("data dir");
    // Warm up the disk path once.
    raw_fdatasync(&root, 0.5);
    let raw = raw_fdatasync(&root, secs);
    let one_batch = appenders(&root.join("one-batch"), 1, 100, secs);
    let one = appenders(&root.join("one"), 1, 1, secs);
    let eight = appenders(&root.join("eight"), 8, 1, secs);
    let raw_after = raw_fdatasync(&root, secs);
    println!("| measurement | rate | p50 | p99 |");
    println!("|---|---:|---:|---:|");
    println!(
        "| machine: 4 KiB pwrite + fdatasync (before) | {:.0} syncs/s | {:.3} ms | {:.3} ms |",
        raw.0, raw.1, raw.2
    );
    println!(
        "| Always, 1 appender, batches of 100 × 100 B | {:.0} rec/s | {:.3} ms | {:.3} ms |",
        one_batch.0, one_batch.1, one_batch.2
    );
    println!(
        "| Always, 1 appender, single records | {:.0} rec/s | {:.3} ms | {:.3} ms |",
        one.0, one.1, one.2
    );
    println!(
        "| Always, 8 appenders, single records | {:.0} rec/s | {:.3} ms | {:.3} ms |",
        eight.0, eight.1, eight.2
    );
    println!(
        "| machine: 4 KiB pwrite + fdatasync (after) | {:.0} syncs/s | {:.3} ms | {:.3} ms |",
        raw_after.0, raw_after.1, raw_after.2
    );
    println!();
    println!(
        "8 appenders / 1 appender: {:.1}×; 8-appender p99 / machine fdatasync p99: {:.2}×",
        eight.0 / one.0,
        eight.2 / raw.2.max(raw_after.2)
    );
    let _ = std::fs::remove_dir_all(&root);
}
