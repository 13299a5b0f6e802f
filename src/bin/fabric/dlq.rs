//! `fabric dlq list|show|replay`: the dead letters of a topic (`<topic>.dlq`),
//! filtered, and publishing them back into the topic.
//!
//! `list` and `show` are read-only; `replay` must never publish a letter
//! twice (the replay log makes it at most once).

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use eventfabric::{Fabric, FabricConfig};
use serde_json::json;

use crate::shared::{CliResult, fail};

/// The `dlq` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum DlqCommand {
    /// Print the dead letters of TOPIC as JSON lines, every field (read-only).
    List(DlqListArgs),
    /// Print one dead letter, by --offset P:O of the .dlq topic or by --event-id (read-only).
    Show(DlqShowArgs),
    /// Publish dead letters back into TOPIC, each at most once, rate-limited.
    Replay(DlqReplayArgs),
}

/// The letter filter flags shared by `dlq list` and `dlq replay`.
#[derive(Args, Debug)]
struct DlqFilterArgs {
    /// Only this reason: handler_error, max_attempts_exceeded, schema_violation, expired,
    /// deserialization_failure or rejected_by_policy.
    #[arg(long)]
    reason: Option<String>,
    /// Dead-lettered at or after this RFC 3339 time.
    #[arg(long)]
    from: Option<String>,
    /// Dead-lettered before this RFC 3339 time.
    #[arg(long)]
    to: Option<String>,
    /// Only the letter of this original event_id.
    #[arg(long)]
    event_id: Option<String>,
}

/// Arguments of `dlq list`.
#[derive(Args, Debug)]
pub(crate) struct DlqListArgs {
    /// The source topic (its dead letters are in TOPIC.dlq).
    topic: String,
    #[command(flatten)]
    filter: DlqFilterArgs,
}

/// Arguments of `dlq show`.
#[derive(Args, Debug)]
pub(crate) struct DlqShowArgs {
    /// The source topic.
    topic: String,
    /// PARTITION:OFFSET of the letter in TOPIC.dlq.
    #[arg(
        long,
        conflicts_with = "event_id",
        required_unless_present = "event_id"
    )]
    offset: Option<String>,
    /// The original event_id.
    #[arg(long)]
    event_id: Option<String>,
}

/// Arguments of `dlq replay`.
#[derive(Args, Debug)]
pub(crate) struct DlqReplayArgs {
    /// The source topic to replay into.
    topic: String,
    #[command(flatten)]
    filter: DlqFilterArgs,
    /// At most this many per second, e.g. 100/s (default: unlimited).
    #[arg(long)]
    rate: Option<String>,
}

/// The letter filter of `--reason`, `--from`, `--to` and `--event-id`.
fn dlq_filter(args: &DlqFilterArgs) -> CliResult<eventfabric::DlqFilter> {
    let time = |flag: &str, s: &Option<String>| -> CliResult<Option<jiff::Timestamp>> {
        match s {
            None => Ok(None),
            Some(s) => match s.parse::<jiff::Timestamp>() {
                Ok(t) => Ok(Some(t)),
                Err(e) => fail(format!(
                    "--{flag} {s:?} is not an RFC 3339 time ({e}); e.g. 2026-06-10T12:30:00Z"
                )),
            },
        }
    };
    let event_id = match &args.event_id {
        None => None,
        Some(id) => match uuid::Uuid::parse_str(id) {
            Ok(id) => Some(id),
            Err(e) => return fail(format!("--event-id {id:?} is not a UUID ({e})")),
        },
    };
    let filter = eventfabric::DlqFilter {
        reason: args.reason.as_deref().map(str::parse).transpose()?,
        from: time("from", &args.from)?,
        to: time("to", &args.to)?,
        event_id,
    };
    Ok(filter)
}

/// Runs one `dlq` subcommand on the dead letters of a topic in `data`.
pub(crate) fn run(data: &Path, cmd: DlqCommand, tiers: &FabricConfig) -> CliResult {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match cmd {
        DlqCommand::List(args) => {
            let fabric = Fabric::open_read_only_with(data, tiers)?;
            let letters = fabric.dead_letters(&args.topic)?;
            // Streamed: each letter is printed as it is read, so a DLQ of
            // any size lists in constant memory, and the letters before a
            // damaged record are out before its error.
            for entry in letters.iter(&dlq_filter(&args.filter)?)? {
                let entry = entry?;
                if writeln!(out, "{}", entry.to_json()).is_err() {
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
        DlqCommand::Show(args) => {
            let fabric = Fabric::open_read_only_with(data, tiers)?;
            let letters = fabric.dead_letters(&args.topic)?;
            let entry = match (&args.offset, &args.event_id) {
                (Some(at), _) => {
                    let parsed = at
                        .split_once(':')
                        .and_then(|(p, o)| Some((p.parse::<u32>().ok()?, o.parse::<u64>().ok()?)));
                    let Some((p, o)) = parsed else {
                        return fail(format!(
                            "--offset {at:?} is not PARTITION:OFFSET, e.g. 0:42"
                        ));
                    };
                    letters.get(p, o)?
                }
                (None, _) => {
                    let filter = dlq_filter(&DlqFilterArgs {
                        reason: None,
                        from: None,
                        to: None,
                        event_id: args.event_id.clone(),
                    })?;
                    match letters.iter(&filter)?.next().transpose()? {
                        Some(e) => e,
                        None => {
                            return fail(format!(
                                "no dead letter of {} carries event_id {}",
                                args.topic,
                                args.event_id.unwrap_or_default()
                            ));
                        }
                    }
                }
            };
            writeln!(out, "{}", entry.to_json())?;
        }
        DlqCommand::Replay(args) => {
            let rate = match &args.rate {
                None => None,
                Some(r) => match r.trim_end_matches("/s").parse::<f64>() {
                    Ok(n) if n.is_finite() && n > 0.0 => Some(n),
                    _ => return fail(format!("--rate {r:?} is not a positive N/s, e.g. 100/s")),
                },
            };
            let filter = dlq_filter(&args.filter)?;
            let fabric = Fabric::open(data, tiers.clone())?;
            let report = fabric.dead_letters(&args.topic)?.replay(&filter, rate)?;
            for r in &report.replayed {
                let line = json!({
                    "dlq_partition": r.dlq_partition,
                    "dlq_offset": r.dlq_offset,
                    "event_id": r.event_id.hyphenated().to_string(),
                    "partition": r.published.partition,
                    "offset": r.published.offset,
                });
                writeln!(out, "{line}")?;
            }
            for (p, o, why) in &report.unreplayable {
                eprintln!("fabric: dead letter {p}:{o} not replayed: {why}");
            }
            eprintln!(
                "replayed {} dead letters into {}; {} already replayed, {} unreplayable, {} interrupted replays found complete",
                report.replayed.len(),
                args.topic,
                report.already_replayed,
                report.unreplayable.len(),
                report.resolved_in_doubt
            );
            out.flush()?;
            fabric.close()?;
        }
    }
    let _ = out.flush();
    Ok(ExitCode::SUCCESS)
}
