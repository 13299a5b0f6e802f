//! Access control lists: who may do what to which topic, group or schema,
//! for which tenant.
//!
//! Owns the rule model ([`AclRule`]), the decision (default allow while no
//! rule exists; once any rule exists, default deny; a matching deny beats
//! any allow) and `<data>/governance/acls.json` (crash-safe, checksummed;
//! docs/FORMAT.md). It must never decide quotas or tenancy routing, and a
//! refusal always names principal, operation and resource.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::schema::catalog::{GOVERNANCE_DIR, ensure_dir};
use crate::error::{Error, Result};
use crate::storage::io::Io;

/// The principal of the unbound API (a host that opened the fabric without
/// naming one); ACLs can name it like any other.
pub const HOST_PRINCIPAL: &str = "host";

/// File name of the ACLs inside the governance directory.
pub const ACL_FILE: &str = "acls.json";

/// Version of the `acls.json` layout.
pub const ACL_FILE_VERSION: u32 = 1;

/// An operation an ACL governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Publish to a topic.
    Produce,
    /// Read a topic or join a group.
    Consume,
    /// See a topic's, group's or schema's settings.
    Describe,
    /// Create a topic, group or schema version.
    Create,
    /// Delete one.
    Delete,
    /// Change its settings.
    Alter,
    /// Replay a topic's dead letters.
    ReplayDlq,
}

/// What kind of resource a rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// A topic.
    Topic,
    /// A consumer group.
    Group,
    /// An event type's schemas.
    Schema,
}

/// How a rule's resource name matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PatternKind {
    /// The exact name.
    #[default]
    Literal,
    /// Every name starting with it.
    Prefix,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Permit the operation.
    Allow,
    /// Refuse it (wins over any allow).
    Deny,
}

macro_rules! spelled {
    ($ty:ty, $what:literal, $($variant:path => $text:literal),+) => {
        impl $ty {
            /// The command-line spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($variant => $text),+ }
            }
        }
        impl std::str::FromStr for $ty {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($text => Ok($variant),)+
                    other => Err(Error::invalid(
                        $what,
                        format!("{other:?} is not one of {}", [$($text),+].join(", ")),
                    )),
                }
            }
        }
    };
}

spelled!(Operation, "operation",
    Operation::Produce => "produce", Operation::Consume => "consume",
    Operation::Describe => "describe", Operation::Create => "create",
    Operation::Delete => "delete", Operation::Alter => "alter",
    Operation::ReplayDlq => "replay_dlq");
spelled!(ResourceKind, "resource kind",
    ResourceKind::Topic => "topic", ResourceKind::Group => "group", ResourceKind::Schema => "schema");
spelled!(PatternKind, "pattern", PatternKind::Literal => "literal", PatternKind::Prefix => "prefix");
spelled!(Effect, "effect", Effect::Allow => "allow", Effect::Deny => "deny");

/// One ACL rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclRule {
    /// The principal, or `*` for everyone.
    pub principal: String,
    /// The tenant, or `*` for any (and for requests bound to no tenant).
    #[serde(default = "any")]
    pub tenant: String,
    /// The operation.
    pub operation: Operation,
    /// The resource kind.
    pub resource: ResourceKind,
    /// The resource name or prefix.
    pub name: String,
    /// Literal or prefix match of `name`.
    #[serde(default)]
    pub pattern: PatternKind,
    /// Allow or deny.
    pub effect: Effect,
}

fn any() -> String {
    "*".into()
}

impl AclRule {
    fn matches(
        &self,
        principal: &str,
        tenant: Option<&str>,
        op: Operation,
        kind: ResourceKind,
        name: &str,
    ) -> bool {
        (self.principal == "*" || self.principal == principal)
            && (self.tenant == "*" || Some(self.tenant.as_str()) == tenant)
            && self.operation == op
            && self.resource == kind
            && match self.pattern {
                PatternKind::Literal => self.name == name,
                PatternKind::Prefix => name.starts_with(&self.name),
            }
    }

