//! The workloads, their sizes, and running one workload on one engine once.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::engines::{EngineSpec, Opts, Res};

/// Payload sizes of the two data sets.
pub const SMALL: usize = 100;
pub const LARGE: usize = 1024;
pub const BATCH: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    Append100,
    Append1k,
    Scan100,
    Scan1k,
    RandomRead,
    Reopen,
    Fsync,
}

impl Workload {
    pub const ALL: [Workload; 7] = [
        Workload::Append100,
        Workload::Append1k,
        Workload::Scan100,
        Workload::Scan1k,
        Workload::RandomRead,
        Workload::Reopen,
        Workload::Fsync,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Workload::Append100 => "append-100b",
            Workload::Append1k => "append-1k",
            Workload::Scan100 => "scan-100b",
            Workload::Scan1k => "scan-1k",
            Workload::RandomRead => "random-read",
            Workload::Reopen => "reopen",
            Workload::Fsync => "fsync",
        }
    }

    pub fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.id() == s)
    }

    /// The data set the workload writes (append) or needs (reads, reopen).
    pub fn dataset(self) -> Option<Dataset> {
        match self {
            Workload::Append100 | Workload::Scan100 | Workload::RandomRead | Workload::Reopen => {
                Some(Dataset::Small)
            }
            Workload::Append1k | Workload::Scan1k => Some(Dataset::Large),
            Workload::Fsync => None,
        }
    }

    pub fn title(self, s: &Sizes) -> String {
        match self {
            Workload::Append100 => format!(
                "append {} × {SMALL} B, batches of {BATCH}, one sync at end",
                count(s.small_n)
            ),
            Workload::Append1k => format!(
                "append {} × 1 KiB, batches of {BATCH}, one sync at end",
                count(s.large_n)
            ),
            Workload::Scan100 => format!(
                "scan {} × {SMALL} B after reopen, checksums verified",
                count(s.small_n)
            ),
            Workload::Scan1k => format!(
                "scan {} × 1 KiB after reopen, checksums verified",
                count(s.large_n)
            ),
            Workload::RandomRead => format!(
                "{} random reads by offset after reopen ({} × {SMALL} B log)",
                count(s.reads),
                count(s.small_n)
            ),
            Workload::Reopen => format!(
                "reopen after clean close ({} × {SMALL} B log, {:.0} MB payload)",
                count(s.small_n),
                (s.small_n * SMALL) as f64 / 1e6
            ),
            Workload::Fsync => format!(
                "fsync after every batch of {BATCH} × {SMALL} B (≤ {} batches or {} s)",
                count(s.fsync_batches),
                s.fsync_time.as_secs_f64()
            ),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dataset {
    Small,
    Large,
}

impl Dataset {
    pub fn id(self) -> &'static str {
        match self {
            Dataset::Small => "ds-100b",
            Dataset::Large => "ds-1k",
        }
    }
    pub fn size(self) -> usize {
        match self {
            Dataset::Small => SMALL,
            Dataset::Large => LARGE,
        }
    }
    pub fn append_workload(self) -> Workload {
        match self {
            Dataset::Small => Workload::Append100,
            Dataset::Large => Workload::Append1k,
        }
    }
}

pub fn count(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(100_000) {
        format!("{}M", n as f64 / 1e6)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// Workload sizes (full or `--quick`, which divides by 20).
#[derive(Clone, Debug)]
pub struct Sizes {
    pub small_n: usize,
    pub large_n: usize,
    pub reads: usize,
    pub fsync_batches: usize,
    pub fsync_time: Duration,
    /// Time bound of the untimed warm-up pass of the fsync workload.
    pub fsync_warmup_time: Duration,
}

impl Sizes {
    pub fn new(quick: bool) -> Sizes {
        let d = if quick { 20 } else { 1 };
        Sizes {
            small_n: 1_000_000 / d,
            large_n: 500_000 / d,
            reads: 100_000 / d,
            fsync_batches: 20_000 / d,
            fsync_time: if quick {
                Duration::from_secs(1)
            } else {
                Duration::from_secs(5)
            },
            fsync_warmup_time: if quick {
                Duration::from_millis(250)
            } else {
                Duration::from_secs(1)
            },
        }
    }
    pub fn n(&self, ds: Dataset) -> usize {
        match ds {
            Dataset::Small => self.small_n,
            Dataset::Large => self.large_n,
        }
    }
}

/// Deterministic pseudo-random payloads (splitmix64 output), generated once
/// and kept in memory so that no timed loop generates data or first-touches
/// fresh pages for it.
pub struct Payloads {
    data: Vec<u8>,
    size: usize,
    count: usize,
}

impl Payloads {
    pub fn new(count: usize, size: usize, seed: u64) -> Payloads {
        let len = count * size;
        let mut data = Vec::with_capacity(len + 8);
        let mut rng = SplitMix(seed);
        while data.len() < len {
            data.extend_from_slice(&rng.next().to_le_bytes());
        }
        data.truncate(len);
        Payloads { data, size, count }
    }
    /// Record `i` (wraps around past `count`).
    #[inline]
    pub fn rec(&self, i: usize) -> &[u8] {
        let i = i % self.count;
        &self.data[i * self.size..(i + 1) * self.size]
    }
}

pub struct SplitMix(pub u64);
impl SplitMix {
    #[inline]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// One run's metrics, by name.
pub type Sample = Vec<(&'static str, f64)>;

fn opts(size: usize, sync_each_batch: bool) -> Opts {
    Opts {
        sync_each_batch,
        max_payload: size,
    }
}

/// Appends `n` records from `p` in batches of [`BATCH`], then one sync.
/// Timed from the first append to the end of the sync; open and close untimed.
pub fn append(spec: &EngineSpec, dir: &Path, p: &Payloads, n: usize) -> Res<Sample> {
    let mut e = (spec.open)(dir, opts(p.size, false))?;
    let mut refs: Vec<&[u8]> = Vec::with_capacity(BATCH);
    let t = Instant::now();
    let mut i = 0;
    while i < n {
        refs.clear();
        let end = (i + BATCH).min(n);
        refs.extend((i..end).map(|j| p.rec(j)));
        e.append_batch(&refs)?;
        i = end;
    }
    e.sync()?;
    let secs = t.elapsed().as_secs_f64();
    if let Some(next) = e.next_offset()
        && next != n as u64
    {
        return Err(format!("{}: {next} records after appending {n}", e.name()).into());
    }
    e.close()?;
    Ok(vec![
        ("rec_per_s", n as f64 / secs),
        ("mb_per_s", (n * p.size) as f64 / secs / 1e6),
        ("secs", secs),
    ])
}

/// Opens the data set (untimed), scans it all (timed), checks the totals.
pub fn scan(spec: &EngineSpec, dir: &Path, size: usize, n: usize) -> Res<Sample> {
    let mut e = (spec.open)(dir, opts(size, false))?;
    let t = Instant::now();
    let (recs, bytes) = e.scan_all()?;
    let secs = t.elapsed().as_secs_f64();
    e.close()?;
    if recs != n as u64 || bytes != (n * size) as u64 {
        return Err(format!(
            "{}: scan found {recs} records / {bytes} bytes, expected {n} / {}",
            spec.name,
            n * size
        )
        .into());
    }
    Ok(vec![
        ("rec_per_s", n as f64 / secs),
        ("mb_per_s", bytes as f64 / secs / 1e6),
        ("secs", secs),
    ])
}

/// Opens the data set (untimed), reads `reads` uniformly random offsets, each
/// timed on its own for the percentiles.
pub fn random_read(
    spec: &EngineSpec,
    dir: &Path,
    size: usize,
    n: usize,
    reads: usize,
    seed: u64,
) -> Res<Sample> {
    let mut rng = SplitMix(seed);
    let offsets: Vec<u64> = (0..reads).map(|_| rng.next() % n as u64).collect();
    let mut lat = Vec::with_capacity(reads);
    let mut e = (spec.open)(dir, opts(size, false))?;
    let t = Instant::now();
    for &o in &offsets {
        let t0 = Instant::now();
        let len = e.read_at(o)?;
        lat.push(t0.elapsed());
        if len != size {
            return Err(
                format!("{}: record {o} has {len} bytes, expected {size}", e.name()).into(),
            );
        }
    }
    let secs = t.elapsed().as_secs_f64();
    e.close()?;
    lat.sort_unstable();
    Ok(vec![
        ("reads_per_s", reads as f64 / secs),
        ("p50_us", pct(&lat, 0.50).as_secs_f64() * 1e6),
        ("p99_us", pct(&lat, 0.99).as_secs_f64() * 1e6),
    ])
}

/// Times opening a cleanly closed data set until it is ready to serve reads
/// and appends; then closes it (untimed).
pub fn reopen(spec: &EngineSpec, dir: &Path, size: usize, n: usize) -> Res<Sample> {
    let t = Instant::now();
    let e = (spec.open)(dir, opts(size, false))?;
    let secs = t.elapsed().as_secs_f64();
    let next = e.next_offset();
    e.close()?;
    if let Some(next) = next
        && next != n as u64
    {
        return Err(format!("{}: reopen found {next} records, expected {n}", spec.name).into());
    }
    Ok(vec![("ms", secs * 1e3)])
}

/// Appends batches of [`BATCH`] × [`SMALL`] B, each followed by a sync, until
/// `max_batches` or `limit` elapsed. Latency per batch = append + sync.
pub fn fsync(
    spec: &EngineSpec,
    dir: &Path,
    p: &Payloads,
    max_batches: usize,
    limit: Duration,
) -> Res<Sample> {
    let mut e = (spec.open)(dir, opts(p.size, true))?;
    let mut refs: Vec<&[u8]> = Vec::with_capacity(BATCH);
    let mut lat = Vec::with_capacity(max_batches);
    let t = Instant::now();
    let mut i = 0usize;
    while lat.len() < max_batches && t.elapsed() < limit {
        refs.clear();
        refs.extend((i..i + BATCH).map(|j| p.rec(j)));
        let t0 = Instant::now();
        e.append_batch(&refs)?;
        e.sync()?;
        lat.push(t0.elapsed());
        i += BATCH;
    }
    let secs = t.elapsed().as_secs_f64();
    e.close()?;
    let batches = lat.len();
    lat.sort_unstable();
    Ok(vec![
        ("rec_per_s", (batches * BATCH) as f64 / secs),
        ("mb_per_s", (batches * BATCH * p.size) as f64 / secs / 1e6),
        ("p50_ms", pct(&lat, 0.50).as_secs_f64() * 1e3),
        ("p99_ms", pct(&lat, 0.99).as_secs_f64() * 1e3),
        ("batches", batches as f64),
    ])
}

/// Nearest-rank percentile of sorted durations.
fn pct(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
