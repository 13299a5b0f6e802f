//! Schema governance vocabulary: classifications, compatibility modes, the
//! named rules the checker reports, and one registered schema version.
//!
//! Owns the types shared by the catalog ([`catalog`]), the compatibility
//! checker ([`compat`]) and payload validation ([`validate`]). It must never
//! hold payload values: a [`Violation`] or [`PayloadViolation`] carries a JSON
//! pointer, a rule and a message built from schema facts only.

pub mod catalog;
pub mod compat;
pub mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::envelope::SchemaVersion;
use crate::error::Error;

pub use catalog::{Catalog, SchemaCandidate, Verdict};
pub use compat::Direction;
pub use validate::{CompiledSchema, PayloadViolation};

/// Data classification of a payload field (a tag on a JSON pointer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Classification {
    /// Personally identifiable information.
    Pii,
    /// Payment-card data.
    Pci,
    /// Credentials, keys, tokens.
    Secret,
    /// Explicitly not sensitive.
    None,
}

impl Classification {
    /// The tag's spelling (`pii`, `pci`, `secret`, `none`).
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Pii => "pii",
            Classification::Pci => "pci",
            Classification::Secret => "secret",
            Classification::None => "none",
        }
    }

    /// Whether the tag marks the field as sensitive (anything but `none`).
    pub fn is_sensitive(self) -> bool {
        self != Classification::None
    }
}

impl FromStr for Classification {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "pii" => Ok(Classification::Pii),
            "pci" => Ok(Classification::Pci),
            "secret" => Ok(Classification::Secret),
            "none" => Ok(Classification::None),
            other => Err(Error::invalid(
                "classification",
                format!("{other:?} is not one of pii, pci, secret, none"),
            )),
        }
    }
}

/// Which earlier versions a new schema version must stay compatible with,
/// and in which direction (Confluent Schema Registry's meaning).
///
/// `backward`: consumers on the new schema can read events written with the
/// previous one; `forward`: consumers still on the previous schema can read
/// events written with the new one; `full`: both. The `_transitive` forms
/// compare with every earlier version of the same major line instead of
/// only the latest. `none` checks nothing.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum CompatMode {
    /// New readers accept the latest earlier version's events.
    Backward,
    /// New readers accept every earlier version's events (the default).
    #[default]
    BackwardTransitive,
    /// Readers of the latest earlier version accept new events.
    Forward,
    /// Readers of every earlier version accept new events.
    ForwardTransitive,
    /// Backward and forward against the latest earlier version.
    Full,
    /// Backward and forward against every earlier version.
    FullTransitive,
    /// No compatibility check.
    None,
}

impl CompatMode {
    /// Every mode, in documentation order.
    pub const ALL: [CompatMode; 7] = [
        CompatMode::Backward,
        CompatMode::BackwardTransitive,
        CompatMode::Forward,
        CompatMode::ForwardTransitive,
        CompatMode::Full,
        CompatMode::FullTransitive,
        CompatMode::None,
    ];

    /// The mode's spelling, e.g. `backward_transitive`.
    pub fn as_str(self) -> &'static str {
        match self {
            CompatMode::Backward => "backward",
            CompatMode::BackwardTransitive => "backward_transitive",
            CompatMode::Forward => "forward",
            CompatMode::ForwardTransitive => "forward_transitive",
            CompatMode::Full => "full",
            CompatMode::FullTransitive => "full_transitive",
            CompatMode::None => "none",
        }
    }

    /// The directions this mode checks.
    pub fn directions(self) -> &'static [Direction] {
        match self {
            CompatMode::Backward | CompatMode::BackwardTransitive => &[Direction::Backward],
            CompatMode::Forward | CompatMode::ForwardTransitive => &[Direction::Forward],
            CompatMode::Full | CompatMode::FullTransitive => {
                &[Direction::Backward, Direction::Forward]
            }
            CompatMode::None => &[],
        }
    }

    /// Whether the mode compares with every earlier version of the major line.
    pub fn is_transitive(self) -> bool {
        matches!(
            self,
            CompatMode::BackwardTransitive
                | CompatMode::ForwardTransitive
                | CompatMode::FullTransitive
        )
    }
}

impl FromStr for CompatMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        CompatMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "compatibility mode",
                    format!(
                        "{s:?} is not one of {}",
                        CompatMode::ALL.map(CompatMode::as_str).join(", ")
                    ),
                )
            })
    }
}

