//! `fabric group list|describe|reset`: consumer groups, their cursors and lag.
//!
//! `reset` must never move the cursors of a group a live member holds (its
//! cursor lock refuses it and the error names the holder).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use eventfabric::{Fabric, FabricConfig};
use serde_json::json;

use crate::shared::{CliResult, fail, group_in_use};

/// The `group` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum GroupCommand {
    /// One JSON line per group: {"group":G,"topics":[...]}.
    List,
    /// One JSON line per topic/partition of group G: committed, end, lag, expired, members.
    Describe {
        /// The consumer group.
        group: String,
    },
    /// Move group G's cursors on a topic (refused while a member of G is live).
    Reset {
        /// The consumer group.
        group: String,
        /// The topic whose cursors move (default: every topic the group has cursors for).
        #[arg(long)]
        topic: Option<String>,
        /// earliest, latest, an OFFSET (every partition) or an RFC 3339 time (emitted_at).
        #[arg(long)]
        to: String,
    },
}

/// Runs one `group` subcommand on a read-only view of `data`.
pub(crate) fn run(data: &Path, cmd: GroupCommand, tiers: &FabricConfig) -> CliResult {
    let fabric = Fabric::open_read_only_with(data, tiers)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cmd {
        GroupCommand::List => {
            for (name, topics) in fabric.list_groups()? {
                writeln!(out, "{}", json!({"group": name, "topics": topics}))?;
            }
        }
        GroupCommand::Describe { group: name } => {
            for status in fabric.describe_group(&name)? {
                for p in &status.partitions {
                    let line = json!({
                        "group": status.group,
                        "topic": status.topic,
                        "partition": p.partition,
                        "committed": p.committed,
                        "end": p.end,
                        "lag": p.lag,
                        "member": p.member,
                        "expired": status.expired,
                        "members": status.members,
                    });
                    writeln!(out, "{line}")?;
                }
            }
        }
        GroupCommand::Reset {
            group: name,
            topic,
            to,
        } => {
            let target = match to.as_str() {
                "earliest" => eventfabric::ResetTo::Earliest,
                "latest" => eventfabric::ResetTo::Latest,
                s if s.bytes().all(|b| b.is_ascii_digit()) => {
                    eventfabric::ResetTo::Offset(s.parse()?)
                }
                s => match s.parse::<jiff::Timestamp>() {
                    Ok(t) => eventfabric::ResetTo::Time(t),
                    Err(e) => {
                        return fail(format!(
                            "--to {s:?} is not earliest, latest, an offset or an RFC 3339 time ({e})"
                        ));
                    }
                },
            };
            // Without --topic: every topic the group has cursors for.
            let topics = match topic {
                Some(topic) => vec![topic],
                None => fabric
                    .list_groups()?
                    .into_iter()
                    .find(|(g, _)| *g == name)
                    .map(|(_, topics)| topics)
                    .unwrap_or_default(),
            };
            if topics.is_empty() {
                return fail(format!(
                    "group {name:?} has no cursors to reset; name the topic with --topic"
                ));
            }
            for topic in topics {
                let positions = fabric
                    .reset_group(&name, &topic, target)
                    .map_err(|e| group_in_use(e, &name, &topic))?;
                for (partition, offset) in positions {
                    let line = json!({"group": name, "topic": topic, "partition": partition, "committed": offset});
                    writeln!(out, "{line}")?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
