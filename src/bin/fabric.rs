//! `fabric`: the command line of eventfabric — topics, produce, consume,
//! inspect, verify, fixtures and benchmarks on one data directory.
//!
//! This binary owns argument parsing, NDJSON in and out and exit statuses.
//! It must never hold the data directory as writer for a read-only command
//! (`consume`, `inspect`, `verify` without `--repair`, `topic list`), so those
//! work while another process writes.

use std::collections::BTreeMap;
use std::io::{BufRead, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use eventfabric::fixtures::{FixtureGenerator, FixtureKind};
use eventfabric::{
    Draft, Envelope, Fabric, FabricConfig, FsyncPolicy, PublishOutcome, Published, ReadEvent,
    StartFrom, TopicConfig,
};
use serde_json::{Value, json};

/// eventfabric's command line: topics, produce, consume, inspect, verify, gen, bench.
#[derive(Parser, Debug)]
#[command(name = "fabric", version, about, long_about = None)]
struct Cli {
    /// The data directory (created by the first writing command).
    #[arg(long, global = true, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Where warm archive segments live (default: DATA/warm); give the same
    /// directory the host configures.
    #[arg(long, global = true, value_name = "DIR")]
    warm_dir: Option<PathBuf>,
    /// Where exported cold archive segments go (default: DATA/cold).
    #[arg(long, global = true, value_name = "DIR")]
    cold_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create, list, delete topics and add partitions.
    #[command(subcommand)]
    Topic(TopicCommand),
    /// Append newline-delimited JSON envelopes from stdin to TOPIC.
    Produce(ProduceArgs),
    /// Print a topic's envelopes as newline-delimited JSON (read-only).
    Consume(ConsumeArgs),
    /// Show topics, partitions, segments, offset and time ranges (read-only).
    Inspect(InspectArgs),
    /// Check every segment, index and footer, the checkpoints, warm and cold
    /// archives and state logs; exit 1 when damage is found.
    Verify(VerifyArgs),
    /// Print deterministic fixture events as newline-delimited JSON.
    Gen(GenArgs),
    /// Measure produce or consume throughput and latency.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Export a topic (or some partitions, over a range) into one snapshot file.
    Export(ExportArgs),
    /// Import a snapshot file as a new topic or into an existing one.
    Import(ImportArgs),
    /// Show or apply a topic's retention policy (hot, warm and cold tiers).
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// List, describe and reset consumer groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Re-read a range of TOPIC into a consumer group, printing the events.
    Replay(ReplayArgs),
    /// List, show and replay dead letters of a topic (`<topic>.dlq`).
    #[command(subcommand)]
    Dlq(DlqCommand),
}

#[derive(Subcommand, Debug)]
enum DlqCommand {
    /// Print the dead letters of TOPIC as JSON lines, every field (read-only).
    List(DlqListArgs),
    /// Print one dead letter, by --offset P:O of the .dlq topic or by --event-id (read-only).
    Show(DlqShowArgs),
    /// Publish dead letters back into TOPIC, each at most once, rate-limited.
    Replay(DlqReplayArgs),
}

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

#[derive(Args, Debug)]
struct DlqListArgs {
    /// The source topic (its dead letters are in TOPIC.dlq).
    topic: String,
    #[command(flatten)]
    filter: DlqFilterArgs,
}

#[derive(Args, Debug)]
struct DlqShowArgs {
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

#[derive(Args, Debug)]
struct DlqReplayArgs {
    /// The source topic to replay into.
    topic: String,
    #[command(flatten)]
    filter: DlqFilterArgs,
    /// At most this many per second, e.g. 100/s (default: unlimited).
    #[arg(long)]
    rate: Option<String>,
}

#[derive(Subcommand, Debug)]
enum GroupCommand {
    /// One JSON line per group: {"group":G,"topics":[...]}.
    List,
    /// One JSON line per topic/partition of group G: committed, end, lag, expired, members.
    Describe {
        /// The consumer group.
        group: String,
    },
    /// Move group G's cursors on a topic (refused while a member of G is live).
    Reset {
        /// The consumer group.
        group: String,
        /// The topic whose cursors move (default: every topic the group has cursors for).
        #[arg(long)]
        topic: Option<String>,
        /// earliest, latest, an OFFSET (every partition) or an RFC 3339 time (emitted_at).
        #[arg(long)]
        to: String,
    },
}

#[derive(Args, Debug)]
struct ReplayArgs {
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

#[derive(Subcommand, Debug)]
enum RetentionCommand {
    /// Print the policy, then one JSON line per partition with its tiers (read-only).
    Show {
        /// The topic.
        topic: String,
    },
    /// Apply the policy now: move segments between tiers; print the report as
    /// one JSON line (progress on stderr).
    Run {
        /// The topic.
        topic: String,
        /// Act as if the time were this RFC 3339 instant (default: now).
        #[arg(long)]
        now: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum TopicCommand {
    /// Create a topic; every topic setting has a flag.
    Create(CreateArgs),
    /// List topics with their partition counts and settings (read-only).
    List {
        /// Print one JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a topic and all its data.
    Delete {
        /// The topic to delete.
        topic: String,
        /// Confirm the deletion (required).
        #[arg(long)]
        yes: bool,
    },
    /// Grow a topic to more partitions (changes key → partition mapping for new events).
    AddPartitions {
        /// The topic to grow.
        topic: String,
        /// The new, larger partition count.
        #[arg(long)]
        partitions: u32,
    },
}

#[derive(Args, Debug)]
struct CreateArgs {
    /// Topic name: lowercase [a-z0-9_-] segments separated by dots (e.g. billing.domain.v1).
    topic: String,
    /// Number of partitions.
    #[arg(long)]
    partitions: u32,
    /// Segment size at which a partition rolls to a new segment file.
    #[arg(long)]
    segment_bytes: Option<u64>,
    /// Roll a non-empty segment older than this many milliseconds.
    #[arg(long)]
    segment_ms: Option<u64>,
    /// When appends count as done: always (fdatasync), group (group commit) or os.
    #[arg(long)]
    fsync: Option<FsyncPolicy>,
    /// Group commit: longest time an append stays unsynced, in milliseconds.
    #[arg(long)]
    group_commit_ms: Option<u64>,
    /// Group commit: unsynced bytes that trigger a sync at once.
    #[arg(long)]
    group_commit_bytes: Option<u64>,
    /// Largest encoded event accepted.
    #[arg(long)]
    max_record_bytes: Option<usize>,
    /// Largest encoded batch accepted.
    #[arg(long)]
    max_batch_bytes: Option<usize>,
    /// Log bytes between sparse index entries.
    #[arg(long)]
    index_interval_bytes: Option<u32>,
    /// Hot retention by age in milliseconds (default 7 days): older sealed
    /// segments move to warm (or get the cold action).
    #[arg(long)]
    retention_ms: Option<u64>,
    /// Hot retention by size in bytes per partition (default unlimited).
    #[arg(long)]
    retention_bytes: Option<u64>,
    /// Warm retention in milliseconds, from the record time; must exceed
    /// --retention-ms (default 0: no warm tier).
    #[arg(long)]
    warm_retention_ms: Option<u64>,
    /// What happens to data leaving the last readable tier: delete or export
    /// (to the cold directory).
    #[arg(long)]
    cold_action: Option<eventfabric::ColdAction>,
    /// Producer dedup window in milliseconds (default 120000; 0 turns dedup off).
    #[arg(long)]
    dedup_window_ms: Option<u64>,
    /// Most event ids the dedup cache holds (default 1000000).
    #[arg(long)]
    dedup_max_entries: Option<u64>,
    /// Drop (and count) `system.` events beyond this many per second.
    #[arg(long)]
    system_events_per_sec: Option<u32>,
}

#[derive(Args, Debug)]
struct ProduceArgs {
    /// The topic (must exist).
    topic: String,
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

#[derive(Args, Debug)]
struct ConsumeArgs {
    /// The topic.
    topic: String,
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

#[derive(Args, Debug)]
struct InspectArgs {
    /// Only this topic.
    topic: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// Truncate to the last valid record and rebuild indexes (takes the writer lock).
    #[arg(long)]
    repair: bool,
}

#[derive(Args, Debug)]
struct GenArgs {
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

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Publish generated seed-like envelopes through the full producer path.
    Produce(BenchProduceArgs),
    /// Read and decode every envelope of a topic.
    Consume(BenchConsumeArgs),
}

/// Default topic of the benchmarks (recreated by `bench produce`).
const SCRATCH_TOPIC: &str = "bench.scratch";

#[derive(Args, Debug)]
struct BenchProduceArgs {
    /// Topic to publish to (must exist); by default a scratch topic `bench.scratch` is recreated.
    #[arg(long)]
    topic: Option<String>,
    /// Events to publish in total.
    #[arg(long)]
    records: u64,
    /// Approximate encoded size of each event in bytes (payload padded up to it).
    #[arg(long, default_value_t = 300)]
    size: usize,
    /// Events per publish_batch call (1: publish one by one).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Fsync policy: always, group or os.
    #[arg(long, default_value = "os")]
    fsync: FsyncPolicy,
    /// Producer threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Partitions of the scratch topic.
    #[arg(long, default_value_t = 1)]
    partitions: u32,
    /// Print one JSON object with records, seconds, records_per_sec, mb_per_sec, p50_us, p99_us, p999_us.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct BenchConsumeArgs {
    /// Topic to read (default: the scratch topic of `bench produce`).
    #[arg(long)]
    topic: Option<String>,
    /// Stop after this many events (default: all).
    #[arg(long)]
    records: Option<u64>,
    /// Events per latency sample.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// full: build each owned envelope (payload as JSON); fields: decode and
    /// validate the envelope fields in place, payload left encoded.
    #[arg(long, default_value = "full", value_parser = ["full", "fields"])]
    decode: String,
    /// Print one JSON object with records, seconds, records_per_sec, mb_per_sec, p50_us, p99_us, p999_us.
    #[arg(long)]
    json: bool,
}

/// A failure to report: one sentence, then exit status 1 (or `code`).
struct Failure {
    message: String,
    code: u8,
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            message: e.to_string(),
            code: 1,
        }
    }
}

type CliResult<T = ExitCode> = Result<T, Failure>;

fn fail<T>(message: impl Into<String>) -> CliResult<T> {
    Err(Failure {
        message: message.into(),
        code: 2,
    })
}

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

fn data_dir(cli_data: &Option<PathBuf>) -> CliResult<&Path> {
    match cli_data {
        Some(d) => Ok(d),
        None => {
            fail("no data directory given: pass --data DIR (e.g. fabric --data ./data topic list)")
        }
    }
}

fn run(cli: Cli) -> CliResult {
    let mut tiers = FabricConfig::default();
    tiers.warm_dir = cli.warm_dir.clone();
    tiers.cold_dir = cli.cold_dir.clone();
    match cli.command {
        Command::Topic(cmd) => topic(data_dir(&cli.data)?, cmd, &tiers),
        Command::Produce(args) => produce(data_dir(&cli.data)?, args),
        Command::Consume(args) => consume(data_dir(&cli.data)?, args),
        Command::Inspect(args) => inspect(data_dir(&cli.data)?, args, &tiers),
        Command::Verify(args) => verify(data_dir(&cli.data)?, args, &tiers),
        Command::Gen(args) => gen_events(args),
        Command::Bench(BenchCommand::Produce(args)) => bench_produce(data_dir(&cli.data)?, args),
        Command::Export(args) => export(data_dir(&cli.data)?, args),
        Command::Import(args) => import(data_dir(&cli.data)?, args),
        Command::Bench(BenchCommand::Consume(args)) => bench_consume(data_dir(&cli.data)?, args),
        Command::Retention(cmd) => retention(data_dir(&cli.data)?, tiers, cmd),
        Command::Group(cmd) => group_command(data_dir(&cli.data)?, cmd),
        Command::Replay(args) => replay(data_dir(&cli.data)?, args),
        Command::Dlq(cmd) => dlq(data_dir(&cli.data)?, cmd),
    }
}

fn topic(data: &Path, cmd: TopicCommand, tiers: &FabricConfig) -> CliResult {
    match cmd {
        TopicCommand::Create(a) => {
            let mut c = TopicConfig::with_partitions(a.partitions);
            if let Some(v) = a.segment_bytes {
                c.segment_bytes = v;
            }
            c.segment_ms = a.segment_ms.or(c.segment_ms);
            if let Some(v) = a.fsync {
                c.fsync = v;
            }
            if let Some(v) = a.group_commit_ms {
                c.group_commit_ms = v;
            }
            if let Some(v) = a.group_commit_bytes {
                c.group_commit_bytes = v;
            }
            if let Some(v) = a.max_record_bytes {
                c.max_record_bytes = v;
            }
            if let Some(v) = a.max_batch_bytes {
                c.max_batch_bytes = v;
                // A smaller batch limit lowers the default record limit with it.
                if a.max_record_bytes.is_none() {
                    c.max_record_bytes = c.max_record_bytes.min(v / 2);
                }
            }
            if let Some(v) = a.index_interval_bytes {
                c.index_interval_bytes = v;
            }
            c.retention_ms = a.retention_ms.or(c.retention_ms);
            c.retention_bytes = a.retention_bytes.or(c.retention_bytes);
            if let Some(v) = a.warm_retention_ms {
                c.warm_retention_ms = v;
            }
            if let Some(v) = a.cold_action {
                c.cold_action = v;
            }
            if let Some(v) = a.dedup_window_ms {
                c.dedup_window_ms = v;
            }
            if let Some(v) = a.dedup_max_entries {
                c.dedup_max_entries = v;
            }
            c.system_events_per_sec = a.system_events_per_sec;
            let fabric = Fabric::open(data, tiers.clone())?;
            fabric.create_topic(&a.topic, c)?;
            fabric.close()?;
            eprintln!(
                "created topic {} with {} partitions in {}",
                a.topic,
                a.partitions,
                data.display()
            );
        }
        TopicCommand::List { json } => {
            let fabric = Fabric::open_read_only(data)?;
            let mut out = Vec::new();
            for name in fabric.topics() {
                out.push(fabric.topic_info(&name)?);
            }
            if json {
                println!("{}", serde_json::to_string(&out)?);
            } else {
                for t in out {
                    let records: u64 = t.offsets.iter().map(|(e, n)| n - e).sum();
                    println!(
                        "{}\tpartitions={}\tfsync={}\trecords={}",
                        t.name, t.config.partitions, t.config.fsync, records
                    );
                }
            }
        }
        TopicCommand::Delete { topic, yes } => {
            if !yes {
                return fail(format!(
                    "refusing to delete topic {topic} without --yes: it removes all its data; add --yes to confirm"
                ));
            }
            let fabric = Fabric::open(data, tiers.clone())?;
            fabric.delete_topic(&topic)?;
            fabric.close()?;
            eprintln!("deleted topic {topic} from {}", data.display());
        }
        TopicCommand::AddPartitions { topic, partitions } => {
            let fabric = Fabric::open(data, FabricConfig::default())?;
            fabric.add_partitions(&topic, partitions)?;
            fabric.close()?;
            eprintln!("topic {topic} now has {partitions} partitions");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Lines read and not yet appended: their numbers and envelopes.
#[derive(Default)]
struct Pending {
    lines: Vec<u64>,
    envelopes: Vec<Envelope>,
}

fn produce(data: &Path, args: ProduceArgs) -> CliResult {
    let mut config = FabricConfig::default();
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
                Ok(envelope) => {
                    pending.lines.push(line_no);
                    pending.envelopes.push(envelope);
                }
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

fn event_line(event: &ReadEvent) -> Value {
    let mut value = event.envelope.to_json_value();
    if let Value::Object(map) = &mut value {
        map.insert("_partition".into(), json!(event.partition));
        map.insert("_offset".into(), json!(event.offset));
    }
    value
}

fn consume(data: &Path, args: ConsumeArgs) -> CliResult {
    if args.group.is_some() {
        return consume_group(data, args);
    }
    let fabric = Fabric::open_read_only(data)?;
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

fn micros_to_rfc3339(micros: i64) -> String {
    jiff::Timestamp::from_microsecond(micros).map_or_else(|_| micros.to_string(), |t| t.to_string())
}

fn inspect(data: &Path, args: InspectArgs, tiers: &FabricConfig) -> CliResult {
    let fabric = Fabric::open_read_only_with(data, tiers)?;
    let names = match &args.topic {
        Some(t) => {
            fabric.topic_info(t)?;
            vec![t.clone()]
        }
        None => fabric.topics(),
    };
    let mut topics = Vec::new();
    for name in &names {
        let info = fabric.topic_info(name)?;
        let mut partitions = Vec::new();
        for p in 0..info.config.partitions {
            let log = fabric.partition(name, p)?;
            let first_ts = |offset: u64| -> Option<i64> {
                log.read(offset, eventfabric::ReadLimit::records(1))
                    .ok()
                    .and_then(|r| r.first().map(|r| r.timestamp))
            };
            let segments: Vec<Value> = log
                .segments()
                .iter()
                .map(|s| {
                    let min = (s.next_offset > s.base_offset)
                        .then(|| first_ts(s.base_offset))
                        .flatten();
                    json!({
                        "file": s.path.display().to_string(),
                        "base_offset": s.base_offset,
                        "next_offset": s.next_offset,
                        "size_bytes": s.size_bytes,
                        "sealed": s.sealed,
                        "first_time": min.map(micros_to_rfc3339),
                        "max_time": s.max_timestamp.map(micros_to_rfc3339),
                    })
                })
                .collect();
            let (earliest, next) = (log.earliest_offset(), log.next_offset());
            let max_ts = log.segments().iter().filter_map(|s| s.max_timestamp).max();
            let tiers = &fabric.tier_summary(name)?[p as usize];
            partitions.push(json!({
                "earliest_available_offset": tiers.earliest_offset,
                "warm": tiers.warm.iter().map(archive_json).collect::<Vec<_>>(),
                "cold": tiers.cold.iter().map(archive_json).collect::<Vec<_>>(),
                "partition": p,
                "dir": log.dir().display().to_string(),
                "earliest_offset": earliest,
                "next_offset": next,
                "records": next - earliest,
                "size_bytes": log.segments().iter().map(|s| s.size_bytes).sum::<u64>(),
                "first_time": (next > earliest).then(|| first_ts(earliest)).flatten().map(micros_to_rfc3339),
                "max_time": max_ts.map(micros_to_rfc3339),
                "segments": segments,
            }));
        }
        topics.push(json!({"name": name, "config": info.config, "partitions": partitions}));
    }
    if args.json {
        let doc = json!({"data": data.display().to_string(), "topics": topics});
        println!("{doc}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("data directory {}", data.display());
    for t in &topics {
        println!(
            "topic {}  partitions={}  fsync={}  segment_bytes={}",
            t["name"].as_str().unwrap_or(""),
            t["config"]["partitions"],
            t["config"]["fsync"].as_str().unwrap_or(""),
            t["config"]["segment_bytes"]
        );
        for p in t["partitions"].as_array().into_iter().flatten() {
            println!(
                "  partition {}: offsets {}..{} ({} records, {} bytes), time {} .. {}",
                p["partition"],
                p["earliest_offset"],
                p["next_offset"],
                p["records"],
                p["size_bytes"],
                p["first_time"].as_str().unwrap_or("-"),
                p["max_time"].as_str().unwrap_or("-")
            );
            for s in p["segments"].as_array().into_iter().flatten() {
                println!(
                    "    segment {}: offsets {}..{}, {} bytes, {}",
                    s["file"].as_str().unwrap_or(""),
                    s["base_offset"],
                    s["next_offset"],
                    s["size_bytes"],
                    if s["sealed"] == json!(true) {
                        "sealed"
                    } else {
                        "active"
                    }
                );
            }
            print_archives(p);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(data: &Path, args: VerifyArgs, tiers: &FabricConfig) -> CliResult {
    if args.repair {
        let repaired = eventfabric::repair_data_dir(data, tiers)?;
        let mut removed_any = false;
        for r in &repaired.partitions {
            for t in &r.report.recovery.truncations {
                removed_any = true;
                println!(
                    "{} partition {}: removed {} bytes of {} from byte {} (offsets {} on): {}",
                    r.topic,
                    r.partition,
                    t.bytes_removed,
                    t.path.display(),
                    t.position,
                    t.first_offset_removed,
                    t.reason
                );
            }
            for d in &r.report.recovery.dropped_segments {
                removed_any = true;
                println!(
                    "{} partition {}: removed segment {} (it followed removed damage)",
                    r.topic,
                    r.partition,
                    d.display()
                );
            }
            if let Some((offset, records)) = r.report.truncated_from {
                removed_any = true;
                println!(
                    "{} partition {}: truncated at offset {offset}, removing {records} records",
                    r.topic, r.partition
                );
            }
            if let Some(cut) = &r.report.damage_cut {
                println!(
                    "{} partition {}: cut {} at byte {} ({}): removed offsets {}..{}",
                    r.topic,
                    r.partition,
                    cut.path.display(),
                    cut.position,
                    cut.reason,
                    cut.offsets_removed.start,
                    cut.offsets_removed.end
                );
                for seg in &cut.removed_segments {
                    println!(
                        "{} partition {}: removed segment {} (it followed the cut)",
                        r.topic,
                        r.partition,
                        seg.display()
                    );
                }
            }
            for i in &r.report.rebuilt_indexes {
                println!(
                    "{} partition {}: rebuilt index {}",
                    r.topic,
                    r.partition,
                    i.display()
                );
            }
            for f in &r.report.discarded {
                println!(
                    "{} partition {}: discarded {} (failed its checks; rewritten on close)",
                    r.topic,
                    r.partition,
                    f.display()
                );
            }
        }
        for a in &repaired.actions {
            removed_any |= a.problem.starts_with("removed") || a.problem.starts_with("cut");
            println!("{}: {}", a.path.display(), a.problem);
        }
        if !removed_any {
            println!("nothing removed");
        }
    }
    let checked = eventfabric::verify_data_dir(data, tiers)?;
    let (mut segments, mut records, mut findings) = (0usize, 0u64, 0usize);
    for c in &checked.partitions {
        segments += c.report.segments;
        records += c.report.records;
        for f in &c.report.findings {
            findings += 1;
            println!(
                "{}: byte {}: {}{}",
                f.path.display(),
                f.position,
                f.problem,
                if f.data_damaged {
                    ""
                } else if f.path.file_name().is_some_and(|n| n == "checkpoint") {
                    " (a summary only; --repair rewrites it)"
                } else {
                    " (index only; --repair rebuilds it)"
                }
            );
        }
        for n in &c.report.notices {
            println!("{}: note: {}", n.path.display(), n.problem);
        }
    }
    for f in &checked.findings {
        match f.severity {
            eventfabric::Severity::Notice => println!("{}: note: {}", f.path.display(), f.problem),
            severity => {
                findings += 1;
                println!(
                    "{}: byte {}: {}{}",
                    f.path.display(),
                    f.position,
                    f.problem,
                    if severity == eventfabric::Severity::Repairable {
                        " (no accepted data lost; --repair fixes it)"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    eprintln!(
        "fabric: verified {} partitions, {segments} segments, {records} records: {}",
        checked.partitions.len(),
        if findings == 0 {
            "clean".to_string()
        } else {
            format!("{findings} problems found; run fabric verify --repair to fix them")
        }
    );
    eprintln!(
        "fabric: verified {} warm and {} cold archives ({} records), {} state logs",
        checked.warm_archives, checked.cold_archives, checked.archive_records, checked.state_logs
    );
    Ok(if findings == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

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

fn gen_events(args: GenArgs) -> CliResult {
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

/// Envelopes of about `size` encoded bytes, cycling through the seed kinds.
fn bench_envelopes(count: usize, size: usize) -> Vec<Envelope> {
    let mut generator = FixtureGenerator::new(42, 100);
    let kinds = FixtureKind::all();
    (0..count)
        .map(|i| {
            let mut e = generator.next(kinds[i % kinds.len()]);
            let len = e.to_bytes().len();
            if len + 8 < size
                && let Value::Object(m) = &mut e.payload
            {
                m.insert("pad".into(), Value::String("x".repeat(size - len - 8)));
            }
            e
        })
        .collect()
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Progress {
    on: bool,
    last: Instant,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            on: std::io::stderr().is_terminal(),
            last: Instant::now(),
        }
    }
    fn tick(&mut self, done: u64, total: u64) {
        if self.on && self.last.elapsed() > Duration::from_millis(500) {
            eprint!("\r{done}/{total} events");
            self.last = Instant::now();
        }
    }
    fn done(&self) {
        if self.on {
            eprintln!();
        }
    }
}

fn report(json_out: bool, what: &str, records: u64, bytes: u64, secs: f64, mut lat: Vec<u64>) {
    lat.sort_unstable();
    let secs = secs.max(1e-9);
    let doc = json!({
        "records": records,
        "seconds": secs,
        "records_per_sec": records as f64 / secs,
        "mb_per_sec": bytes as f64 / secs / 1e6,
        "p50_us": percentile(&lat, 0.5),
        "p99_us": percentile(&lat, 0.99),
        "p999_us": percentile(&lat, 0.999),
    });
    if json_out {
        println!("{doc}");
    } else {
        println!(
            "{what}: {records} events in {secs:.3} s = {:.0} events/s, {:.1} MB/s; batch latency p50 {} µs, p99 {} µs, p99.9 {} µs",
            records as f64 / secs,
            bytes as f64 / secs / 1e6,
            doc["p50_us"],
            doc["p99_us"],
            doc["p999_us"]
        );
    }
}

fn bench_produce(data: &Path, args: BenchProduceArgs) -> CliResult {
    if args.batch == 0 || args.threads == 0 || args.records == 0 {
        return fail("--records, --batch and --threads must be at least 1");
    }
    let fabric = Fabric::open(data, FabricConfig::with_fsync(args.fsync))?;
    let topic = match &args.topic {
        Some(t) => t.clone(),
        None => {
            if fabric.topics().iter().any(|t| t == SCRATCH_TOPIC) {
                fabric.delete_topic(SCRATCH_TOPIC)?;
            }
            let mut c = TopicConfig::with_partitions(args.partitions);
            c.fsync = args.fsync;
            // Dedup off: the pool below is published again and again, which
            // the dedup window would answer as duplicates, appending nothing.
            c.dedup_window_ms = 0;
            fabric.create_topic(SCRATCH_TOPIC, c)?;
            SCRATCH_TOPIC.to_string()
        }
    };
    // A pool whose length is a multiple of the batch, so every batch is one
    // contiguous slice of it (no copies on the measured path). About 1,000
    // events: like events an application just built, they stay in cache.
    let pool_len = (args.records as usize).clamp(1, 1_000).div_ceil(args.batch) * args.batch;
    let pool = Arc::new(bench_envelopes(pool_len, args.size));
    let bytes_per: u64 =
        pool.iter().map(|e| e.to_bytes().len() as u64).sum::<u64>() / pool.len() as u64;
    let per_thread = args.records / args.threads as u64;
    let extra = args.records % args.threads as u64;
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..args.threads {
        let mut producer = fabric.producer(&topic, "fabric-bench")?;
        let pool = pool.clone();
        let n = per_thread + u64::from((t as u64) < extra);
        let batch = args.batch;
        let total = args.records;
        let show = t == 0;
        let threads = args.threads as u64;
        handles.push(std::thread::spawn(
            move || -> eventfabric::Result<Vec<u64>> {
                let mut lat = Vec::with_capacity(n as usize / batch + 1);
                let mut progress = Progress::new();
                progress.on &= show;
                let (mut done, mut start) = (0u64, 0usize);
                while done < n {
                    let k = batch.min((n - done) as usize);
                    let chunk = &pool[start..start + k];
                    start = (start + batch) % pool.len();
                    let t0 = Instant::now();
                    if k == 1 {
                        producer.publish(&chunk[0])?;
                    } else {
                        producer.publish_batch(chunk)?;
                    }
                    lat.push(t0.elapsed().as_micros() as u64);
                    done += k as u64;
                    progress.tick(done, total / threads);
                }
                progress.done();
                Ok(lat)
            },
        ));
    }
    let mut lat = Vec::new();
    for h in handles {
        match h.join() {
            Ok(r) => lat.extend(r?),
            Err(_) => return fail("a producer thread panicked"),
        }
    }
    fabric.flush()?;
    let secs = started.elapsed().as_secs_f64();
    report(
        args.json,
        "bench produce",
        args.records,
        args.records * bytes_per,
        secs,
        lat,
    );
    fabric.close()?;
    Ok(ExitCode::SUCCESS)
}

fn bench_consume(data: &Path, args: BenchConsumeArgs) -> CliResult {
    let fabric = Fabric::open_read_only(data)?;
    let topic = args.topic.unwrap_or_else(|| SCRATCH_TOPIC.to_string());
    let mut reader = fabric.reader(&topic, StartFrom::Earliest)?;
    let total = args.records.unwrap_or(u64::MAX);
    let batch = args.batch.max(1) as u64;
    let fields_only = args.decode == "fields";
    let mut progress = Progress::new();
    let mut records = 0u64;
    let mut lat = Vec::new();
    let started = Instant::now();
    let mut t0 = Instant::now();
    while records < total {
        let Some(raw) = reader.next_raw() else { break };
        let raw = raw?;
        if fields_only {
            std::hint::black_box(raw.envelope()?.event_type);
        } else {
            std::hint::black_box(Envelope::decode(&raw.value)?);
        }
        records += 1;
        if records.is_multiple_of(batch) {
            lat.push(t0.elapsed().as_micros() as u64);
            t0 = Instant::now();
            progress.tick(records, total);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    progress.done();
    // Bytes read: the stored size of the records consumed.
    let info = fabric.topic_info(&topic)?;
    let stored: u64 = (0..info.config.partitions)
        .filter_map(|p| fabric.partition(&topic, p).ok())
        .map(|l| l.segments().iter().map(|s| s.size_bytes).sum::<u64>())
        .sum();
    let held: u64 = info.offsets.iter().map(|(e, n)| n - e).sum();
    let read_bytes = (stored * records).checked_div(held).unwrap_or(0);
    report(args.json, "bench consume", records, read_bytes, secs, lat);
    Ok(ExitCode::SUCCESS)
}

/// One archive segment (warm or cold) as `inspect` and `retention show` print it.
fn archive_json(a: &eventfabric::tier::ArchiveInfo) -> Value {
    let s = &a.summary;
    json!({
        "file": a.path.display().to_string(),
        "base_offset": s.base_offset,
        "next_offset": s.next_offset,
        "size_bytes": s.file_bytes,
        "raw_bytes": s.raw_bytes,
        "blocks": s.block_count,
        "first_time": micros_to_rfc3339(s.min_timestamp),
        "max_time": micros_to_rfc3339(s.max_timestamp),
        "schema_versions": s.schema_versions,
    })
}

/// The warm and cold lines of one partition in `inspect`'s text output.
fn print_archives(p: &Value) {
    for tier in ["warm", "cold"] {
        for a in p[tier].as_array().into_iter().flatten() {
            println!(
                "    {tier} {}: offsets {}..{}, {} bytes ({} before compression), time {} .. {}",
                a["file"].as_str().unwrap_or(""),
                a["base_offset"],
                a["next_offset"],
                a["size_bytes"],
                a["raw_bytes"],
                a["first_time"].as_str().unwrap_or("-"),
                a["max_time"].as_str().unwrap_or("-")
            );
        }
    }
}

/// One file of a tier: base offset, next offset, bytes, first and largest timestamp.
type TierFile = (u64, u64, u64, Option<i64>, Option<i64>);

/// Totals of one tier of a partition for `retention show`.
fn tier_totals(files: &[TierFile]) -> Value {
    json!({
        "segments": files.len(),
        "bytes": files.iter().map(|f| f.2).sum::<u64>(),
        "base_offset": files.first().map(|f| f.0),
        "next_offset": files.last().map(|f| f.1),
        "first_time": files.iter().filter_map(|f| f.3).min().map(micros_to_rfc3339),
        "max_time": files.iter().filter_map(|f| f.4).max().map(micros_to_rfc3339),
    })
}

fn retention(data: &Path, tiers: FabricConfig, cmd: RetentionCommand) -> CliResult {
    match cmd {
        RetentionCommand::Show { topic } => {
            let fabric = Fabric::open_read_only_with(data, &tiers)?;
            let c = fabric.topic_info(&topic)?.config;
            let warm_dir = tiers
                .warm_dir
                .clone()
                .unwrap_or_else(|| data.join(eventfabric::tier::WARM_DIR));
            let cold_dir = tiers
                .cold_dir
                .clone()
                .unwrap_or_else(|| data.join(eventfabric::tier::COLD_DIR));
            println!(
                "{}",
                json!({
                    "topic": topic,
                    "retention_ms": c.retention_ms,
                    "retention_bytes": c.retention_bytes,
                    "warm_retention_ms": c.warm_retention_ms,
                    "cold_action": c.cold_action.as_str(),
                    "warm_dir": warm_dir.display().to_string(),
                    "cold_dir": cold_dir.display().to_string(),
                })
            );
            for p in fabric.tier_summary(&topic)? {
                let hot: Vec<TierFile> = p
                    .hot
                    .iter()
                    .map(|s| {
                        (
                            s.base_offset,
                            s.next_offset,
                            s.size_bytes,
                            None,
                            s.max_timestamp,
                        )
                    })
                    .collect();
                let archives = |list: &[eventfabric::tier::ArchiveInfo]| -> Vec<TierFile> {
                    list.iter()
                        .map(|a| {
                            let s = &a.summary;
                            (
                                s.base_offset,
                                s.next_offset,
                                s.file_bytes,
                                Some(s.min_timestamp),
                                Some(s.max_timestamp),
                            )
                        })
                        .collect()
                };
                println!(
                    "{}",
                    json!({
                        "topic": topic,
                        "partition": p.partition,
                        "earliest_offset": p.earliest_offset,
                        "next_offset": p.next_offset,
                        "hot": tier_totals(&hot),
                        "warm": tier_totals(&archives(&p.warm)),
                        "cold": tier_totals(&archives(&p.cold)),
                    })
                );
            }
        }
        RetentionCommand::Run { topic, now } => {
            let now = match now {
                Some(t) => t.parse::<jiff::Timestamp>().map_err(|e| Failure {
                    message: format!(
                        "--now {t:?} is not an RFC 3339 time ({e}), e.g. 2026-06-10T12:00:00Z"
                    ),
                    code: 2,
                })?,
                None => jiff::Timestamp::now(),
            };
            let fabric = Fabric::open(data, tiers)?;
            let mut progress = |m: &eventfabric::TierMove| {
                eprintln!(
                    "retention: {} partition {}: offsets {}..{} {} -> {} ({} -> {} bytes)",
                    m.topic,
                    m.partition,
                    m.base_offset,
                    m.next_offset,
                    m.from.as_str(),
                    m.to.as_str(),
                    m.bytes_before,
                    m.bytes_after
                );
            };
            let r = fabric.maintain_topic(&topic, now, &mut progress)?;
            fabric.close()?;
            let earliest: Vec<Value> = r
                .earliest_changes
                .iter()
                .map(|c| json!({"partition": c.partition, "earliest_offset": c.earliest}))
                .collect();
            println!(
                "{}",
                json!({
                    "topic": topic,
                    "partitions_checked": r.partitions_checked,
                    "segments_to_warm": r.segments_to_warm,
                    "segments_to_cold": r.segments_to_cold,
                    "segments_deleted": r.segments_deleted,
                    "bytes_before": r.bytes_before,
                    "bytes_after": r.bytes_after,
                    "elapsed_ms": r.elapsed.as_secs_f64() * 1e3,
                    "earliest_changes": earliest,
                })
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints one raw event like plain `consume` does; false when stdout closed.
fn print_raw(out: &mut impl Write, event: &eventfabric::RawEvent) -> CliResult<bool> {
    let envelope = Envelope::decode(&event.value).map_err(|e| Failure {
        message: format!(
            "record at offset {} of partition {}: {e}; it was not written by an eventfabric producer",
            event.offset, event.partition
        ),
        code: 1,
    })?;
    let line = event_line(&ReadEvent {
        partition: event.partition,
        offset: event.offset,
        timestamp: event.timestamp,
        envelope,
    });
    Ok(writeln!(out, "{line}").is_ok())
}

/// `consume --group G [--commit]`: a member of G on a read-only view; its
/// commits are safe beside a writer process thanks to G's cursor-log lock.
fn consume_group(data: &Path, args: ConsumeArgs) -> CliResult {
    let group = args.group.as_deref().unwrap_or_default();
    let fabric = Fabric::open_read_only(data)?;
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

fn dlq(data: &Path, cmd: DlqCommand) -> CliResult {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match cmd {
        DlqCommand::List(args) => {
            let fabric = Fabric::open_read_only(data)?;
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
            let fabric = Fabric::open_read_only(data)?;
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
            let fabric = Fabric::open(data, FabricConfig::default())?;
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

fn group_command(data: &Path, cmd: GroupCommand) -> CliResult {
    use eventfabric::group;
    let fabric = Fabric::open_read_only(data)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cmd {
        GroupCommand::List => {
            for (name, topics) in group::list(&fabric)? {
                writeln!(out, "{}", json!({"group": name, "topics": topics}))?;
            }
        }
        GroupCommand::Describe { group: name } => {
            for status in group::describe(&fabric, &name)? {
                for p in &status.partitions {
                    let line = json!({
                        "group": status.group,
                        "topic": status.topic,
                        "partition": p.partition,
                        "committed": p.committed,
                        "end": p.end,
                        "lag": p.lag,
                        "member": p.member,
                        "expired": status.expired,
                        "members": status.members,
                    });
                    writeln!(out, "{line}")?;
                }
            }
        }
        GroupCommand::Reset {
            group: name,
            topic,
            to,
        } => {
            let target = match to.as_str() {
                "earliest" => group::ResetTo::Earliest,
                "latest" => group::ResetTo::Latest,
                s if s.bytes().all(|b| b.is_ascii_digit()) => group::ResetTo::Offset(s.parse()?),
                s => match s.parse::<jiff::Timestamp>() {
                    Ok(t) => group::ResetTo::Time(t),
                    Err(e) => {
                        return fail(format!(
                            "--to {s:?} is not earliest, latest, an offset or an RFC 3339 time ({e})"
                        ));
                    }
                },
            };
            // Without --topic: every topic the group has cursors for.
            let topics = match topic {
                Some(topic) => vec![topic],
                None => group::list(&fabric)?
                    .into_iter()
                    .find(|(g, _)| *g == name)
                    .map(|(_, topics)| topics)
                    .unwrap_or_default(),
            };
            if topics.is_empty() {
                return fail(format!(
                    "group {name:?} has no cursors to reset; name the topic with --topic"
                ));
            }
            for topic in topics {
                let positions = group::reset(&fabric, &name, &topic, target)
                    .map_err(|e| group_in_use(e, &name, &topic))?;
                for (partition, offset) in positions {
                    let line = json!({"group": name, "topic": topic, "partition": partition, "committed": offset});
                    writeln!(out, "{line}")?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
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

#[derive(Args, Debug)]
struct ExportArgs {
    /// The topic to export.
    topic: String,
    /// The snapshot file to write (replaced atomically).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Start: an OFFSET (in every exported partition) or an RFC 3339 time (emitted_at), inclusive.
    #[arg(long)]
    from: Option<String>,
    /// End: an OFFSET or an RFC 3339 time, exclusive.
    #[arg(long)]
    to: Option<String>,
    /// Export only this partition (repeatable).
    #[arg(long = "partition", value_name = "P")]
    partitions: Vec<u32>,
}

#[derive(Args, Debug)]
struct ImportArgs {
    /// The snapshot file to import.
    file: PathBuf,
    /// Import into this topic instead of the exported topic's name.
    #[arg(long)]
    topic: Option<String>,
}

fn parse_bound(flag: &str, text: &Option<String>) -> CliResult<eventfabric::snapshot::Bound> {
    use eventfabric::snapshot::Bound;
    Ok(match text.as_deref() {
        None => Bound::Unbounded,
        Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Bound::Offset(s.parse()?)
        }
        Some(s) => match s.parse::<jiff::Timestamp>() {
            Ok(t) => Bound::Time(t.as_microsecond()),
            Err(e) => {
                return fail(format!(
                    "{flag} {s:?} is not an offset or an RFC 3339 time ({e}); e.g. {flag} 2026-06-10T12:30:00Z"
                ));
            }
        },
    })
}

/// Progress on stderr for long snapshot runs: at most twice a second, only
/// once the run has lasted a second.
fn snapshot_progress(what: &'static str) -> impl FnMut(u64) {
    let started = Instant::now();
    let mut last = Instant::now();
    move |records| {
        if started.elapsed() > Duration::from_secs(1) && last.elapsed() > Duration::from_millis(500)
        {
            eprintln!("fabric: {what} {records} records...");
            last = Instant::now();
        }
    }
}

fn export(data: &Path, args: ExportArgs) -> CliResult {
    let fabric = Fabric::open_read_only(data)?;
    let mut options = eventfabric::snapshot::ExportOptions::default();
    options.from = parse_bound("--from", &args.from)?;
    options.to = parse_bound("--to", &args.to)?;
    if !args.partitions.is_empty() {
        options.partitions = Some(args.partitions.clone());
    }
    let mut progress = snapshot_progress("exported");
    let summary = eventfabric::snapshot::export_with_progress(
        &fabric,
        &args.topic,
        &args.out,
        &options,
        &mut progress,
    )?;
    println!(
        "{}",
        json!({"topic": args.topic, "file": summary.path, "records": summary.records,
               "bytes": summary.value_bytes, "file_bytes": summary.file_bytes,
               "schema_versions": summary.schema_versions})
    );
    Ok(ExitCode::SUCCESS)
}

fn import(data: &Path, args: ImportArgs) -> CliResult {
    let fabric = Fabric::open(data, FabricConfig::default())?;
    let mut progress = snapshot_progress("imported");
    let summary = eventfabric::snapshot::import_with_progress(
        &fabric,
        &args.file,
        args.topic.as_deref(),
        &mut progress,
    )?;
    fabric.close()?;
    println!(
        "{}",
        json!({"topic": summary.topic, "created": summary.created, "records": summary.records,
               "appended": summary.appended, "bytes": summary.bytes,
               "duplicates_skipped": summary.duplicates_skipped})
    );
    Ok(ExitCode::SUCCESS)
}

fn replay_bound(flag: &str, value: &str) -> CliResult<eventfabric::group::ReplayBound> {
    use eventfabric::group::ReplayBound;
    if value.bytes().all(|b| b.is_ascii_digit()) && !value.is_empty() {
        return Ok(ReplayBound::Offset(value.parse()?));
    }
    match value.parse::<jiff::Timestamp>() {
        Ok(t) => Ok(ReplayBound::Time(t)),
        Err(e) => fail(format!(
            "{flag} {value:?} is not an offset or an RFC 3339 time ({e}); e.g. {flag} 2026-06-10T14:00:00Z"
        )),
    }
}

fn replay(data: &Path, args: ReplayArgs) -> CliResult {
    use eventfabric::group::{ReplayConfig, ReplaySession};
    let fabric = Fabric::open_read_only(data)?;
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
    let mut session = ReplaySession::start(&fabric, &args.topic, &args.group, config)
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

/// Names the group and the holder when a group's cursor lock is taken.
fn group_in_use(e: eventfabric::Error, group: &str, topic: &str) -> Failure {
    match e {
        eventfabric::Error::Locked { pid, .. } => Failure {
            message: format!(
                "consumer group {group:?} on {topic:?} is in use by pid {pid} (a live consumer \
                 holds its cursor lock); stop it first"
            ),
            code: 1,
        },
        other => Failure::from(other),
    }
}
