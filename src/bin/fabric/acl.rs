//! `fabric acl add|remove|list`: the data directory's ACL rules.
//!
//! `add` and `remove` hold the data directory's writer lock while they
//! rewrite `governance/acls.json`; `list` never writes.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use eventfabric::governance::{AclRule, Acls};
use eventfabric::{Fabric, FabricConfig};

use crate::shared::{CliResult, fail};

/// The `acl` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum AclCommand {
    /// Add a rule (once any rule exists, everything not allowed is denied; deny wins).
    Add(RuleArgs),
    /// Remove the rule with exactly these fields.
    Remove(RuleArgs),
    /// One JSON line per rule.
    List,
}

/// One rule's fields.
#[derive(Args, Debug)]
pub(crate) struct RuleArgs {
    /// The principal, or * for everyone.
    #[arg(long)]
    principal: String,
    /// The tenant, or * (default) for any.
    #[arg(long, default_value = "*")]
    tenant: String,
    /// produce, consume, describe, create, delete, alter or replay_dlq.
    #[arg(long)]
    operation: String,
    /// topic, group or schema.
    #[arg(long, default_value = "topic")]
    resource: String,
    /// The resource name (or prefix with --prefix).
    #[arg(long)]
    name: String,
    /// Match every name starting with --name.
    #[arg(long)]
    prefix: bool,
    /// Deny instead of allow.
    #[arg(long)]
    deny: bool,
}

impl RuleArgs {
    fn rule(self) -> CliResult<AclRule> {
        let rule = AclRule {
            principal: self.principal,
            tenant: self.tenant,
            operation: match self.operation.parse() {
                Ok(v) => v,
                Err(e) => return fail(format!("--operation: {e}")),
            },
            resource: match self.resource.parse() {
                Ok(v) => v,
                Err(e) => return fail(format!("--resource: {e}")),
            },
            name: self.name,
            pattern: if self.prefix {
                eventfabric::governance::PatternKind::Prefix
            } else {
                eventfabric::governance::PatternKind::Literal
            },
            effect: if self.deny {
                eventfabric::governance::Effect::Deny
            } else {
                eventfabric::governance::Effect::Allow
            },
        };
        Ok(rule)
    }
}

/// Runs one `acl` subcommand on `data`.
pub(crate) fn run(data: &Path, cmd: AclCommand, tiers: &FabricConfig) -> CliResult {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cmd {
        AclCommand::Add(args) => {
            let rule = args.rule()?;
            let fabric = Fabric::open(data, tiers.clone())?;
            let added = Acls::open(data)?.add(rule)?;
            fabric.close()?;
            if !added {
                eprintln!("fabric: the rule exists already");
            }
        }
        AclCommand::Remove(args) => {
            let rule = args.rule()?;
            let fabric = Fabric::open(data, tiers.clone())?;
            let removed = Acls::open(data)?.remove(&rule)?;
            fabric.close()?;
            if !removed {
                return Err("no such rule".into());
            }
        }
        AclCommand::List => {
            for rule in Acls::open(data)?.rules() {
                writeln!(out, "{}", serde_json::to_string(rule)?)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The `--principal` check of `produce` and `consume`: the data directory's
/// ACLs must allow `principal` (the host principal when the flag is absent)
/// `op` on `topic`; no ACL file means everything is allowed.
pub(crate) fn authorize(
    data: &Path,
    principal: Option<&str>,
    op: eventfabric::governance::Operation,
    topic: &str,
) -> CliResult<()> {
    let principal = principal.unwrap_or(eventfabric::governance::HOST_PRINCIPAL);
    Acls::open(data)?.authorize(
        principal,
        None,
        op,
        eventfabric::governance::ResourceKind::Topic,
        topic,
    )?;
    Ok(())
}
