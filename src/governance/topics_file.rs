//! The declarative topics file (YAML or JSON) and its CI lint.
//!
//! Owns parsing the file (topics with their storage and governance
//! settings, schemas with their JSON Schema files, tags and owners, ACLs and
//! quotas), locating each finding at a line, and [`check`]: every problem as
//! `FILE:LINE: RULE: message`, diffing schema versions against a previous
//! catalog. It must never touch a data directory: `check` reads only the
//! file, its schema files and the `--against` catalog; applying the file is
//! the caller's business (`fabric apply`), from the [`TopicsFile`] this
//! module returns.
//!
//! Layout and every field: docs/GOVERNANCE.md.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::acl::AclRule;
use super::quota::QuotaRule;
use super::schema::{Catalog, Classification, CompatMode, SchemaCandidate};
use crate::envelope::SchemaVersion;
use crate::error::{Error, Result};
use crate::topic::governance::{DEFAULT_MAX_CONSUMER_GROUPS, Tenancy, TopicGovernance};
use crate::topic::{ColdAction, FsyncPolicy, TopicConfig, validate_topic_name};

/// Version of the topics-file layout this build reads.
pub const TOPICS_FILE_VERSION: u32 = 1;

/// A parsed topics file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsFile {
    /// Layout version, 1.
    pub version: u32,
    /// Topics by name.
    #[serde(default)]
    pub topics: BTreeMap<String, TopicSpec>,
    /// Schemas by event type.
    #[serde(default)]
    pub schemas: BTreeMap<String, SchemaSpec>,
    /// ACL rules (replace the data directory's rules on apply).
    #[serde(default)]
    pub acls: Vec<AclRule>,
    /// Quota rules (replace the data directory's rules on apply).
    #[serde(default)]
    pub quotas: Vec<QuotaRule>,
}

/// One topic of a topics file; unset fields take [`TopicConfig`]'s defaults,
/// except `require_schemas`, which defaults to true here.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    /// Partition count (only grows on apply).
    pub partitions: Option<u32>,
    /// Segment size in bytes.
    pub segment_bytes: Option<u64>,
    /// `always`, `group` or `os`.
    pub fsync: Option<FsyncPolicy>,
    /// Hot retention in milliseconds.
    pub retention_ms: Option<u64>,
    /// Hot retention in bytes per partition.
    pub retention_bytes: Option<u64>,
    /// Warm retention in milliseconds (0 = no warm tier).
    pub warm_retention_ms: Option<u64>,
    /// What leaves the last readable tier: `delete` or `export`.
    pub cold_action: Option<ColdAction>,
    /// Producer dedup window in milliseconds (0 = off).
    pub dedup_window_ms: Option<u64>,
    /// `shared`, `per_tenant` or `hybrid`.
    pub tenancy: Option<Tenancy>,
    /// Route schema violations to the DLQ (reason `schema_violation`).
    pub dlq: Option<bool>,
    /// Validate payloads against the catalog (default true in a topics file).
    pub require_schemas: Option<bool>,
    /// Event types allowed on the topic (each declared under `schemas`).
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Consumer groups allowed on the topic.
    #[serde(default)]
    pub consumer_groups: Vec<String>,
    /// Cap on consumer groups (default 32).
    pub max_consumer_groups: Option<u32>,
    /// Lift the group cap and allowlist.
    pub allow_bulk_fanout: Option<bool>,
}

impl TopicSpec {
    /// The storage settings this spec asks for.
    pub fn config(&self) -> TopicConfig {
        let mut c = TopicConfig::default();
        if let Some(v) = self.partitions {
            c.partitions = v;
        }
        if let Some(v) = self.segment_bytes {
            c.segment_bytes = v;
        }
        if let Some(v) = self.fsync {
            c.fsync = v;
        }
        if let Some(v) = self.retention_ms {
            c.retention_ms = Some(v);
        }
        if let Some(v) = self.retention_bytes {
            c.retention_bytes = Some(v);
        }
        if let Some(v) = self.warm_retention_ms {
            c.warm_retention_ms = v;
        }
        if let Some(v) = self.cold_action {
            c.cold_action = v;
        }
        if let Some(v) = self.dedup_window_ms {
            c.dedup_window_ms = v;
        }
        c
    }

