//! `fabric inspect [TOPIC]`: topics, partitions, segments and archives with
//! their offset and time ranges, as text or one JSON object.
//!
//! Read-only: it must never take the writer lock or change a file.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use eventfabric::{Fabric, FabricConfig};
use serde_json::{Value, json};

use crate::shared::{CliResult, archive_json, micros_to_rfc3339};

/// Arguments of `inspect`.
#[derive(Args, Debug)]
pub(crate) struct InspectArgs {
    /// Only this topic.
    topic: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Prints the layout of every topic (or `args.topic`) in `data`.
pub(crate) fn run(data: &Path, args: InspectArgs, tiers: &FabricConfig) -> CliResult {
    let fabric = Fabric::open_read_only_with(data, tiers)?;
    let names = match &args.topic {
        Some(t) => {
            fabric.topic_info(t)?;
            vec![t.clone()]
        }
        None => fabric.topics(),
    };
    let mut topics = Vec::new();
    for name in &names {
        let info = fabric.topic_info(name)?;
        let mut partitions = Vec::new();
        for p in 0..info.config.partitions {
            let log = fabric.partition(name, p)?;
            let first_ts = |offset: u64| -> Option<i64> {
                log.read(offset, eventfabric::ReadLimit::records(1))
                    .ok()
                    .and_then(|r| r.first().map(|r| r.timestamp))
            };
            let segments: Vec<Value> = log
                .segments()
                .iter()
                .map(|s| {
                    let min = (s.next_offset > s.base_offset)
                        .then(|| first_ts(s.base_offset))
                        .flatten();
                    json!({
                        "file": s.path.display().to_string(),
                        "base_offset": s.base_offset,
                        "next_offset": s.next_offset,
                        "size_bytes": s.size_bytes,
                        "sealed": s.sealed,
                        "first_time": min.map(micros_to_rfc3339),
                        "max_time": s.max_timestamp.map(micros_to_rfc3339),
                    })
                })
                .collect();
            let (earliest, next) = (log.earliest_offset(), log.next_offset());
            let max_ts = log.segments().iter().filter_map(|s| s.max_timestamp).max();
            let tiers = &fabric.tier_summary(name)?[p as usize];
            partitions.push(json!({
                "earliest_available_offset": tiers.earliest_offset,
                "warm": tiers.warm.iter().map(archive_json).collect::<Vec<_>>(),
                "cold": tiers.cold.iter().map(archive_json).collect::<Vec<_>>(),
                "partition": p,
                "dir": log.dir().display().to_string(),
                "earliest_offset": earliest,
                "next_offset": next,
                "records": next - earliest,
                "size_bytes": log.segments().iter().map(|s| s.size_bytes).sum::<u64>(),
                "first_time": (next > earliest).then(|| first_ts(earliest)).flatten().map(micros_to_rfc3339),
                "max_time": max_ts.map(micros_to_rfc3339),
                "segments": segments,
            }));
        }
        topics.push(json!({"name": name, "config": info.config, "partitions": partitions}));
    }
    if args.json {
        let doc = json!({"data": data.display().to_string(), "topics": topics});
        println!("{doc}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("data directory {}", data.display());
    for t in &topics {
        println!(
            "topic {}  partitions={}  fsync={}  segment_bytes={}",
            t["name"].as_str().unwrap_or(""),
            t["config"]["partitions"],
            t["config"]["fsync"].as_str().unwrap_or(""),
            t["config"]["segment_bytes"]
        );
        for p in t["partitions"].as_array().into_iter().flatten() {
            println!(
                "  partition {}: offsets {}..{} ({} records, {} bytes), time {} .. {}",
                p["partition"],
                p["earliest_offset"],
                p["next_offset"],
                p["records"],
                p["size_bytes"],
                p["first_time"].as_str().unwrap_or("-"),
                p["max_time"].as_str().unwrap_or("-")
            );
            for s in p["segments"].as_array().into_iter().flatten() {
                println!(
                    "    segment {}: offsets {}..{}, {} bytes, {}",
                    s["file"].as_str().unwrap_or(""),
                    s["base_offset"],
                    s["next_offset"],
                    s["size_bytes"],
                    if s["sealed"] == json!(true) {
                        "sealed"
                    } else {
                        "active"
                    }
                );
            }
            print_archives(p);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The warm and cold lines of one partition in `inspect`'s text output.
fn print_archives(p: &Value) {
    for tier in ["warm", "cold"] {
        for a in p[tier].as_array().into_iter().flatten() {
            println!(
                "    {tier} {}: offsets {}..{}, {} bytes ({} before compression), time {} .. {}",
                a["file"].as_str().unwrap_or(""),
                a["base_offset"],
                a["next_offset"],
                a["size_bytes"],
                a["raw_bytes"],
                a["first_time"].as_str().unwrap_or("-"),
                a["max_time"].as_str().unwrap_or("-")
            );
        }
    }
}
