//! Governance: what may be published where, by whom, and in which shape.
//!
//! Owns the schema catalog (versions, compatibility rules, semver
//! enforcement, compiled payload validation), the declarative topics file
//! (`fabric check` / `plan` / `apply`), ACLs, quotas and fan-out caps. The
//! model is explained in `docs/GOVERNANCE.md`.
//!
//! It must never write partition data and never put the value of a payload
//! field in an error, a log line or a metrics label: problems name JSON
//! pointers, rules and schema facts only, so a field tagged `pii` cannot leak.

pub mod acl;
pub(crate) mod gate;
pub mod quota;
pub mod schema;
pub mod topics_file;

/// Per-topic governance settings; they live with the topic (`topic.json`).
pub use crate::topic::governance as policy;
pub use acl::{AclRule, Acls, Effect, HOST_PRINCIPAL, Operation, PatternKind, ResourceKind};
pub use policy::{Tenancy, TopicGovernance};
pub use quota::{Admission, QuotaAction, QuotaRule, RateGate};

pub use schema::{
    Catalog, Classification, CompatMode, CompiledSchema, Direction, PayloadViolation, Rule,
    SchemaCandidate, SchemaVersionRecord, Verdict, Violation,
};
