//! `fabric topic create|list|delete|add-partitions`: a topic's life cycle.
//!
//! It owns the flags of every topic setting and must never change a topic
//! without the writer lock (`list` is the one read-only command here).

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use eventfabric::{Fabric, FabricConfig, FsyncPolicy, TopicConfig};

use crate::shared::{CliResult, fail};

/// The `topic` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum TopicCommand {
    /// Create a topic; every topic setting has a flag.
    Create(CreateArgs),
    /// List topics with their partition counts and settings (read-only).
    List {
        /// Print one JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a topic and all its data.
    Delete {
        /// The topic to delete.
        topic: String,
        /// Confirm the deletion (required).
        #[arg(long)]
        yes: bool,
    },
    /// Grow a topic to more partitions (changes key → partition mapping for new events).
    AddPartitions {
        /// The topic to grow.
        topic: String,
        /// The new, larger partition count.
        #[arg(long)]
        partitions: u32,
    },
}

/// Arguments of `topic create`: the name, the partition count and one flag per setting.
#[derive(Args, Debug)]
pub(crate) struct CreateArgs {
    /// Topic name: lowercase [a-z0-9_-] segments separated by dots (e.g. billing.domain.v1).
    topic: String,
    /// Number of partitions.
    #[arg(long)]
    partitions: u32,
    /// Segment size at which a partition rolls to a new segment file.
    #[arg(long)]
    segment_bytes: Option<u64>,
    /// Roll a non-empty segment older than this many milliseconds.
    #[arg(long)]
    segment_ms: Option<u64>,
    /// When appends count as done: always (fdatasync), group (group commit) or os.
    #[arg(long)]
    fsync: Option<FsyncPolicy>,
    /// Group commit: longest time an append stays unsynced, in milliseconds.
    #[arg(long)]
    group_commit_ms: Option<u64>,
    /// Group commit: unsynced bytes that trigger a sync at once.
    #[arg(long)]
    group_commit_bytes: Option<u64>,
    /// Largest encoded event accepted.
    #[arg(long)]
    max_record_bytes: Option<usize>,
    /// Largest encoded batch accepted.
    #[arg(long)]
    max_batch_bytes: Option<usize>,
    /// Log bytes between sparse index entries.
    #[arg(long)]
    index_interval_bytes: Option<u32>,
    /// Hot retention by age in milliseconds (default 7 days): older sealed
    /// segments move to warm (or get the cold action).
    #[arg(long)]
    retention_ms: Option<u64>,
    /// Hot retention by size in bytes per partition (default unlimited).
    #[arg(long)]
    retention_bytes: Option<u64>,
    /// Warm retention in milliseconds, from the record time; must exceed
    /// --retention-ms (default 0: no warm tier).
    #[arg(long)]
    warm_retention_ms: Option<u64>,
    /// What happens to data leaving the last readable tier: delete or export
    /// (to the cold directory).
    #[arg(long)]
    cold_action: Option<eventfabric::ColdAction>,
    /// Producer dedup window in milliseconds (default 120000; 0 turns dedup off).
    #[arg(long)]
    dedup_window_ms: Option<u64>,
    /// Most event ids the dedup cache holds (default 1000000).
    #[arg(long)]
    dedup_max_entries: Option<u64>,
    /// Drop (and count) `system.` events beyond this many per second.
    #[arg(long)]
    system_events_per_sec: Option<u32>,
    /// Validate every payload against the schema catalog (`fabric schema add`);
    /// refuse unknown event types, versions and invalid payloads.
    #[arg(long)]
    require_schemas: bool,
}

/// Runs one `topic` subcommand on the data directory `data`.
pub(crate) fn run(data: &Path, cmd: TopicCommand, tiers: &FabricConfig) -> CliResult {
    match cmd {
        TopicCommand::Create(a) => {
            let mut c = TopicConfig::with_partitions(a.partitions);
            if let Some(v) = a.segment_bytes {
                c.segment_bytes = v;
            }
            c.segment_ms = a.segment_ms.or(c.segment_ms);
            if let Some(v) = a.fsync {
                c.fsync = v;
            }
            if let Some(v) = a.group_commit_ms {
                c.group_commit_ms = v;
            }
            if let Some(v) = a.group_commit_bytes {
                c.group_commit_bytes = v;
            }
            if let Some(v) = a.max_record_bytes {
                c.max_record_bytes = v;
            }
            if let Some(v) = a.max_batch_bytes {
                c.max_batch_bytes = v;
                // A smaller batch limit lowers the default record limit with it.
                if a.max_record_bytes.is_none() {
                    c.max_record_bytes = c.max_record_bytes.min(v / 2);
                }
            }
            if let Some(v) = a.index_interval_bytes {
                c.index_interval_bytes = v;
            }
            c.retention_ms = a.retention_ms.or(c.retention_ms);
            c.retention_bytes = a.retention_bytes.or(c.retention_bytes);
            if let Some(v) = a.warm_retention_ms {
                c.warm_retention_ms = v;
            }
            if let Some(v) = a.cold_action {
                c.cold_action = v;
            }
            if let Some(v) = a.dedup_window_ms {
                c.dedup_window_ms = v;
            }
            if let Some(v) = a.dedup_max_entries {
                c.dedup_max_entries = v;
            }
            c.system_events_per_sec = a.system_events_per_sec;
            c.governance.require_schemas = a.require_schemas;
            let fabric = Fabric::open(data, tiers.clone())?;
            fabric.create_topic(&a.topic, c)?;
            fabric.close()?;
            eprintln!(
                "created topic {} with {} partitions in {}",
                a.topic,
                a.partitions,
                data.display()
            );
        }
        TopicCommand::List { json } => {
            let fabric = Fabric::open_read_only_with(data, tiers)?;
            let mut out = Vec::new();
            for name in fabric.topics() {
                out.push(fabric.topic_info(&name)?);
            }
            if json {
                println!("{}", serde_json::to_string(&out)?);
            } else {
                for t in out {
                    let records: u64 = t.offsets.iter().map(|(e, n)| n - e).sum();
                    println!(
                        "{}\tpartitions={}\tfsync={}\trecords={}",
                        t.name, t.config.partitions, t.config.fsync, records
                    );
                }
            }
        }
        TopicCommand::Delete { topic, yes } => {
            if !yes {
                return fail(format!(
                    "refusing to delete topic {topic} without --yes: it removes all its data; add --yes to confirm"
                ));
            }
            let fabric = Fabric::open(data, tiers.clone())?;
            fabric.delete_topic(&topic)?;
            fabric.close()?;
            eprintln!("deleted topic {topic} from {}", data.display());
        }
        TopicCommand::AddPartitions { topic, partitions } => {
            let fabric = Fabric::open(data, tiers.clone())?;
            fabric.add_partitions(&topic, partitions)?;
            fabric.close()?;
            eprintln!("topic {topic} now has {partitions} partitions");
        }
    }
    Ok(ExitCode::SUCCESS)
}
