//! Topics: validated names, per-topic settings and their crash-safe file.
//!
//! Owns the topic-name rules, [`TopicConfig`] with its translation to a
//! partition [`LogConfig`], and `topic.json` (write to a temporary file,
//! fsync, rename, fsync the directory; versioned and checksummed; validated
//! on load). It must never touch partition data: segments belong to
//! [`Log`](crate::Log), and a name that passes [`validate_topic_name`] can
//! never leave the data directory.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::log::{Durability, LogConfig};

/// Longest topic name accepted (Kafka's limit, which leaves room for suffixes
/// such as `.dlq` within common file-name limits).
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Most partitions one topic may have.
pub const MAX_PARTITIONS: u32 = 4096;

/// Version of the `topic.json` layout this build writes and reads.
pub const TOPIC_FILE_VERSION: u32 = 1;

/// File name of a topic's settings inside its directory.
pub const TOPIC_FILE: &str = "topic.json";

/// Checks a topic name: one or more dot-separated segments of lowercase
/// `[a-z0-9_-]`, at most [`MAX_TOPIC_NAME_LEN`] bytes, e.g. `billing.domain.v1`
/// or `auth.audit.v1.dlq`.
///
/// This rejects everything that could escape or confuse the data directory:
/// `..` and empty segments, `/` and `\`, NUL, absolute paths, leading dots
/// (hidden and temporary directories), upper case and non-ASCII.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let refuse = |reason: String| {
        Err(Error::invalid(
            format!("topic name {name:?}"),
            format!(
                "{reason}; use lowercase [a-z0-9_-] segments separated by single dots, e.g. billing.domain.v1"
            ),
        ))
    };
    if name.is_empty() {
        return refuse("it is empty".into());
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return refuse(format!(
            "it is {} bytes long, the limit is {MAX_TOPIC_NAME_LEN}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_' | '-' | '.'))
    {
        return refuse(format!("character {c:?} is not allowed"));
    }
    if name.split('.').any(str::is_empty) {
        return refuse("it has an empty segment (a leading, trailing or doubled dot)".into());
    }
    Ok(())
}

/// When appends to a topic's partitions count as done (mirrors [`Durability`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// Every append waits for `fdatasync` (shared between concurrent appenders).
    Always,
    /// Group commit: synced within the topic's `group_commit_ms` / `group_commit_bytes`.
    #[default]
    Group,
    /// The kernel writes back when it likes; flushes and segment rolls sync.
    Os,
}

impl FsyncPolicy {
    /// The policy's command-line spelling (`always`, `group`, `os`).
    pub fn as_str(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Group => "group",
            FsyncPolicy::Os => "os",
        }
    }
}

impl std::str::FromStr for FsyncPolicy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "group" => Ok(FsyncPolicy::Group),
            "os" => Ok(FsyncPolicy::Os),
            other => Err(Error::invalid(
                "fsync policy",
                format!("{other:?} is not one of always, group, os"),
            )),
        }
    }
}

