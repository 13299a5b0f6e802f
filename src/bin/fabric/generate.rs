//! `fabric gen EVENT_TYPE`: deterministic fixture events as newline-delimited
//! JSON (the same seed prints the same events).
//!
//! It must never touch a data directory.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use clap::Args;
use eventfabric::fixtures::{FixtureGenerator, FixtureKind};

use crate::shared::{CliResult, fail};

/// Arguments of `gen`.
#[derive(Args, Debug)]
pub(crate) struct GenArgs {
    /// billing.invoice.issued, auth.user.login_succeeded, workflow.instance.completed or mixed.
    event_type: String,
    /// How many events.
    #[arg(long)]
    count: u64,
    /// Seed: the same seed prints the same events.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Spread events over this many tenants.
    #[arg(long, default_value_t = 10)]
    tenants: u32,
}

/// The fixture kinds of `event_type` (all of them for `mixed`).
fn kinds_for(event_type: &str) -> CliResult<Vec<FixtureKind>> {
    if event_type == "mixed" {
        return Ok(FixtureKind::all().to_vec());
    }
    match FixtureKind::from_event_type(event_type) {
        Some(k) => Ok(vec![k]),
        None => fail(format!(
            "no fixture generator for event type {event_type:?}: use billing.invoice.issued, auth.user.login_succeeded, workflow.instance.completed or mixed"
        )),
    }
}

/// Prints `args.count` fixture events of `args.event_type` to stdout.
pub(crate) fn run(args: GenArgs) -> CliResult {
    let kinds = kinds_for(&args.event_type)?;
    let mut generator = FixtureGenerator::new(args.seed, args.tenants);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for i in 0..args.count {
        let kind = kinds[(i % kinds.len() as u64) as usize];
        let mut line = generator.next(kind).to_json();
        line.push(b'\n');
        if out.write_all(&line).is_err() {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let _ = out.flush();
    Ok(ExitCode::SUCCESS)
}
