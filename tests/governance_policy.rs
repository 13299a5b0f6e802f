//! ACL decisions, quotas on a manual clock, fan-out caps, and payload
//! validation that names pointer and rule but never a payload value.

use std::sync::Arc;
use std::time::Duration;

use eventfabric::governance::policy::TopicGovernance;
use eventfabric::governance::quota::{self, Admission, QuotaAction, QuotaRule, RateGate};
use eventfabric::governance::{
    AclRule, Acls, Catalog, Classification, Effect, Operation, PatternKind, ResourceKind,
    SchemaCandidate,
};
use eventfabric::{Error, ManualClock};
use serde_json::json;

fn acl(
    principal: &str,
    tenant: &str,
    op: Operation,
    name: &str,
    pattern: PatternKind,
    effect: Effect,
) -> AclRule {
    AclRule {
        principal: principal.into(),
        tenant: tenant.into(),
        operation: op,
        resource: ResourceKind::Topic,
        name: name.into(),
        pattern,
        effect,
    }
}

#[test]
fn acls_default_allow_until_a_rule_exists_then_default_deny_and_deny_wins() {
    use Operation::*;
    let topic = ResourceKind::Topic;
    let open = Acls::in_memory(Vec::new());
    assert!(
        open.authorize("anyone", None, Produce, topic, "billing.domain.v1")
            .is_ok()
    );

    let acls = Acls::in_memory(vec![
        acl(
            "billing-service",
            "*",
            Produce,
            "billing.",
            PatternKind::Prefix,
            Effect::Allow,
        ),
        acl(
            "billing-service",
            "*",
            Produce,
            "billing.internal.v1",
            PatternKind::Literal,
            Effect::Deny,
        ),
        acl(
            "reader",
            "tenant-a",
            Consume,
            "auth.audit.v1.tenant-a",
            PatternKind::Literal,
            Effect::Allow,
        ),
    ]);
    assert!(
        acls.authorize(
            "billing-service",
            Some("t"),
            Produce,
            topic,
            "billing.domain.v1"
        )
        .is_ok()
    );
    // Deny wins over the prefix allow.
    let err = acls
        .authorize(
            "billing-service",
            None,
            Produce,
            topic,
            "billing.internal.v1",
        )
        .unwrap_err();
    match &err {
        Error::AccessDenied {
            principal,
            operation,
            resource,
            reason,
            ..
        } => {
            assert_eq!(
                (principal.as_str(), *operation),
                ("billing-service", "produce")
            );
            assert_eq!(resource, "topic \"billing.internal.v1\"");
            assert!(reason.contains("deny rule"));
        }
        other => panic!("{other}"),
    }
    // Default deny: no rule for this operation.
    assert!(matches!(
        acls.authorize("billing-service", None, Consume, topic, "billing.domain.v1"),
        Err(Error::AccessDenied { .. })
    ));
    // Tenant scoping: tenant A's reader cannot read B's per-tenant topic, nor
    // its own topic while bound to B, nor unbound.
    assert!(
        acls.authorize(
            "reader",
            Some("tenant-a"),
            Consume,
            topic,
            "auth.audit.v1.tenant-a"
        )
        .is_ok()
    );
    for (tenant, name) in [
        (Some("tenant-a"), "auth.audit.v1.tenant-b"),
        (Some("tenant-b"), "auth.audit.v1.tenant-a"),
        (None, "auth.audit.v1.tenant-a"),
    ] {
        let err = acls
            .authorize("reader", tenant, Consume, topic, name)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"reader\"") && err.contains("consume") && err.contains(name),
            "{err}"
        );
    }
    // The resource kind matters: a topic rule says nothing about groups.
    assert!(
        acls.authorize(
            "billing-service",
            None,
            Produce,
            ResourceKind::Group,
            "billing.x"
        )
        .is_err()
    );
}

#[test]
fn acl_rules_persist_and_remove() {
    let data = tempfile::tempdir().unwrap();
    let mut acls = Acls::open(data.path()).unwrap();
    let r = acl(
        "p",
        "*",
        Operation::ReplayDlq,
        "billing.domain.v1",
        PatternKind::Literal,
        Effect::Allow,
    );
    assert!(acls.add(r.clone()).unwrap());
    assert!(!acls.add(r.clone()).unwrap(), "adding twice is a no-op");
    assert_eq!(
        Acls::open(data.path()).unwrap().rules(),
        std::slice::from_ref(&r)
    );
    assert!(acls.remove(&r).unwrap());
    assert!(Acls::open(data.path()).unwrap().rules().is_empty());
}

