//! `fabric export` and `fabric import`: a topic (or some partitions, over a
//! range) into one snapshot file, and a snapshot file back into a topic.
//!
//! `export` is read-only; `import` must never append an event the topic
//! already holds twice (duplicates are skipped and counted).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use eventfabric::{Bound, ExportOptions, Fabric, FabricConfig};
use serde_json::json;

use crate::shared::{CliResult, Position, parse_position};

/// Arguments of `export`.
#[derive(Args, Debug)]
pub(crate) struct ExportArgs {
    /// The topic to export.
    topic: String,
    /// The snapshot file to write (replaced atomically).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Start: an OFFSET (in every exported partition) or an RFC 3339 time (emitted_at), inclusive.
    #[arg(long)]
    from: Option<String>,
    /// End: an OFFSET or an RFC 3339 time, exclusive.
    #[arg(long)]
    to: Option<String>,
    /// Export only this partition (repeatable).
    #[arg(long = "partition", value_name = "P")]
    partitions: Vec<u32>,
}

/// Arguments of `import`.
#[derive(Args, Debug)]
pub(crate) struct ImportArgs {
    /// The snapshot file to import.
    file: PathBuf,
    /// Import into this topic instead of the exported topic's name.
    #[arg(long)]
    topic: Option<String>,
}

/// `--from`/`--to` of `export`: unbounded, an offset or an RFC 3339 time.
fn parse_bound(flag: &str, text: &Option<String>) -> CliResult<Bound> {
    let Some(text) = text.as_deref() else {
        return Ok(Bound::Unbounded);
    };
    Ok(match parse_position(flag, text, "2026-06-10T12:30:00Z")? {
        Position::Offset(offset) => Bound::Offset(offset),
        Position::Time(t) => Bound::Time(t.as_microsecond()),
    })
}

/// Progress on stderr for long snapshot runs: at most twice a second, only
/// once the run has lasted a second.
fn snapshot_progress(what: &'static str) -> impl FnMut(u64) {
    let started = Instant::now();
    let mut last = Instant::now();
    move |records| {
        if started.elapsed() > Duration::from_secs(1) && last.elapsed() > Duration::from_millis(500)
        {
            eprintln!("fabric: {what} {records} records...");
            last = Instant::now();
        }
    }
}

/// Writes `args.topic` (over the range and partitions given) to `args.out`.
pub(crate) fn export(data: &Path, args: ExportArgs, tiers: &FabricConfig) -> CliResult {
    let fabric = Fabric::open_read_only_with(data, tiers)?;
    let mut options = ExportOptions::default();
    options.from = parse_bound("--from", &args.from)?;
    options.to = parse_bound("--to", &args.to)?;
    if !args.partitions.is_empty() {
        options.partitions = Some(args.partitions.clone());
    }
    let mut progress = snapshot_progress("exported");
    let summary = eventfabric::export_snapshot_with_progress(
        &fabric,
        &args.topic,
        &args.out,
        &options,
        &mut progress,
    )?;
    println!(
        "{}",
        json!({"topic": args.topic, "file": summary.path, "records": summary.records,
               "bytes": summary.value_bytes, "file_bytes": summary.file_bytes,
               "schema_versions": summary.schema_versions})
    );
    Ok(ExitCode::SUCCESS)
}

/// Imports the snapshot `args.file` into `data`.
pub(crate) fn import(data: &Path, args: ImportArgs, tiers: &FabricConfig) -> CliResult {
    let fabric = Fabric::open(data, tiers.clone())?;
    let mut progress = snapshot_progress("imported");
    let summary = eventfabric::import_snapshot_with_progress(
        &fabric,
        &args.file,
        args.topic.as_deref(),
        &mut progress,
    )?;
    fabric.close()?;
    println!(
        "{}",
        json!({"topic": summary.topic, "created": summary.created, "records": summary.records,
               "appended": summary.appended, "bytes": summary.bytes,
               "duplicates_skipped": summary.duplicates_skipped})
    );
    Ok(ExitCode::SUCCESS)
}
