//! The envelope's guarantees, end to end: the seed events parse and round-trip,
//! both encodings are lossless for every valid envelope, bad input is rejected
//! with every failing field named, and no input makes a parser panic.

use jiff::Timestamp;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Map, Value, json};

use eventfabric::envelope::{Envelope, EnvelopeRef, MAX_NESTING, SchemaVersion, Ttl};
use eventfabric::fixtures::{FixtureGenerator, FixtureKind};
use eventfabric::partition_for_key;

const SEEDS: [(&str, &str); 3] = [
    (
        "billing.invoice.issued",
        include_str!("fixtures/seed-events/billing.invoice.issued.json"),
    ),
    (
        "auth.user.login_succeeded",
        include_str!("fixtures/seed-events/auth.user.login_succeeded.json"),
    ),
    (
        "workflow.instance.completed",
        include_str!("fixtures/seed-events/workflow.instance.completed.json"),
    ),
];

fn json_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

// ---------------------------------------------------------------------------
// Seed events
// ---------------------------------------------------------------------------

#[test]
fn seed_events_parse_and_validate() {
    for (event_type, text) in SEEDS {
        let env = Envelope::from_json(text.as_bytes()).unwrap();
        env.validate().unwrap();
        assert_eq!(env.event_type, event_type);
        assert_eq!(env.event_id.get_version_num(), 7);
        assert!(env.tenant_id.is_some());
        assert!(FixtureKind::from_event_type(&env.event_type).is_some());
    }
}

#[test]
fn seed_events_round_trip_through_json() {
    for (_, text) in SEEDS {
        let original = json_value(text);
        let env = Envelope::from_json(text.as_bytes()).unwrap();
        assert_eq!(env.to_json_value(), original);
        assert_eq!(
            serde_json::from_slice::<Value>(&env.to_json()).unwrap(),
            original
        );
        // Key order is kept at every level, not just equal as maps.
        assert_eq!(
            serde_json::to_string(&env.to_json_value()).unwrap(),
            serde_json::to_string(&original).unwrap()
        );
    }
}

#[test]
fn seed_events_round_trip_through_messagepack() {
    for (_, text) in SEEDS {
        let original = json_value(text);
        let env = Envelope::from_json(text.as_bytes()).unwrap();
        let decoded = Envelope::decode(&env.to_bytes()).unwrap();
        assert_eq!(decoded, env);
        assert_eq!(
            serde_json::to_string(&decoded.to_json_value()).unwrap(),
            serde_json::to_string(&original).unwrap()
        );
    }
}

#[test]
fn seed_partition_keys_follow_the_contract() {
    let envs: Vec<Envelope> = SEEDS
        .iter()
        .map(|(_, text)| Envelope::from_json(text.as_bytes()).unwrap())
        .collect();
    // Billing and auth are partitioned by tenant, workflow by workflow id.
    for env in &envs {
        let p = partition_for_key(&env.partition_key, 12);
        assert!(p < 12);
    }
    assert_eq!(envs[0].partition_key, "tenant-123");
    assert_eq!(
        partition_for_key(&envs[0].partition_key, 12),
        partition_for_key(&envs[1].partition_key, 12)
    );
    assert_eq!(
        envs[2].payload["workflow_id"],
        envs[2].partition_key.as_str()
    );
}

// ---------------------------------------------------------------------------
// Rejections
// ---------------------------------------------------------------------------