fn rules() -> Vec<QuotaRule> {
    vec![
        QuotaRule {
            events_per_sec: Some(100),
            ..QuotaRule::default()
        },
        QuotaRule {
            tenant: Some("t1".into()),
            events_per_sec: Some(10),
            action: QuotaAction::Reject,
            ..QuotaRule::default()
        },
        QuotaRule {
            tenant: Some("t1".into()),
            producer: Some("billing-service".into()),
            events_per_sec: Some(4),
            throttle_deadline_ms: 300,
            ..QuotaRule::default()
        },
        QuotaRule {
            tenant: Some("t2".into()),
            bytes_per_sec: Some(1000),
            topics: Some(2),
            ..QuotaRule::default()
        },
    ]
}

#[test]
fn quota_precedence_is_tenant_and_producer_then_tenant_then_default() {
    let rules = rules();
    assert_eq!(
        quota::resolve(&rules, Some("t1"), "billing-service")
            .unwrap()
            .events_per_sec,
        Some(4)
    );
    assert_eq!(
        quota::resolve(&rules, Some("t1"), "other")
            .unwrap()
            .events_per_sec,
        Some(10)
    );
    assert_eq!(
        quota::resolve(&rules, Some("t9"), "other")
            .unwrap()
            .events_per_sec,
        Some(100)
    );
    assert_eq!(
        quota::resolve(&rules, None, "other")
            .unwrap()
            .events_per_sec,
        Some(100)
    );
}

#[test]
fn rate_quotas_on_a_manual_clock() {
    let rules = rules();
    let clock = Arc::new(ManualClock::new(1_000_000_000));
    // t1/billing-service: 4 events/s, throttle up to 300 ms.
    let gate = RateGate::new(&rules, Some("t1"), "billing-service", clock.clone());
    for _ in 0..4 {
        assert_eq!(
            gate.admit("billing.invoice.issued", 100).unwrap(),
            Admission::Admit
        );
    }
    // The fifth waits one emission interval (250 ms), within the deadline.
    assert_eq!(
        gate.admit("billing.invoice.issued", 100).unwrap(),
        Admission::Wait(Duration::from_millis(250))
    );
    clock.advance(Duration::from_millis(250));
    assert_eq!(
        gate.admit("billing.invoice.issued", 100).unwrap(),
        Admission::Admit
    );
    // A wait is not a reservation: asking again at the same instant gets
    // the same answer, so a throttled caller sleeps and retries.
    assert_eq!(
        gate.admit("billing.invoice.issued", 100).unwrap(),
        Admission::Wait(Duration::from_millis(250))
    );
    // system.* events beyond the quota drop (sampling) instead of failing.
    assert_eq!(
        gate.admit("system.health.heartbeat", 10).unwrap(),
        Admission::Drop
    );
    assert_eq!(gate.dropped(), 1);
    // After a second the bucket is full again.
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        gate.admit("billing.invoice.issued", 100).unwrap(),
        Admission::Admit
    );

    // A wait beyond the throttle deadline is refused, naming subject and limit.
    let tight = vec![QuotaRule {
        tenant: Some("t3".into()),
        producer: Some("p".into()),
        events_per_sec: Some(4),
        throttle_deadline_ms: 100,
        ..QuotaRule::default()
    }];
    let gate = RateGate::new(&tight, Some("t3"), "p", clock.clone());
    for _ in 0..4 {
        assert_eq!(
            gate.admit("billing.invoice.issued", 1).unwrap(),
            Admission::Admit
        );
    }
    let err = gate
        .admit("billing.invoice.issued", 1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tenant \"t3\" producer \"p\"")
            && err.contains("events_per_sec 4")
            && err.contains("deadline"),
        "{err}"
    );

    // t1/other: reject at once.
    let gate = RateGate::new(&rules, Some("t1"), "other", clock.clone());
    for _ in 0..10 {
        assert_eq!(
            gate.admit("billing.invoice.issued", 1).unwrap(),
            Admission::Admit
        );
    }
    assert!(matches!(
        gate.admit("billing.invoice.issued", 1),
        Err(Error::QuotaExceeded { .. })
    ));

    // t2: bytes/s.
    let gate = RateGate::new(&rules, Some("t2"), "p", clock.clone());
    assert_eq!(gate.admit("x.y.z", 900).unwrap(), Admission::Admit);
    assert!(matches!(
        gate.admit("x.y.z", 900).unwrap(),
        Admission::Wait(_)
    ));
}

