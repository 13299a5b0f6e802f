//! `fabric metrics`: the data directory's snapshot as Prometheus text
//! exposition on stdout (for node_exporter's textfile collector or a
//! sidecar), metric names as in docs/METRICS.md.
//!
//! It must never take the writer lock or change a file.

use std::path::Path;
use std::process::ExitCode;

use eventfabric::{Fabric, FabricConfig};

use crate::shared::CliResult;

/// Opens `data` read-only and prints its snapshot as Prometheus text.
pub(crate) fn run(data: &Path, tiers: &FabricConfig) -> CliResult {
    let fabric = Fabric::open_read_only_with(data, tiers)?;
    print!("{}", fabric.stats()?.to_prometheus());
    Ok(ExitCode::SUCCESS)
}
