//! Quotas per tenant and per producer: events/s, bytes/s, stored bytes,
//! topics, consumer groups per topic; and the storm breaker for `system.*`.
//!
//! Owns the quota rules, their precedence (tenant+producer > tenant >
//! default), and the rate decision: one GCRA token bucket per bound handle,
//! a lock-free compare-and-swap on one atomic, so the check costs tens of
//! nanoseconds. Time is the monotonic reading of a [`Clock`], so tests drive it by hand. It
//! must never sleep itself (a `throttle` verdict says how long the caller
//! may wait) and never refuse a `system.*` event for rate: beyond its quota
//! such an event is dropped (at-most-once sampling) and counted instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::{Error, Result};

/// What a rate quota does when exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum QuotaAction {
    /// Block up to `throttle_deadline_ms`, then refuse.
    #[default]
    Throttle,
    /// Refuse at once.
    Reject,
}

/// Default longest wait of a throttled publish.
pub const DEFAULT_THROTTLE_DEADLINE_MS: u64 = 1_000;

/// One quota rule. No tenant and no producer = the default rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaRule {
    /// The tenant it applies to (`None`: every tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The producer (source) it applies to, within the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<String>,
    /// Events per second (one second of burst).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_per_sec: Option<u64>,
    /// Payload bytes per second (one second of burst).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_sec: Option<u64>,
    /// Stored bytes across the tenant's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_bytes: Option<u64>,
    /// Topics the tenant may own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<u32>,
    /// Consumer groups per topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_per_topic: Option<u32>,
    /// Throttle or reject.
    #[serde(default)]
    pub action: QuotaAction,
    /// Longest throttle wait in milliseconds.
    #[serde(default = "default_deadline")]
    pub throttle_deadline_ms: u64,
}

fn default_deadline() -> u64 {
    DEFAULT_THROTTLE_DEADLINE_MS
}

impl Default for QuotaRule {
    /// The default rule with no limit set (and the default throttle deadline).
    fn default() -> Self {
        QuotaRule {
            tenant: None,
            producer: None,
            events_per_sec: None,
            bytes_per_sec: None,
            stored_bytes: None,
            topics: None,
            groups_per_topic: None,
            action: QuotaAction::Throttle,
            throttle_deadline_ms: DEFAULT_THROTTLE_DEADLINE_MS,
        }
    }
}

impl QuotaRule {
    /// Checks the rule.
    pub fn validate(&self) -> Result<()> {
        if self.producer.is_some() && self.tenant.is_none() {
            return Err(Error::invalid(
                "quota",
                "a producer quota names its tenant too (precedence is tenant+producer > tenant > default)",
            ));
        }
        for (name, v) in [
            ("events_per_sec", self.events_per_sec),
            ("bytes_per_sec", self.bytes_per_sec),
            ("stored_bytes", self.stored_bytes),
        ] {
            if v == Some(0) {
                return Err(Error::invalid(
                    format!("quota {name}"),
                    "must be positive when set",
                ));
            }
        }
        Ok(())
    }

    fn specificity(&self) -> u8 {
        match (&self.tenant, &self.producer) {
            (Some(_), Some(_)) => 2,
            (Some(_), None) => 1,
            _ => 0,
        }
    }

    fn subject(&self) -> String {
        match (&self.tenant, &self.producer) {
            (Some(t), Some(p)) => format!("tenant {t:?} producer {p:?}"),
            (Some(t), None) => format!("tenant {t:?}"),
            _ => "default".into(),
        }
    }
}

/// The rule that applies to `(tenant, producer)`: the most specific match.
pub fn resolve<'a>(
    rules: &'a [QuotaRule],
    tenant: Option<&str>,
    producer: &str,
) -> Option<&'a QuotaRule> {
    rules
        .iter()
        .filter(|r| match (&r.tenant, &r.producer) {
            (Some(t), Some(p)) => Some(t.as_str()) == tenant && p == producer,
            (Some(t), None) => Some(t.as_str()) == tenant,
            (None, _) => true,
        })
        .max_by_key(|r| r.specificity())
}

