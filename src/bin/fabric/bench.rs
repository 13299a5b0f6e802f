//! `fabric bench produce|consume`: throughput and latency of the full
//! producer path and of reading and decoding a topic.
//!
//! `bench produce` recreates only its scratch topic (`bench.scratch`) unless
//! given `--topic`; it must never delete any other topic. `bench consume` is
//! read-only.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use eventfabric::fixtures::{FixtureGenerator, FixtureKind};
use eventfabric::{Envelope, Fabric, FabricConfig, FsyncPolicy, StartFrom, TopicConfig};
use serde_json::{Value, json};

use crate::shared::{CliResult, fail};

/// The `bench` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum BenchCommand {
    /// Publish generated seed-like envelopes through the full producer path.
    Produce(BenchProduceArgs),
    /// Read and decode every envelope of a topic.
    Consume(BenchConsumeArgs),
}

/// Default topic of the benchmarks (recreated by `bench produce`).
const SCRATCH_TOPIC: &str = "bench.scratch";

/// Flags of `bench produce`.
#[derive(Args, Debug)]
pub(crate) struct BenchProduceArgs {
    /// Topic to publish to (must exist); by default a scratch topic `bench.scratch` is recreated.
    #[arg(long)]
    topic: Option<String>,
    /// Events to publish in total.
    #[arg(long)]
    records: u64,
    /// Approximate encoded size of each event in bytes (payload padded up to it).
    #[arg(long, default_value_t = 300)]
    size: usize,
    /// Events per publish_batch call (1: publish one by one).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Fsync policy: always, group or os.
    #[arg(long, default_value = "os")]
    fsync: FsyncPolicy,
    /// Producer threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Partitions of the scratch topic.
    #[arg(long, default_value_t = 1)]
    partitions: u32,
    /// Print one JSON object with records, seconds, records_per_sec, mb_per_sec, p50_us, p99_us, p999_us.
    #[arg(long)]
    json: bool,
}

/// Flags of `bench consume`.
#[derive(Args, Debug)]
pub(crate) struct BenchConsumeArgs {
    /// Topic to read (default: the scratch topic of `bench produce`).
    #[arg(long)]
    topic: Option<String>,
    /// Stop after this many events (default: all).
    #[arg(long)]
    records: Option<u64>,
    /// Events per latency sample.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// full: build each owned envelope (payload as JSON); fields: decode and
    /// validate the envelope fields in place, payload left encoded.
    #[arg(long, default_value = "full", value_parser = ["full", "fields"])]
    decode: String,
    /// Print one JSON object with records, seconds, records_per_sec, mb_per_sec, p50_us, p99_us, p999_us.
    #[arg(long)]
    json: bool,
}

/// Envelopes of about `size` encoded bytes, cycling through the seed kinds.
fn bench_envelopes(count: usize, size: usize) -> Vec<Envelope> {
    let mut generator = FixtureGenerator::new(42, 100);
    let kinds = FixtureKind::all();
    (0..count)
        .map(|i| {
            let mut e = generator.next(kinds[i % kinds.len()]);
            let len = e.to_bytes().len();
            if len + 8 < size
                && let Value::Object(m) = &mut e.payload
            {
                m.insert("pad".into(), Value::String("x".repeat(size - len - 8)));
            }
            e
        })
        .collect()
}

/// The `q` quantile (0..=1) of `sorted`, 0 when empty.
fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// An `N/TOTAL events` line on stderr, when it is a terminal, twice a second.
struct Progress {
    on: bool,
    last: Instant,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            on: std::io::stderr().is_terminal(),
            last: Instant::now(),
        }
    }
    fn tick(&mut self, done: u64, total: u64) {
        if self.on && self.last.elapsed() > Duration::from_millis(500) {
            eprint!("\r{done}/{total} events");
            self.last = Instant::now();
        }
    }
    fn done(&self) {
        if self.on {
            eprintln!();
        }
    }
}

/// Prints the result of a benchmark: one JSON object, or one sentence.
fn report(json_out: bool, what: &str, records: u64, bytes: u64, secs: f64, mut lat: Vec<u64>) {
    lat.sort_unstable();
    let secs = secs.max(1e-9);
    let doc = json!({
        "records": records,
        "seconds": secs,
        "records_per_sec": records as f64 / secs,
        "mb_per_sec": bytes as f64 / secs / 1e6,
        "p50_us": percentile(&lat, 0.5),
        "p99_us": percentile(&lat, 0.99),
        "p999_us": percentile(&lat, 0.999),
    });
    if json_out {
        println!("{doc}");
    } else {
        println!(
            "{what}: {records} events in {secs:.3} s = {:.0} events/s, {:.1} MB/s; batch latency p50 {} µs, p99 {} µs, p99.9 {} µs",
            records as f64 / secs,
            bytes as f64 / secs / 1e6,
            doc["p50_us"],
            doc["p99_us"],
            doc["p999_us"]
        );
    }
}

