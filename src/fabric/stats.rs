//! The facade's snapshot: [`Fabric::stats`], for hosts without a metrics
//! recorder and for `fabric stats` / `fabric metrics` (issue 14).
//!
//! Owns gathering only: it reads topic offsets, tier listings and group
//! cursors through the facade's own read paths and fills the types of
//! [`crate::observe::stats`]. It never writes, never locks a group's cursor
//! log, and works on a read-only fabric beside a live writer.

use std::path::Path;

use crate::consume::dlq::dlq_topic_name;
use crate::error::{Error, Result};
use crate::fabric::Fabric;
use crate::observe::stats::{
    FabricStats, GroupPartitionStats, GroupStats, PartitionStats, TierStats, TopicStats,
};

impl Fabric {
    /// One snapshot of the data directory: per topic and partition offsets
    /// and tier sizes (hot segments, warm and cold archives), each topic's
    /// DLQ size, per group and topic the committed cursors and lag.
    pub fn stats(&self) -> Result<FabricStats> {
        if self.is_read_only() {
            self.refresh()?;
        }
        let mut topics = Vec::new();
        for name in self.topics() {
            let mut partitions = Vec::new();
            for p in self.tier_summary(&name)? {
                let hot = p.hot.iter().map(|s| s.size_bytes).sum();
                let tiers = vec![
                    tier("hot", p.hot.len(), hot),
                    tier(
                        "warm",
                        p.warm.len(),
                        files_bytes(p.warm.iter().map(|a| &*a.path))?,
                    ),
                    tier(
                        "cold",
                        p.cold.len(),
                        files_bytes(p.cold.iter().map(|a| &*a.path))?,
                    ),
                ];
                partitions.push(PartitionStats {
                    partition: p.partition,
                    earliest_offset: p.earliest_offset,
                    next_offset: p.next_offset,
                    tiers,
                });
            }
            let records = readable(&partitions);
            topics.push(TopicStats {
                name,
                records,
                dlq_records: 0,
                partitions,
            });
        }
        // A DLQ's size is the readable records of `<topic>.dlq`.
        let sizes: Vec<(String, u64)> =
            topics.iter().map(|t| (t.name.clone(), t.records)).collect();
        for t in &mut topics {
            let dlq = dlq_topic_name(&t.name);
            t.dlq_records = sizes.iter().find(|(n, _)| *n == dlq).map_or(0, |(_, r)| *r);
        }
        let mut groups = Vec::new();
        for (group, _) in self.list_groups()? {
            for status in self.describe_group(&group)? {
                groups.push(GroupStats {
                    lag: status.lag(),
                    members: status.members.clone(),
                    partitions: status
                        .partitions
                        .iter()
                        .map(|p| GroupPartitionStats {
                            partition: p.partition,
                            committed: p.committed,
                            end: p.end,
                            lag: p.lag,
                        })
                        .collect(),
                    group: status.group,
                    topic: status.topic,
                });
            }
        }
        Ok(FabricStats { topics, groups })
    }
}

fn tier(name: &str, segments: usize, bytes: u64) -> TierStats {
    TierStats {
        tier: name.to_owned(),
        segments: segments as u64,
        bytes,
    }
}

fn readable(partitions: &[PartitionStats]) -> u64 {
    partitions
        .iter()
        .map(|p| p.next_offset.saturating_sub(p.earliest_offset))
        .sum()
}

/// Bytes on disk of archive files.
fn files_bytes<'a>(paths: impl Iterator<Item = &'a Path>) -> Result<u64> {
    let mut total = 0u64;
    for path in paths {
        let len = std::fs::metadata(path)
            .map_err(|e| Error::io("stat", path, e))?
            .len();
        total = total.saturating_add(len);
    }
    Ok(total)
}
