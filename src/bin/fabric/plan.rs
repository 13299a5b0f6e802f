//! `fabric check FILE [--against DIR|FILE]`, `fabric plan FILE`, `fabric
//! apply FILE [--allow-destructive]`: the topics file against CI and a data
//! directory.
//!
//! `check` needs no data directory and never writes one: with `--against
//! DIR` it only reads that directory's schema catalog. Findings are stdout
//! lines `FILE:LINE: RULE: message` and exit status 1; a clean file prints a
//! one-line summary and exits 0. `plan` reads the data directory and prints
//! one line per change; `apply` makes them (schemas first, then topics, ACLs,
//! quotas), and changes nothing while anything is blocked (a partition count
//! that shrinks, a deletion without `--allow-destructive`, a setting of an
//! existing topic this build cannot alter).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use eventfabric::governance::topics_file::{
    self, Against, SchemaVersionSpec, TopicSpec, TopicsFile,
};
use eventfabric::governance::{Acls, Catalog, SchemaCandidate, quota};
use eventfabric::{Fabric, FabricConfig};

use crate::shared::CliResult;

/// What `check` takes.
#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    /// The topics file (YAML, or JSON when it ends in .json).
    file: PathBuf,
    /// The previous catalog to diff schema versions against: a data
    /// directory, or a previous topics file.
    #[arg(long, value_name = "DIR|FILE")]
    against: Option<PathBuf>,
}

/// Runs `fabric check`.
pub(crate) fn check(args: CheckArgs) -> CliResult {
    let against = match &args.against {
        None => Against::Nothing,
        Some(p) if p.is_dir() => Against::DataDir(p),
        Some(p) => Against::File(p),
    };
    let report = topics_file::check(&args.file, against)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if report.findings.is_empty() {
        writeln!(out, "{}: {}", args.file.display(), report.summary())?;
        return Ok(ExitCode::SUCCESS);
    }
    for finding in &report.findings {
        writeln!(out, "{finding}")?;
    }
    eprintln!("{} findings", report.findings.len());
    Ok(ExitCode::FAILURE)
}

/// What `plan` and `apply` take.
#[derive(Args, Debug)]
pub(crate) struct PlanArgs {
    /// The topics file.
    file: PathBuf,
    /// Allow deleting topics the file no longer lists and shrinking retention.
    #[arg(long)]
    allow_destructive: bool,
}

/// One change `apply` would make.
enum Change {
    Create(String, Box<TopicSpec>),
    Grow(String, u32),
    Delete(String),
    Register(String, SchemaVersionSpec),
    Acls,
    Quotas,
}

/// The changes and the problems that stop `apply` (shrinking partitions,
/// destructive changes without the flag, settings this build cannot alter).
struct Plan {
    changes: Vec<(Change, String)>,
    blockers: Vec<String>,
}

fn make_plan(data: &Path, args: &PlanArgs, tiers: &FabricConfig) -> CliResult<(Plan, TopicsFile)> {
    let report = topics_file::check(&args.file, Against::DataDir(data))?;
    if !report.findings.is_empty() {
        let lines: Vec<String> = report.findings.iter().map(|f| f.to_string()).collect();
        return Err(format!(
            "the topics file has findings (fix them first):\n{}",
            lines.join("\n")
        )
        .into());
    }
    let Some(file) = report.file else {
        return Err("the topics file could not be read".into());
    };
    let fabric = Fabric::open_read_only_with(data, tiers)?;
    let existing = fabric.topics();
    let mut plan = Plan {
        changes: Vec::new(),
        blockers: Vec::new(),
    };
    for (name, spec) in &file.topics {
        let wanted = spec.config();
        if !existing.contains(name) {
            plan.changes.push((
                Change::Create(name.clone(), Box::new(spec.clone())),
                format!(
                    "create topic {name} partitions={} tenancy={} require_schemas={}",
                    wanted.partitions,
                    spec.governance().tenancy.as_str(),
                    spec.governance().require_schemas
                ),
            ));
            continue;
        }
        let current = fabric.topic_info(name)?.config;
        match wanted.partitions.cmp(&current.partitions) {
            std::cmp::Ordering::Greater => plan.changes.push((
                Change::Grow(name.clone(), wanted.partitions),
                format!(
                    "grow topic {name} partitions {} -> {}",
                    current.partitions, wanted.partitions
                ),
            )),
            std::cmp::Ordering::Less => plan.blockers.push(format!(
                "topic {name}: partitions {} -> {}: partitions only grow",
                current.partitions, wanted.partitions
            )),
            std::cmp::Ordering::Equal => {}
        }
        let mut want = wanted.clone();
        want.partitions = current.partitions;
        want.governance = spec.governance();
        if want != current {
            let shrinks = matches!((want.retention_ms, current.retention_ms), (Some(w), c) if c.is_none_or(|c| w < c));
            plan.blockers.push(format!(
                "topic {name}: settings differ from the data directory{}; this build applies only partition growth to an existing topic (recreate it, or change the file)",
                if shrinks { " (retention shrinks: destructive)" } else { "" }
            ));
        }
    }
    for name in &existing {
        if !file.topics.contains_key(name) && !name.ends_with(".dlq") {
            if args.allow_destructive {
                plan.changes
                    .push((Change::Delete(name.clone()), format!("delete topic {name}")));
            } else {
                plan.blockers.push(format!(
                    "topic {name} is not in the file: deleting it needs --allow-destructive"
                ));
            }
        }
    }
    drop(fabric);
    let catalog = Catalog::open(data)?;
    for (event_type, spec) in &file.schemas {
        for v in &spec.versions {
            if catalog.version(event_type, v.version.as_str()).is_none() {
                plan.changes.push((
                    Change::Register(event_type.clone(), v.clone()),
                    format!("register schema {event_type} {}", v.version),
                ));
            }
        }
    }
    let acls = Acls::open(data)?;
    if acls.rules() != file.acls.as_slice() {
        plan.changes.push((
            Change::Acls,
            format!(
                "replace acls: {} rules -> {} rules",
                acls.rules().len(),
                file.acls.len()
            ),
        ));
    }
    let quotas = quota::load(data)?;
    if quotas != file.quotas {
        plan.changes.push((
            Change::Quotas,
            format!(
                "replace quotas: {} rules -> {} rules",
                quotas.len(),
                file.quotas.len()
            ),
        ));
    }
    Ok((plan, file))
}

