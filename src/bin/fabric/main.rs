//! `fabric`: the command line of eventfabric — topics, produce, consume,
//! inspect, verify, fixtures and benchmarks on one data directory.
//!
//! This binary owns argument parsing, NDJSON in and out and exit statuses.
//! It must never hold the data directory as writer for a read-only command
//! (`consume`, `inspect`, `verify` without `--repair`, `topic list`), so those
//! work while another process writes.
//!
//! This file owns the top of the clap tree (global flags, the list of
//! subcommands) and the dispatch to one module per subcommand family; it must
//! never hold a subcommand's logic. What several subcommands share (the
//! failure type and exit statuses, event and archive JSON, position parsing)
//! is in `shared`, written once.

mod acl;
mod bench;
mod consume;
mod dlq;
mod generate;
mod group;
mod inspect;
mod metrics;
mod plan;
mod produce;
mod quota;
mod replay;
mod retention;
mod schema;
mod shared;
mod snapshot;
mod stats;
mod top;
mod topic;
mod ui;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::shared::{CliResult, data_dir};

/// eventfabric's command line: topics, produce, consume, inspect, verify, gen, bench.
#[derive(Parser, Debug)]
#[command(name = "fabric", version, about, long_about = None)]
struct Cli {
    /// The data directory (created by the first writing command).
    #[arg(long, global = true, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Where the tiers live (warm and cold directories, the S3 warm tier).
    #[command(flatten)]
    tier_flags: shared::TierFlags,
    /// Run `produce` and `consume` as this principal, checked against the
    /// data directory's ACLs (default: the host principal, `host`).
    #[arg(long, global = true, value_name = "NAME")]
    principal: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// The subcommands, in the order `--help` lists them.
#[derive(Subcommand, Debug)]
enum Command {
    /// Create, list, delete topics and add partitions.
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// Append newline-delimited JSON envelopes from stdin to TOPIC.
    Produce(produce::ProduceArgs),
    /// Print a topic's envelopes as newline-delimited JSON (read-only).
    Consume(consume::ConsumeArgs),
    /// Show topics, partitions, segments, offset and time ranges (read-only).
    Inspect(inspect::InspectArgs),
    /// Check every segment, index and footer, the checkpoints, warm and cold
    /// archives and state logs; exit 1 when damage is found.
    Verify(verify::VerifyArgs),
    /// Print deterministic fixture events as newline-delimited JSON.
    Gen(generate::GenArgs),
    /// Measure produce or consume throughput and latency.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Export a topic (or some partitions, over a range) into one snapshot file.
    Export(snapshot::ExportArgs),
    /// Import a snapshot file as a new topic or into an existing one.
    Import(snapshot::ImportArgs),
    /// Show or apply a topic's retention policy (hot, warm and cold tiers).
    #[command(subcommand)]
    Retention(retention::RetentionCommand),
    /// List, describe and reset consumer groups.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Re-read a range of TOPIC into a consumer group, printing the events.
    Replay(replay::ReplayArgs),
    /// List, show and replay dead letters of a topic (`<topic>.dlq`).
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Register, check, list and show event schemas (the data directory's catalog).
    #[command(subcommand)]
    Schema(schema::SchemaCommand),
    /// Lint a topics file (no data directory needed): `FILE:LINE: RULE: message`
    /// lines and exit 1 on findings, a one-line summary and exit 0 otherwise.
    Check(plan::CheckArgs),
    /// Add, remove and list ACL rules (principal, tenant, operation, resource, allow|deny).
    #[command(subcommand)]
    Acl(acl::AclCommand),
    /// Set and list quotas per tenant and per producer.
    #[command(subcommand)]
    Quota(quota::QuotaCommand),
    /// Print what `apply` would change in the data directory for a topics file.
    Plan(plan::PlanArgs),
    /// Apply a topics file: register its schemas, create and grow its topics,
    /// replace ACLs and quotas (deleting topics needs --allow-destructive).
    Apply(plan::PlanArgs),
    /// One snapshot of the data directory: offsets, tier sizes, DLQ sizes,
    /// group lag (read-only; `--json` for the `Fabric::stats` document).
    Stats(stats::StatsArgs),
    /// The same snapshot as Prometheus text exposition on stdout (read-only).
    Metrics,
    /// A live terminal view: publish/consume rates, lag per group, DLQ
    /// growth, refreshed from successive snapshots (read-only; `q` quits).
    Top(top::TopArgs),
    /// The local web console on loopback: topics, groups, queues, a DLQ
    /// browser (read-only; replay only with --allow-replay).
    Ui(ui::UiArgs),
}

/// Parses the arguments, runs the command, and prints a failure as one
/// `fabric: error:` line on stderr with its exit status.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("fabric: error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// Runs the parsed command; a failure carries its message and exit status.
fn run(cli: Cli) -> CliResult {
    let tiers = cli.tier_flags.fabric_config();
    match cli.command {
        Command::Topic(cmd) => topic::run(data_dir(&cli.data)?, cmd, &tiers),
        Command::Produce(args) => {
            let data = data_dir(&cli.data)?;
            let op = eventfabric::governance::Operation::Produce;
            acl::authorize(data, cli.principal.as_deref(), op, &args.topic)?;
            produce::run(data, args, &tiers)
        }
        Command::Consume(args) => {
            let data = data_dir(&cli.data)?;
            let op = eventfabric::governance::Operation::Consume;
            acl::authorize(data, cli.principal.as_deref(), op, &args.topic)?;
            consume::run(data, args, &tiers)
        }
        Command::Inspect(args) => inspect::run(data_dir(&cli.data)?, args, &tiers),
        Command::Verify(args) => verify::run(data_dir(&cli.data)?, args, &tiers),
        Command::Gen(args) => generate::run(args),
        Command::Bench(bench::BenchCommand::Produce(args)) => {
            bench::produce(data_dir(&cli.data)?, args, &tiers)
        }
        Command::Export(args) => snapshot::export(data_dir(&cli.data)?, args, &tiers),
        Command::Import(args) => snapshot::import(data_dir(&cli.data)?, args, &tiers),
        Command::Bench(bench::BenchCommand::Consume(args)) => {
            bench::consume(data_dir(&cli.data)?, args, &tiers)
        }
        Command::Retention(cmd) => retention::run(data_dir(&cli.data)?, tiers, cmd),
        Command::Group(cmd) => group::run(data_dir(&cli.data)?, cmd, &tiers),
        Command::Replay(args) => replay::run(data_dir(&cli.data)?, args, &tiers),
        Command::Dlq(cmd) => dlq::run(data_dir(&cli.data)?, cmd, &tiers),
        Command::Schema(cmd) => schema::run(data_dir(&cli.data)?, cmd, &tiers),
        Command::Check(args) => plan::check(args),
        Command::Acl(cmd) => acl::run(data_dir(&cli.data)?, cmd, &tiers),
        Command::Quota(cmd) => quota::run(data_dir(&cli.data)?, cmd, &tiers),
        Command::Plan(args) => plan::plan(data_dir(&cli.data)?, args, &tiers),
        Command::Apply(args) => plan::apply(data_dir(&cli.data)?, args, &tiers),
        Command::Stats(args) => stats::run(data_dir(&cli.data)?, args, &tiers),
        Command::Metrics => metrics::run(data_dir(&cli.data)?, &tiers),
        Command::Top(args) => top::run(data_dir(&cli.data)?, args, &tiers),
        Command::Ui(args) => ui::run(data_dir(&cli.data)?, args, &tiers),
    }
}
