//! Compiled payload validation against one registered schema version.
//!
//! Owns compiling a JSON Schema (draft 2020-12, through the `jsonschema`
//! crate built without its network and file resolvers) and turning its
//! errors into [`PayloadViolation`]s. It must never copy a payload value
//! into a violation: messages are built from the failed keyword and the
//! schema's own limits, so a field tagged `pii` never reaches an error, a log
//! line or a metrics label.

use std::fmt;

pub use crate::error::PayloadViolation;

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use super::{Rule, Violation, child_pointer};

/// The JSON Schema dialect the catalog accepts.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// A schema compiled for fast validation (build once, validate many payloads).
pub struct CompiledSchema {
    validator: jsonschema::Validator,
}

impl fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledSchema").finish_non_exhaustive()
    }
}

impl CompiledSchema {
    /// Compiles `schema` as draft 2020-12; a document that is not a valid
    /// schema, names another dialect, or has a `$ref` outside itself is a
    /// [`Rule::SchemaInvalid`] violation.
    pub fn compile(schema: &Value) -> Result<CompiledSchema, Violation> {
        let invalid = |message: String| Violation::new(Rule::SchemaInvalid, "", message);
        if !(schema.is_object() || schema.is_boolean()) {
            return Err(invalid("a JSON Schema is an object or a boolean".into()));
        }
        if let Some(dialect) = schema.get("$schema")
            && dialect.as_str().map(|d| d.trim_end_matches('#')) != Some(DRAFT_2020_12)
        {
            return Err(invalid(format!(
                "`$schema` is {dialect}; only draft 2020-12 ({DRAFT_2020_12}) is accepted"
            )));
        }
        if let Some(reference) = first_non_local_ref(schema) {
            return Err(invalid(format!(
                "`$ref` {reference:?} points outside the document; only local references (#...) are resolved, never the network or files"
            )));
        }
        if let Err(e) = jsonschema::meta::validate(schema) {
            return Err(invalid(format!(
                "not a valid JSON Schema 2020-12 document at {}: {}",
                e.instance_path(),
                kind_message(e.kind())
            )));
        }
        jsonschema::draft202012::options()
            .build(schema)
            .map(|validator| CompiledSchema { validator })
            .map_err(|e| invalid(format!("cannot compile: {e}")))
    }

    /// Whether `payload` is valid (the fast path: no error is built).
    pub fn is_valid(&self, payload: &Value) -> bool {
        self.validator.is_valid(payload)
    }

    /// Every problem of `payload`, empty when it is valid.
    pub fn problems(&self, payload: &Value) -> Vec<PayloadViolation> {
        if self.validator.is_valid(payload) {
            return Vec::new();
        }
        let mut out: Vec<PayloadViolation> = self
            .validator
            .iter_errors(payload)
            .map(|e| {
                let base = e.instance_path().as_str().to_string();
                let kind = e.kind();
                let pointer = match kind {
                    ValidationErrorKind::Required { property } => {
                        child_pointer(&base, property.as_str().unwrap_or_default())
                    }
                    _ => base,
                };
                PayloadViolation {
                    pointer,
                    rule: kind.keyword().to_string(),
                    message: kind_message(kind),
                }
            })
            .collect();
        out.dedup();
        out
    }
}

/// A message for a failed keyword built from the schema's side only.
fn kind_message(kind: &ValidationErrorKind) -> String {
    use ValidationErrorKind as K;
    match kind {
        K::Type { kind } => format!("the value is not of type {}", type_kind(kind)),
        K::Required { .. } => "the required field is missing".into(),
        K::AdditionalProperties { unexpected } => format!(
            "undeclared field(s) {} are not allowed here",
            unexpected.join(", ")
        ),
        K::Enum { .. } => "the value is not one of the allowed values".into(),
        K::Constant { .. } => "the value differs from the required constant".into(),
        K::Minimum { limit } => format!("the value is below the minimum {limit}"),
        K::Maximum { limit } => format!("the value is above the maximum {limit}"),
        K::ExclusiveMinimum { limit } => format!("the value is not above {limit}"),
        K::ExclusiveMaximum { limit } => format!("the value is not below {limit}"),
        K::MinLength { limit } => format!("the text is shorter than {limit} characters"),
        K::MaxLength { limit } => format!("the text is longer than {limit} characters"),
        K::MinItems { limit } => format!("the array has fewer than {limit} items"),
        K::MaxItems { limit } => format!("the array has more than {limit} items"),
        K::MinProperties { limit } => format!("the object has fewer than {limit} fields"),
        K::MaxProperties { limit } => format!("the object has more than {limit} fields"),
        K::Pattern { pattern } => format!("the text does not match the pattern {pattern:?}"),
        K::Format { format } => format!("the text is not a valid {format}"),
        K::UniqueItems => "the array has duplicate items".into(),
        K::FalseSchema => "no value is allowed here".into(),
        K::MultipleOf { .. } => "the number is not a multiple of the schema's multipleOf".into(),
        other => format!("the value fails the schema's `{}` keyword", other.keyword()),
    }
}

fn type_kind(kind: &jsonschema::error::TypeKind) -> String {
    match kind {
        jsonschema::error::TypeKind::Single(t) => t.to_string(),
        jsonschema::error::TypeKind::Multiple(ts) => {
            let names: Vec<String> = ts.iter().map(|t| t.to_string()).collect();
            names.join(" or ")
        }
    }
}

/// The first `$ref` (or `$dynamicRef`) that does not start with `#`.
fn first_non_local_ref(schema: &Value) -> Option<String> {
    match schema {
        Value::Object(m) => {
            for key in ["$ref", "$dynamicRef"] {
                if let Some(r) = m.get(key).and_then(Value::as_str)
                    && !r.starts_with('#')
                {
                    return Some(r.to_string());
                }
            }
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "enum" | "const" | "examples" | "default"))
                .find_map(|(_, v)| first_non_local_ref(v))
        }
        Value::Array(a) => a.iter().find_map(first_non_local_ref),
        _ => None,
    }
}