    /// Checks the rule's fields.
    pub fn validate(&self) -> Result<()> {
        if self.principal.is_empty() || self.name.is_empty() && self.pattern == PatternKind::Literal
        {
            return Err(Error::invalid(
                "acl rule",
                "principal and a literal resource name must be non-empty",
            ));
        }
        if self.tenant.is_empty() {
            return Err(Error::invalid("acl rule", "tenant must be an id or *"));
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AclFile {
    version: u32,
    rules: Vec<AclRule>,
    /// CRC-32 (IEEE) of the compact JSON of `rules`.
    checksum: u32,
}

/// The ACLs of a data directory.
#[derive(Debug)]
pub struct Acls {
    path: Option<PathBuf>,
    io: Io,
    rules: Vec<AclRule>,
}

impl Acls {
    /// ACLs held in memory only.
    pub fn in_memory(rules: Vec<AclRule>) -> Acls {
        Acls {
            path: None,
            io: Io::default(),
            rules,
        }
    }

    /// Opens `<data>/governance/acls.json` (no rules when it does not exist).
    pub fn open(data_dir: &Path) -> Result<Acls> {
        Acls::open_with_io(data_dir, Io::default())
    }

    /// [`Acls::open`] with a fault injector on every file operation (tests).
    #[cfg(feature = "failpoints")]
    pub fn open_with_faults(
        data_dir: &Path,
        faults: Option<std::sync::Arc<dyn crate::storage::io::FaultInjector>>,
    ) -> Result<Acls> {
        Acls::open_with_io(data_dir, Io::new(faults))
    }

    fn open_with_io(data_dir: &Path, io: Io) -> Result<Acls> {
        let path = data_dir.join(GOVERNANCE_DIR).join(ACL_FILE);
        let rules = if path.exists() {
            read_acl_file(&path)?
        } else {
            Vec::new()
        };
        Ok(Acls {
            path: Some(path),
            io,
            rules,
        })
    }

    /// The rules, in insertion order.
    pub fn rules(&self) -> &[AclRule] {
        &self.rules
    }

    /// Adds a rule (no-op when present) and persists crash-safely.
    pub fn add(&mut self, rule: AclRule) -> Result<bool> {
        rule.validate()?;
        if self.rules.contains(&rule) {
            return Ok(false);
        }
        let mut next = self.rules.clone();
        next.push(rule);
        self.store(next)?;
        Ok(true)
    }

    /// Removes a rule; whether it was there.
    pub fn remove(&mut self, rule: &AclRule) -> Result<bool> {
        let next: Vec<AclRule> = self.rules.iter().filter(|r| *r != rule).cloned().collect();
        if next.len() == self.rules.len() {
            return Ok(false);
        }
        self.store(next)?;
        Ok(true)
    }

    /// Replaces every rule (the topics file's `apply`).
    pub fn replace(&mut self, rules: Vec<AclRule>) -> Result<()> {
        for rule in &rules {
            rule.validate()?;
        }
        self.store(rules)
    }

    fn store(&mut self, next: Vec<AclRule>) -> Result<()> {
        if let Some(path) = &self.path {
            write_acl_file(&self.io, path, &next)?;
        }
        self.rules = next;
        Ok(())
    }

    /// May `principal`, acting for `tenant`, do `op` on the resource?
    /// An [`Error::AccessDenied`] names all three when not.
    pub fn authorize(
        &self,
        principal: &str,
        tenant: Option<&str>,
        op: Operation,
        kind: ResourceKind,
        name: &str,
    ) -> Result<()> {
        if self.rules.is_empty() {
            return Ok(());
        }
        let mut allowed = false;
        for rule in &self.rules {
            if rule.matches(principal, tenant, op, kind, name) {
                match rule.effect {
                    Effect::Deny => return Err(denied(principal, tenant, op, kind, name, true)),
                    Effect::Allow => allowed = true,
                }
            }
        }
        if allowed {
            Ok(())
        } else {
            Err(denied(principal, tenant, op, kind, name, false))
        }
    }
}

fn denied(
    principal: &str,
    tenant: Option<&str>,
    op: Operation,
    kind: ResourceKind,
    name: &str,
    by_deny: bool,
) -> Error {
    Error::AccessDenied {
        principal: principal.to_string(),
        tenant: tenant.map(str::to_owned),
        operation: op.as_str(),
        resource: format!("{} {name:?}", kind.as_str()),
        reason: if by_deny {
            "a deny rule matches".into()
        } else {
            "no allow rule matches (ACLs exist, so the default is deny)".into()
        },
    }
}

fn write_acl_file(io: &Io, path: &Path, rules: &[AclRule]) -> Result<()> {
    let body = serde_json::to_vec(rules)
        .map_err(|e| Error::invalid("acls", format!("cannot serialise: {e}")))?;
    let file = AclFile {
        version: ACL_FILE_VERSION,
        rules: rules.to_vec(),
        checksum: crc32fast::hash(&body),
    };
    let mut text = serde_json::to_vec_pretty(&file)
        .map_err(|e| Error::invalid("acls", format!("cannot serialise: {e}")))?;
    text.push(b'\n');
    let dir = path
        .parent()
        .ok_or_else(|| Error::invalid("acl path", format!("{} has no parent", path.display())))?;
    ensure_dir(io, dir)?;
    io.write_file_atomic(dir, path, &text)
}

fn read_acl_file(path: &Path) -> Result<Vec<AclRule>> {
    let text = fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let bad = |reason: String| {
        Error::corrupted(
            path,
            0,
            format!("{reason}; restore the file or re-apply the topics file"),
        )
    };
    let file: AclFile =
        serde_json::from_slice(&text).map_err(|e| bad(format!("malformed ACL file ({e})")))?;
    if file.version != ACL_FILE_VERSION {
        return Err(bad(format!(
            "unsupported ACL file version {}, this build reads {ACL_FILE_VERSION}",
            file.version
        )));
    }
    let body = serde_json::to_vec(&file.rules)
        .map_err(|e| Error::invalid("acls", format!("cannot serialise: {e}")))?;
    let computed = crc32fast::hash(&body);
    if computed != file.checksum {
        return Err(bad(format!(
            "checksum mismatch (stored {:#010x}, computed {computed:#010x})",
            file.checksum
        )));
    }
    Ok(file.rules)
}
