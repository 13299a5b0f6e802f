//! The typed snapshot of a data directory that `Fabric::stats` returns and
//! `fabric stats` prints as JSON (issue 14): per topic and partition offsets
//! and tier sizes, per consumer group cursors and lag.
//!
//! Owns the snapshot's shape (its JSON field names are a contract, listed in
//! docs/METRICS.md) and its rendering as Prometheus text. It never reads the
//! data directory itself (`src/fabric/stats.rs` fills it) and never writes
//! anything.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::observe::names;

/// One snapshot of a data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FabricStats {
    /// Every topic, by name (dead-letter topics `<topic>.dlq` included).
    pub topics: Vec<TopicStats>,
    /// Every consumer group cursor set, by group then topic.
    pub groups: Vec<GroupStats>,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TopicStats {
    /// Topic name.
    pub name: String,
    /// Records readable now (sum over partitions of `next − earliest`).
    pub records: u64,
    /// Records in the topic's dead-letter topic `<name>.dlq` (0 when none).
    pub dlq_records: u64,
    /// Per partition, by number.
    pub partitions: Vec<PartitionStats>,
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PartitionStats {
    /// Partition number.
    pub partition: u32,
    /// Earliest readable offset (warm or hot).
    pub earliest_offset: u64,
    /// Next offset to be appended.
    pub next_offset: u64,
    /// Each tier's segment count and bytes on disk: hot, warm, cold.
    pub tiers: Vec<TierStats>,
}

/// One tier of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TierStats {
    /// `hot`, `warm` or `cold`.
    pub tier: String,
    /// Segment (or archive) files.
    pub segments: u64,
    /// Their bytes on disk.
    pub bytes: u64,
}

/// One consumer group on one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GroupStats {
    /// Group name.
    pub group: String,
    /// Topic name.
    pub topic: String,
    /// Lag summed over partitions.
    pub lag: u64,
    /// Live members in the process that took the snapshot (empty from
    /// another process: membership is in memory).
    pub members: Vec<u64>,
    /// Per partition, by number.
    pub partitions: Vec<GroupPartitionStats>,
}

/// One partition of a group's view of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GroupPartitionStats {
    /// Partition number.
    pub partition: u32,
    /// Committed next offset (`None`: never committed).
    pub committed: Option<u64>,
    /// The partition's log end.
    pub end: u64,
    /// `end − committed` (from the earliest offset when never committed).
    pub lag: u64,
}

impl FabricStats {
    /// The snapshot as Prometheus text exposition (format 0.0.4): the lag
    /// gauges and `eventfabric_storage_bytes`, names as in docs/METRICS.md.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        family_line(
            &mut out,
            names::CONSUMER_LAG,
            "gauge",
            "Records between a group's committed offset and the partition end.",
        );
        for g in &self.groups {
            for p in &g.partitions {
                let _ = writeln!(
                    out,
                    "{}{{{}=\"{}\",{}=\"{}\",{}=\"{}\"}} {}",
                    names::CONSUMER_LAG,
                    names::TOPIC,
                    escape(&g.topic),
                    names::PARTITION,
                    p.partition,
                    names::CONSUMER_GROUP,
                    escape(&g.group),
                    p.lag
                );
            }
        }
        family_line(
            &mut out,
            names::CONSUMERGROUP_LAG_SUM,
            "gauge",
            "A group's lag summed over the topic's partitions.",
        );
        for g in &self.groups {
            let _ = writeln!(
                out,
                "{}{{{}=\"{}\",{}=\"{}\"}} {}",
                names::CONSUMERGROUP_LAG_SUM,
                names::TOPIC,
                escape(&g.topic),
                names::CONSUMER_GROUP,
                escape(&g.group),
                g.lag
            );
        }
        family_line(
            &mut out,
            names::STORAGE_BYTES,
            "gauge",
            "Bytes a topic holds on disk per tier.",
        );
        for t in &self.topics {
            for tier in ["hot", "warm", "cold"] {
                let bytes: u64 = t
                    .partitions
                    .iter()
                    .flat_map(|p| &p.tiers)
                    .filter(|s| s.tier == tier)
                    .map(|s| s.bytes)
                    .sum();
                let _ = writeln!(
                    out,
                    "{}{{{}=\"{}\",{}=\"{tier}\"}} {bytes}",
                    names::STORAGE_BYTES,
                    names::TOPIC,
                    escape(&t.name),
                    names::TIER,
                );
            }
        }
        out
    }
}

fn family_line(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value escaped as the text format asks (`\`, `"` and newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