impl fmt::Display for CompatMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named rule of the schema checker. The complete list, with what each
/// means, is in `docs/GOVERNANCE.md`; the spelling (`as_str`) is a contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Rule {
    // Compatibility rules: each describes the change from the earlier
    // version to the new one, and names the direction it breaks.
    /// The accepted types no longer overlap (e.g. string became integer).
    TypeChanged,
    /// The new schema accepts fewer types (breaks backward).
    TypeNarrowed,
    /// The new schema accepts more types (breaks forward).
    TypeWidened,
    /// A field became required (breaks backward: old events may lack it).
    RequiredFieldAdded,
    /// A required field became optional or was removed (breaks forward).
    RequiredFieldRemoved,
    /// A field old events carry was removed from a closed object (breaks backward).
    FieldRemoved,
    /// A field was added where old readers' closed object refuses it (breaks forward).
    FieldAddedToClosedModel,
    /// `additionalProperties` was closed or restricted (breaks backward).
    AdditionalPropertiesNarrowed,
    /// `additionalProperties` was opened or relaxed (breaks forward).
    AdditionalPropertiesWidened,
    /// An `enum`/`const` value was removed, or an enum was introduced (breaks backward).
    EnumValueRemoved,
    /// An `enum`/`const` value was added, or an enum was dropped (breaks forward).
    EnumValueAdded,
    /// A bound, length, count, `multipleOf`, `uniqueItems`, `pattern` or
    /// `format` became stricter (breaks backward).
    ConstraintNarrowed,
    /// One of those constraints became looser (breaks forward).
    ConstraintWidened,
    /// A composition (`anyOf`, `oneOf`, `allOf`, `not`, conditionals,
    /// `patternProperties`, ...) changed in a way the checker cannot prove safe.
    CompositionChanged,
    // Governance rules.
    /// A field tagged `pii`, `pci` or `secret` lost its tag (or became `none`).
    ClassificationRemoved,
    /// A field has no classification tag (itself or an ancestor); `fabric check` only.
    FieldUnclassified,
    /// A tag names a pointer the schema does not define.
    TagPointerUnknown,
    /// The schema is not a valid JSON Schema 2020-12 document (or uses a non-local `$ref`).
    SchemaInvalid,
    /// The version is registered already, with a different schema.
    VersionExists,
    /// The version is not greater than the latest registered version.
    VersionNotIncreasing,
    /// An incompatible change without a major version bump.
    BreakingChangeNeedsMajor,
    /// A major bump for a compatible change (bump minor or patch instead).
    MajorBumpWithoutBreakingChange,
    /// An incompatible change with a major bump but no `--migration` note.
    MigrationNoteMissing,
}

impl Rule {
    /// Every rule, in documentation order.
    pub const ALL: [Rule; 23] = [
        Rule::TypeChanged,
        Rule::TypeNarrowed,
        Rule::TypeWidened,
        Rule::RequiredFieldAdded,
        Rule::RequiredFieldRemoved,
        Rule::FieldRemoved,
        Rule::FieldAddedToClosedModel,
        Rule::AdditionalPropertiesNarrowed,
        Rule::AdditionalPropertiesWidened,
        Rule::EnumValueRemoved,
        Rule::EnumValueAdded,
        Rule::ConstraintNarrowed,
        Rule::ConstraintWidened,
        Rule::CompositionChanged,
        Rule::ClassificationRemoved,
        Rule::FieldUnclassified,
        Rule::TagPointerUnknown,
        Rule::SchemaInvalid,
        Rule::VersionExists,
        Rule::VersionNotIncreasing,
        Rule::BreakingChangeNeedsMajor,
        Rule::MajorBumpWithoutBreakingChange,
        Rule::MigrationNoteMissing,
    ];

