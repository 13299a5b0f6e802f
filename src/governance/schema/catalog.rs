//! The schema catalog of a data directory: event types, their ordered
//! schema versions, compatibility modes, and the semver gate new versions pass.
//!
//! Owns `<data>/governance/catalog.json` (written crash-safely: temporary
//! file, fsync, rename, fsync of the directory; versioned and checksummed;
//! layout in docs/FORMAT.md) and the compiled validators of every version.
//! It must never store a refused version, never change the file in place,
//! and never decide anything about topics: whether a topic requires schemas
//! is the topic's setting.
//!
//! The caller serialises writers: a `Fabric` (or the CLI) holds the data
//! directory's writer lock while it adds versions.
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::compat::{
    self, COMPAT_RULES_PER_DIRECTION, classification_removed, unclassified_fields,
    unknown_tag_pointers,
};
use super::validate::{CompiledSchema, PayloadViolation};
use super::{Classification, CompatMode, Rule, SchemaVersionRecord, Violation};
use crate::envelope::SchemaVersion;
use crate::error::{Error, Result};
use crate::storage::io::Io;

/// Directory of governance files inside a data directory.
pub const GOVERNANCE_DIR: &str = "governance";
/// File name of the catalog inside [`GOVERNANCE_DIR`].
pub const CATALOG_FILE: &str = "catalog.json";
/// Version of the `catalog.json` layout this build writes and reads.
pub const CATALOG_FILE_VERSION: u32 = 1;

/// Every registered version of one event type and its compatibility mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventTypeSchemas {
    /// The compatibility mode new versions are checked with.
    pub compat: CompatMode,
    /// Versions in registration order, which is increasing semver order.
    pub versions: Vec<SchemaVersionRecord>,
}

/// A schema version proposed for registration.
#[derive(Debug, Clone)]
pub struct SchemaCandidate {
    /// `<domain>.<entity>.<action>`.
    pub event_type: String,
    /// The proposed version.
    pub version: SchemaVersion,
    /// The JSON Schema document.
    pub schema: Value,
    /// The mode to check (and record) for the event type; `None` keeps the
    /// registered mode, or the default (`backward_transitive`) for a new type.
    pub compat: Option<CompatMode>,
    /// Classification tags by payload pointer.
    pub tags: BTreeMap<String, Classification>,
    /// Owning team.
    pub owner: Option<String>,
    /// One changelog line.
    pub changelog: Option<String>,
    /// Migration plan; required for a breaking (major) version.
    pub migration: Option<String>,
    /// Refuse fields without a classification tag (`fabric check` sets it).
    pub require_classification: bool,
}

impl SchemaCandidate {
    /// A candidate with no tags, owner, changelog or migration note.
    pub fn new(event_type: impl Into<String>, version: SchemaVersion, schema: Value) -> Self {
        SchemaCandidate {
            event_type: event_type.into(),
            version,
            schema,
            compat: None,
            tags: BTreeMap::new(),
            owner: None,
            changelog: None,
            migration: None,
            require_classification: false,
        }
    }
}

/// The outcome of checking a candidate: accepted when `violations` is empty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The event type.
    pub event_type: String,
    /// The candidate's version.
    pub version: String,
    /// The compatibility mode applied.
    pub compat: CompatMode,
    /// How many rule evaluations ran: each compatibility rule once per
    /// direction and compared version, plus each governance rule once.
    pub rules_checked: usize,
    /// Every violated rule; empty when accepted.
    pub violations: Vec<Violation>,
    /// Incompatibilities accepted because the version bumps major and
    /// carries a migration note (recorded for the changelog).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accepted_breaking: Vec<Violation>,
    /// The exact version (schema and tags) is registered already; nothing to store.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unchanged: bool,
}

impl Verdict {
    /// Whether the candidate may be registered.
    pub fn accepted(&self) -> bool {
        self.violations.is_empty()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    version: u32,
    event_types: BTreeMap<String, EventTypeSchemas>,
    /// CRC-32 (IEEE) of the compact JSON of `event_types` as stored.
    checksum: u32,
}

/// The schema catalog of one data directory (or an in-memory one for lints).
pub struct Catalog {
    /// `None` for an in-memory catalog that is never persisted.
    path: Option<PathBuf>,
    io: Io,
    event_types: BTreeMap<String, EventTypeSchemas>,
    compiled: HashMap<String, Vec<(String, Arc<CompiledSchema>)>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("path", &self.path)
            .field("event_types", &self.event_types.len())
            .finish()
    }
}