#[test]
fn count_quotas_and_fan_out_caps() {
    let rules = rules();
    assert!(quota::check_count(&rules, Some("t2"), "topics", 1, 1).is_ok());
    let err = quota::check_count(&rules, Some("t2"), "topics", 2, 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("topics 2"), "{err}");

    let gov = TopicGovernance {
        max_consumer_groups: 2,
        ..TopicGovernance::default()
    };
    let existing = vec!["a".to_string(), "b".to_string()];
    assert!(
        gov.check_fanout("t.v1", &existing, "a").is_ok(),
        "a member of an existing group"
    );
    assert!(gov.check_fanout("t.v1", &existing[..1], "b").is_ok());
    assert!(
        gov.check_fanout("t.v1", &existing, "c")
            .unwrap_err()
            .to_string()
            .contains("cap")
    );
    let allow = TopicGovernance {
        consumer_groups: vec!["a".into()],
        ..TopicGovernance::default()
    };
    assert!(
        allow
            .check_fanout("t.v1", &[], "z")
            .unwrap_err()
            .to_string()
            .contains("allows only")
    );
    let bulk = TopicGovernance {
        allow_bulk_fanout: true,
        max_consumer_groups: 1,
        ..allow
    };
    assert!(bulk.check_fanout("t.v1", &existing, "z").is_ok());
}

#[test]
fn payload_problems_name_pointer_and_rule_and_never_a_value() {
    let mut catalog = Catalog::in_memory();
    let mut c = SchemaCandidate::new(
        "auth.user.login_succeeded",
        "1.0.1".parse().unwrap(),
        json!({
            "type": "object",
            "properties": {
                "email": {"type": "string", "format": "email", "maxLength": 8},
                "ip": {"type": "integer"},
                "mfa": {"type": "boolean"},
                "lines": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}}}}
            },
            "required": ["mfa", "email"],
            "additionalProperties": false
        }),
    );
    c.tags.insert("/email".into(), Classification::Pii);
    c.tags.insert("/ip".into(), Classification::Pii);
    assert!(catalog.add(c).unwrap().accepted());
    let secret_email = "alice.secret@example.com";
    let payload = json!({"email": secret_email, "ip": "203.0.113.77", "lines": [{"sku": 1}]});
    let problems = catalog
        .validate("auth.user.login_succeeded", "1.0.1", &payload)
        .unwrap_err();
    let found: Vec<(&str, &str)> = problems
        .iter()
        .map(|p| (p.pointer.as_str(), p.rule.as_str()))
        .collect();
    for expected in [
        ("/email", "maxLength"),
        ("/ip", "type"),
        ("/mfa", "required"),
        ("/lines/0/sku", "type"),
    ] {
        assert!(found.contains(&expected), "{expected:?} not in {found:?}");
    }
    let all = problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n")
        + &format!("{problems:?}");
    for leaked in [secret_email, "203.0.113.77", "alice"] {
        assert!(
            !all.contains(leaked),
            "payload value {leaked:?} leaked into {all}"
        );
    }
    assert!(
        catalog
            .validate(
                "auth.user.login_succeeded",
                "1.0.1",
                &json!({"email": "a@b.c", "mfa": true})
            )
            .is_ok()
    );
    let unknown = catalog
        .validate("auth.user.login_succeeded", "9.9.9", &payload)
        .unwrap_err();
    assert_eq!(unknown[0].rule, "catalog");
    assert!(unknown[0].message.contains("9.9.9"));
    let unknown = catalog.validate("nope.x.y", "1.0.0", &payload).unwrap_err();
    assert!(unknown[0].message.contains("no registered schema"));
}
