//! `fabric consume TOPIC`: a topic's envelopes as newline-delimited JSON,
//! from a position or as a consumer group (`--group`, `--commit`).
//!
//! Read-only: it must never take the data directory's writer lock, and with
//! `--commit` it must never commit an event it did not print.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use eventfabric::{Fabric, FabricConfig, StartFrom};

use crate::shared::{CliResult, event_line, fail, group_in_use, print_raw};

/// Arguments of `consume`.
#[derive(Args, Debug)]
pub(crate) struct ConsumeArgs {
    /// The topic.
    pub(crate) topic: String,
    /// earliest, latest, an OFFSET (in every partition) or an RFC 3339 time (emitted_at).
    #[arg(long, default_value = "earliest")]
    from: String,
    /// Read only this partition.
    #[arg(long)]
    partition: Option<u32>,
    /// Stop after this many events.
    #[arg(long)]
    max: Option<u64>,
    /// Keep waiting for new events (also those of another, writing process).
    #[arg(long)]
    follow: bool,
    /// Read as consumer group G: resume from G's committed cursors (--from is ignored).
    #[arg(long, value_name = "G")]
    group: Option<String>,
    /// With --group: commit what was printed.
    #[arg(long, requires = "group")]
    commit: bool,
}

/// `--from`: earliest, latest, an offset (of `partition` when given, else of
/// every partition) or an RFC 3339 time.
fn parse_from(from: &str, partition: Option<u32>) -> CliResult<StartFrom> {
    Ok(match from {
        "earliest" => StartFrom::Earliest,
        "latest" => StartFrom::Latest,
        s if s.bytes().all(|b| b.is_ascii_digit()) => {
            let offset: u64 = s.parse()?;
            match partition {
                Some(p) => StartFrom::Offsets(BTreeMap::from([(p, offset)])),
                None => StartFrom::Offset(offset),
            }
        }
        s => match s.parse::<jiff::Timestamp>() {
            Ok(t) => StartFrom::Time(t),
            Err(e) => {
                return fail(format!(
                    "--from {s:?} is not earliest, latest, an offset or an RFC 3339 time ({e}); e.g. --from 2026-06-10T12:30:00Z"
                ));
            }
        },
    })
}

/// Prints `args.topic` from `--from` (or as `--group`) until the end, `--max`
/// events, or forever with `--follow`.
pub(crate) fn run(data: &Path, args: ConsumeArgs, tiers: &FabricConfig) -> CliResult {
    if args.group.is_some() {
        return consume_group(data, args, tiers);
    }
    let fabric = Fabric::open_read_only_with(data, tiers)?;
    let from = parse_from(&args.from, args.partition)?;
    let mut reader = fabric.reader(&args.topic, from)?;
    if let Some(p) = args.partition {
        reader = reader.with_partitions(&[p])?;
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let max = args.max.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    'outer: loop {
        for event in reader.by_ref() {
            if printed >= max {
                break 'outer;
            }
            let line = event_line(&event?);
            if writeln!(out, "{line}").is_err() {
                // The reader of our output went away (e.g. `| head`): done.
                return Ok(ExitCode::SUCCESS);
            }
            printed += 1;
        }
        if out.flush().is_err() {
            return Ok(ExitCode::SUCCESS);
        }
        if !args.follow || printed >= max {
            break;
        }
        reader.wait(Duration::from_secs(1))?;
    }
    let _ = out.flush();
    Ok(ExitCode::SUCCESS)
}

/// `consume --group G [--commit]`: a member of G on a read-only view; its
/// commits are safe beside a writer process thanks to G's cursor-log lock.
fn consume_group(data: &Path, args: ConsumeArgs, tiers: &FabricConfig) -> CliResult {
    let group = args.group.as_deref().unwrap_or_default();
    let fabric = Fabric::open_read_only_with(data, tiers)?;
    let mut config = eventfabric::ConsumerConfig::default();
    config.auto_commit_interval = None;
    let mut consumer = fabric
        .consumer(group, &args.topic, config)
        .map_err(|e| group_in_use(e, group, &args.topic))?;
    if let Some(p) = args.partition {
        for other in consumer.assignment().to_vec() {
            if other != p {
                consumer.pause(other)?;
            }
        }
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let max = args.max.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    let mut closed = false;
    while printed < max && !closed {
        let wait = if args.follow {
            Duration::from_secs(1)
        } else {
            Duration::ZERO
        };
        let want = (max - printed).min(500) as usize;
        let batch = consumer_poll(&mut consumer, wait, want)?;
        if batch.is_empty() && !args.follow {
            break;
        }
        for event in &batch {
            if !print_raw(&mut out, event)? {
                closed = true;
                break;
            }
            printed += 1;
        }
        if out.flush().is_err() {
            closed = true;
        }
        if args.commit && !closed {
            consumer.commit()?;
        }
    }
    let _ = out.flush();
    Ok(ExitCode::SUCCESS)
}

/// Polls at most `want` events: the CLI must never take more than it
/// prints, or `--commit` would commit events nobody saw.
fn consumer_poll(
    consumer: &mut eventfabric::Consumer,
    wait: Duration,
    want: usize,
) -> CliResult<Vec<eventfabric::RawEvent>> {
    consumer.set_max_poll_records(want)?;
    Ok(consumer.poll(wait)?)
}
