//! `fabric quota set|list`: the data directory's quota rules.
//!
//! `set` holds the data directory's writer lock while it rewrites
//! `governance/quotas.json`; `list` never writes.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use eventfabric::governance::quota::{self, QuotaAction, QuotaRule};
use eventfabric::{Fabric, FabricConfig};

use crate::shared::{CliResult, fail};

/// The `quota` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum QuotaCommand {
    /// Set (replace) the rule of a tenant, a tenant's producer, or the default
    /// (neither given); limits left out are unlimited.
    Set(SetArgs),
    /// One JSON line per rule.
    List,
}

/// A rule's subject and limits.
#[derive(Args, Debug)]
pub(crate) struct SetArgs {
    /// The tenant (absent: the default rule).
    #[arg(long)]
    tenant: Option<String>,
    /// The producer (source) within --tenant.
    #[arg(long)]
    producer: Option<String>,
    /// Events per second (one second of burst).
    #[arg(long)]
    events_per_sec: Option<u64>,
    /// Payload bytes per second.
    #[arg(long)]
    bytes_per_sec: Option<u64>,
    /// Stored bytes.
    #[arg(long)]
    stored_bytes: Option<u64>,
    /// Topics the tenant may own.
    #[arg(long)]
    topics: Option<u32>,
    /// Consumer groups per topic.
    #[arg(long)]
    groups_per_topic: Option<u32>,
    /// throttle (default: wait up to --throttle-deadline-ms) or reject.
    #[arg(long, default_value = "throttle")]
    action: String,
    /// Longest throttle wait in milliseconds.
    #[arg(long, default_value_t = quota::DEFAULT_THROTTLE_DEADLINE_MS)]
    throttle_deadline_ms: u64,
}

/// Runs one `quota` subcommand on `data`.
pub(crate) fn run(data: &Path, cmd: QuotaCommand, tiers: &FabricConfig) -> CliResult {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cmd {
        QuotaCommand::Set(a) => {
            let action = match a.action.as_str() {
                "throttle" => QuotaAction::Throttle,
                "reject" => QuotaAction::Reject,
                other => return fail(format!("--action {other:?}: not one of throttle, reject")),
            };
            let rule = QuotaRule {
                tenant: a.tenant,
                producer: a.producer,
                events_per_sec: a.events_per_sec,
                bytes_per_sec: a.bytes_per_sec,
                stored_bytes: a.stored_bytes,
                topics: a.topics,
                groups_per_topic: a.groups_per_topic,
                action,
                throttle_deadline_ms: a.throttle_deadline_ms,
            };
            if let Err(e) = rule.validate() {
                return fail(e.to_string());
            }
            let fabric = Fabric::open(data, tiers.clone())?;
            let mut rules = quota::load(data)?;
            rules.retain(|r| (&r.tenant, &r.producer) != (&rule.tenant, &rule.producer));
            rules.push(rule);
            quota::store(data, &rules)?;
            fabric.close()?;
        }
        QuotaCommand::List => {
            for rule in quota::load(data)? {
                writeln!(out, "{}", serde_json::to_string(&rule)?)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