/// A generic cell-rate (GCRA) token bucket: `rate` units a second with one
/// second of burst. One atomic: the theoretical arrival time in µs.
#[derive(Debug)]
struct Gcra {
    interval_ns: u64,
    burst_us: i64,
    tat_ns: AtomicI64,
}

impl Gcra {
    fn new(rate: u64) -> Gcra {
        Gcra {
            interval_ns: (1_000_000_000 / rate.max(1)).max(1),
            burst_us: 1_000_000,
            tat_ns: AtomicI64::new(i64::MIN),
        }
    }

    /// Takes `n` units at `now_us`; `Err(wait)` when they are not there yet
    /// (nothing is taken then).
    fn take(&self, now_us: i64, n: u64) -> std::result::Result<(), Duration> {
        let now = now_us.saturating_mul(1000);
        let cost = i64::try_from(self.interval_ns.saturating_mul(n)).unwrap_or(i64::MAX);
        let burst = self.burst_us.saturating_mul(1000);
        let mut tat = self.tat_ns.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now);
            let next = start.saturating_add(cost);
            let allowed_at = next.saturating_sub(burst);
            if allowed_at > now {
                let wait = u64::try_from(allowed_at - now).unwrap_or(0);
                return Err(Duration::from_nanos(wait));
            }
            match self
                .tat_ns
                .compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(seen) => tat = seen,
            }
        }
    }
}

/// What a rate check says about one publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead.
    Admit,
    /// Wait this long and check again (a `throttle` quota, within its deadline).
    Wait(Duration),
    /// A `system.*` event beyond its quota: drop it (counted), do not refuse.
    Drop,
}

/// The rate limiter of one bound handle `(tenant, producer)`.
#[derive(Debug)]
pub struct RateGate {
    rule: Option<QuotaRule>,
    events: Option<Gcra>,
    bytes: Option<Gcra>,
    clock: Arc<dyn Clock>,
    dropped: AtomicU64,
}

impl RateGate {
    /// The gate for `(tenant, producer)` under `rules`, timed by `clock`.
    pub fn new(
        rules: &[QuotaRule],
        tenant: Option<&str>,
        producer: &str,
        clock: Arc<dyn Clock>,
    ) -> RateGate {
        let rule = resolve(rules, tenant, producer).cloned();
        RateGate {
            events: rule.as_ref().and_then(|r| r.events_per_sec).map(Gcra::new),
            bytes: rule.as_ref().and_then(|r| r.bytes_per_sec).map(Gcra::new),
            rule,
            clock,
            dropped: AtomicU64::new(0),
        }
    }

    /// `system.*` events dropped by the storm breaker so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Checks one event of `bytes` payload bytes and `event_type`.
    pub fn admit(&self, event_type: &str, bytes: u64) -> Result<Admission> {
        let Some(rule) = &self.rule else {
            return Ok(Admission::Admit);
        };
        let now = i64::try_from(self.clock.monotonic().as_micros()).unwrap_or(i64::MAX);
        let mut wait = Duration::ZERO;
        let mut which = "";
        if let Some(g) = &self.events
            && let Err(w) = g.take(now, 1)
        {
            wait = w;
            which = "events_per_sec";
        }
        if wait.is_zero()
            && let Some(g) = &self.bytes
            && let Err(w) = g.take(now, bytes)
        {
            // Give the event unit back is not possible with GCRA without a
            // race; the bytes bucket is checked second so a refused event
            // cost one event unit at most.
            wait = w;
            which = "bytes_per_sec";
        }
        if wait.is_zero() {
            return Ok(Admission::Admit);
        }
        if event_type.starts_with("system.") {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(Admission::Drop);
        }
        let limit = match which {
            "events_per_sec" => format!("events_per_sec {}", rule.events_per_sec.unwrap_or(0)),
            _ => format!("bytes_per_sec {}", rule.bytes_per_sec.unwrap_or(0)),
        };
        match rule.action {
            QuotaAction::Throttle if wait <= Duration::from_millis(rule.throttle_deadline_ms) => {
                Ok(Admission::Wait(wait))
            }
            QuotaAction::Throttle => Err(Error::QuotaExceeded {
                subject: rule.subject(),
                limit,
                advice: format!(
                    "throttling would wait {wait:?}, beyond the deadline of {} ms; slow down",
                    rule.throttle_deadline_ms
                ),
            }),
            QuotaAction::Reject => Err(Error::QuotaExceeded {
                subject: rule.subject(),
                limit,
                advice: format!("retry in {wait:?}"),
            }),
        }
    }
}