fn billing_with(changes: &[(&str, Option<Value>)]) -> Vec<u8> {
    let mut v = json_value(SEEDS[0].1);
    let object = v.as_object_mut().unwrap();
    for (field, value) in changes {
        match value {
            Some(value) => {
                object.insert((*field).to_owned(), value.clone());
            }
            None => {
                object.shift_remove(*field);
            }
        }
    }
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn every_bad_field_is_reported_at_once() {
    let json = billing_with(&[
        (
            "event_id",
            Some(json!("6ba7b810-9dad-11d1-80b4-00c04fd430c8")),
        ), // v1
        ("event_type", Some(json!("billing-invoice-issued"))),
        ("tenant_id", Some(Value::Null)),
        ("occurred_at", Some(json!("2026-13-10T12:30:00Z"))),
        ("emitted_at", None),
        ("source", Some(json!(""))),
        ("schema_version", Some(json!("1.2"))),
        ("correlation_id", Some(json!(["flow"]))),
        ("causation_id", Some(json!(""))),
        ("partition_key", Some(json!(""))),
        ("ttl", Some(json!("soon"))),
        ("payload", None),
        ("priority", Some(json!("high"))),
    ]);
    let err = Envelope::from_json(&json).unwrap_err();
    let fields: Vec<&str> = err.fields().collect();
    assert_eq!(
        fields,
        [
            "priority",
            "event_id",
            "event_type",
            "tenant_id",
            "occurred_at",
            "emitted_at",
            "source",
            "schema_version",
            "correlation_id",
            "causation_id",
            "partition_key",
            "ttl",
            "payload",
        ],
        "{err}"
    );
    let message = err.to_string();
    assert!(message.starts_with("invalid envelope: priority: unknown field"));
    assert!(message.contains("event_id: must be a UUIDv7, got a version 1 UUID"));
    assert!(message.contains("emitted_at: missing (required)"));
}

#[test]
fn a_single_bad_field_is_the_only_one_reported() {
    let json = billing_with(&[("event_type", Some(json!("billing.invoice.Issued")))]);
    let err = Envelope::from_json(&json).unwrap_err();
    assert_eq!(err.fields().collect::<Vec<_>>(), ["event_type"]);
    assert!(
        err.to_string().contains("the action is \"Issued\""),
        "{err}"
    );
}

#[test]
fn tenant_may_be_null_or_absent_only_for_system_events() {
    for tenant in [Some(Value::Null), None] {
        let err = Envelope::from_json(&billing_with(&[("tenant_id", tenant.clone())])).unwrap_err();
        assert_eq!(err.fields().collect::<Vec<_>>(), ["tenant_id"]);

        let system = billing_with(&[
            ("event_type", Some(json!("system.dlq.saturated"))),
            ("tenant_id", tenant),
        ]);
        let env = Envelope::from_json(&system).unwrap();
        assert_eq!(env.tenant_id, None);
        assert_eq!(env.to_json_value()["tenant_id"], Value::Null);
    }
    // A system event may still name a tenant.
    let env = Envelope::from_json(&billing_with(&[(
        "event_type",
        Some(json!("system.quota.exceeded")),
    )]))
    .unwrap();
    assert_eq!(env.tenant_id.as_deref(), Some("tenant-123"));
}

#[test]
fn serde_deserialize_applies_the_same_rules() {
    let env: Envelope = serde_json::from_str(SEEDS[1].1).unwrap();
    assert_eq!(env, Envelope::from_json(SEEDS[1].1.as_bytes()).unwrap());
    let bad = billing_with(&[("source", Some(json!("")))]);
    let err = serde_json::from_slice::<Envelope>(&bad).unwrap_err();
    assert!(
        err.to_string().contains("source: must be non-empty"),
        "{err}"
    );
}

#[test]
fn payload_key_order_and_number_kinds_survive_both_encodings() {
    let payload_text =
        r#"{"z":1,"a":{"y":[1,-2,3.5,1.0,1e300,18446744073709551615],"b":null},"m":true,"":""}"#;
    let env = Envelope::from_json(&billing_with(&[(
        "payload",
        Some(json_value(payload_text)),
    )]))
    .unwrap();
    let expected =
        r#"{"z":1,"a":{"y":[1,-2,3.5,1.0,1e+300,18446744073709551615],"b":null},"m":true,"":""}"#;
    assert_eq!(serde_json::to_string(&env.payload).unwrap(), expected);
    let back = Envelope::decode(&env.to_bytes()).unwrap();
    assert_eq!(serde_json::to_string(&back.payload).unwrap(), expected);
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

#[test]
fn fixtures_encode_to_a_few_hundred_bytes() {
    let mut generator = FixtureGenerator::new(2026, 50);
    let mut buf = Vec::with_capacity(512);
    let mut means = Vec::new();
    for kind in FixtureKind::all() {
        let (mut min, mut max, mut total) = (usize::MAX, 0, 0);
        let n = 1_000;
        for env in generator.iter(kind).take(n) {
            buf.clear();
            env.encode(&mut buf);
            min = min.min(buf.len());
            max = max.max(buf.len());
            total += buf.len();
            assert_eq!(Envelope::decode(&buf).unwrap(), env);
        }
        let mean = total / n;
        println!(
            "{}: encoded size min {min}, mean {mean}, max {max} bytes",
            kind.event_type()
        );
        means.push((kind, mean));
    }
    for (kind, mean) in means {
        assert!((250..=350).contains(&mean), "{kind:?}: mean {mean}");
    }
}

#[test]
fn fixtures_round_trip_through_json() {
    let mut generator = FixtureGenerator::new(99, 3);
    for env in generator.mixed().take(600) {
        let json = env.to_json();
        assert_eq!(Envelope::from_json(&json).unwrap(), env);
        let seed = SEEDS
            .iter()
            .find(|(t, _)| *t == env.event_type)
            .map(|(_, text)| json_value(text))
            .unwrap();
        // Payloads have the seed's keys, in the seed's order, with the same kinds.
        assert_same_shape(&env.payload, &seed["payload"]);
    }
}

fn assert_same_shape(got: &Value, seed: &Value) {
    match (got, seed) {
        (Value::Object(got), Value::Object(seed)) => {
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                seed.keys().collect::<Vec<_>>()
            );
            for (g, s) in got.values().zip(seed.values()) {
                assert_same_shape(g, s);
            }
        }
        (Value::Number(g), Value::Number(s)) => {
            assert_eq!(
                (g.is_u64(), g.is_f64()),
                (s.is_u64(), s.is_f64()),
                "{g} vs {s}"
            );
        }
        (g, s) => assert_eq!(
            std::mem::discriminant(g),
            std::mem::discriminant(s),
            "{g} vs {s}"
        ),
    }
}

#[test]
fn fixtures_are_deterministic_across_generators() {
    let encode_all = |seed| {
        let mut out = Vec::new();
        for env in FixtureGenerator::new(seed, 10).mixed().take(90) {
            env.encode(&mut out);
        }
        out
    };
    assert_eq!(encode_all(5), encode_all(5));
    assert_ne!(encode_all(5), encode_all(6));
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((".{0,8}", inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn arb_segment() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,10}"
}

fn arb_schema_version() -> impl Strategy<Value = SchemaVersion> {
    let identifier = "(0|[1-9][0-9]{0,3}|[a-zA-Z-][0-9a-zA-Z-]{0,5})";
    (
        0..1000u64,
        0..1000u64,
        0..1000u64,
        prop::option::of(
            proptest::string::string_regex(&format!("{identifier}(\\.{identifier}){{0,2}}"))
                .unwrap(),
        ),
        prop::option::of("[0-9a-zA-Z-]{1,6}(\\.[0-9a-zA-Z-]{1,6}){0,2}"),
    )
        .prop_map(|(major, minor, patch, pre, build)| {
            let mut text = format!("{major}.{minor}.{patch}");
            if let Some(pre) = pre {
                text = format!("{text}-{pre}");
            }
            if let Some(build) = build {
                text = format!("{text}+{build}");
            }
            text.parse().unwrap()
        })
}

/// Microseconds from 0000-01-01T00:00:00Z to jiff's latest instant.
const EARLIEST_MICROS: i64 = -62_167_219_200_000_000;
const LATEST_MICROS: i64 = 253_402_207_200_999_999;

fn arb_timestamp() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        (EARLIEST_MICROS..=LATEST_MICROS),
        // Mostly around now, where real events are.
        (1_700_000_000_000_000i64..1_900_000_000_000_000),
    ]
    .prop_map(|micros| Timestamp::from_microsecond(micros).unwrap())
}

