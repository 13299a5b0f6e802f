//! `fabric schema add|check|list|show`: the data directory's schema catalog.
//!
//! `add` holds the data directory's writer lock while it stores a version;
//! `check`, `list` and `show` never write. A refused version prints one JSON
//! line per violated rule on stdout and exits 1, storing nothing.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use eventfabric::governance::{Catalog, Classification, CompatMode, SchemaCandidate, Verdict};
use eventfabric::{Fabric, FabricConfig};
use serde_json::json;

use crate::shared::{CliResult, fail};

/// The `schema` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum SchemaCommand {
    /// Register VERSION of EVENT_TYPE: one JSON line {"event_type","version","compat","rules_checked"}
    /// (exit 0), or one {"rule","pointer","message"} line per violated rule (exit 1, nothing stored).
    Add(SchemaArgs),
    /// The same verdict as `add`, without storing anything.
    Check(SchemaArgs),
    /// The registered event types: `TYPE COMPAT VERSION...` lines, or JSON lines with --json.
    List {
        /// One JSON line per event type: {"event_type","compat","versions":[...]}.
        #[arg(long)]
        json: bool,
    },
    /// Every registered version of EVENT_TYPE (or just VERSION) as JSON lines.
    Show {
        /// The event type.
        event_type: String,
        /// One version only.
        version: Option<String>,
    },
}

/// What `add` and `check` take.
#[derive(Args, Debug)]
pub(crate) struct SchemaArgs {
    /// `<domain>.<entity>.<action>`.
    event_type: String,
    /// The semver of the new version.
    version: String,
    /// The JSON Schema (draft 2020-12) file.
    schema: PathBuf,
    /// Compatibility mode: backward, backward_transitive (default for a new
    /// type), forward, forward_transitive, full, full_transitive, none.
    #[arg(long, value_name = "MODE")]
    compat: Option<String>,
    /// A classification tag, `/pointer=pii|pci|secret|none` (repeatable).
    #[arg(long = "tag", value_name = "/POINTER=CLASS")]
    tags: Vec<String>,
    /// The owning team.
    #[arg(long, value_name = "TEAM")]
    owner: Option<String>,
    /// One changelog line.
    #[arg(long, value_name = "LINE")]
    changelog: Option<String>,
    /// The migration plan a breaking major version needs.
    #[arg(long, value_name = "NOTE")]
    migration: Option<String>,
}

/// Runs one `schema` subcommand on `data`.
pub(crate) fn run(data: &Path, cmd: SchemaCommand, tiers: &FabricConfig) -> CliResult {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cmd {
        SchemaCommand::Add(args) => {
            // The writer lock serialises catalog writers.
            let fabric = Fabric::open(data, tiers.clone())?;
            let candidate = candidate(args)?;
            let mut catalog = Catalog::open(data)?;
            let verdict = catalog.add(candidate)?;
            drop(catalog);
            fabric.close()?;
            print_verdict(&mut out, &verdict)
        }
        SchemaCommand::Check(args) => {
            let candidate = candidate(args)?;
            let catalog = if data.exists() {
                Catalog::open(data)?
            } else {
                Catalog::in_memory()
            };
            print_verdict(&mut out, &catalog.check(&candidate))
        }
        SchemaCommand::List { json } => {
            let catalog = Catalog::open(data)?;
            for (event_type, entry) in catalog.event_types() {
                let versions: Vec<String> = entry
                    .versions
                    .iter()
                    .map(|v| v.version.to_string())
                    .collect();
                if json {
                    let line = json!({"event_type": event_type, "compat": entry.compat, "versions": versions});
                    writeln!(out, "{line}")?;
                } else {
                    writeln!(out, "{event_type} {} {}", entry.compat, versions.join(" "))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        SchemaCommand::Show {
            event_type,
            version,
        } => {
            let catalog = Catalog::open(data)?;
            let Some(entry) = catalog.get(&event_type) else {
                return Err(format!("event type {event_type} has no registered schema").into());
            };
            let mut shown = 0;
            for record in &entry.versions {
                if version
                    .as_deref()
                    .is_none_or(|v| v == record.version.as_str())
                {
                    let mut line = serde_json::to_value(record)?;
                    line["event_type"] = json!(event_type);
                    line["compat"] = json!(entry.compat);
                    writeln!(out, "{line}")?;
                    shown += 1;
                }
            }
            if shown == 0 {
                return Err(format!(
                    "version {} of {event_type} is not registered",
                    version.unwrap_or_default()
                )
                .into());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn candidate(args: SchemaArgs) -> CliResult<SchemaCandidate> {
    let version = match args.version.parse() {
        Ok(v) => v,
        Err(e) => return fail(format!("VERSION {:?}: {e}", args.version)),
    };
    let text = std::fs::read(&args.schema)
        .map_err(|e| format!("cannot read {}: {e}", args.schema.display()))?;
    let schema = serde_json::from_slice(&text).map_err(|e| {
        format!(
            "{}: line {} column {}: not valid JSON: {e}",
            args.schema.display(),
            e.line(),
            e.column()
        )
    })?;
    let compat = match args.compat.as_deref().map(str::parse::<CompatMode>) {
        None => None,
        Some(Ok(mode)) => Some(mode),
        Some(Err(e)) => return fail(format!("--compat: {e}")),
    };
    let mut tags = BTreeMap::new();
    for tag in &args.tags {
        let Some((pointer, class)) = tag.rsplit_once('=') else {
            return fail(format!(
                "--tag {tag:?}: expected /pointer=pii|pci|secret|none"
            ));
        };
        if !(pointer.is_empty() || pointer.starts_with('/')) {
            return fail(format!("--tag {tag:?}: the pointer must start with /"));
        }
        match class.parse::<Classification>() {
            Ok(c) => {
                tags.insert(pointer.to_string(), c);
            }
            Err(e) => return fail(format!("--tag {tag:?}: {e}")),
        }
    }
    let mut candidate = SchemaCandidate::new(args.event_type, version, schema);
    candidate.compat = compat;
    candidate.tags = tags;
    candidate.owner = args.owner;
    candidate.changelog = args.changelog;
    candidate.migration = args.migration;
    Ok(candidate)
}

fn print_verdict(out: &mut impl Write, verdict: &Verdict) -> CliResult {
    if verdict.accepted() {
        let line = json!({
            "event_type": verdict.event_type,
            "version": verdict.version,
            "compat": verdict.compat,
            "rules_checked": verdict.rules_checked,
        });
        writeln!(out, "{line}")?;
        return Ok(ExitCode::SUCCESS);
    }
    for v in &verdict.violations {
        let line = json!({"rule": v.rule, "pointer": v.pointer, "message": v.message});
        writeln!(out, "{line}")?;
    }
    Ok(ExitCode::FAILURE)
}