impl std::fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Settings of one topic, persisted in `<data>/topics/<topic>/topic.json`.
///
/// Every field has a `fabric topic create` flag of the same name (with
/// dashes). The retention fields are enforced by [`Fabric::maintain`](crate::Fabric::maintain)
/// (see `docs/FORMAT.md`, "Retention tiers").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// `default`: a file written before a setting existed loads with that
// setting's default (see `stored_config_checksum`).
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TopicConfig {
    /// Number of partitions (1..=[`MAX_PARTITIONS`]); can grow, never shrink.
    pub partitions: u32,
    /// Segment size at which a partition rolls to a new segment.
    pub segment_bytes: u64,
    /// Age in milliseconds at which a non-empty active segment rolls.
    pub segment_ms: Option<u64>,
    /// When appends count as done.
    pub fsync: FsyncPolicy,
    /// Group commit: longest time an append stays unsynced, in milliseconds.
    pub group_commit_ms: u64,
    /// Group commit: unsynced bytes that trigger a sync at once.
    pub group_commit_bytes: u64,
    /// Largest encoded event accepted.
    pub max_record_bytes: usize,
    /// Largest encoded batch accepted.
    pub max_batch_bytes: usize,
    /// Log bytes between sparse index entries.
    pub index_interval_bytes: u32,
    /// Hot retention by age in milliseconds: a sealed segment whose newest
    /// record is older than this leaves the hot tier (to warm, or to the cold
    /// action). Default 7 days; `None` keeps segments hot forever (what
    /// `topic.json` files written before tiering say with `null`).
    pub retention_ms: Option<u64>,
    /// Hot retention by size in bytes per partition: the oldest sealed
    /// segments leave the hot tier until the partition is within it
    /// (Kafka's `retention.bytes`). Default `None`: unlimited.
    pub retention_bytes: Option<u64>,
    /// Warm retention in milliseconds, counted like `retention_ms` from the
    /// newest record of an archive segment: older archives get the cold
    /// action. 0 (default) means no warm tier: segments leaving hot get the
    /// cold action directly. When set, it must exceed `retention_ms`.
    #[serde(default)]
    pub warm_retention_ms: u64,
    /// What happens to data leaving the last readable tier (default `delete`).
    #[serde(default)]
    pub cold_action: ColdAction,
    /// Producer-side dedup window in milliseconds, measured on the time the
    /// fabric first stored the event (its batch's `appended_at`, not the
    /// event's `emitted_at`): publishing an `event_id` appended less than
    /// this long ago returns the original position and appends nothing. 0 = off.
    #[serde(
        default = "default_dedup_window_ms",
        skip_serializing_if = "is_default_dedup_window_ms"
    )]
    pub dedup_window_ms: u64,
    /// Most event ids the dedup cache holds; the oldest go first beyond it.
    #[serde(
        default = "default_dedup_max_entries",
        skip_serializing_if = "is_default_dedup_max_entries"
    )]
    pub dedup_max_entries: u64,
    /// At-most-once sampling: `system.` events beyond this many per second
    /// (token bucket, one second of burst) are dropped and counted instead of
    /// appended. `None` = never drop. Other domains are never dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_events_per_sec: Option<u32>,
    /// Governance (issue 13): schema requirement, tenancy, allowed event
    /// types, fan-out caps. Left out of `topic.json` while it is the default,
    /// so files written before it existed keep their checksum.
    #[serde(
        default,
        skip_serializing_if = "super::governance::TopicGovernance::is_default"
    )]
    pub governance: super::governance::TopicGovernance,
}

/// Default dedup window: 2 minutes.
pub const DEFAULT_DEDUP_WINDOW_MS: u64 = 120_000;
/// Default cap on dedup cache entries per topic.
pub const DEFAULT_DEDUP_MAX_ENTRIES: u64 = 1_000_000;

fn default_dedup_window_ms() -> u64 {
    DEFAULT_DEDUP_WINDOW_MS
}

// Defaults are left out of topic.json so files written before these fields
// existed keep their checksum (it covers the serialised config).
fn is_default_dedup_window_ms(v: &u64) -> bool {
    *v == DEFAULT_DEDUP_WINDOW_MS
}

fn default_dedup_max_entries() -> u64 {
    DEFAULT_DEDUP_MAX_ENTRIES
}

fn is_default_dedup_max_entries(v: &u64) -> bool {
    *v == DEFAULT_DEDUP_MAX_ENTRIES
}

/// What retention does with data leaving the last readable tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ColdAction {
    /// Delete it.
    #[default]
    Delete,
    /// Move it, as a self-describing archive segment, to the cold directory
    /// (`<cold>/<topic>/<partition>/`); it is no longer readable through the fabric.
    Export,
}

impl ColdAction {
    /// The command-line spelling (`delete`, `export`).
    pub fn as_str(self) -> &'static str {
        match self {
            ColdAction::Delete => "delete",
            ColdAction::Export => "export",
        }
    }
}

impl std::str::FromStr for ColdAction {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "delete" => Ok(ColdAction::Delete),
            "export" => Ok(ColdAction::Export),
            other => Err(Error::invalid(
                "cold action",
                format!("{other:?} is not one of delete, export"),
            )),
        }
    }
}

/// Default hot retention: 7 days.
pub const DEFAULT_RETENTION_MS: u64 = 7 * 86_400_000;

impl Default for TopicConfig {
    fn default() -> Self {
        let log = LogConfig::default();
        TopicConfig {
            partitions: 1,
            segment_bytes: log.segment_bytes,
            segment_ms: None,
            fsync: FsyncPolicy::Group,
            group_commit_ms: 10,
            group_commit_bytes: 4 << 20,
            max_record_bytes: log.max_record_bytes,
            max_batch_bytes: log.max_batch_bytes,
            index_interval_bytes: log.index_interval_bytes,
            retention_ms: Some(DEFAULT_RETENTION_MS),
            retention_bytes: None,
            warm_retention_ms: 0,
            cold_action: ColdAction::Delete,
            dedup_window_ms: DEFAULT_DEDUP_WINDOW_MS,
            dedup_max_entries: DEFAULT_DEDUP_MAX_ENTRIES,
            system_events_per_sec: None,
            governance: super::governance::TopicGovernance::default(),
        }
    }
}

impl TopicConfig {
    /// Default settings with `partitions` partitions.
    pub fn with_partitions(partitions: u32) -> Self {
        TopicConfig {
            partitions,
            ..TopicConfig::default()
        }
    }

