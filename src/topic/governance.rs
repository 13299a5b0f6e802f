//! Per-topic governance settings: tenancy mode, schema requirement, DLQ
//! routing of schema violations, allowed event types and fan-out controls.
//!
//! Owns the [`TopicGovernance`] value a topic carries in `topic.json` and
//! the fan-out check. It lives in the topic layer because a topic's settings
//! own it; the governance layer re-exports it as `governance::policy`. It
//! must never read or write files (`topic.json` belongs to [`super::config`],
//! the topics file to `governance::topics_file`).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a topic separates tenants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Tenancy {
    /// One topic for every tenant, partitioned by `tenant_id` (the default).
    #[default]
    Shared,
    /// One topic per tenant, named `<topic>.<tenant>`, created on first publish when allowed.
    PerTenant,
    /// A shared control topic plus per-tenant data topics.
    Hybrid,
}

impl Tenancy {
    /// The mode's spelling (`shared`, `per_tenant`, `hybrid`).
    pub fn as_str(self) -> &'static str {
        match self {
            Tenancy::Shared => "shared",
            Tenancy::PerTenant => "per_tenant",
            Tenancy::Hybrid => "hybrid",
        }
    }
}

impl std::str::FromStr for Tenancy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "shared" => Ok(Tenancy::Shared),
            "per_tenant" => Ok(Tenancy::PerTenant),
            "hybrid" => Ok(Tenancy::Hybrid),
            other => Err(Error::invalid(
                "tenancy",
                format!("{other:?} is not one of shared, per_tenant, hybrid"),
            )),
        }
    }
}

/// Default cap on consumer groups per topic.
pub const DEFAULT_MAX_CONSUMER_GROUPS: u32 = 32;

/// The governance settings of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicGovernance {
    /// Validate every payload against the catalog schema of its
    /// `(event_type, schema_version)`; refuse unknown types and versions.
    #[serde(default)]
    pub require_schemas: bool,
    /// Route refused payloads to the topic's DLQ with reason
    /// `schema_violation` instead of only refusing them.
    #[serde(default)]
    pub schema_violations_to_dlq: bool,
    /// How tenants are separated.
    #[serde(default)]
    pub tenancy: Tenancy,
    /// Event types allowed on the topic; empty = any registered type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_types: Vec<String>,
    /// Consumer groups allowed on the topic; empty = any name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumer_groups: Vec<String>,
    /// Most consumer groups the topic may have.
    #[serde(default = "default_max_groups")]
    pub max_consumer_groups: u32,
    /// Lift the group cap and the allowlist (bulk fan-out, explicitly).
    #[serde(default)]
    pub allow_bulk_fanout: bool,
}

fn default_max_groups() -> u32 {
    DEFAULT_MAX_CONSUMER_GROUPS
}

impl Default for TopicGovernance {
    fn default() -> Self {
        TopicGovernance {
            require_schemas: false,
            schema_violations_to_dlq: false,
            tenancy: Tenancy::Shared,
            event_types: Vec::new(),
            consumer_groups: Vec::new(),
            max_consumer_groups: DEFAULT_MAX_CONSUMER_GROUPS,
            allow_bulk_fanout: false,
        }
    }
}

impl TopicGovernance {
    /// Whether these are the defaults (left out of `topic.json`).
    pub fn is_default(&self) -> bool {
        *self == TopicGovernance::default()
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.max_consumer_groups == 0 {
            return Err(Error::invalid(
                "max_consumer_groups",
                "must be positive (set allow_bulk_fanout to lift the cap)",
            ));
        }
        if !self.allow_bulk_fanout && self.consumer_groups.len() > self.max_consumer_groups as usize
        {
            return Err(Error::invalid(
                "consumer_groups",
                format!(
                    "{} groups are allowed by name but max_consumer_groups is {}",
                    self.consumer_groups.len(),
                    self.max_consumer_groups
                ),
            ));
        }
        Ok(())
    }

    /// May `group` join `topic`, which has the groups `existing` already?
    pub fn check_fanout(&self, topic: &str, existing: &[String], group: &str) -> Result<()> {
        if self.allow_bulk_fanout || existing.iter().any(|g| g == group) {
            return Ok(());
        }
        if !self.consumer_groups.is_empty() && !self.consumer_groups.iter().any(|g| g == group) {
            return Err(Error::invalid(
                format!("consumer group {group:?} on topic {topic:?}"),
                format!(
                    "the topic allows only the groups {}; add it to consumer_groups or set allow_bulk_fanout",
                    self.consumer_groups.join(", ")
                ),
            ));
        }
        if existing.len() >= self.max_consumer_groups as usize {
            return Err(Error::invalid(
                format!("consumer group {group:?} on topic {topic:?}"),
                format!(
                    "the topic has {} groups, its cap (max_consumer_groups); raise it or set allow_bulk_fanout",
                    existing.len()
                ),
            ));
        }
        Ok(())
    }
}
