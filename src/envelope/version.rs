//! [`SchemaVersion`], the semver of an event's payload contract.
//!
//! This file owns the semver 2.0.0 grammar; it must never build a
//! `SchemaVersion` that does not follow it.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::de;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ValueError;
use super::fields::quoted;

/// A semantic version `MAJOR.MINOR.PATCH[-pre-release][+build]` (semver 2.0.0).
///
/// Always valid: the only ways to get one are [`SchemaVersion::new`] and parsing.
/// The text is kept as given (the grammar admits exactly one spelling per
/// version), so [`SchemaVersion::as_str`] is free.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchemaVersion {
    text: Box<str>,
    major: u64,
    minor: u64,
    patch: u64,
}

impl SchemaVersion {
    /// The plain version `major.minor.patch`.
    pub fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            text: format!("{major}.{minor}.{patch}").into_boxed_str(),
            major,
            minor,
            patch,
        }
    }

    /// The major version: a change here breaks consumers.
    pub fn major(&self) -> u64 {
        self.major
    }

    /// The minor version: additive, backward-compatible changes.
    pub fn minor(&self) -> u64 {
        self.minor
    }

    /// The patch version.
    pub fn patch(&self) -> u64 {
        self.patch
    }

    /// The pre-release part after `-` (e.g. `rc.1`), if any.
    pub fn pre_release(&self) -> Option<&str> {
        let without_build = self.text.split('+').next().unwrap_or_default();
        without_build.split_once('-').map(|(_, pre)| pre)
    }

    /// The build metadata after `+`, if any.
    pub fn build(&self) -> Option<&str> {
        self.text.split_once('+').map(|(_, build)| build)
    }

    /// The version as text, exactly as parsed.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn semver_number(part: Option<&str>, name: &str) -> Result<u64, ValueError> {
    let part = part.unwrap_or_default();
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::new(format!(
            "must be a semantic version MAJOR.MINOR.PATCH[-pre][+build]; the {name} version must be digits"
        )));
    }
    if part.len() > 1 && part.starts_with('0') {
        return Err(ValueError::new(format!(
            "the {name} version must not have leading zeros"
        )));
    }
    part.parse()
        .map_err(|_| ValueError::new(format!("the {name} version does not fit in 64 bits")))
}

fn semver_identifiers(
    part: &str,
    what: &str,
    numeric_no_leading_zero: bool,
) -> Result<(), ValueError> {
    for id in part.split('.') {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(ValueError::new(format!(
                "{what} identifiers must be non-empty [0-9A-Za-z-], got {}",
                quoted(part)
            )));
        }
        if numeric_no_leading_zero
            && id.len() > 1
            && id.starts_with('0')
            && id.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(ValueError::new(format!(
                "numeric {what} identifiers must not have leading zeros, got {}",
                quoted(id)
            )));
        }
    }
    Ok(())
}

impl FromStr for SchemaVersion {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (rest, build) = match s.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (s, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (rest, None),
        };
        let mut parts = core.split('.');
        let major = semver_number(parts.next(), "major")?;
        let minor = semver_number(parts.next(), "minor")?;
        let patch = semver_number(parts.next(), "patch")?;
        if parts.next().is_some() {
            return Err(ValueError::new(format!(
                "must be a semantic version MAJOR.MINOR.PATCH[-pre][+build], got {}",
                quoted(s)
            )));
        }
        if let Some(pre) = pre {
            semver_identifiers(pre, "pre-release", true)?;
        }
        if let Some(build) = build {
            semver_identifiers(build, "build", false)?;
        }
        Ok(Self {
            text: s.into(),
            major,
            minor,
            patch,
        })
    }
}

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for SchemaVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for SchemaVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}