    /// The governance settings this spec asks for.
    pub fn governance(&self) -> TopicGovernance {
        TopicGovernance {
            require_schemas: self.require_schemas.unwrap_or(true),
            schema_violations_to_dlq: self.dlq.unwrap_or(false),
            tenancy: self.tenancy.unwrap_or_default(),
            event_types: self.event_types.clone(),
            consumer_groups: self.consumer_groups.clone(),
            max_consumer_groups: self
                .max_consumer_groups
                .unwrap_or(DEFAULT_MAX_CONSUMER_GROUPS),
            allow_bulk_fanout: self.allow_bulk_fanout.unwrap_or(false),
        }
    }
}

/// The schemas of one event type.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaSpec {
    /// Compatibility mode (default `backward_transitive`).
    #[serde(default)]
    pub compat: Option<CompatMode>,
    /// Owning team.
    #[serde(default)]
    pub owner: Option<String>,
    /// Versions, oldest first.
    pub versions: Vec<SchemaVersionSpec>,
}

/// One schema version of a topics file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaVersionSpec {
    /// The semver.
    pub version: SchemaVersion,
    /// The JSON Schema file, relative to the topics file.
    pub path: PathBuf,
    /// Classification tags by payload pointer; every field needs one.
    #[serde(default)]
    pub tags: BTreeMap<String, Classification>,
    /// One changelog line.
    #[serde(default)]
    pub changelog: Option<String>,
    /// Migration plan (required for a breaking major version).
    #[serde(default)]
    pub migration: Option<String>,
}

/// One problem found by [`check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The file the finding is in.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// The rule, e.g. `SCHEMA_MISSING` or a catalog rule such as `FIELD_UNCLASSIFIED`.
    pub rule: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.rule,
            self.message
        )
    }
}

/// What [`check`] found, plus the parsed file and its schema documents when
/// it could be read.
#[derive(Debug)]
pub struct CheckReport {
    /// Every finding, in file order.
    pub findings: Vec<Finding>,
    /// The parsed file (`None` when it could not be parsed).
    pub file: Option<TopicsFile>,
    /// `(event_type, version)` → the loaded JSON Schema document.
    pub schemas: BTreeMap<(String, String), Value>,
    /// The catalog as it would be after applying the file's schemas (in memory).
    pub catalog: Catalog,
}

impl CheckReport {
    /// The one-line summary printed when there is no finding.
    pub fn summary(&self) -> String {
        let (topics, event_types, versions, acls, quotas) = match &self.file {
            Some(f) => (
                f.topics.len(),
                f.schemas.len(),
                f.schemas.values().map(|s| s.versions.len()).sum::<usize>(),
                f.acls.len(),
                f.quotas.len(),
            ),
            None => (0, 0, 0, 0, 0),
        };
        format!(
            "ok: {topics} topics, {event_types} event types ({versions} schema versions), {acls} ACL rules, {quotas} quota rules; {} findings",
            self.findings.len()
        )
    }
}

/// Reads and parses a topics file (YAML with the `yaml` feature, or JSON
/// when the name ends in `.json`); a parse error names the file and line.
pub fn parse(path: &Path) -> std::result::Result<(TopicsFile, String), Finding> {
    let text = fs::read_to_string(path).map_err(|e| Finding {
        file: path.to_path_buf(),
        line: 0,
        rule: "FILE_UNREADABLE".into(),
        message: e.to_string(),
    })?;
    let is_json = path.extension().is_some_and(|e| e == "json");
    let parsed: std::result::Result<TopicsFile, (usize, String)> = if is_json {
        serde_json::from_str(&text).map_err(|e| (e.line(), e.to_string()))
    } else {
        parse_yaml(&text)
    };
    match parsed {
        Ok(file) if file.version != TOPICS_FILE_VERSION => Err(Finding {
            file: path.to_path_buf(),
            line: locate(&text, &["version"]),
            rule: "SETTING_INVALID".into(),
            message: format!(
                "version {} is not supported; this build reads version {TOPICS_FILE_VERSION}",
                file.version
            ),
        }),
        Ok(file) => Ok((file, text)),
        Err((line, message)) => Err(Finding {
            file: path.to_path_buf(),
            line: line.max(1),
            rule: "PARSE_ERROR".into(),
            message,
        }),
    }
}

