//! The errors of the envelope layer: one [`FieldProblem`] per failing field,
//! all of them in one [`EnvelopeError`], and [`ValueError`] for a string that
//! is not a schema version or TTL.
//!
//! This file owns how problems are collected and worded as a whole; it must
//! never drop a problem once recorded nor report an error with no problem.

use std::borrow::Cow;
use std::fmt;

/// One field that failed to parse or validate, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The field's name (or, for an unknown JSON key, that key; `envelope` for
    /// problems with the whole document or record).
    pub field: Cow<'static, str>,
    /// What is wrong, in words meant for the producer's developer.
    pub reason: String,
}

impl FieldProblem {
    /// A problem with `field`.
    pub fn new(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// An envelope was rejected: every problem found, in field order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeError {
    /// All problems found; never empty.
    pub problems: Vec<FieldProblem>,
}

impl EnvelopeError {
    /// An error with a single problem.
    pub fn single(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Self {
            problems: vec![FieldProblem::new(field, reason)],
        }
    }

    /// The first problem reported for `field`, if any.
    pub fn problem(&self, field: &str) -> Option<&FieldProblem> {
        self.problems.iter().find(|p| p.field == field)
    }

    /// The names of the fields with problems, in report order.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.problems.iter().map(|p| p.field.as_ref())
    }
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid envelope: ")?;
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for EnvelopeError {}

/// A string that is not a valid [`SchemaVersion`](super::SchemaVersion) or [`Ttl`](super::Ttl).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ValueError {
    reason: String,
}

impl ValueError {
    pub(super) fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// Collects problems so that every failing field is reported at once.
#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<FieldProblem>);

impl Problems {
    pub(super) fn push(&mut self, field: impl Into<Cow<'static, str>>, reason: impl Into<String>) {
        self.0.push(FieldProblem::new(field, reason));
    }

    /// Records the error of a field rule's `result`, if any.
    pub(super) fn check(&mut self, field: &'static str, result: Result<(), String>) {
        if let Err(reason) = result {
            self.push(field, reason);
        }
    }

    /// The value of `result`, or `None` after recording its error.
    pub(super) fn take<T>(&mut self, field: &'static str, result: Result<T, String>) -> Option<T> {
        result.map_err(|reason| self.push(field, reason)).ok()
    }

    pub(super) fn into_result(self) -> Result<(), EnvelopeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(EnvelopeError { problems: self.0 })
        }
    }
}