fn arb_envelope() -> impl Strategy<Value = Envelope> {
    let ids = (any::<u64>(), any::<u16>(), any::<u64>())
        .prop_map(|(ms, a, b)| Envelope::event_id_from_parts(ms, a, b));
    let kind = (
        arb_segment(),
        arb_segment(),
        arb_segment(),
        prop::option::of("\\PC{1,16}"),
    )
        .prop_map(|(domain, entity, action, tenant)| {
            let domain = if tenant.is_none() {
                "system".to_owned()
            } else {
                domain
            };
            (format!("{domain}.{entity}.{action}"), tenant)
        });
    let text = "\\PC{1,20}";
    (
        (ids, kind, arb_timestamp(), arb_timestamp()),
        (
            text,
            arb_schema_version(),
            text,
            prop::option::of(text),
            text,
        ),
        (prop::option::of(1..=u64::MAX), arb_json()),
    )
        .prop_map(
            |(
                (event_id, (event_type, tenant_id), occurred_at, emitted_at),
                (source, schema_version, correlation_id, causation_id, partition_key),
                (ttl, payload),
            )| Envelope {
                event_id,
                event_type,
                tenant_id,
                occurred_at,
                emitted_at,
                source,
                schema_version,
                correlation_id,
                causation_id,
                partition_key,
                ttl: ttl.and_then(Ttl::from_millis),
                payload,
            },
        )
}

