//! `fabric produce TOPIC`: newline-delimited JSON envelopes from stdin
//! appended to a topic, with optional per-line acks once durable.
//!
//! A line that is not a valid envelope is reported by its line number and
//! skipped; it must never stop or lose the lines accepted around it.

use std::io::{BufRead, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use eventfabric::{Draft, Envelope, Fabric, FabricConfig, FsyncPolicy, PublishOutcome, Published};
use serde_json::{Value, json};

use crate::shared::CliResult;

/// Arguments of `produce`.
#[derive(Args, Debug)]
pub(crate) struct ProduceArgs {
    /// The topic (must exist).
    pub(crate) topic: String,
    /// Override the topic's fsync policy for this run: always, group or os.
    #[arg(long)]
    fsync: Option<FsyncPolicy>,
    /// Print {"line":N,"event_id":"...","partition":P,"offset":O} per record once durable
    /// (a duplicate adds "duplicate_of":{"partition":P,"offset":O}; a sampled-away
    /// system event prints "dropped":"sampled" and no offset).
    #[arg(long)]
    acks: bool,
    /// The `source` stamped on events that lack one.
    #[arg(long, default_value = "fabric-cli")]
    source: String,
}

/// Lines read and not yet appended: their numbers and envelopes.
#[derive(Default)]
struct Pending {
    lines: Vec<u64>,
    envelopes: Vec<Envelope>,
}

/// Appends stdin's envelopes to `args.topic`; exit status 1 when any line
/// was rejected.
pub(crate) fn run(data: &Path, args: ProduceArgs, tiers: &FabricConfig) -> CliResult {
    let mut config = tiers.clone();
    config.fsync = args.fsync;
    let fabric = Fabric::open(data, config)?;
    let mut producer = fabric.producer(&args.topic, &args.source)?;
    let policy = args
        .fsync
        .unwrap_or(fabric.topic_info(&args.topic)?.config.fsync);
    let stdin = std::io::stdin();
    let mut input = std::io::BufReader::with_capacity(1 << 16, stdin.lock());
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let (mut line_no, mut produced, mut rejected) = (0u64, 0u64, 0u64);
    let mut pending = Pending::default();
    let mut line = Vec::new();
    // With --acks: None = no acks; Some(true) = flush before acking (group commit).
    let acks_flush = args.acks.then_some(policy == FsyncPolicy::Group);
    loop {
        line.clear();
        let n = input.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let text = line.trim_ascii();
        if !text.is_empty() {
            match Draft::from_json(text).and_then(|d| producer.prepare(d)) {
                Ok(envelope) => match producer.check_schema(&envelope) {
                    Ok(()) => {
                        pending.lines.push(line_no);
                        pending.envelopes.push(envelope);
                    }
                    Err(e) => {
                        // The schema catalog's refusal: every pointer and
                        // keyword, never a payload value.
                        rejected += 1;
                        eprintln!("fabric: line {line_no} rejected, not appended: {e}");
                    }
                },
                Err(e) => {
                    rejected += 1;
                    let fields: Vec<String> = e
                        .problems
                        .iter()
                        .map(|p| format!("{}: {}", p.field, p.reason))
                        .collect();
                    eprintln!(
                        "fabric: line {line_no} rejected, not appended: {}",
                        fields.join("; ")
                    );
                }
            }
        }
        // Append what we have whenever no more input is buffered, so an
        // interactive writer gets its acks without waiting for a full batch.
        if pending.lines.len() >= 1000 || input.buffer().is_empty() {
            produced += append_pending(&mut producer, &mut pending, &mut out, acks_flush)?;
        }
    }
    produced += append_pending(&mut producer, &mut pending, &mut out, acks_flush)?;
    out.flush()?;
    fabric.close()?;
    eprintln!(
        "fabric: produced {produced} events to {} from {line_no} lines; {rejected} rejected",
        args.topic
    );
    Ok(if rejected > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Appends the pending lines as one publish_batch; with acks, prints one ack
/// per line once durable under the policy. Returns how many were appended.
fn append_pending(
    producer: &mut eventfabric::Producer,
    pending: &mut Pending,
    out: &mut impl Write,
    acks_flush: Option<bool>,
) -> CliResult<u64> {
    if pending.lines.is_empty() {
        return Ok(0);
    }
    let published = producer.publish_batch(&pending.envelopes)?;
    if let Some(flush) = acks_flush {
        if flush {
            producer.flush()?;
        }
        for ((n, e), p) in pending.lines.iter().zip(&pending.envelopes).zip(&published) {
            writeln!(out, "{}", ack_line(*n, e, p))?;
        }
        out.flush()?;
    }
    let n = published
        .iter()
        .filter(|p| p.outcome == PublishOutcome::Appended)
        .count() as u64;
    pending.lines.clear();
    pending.envelopes.clear();
    Ok(n)
}

/// One `produce --acks` line: the position, plus `duplicate_of` for an event
/// the topic already held (nothing appended) or `dropped` for a sampled one.
fn ack_line(line: u64, envelope: &Envelope, p: &Published) -> Value {
    let id = envelope.event_id.hyphenated().to_string();
    match p.outcome {
        PublishOutcome::Appended => {
            json!({"line": line, "event_id": id, "partition": p.partition, "offset": p.offset})
        }
        PublishOutcome::Duplicate => json!({"line": line, "event_id": id,
            "partition": p.partition, "offset": p.offset,
            "duplicate_of": {"partition": p.partition, "offset": p.offset}}),
        PublishOutcome::Dropped => json!({"line": line, "event_id": id,
            "partition": p.partition, "dropped": "sampled"}),
    }
}
