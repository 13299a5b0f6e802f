//! `compare`: runs the same log workloads against several engines and writes a
//! markdown table (rows = workloads, columns = engines).
//!
//! ```text
//! compare [--quick] [--out FILE.md] [--json] [--only NAME,...] [--workloads ID,...]
//!         [--runs N] [--data-dir DIR] [--keep-data]
//! ```
//!
//! Every workload runs one untimed warm-up pass per engine and then `--runs`
//! (default 3) timed passes; the table shows the median of each metric. Within
//! a pass the engines take turns, and the order rotates from pass to pass, so
//! that all engines meet the same conditions (page cache, host memory).

mod engines;
mod report;
mod workload;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use engines::{EngineSpec, Res};
use workload::{Dataset, Payloads, Sample, Sizes, Workload};

pub struct Args {
    pub quick: bool,
    pub out: Option<PathBuf>,
    pub json: bool,
    pub only: Option<Vec<String>>,
    pub workloads: Vec<Workload>,
    pub runs: usize,
    pub data_dir: Option<PathBuf>,
    pub keep_data: bool,
}

const USAGE: &str = "usage: compare [--quick] [--out FILE.md] [--json] [--only NAME,...] [--workloads ID,...]
               [--runs N] [--data-dir DIR] [--keep-data]

  --quick        1/20 of the sizes, for smoke tests
  --out FILE     also write a markdown report (machine, command, date, table)
  --json         print JSON instead of the table on stdout
  --only         engines: plain, mmap, commitlog, sqlite, eventfabric (default: all compiled in)
  --workloads    append-100b, append-1k, scan-100b, scan-1k, random-read, reopen, fsync (default: all)
  --runs N       timed runs per workload and engine; the table shows medians (default 3)
  --data-dir DIR where the engines' directories go (default: the temp dir if it is on the
                 same filesystem as the current directory, else the current directory)
  --keep-data    do not delete the data directory at the end";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        quick: false,
        out: None,
        json: false,
        only: None,
        workloads: Workload::ALL.to_vec(),
        runs: 3,
        data_dir: None,
        keep_data: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut val = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or(format!("{name} needs a value"))
        };
        match key.as_str() {
            "--quick" => a.quick = true,
            "--json" => a.json = true,
            "--keep-data" => a.keep_data = true,
            "--out" => a.out = Some(PathBuf::from(val("--out")?)),
            "--data-dir" => a.data_dir = Some(PathBuf::from(val("--data-dir")?)),
            "--runs" => {
                a.runs = val("--runs")?
                    .parse()
                    .map_err(|_| "--runs needs a number")?;
                if a.runs == 0 {
                    return Err("--runs must be at least 1".into());
                }
            }
            "--only" => {
                a.only = Some(
                    val("--only")?
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .collect(),
                )
            }
            "--workloads" => {
                let mut ws = Vec::new();
                for s in val("--workloads")?.split(',') {
                    let s = s.trim();
                    if s == "all" {
                        ws.extend(Workload::ALL);
                    } else {
                        ws.push(Workload::parse(s).ok_or(format!("unknown workload `{s}`"))?);
                    }
                }
                ws.sort();
                ws.dedup();
                a.workloads = ws;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(a)
}

/// Results of one workload on one engine.
pub struct Outcome {
    pub workload: Workload,
    pub engine: &'static str,
    pub runs: Vec<Sample>,
    pub error: Option<String>,
}

impl Outcome {
    /// Median of each metric over the timed runs.
    pub fn median(&self) -> Sample {
        let Some(first) = self.runs.first() else {
            return Vec::new();
        };
        first
            .iter()
            .map(|&(k, _)| {
                let mut v: Vec<f64> = self
                    .runs
                    .iter()
                    .filter_map(|s| s.iter().find(|(n, _)| *n == k).map(|x| x.1))
                    .collect();
                v.sort_by(f64::total_cmp);
                let m = if v.len() % 2 == 1 {
                    v[v.len() / 2]
                } else {
                    (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
                };
                (k, m)
            })
            .collect()
    }
}

struct Ctx<'a> {
    root: PathBuf,
    sizes: Sizes,
    runs: usize,
    engines: Vec<&'a EngineSpec>,
    payloads: HashMap<Dataset, Payloads>,
    /// Data sets built so far: (engine, data set) → directory.
    datasets: HashMap<(&'static str, Dataset), PathBuf>,
}

impl Ctx<'_> {
    fn payloads(&mut self, ds: Dataset) -> &Payloads {
        let n = self.sizes.n(ds);
        self.payloads.entry(ds).or_insert_with(|| {
            eprintln!("generating {} × {} B payloads", n, ds.size());
            Payloads::new(n, ds.size(), 0xEF_u64 << 32 | ds.size() as u64)
        })
    }

    fn engine_dir(&self, engine: &str, what: &str) -> PathBuf {
        self.root.join(engine).join(what)
    }

    /// Builds the data set for `spec` (an untimed append run) unless an append
    /// workload already left one.
    fn ensure_dataset(&mut self, spec: &EngineSpec, ds: Dataset) -> Res<PathBuf> {
        if let Some(p) = self.datasets.get(&(spec.name, ds)) {
            return Ok(p.clone());
        }
        let dir = self.engine_dir(spec.name, ds.id());
        remove_dir(&dir)?;
        eprintln!("  building {} data set for {}", ds.id(), spec.name);
        let n = self.sizes.n(ds);
        self.payloads(ds);
        workload::append(spec, &dir, &self.payloads[&ds], n)?;
        self.datasets.insert((spec.name, ds), dir.clone());
        Ok(dir)
    }

    fn run_once(&mut self, w: Workload, spec: &EngineSpec, rep: usize) -> Res<Sample> {
        let s = self.sizes.clone();
        match w {
            Workload::Append100 | Workload::Append1k => {
                let ds = w.dataset().unwrap();
                let dir = self.engine_dir(spec.name, &format!("{}-run{rep}", w.id()));
                remove_dir(&dir)?;
                self.payloads(ds);
                let sample = workload::append(spec, &dir, &self.payloads[&ds], s.n(ds));
                // Keep the last run's log as the engine's data set for the
                // read workloads; delete the others.
                if sample.is_ok() && rep == self.runs {
                    let keep = self.engine_dir(spec.name, ds.id());
                    remove_dir(&keep)?;
                    std::fs::rename(&dir, &keep)?;
                    self.datasets.insert((spec.name, ds), keep);
                } else {
                    remove_dir(&dir)?;
                }
                sample
            }
            Workload::Scan100 | Workload::Scan1k => {
                let ds = w.dataset().unwrap();
                let dir = self.ensure_dataset(spec, ds)?;
                workload::scan(spec, &dir, ds.size(), s.n(ds))
            }
            Workload::RandomRead => {
                let dir = self.ensure_dataset(spec, Dataset::Small)?;
                workload::random_read(
                    spec,
                    &dir,
                    workload::SMALL,
                    s.small_n,
                    s.reads,
                    0x5EED + rep as u64,
                )
            }
            Workload::Reopen => {
                let dir = self.ensure_dataset(spec, Dataset::Small)?;
                workload::reopen(spec, &dir, workload::SMALL, s.small_n)
            }
            Workload::Fsync => {
                let dir = self.engine_dir(spec.name, &format!("fsync-run{rep}"));
                remove_dir(&dir)?;
                self.payloads(Dataset::Small);
                let limit = if rep == 0 {
                    s.fsync_warmup_time
                } else {
                    s.fsync_time
                };
                let r = workload::fsync(
                    spec,
                    &dir,
                    &self.payloads[&Dataset::Small],
                    s.fsync_batches,
                    limit,
                );
                remove_dir(&dir)?;
                r
            }
        }
    }

    fn run_workload(&mut self, w: Workload) -> Vec<Outcome> {
        let mut out: Vec<Outcome> = self
            .engines
            .iter()
            .map(|e| Outcome {
                workload: w,
                engine: e.name,
                runs: Vec::new(),
                error: None,
            })
            .collect();
        eprintln!("== {} — {}", w.id(), w.title(&self.sizes));
        // Data sets first, so that building them is not interleaved with timing.
        if !matches!(w, Workload::Append100 | Workload::Append1k)
            && let Some(ds) = w.dataset()
        {
            for (i, spec) in self.engines.clone().into_iter().enumerate() {
                if let Err(e) = self.ensure_dataset(spec, ds) {
                    out[i].error = Some(format!("building data set: {e}"));
                }
            }
        }
        let n = self.engines.len();
        for rep in 0..=self.runs {
            for k in 0..n {
                let i = (k + rep) % n;
                if out[i].error.is_some() {
                    continue;
                }
                let spec = self.engines[i];
                match self.run_once(w, spec, rep) {
                    Ok(sample) => {
                        let label = if rep == 0 {
                            "warm-up".to_string()
                        } else {
                            format!("run {rep}/{}", self.runs)
                        };
                        eprintln!(
                            "  {label:>9} {:<12} {}",
                            spec.name,
                            report::format_sample(w, &sample, true)
                        );
                        if rep > 0 {
                            out[i].runs.push(sample);
                        }
                    }
                    Err(e) => {
                        eprintln!("  {:<12} ERROR: {e}", spec.name);
                        out[i].error = Some(e.to_string());
                    }
                }
            }
        }
        out
    }
}

fn remove_dir(p: &Path) -> Res<()> {
    match std::fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("removing {}: {e}", p.display()).into()),
    }
}

