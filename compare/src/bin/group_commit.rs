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

/// Appends `buf` to a fresh plain file and `fdatasync`s it, again and again
/// for `secs` seconds; returns (units/s counting `units` per write, p50, p99).
fn synced_writes(path: &std::path::Path, buf: &[u8], units: usize, secs: f64) -> (f64, f64, f64) {
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .expect("open");
    let mut lat = Vec::new();
    let start = Instant::now();
    let mut pos = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        let t = Instant::now();
        f.write_all_at(buf, pos).expect("write");
        f.sync_data().expect("sync");
        lat.push(t.elapsed());
        pos += buf.len() as u64;
    }
    let rate = (lat.len() * units) as f64 / start.elapsed().as_secs_f64();
    let (p50, p99) = percentiles(lat);
    (rate, p50, p99)
}

/// This machine's limit: 4 KiB pwrite + fdatasync on a plain file.
fn raw_fdatasync(dir: &std::path::Path, secs: f64) -> (f64, f64, f64) {
    synced_writes(&dir.join("raw"), &[7u8; 4096], 1, secs)
}

/// The plain-file baseline of the `Always` workload: each batch of 100 framed
/// 100-byte records (`len crc32 payload`) is written and `fdatasync`ed.
fn plain_batches(dir: &std::path::Path, secs: f64) -> (f64, f64, f64) {
    let mut buf = Vec::with_capacity(100 * 108);
    for i in 0..100u8 {
        let payload = [i; 100];
        buf.extend_from_slice(&100u32.to_le_bytes());
        buf.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        buf.extend_from_slice(&payload);
    }
    synced_writes(&dir.join("plain"), &buf, 100, secs)
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.5);
    let rounds: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let root = std::env::current_dir()
        .expect("cwd")
        .join("target/group-commit-data");
    std::fs::create_dir_all(&root).expect("data dir");
    raw_fdatasync(&root, 0.5);
    // The disk's latency drifts (this VM shares it), so the phases take turns
    // in every round and the table reports medians over rounds.
    let mut rows: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); 5];
    for _ in 0..rounds {
        rows[0].push(raw_fdatasync(&root, secs));
        rows[4].push(plain_batches(&root, secs));
        rows[1].push(appenders(&root.join("one-batch"), 1, 100, secs));
        rows[2].push(appenders(&root.join("one"), 1, 1, secs));
        rows[3].push(appenders(&root.join("eight"), 8, 1, secs));
    }
    let names = [
        "machine: 4 KiB pwrite + fdatasync",
        "Always, 1 appender, batches of 100 × 100 B",
        "Always, 1 appender, single records",
        "Always, 8 appenders, single records",
        "plain file: batch of 100 × 100 B framed, pwrite + fdatasync",
    ];
    println!(
        "| measurement (median of {rounds} interleaved rounds of {secs} s) | rate | p50 | p99 |"
    );
    println!("|---|---:|---:|---:|");
    let mut med = Vec::new();
    for (name, r) in names.iter().zip(&rows) {
        let m = (
            median(r.iter().map(|x| x.0).collect()),
            median(r.iter().map(|x| x.1).collect()),
            median(r.iter().map(|x| x.2).collect()),
        );
        let unit = if name.starts_with("machine") {
            "syncs/s"
        } else {
            "rec/s"
        };
        println!(
            "| {name} | {:.0} {unit} | {:.3} ms | {:.3} ms |",
            m.0, m.1, m.2
        );
        med.push(m);
    }
    let ratios: Vec<f64> = rows[3]
        .iter()
        .zip(&rows[2])
        .map(|(e, o)| e.0 / o.0)
        .collect();
    let vs_plain: Vec<f64> = rows[1]
        .iter()
        .zip(&rows[4])
        .map(|(e, p)| e.0 / p.0)
        .collect();
    println!();
    println!(
        "8 appenders / 1 appender (median of per-round ratios): {:.1}×; 8-appender p99 / machine fdatasync p99: {:.2}×",
        median(ratios),
        med[3].2 / med[0].2
    );
    println!(
        "1 appender, batches of 100 / plain file + fdatasync (median of per-round ratios): {:.2}×",
        median(vs_plain)
    );
    let _ = std::fs::remove_dir_all(&root);
}