    /// Checks every setting, including what the partition log will demand.
    pub fn validate(&self) -> Result<()> {
        if self.partitions == 0 || self.partitions > MAX_PARTITIONS {
            return Err(Error::invalid(
                "partitions",
                format!("{} is outside 1..={MAX_PARTITIONS}", self.partitions),
            ));
        }
        if self.group_commit_ms == 0 && self.fsync == FsyncPolicy::Group {
            return Err(Error::invalid(
                "group_commit_ms",
                "must be positive for the group fsync policy",
            ));
        }
        if self.max_record_bytes > self.max_batch_bytes {
            return Err(Error::invalid(
                "max_record_bytes",
                format!(
                    "{} exceeds max_batch_bytes {}",
                    self.max_record_bytes, self.max_batch_bytes
                ),
            ));
        }
        if self.retention_ms == Some(0) || self.retention_bytes == Some(0) {
            return Err(Error::invalid(
                "retention",
                "retention_ms and retention_bytes must be positive when set",
            ));
        }
        if let Some(hot) = self.retention_ms
            && self.warm_retention_ms != 0
            && self.warm_retention_ms <= hot
        {
            return Err(Error::invalid(
                "warm_retention_ms",
                format!(
                    "{} must exceed retention_ms {hot}: warm retention counts from the same record time as hot retention",
                    self.warm_retention_ms
                ),
            ));
        }
        if self.dedup_window_ms > 0 && self.dedup_max_entries == 0 {
            return Err(Error::invalid(
                "dedup_max_entries",
                "must be positive while dedup_window_ms is set (set dedup_window_ms to 0 to turn dedup off)",
            ));
        }
        if self.dedup_window_ms > i64::MAX as u64 / 1000 {
            return Err(Error::invalid(
                "dedup_window_ms",
                format!("{} is too large", self.dedup_window_ms),
            ));
        }
        if self.system_events_per_sec == Some(0) {
            return Err(Error::invalid(
                "system_events_per_sec",
                "must be positive when set (leave it unset to never drop system events)",
            ));
        }
        self.governance.validate()?;
        // The limits `Log::open` enforces, checked here so a bad topic is
        // refused before any directory is created.
        self.log_config(None).validate()
    }

    /// The partition log settings for this topic, with `fsync` overriding the
    /// topic's policy when given.
    pub fn log_config(&self, fsync: Option<FsyncPolicy>) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            segment_max_age: self.segment_ms.map(Duration::from_millis),
            durability: match fsync.unwrap_or(self.fsync) {
                FsyncPolicy::Always => Durability::Always,
                FsyncPolicy::Group => Durability::GroupCommit {
                    max_delay: Duration::from_millis(self.group_commit_ms.max(1)),
                    max_bytes: self.group_commit_bytes,
                },
                FsyncPolicy::Os => Durability::Os,
            },
            max_record_bytes: self.max_record_bytes,
            max_batch_bytes: self.max_batch_bytes,
            index_interval_bytes: self.index_interval_bytes,
            ..LogConfig::default()
        }
    }
}

/// What a topic looks like from outside: name, settings, offsets per partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicInfo {
    /// The topic's name.
    pub name: String,
    /// Its settings.
    pub config: TopicConfig,
    /// `(earliest, next)` offsets of each partition, by partition number.
    pub offsets: Vec<(u64, u64)>,
}

/// The on-disk wrapper of `topic.json`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicFile {
    version: u32,
    name: String,
    config: TopicConfig,
    /// CRC-32 (IEEE) of the name, a NUL byte and the compact JSON of `config`.
    checksum: u32,
}

fn config_checksum(name: &str, config: &TopicConfig) -> Result<u32> {
    let value = serde_json::to_value(config)
        .map_err(|e| Error::invalid("topic config", format!("cannot serialise: {e}")))?;
    stored_config_checksum(name, &value)
}

/// The checksum over `config` exactly as stored (keys in file order), so a
/// file written before a field was added still verifies: the new field is
/// absent from the stored object and takes its default when loaded.
fn stored_config_checksum(name: &str, config: &serde_json::Value) -> Result<u32> {
    let body = serde_json::to_vec(config)
        .map_err(|e| Error::invalid("topic config", format!("cannot serialise: {e}")))?;
    let mut h = crc32fast::Hasher::new();
    h.update(name.as_bytes());
    h.update(&[0]);
    h.update(&body);
    Ok(h.finalize())
}