/// Small edits of a valid encoding: flips, cuts and insertions.
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(position, value, op) in edits {
        if bytes.is_empty() {
            bytes.push(value);
            continue;
        }
        let i = position % bytes.len();
        match op % 4 {
            0 => bytes[i] = value,
            1 => bytes[i] ^= 1 << (value % 8),
            2 => bytes.truncate(i),
            _ => bytes.insert(i, value),
        }
    }
    bytes
}

// 256 cases each by default; PROPTEST_CASES=N runs more.
proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn generated_envelopes_are_valid(env in arb_envelope()) {
        prop_assert!(env.validate().is_ok(), "{:?}", env.validate());
    }

    #[test]
    fn json_round_trip_is_lossless(env in arb_envelope()) {
        let json = env.to_json();
        let back = Envelope::from_json(&json).unwrap();
        prop_assert_eq!(&back, &env);
        prop_assert_eq!(serde_json::from_slice::<Value>(&json).unwrap(), env.to_json_value());
    }

    #[test]
    fn binary_round_trip_is_lossless(env in arb_envelope()) {
        let mut buf = Vec::new();
        env.encode(&mut buf);
        prop_assert_eq!(Envelope::decode(&buf).unwrap(), env);
    }

    #[test]
    fn json_to_messagepack_to_json_is_lossless(env in arb_envelope()) {
        let original: Value = serde_json::from_slice(&env.to_json()).unwrap();
        let parsed = Envelope::from_json(&env.to_json()).unwrap();
        let decoded = Envelope::decode(&parsed.to_bytes()).unwrap();
        let again = decoded.to_json_value();
        prop_assert_eq!(&again, &original);
        // Same text too: integers did not become floats or the reverse, and order held.
        prop_assert_eq!(
            serde_json::to_string(&again).unwrap(),
            serde_json::to_string(&original).unwrap()
        );
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Envelope::decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_damaged_records(
        env in arb_envelope(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
    ) {
        let damaged = mutate(env.to_bytes(), &edits);
        if let Ok(decoded) = Envelope::decode(&damaged) {
            // Whatever decodes is a valid envelope.
            prop_assert!(decoded.validate().is_ok());
        }
    }

    #[test]
    fn decode_rejects_every_strict_prefix(env in arb_envelope()) {
        let bytes = env.to_bytes();
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            prop_assert!(Envelope::decode(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn borrowed_decode_sees_the_same_envelope(env in arb_envelope()) {
        let bytes = env.to_bytes();
        let r = EnvelopeRef::decode(&bytes).unwrap();
        prop_assert_eq!(r.event_id, env.event_id);
        prop_assert_eq!(r.event_type, env.event_type.as_str());
        prop_assert_eq!(r.tenant_id, env.tenant_id.as_deref());
        prop_assert_eq!(r.source, env.source.as_str());
        prop_assert_eq!(r.schema_version, env.schema_version.as_str());
        prop_assert_eq!(r.correlation_id, env.correlation_id.as_str());
        prop_assert_eq!(r.causation_id, env.causation_id.as_deref());
        prop_assert_eq!(r.partition_key, env.partition_key.as_str());
        prop_assert_eq!(r.ttl_millis, env.ttl.map(Ttl::as_millis));
        let decoded = Envelope::decode(&bytes).unwrap();
        prop_assert_eq!(r.occurred_at_micros, decoded.occurred_at.as_microsecond());
        prop_assert_eq!(r.emitted_at_micros, decoded.emitted_at.as_microsecond());
        prop_assert_eq!(r.payload().unwrap(), env.payload.clone());
        prop_assert_eq!(r.to_envelope().unwrap(), decoded);
    }

    #[test]
    fn borrowed_decode_accepts_and_rejects_like_decode(
        env in arb_envelope(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
    ) {
        let damaged = mutate(env.to_bytes(), &edits);
        match (Envelope::decode(&damaged), EnvelopeRef::decode(&damaged)) {
            (Ok(full), Ok(r)) => prop_assert_eq!(r.to_envelope().unwrap(), full),
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "decode {:?} but borrowed decode {:?}", a.map(|_| ()), b.map(|_| ())),
        }
    }

    #[test]
    fn borrowed_decode_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        prop_assert_eq!(EnvelopeRef::decode(&bytes).is_ok(), Envelope::decode(&bytes).is_ok());
    }

    #[test]
    fn from_json_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Envelope::from_json(&bytes);
    }

    #[test]
    fn from_json_never_panics_on_damaged_documents(
        env in arb_envelope(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
    ) {
        let damaged = mutate(env.to_json(), &edits);
        if let Ok(parsed) = Envelope::from_json(&damaged) {
            prop_assert!(parsed.validate().is_ok());
        }
    }
}

#[test]
fn decode_survives_deep_nesting_without_overflowing_the_stack() {
    // 100 000 nested one-element arrays, far past the limit.
    let mut bytes = vec![0x9D, 0x01];
    bytes.extend(std::iter::repeat_n(0x91, 100_000));
    assert!(Envelope::decode(&bytes).is_err());
    let env = Envelope::from_json(SEEDS[0].1.as_bytes()).unwrap();
    let mut record = env.to_bytes();
    // Replace the payload (last element) with the deep array.
    let payload_len = {
        let mut just_payload = Vec::new();
        rmp_serde::encode::write(&mut just_payload, &env.payload).unwrap();
        just_payload.len()
    };
    record.truncate(record.len() - payload_len);
    record.extend(std::iter::repeat_n(0x91, MAX_NESTING * 1000));
    record.push(0xC0);
    let err = Envelope::decode(&record).unwrap_err();
    assert!(err.problem("payload").is_some(), "{err}");
}

#[test]
fn borrowed_decode_agrees_on_nesting_at_the_limit() {
    let env = Envelope::from_json(SEEDS[0].1.as_bytes()).unwrap();
    let payload_len = {
        let mut just_payload = Vec::new();
        rmp_serde::encode::write(&mut just_payload, &env.payload).unwrap();
        just_payload.len()
    };
    let (mut agreed, mut rejected) = (0, 0);
    for depth in MAX_NESTING - 3..MAX_NESTING + 3 {
        for (open, leaf) in [(0x91u8, 0xC0u8), (0x81, 0xA1)] {
            let mut record = env.to_bytes();
            record.truncate(record.len() - payload_len);
            for _ in 0..depth {
                record.push(open);
                if open == 0x81 {
                    record.extend_from_slice(&[0xA1, b'k']);
                }
            }
            record.push(leaf);
            if leaf == 0xA1 {
                record.push(b'v');
            }
            let full = Envelope::decode(&record);
            let borrowed = EnvelopeRef::decode(&record);
            assert_eq!(
                full.is_ok(),
                borrowed.is_ok(),
                "depth {depth}, container {open:#x}"
            );
            match (&full, &borrowed) {
                (Ok(f), Ok(b)) => {
                    assert_eq!(&b.to_envelope().unwrap(), f);
                    agreed += 1;
                }
                (Err(f), Err(b)) => {
                    assert_eq!(f, b);
                    rejected += 1;
                }
                _ => unreachable!("checked above"),
            }
        }
    }
    assert!(
        agreed > 0 && rejected > 0,
        "{agreed} accepted, {rejected} rejected"
    );
}

#[test]
fn borrowed_decode_reads_every_fixture() {
    let mut generator = FixtureGenerator::new(5, 7);
    for env in generator.mixed().take(300) {
        let bytes = env.to_bytes();
        let r = EnvelopeRef::decode(&bytes).unwrap();
        assert_eq!(r.event_type, env.event_type);
        assert_eq!(r.payload().unwrap(), env.payload);
    }
}