impl Catalog {
    /// An empty catalog held in memory only (`add` never writes a file).
    pub fn in_memory() -> Catalog {
        Catalog {
            path: None,
            io: Io::default(),
            event_types: BTreeMap::new(),
            compiled: HashMap::new(),
        }
    }

    /// Opens the catalog of `data_dir` (empty when it has none yet; nothing
    /// is created until the first version is added).
    pub fn open(data_dir: &Path) -> Result<Catalog> {
        Catalog::open_with_io(data_dir, Io::default())
    }

    /// [`Catalog::open`] with a fault injector on every file operation (tests).
    #[cfg(feature = "failpoints")]
    pub fn open_with_faults(
        data_dir: &Path,
        faults: Option<std::sync::Arc<dyn crate::storage::io::FaultInjector>>,
    ) -> Result<Catalog> {
        Catalog::open_with_io(data_dir, Io::new(faults))
    }

    fn open_with_io(data_dir: &Path, io: Io) -> Result<Catalog> {
        let path = catalog_path(data_dir);
        let event_types = if path.exists() {
            read_catalog_file(&path)?
        } else {
            BTreeMap::new()
        };
        let mut catalog = Catalog {
            path: Some(path),
            io,
            event_types,
            compiled: HashMap::new(),
        };
        catalog.compile_all()?;
        Ok(catalog)
    }

    /// An in-memory copy (same versions, never persisted): what a lint
    /// adds to without touching the data directory.
    pub fn detached(&self) -> Catalog {
        Catalog {
            path: None,
            io: Io::default(),
            event_types: self.event_types.clone(),
            compiled: self.compiled.clone(),
        }
    }

    /// The catalog file of `data_dir`.
    pub fn file_path(data_dir: &Path) -> PathBuf {
        catalog_path(data_dir)
    }

    fn compile_all(&mut self) -> Result<()> {
        let mut compiled = HashMap::new();
        for (event_type, entry) in &self.event_types {
            let mut versions = Vec::with_capacity(entry.versions.len());
            for record in &entry.versions {
                let schema = CompiledSchema::compile(&record.schema).map_err(|v| {
                    Error::corrupted(
                        self.path.clone().unwrap_or_default(),
                        0,
                        format!(
                            "stored schema {event_type} {} does not compile ({}); restore the file",
                            record.version, v.message
                        ),
                    )
                })?;
                versions.push((record.version.to_string(), Arc::new(schema)));
            }
            compiled.insert(event_type.clone(), versions);
        }
        self.compiled = compiled;
        Ok(())
    }

