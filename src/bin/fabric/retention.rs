//! `fabric retention show|run`: a topic's policy and tiers (hot, warm and
//! cold), and applying the policy now.
//!
//! `show` is read-only; `run` moves segments between tiers with the writer
//! lock and must never delete data its policy still keeps.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use eventfabric::{Fabric, FabricConfig};
use serde_json::{Value, json};

use crate::shared::{CliResult, Failure, micros_to_rfc3339};

/// The `retention` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum RetentionCommand {
    /// Print the policy, then one JSON line per partition with its tiers (read-only).
    Show {
        /// The topic.
        topic: String,
    },
    /// Apply the policy now: move segments between tiers; print the report as
    /// one JSON line (progress on stderr).
    Run {
        /// The topic.
        topic: String,
        /// Act as if the time were this RFC 3339 instant (default: now).
        #[arg(long)]
        now: Option<String>,
    },
}

/// One file of a tier: base offset, next offset, bytes, first and largest timestamp.
type TierFile = (u64, u64, u64, Option<i64>, Option<i64>);

/// Totals of one tier of a partition for `retention show`.
fn tier_totals(files: &[TierFile]) -> Value {
    json!({
        "segments": files.len(),
        "bytes": files.iter().map(|f| f.2).sum::<u64>(),
        "base_offset": files.first().map(|f| f.0),
        "next_offset": files.last().map(|f| f.1),
        "first_time": files.iter().filter_map(|f| f.3).min().map(micros_to_rfc3339),
        "max_time": files.iter().filter_map(|f| f.4).max().map(micros_to_rfc3339),
    })
}

/// Runs one `retention` subcommand; `tiers` names the warm and cold directories.
pub(crate) fn run(data: &Path, tiers: FabricConfig, cmd: RetentionCommand) -> CliResult {
    match cmd {
        RetentionCommand::Show { topic } => {
            let fabric = Fabric::open_read_only_with(data, &tiers)?;
            let c = fabric.topic_info(&topic)?.config;
            let warm_dir = tiers
                .warm_dir
                .clone()
                .unwrap_or_else(|| data.join(eventfabric::WARM_DIR));
            let cold_dir = tiers
                .cold_dir
                .clone()
                .unwrap_or_else(|| data.join(eventfabric::COLD_DIR));
            println!(
                "{}",
                json!({
                    "topic": topic,
                    "retention_ms": c.retention_ms,
                    "retention_bytes": c.retention_bytes,
                    "warm_retention_ms": c.warm_retention_ms,
                    "cold_action": c.cold_action.as_str(),
                    "warm_dir": warm_dir.display().to_string(),
                    "cold_dir": cold_dir.display().to_string(),
                })
            );
            for p in fabric.tier_summary(&topic)? {
                let hot: Vec<TierFile> = p
                    .hot
                    .iter()
                    .map(|s| {
                        (
                            s.base_offset,
                            s.next_offset,
                            s.size_bytes,
                            None,
                            s.max_timestamp,
                        )
                    })
                    .collect();
                let archives = |list: &[eventfabric::ArchiveInfo]| -> Vec<TierFile> {
                    list.iter()
                        .map(|a| {
                            let s = &a.summary;
                            (
                                s.base_offset,
                                s.next_offset,
                                s.file_bytes,
                                Some(s.min_timestamp),
                                Some(s.max_timestamp),
                            )
                        })
                        .collect()
                };
                println!(
                    "{}",
                    json!({
                        "topic": topic,
                        "partition": p.partition,
                        "earliest_offset": p.earliest_offset,
                        "next_offset": p.next_offset,
                        "hot": tier_totals(&hot),
                        "warm": tier_totals(&archives(&p.warm)),
                        "warm_remote": warm_remote(&p.warm, &archives),
                        "cold": tier_totals(&archives(&p.cold)),
                    })
                );
            }
        }
        RetentionCommand::Run { topic, now } => {
            let now = match now {
                Some(t) => t.parse::<jiff::Timestamp>().map_err(|e| Failure {
                    message: format!(
                        "--now {t:?} is not an RFC 3339 time ({e}), e.g. 2026-06-10T12:00:00Z"
                    ),
                    code: 2,
                })?,
                None => jiff::Timestamp::now(),
            };
            let fabric = Fabric::open(data, tiers)?;
            let mut progress = |m: &eventfabric::TierMove| {
                eprintln!(
                    "retention: {} partition {}: offsets {}..{} {} -> {} ({} -> {} bytes)",
                    m.topic,
                    m.partition,
                    m.base_offset,
                    m.next_offset,
                    m.from.as_str(),
                    m.to.as_str(),
                    m.bytes_before,
                    m.bytes_after
                );
            };
            let r = fabric.maintain_topic(&topic, now, &mut progress)?;
            fabric.close()?;
            let earliest: Vec<Value> = r
                .earliest_changes
                .iter()
                .map(|c| json!({"partition": c.partition, "earliest_offset": c.earliest}))
                .collect();
            println!(
                "{}",
                json!({
                    "topic": topic,
                    "partitions_checked": r.partitions_checked,
                    "segments_to_warm": r.segments_to_warm,
                    "segments_to_cold": r.segments_to_cold,
                    "segments_deleted": r.segments_deleted,
                    "bytes_before": r.bytes_before,
                    "bytes_after": r.bytes_after,
                    "elapsed_ms": r.elapsed.as_secs_f64() * 1e3,
                    "earliest_changes": earliest,
                })
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The part of the warm tier held in an object store: where (the
/// partition's `s3://bucket/prefix/topic/partition/`) and which offsets, or
/// `null` when every warm archive is local.
fn warm_remote(
    warm: &[eventfabric::ArchiveInfo],
    archives: &dyn Fn(&[eventfabric::ArchiveInfo]) -> Vec<TierFile>,
) -> Value {
    let remote: Vec<eventfabric::ArchiveInfo> = warm
        .iter()
        .filter(|a| a.remote.is_some())
        .cloned()
        .collect();
    let Some(location) = remote
        .first()
        .and_then(|a| a.remote.as_deref())
        .and_then(|l| l.rsplit_once('/'))
        .map(|(dir, _)| format!("{dir}/"))
    else {
        return Value::Null;
    };
    let mut totals = tier_totals(&archives(&remote));
    totals["location"] = Value::String(location);
    totals
}