#[cfg(feature = "yaml")]
fn parse_yaml(text: &str) -> std::result::Result<TopicsFile, (usize, String)> {
    serde_saphyr::from_str(text).map_err(|e| {
        let line = e.location().map_or(0, |l| l.line() as usize);
        (line, first_line(&e.to_string()))
    })
}

#[cfg(not(feature = "yaml"))]
fn parse_yaml(_text: &str) -> std::result::Result<TopicsFile, (usize, String)> {
    Err((
        1,
        "YAML topics files need the `yaml` cargo feature (on with `cli`); name a JSON file `*.json`".into(),
    ))
}

#[cfg(feature = "yaml")]
fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_string()
}

/// The catalog a file's schema versions are diffed against.
pub enum Against<'a> {
    /// No previous catalog: every version is new.
    Nothing,
    /// A data directory's catalog.
    DataDir(&'a Path),
    /// A previous topics file (e.g. the one on the main branch).
    File(&'a Path),
}

/// Lints a topics file: parse errors, invalid settings, topics naming
/// undeclared event types, missing schema files, unclassified fields, and
/// every catalog rule for each version against `against` and the versions
/// before it in the file.
pub fn check(path: &Path, against: Against<'_>) -> Result<CheckReport> {
    let mut findings = Vec::new();
    let mut catalog = match against {
        Against::Nothing => Catalog::in_memory(),
        Against::DataDir(dir) => Catalog::open(dir)?.detached(),
        Against::File(previous) => {
            let report = check(previous, Against::Nothing)?;
            if let Some(first) = report.findings.first() {
                return Err(Error::invalid(
                    format!("--against {}", previous.display()),
                    format!("the previous topics file has findings itself, first: {first}"),
                ));
            }
            report.catalog
        }
    };
    let (file, text) = match parse(path) {
        Ok(parsed) => parsed,
        Err(finding) => {
            return Ok(CheckReport {
                findings: vec![finding],
                file: None,
                schemas: BTreeMap::new(),
                catalog,
            });
        }
    };
    let mut push = |keys: &[&str], rule: &str, message: String| {
        findings.push(Finding {
            file: path.to_path_buf(),
            line: locate(&text, keys),
            rule: rule.to_string(),
            message,
        });
    };
    for (name, spec) in &file.topics {
        if let Err(e) = validate_topic_name(name) {
            push(&["topics", name], "SETTING_INVALID", e.to_string());
        }
        if let Err(e) = spec.config().validate() {
            let field = invalid_field(&e);
            push(&["topics", name, &field], "SETTING_INVALID", e.to_string());
        }
        if let Err(e) = spec.governance().validate() {
            let field = invalid_field(&e);
            push(&["topics", name, &field], "SETTING_INVALID", e.to_string());
        }
        for event_type in &spec.event_types {
            if !file.schemas.contains_key(event_type) && catalog.get(event_type).is_none() {
                push(
                    &["topics", name, "event_types", event_type],
                    "SCHEMA_MISSING",
                    format!(
                        "topic {name} allows event type {event_type}, which has no schema under `schemas`"
                    ),
                );
            }
        }
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut schemas = BTreeMap::new();
    for (event_type, spec) in &file.schemas {
        if spec.versions.is_empty() {
            push(
                &["schemas", event_type],
                "SCHEMA_MISSING",
                format!("event type {event_type} lists no versions"),
            );
        }
        for v in &spec.versions {
            let version = v.version.to_string();
            let keys = ["schemas", event_type.as_str(), "versions", version.as_str()];
            let schema_path = base.join(&v.path);
            let schema: Value = match fs::read(&schema_path) {
                Err(e) => {
                    push(
                        &[&keys[..], &["path"]].concat(),
                        "SCHEMA_MISSING",
                        format!("{}: {e}", schema_path.display()),
                    );
                    continue;
                }
                Ok(bytes) => match serde_json::from_slice(&bytes) {
                    Ok(s) => s,
                    Err(e) => {
                        push(
                            &[&keys[..], &["path"]].concat(),
                            "SCHEMA_INVALID",
                            format!("{}: line {}: {e}", schema_path.display(), e.line()),
                        );
                        continue;
                    }
                },
            };
            let candidate = SchemaCandidate {
                event_type: event_type.clone(),
                version: v.version.clone(),
                schema: schema.clone(),
                compat: spec.compat,
                tags: v.tags.clone(),
                owner: spec.owner.clone(),
                changelog: v.changelog.clone(),
                migration: v.migration.clone(),
                require_classification: true,
            };
            let verdict = catalog.add(candidate)?;
            for violation in &verdict.violations {
                let at = if violation.pointer.is_empty() {
                    String::new()
                } else {
                    format!(" at {}", violation.pointer)
                };
                let mut place = keys.to_vec();
                if !violation.pointer.is_empty() && v.tags.contains_key(&violation.pointer) {
                    place.push(violation.pointer.as_str());
                }
                push(
                    &place,
                    violation.rule.as_str(),
                    format!("{event_type} {version}{at}: {}", violation.message),
                );
            }
            schemas.insert((event_type.clone(), version), schema);
        }
    }
    for (i, rule) in file.acls.iter().enumerate() {
        if let Err(e) = rule.validate() {
            push(
                &["acls", &rule.principal],
                "SETTING_INVALID",
                format!("acl {i}: {e}"),
            );
        }
    }
    for (i, rule) in file.quotas.iter().enumerate() {
        if let Err(e) = rule.validate() {
            push(&["quotas"], "SETTING_INVALID", format!("quota {i}: {e}"));
        }
    }
    findings.sort_by_key(|f| f.line);
    Ok(CheckReport {
        findings,
        file: Some(file),
        schemas,
        catalog,
    })
}

/// The setting an [`Error::Invalid`] names, for locating it.
fn invalid_field(e: &Error) -> String {
    match e {
        Error::Invalid { what, .. } => what.split_whitespace().next().unwrap_or_default().into(),
        _ => String::new(),
    }
}

/// The 1-based line of the nested key path `keys` in a YAML or pretty JSON
/// text: each key is looked for (as a key, or as a list item's value) after
/// the line where the previous one was found; a key not found leaves the
/// line of the last one that was.
pub fn locate(text: &str, keys: &[&str]) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let mut at = 0usize;
    let mut found_line = 1usize;
    for key in keys.iter().filter(|k| !k.is_empty()) {
        let hit = lines
            .iter()
            .enumerate()
            .skip(at)
            .find(|(_, line)| line_names(line, key));
        if let Some((i, _)) = hit {
            at = i + 1;
            found_line = i + 1;
        }
    }
    found_line
}

fn line_names(line: &str, key: &str) -> bool {
    let t = line.trim_start().trim_start_matches("- ").trim_start();
    let quoted = |q: char| {
        t.strip_prefix(q)
            .and_then(|r| r.strip_prefix(key))
            .and_then(|r| r.strip_prefix(q))
            .is_some_and(|r| r.trim_start().starts_with(':'))
    };
    let bare = t
        .strip_prefix(key)
        .is_some_and(|r| r.trim_start().starts_with(':'));
    let as_value = t.ends_with(&format!(": {key}"))
        || t.ends_with(&format!(": \"{key}\""))
        || t.ends_with(&format!(": \"{key}\","))
        || t == key
        || t == format!("\"{key}\"")
        || t == format!("\"{key}\",");
    let in_flow_list = t.contains('[')
        && t.split(['[', ']', ','])
            .any(|item| item.trim().trim_matches('"') == key);
    bare || quoted('"') || quoted('\'') || as_value || in_flow_list
}
