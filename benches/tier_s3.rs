//! The warm tier on an object store (issue 17), against `moto_server` on
//! loopback (started and stopped by this bench, as in tests/tier_s3.rs):
//!
//! - upload: [`RemoteStore::put`] followed by the confirming HEAD (what a
//!   move to the remote tier does) against plain single `PUT`s of the same
//!   bytes with the same client, interleaved in one run, for an object below
//!   the multipart threshold (8 MiB) and one above it (64 MiB);
//! - replay: every event read back (`Reader::next_raw`) from the local warm
//!   tier, from the remote warm tier with an empty block cache (a fresh
//!   open: every block fetched by ranged GET, with read-ahead), and from the
//!   remote tier again with the cache warm (the cold replay's GETs: waited
//!   for, and started in the background by the read-ahead).
//!
//! `cargo bench --features tier-s3 --bench tier_s3`. Prints medians of 3
//! runs. Targets: upload ≥ 0.8× plain PUTs; remote replay ≥ 1 M events/s
//! warm and ≥ 0.5× the local warm tier cold.
mod common;
#[path = "../tests/s3_support/mod.rs"]
mod s3_support;

use std::path::Path;
use std::time::Instant;

use common::bench_dir;
use eventfabric::fixtures::{FixtureGenerator, FixtureKind};
use eventfabric::{
    Envelope, Fabric, FabricConfig, FsyncPolicy, ObjectStoreConfig, RemoteWarmConfig, StartFrom,
    TopicConfig,
};
use s3_support::{Moto, credentials, pattern};

const TOPIC: &str = "bench.tiers.v1";
const DAY_US: i64 = 86_400_000_000;
const RUNS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn store_config(endpoint: &str) -> ObjectStoreConfig {
    let mut c = ObjectStoreConfig::new("bench");
    c.endpoint = Some(endpoint.to_owned());
    c.region = Some("us-east-1".into());
    // Below the default (128 MiB), so the 64 MiB object shows what parts cost.
    c.multipart_threshold = 32 << 20;
    c
}

fn upload(endpoint: &str) {
    let store =
        eventfabric::RemoteStore::connect(store_config(endpoint), credentials()).expect("connect");
    for size in [8usize << 20, 64 << 20] {
        let data = pattern(size, size as u64);
        let (mut plain, mut ours) = (Vec::new(), Vec::new());
        for run in 0..RUNS {
            let started = Instant::now();
            store
                .put_plain(&format!("plain/{run}"), data.clone())
                .expect("plain put");
            plain.push(size as f64 / started.elapsed().as_secs_f64() / 1e6);
            let started = Instant::now();
            let key = format!("tier/{run}");
            let sent = store.put(&key, data.clone()).expect("put");
            let head = store.head(&key).expect("head").expect("object");
            assert_eq!((head.size, head.crc32), (sent.size, Some(sent.crc32)));
            ours.push(size as f64 / started.elapsed().as_secs_f64() / 1e6);
        }
        let (p, o) = (median(plain.clone()), median(ours.clone()));
        println!(
            "upload {:>3} MiB: plain PUT {p:7.1} MB/s, tier upload (put+HEAD{}) {o:7.1} MB/s, ratio {:.2}  (runs plain {plain:.1?}, tier {ours:.1?})",
            size >> 20,
            if size as u64 > store.config().multipart_threshold {
                ", multipart"
            } else {
                ""
            },
            o / p
        );
    }
}

fn envelopes(n: usize, seed: u64) -> Vec<Envelope> {
    let mut generator = FixtureGenerator::new(seed, 1000);
    let kinds = FixtureKind::all();
    (0..n).map(|i| generator.next(kinds[i % 3])).collect()
}