/// Runs `fabric plan`: one line per change, blockers on stderr (exit 1).
pub(crate) fn plan(data: &Path, args: PlanArgs, tiers: &FabricConfig) -> CliResult {
    let (plan, _) = make_plan(data, &args, tiers)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (_, line) in &plan.changes {
        writeln!(out, "{line}")?;
    }
    for blocker in &plan.blockers {
        eprintln!("fabric: blocked: {blocker}");
    }
    eprintln!(
        "fabric: {} changes, {} blocked",
        plan.changes.len(),
        plan.blockers.len()
    );
    Ok(if plan.blockers.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs `fabric apply`: refuses everything while anything is blocked;
/// otherwise applies each change (each one crash-safe on its own, and a
/// re-run after a crash converges: applied changes drop out of the plan).
pub(crate) fn apply(data: &Path, args: PlanArgs, tiers: &FabricConfig) -> CliResult {
    let (plan, file) = make_plan(data, &args, tiers)?;
    if !plan.blockers.is_empty() {
        return Err(format!("nothing applied: {}", plan.blockers.join("; ")).into());
    }
    let base = args.file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let fabric = Fabric::open(data, tiers.clone())?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // Schemas first, so a topic that requires them validates from its first event.
    let mut catalog = Catalog::open(data)?;
    for (change, line) in &plan.changes {
        if let Change::Register(event_type, v) = change {
            let schema_path = base.join(&v.path);
            let schema = serde_json::from_slice(
                &std::fs::read(&schema_path)
                    .map_err(|e| format!("{}: {e}", schema_path.display()))?,
            )?;
            let spec = &file.schemas[event_type];
            let candidate = SchemaCandidate {
                event_type: event_type.clone(),
                version: v.version.clone(),
                schema,
                compat: spec.compat,
                tags: v.tags.clone(),
                owner: spec.owner.clone(),
                changelog: v.changelog.clone(),
                migration: v.migration.clone(),
                require_classification: true,
            };
            let verdict = catalog.add(candidate)?;
            if !verdict.accepted() {
                let rules: Vec<String> = verdict.violations.iter().map(|v| v.to_string()).collect();
                return Err(format!("{line}: refused: {}", rules.join("; ")).into());
            }
            writeln!(out, "{line}")?;
        }
    }
    for (change, line) in &plan.changes {
        match change {
            Change::Create(name, spec) => {
                let mut config = spec.config();
                config.governance = spec.governance();
                fabric.create_topic(name, config)?;
            }
            Change::Grow(name, to) => fabric.add_partitions(name, *to)?,
            Change::Delete(name) => fabric.delete_topic(name)?,
            Change::Acls => Acls::open(data)?.replace(file.acls.clone())?,
            Change::Quotas => quota::store(data, &file.quotas)?,
            Change::Register(..) => continue,
        }
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    fabric.close()?;
    eprintln!("fabric: applied {} changes", plan.changes.len());
    Ok(ExitCode::SUCCESS)
}