/// The temp dir if it is on the same filesystem as the current directory
/// (where the project lives), else the current directory.
fn default_base() -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let tmp = std::env::temp_dir();
    match (std::fs::metadata(&cwd), std::fs::metadata(&tmp)) {
        (Ok(a), Ok(b)) if a.dev() == b.dev() => tmp,
        _ => cwd,
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("compare: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if e.is_empty() { 0 } else { 2 });
        }
    };
    let all = engines::all();
    let engines: Vec<&EngineSpec> = match &args.only {
        None => all.iter().collect(),
        Some(names) => {
            let mut v = Vec::new();
            for n in names {
                match all.iter().find(|e| e.name == n) {
                    Some(e) => v.push(e),
                    None => {
                        let known: Vec<_> = all.iter().map(|e| e.name).collect();
                        eprintln!(
                            "compare: unknown engine `{n}` (compiled in: {})",
                            known.join(", ")
                        );
                        return ExitCode::from(2);
                    }
                }
            }
            v
        }
    };
    if cfg!(debug_assertions) {
        eprintln!("compare: WARNING: debug build; use --release for numbers that mean anything");
    }

    let base = args.data_dir.clone().unwrap_or_else(default_base);
    let root = base.join(format!("eventfabric-compare-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&root) {
        eprintln!("compare: creating {}: {e}", root.display());
        return ExitCode::from(1);
    }
    let machine = report::Machine::collect(&root);
    eprintln!(
        "data directory: {} ({})",
        root.display(),
        machine.filesystem
    );

    let mut ctx = Ctx {
        root: root.clone(),
        sizes: Sizes::new(args.quick),
        runs: args.runs,
        engines: engines.clone(),
        payloads: HashMap::new(),
        datasets: HashMap::new(),
    };
    let mut outcomes = Vec::new();
    for &w in &args.workloads {
        outcomes.extend(ctx.run_workload(w));
    }
    let sizes = ctx.sizes.clone();
    drop(ctx);
    if !args.keep_data {
        let _ = remove_dir(&root);
    }

    let rep = report::Report {
        args: &args,
        machine,
        sizes,
        engines: &engines,
        outcomes: &outcomes,
    };
    if args.json {
        println!("{}", rep.json());
    } else {
        println!("{}", rep.table());
    }
    if let Some(out) = &args.out {
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(parent);
        }
        if let Err(e) = std::fs::write(out, rep.markdown()) {
            eprintln!("compare: writing {}: {e}", out.display());
            return ExitCode::from(1);
        }
        eprintln!("wrote {}", out.display());
    }
    if outcomes.iter().any(|o| o.error.is_some()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
