//! Formatting: the table, the markdown report, JSON, and the machine facts.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::engines::EngineSpec;
use crate::workload::{BATCH, Sample, Sizes, Workload};
use crate::{Args, Outcome};

/// Facts about the machine, from /proc.
pub struct Machine {
    pub cpu: String,
    pub nproc: usize,
    pub memory: String,
    pub kernel: String,
    pub filesystem: String,
    pub eventfabric_rev: String,
    pub rustc: String,
}

impl Machine {
    pub fn collect(data_dir: &Path) -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let nproc = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        let memory = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
            .unwrap_or_else(|| "unknown".into());
        let kernel = {
            let v = read("/proc/version");
            let r = read("/proc/sys/kernel/osrelease");
            if r.trim().is_empty() {
                v.trim().to_string()
            } else {
                format!("Linux {}", r.trim())
            }
        };
        Machine {
            cpu,
            nproc,
            memory,
            kernel,
            filesystem: filesystem_of(data_dir),
            eventfabric_rev: git_rev(),
            rustc: cmd_out("rustc", &["-V"]).unwrap_or_else(|| "unknown".into()),
        }
    }
}

/// "fstype on device (mount point)" for the mount that holds `p`.
fn filesystem_of(p: &Path) -> String {
    let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut best: Option<(usize, String)> = None;
    for l in mounts.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 {
            continue;
        }
        let mp = f[1].replace("\\040", " ");
        if p.starts_with(&mp) && best.as_ref().is_none_or(|(n, _)| mp.len() >= *n) {
            best = Some((mp.len(), format!("{} on {} mounted at {}", f[2], f[0], mp)));
        }
    }
    best.map(|b| b.1)
        .unwrap_or_else(|| "unknown filesystem".into())
}

fn cmd_out(cmd: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(cmd).args(args).output().ok()?;
    if !o.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn git_rev() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    cmd_out(
        "git",
        &["-C", dir, "describe", "--always", "--dirty", "--abbrev=12"],
    )
    .unwrap_or_else(|| "no commit yet".into())
}

/// Human-friendly rate: 1.23M, 456k, 789.
fn rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn num(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn get(s: &Sample, k: &str) -> f64 {
    s.iter()
        .find(|(n, _)| *n == k)
        .map(|x| x.1)
        .unwrap_or(f64::NAN)
}

/// One cell: the metrics the workload reports.
pub fn format_sample(w: Workload, s: &Sample, verbose: bool) -> String {
    match w {
        Workload::Append100 | Workload::Append1k | Workload::Scan100 | Workload::Scan1k => {
            let mut c = format!(
                "{} rec/s · {} MB/s",
                rate(get(s, "rec_per_s")),
                num(get(s, "mb_per_s"))
            );
            if verbose {
                let _ = write!(c, " ({:.3} s)", get(s, "secs"));
            }
            c
        }
        Workload::RandomRead => {
            let mut c = format!(
                "{} reads/s · p99 {} µs",
                rate(get(s, "reads_per_s")),
                num(get(s, "p99_us"))
            );
            if verbose {
                let _ = write!(c, " (p50 {} µs)", num(get(s, "p50_us")));
            }
            c
        }
        Workload::Reopen => format!("{} ms", num(get(s, "ms"))),
        Workload::Fsync => {
            let mut c = format!(
                "{} rec/s · p99 {} ms",
                rate(get(s, "rec_per_s")),
                num(get(s, "p99_ms"))
            );
            if verbose {
                let _ = write!(
                    c,
                    " (p50 {} ms, {} batches)",
                    num(get(s, "p50_ms")),
                    get(s, "batches")
                );
            }
            c
        }
    }
}

pub struct Report<'a> {
    pub args: &'a Args,
    pub machine: Machine,
    pub sizes: Sizes,
    pub engines: &'a [&'a EngineSpec],
    pub outcomes: &'a [Outcome],
}

fn cell_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

