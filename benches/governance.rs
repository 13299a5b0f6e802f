//! Criterion benchmarks of the governance checks on the publish path (issue 13):
//!
//! - `schema_validate/1kib`: one ~1 KiB payload (24 fields: strings, numbers,
//!   an enum, a nested object and an array of 8 objects) against its
//!   compiled 2020-12 schema (target: median <= 2 µs);
//! - `acl_authorize/20_rules`: one produce decision among 20 rules;
//! - `quota_admit/events_and_bytes`: one rate decision (two GCRA buckets,
//!   system clock), and `..._manual_clock` without the clock read (target < 100 ns);
//! - `publish_checks/validate_acl_quota`: the three together, as the
//!   producer runs them per event (target: >= 1 M events/s on one thread,
//!   i.e. <= 1 µs; the append itself is measured by benches/fabric.rs).
//!
//! `cargo bench --bench governance -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eventfabric::governance::{
    AclRule, Acls, Catalog, Effect, Operation, PatternKind, QuotaRule, RateGate, ResourceKind,
    SchemaCandidate,
};
use eventfabric::{ManualClock, SystemClock};
use serde_json::{Value, json};

fn schema() -> Value {
    let mut props = serde_json::Map::new();
    for i in 0..16 {
        props.insert(
            format!("field_{i:02}"),
            json!({"type": "string", "maxLength": 64}),
        );
    }
    props.insert("amount".into(), json!({"type": "integer", "minimum": 0}));
    props.insert("ratio".into(), json!({"type": "number"}));
    props.insert(
        "currency".into(),
        json!({"enum": ["USD", "EUR", "GBP", "JPY", "CAD"]}),
    );
    props.insert("paid".into(), json!({"type": "boolean"}));
    props.insert(
        "customer".into(),
        json!({"type": "object", "properties": {"id": {"type": "string"}, "tier": {"type": "integer"}}, "required": ["id"]}),
    );
    props.insert(
        "lines".into(),
        json!({"type": "array", "maxItems": 100, "items": {"type": "object", "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}, "required": ["sku", "qty"]}}),
    );
    json!({"type": "object", "properties": props, "required": ["field_00", "amount", "currency", "customer"]})
}

fn payload() -> Value {
    let mut p = serde_json::Map::new();
    for i in 0..16 {
        p.insert(
            format!("field_{i:02}"),
            json!(format!("value-{i:02}-abcdefghijklmnopqrstu")),
        );
    }
    p.insert("amount".into(), json!(12500));
    p.insert("ratio".into(), json!(0.25));
    p.insert("currency".into(), json!("USD"));
    p.insert("paid".into(), json!(false));
    p.insert("customer".into(), json!({"id": "cust-000123", "tier": 2}));
    let lines: Vec<Value> = (0..8)
        .map(|i| json!({"sku": format!("sku-{i:04}"), "qty": i + 1}))
        .collect();
    p.insert("lines".into(), Value::Array(lines));
    Value::Object(p)
}

fn acls() -> Acls {
    let mut rules: Vec<AclRule> = (0..19)
        .map(|i| AclRule {
            principal: format!("service-{i}"),
            tenant: "*".into(),
            operation: Operation::Produce,
            resource: ResourceKind::Topic,
            name: format!("domain{i}."),
            pattern: PatternKind::Prefix,
            effect: Effect::Allow,
        })
        .collect();
    rules.push(AclRule {
        principal: "billing-service".into(),
        tenant: "*".into(),
        operation: Operation::Produce,
        resource: ResourceKind::Topic,
        name: "billing.".into(),
        pattern: PatternKind::Prefix,
        effect: Effect::Allow,
    });
    Acls::in_memory(rules)
}

fn gate() -> RateGate {
    let rules = vec![QuotaRule {
        events_per_sec: Some(u64::MAX / 4),
        bytes_per_sec: Some(u64::MAX / 4),
        ..QuotaRule::default()
    }];
    RateGate::new(
        &rules,
        Some("tenant-123"),
        "billing-service",
        Arc::new(SystemClock),
    )
}

fn benches(c: &mut Criterion) {
    let mut catalog = Catalog::in_memory();
    let verdict = catalog
        .add(SchemaCandidate::new(
            "billing.invoice.issued",
            "1.2.0".parse().unwrap(),
            schema(),
        ))
        .unwrap();
    assert!(verdict.accepted());
    let payload = payload();
    let size = serde_json::to_vec(&payload).unwrap().len();
    assert!((900..=1300).contains(&size), "payload is {size} bytes");
    let compiled = catalog
        .compiled("billing.invoice.issued", "1.2.0")
        .unwrap()
        .clone();
    assert!(compiled.is_valid(&payload));

    let mut g = c.benchmark_group("schema_validate");
    g.throughput(Throughput::Elements(1));
    g.bench_function("1kib", |b| {
        b.iter(|| black_box(compiled.is_valid(black_box(&payload))))
    });
    g.finish();

    let acls = acls();
    let mut g = c.benchmark_group("acl_authorize");
    g.throughput(Throughput::Elements(1));
    g.bench_function("20_rules", |b| {
        b.iter(|| {
            acls.authorize(
                black_box("billing-service"),
                Some("tenant-123"),
                Operation::Produce,
                ResourceKind::Topic,
                black_box("billing.domain.v1"),
            )
            .unwrap()
        })
    });
    g.finish();

    let gate = gate();
    let mut g = c.benchmark_group("quota_admit");
    g.throughput(Throughput::Elements(1));
    g.bench_function("events_and_bytes", |b| {
        b.iter(|| {
            gate.admit(black_box("billing.invoice.issued"), black_box(1024))
                .unwrap()
        })
    });
    // The same decision without the wall-clock read (a host clock read
    // costs what the machine's clocksource costs; this is the check itself).
    let manual_clock = Arc::new(ManualClock::new(1_000_000));
    let manual = RateGate::new(
        &[QuotaRule {
            events_per_sec: Some(u64::MAX / 4),
            bytes_per_sec: Some(u64::MAX / 4),
            ..QuotaRule::default()
        }],
        Some("tenant-123"),
        "billing-service",
        manual_clock.clone(),
    );
    g.bench_function("events_and_bytes_manual_clock", |b| {
        b.iter(|| {
            // 2 µs of budget back per call (one atomic add) keeps it admitting.
            manual_clock.advance(std::time::Duration::from_micros(2));
            manual
                .admit(black_box("billing.invoice.issued"), black_box(1024))
                .unwrap()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("publish_checks");
    g.throughput(Throughput::Elements(1));
    g.bench_function("validate_acl_quota", |b| {
        b.iter(|| {
            acls.authorize(
                "billing-service",
                Some("tenant-123"),
                Operation::Produce,
                ResourceKind::Topic,
                "billing.domain.v1",
            )
            .unwrap();
            gate.admit("billing.invoice.issued", 1024).unwrap();
            catalog
                .validate(
                    "billing.invoice.issued",
                    black_box("1.2.0"),
                    black_box(&payload),
                )
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(governance, benches);
criterion_main!(governance);
