//! The publish-path schema gate of one topic: allowed event types and
//! payload validation against the catalog, with the refusal count.
//!
//! Owns the per-topic check the producer runs on every event of a topic
//! whose settings require schemas. It must never append, never route (the
//! producer does), and never put a payload value in its error: the refusal
//! lists JSON pointers, failed keywords and schema facts only.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::schema::{Catalog, PayloadViolation};
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::topic::governance::TopicGovernance;

/// The schema gate of one topic (built when its first producer opens).
#[derive(Debug)]
pub(crate) struct SchemaGate {
    /// The data directory's catalog as it was when the gate was built, or
    /// why it could not be read (then every event is refused, naming it).
    catalog: std::result::Result<Catalog, String>,
    event_types: Vec<String>,
    refused: AtomicU64,
}

impl SchemaGate {
    /// The gate for a topic with `governance`, when it requires schemas.
    pub(crate) fn for_topic(data_dir: &Path, governance: &TopicGovernance) -> Option<SchemaGate> {
        governance.require_schemas.then(|| SchemaGate {
            catalog: Catalog::open(data_dir).map_err(|e| e.to_string()),
            event_types: governance.event_types.clone(),
            refused: AtomicU64::new(0),
        })
    }

    /// Events refused so far.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Checks one (validated, enriched) envelope; every problem at once.
    pub(crate) fn check(&self, envelope: &Envelope) -> Result<()> {
        let version = envelope.schema_version.as_str();
        let problems = match &self.catalog {
            Err(reason) => vec![PayloadViolation {
                pointer: String::new(),
                rule: "catalog".into(),
                message: format!("the schema catalog cannot be read: {reason}"),
            }],
            Ok(catalog) => {
                let mut problems = Vec::new();
                if !self.event_types.is_empty() && !self.event_types.contains(&envelope.event_type)
                {
                    problems.push(PayloadViolation {
                        pointer: String::new(),
                        rule: "event_types".into(),
                        message: format!(
                            "event type {} is not allowed on this topic (allowed: {})",
                            envelope.event_type,
                            self.event_types.join(", ")
                        ),
                    });
                }
                if let Err(found) =
                    catalog.validate(&envelope.event_type, version, &envelope.payload)
                {
                    problems.extend(found);
                }
                problems
            }
        };
        if problems.is_empty() {
            return Ok(());
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        Err(Error::SchemaViolation {
            event_type: envelope.event_type.clone(),
            version: version.to_string(),
            problems,
        })
    }
}
