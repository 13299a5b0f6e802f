//! `fabric replay TOPIC --group G --from ...`: a range of a topic re-read into
//! a consumer group, printing the events, rate-limited.
//!
//! It must never commit an event it did not print (stdout closing stops it
//! before the commit).

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use eventfabric::{Fabric, FabricConfig};

use crate::shared::{CliResult, Position, fail, group_in_use, parse_position, print_raw};

/// Arguments of `replay`.
#[derive(Args, Debug)]
pub(crate) struct ReplayArgs {
    /// The topic.
    topic: String,
    /// The consumer group the replay commits to (may be new).
    #[arg(long)]
    group: String,
    /// Start: an OFFSET (every partition) or an RFC 3339 time (emitted_at), inclusive.
    #[arg(long)]
    from: String,
    /// End: an OFFSET or an RFC 3339 time, exclusive (default: the end when the replay starts).
    #[arg(long)]
    to: Option<String>,
    /// Most events per second, e.g. 500/s or 500.
    #[arg(long)]
    rate: Option<String>,
}

/// `--from`/`--to` of `replay`: an offset or an RFC 3339 time.
fn replay_bound(flag: &str, value: &str) -> CliResult<eventfabric::ReplayBound> {
    use eventfabric::ReplayBound;
    Ok(match parse_position(flag, value, "2026-06-10T14:00:00Z")? {
        Position::Offset(offset) => ReplayBound::Offset(offset),
        Position::Time(t) => ReplayBound::Time(t),
    })
}

/// Replays `args.topic` into `args.group` and prints what it replays.
pub(crate) fn run(data: &Path, args: ReplayArgs, tiers: &FabricConfig) -> CliResult {
    use eventfabric::ReplayConfig;
    let fabric = Fabric::open_read_only_with(data, tiers)?;
    let mut config = ReplayConfig::new(replay_bound("--from", &args.from)?);
    if let Some(to) = &args.to {
        config.to = Some(replay_bound("--to", to)?);
    }
    if let Some(rate) = &args.rate {
        let number = rate.strip_suffix("/s").unwrap_or(rate);
        match number.parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 => config.rate = Some(r),
            _ => {
                return fail(format!(
                    "--rate {rate:?} is not a positive number of events per second, e.g. --rate 500/s"
                ));
            }
        }
    }
    config.consumer.auto_commit_interval = None;
    let mut session = fabric
        .replay(&args.topic, &args.group, config)
        .map_err(|e| group_in_use(e, &args.group, &args.topic))?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    while !session.is_done() {
        let batch = session.poll(Duration::from_secs(1))?;
        for event in &batch {
            if !print_raw(&mut out, event)? {
                // Stdout went away: commit nothing beyond what was surely printed.
                return Ok(ExitCode::SUCCESS);
            }
        }
        if out.flush().is_err() {
            return Ok(ExitCode::SUCCESS);
        }
        session.commit()?;
    }
    session.finish()?;
    Ok(ExitCode::SUCCESS)
}