impl Report<'_> {
    fn outcome(&self, w: Workload, engine: &str) -> Option<&Outcome> {
        self.outcomes
            .iter()
            .find(|o| o.workload == w && o.engine == engine)
    }

    /// The markdown table: rows = workloads, columns = engines, cells = medians.
    pub fn table(&self) -> String {
        let mut t = String::from("| workload |");
        for e in self.engines {
            let _ = write!(t, " {} |", e.name);
        }
        t.push_str("\n|---|");
        for _ in self.engines {
            t.push_str("---|");
        }
        t.push('\n');
        for &w in &self.args.workloads {
            let _ = write!(t, "| {} |", w.title(&self.sizes));
            for e in self.engines {
                let c = match self.outcome(w, e.name) {
                    Some(Outcome {
                        error: Some(err), ..
                    }) => {
                        let mut m: String = err.chars().take(80).collect();
                        if err.chars().count() > 80 {
                            m.push('…');
                        }
                        format!("error: {}", cell_escape(&m))
                    }
                    Some(o) if !o.runs.is_empty() => format_sample(w, &o.median(), false),
                    _ => "–".into(),
                };
                let _ = write!(t, " {c} |");
            }
            t.push('\n');
        }
        t
    }

    fn command(&self) -> String {
        std::env::args()
            .map(|a| {
                if a.is_empty()
                    || a.chars()
                        .any(|c| c.is_whitespace() || "'\"$`\\*?;&|<>()".contains(c))
                {
                    format!("'{}'", a.replace('\'', "'\\''"))
                } else {
                    a
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut s = String::new();
        let _ = writeln!(s, "# eventfabric compared with other log engines\n");
        let _ = writeln!(
            s,
            "Generated by the `compare` harness (`compare/` in this repository).\n"
        );
        let _ = writeln!(s, "- Date: {}", utc_now());
        let _ = writeln!(s, "- Command: `{}`", self.command());
        let _ = writeln!(s, "- CPU: {} ({} logical CPUs available)", m.cpu, m.nproc);
        let _ = writeln!(s, "- Memory: {}", m.memory);
        let _ = writeln!(s, "- Kernel: {}", m.kernel);
        let _ = writeln!(s, "- Data directory filesystem: {}", m.filesystem);
        let _ = writeln!(s, "- eventfabric revision: {}", m.eventfabric_rev);
        let _ = writeln!(
            s,
            "- Compiler: {}{}",
            m.rustc,
            if cfg!(debug_assertions) {
                " (DEBUG build!)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "- Runs: {} timed run(s) per cell after one untimed warm-up; cells are medians{}\n",
            self.args.runs,
            if self.args.quick {
                "; `--quick` sizes (1/20)"
            } else {
                ""
            }
        );
        let _ = writeln!(s, "## Results\n");
        s.push_str(&self.table());
        let _ = writeln!(
            s,
            "\nMB/s counts payload bytes only (10^6 bytes/s), not framing or indexes. \
             p99 is over single reads (random-read) or over append-plus-sync of one batch (fsync)."
        );
        let errors: Vec<&Outcome> = self.outcomes.iter().filter(|o| o.error.is_some()).collect();
        if !errors.is_empty() {
            let _ = writeln!(s, "\n### Errors\n");
            for o in errors {
                let _ = writeln!(
                    s,
                    "- {} / {}: {}",
                    o.workload.id(),
                    o.engine,
                    o.error.as_deref().unwrap_or("")
                );
            }
        }
        let _ = writeln!(s, "\n## Engines\n");
        for e in self.engines {
            let _ = writeln!(s, "- **{}**: {}", e.name, e.describe);
        }
        let _ = writeln!(s, "\n## Method\n");
        let _ = writeln!(
            s,
            "- Payloads are deterministic pseudo-random bytes (splitmix64), generated in memory before \
             any timing; batches of {BATCH} records.\n\
             - Each workload runs one untimed warm-up pass per engine, then the timed runs. Engines take \
             turns within a pass and the order rotates between passes, so all meet the same conditions.\n\
             - Appends: timed from the first append to the end of the single final sync; open and close untimed. \
             The last run's log is kept as the engine's data set for the read workloads.\n\
             - Scans and random reads: the data set is reopened (untimed) before each run. \
             The logs were just written, so reads come from the page cache, not the disk.\n\
             - Reopen: the time for open to return, ready to append and read, after a clean close.\n\
             - fsync: a new log per run; each batch is appended and made durable before the next; the run \
             stops after the batch limit or the time limit, whichever comes first."
        );
        let _ = writeln!(s, "\n## All runs\n");
        for o in self.outcomes {
            for (i, r) in o.runs.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "- {} / {} / run {}: {}",
                    o.workload.id(),
                    o.engine,
                    i + 1,
                    format_sample(o.workload, r, true)
                );
            }
        }
        s
    }

    pub fn json(&self) -> String {
        let m = &self.machine;
        let mut s = String::from("{");
        let _ = write!(
            s,
            "\"date\":{},\"command\":{},\"quick\":{},\"runs\":{},\"machine\":{{\"cpu\":{},\"nproc\":{},\"memory\":{},\"kernel\":{},\"filesystem\":{},\"eventfabric_rev\":{},\"rustc\":{},\"debug_build\":{}}},\"results\":[",
            js(&utc_now()),
            js(&self.command()),
            self.args.quick,
            self.args.runs,
            js(&m.cpu),
            m.nproc,
            js(&m.memory),
            js(&m.kernel),
            js(&m.filesystem),
            js(&m.eventfabric_rev),
            js(&m.rustc),
            cfg!(debug_assertions),
        );
        for (i, o) in self.outcomes.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(
                s,
                "{{\"workload\":{},\"title\":{},\"engine\":{},\"error\":{},\"median\":{},\"runs\":[",
                js(o.workload.id()),
                js(&o.workload.title(&self.sizes)),
                js(o.engine),
                o.error.as_deref().map(js).unwrap_or_else(|| "null".into()),
                sample_json(&o.median()),
            );
            for (j, r) in o.runs.iter().enumerate() {
                if j > 0 {
                    s.push(',');
                }
                s.push_str(&sample_json(r));
            }
            s.push_str("]}");
        }
        s.push_str("]}");
        s
    }
}

fn sample_json(s: &Sample) -> String {
    let mut o = String::from("{");
    for (i, (k, v)) in s.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let v = if v.is_finite() {
            format!("{v}")
        } else {
            "null".into()
        };
        let _ = write!(o, "{}:{v}", js(k));
    }
    o.push('}');
    o
}

/// A JSON string literal.
fn js(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Current UTC time as "YYYY-MM-DD HH:MM:SS UTC" (no date crate needed).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