fn filled(dir: &Path, fc: FabricConfig, events: &[Envelope]) -> Fabric {
    let fabric = Fabric::open(dir, fc).expect("open");
    let mut c = TopicConfig::with_partitions(1);
    c.fsync = FsyncPolicy::Os;
    c.segment_bytes = 16 << 20;
    c.warm_retention_ms = 365 * 86_400_000;
    fabric.create_topic(TOPIC, c).expect("topic");
    let mut producer = fabric.producer(TOPIC, "bench").expect("producer");
    for chunk in events.chunks(100) {
        producer.publish_batch(chunk).expect("publish");
    }
    fabric
        .partition(TOPIC, 0)
        .expect("partition")
        .roll()
        .expect("roll");
    fabric.flush().expect("flush");
    let later =
        jiff::Timestamp::from_microsecond(FixtureGenerator::START.as_microsecond() + 30 * DAY_US)
            .expect("time");
    let started = Instant::now();
    let report = fabric.maintain_at(later).expect("maintain");
    println!(
        "tiering to {}: {} segments, {:.1} MB hot -> {:.1} MB archives in {:.2} s",
        if fabric_is_remote(dir) {
            "the bucket"
        } else {
            "local warm"
        },
        report.segments_to_warm,
        report.bytes_before as f64 / 1e6,
        report.bytes_after as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    fabric
}

fn fabric_is_remote(dir: &Path) -> bool {
    dir.to_string_lossy().ends_with("remote")
}

/// Events per second of one full replay from the earliest offset.
fn replay(fabric: &Fabric, expect: usize) -> f64 {
    let started = Instant::now();
    let mut reader = fabric.reader(TOPIC, StartFrom::Earliest).expect("reader");
    let mut n = 0usize;
    while let Some(r) = reader.next_raw() {
        r.expect("record");
        n += 1;
    }
    assert_eq!(n, expect);
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for the list of benchmarks
    }
    let moto = Moto::start();
    moto.create_bucket("bench");
    upload(&moto.endpoint());

    let events = envelopes(400_000, 17);
    let local_dir = bench_dir("tier-s3-local");
    let local = filled(
        &local_dir,
        FabricConfig::with_fsync(FsyncPolicy::Os),
        &events,
    );
    let remote_dir = bench_dir("tier-s3-remote");
    let mut rc = RemoteWarmConfig::new(store_config(&moto.endpoint()));
    rc.credentials = Some(credentials());
    let mut fc = FabricConfig::with_fsync(FsyncPolicy::Os);
    fc.remote_warm = Some(rc);
    drop(filled(&remote_dir, fc.clone(), &events));
    // The same archives read with a 1 MiB read-ahead: each ~5 MB archive
    // then takes several GETs, all but the first started in the background.
    let mut small = fc.clone();
    if let Some(rc) = small.remote_warm.as_mut() {
        rc.read_ahead_bytes = 1 << 20;
    }
    let (mut l, mut cold, mut warm, mut cold_small) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let remote = Fabric::open(&remote_dir, small.clone()).expect("reopen");
        cold_small.push(replay(&remote, events.len()));
        if let Some((on_demand, ahead, used)) = remote.remote_fetch_counts() {
            println!(
                "cold replay GETs with 1 MiB read-ahead: {on_demand} waited for, {ahead} started in the background ({used} used)"
            );
        }
        drop(remote);
        l.push(replay(&local, events.len()));
        let remote = Fabric::open(&remote_dir, fc.clone()).expect("reopen");
        cold.push(replay(&remote, events.len()));
        if let Some((on_demand, ahead, used)) = remote.remote_fetch_counts() {
            println!(
                "cold replay GETs: {on_demand} waited for, {ahead} started in the background ({used} used)"
            );
        }
        warm.push(replay(&remote, events.len()));
        drop(remote);
    }
    let (l, c, w) = (median(l), median(cold), median(warm));
    let cs = median(cold_small);
    println!(
        "replay cold with 1 MiB read-ahead (background GETs): {:.2} M/s ({:.2}x local)",
        cs / 1e6,
        cs / l
    );
    println!(
        "replay of {} events: local warm {:.2} M/s, remote cold cache {:.2} M/s ({:.2}x local), remote warm cache {:.2} M/s",
        events.len(),
        l / 1e6,
        c / 1e6,
        c / l,
        w / 1e6
    );
}