/// Writes `<dir>/topic.json` crash-safely: temporary file, fsync, rename,
/// fsync of `dir`. A crash leaves either the old or the new file.
pub(crate) fn write_topic_file(dir: &Path, name: &str, config: &TopicConfig) -> Result<()> {
    let file = TopicFile {
        version: TOPIC_FILE_VERSION,
        name: name.to_string(),
        config: config.clone(),
        checksum: config_checksum(name, config)?,
    };
    let mut text = serde_json::to_vec_pretty(&file)
        .map_err(|e| Error::invalid("topic config", format!("cannot serialise: {e}")))?;
    text.push(b'\n');
    let tmp = dir.join(format!("{TOPIC_FILE}.tmp"));
    let path = dir.join(TOPIC_FILE);
    let mut f = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(&text)
        .map_err(|e| Error::io("write", &tmp, e))?;
    f.sync_all().map_err(|e| Error::io("sync", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(|e| Error::io("rename", &path, e))?;
    sync_dir(dir)
}

/// Reads and checks `<dir>/topic.json`; `name` is the directory's name, which
/// the file must agree with.
pub(crate) fn read_topic_file(dir: &Path, name: &str) -> Result<TopicConfig> {
    let path = dir.join(TOPIC_FILE);
    let text = fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
    let bad = |reason: String| Error::Corrupted {
        path: path.clone(),
        position: 0,
        reason: format!("{reason}; restore the file or recreate the topic"),
    };
    let value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| bad(format!("not valid JSON ({e})")))?;
    let version = value.get("version").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(TOPIC_FILE_VERSION)) {
        return Err(bad(format!(
            "unsupported topic file version {version:?}, this build reads version {TOPIC_FILE_VERSION}"
        )));
    }
    let stored_checksum = value
        .get("config")
        .map(|config| stored_config_checksum(name, config))
        .transpose()?;
    let file: TopicFile =
        serde_json::from_value(value).map_err(|e| bad(format!("malformed topic file ({e})")))?;
    if file.name != name {
        return Err(bad(format!(
            "it names topic {:?} but lives in directory {name:?}",
            file.name
        )));
    }
    let expected = stored_checksum.unwrap_or_default();
    if expected != file.checksum {
        return Err(bad(format!(
            "checksum mismatch (stored {:#010x}, computed {expected:#010x})",
            file.checksum
        )));
    }
    file.config
        .validate()
        .map_err(|e| bad(format!("invalid settings ({e})")))?;
    Ok(file.config)
}

/// fsyncs a directory so renames and creations inside it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync", dir, e))
}

/// The directory of `partition` inside a topic directory.
pub(crate) fn partition_dir(topic_dir: &Path, partition: u32) -> PathBuf {
    topic_dir.join(partition.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["billing.domain.v1", "auth.audit.v1.dlq", "a", "x-y_z.0"] {
            assert!(validate_topic_name(good).is_ok(), "{good}");
        }
        let long = "a".repeat(250);
        for bad in [
            "", ".", "..", "a..b", ".a", "a.", "/etc", "a/b", "a\0b", "A", "é", "a b", "a\\b",
            &long,
        ] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn topic_file_round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = TopicConfig::with_partitions(3);
        config.retention_ms = Some(1000);
        write_topic_file(dir.path(), "t.v1", &config).unwrap();
        assert_eq!(read_topic_file(dir.path(), "t.v1").unwrap(), config);
        assert!(read_topic_file(dir.path(), "other").is_err());
        let path = dir.path().join(TOPIC_FILE);
        let text = fs::read_to_string(&path).unwrap();
        fs::write(
            &path,
            text.replace("\"partitions\": 3", "\"partitions\": 4"),
        )
        .unwrap();
        let err = read_topic_file(dir.path(), "t.v1").unwrap_err().to_string();
        assert!(
            err.contains("checksum mismatch") && err.contains("topic.json"),
            "{err}"
        );
    }

    /// A file written by a build that did not know a setting yet: the
    /// stored object lacks the key and its checksum covers only what is there.
    #[test]
    fn a_file_missing_a_later_setting_loads_with_its_default() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = TopicConfig::with_partitions(2);
        config.retention_bytes = Some(1 << 30);
        write_topic_file(dir.path(), "t.v1", &config).unwrap();
        let path = dir.path().join(TOPIC_FILE);
        let mut file: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        let stored = file["config"].as_object_mut().unwrap();
        assert!(stored.remove("retention_bytes").is_some());
        let mut h = crc32fast::Hasher::new();
        h.update(b"t.v1\0");
        h.update(&serde_json::to_vec(&file["config"]).unwrap());
        file["checksum"] = h.finalize().into();
        fs::write(&path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
        let loaded = read_topic_file(dir.path(), "t.v1").unwrap();
        assert_eq!(
            loaded.retention_bytes,
            TopicConfig::default().retention_bytes
        );
        assert_eq!(loaded.partitions, 2);
    }
}