/// Checks a count quota (`stored_bytes`, `topics`, `groups_per_topic`) of
/// the rule for `tenant`: may `current` grow by `adding`?
pub fn check_count(
    rules: &[QuotaRule],
    tenant: Option<&str>,
    what: &'static str,
    current: u64,
    adding: u64,
) -> Result<()> {
    let Some(rule) = resolve(rules, tenant, "") else {
        return Ok(());
    };
    let limit = match what {
        "stored_bytes" => rule.stored_bytes,
        "topics" => rule.topics.map(u64::from),
        "groups_per_topic" => rule.groups_per_topic.map(u64::from),
        _ => None,
    };
    match limit {
        Some(limit) if current.saturating_add(adding) > limit => Err(Error::QuotaExceeded {
            subject: rule.subject(),
            limit: format!("{what} {limit}"),
            advice: format!("{current} in use; raise the quota or free some"),
        }),
        _ => Ok(()),
    }
}

/// File name of the quota rules inside the governance directory.
pub const QUOTA_FILE: &str = "quotas.json";

/// Version of the `quotas.json` layout.
pub const QUOTA_FILE_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaFile {
    version: u32,
    rules: Vec<QuotaRule>,
    /// CRC-32 (IEEE) of the compact JSON of `rules`.
    checksum: u32,
}

/// Reads `<data>/governance/quotas.json` (no rules when it does not exist).
pub fn load(data_dir: &std::path::Path) -> Result<Vec<QuotaRule>> {
    let path = data_dir
        .join(super::schema::catalog::GOVERNANCE_DIR)
        .join(QUOTA_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
    let bad = |reason: String| {
        Error::corrupted(
            &path,
            0,
            format!("{reason}; restore the file or re-apply the topics file"),
        )
    };
    let file: QuotaFile =
        serde_json::from_slice(&text).map_err(|e| bad(format!("malformed quota file ({e})")))?;
    if file.version != QUOTA_FILE_VERSION {
        return Err(bad(format!(
            "unsupported quota file version {}, this build reads {QUOTA_FILE_VERSION}",
            file.version
        )));
    }
    let computed = crc32fast::hash(&rules_json(&file.rules)?);
    if computed != file.checksum {
        return Err(bad(format!(
            "checksum mismatch (stored {:#010x}, computed {computed:#010x})",
            file.checksum
        )));
    }
    Ok(file.rules)
}

fn rules_json(rules: &[QuotaRule]) -> Result<Vec<u8>> {
    serde_json::to_vec(rules)
        .map_err(|e| Error::invalid("quotas", format!("cannot serialise: {e}")))
}

/// Replaces `<data>/governance/quotas.json` crash-safely (temporary file,
/// fsync, rename, fsync of the directory) with `rules`.
pub fn store(data_dir: &std::path::Path, rules: &[QuotaRule]) -> Result<()> {
    for rule in rules {
        rule.validate()?;
    }
    let io = crate::storage::io::Io::default();
    let dir = data_dir.join(super::schema::catalog::GOVERNANCE_DIR);
    let file = QuotaFile {
        version: QUOTA_FILE_VERSION,
        rules: rules.to_vec(),
        checksum: crc32fast::hash(&rules_json(rules)?),
    };
    let mut text = serde_json::to_vec_pretty(&file)
        .map_err(|e| Error::invalid("quotas", format!("cannot serialise: {e}")))?;
    text.push(b'\n');
    super::schema::catalog::ensure_dir(&io, &dir)?;
    io.write_file_atomic(&dir, &dir.join(QUOTA_FILE), &text)
}