/// `bench produce`: publishes `args.records` generated events and reports.
pub(crate) fn produce(data: &Path, args: BenchProduceArgs, tiers: &FabricConfig) -> CliResult {
    if args.batch == 0 || args.threads == 0 || args.records == 0 {
        return fail("--records, --batch and --threads must be at least 1");
    }
    let mut config = tiers.clone();
    config.fsync = Some(args.fsync);
    let fabric = Fabric::open(data, config)?;
    let topic = match &args.topic {
        Some(t) => t.clone(),
        None => {
            if fabric.topics().iter().any(|t| t == SCRATCH_TOPIC) {
                fabric.delete_topic(SCRATCH_TOPIC)?;
            }
            let mut c = TopicConfig::with_partitions(args.partitions);
            c.fsync = args.fsync;
            // Dedup off: the pool below is published again and again, which
            // the dedup window would answer as duplicates, appending nothing.
            c.dedup_window_ms = 0;
            fabric.create_topic(SCRATCH_TOPIC, c)?;
            SCRATCH_TOPIC.to_string()
        }
    };
    // A pool whose length is a multiple of the batch, so every batch is one
    // contiguous slice of it (no copies on the measured path). About 1,000
    // events: like events an application just built, they stay in cache.
    let pool_len = (args.records as usize).clamp(1, 1_000).div_ceil(args.batch) * args.batch;
    let pool = Arc::new(bench_envelopes(pool_len, args.size));
    let bytes_per: u64 =
        pool.iter().map(|e| e.to_bytes().len() as u64).sum::<u64>() / pool.len() as u64;
    let per_thread = args.records / args.threads as u64;
    let extra = args.records % args.threads as u64;
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..args.threads {
        let mut producer = fabric.producer(&topic, "fabric-bench")?;
        let pool = pool.clone();
        let n = per_thread + u64::from((t as u64) < extra);
        let batch = args.batch;
        let total = args.records;
        let show = t == 0;
        let threads = args.threads as u64;
        handles.push(std::thread::spawn(
            move || -> eventfabric::Result<Vec<u64>> {
                let mut lat = Vec::with_capacity(n as usize / batch + 1);
                let mut progress = Progress::new();
                progress.on &= show;
                let (mut done, mut start) = (0u64, 0usize);
                while done < n {
                    let k = batch.min((n - done) as usize);
                    let chunk = &pool[start..start + k];
                    start = (start + batch) % pool.len();
                    let t0 = Instant::now();
                    if k == 1 {
                        producer.publish(&chunk[0])?;
                    } else {
                        producer.publish_batch(chunk)?;
                    }
                    lat.push(t0.elapsed().as_micros() as u64);
                    done += k as u64;
                    progress.tick(done, total / threads);
                }
                progress.done();
                Ok(lat)
            },
        ));
    }
    let mut lat = Vec::new();
    for h in handles {
        match h.join() {
            Ok(r) => lat.extend(r?),
            Err(_) => return fail("a producer thread panicked"),
        }
    }
    fabric.flush()?;
    let secs = started.elapsed().as_secs_f64();
    report(
        args.json,
        "bench produce",
        args.records,
        args.records * bytes_per,
        secs,
        lat,
    );
    fabric.close()?;
    Ok(ExitCode::SUCCESS)
}

/// `bench consume`: reads and decodes a topic from the start and reports.
pub(crate) fn consume(data: &Path, args: BenchConsumeArgs, tiers: &FabricConfig) -> CliResult {
    let fabric = Fabric::open_read_only_with(data, tiers)?;
    let topic = args.topic.unwrap_or_else(|| SCRATCH_TOPIC.to_string());
    let mut reader = fabric.reader(&topic, StartFrom::Earliest)?;
    let total = args.records.unwrap_or(u64::MAX);
    let batch = args.batch.max(1) as u64;
    let fields_only = args.decode == "fields";
    let mut progress = Progress::new();
    let mut records = 0u64;
    let mut lat = Vec::new();
    let started = Instant::now();
    let mut t0 = Instant::now();
    while records < total {
        let Some(raw) = reader.next_raw() else { break };
        let raw = raw?;
        if fields_only {
            std::hint::black_box(raw.envelope()?.event_type);
        } else {
            std::hint::black_box(Envelope::decode(&raw.value)?);
        }
        records += 1;
        if records.is_multiple_of(batch) {
            lat.push(t0.elapsed().as_micros() as u64);
            t0 = Instant::now();
            progress.tick(records, total);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    progress.done();
    // Bytes read: the stored size of the records consumed.
    let info = fabric.topic_info(&topic)?;
    let stored: u64 = (0..info.config.partitions)
        .filter_map(|p| fabric.partition(&topic, p).ok())
        .map(|l| l.segments().iter().map(|s| s.size_bytes).sum::<u64>())
        .sum();
    let held: u64 = info.offsets.iter().map(|(e, n)| n - e).sum();
    let read_bytes = (stored * records).checked_div(held).unwrap_or(0);
    report(args.json, "bench consume", records, read_bytes, secs, lat);
    Ok(ExitCode::SUCCESS)
}
