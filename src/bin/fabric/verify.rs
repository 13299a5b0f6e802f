//! `fabric verify [--repair]`: every check of the data directory, printed
//! one finding a line, exit status 1 when damage is found.
//!
//! Without `--repair` it must never take the writer lock or change a file;
//! with it, it prints every byte it removed.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use eventfabric::FabricConfig;

use crate::shared::CliResult;

/// Arguments of `verify`.
#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    /// Truncate to the last valid record and rebuild indexes (takes the writer lock).
    #[arg(long)]
    repair: bool,
    /// Also download and check every remote warm archive (feature tier-s3,
    /// with --s3-bucket): size, CRC-32, footer, every block, and offset
    /// continuity with the next archive and the hot tier.
    #[cfg(feature = "tier-s3")]
    #[arg(long)]
    remote: bool,
}

/// Repairs `data` first when `--repair`, then verifies it and prints the findings.
pub(crate) fn run(data: &Path, args: VerifyArgs, tiers: &FabricConfig) -> CliResult {
    if args.repair {
        let repaired = eventfabric::repair_data_dir(data, tiers)?;
        let mut removed_any = false;
        for r in &repaired.partitions {
            for t in &r.report.recovery.truncations {
                removed_any = true;
                println!(
                    "{} partition {}: removed {} bytes of {} from byte {} (offsets {} on): {}",
                    r.topic,
                    r.partition,
                    t.bytes_removed,
                    t.path.display(),
                    t.position,
                    t.first_offset_removed,
                    t.reason
                );
            }
            for d in &r.report.recovery.dropped_segments {
                removed_any = true;
                println!(
                    "{} partition {}: removed segment {} (it followed removed damage)",
                    r.topic,
                    r.partition,
                    d.display()
                );
            }
            if let Some((offset, records)) = r.report.truncated_from {
                removed_any = true;
                println!(
                    "{} partition {}: truncated at offset {offset}, removing {records} records",
                    r.topic, r.partition
                );
            }
            if let Some(cut) = &r.report.damage_cut {
                println!(
                    "{} partition {}: cut {} at byte {} ({}): removed offsets {}..{}",
                    r.topic,
                    r.partition,
                    cut.path.display(),
                    cut.position,
                    cut.reason,
                    cut.offsets_removed.start,
                    cut.offsets_removed.end
                );
                for seg in &cut.removed_segments {
                    println!(
                        "{} partition {}: removed segment {} (it followed the cut)",
                        r.topic,
                        r.partition,
                        seg.display()
                    );
                }
            }
            for i in &r.report.rebuilt_indexes {
                println!(
                    "{} partition {}: rebuilt index {}",
                    r.topic,
                    r.partition,
                    i.display()
                );
            }
            for f in &r.report.discarded {
                println!(
                    "{} partition {}: discarded {} (failed its checks; rewritten on close)",
                    r.topic,
                    r.partition,
                    f.display()
                );
            }
        }
        for a in &repaired.actions {
            removed_any |= a.problem.starts_with("removed") || a.problem.starts_with("cut");
            println!("{}: {}", a.path.display(), a.problem);
        }
        if !removed_any {
            println!("nothing removed");
        }
    }
    let checked = eventfabric::verify_data_dir(data, tiers)?;
    let (mut segments, mut records, mut findings) = (0usize, 0u64, 0usize);
    #[cfg(feature = "tier-s3")]
    if args.remote {
        findings += verify_remote(data, tiers)?;
    }
    for c in &checked.partitions {
        segments += c.report.segments;
        records += c.report.records;
        for f in &c.report.findings {
            findings += 1;
            println!(
                "{}: byte {}: {}{}",
                f.path.display(),
                f.position,
                f.problem,
                if f.data_damaged {
                    ""
                } else if f.path.file_name().is_some_and(|n| n == "checkpoint") {
                    " (a summary only; --repair rewrites it)"
                } else {
                    " (index only; --repair rebuilds it)"
                }
            );
        }
        for n in &c.report.notices {
            println!("{}: note: {}", n.path.display(), n.problem);
        }
    }
    for f in &checked.findings {
        match f.severity {
            eventfabric::Severity::Notice => println!("{}: note: {}", f.path.display(), f.problem),
            severity => {
                findings += 1;
                println!(
                    "{}: byte {}: {}{}",
                    f.path.display(),
                    f.position,
                    f.problem,
                    if severity == eventfabric::Severity::Repairable {
                        " (no accepted data lost; --repair fixes it)"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    eprintln!(
        "fabric: verified {} partitions, {segments} segments, {records} records: {}",
        checked.partitions.len(),
        if findings == 0 {
            "clean".to_string()
        } else {
            format!("{findings} problems found; run fabric verify --repair to fix them")
        }
    );
    eprintln!(
        "fabric: verified {} warm and {} cold archives ({} records), {} state logs",
        checked.warm_archives, checked.cold_archives, checked.archive_records, checked.state_logs
    );
    Ok(if findings == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `--remote`: every remote warm archive of every topic, one line each that
/// has a problem; returns how many have.
#[cfg(feature = "tier-s3")]
fn verify_remote(data: &Path, tiers: &FabricConfig) -> Result<usize, crate::shared::Failure> {
    if tiers.remote_warm.is_none() {
        return Err(crate::shared::Failure {
            message: "verify --remote needs the warm tier's bucket: give --s3-bucket (and --s3-endpoint for a store other than AWS S3)".into(),
            code: 2,
        });
    }
    let fabric = eventfabric::Fabric::open_read_only_with(data, tiers)?;
    let (mut checked, mut bad) = (0usize, 0usize);
    for topic in fabric.topics() {
        for c in fabric.verify_remote_warm(&topic)? {
            checked += 1;
            if let Some(problem) = &c.problem {
                bad += 1;
                println!(
                    "{}: {topic} partition {} offsets {}..{}: {problem}",
                    c.location, c.partition, c.base_offset, c.next_offset
                );
            }
        }
    }
    eprintln!("fabric: verified {checked} remote warm archives: {bad} with problems");
    Ok(bad)
}