    /// Every event type with its versions, by name.
    pub fn event_types(&self) -> impl Iterator<Item = (&str, &EventTypeSchemas)> {
        self.event_types.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The versions of one event type.
    pub fn get(&self, event_type: &str) -> Option<&EventTypeSchemas> {
        self.event_types.get(event_type)
    }

    /// One registered version.
    pub fn version(&self, event_type: &str, version: &str) -> Option<&SchemaVersionRecord> {
        self.get(event_type)?
            .versions
            .iter()
            .find(|r| r.version.as_str() == version)
    }

    /// The compiled validator of one registered version.
    pub fn compiled(&self, event_type: &str, version: &str) -> Option<&Arc<CompiledSchema>> {
        self.compiled
            .get(event_type)?
            .iter()
            .find(|(v, _)| v == version)
            .map(|(_, s)| s)
    }

    /// Checks `payload` against the schema of `(event_type, version)`: every
    /// problem at once, or one `catalog` problem when that version is not registered.
    pub fn validate(
        &self,
        event_type: &str,
        version: &str,
        payload: &Value,
    ) -> std::result::Result<(), Vec<PayloadViolation>> {
        match self.compiled(event_type, version) {
            Some(schema) if schema.is_valid(payload) => Ok(()),
            Some(schema) => Err(schema.problems(payload)),
            None => Err(vec![PayloadViolation {
                pointer: String::new(),
                rule: "catalog".into(),
                message: if self.get(event_type).is_some() {
                    format!("schema version {version} of event type {event_type} is not registered")
                } else {
                    format!("event type {event_type} has no registered schema")
                },
            }]),
        }
    }

    /// The verdict on `candidate` without storing anything.
    pub fn check(&self, candidate: &SchemaCandidate) -> Verdict {
        let entry = self.event_types.get(&candidate.event_type);
        let compat = candidate
            .compat
            .or(entry.map(|e| e.compat))
            .unwrap_or_default();
        let mut verdict = Verdict {
            event_type: candidate.event_type.clone(),
            version: candidate.version.to_string(),
            compat,
            rules_checked: 1,
            violations: Vec::new(),
            accepted_breaking: Vec::new(),
            unchanged: false,
        };
        if let Err(v) = CompiledSchema::compile(&candidate.schema) {
            verdict.violations.push(v);
            return verdict;
        }
        verdict.rules_checked += 1;
        verdict
            .violations
            .extend(unknown_tag_pointers(&candidate.schema, &candidate.tags));
        if candidate.require_classification {
            verdict.rules_checked += 1;
            verdict
                .violations
                .extend(unclassified_fields(&candidate.schema, &candidate.tags));
        }
        let Some(latest) = entry.and_then(|e| e.versions.last()) else {
            return verdict;
        };
        let versions = entry.map(|e| e.versions.as_slice()).unwrap_or_default();
        verdict.rules_checked += 1;
        if let Some(same) = versions.iter().find(|r| r.version == candidate.version) {
            if same.schema == candidate.schema && same.tags == candidate.tags {
                verdict.unchanged = verdict.violations.is_empty();
            } else {
                verdict.violations.push(Violation::new(
                    Rule::VersionExists,
                    "",
                    format!(
                        "version {} of {} is registered with a different schema or tags; bump the version",
                        candidate.version, candidate.event_type
                    ),
                ));
            }
            return verdict;
        }
        verdict.rules_checked += 1;
        if triple(&candidate.version) <= triple(&latest.version) {
            verdict.violations.push(Violation::new(
                Rule::VersionNotIncreasing,
                "",
                format!(
                    "version {} is not above the latest registered version {}",
                    candidate.version, latest.version
                ),
            ));
            return verdict;
        }
        let compared: Vec<&SchemaVersionRecord> = if compat.is_transitive() {
            versions
                .iter()
                .filter(|r| r.version.major() == latest.version.major())
                .collect()
        } else {
            vec![latest]
        };
        let mut breaking = Vec::new();
        for direction in compat.directions() {
            for old in &compared {
                breaking.extend(compat::check(&old.schema, &candidate.schema, *direction));
                verdict.rules_checked += COMPAT_RULES_PER_DIRECTION;
            }
        }
        verdict.rules_checked += 1;
        breaking.extend(classification_removed(
            &latest.tags,
            &candidate.tags,
            &candidate.schema,
        ));
        breaking.sort_by(|a, b| (&a.pointer, a.rule).cmp(&(&b.pointer, b.rule)));
        breaking.dedup_by(|a, b| a.rule == b.rule && a.pointer == b.pointer);
        verdict.rules_checked += 3;
        let major_bump = candidate.version.major() > latest.version.major();
        let has_migration = candidate
            .migration
            .as_deref()
            .is_some_and(|m| !m.trim().is_empty());
        if breaking.is_empty() {
            if major_bump && compat != CompatMode::None {
                verdict.violations.push(Violation::new(
                    Rule::MajorBumpWithoutBreakingChange,
                    "",
                    format!(
                        "{} -> {} bumps major, but the change is compatible ({compat}): bump minor or patch",
                        latest.version, candidate.version
                    ),
                ));
            }
        } else if !major_bump {
            let n = breaking.len();
            verdict.violations.extend(breaking);
            verdict.violations.push(Violation::new(
                Rule::BreakingChangeNeedsMajor,
                "",
                format!(
                    "{n} incompatible change(s) under {compat}: version {} must bump major above {} and carry --migration",
                    candidate.version, latest.version
                ),
            ));
        } else if !has_migration {
            verdict.violations.extend(breaking);
            verdict.violations.push(Violation::new(
                Rule::MigrationNoteMissing,
                "",
                "a breaking major version needs a migration plan (--migration NOTE: dual-write window, consumers to move)",
            ));
        } else {
            verdict.accepted_breaking = breaking;
        }
        verdict
    }

    /// Checks `candidate` and, when accepted, stores it crash-safely. A
    /// refused candidate is returned as a verdict (nothing stored); a failed
    /// write is an error and leaves the catalog as it was (in memory and on disk).
    pub fn add(&mut self, candidate: SchemaCandidate) -> Result<Verdict> {
        let verdict = self.check(&candidate);
        if !verdict.accepted() || verdict.unchanged {
            return Ok(verdict);
        }
        let compiled = CompiledSchema::compile(&candidate.schema)
            .map_err(|v| Error::invalid("schema", v.message))?;
        let mut next = self.event_types.clone();
        let entry = next
            .entry(candidate.event_type.clone())
            .or_insert_with(|| EventTypeSchemas {
                compat: verdict.compat,
                versions: Vec::new(),
            });
        entry.compat = verdict.compat;
        entry.versions.push(SchemaVersionRecord {
            version: candidate.version.clone(),
            schema: candidate.schema,
            tags: candidate.tags,
            owner: candidate.owner,
            changelog: candidate.changelog,
            migration: candidate.migration,
            registered_at_us: crate::clock::now_micros(),
        });
        if let Some(path) = &self.path {
            write_catalog_file(&self.io, path, &next)?;
        }
        self.event_types = next;
        self.compiled
            .entry(candidate.event_type)
            .or_default()
            .push((candidate.version.to_string(), Arc::new(compiled)));
        Ok(verdict)
    }
}

fn triple(v: &SchemaVersion) -> (u64, u64, u64) {
    (v.major(), v.minor(), v.patch())
}

fn catalog_path(data_dir: &Path) -> PathBuf {
    data_dir.join(GOVERNANCE_DIR).join(CATALOG_FILE)
}

fn checksum_of(event_types: &Value) -> Result<u32> {
    let body = serde_json::to_vec(event_types)
        .map_err(|e| Error::invalid("schema catalog", format!("cannot serialise: {e}")))?;
    Ok(crc32fast::hash(&body))
}

/// Writes the catalog: the governance directory is created (and its parent
/// synced) first when missing, then temporary file, fsync, rename, fsync dir.
fn write_catalog_file(
    io: &Io,
    path: &Path,
    event_types: &BTreeMap<String, EventTypeSchemas>,
) -> Result<()> {
    let value = serde_json::to_value(event_types)
        .map_err(|e| Error::invalid("schema catalog", format!("cannot serialise: {e}")))?;
    let file = CatalogFile {
        version: CATALOG_FILE_VERSION,
        checksum: checksum_of(&value)?,
        event_types: event_types.clone(),
    };
    let mut text = serde_json::to_vec_pretty(&file)
        .map_err(|e| Error::invalid("schema catalog", format!("cannot serialise: {e}")))?;
    text.push(b'\n');
    let dir = path.parent().ok_or_else(|| {
        Error::invalid("catalog path", format!("{} has no parent", path.display()))
    })?;
    ensure_dir(io, dir)?;
    io.write_file_atomic(dir, path, &text)
}

/// Creates `dir` when missing and makes its entry durable in the parent.
pub(crate) fn ensure_dir(io: &Io, dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    match dir.parent() {
        Some(parent) => io.sync_dir(parent),
        None => Ok(()),
    }
}

fn read_catalog_file(path: &Path) -> Result<BTreeMap<String, EventTypeSchemas>> {
    let text = fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let bad = |position: u64, reason: String| {
        Error::corrupted(
            path,
            position,
            format!("{reason}; restore the file from a backup or re-apply the topics file"),
        )
    };
    let value: Value = serde_json::from_slice(&text).map_err(|e| {
        let position = byte_of(&text, e.line(), e.column());
        bad(position, format!("not valid JSON ({e})"))
    })?;
    let version = value.get("version").and_then(Value::as_u64);
    if version != Some(u64::from(CATALOG_FILE_VERSION)) {
        return Err(bad(
            0,
            format!(
                "unsupported catalog version {version:?}, this build reads version {CATALOG_FILE_VERSION}"
            ),
        ));
    }
    let computed = value
        .get("event_types")
        .map(checksum_of)
        .transpose()?
        .unwrap_or_default();
    let file: CatalogFile =
        serde_json::from_value(value).map_err(|e| bad(0, format!("malformed catalog ({e})")))?;
    if file.checksum != computed {
        return Err(bad(
            0,
            format!(
                "checksum mismatch (stored {:#010x}, computed {computed:#010x})",
                file.checksum
            ),
        ));
    }
    for (event_type, entry) in &file.event_types {
        let increasing = entry
            .versions
            .windows(2)
            .all(|w| matches!(w, [a, b] if triple(&a.version) < triple(&b.version)));
        if !increasing {
            return Err(bad(
                0,
                format!("the versions of {event_type} are not in increasing order"),
            ));
        }
    }
    Ok(file.event_types)
}

/// Byte offset of a 1-based line and column, for error positions.
pub(crate) fn byte_of(text: &[u8], line: usize, column: usize) -> u64 {
    let mut current = 1;
    for (i, b) in text.iter().enumerate() {
        if current == line {
            return (i + column.saturating_sub(1)) as u64;
        }
        if *b == b'\n' {
            current += 1;
        }
    }
    text.len() as u64
}