    /// The rule's ID, e.g. `FIELD_REMOVED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::TypeChanged => "TYPE_CHANGED",
            Rule::TypeNarrowed => "TYPE_NARROWED",
            Rule::TypeWidened => "TYPE_WIDENED",
            Rule::RequiredFieldAdded => "REQUIRED_FIELD_ADDED",
            Rule::RequiredFieldRemoved => "REQUIRED_FIELD_REMOVED",
            Rule::FieldRemoved => "FIELD_REMOVED",
            Rule::FieldAddedToClosedModel => "FIELD_ADDED_TO_CLOSED_MODEL",
            Rule::AdditionalPropertiesNarrowed => "ADDITIONAL_PROPERTIES_NARROWED",
            Rule::AdditionalPropertiesWidened => "ADDITIONAL_PROPERTIES_WIDENED",
            Rule::EnumValueRemoved => "ENUM_VALUE_REMOVED",
            Rule::EnumValueAdded => "ENUM_VALUE_ADDED",
            Rule::ConstraintNarrowed => "CONSTRAINT_NARROWED",
            Rule::ConstraintWidened => "CONSTRAINT_WIDENED",
            Rule::CompositionChanged => "COMPOSITION_CHANGED",
            Rule::ClassificationRemoved => "CLASSIFICATION_REMOVED",
            Rule::FieldUnclassified => "FIELD_UNCLASSIFIED",
            Rule::TagPointerUnknown => "TAG_POINTER_UNKNOWN",
            Rule::SchemaInvalid => "SCHEMA_INVALID",
            Rule::VersionExists => "VERSION_EXISTS",
            Rule::VersionNotIncreasing => "VERSION_NOT_INCREASING",
            Rule::BreakingChangeNeedsMajor => "BREAKING_CHANGE_NEEDS_MAJOR",
            Rule::MajorBumpWithoutBreakingChange => "MAJOR_BUMP_WITHOUT_BREAKING_CHANGE",
            Rule::MigrationNoteMissing => "MIGRATION_NOTE_MISSING",
        }
    }

    /// The same finding seen from the other side of the change: a
    /// `backward` finding of A→B is the `reversed` `forward` finding of B→A
    /// (removing a required field one way is adding it the other way).
    pub fn reversed(self) -> Rule {
        match self {
            Rule::TypeNarrowed => Rule::TypeWidened,
            Rule::TypeWidened => Rule::TypeNarrowed,
            Rule::RequiredFieldAdded => Rule::RequiredFieldRemoved,
            Rule::RequiredFieldRemoved => Rule::RequiredFieldAdded,
            Rule::FieldRemoved => Rule::FieldAddedToClosedModel,
            Rule::FieldAddedToClosedModel => Rule::FieldRemoved,
            Rule::AdditionalPropertiesNarrowed => Rule::AdditionalPropertiesWidened,
            Rule::AdditionalPropertiesWidened => Rule::AdditionalPropertiesNarrowed,
            Rule::EnumValueRemoved => Rule::EnumValueAdded,
            Rule::EnumValueAdded => Rule::EnumValueRemoved,
            Rule::ConstraintNarrowed => Rule::ConstraintWidened,
            Rule::ConstraintWidened => Rule::ConstraintNarrowed,
            other => other,
        }
    }

    /// Whether the rule reports an incompatible data change (as opposed to a
    /// version-number or document problem).
    pub fn is_compatibility(self) -> bool {
        (self as usize) <= (Rule::CompositionChanged as usize)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One violated rule: which, where (a JSON pointer into the event payload,
/// `*` standing for every array element) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The rule.
    pub rule: Rule,
    /// The payload location, e.g. `/customer/email` or `/lines/*/sku`; empty for the whole payload.
    pub pointer: String,
    /// What changed, in words for the schema's author (schema facts only).
    pub message: String,
}

impl Violation {
    /// A violation of `rule` at `pointer`.
    pub fn new(rule: Rule, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Violation {
            rule,
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() {
            "(payload)"
        } else {
            &self.pointer
        };
        write!(f, "{} at {at}: {}", self.rule, self.message)
    }
}

/// One registered version of an event type's schema, as stored in the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaVersionRecord {
    /// The semver of this version.
    pub version: SchemaVersion,
    /// The JSON Schema (draft 2020-12) document.
    pub schema: Value,
    /// Classification tags by payload pointer.
    #[serde(default)]
    pub tags: BTreeMap<String, Classification>,
    /// The owning team, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// One changelog line, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changelog: Option<String>,
    /// The migration plan of a breaking (major) version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<String>,
    /// When it was registered, µs since the Unix epoch.
    pub registered_at_us: i64,
}

/// Escapes one JSON-pointer reference token (`~` → `~0`, `/` → `~1`).
pub(crate) fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// `base` extended by one token.
pub(crate) fn child_pointer(base: &str, token: &str) -> String {
    format!("{base}/{}", escape_pointer_token(token))
}
