//! `fabric stats [--json]`: one snapshot of the data directory (topics and
//! partitions with offsets and tier sizes, DLQ sizes, groups with lag),
//! read-only beside a live writer.
//!
//! It must never take the writer lock or change a file.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use eventfabric::{Fabric, FabricConfig};

use crate::shared::CliResult;

/// Arguments of `stats`.
#[derive(Args, Debug)]
pub(crate) struct StatsArgs {
    /// Print the snapshot as one JSON document (the `Fabric::stats` shape).
    #[arg(long)]
    json: bool,
}

/// Opens `data` read-only and prints its snapshot.
pub(crate) fn run(data: &Path, args: StatsArgs, tiers: &FabricConfig) -> CliResult {
    let fabric = Fabric::open_read_only_with(data, tiers)?;
    let stats = fabric.stats()?;
    if args.json {
        let text = serde_json::to_string_pretty(&stats)?;
        println!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<40} {:>9} {:>12} {:>12} {:>8}",
        "TOPIC", "PARTITION", "EARLIEST", "NEXT", "HOT_B"
    );
    for t in &stats.topics {
        for p in &t.partitions {
            let hot = p
                .tiers
                .iter()
                .find(|s| s.tier == "hot")
                .map_or(0, |s| s.bytes);
            println!(
                "{:<40} {:>9} {:>12} {:>12} {:>8}",
                t.name, p.partition, p.earliest_offset, p.next_offset, hot
            );
        }
        if t.dlq_records > 0 {
            println!("{:<40} dlq records: {}", t.name, t.dlq_records);
        }
    }
    println!("{:<24} {:<40} {:>12}", "GROUP", "TOPIC", "LAG");
    for g in &stats.groups {
        println!("{:<24} {:<40} {:>12}", g.group, g.topic, g.lag);
    }
    Ok(ExitCode::SUCCESS)
}
