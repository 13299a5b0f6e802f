//! What several `fabric` subcommands share, written once: the failure type
//! and its exit statuses, the `--data` check, the global tier flags and the
//! one `FabricConfig` built from them (every subcommand opens its fabric
//! with it), an event and an archive segment as JSON, and offset-or-time
//! positions.
//!
//! It owns no subcommand and must never open a data directory itself: each
//! subcommand decides whether it needs the writer lock or a read-only view.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use eventfabric::{Envelope, FabricConfig, ReadEvent};
use serde_json::{Value, json};

/// The global flags saying where a data directory's tiers live. Every
/// subcommand opens its fabric with [`TierFlags::fabric_config`], so a
/// writer opened by `produce` sees the same warm tier `retention run` wrote.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct TierFlags {
    /// Where warm archive segments live (default: DATA/warm); give the same
    /// directory the host configures.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) warm_dir: Option<PathBuf>,
    /// Where exported cold archive segments go (default: DATA/cold).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) cold_dir: Option<PathBuf>,
    /// The warm tier's S3 bucket (feature tier-s3): new warm archives go
    /// there, remote ones are read from there. Recorded in
    /// DATA/remote-warm.json by a writing command, so later commands need not
    /// repeat it. Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and
    /// AWS_SESSION_TOKEN) from the environment, never recorded.
    #[cfg(feature = "tier-s3")]
    #[arg(long, global = true, value_name = "BUCKET")]
    pub(crate) s3_bucket: Option<String>,
    /// Key prefix of the warm tier's objects in the bucket.
    #[cfg(feature = "tier-s3")]
    #[arg(long, global = true, value_name = "PREFIX", default_value = "")]
    pub(crate) s3_prefix: String,
    /// Endpoint URL of an S3-compatible store (default: AWS S3 of the region).
    #[cfg(feature = "tier-s3")]
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) s3_endpoint: Option<String>,
    /// Region of the bucket (default: AWS_REGION, else us-east-1).
    #[cfg(feature = "tier-s3")]
    #[arg(long, global = true, value_name = "REGION")]
    pub(crate) s3_region: Option<String>,
}

impl TierFlags {
    /// The one `FabricConfig` of this invocation: warm and cold directories
    /// and, with `--s3-bucket`, the remote warm tier (without it, a fabric
    /// uses the one the data directory recorded, if any).
    pub(crate) fn fabric_config(&self) -> FabricConfig {
        let mut config = FabricConfig::default();
        config.warm_dir = self.warm_dir.clone();
        config.cold_dir = self.cold_dir.clone();
        #[cfg(feature = "tier-s3")]
        if let Some(bucket) = &self.s3_bucket {
            let mut store = eventfabric::ObjectStoreConfig::new(bucket.clone());
            store.prefix = self.s3_prefix.clone();
            store.endpoint = self.s3_endpoint.clone();
            store.region = self.s3_region.clone();
            config.remote_warm = Some(eventfabric::RemoteWarmConfig::new(store));
        }
        config
    }
}

/// A failure to report: one sentence, then exit status 1 (or `code`).
pub(crate) struct Failure {
    /// The sentence printed after `fabric: error: `.
    pub(crate) message: String,
    /// The exit status: 1 for a failed operation, 2 for a bad argument.
    pub(crate) code: u8,
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            message: e.to_string(),
            code: 1,
        }
    }
}

/// What a subcommand returns: its exit status, or the failure to report.
pub(crate) type CliResult<T = ExitCode> = Result<T, Failure>;

/// A bad-argument failure (exit status 2) with `message`.
pub(crate) fn fail<T>(message: impl Into<String>) -> CliResult<T> {
    Err(Failure {
        message: message.into(),
        code: 2,
    })
}

/// The `--data` directory, or a failure saying how to pass it.
pub(crate) fn data_dir(cli_data: &Option<PathBuf>) -> CliResult<&Path> {
    match cli_data {
        Some(d) => Ok(d),
        None => {
            fail("no data directory given: pass --data DIR (e.g. fabric --data ./data topic list)")
        }
    }
}

/// A record timestamp (microseconds since the epoch) as RFC 3339, or the
/// plain number when it is out of range.
pub(crate) fn micros_to_rfc3339(micros: i64) -> String {
    jiff::Timestamp::from_microsecond(micros).map_or_else(|_| micros.to_string(), |t| t.to_string())
}

/// One event as `consume` prints it: the envelope's JSON plus `_partition`
/// and `_offset`.
pub(crate) fn event_line(event: &ReadEvent) -> Value {
    let mut value = event.envelope.to_json_value();
    if let Value::Object(map) = &mut value {
        map.insert("_partition".into(), json!(event.partition));
        map.insert("_offset".into(), json!(event.offset));
    }
    value
}

/// Prints one raw event like plain `consume` does; false when stdout closed.
pub(crate) fn print_raw(out: &mut impl Write, event: &eventfabric::RawEvent) -> CliResult<bool> {
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

/// One archive segment (warm or cold) as `inspect` and `retention show` print it.
pub(crate) fn archive_json(a: &eventfabric::ArchiveInfo) -> Value {
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

/// Names the group and the holder when a group's cursor lock is taken.
pub(crate) fn group_in_use(e: eventfabric::Error, group: &str, topic: &str) -> Failure {
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

/// A position given as a flag's value: an offset or an instant.
pub(crate) enum Position {
    /// An offset (in every partition the command reads).
    Offset(u64),
    /// An RFC 3339 time, matched against the events' `emitted_at`.
    Time(jiff::Timestamp),
}

/// Reads `value` of `flag` as a [`Position`]: one or more ASCII digits are an
/// offset, anything else must be an RFC 3339 time. A bad time is a
/// bad-argument failure naming the flag and showing `example` (an RFC 3339
/// time); an offset beyond `u64` fails with exit status 1.
pub(crate) fn parse_position(flag: &str, value: &str, example: &str) -> CliResult<Position> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Position::Offset(value.parse()?));
    }
    match value.parse::<jiff::Timestamp>() {
        Ok(t) => Ok(Position::Time(t)),
        Err(e) => fail(format!(
            "{flag} {value:?} is not an offset or an RFC 3339 time ({e}); e.g. {flag} {example}"
        )),
    }
}
