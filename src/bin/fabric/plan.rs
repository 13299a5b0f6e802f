//! `fabric check FILE [--against DIR|FILE]`: the topics-file lint a CI job runs.
//!
//! It needs no data directory and never writes one: with `--against DIR` it
//! only reads that directory's schema catalog. Findings are stdout lines
//! `FILE:LINE: RULE: message` and exit status 1; a clean file prints a
//! one-line summary and exits 0.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use eventfabric::governance::topics_file::{self, Against};

use crate::shared::CliResult;

/// What `check` takes.
#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    /// The topics file (YAML, or JSON when it ends in .json).
    file: PathBuf,
    /// The previous catalog to diff schema versions against: a data
    /// directory, or a previous topics file.
    #[arg(long, value_name = "DIR|FILE")]
    against: Option<PathBuf>,
}

/// Runs `fabric check`.
pub(crate) fn check(args: CheckArgs) -> CliResult {
    let against = match &args.against {
        None => Against::Nothing,
        Some(p) if p.is_dir() => Against::DataDir(p),
        Some(p) => Against::File(p),
    };
    let report = topics_file::check(&args.file, against)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if report.findings.is_empty() {
        writeln!(out, "{}: {}", args.file.display(), report.summary())?;
        return Ok(ExitCode::SUCCESS);
    }
    for finding in &report.findings {
        writeln!(out, "{finding}")?;
    }
    eprintln!("{} findings", report.findings.len());
    Ok(ExitCode::FAILURE)
}
