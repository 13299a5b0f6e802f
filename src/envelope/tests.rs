//! Unit tests of the envelope layer: both encodings against each other and
//! against rmp-serde, and every field rule.

use super::fields::*;
use super::*;
use serde::ser::SerializeTuple;
use serde::{Serialize, Serializer};
use serde_json::json;
use std::time::Duration;

/// Serialises the 16 UUID bytes as MessagePack `bin`, not as an array of integers.
struct IdBytes<'a>(&'a [u8; 16]);

impl Serialize for IdBytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// The envelope in binary layout order, through serde: the reference the
/// direct writer of [`Envelope::encode`] is checked against.
struct Wire<'a>(&'a Envelope);

impl Serialize for Wire<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut t = serializer.serialize_tuple(WIRE_ELEMENTS)?;
        t.serialize_element(&LAYOUT_VERSION)?;
        t.serialize_element(&IdBytes(e.event_id.as_bytes()))?;
        t.serialize_element(e.event_type.as_str())?;
        t.serialize_element(&e.tenant_id.as_deref())?;
        t.serialize_element(&micros_of(e.occurred_at))?;
        t.serialize_element(&micros_of(e.emitted_at))?;
        t.serialize_element(e.source.as_str())?;
        t.serialize_element(e.schema_version.as_str())?;
        t.serialize_element(e.correlation_id.as_str())?;
        t.serialize_element(&e.causation_id.as_deref())?;
        t.serialize_element(e.partition_key.as_str())?;
        t.serialize_element(&e.ttl.map(Ttl::as_millis))?;
        t.serialize_element(&e.payload)?;
        t.end()
    }
}

#[test]
fn direct_encoding_is_byte_identical_to_rmp_serde() {
    fn reference(e: &Envelope) -> Vec<u8> {
        let mut out = Vec::new();
        Wire(e)
            .serialize(&mut rmp_serde::Serializer::new(&mut out))
            .unwrap();
        out
    }
    let mut generator = crate::fixtures::FixtureGenerator::new(3, 9);
    for e in generator.mixed().take(300) {
        assert_eq!(e.to_bytes(), reference(&e));
    }
    let mut e = Envelope::from_json(BILLING.as_bytes()).unwrap();
    let mut numbers = vec![
        json!(0),
        json!(-1),
        json!(1.5),
        json!(f64::MIN_POSITIVE),
        json!(u64::MAX),
        json!(i64::MIN),
    ];
    for edge in [
        31i64,
        32,
        127,
        128,
        255,
        256,
        65_535,
        65_536,
        4_294_967_295,
        4_294_967_296,
    ] {
        numbers.push(json!(edge));
        numbers.push(json!(-edge));
    }
    let strings: Vec<Value> = [0usize, 31, 32, 255, 256, 65_535, 65_536]
        .iter()
        .map(|&n| json!("x".repeat(n)))
        .collect();
    let big_map: serde_json::Map<String, Value> =
        (0..70_000).map(|i| (format!("k{i}"), json!(i))).collect();
    e.payload = json!({
        "numbers": numbers,
        "strings": strings,
        "nested": {"a": [[], {}, [null, true, false]], "b": {"c": {"d": 1}}},
        "array15": vec![1; 15], "array16": vec![1; 16], "array70000": vec![0; 70_000],
        "big": big_map,
    });
    e.ttl = Ttl::from_millis(300_000);
    e.causation_id = Some("cause".into());
    e.tenant_id = None;
    e.event_type = "system.node.started".into();
    assert_eq!(e.to_bytes(), reference(&e));
    assert_eq!(Envelope::decode(&e.to_bytes()).unwrap().payload, e.payload);
}

const BILLING: &str = r#"{
  "event_id": "0194a5c1-3f24-7b7a-bc59-5f23d81f5b1a",
  "event_type": "billing.invoice.issued",
  "tenant_id": "tenant-123",
  "occurred_at": "2026-06-10T12:30:00Z",
  "emitted_at": "2026-06-10T12:30:01Z",
  "source": "billing-service",
  "schema_version": "1.2.0",
  "correlation_id": "flow-789",
  "partition_key": "tenant-123",
  "payload": {"invoice_id": "inv-456", "amount": 12500, "line_items": 8}
}"#;

fn billing_value() -> Value {
    serde_json::from_str(BILLING).unwrap()
}

fn with(field: &str, value: Value) -> Vec<u8> {
    let mut v = billing_value();
    v[field] = value;
    serde_json::to_vec(&v).unwrap()
}

fn without(field: &str) -> Vec<u8> {
    let mut v = billing_value();
    v.as_object_mut().unwrap().shift_remove(field);
    serde_json::to_vec(&v).unwrap()
}

fn rejected_field(json: &[u8], field: &str) -> EnvelopeError {
    let err = Envelope::from_json(json).unwrap_err();
    assert!(
        err.problem(field).is_some(),
        "expected a problem for {field}, got: {err}"
    );
    err
}

#[test]
fn seed_parses_and_round_trips() {
    let env = Envelope::from_json(BILLING.as_bytes()).unwrap();
    env.validate().unwrap();
    assert_eq!(env.to_json_value(), billing_value());
    let text: Value = serde_json::from_slice(&env.to_json()).unwrap();
    assert_eq!(text, billing_value());
    assert_eq!(Envelope::decode(&env.to_bytes()).unwrap(), env);
}

#[test]
fn each_bad_field_is_named() {
    let cases: Vec<(&str, Value)> = vec![
        ("event_id", json!("0194a5c1-3f24-4b7a-bc59-5f23d81f5b1a")), // v4
        ("event_id", json!("not-a-uuid")),
        ("event_id", json!("0194a5c13f247b7abc595f23d81f5b1a")), // unhyphenated
        ("event_id", json!("0194a5c1-3f24-7b7a-1c59-5f23d81f5b1a")), // NCS variant
        ("event_id", json!(42)),
        ("event_type", json!("billing.invoice")),
        ("event_type", json!("billing.Invoice.issued")),
        ("event_type", json!("billing.invoice.issued.extra")),
        ("event_type", json!("billing..issued")),
        ("event_type", json!("1billing.invoice.issued")),
        ("tenant_id", json!(null)),
        ("tenant_id", json!("")),
        ("tenant_id", json!(7)),
        ("occurred_at", json!("2026-06-10")),
        ("occurred_at", json!("2026-06-10T12:30Z")),
        ("occurred_at", json!("20260610T123000Z")),
        ("occurred_at", json!("2026-06-10T12:30:00")),
        ("occurred_at", json!("2026-02-30T12:30:00Z")),
        ("occurred_at", json!("0000-01-01T00:00:00+01:00")),
        ("emitted_at", json!("2026-06-10T12:30:00+00:00[UTC]")),
        ("emitted_at", json!(1_781_094_600)),
        ("source", json!("")),
        ("source", json!(null)),
        ("schema_version", json!("1.2")),
        ("schema_version", json!("01.2.0")),
        ("schema_version", json!("1.2.0-")),
        ("schema_version", json!("1.2.0-01")),
        ("schema_version", json!("v1.2.0")),
        ("correlation_id", json!("")),
        ("causation_id", json!("")),
        ("causation_id", json!(5)),
        ("partition_key", json!("")),
        ("ttl", json!("0s")),
        ("ttl", json!("30")),
        ("ttl", json!("1w")),
        ("ttl", json!("P1M")),
        ("ttl", json!(30)),
    ];
    for (field, value) in cases {
        let err = rejected_field(&with(field, value.clone()), field);
        assert_eq!(err.problems.len(), 1, "{field}={value}: {err}");
    }
}

#[test]
fn missing_required_fields_are_named() {
    for field in [
        "event_id",
        "event_type",
        "tenant_id",
        "occurred_at",
        "emitted_at",
        "source",
        "schema_version",
        "correlation_id",
        "partition_key",
        "payload",
    ] {
        rejected_field(&without(field), field);
    }
}

#[test]
fn all_problems_reported_together_in_field_order() {
    let mut v = billing_value();
    v["event_type"] = json!("Billing.invoice");
    v["tenant_id"] = json!(null);
    v["occurred_at"] = json!("yesterday");
    v["ttl"] = json!("forever");
    v["extra"] = json!(1);
    let err = Envelope::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    let fields: Vec<&str> = err.fields().collect();
    assert_eq!(
        fields,
        ["extra", "event_type", "tenant_id", "occurred_at", "ttl"]
    );
    let text = err.to_string();
    assert!(
        text.starts_with("invalid envelope: extra: unknown field"),
        "{text}"
    );
    assert!(
        text.contains("; event_type: must be <domain>.<entity>.<action>"),
        "{text}"
    );
    assert!(text.contains("; tenant_id: required unless"), "{text}");
}

#[test]
fn duplicate_keys_are_rejected() {
    let json = BILLING.replacen(
        "\"tenant_id\": \"tenant-123\",",
        "\"tenant_id\": \"tenant-123\", \"tenant_id\": \"tenant-999\",",
        1,
    );
    let err = rejected_field(json.as_bytes(), "tenant_id");
    assert_eq!(err.problems.len(), 1, "{err}");
}

#[test]
fn not_an_object() {
    for text in ["[]", "null", "", "{", "{\"a\":1} x", "\u{0}"] {
        rejected_field(text.as_bytes(), "envelope");
    }
    assert!(Envelope::from_json_value(json!([1])).is_err());
}

#[test]
fn system_events_may_omit_tenant() {
    let mut v = billing_value();
    v["event_type"] = json!("system.partition.rebalanced");
    v["tenant_id"] = json!(null);
    let env = Envelope::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(env.tenant_id, None);
    assert_eq!(env.to_json_value()["tenant_id"], Value::Null);
    v.as_object_mut().unwrap().shift_remove("tenant_id");
    let env2 = Envelope::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(env, env2);
    assert_eq!(Envelope::decode(&env.to_bytes()).unwrap(), env);
}

#[test]
fn optional_fields_written_only_when_present() {
    let mut env = Envelope::from_json(BILLING.as_bytes()).unwrap();
    let v = env.to_json_value();
    assert!(v.get("causation_id").is_none() && v.get("ttl").is_none());
    env.causation_id = Some("evt-1".into());
    env.ttl = Ttl::from_millis(90_000);
    let v = env.to_json_value();
    assert_eq!(v["causation_id"], json!("evt-1"));
    assert_eq!(v["ttl"], json!("90s"));
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, FIELD_NAMES.iter().collect::<Vec<_>>());
    assert_eq!(Envelope::from_json(&env.to_json()).unwrap(), env);
}

#[test]
fn timestamps_keep_microseconds_and_normalise_to_utc() {
    let cases = [
        ("2026-06-10T12:30:00Z", "2026-06-10T12:30:00Z"),
        ("2026-06-10T12:30:00.123456Z", "2026-06-10T12:30:00.123456Z"),
        (
            "2026-06-10T12:30:00.1234569Z",
            "2026-06-10T12:30:00.123456Z",
        ),
        ("2026-06-10T12:30:00.500Z", "2026-06-10T12:30:00.5Z"),
        ("2026-06-10T14:30:00+02:00", "2026-06-10T12:30:00Z"),
        ("2026-06-10t12:30:00z", "2026-06-10T12:30:00Z"),
        ("2026-06-10 12:30:00Z", "2026-06-10T12:30:00Z"),
        (
            "1969-12-31T23:59:59.9999999Z",
            "1969-12-31T23:59:59.999999Z",
        ),
        ("0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z"),
    ];
    for (input, output) in cases {
        let env = Envelope::from_json(&with("occurred_at", json!(input))).unwrap();
        assert_eq!(env.to_json_value()["occurred_at"], json!(output), "{input}");
        assert_eq!(Envelope::decode(&env.to_bytes()).unwrap(), env, "{input}");
    }
}

#[test]
fn floor_rounds_toward_the_past() {
    let ts = Timestamp::new(-1, -1).unwrap(); // 1 ns before -1 s
    assert_eq!(micros_of(ts), -1_000_001);
    assert_eq!(micros_of(Timestamp::new(1, 999).unwrap()), 1_000_000);
}

#[test]
fn ttl_forms() {
    let cases = [
        ("250ms", 250, "250ms"),
        ("30s", 30_000, "30s"),
        ("5m", 300_000, "5m"),
        ("1h", 3_600_000, "1h"),
        ("2d", 172_800_000, "2d"),
        ("90s", 90_000, "90s"),
        ("1500ms", 1_500, "1500ms"),
        ("60m", 3_600_000, "1h"),
        ("PT30S", 30_000, "30s"),
        ("PT0.25S", 250, "250ms"),
        ("PT1.5S", 1_500, "1500ms"),
        ("P2D", 172_800_000, "2d"),
        ("PT1H30M", 5_400_000, "90m"),
        ("P1DT1S", 86_401_000, "86401s"),
    ];
    for (input, millis, canonical) in cases {
        let ttl: Ttl = input.parse().unwrap();
        assert_eq!(ttl.as_millis(), millis, "{input}");
        assert_eq!(ttl.to_string(), canonical, "{input}");
        assert_eq!(canonical.parse::<Ttl>().unwrap(), ttl);
    }
    for bad in [
        "",
        "0ms",
        "PT0S",
        "P",
        "PT",
        "s",
        "5",
        "-5s",
        "5 s",
        "5S",
        "1y",
        "PT1S1M",
        "PT1M1M",
        "PT0.2500S",
        "PT1.S",
        "PT.5S",
        "P1H",
        "pt1s",
        "PT1.5M",
        "99999999999999999999d",
        "999999999999999d",
    ] {
        assert!(bad.parse::<Ttl>().is_err(), "{bad:?} should be rejected");
    }
    assert_eq!(Ttl::from_millis(0), None);
    assert_eq!(
        Ttl::from_millis(1_500).unwrap().as_duration(),
        Duration::from_millis(1_500)
    );
}

#[test]
fn schema_versions() {
    for good in [
        "0.0.0",
        "1.2.0",
        "10.20.30",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-0.3.7",
        "1.0.0-x.7.z.92",
        "1.0.0-alpha+001",
        "1.0.0+20130313144700",
        "1.0.0-beta+exp.sha.5114f85",
        "1.0.0-alpha-a.b-c",
        "1.0.0+21AF26D3----117B344092BD",
    ] {
        let v: SchemaVersion = good.parse().unwrap_or_else(|e| panic!("{good}: {e}"));
        assert_eq!(v.to_string(), good);
    }
    let v: SchemaVersion = "1.2.3-rc.1+build.5".parse().unwrap();
    assert_eq!((v.major(), v.minor(), v.patch()), (1, 2, 3));
    assert_eq!(v.pre_release(), Some("rc.1"));
    assert_eq!(v.build(), Some("build.5"));
    assert_eq!(SchemaVersion::new(2, 0, 0).as_str(), "2.0.0");
    assert_eq!(SchemaVersion::new(2, 0, 0).pre_release(), None);
    for bad in [
        "",
        "1",
        "1.2",
        "1.2.3.4",
        "01.2.3",
        "1.02.3",
        "1.2.03",
        "1.2.3-",
        "1.2.3+",
        "1.2.3-01",
        "1.2.3-a..b",
        "1.2.3+a+b",
        "1.2.3-é",
        " 1.2.3",
        "a.b.c",
        "-1.2.3",
        "99999999999999999999.0.0",
    ] {
        assert!(
            bad.parse::<SchemaVersion>().is_err(),
            "{bad:?} should be rejected"
        );
    }
}

#[test]
fn validate_reports_every_field() {
    let mut env = Envelope::from_json(BILLING.as_bytes()).unwrap();
    env.event_id = Uuid::nil();
    env.event_type = "billing".into();
    env.tenant_id = None;
    env.occurred_at = Timestamp::MIN;
    env.source.clear();
    env.correlation_id.clear();
    env.causation_id = Some(String::new());
    env.partition_key.clear();
    let err = env.validate().unwrap_err();
    let fields: Vec<&str> = err.fields().collect();
    assert_eq!(
        fields,
        [
            "event_id",
            "event_type",
            "tenant_id",
            "occurred_at",
            "source",
            "correlation_id",
            "causation_id",
            "partition_key"
        ]
    );
    // What validate rejects, decode rejects too.
    let decoded = Envelope::decode(&env.to_bytes()).unwrap_err();
    assert_eq!(decoded.fields().collect::<Vec<_>>(), fields);
}

#[test]
fn event_id_from_parts_is_v7() {
    let id = Envelope::event_id_from_parts(0x0194_a5c1_3f24, 0xb7a, 0x3c59_5f23_d81f_5b1a);
    assert_eq!(id.to_string(), "0194a5c1-3f24-7b7a-bc59-5f23d81f5b1a");
    assert_eq!(id.get_version_num(), 7);
    let id = Envelope::event_id_from_parts(u64::MAX, u16::MAX, u64::MAX);
    assert!(check_event_id(&id).is_ok());
    assert!(check_event_id(&Envelope::new_event_id()).is_ok());
}

#[test]
fn binary_layout_prefix_is_as_documented() {
    let env = Envelope::from_json(BILLING.as_bytes()).unwrap();
    let bytes = env.to_bytes();
    assert_eq!(bytes.first(), Some(&0x9D));
    assert_eq!(bytes.get(1), Some(&0x01));
    assert_eq!(bytes.get(2..4), Some(&[0xC4, 0x10][..]));
    assert_eq!(bytes.get(4..20), Some(&env.event_id.as_bytes()[..]));
    assert_eq!(bytes.get(20), Some(&(0xA0 | 22))); // fixstr "billing.invoice.issued"
}

#[test]
fn encode_appends_and_reuses_the_buffer() {
    let env = Envelope::from_json(BILLING.as_bytes()).unwrap();
    let one = env.to_bytes();
    let mut buf = b"xy".to_vec();
    env.encode(&mut buf);
    assert_eq!(buf.get(2..), Some(&one[..]));
    buf.clear();
    let capacity = buf.capacity();
    env.encode(&mut buf);
    assert_eq!(buf, one);
    assert_eq!(buf.capacity(), capacity);
}

#[test]
fn decode_rejects_malformed_records() {
    let env = Envelope::from_json(BILLING.as_bytes()).unwrap();
    let good = env.to_bytes();

    let mut trailing = good.clone();
    trailing.push(0xC0);
    assert!(
        Envelope::decode(&trailing)
            .unwrap_err()
            .problem("envelope")
            .is_some()
    );

    let mut version = good.clone();
    if let Some(b) = version.get_mut(1) {
        *b = 0x02;
    }
    let err = Envelope::decode(&version).unwrap_err();
    assert!(err.problem("layout_version").is_some(), "{err}");

    let mut extra = good.clone();
    if let Some(b) = extra.get_mut(0) {
        *b = 0x9E;
    }
    extra.push(0xC0);
    assert!(Envelope::decode(&extra).is_err());

    let mut short = good.clone();
    if let Some(b) = short.get_mut(0) {
        *b = 0x9C;
    }
    assert!(Envelope::decode(&short).is_err());

    for cut in 0..good.len() {
        assert!(
            Envelope::decode(good.get(..cut).unwrap()).is_err(),
            "cut at {cut}"
        );
    }

    // A wrong type is reported against the field being read.
    let mut wrong_type = good.clone();
    if let Some(b) = wrong_type.get_mut(20) {
        *b = 0x05; // event_type replaced by an int (the rest is garbage)
    }
    assert!(
        Envelope::decode(&wrong_type)
            .unwrap_err()
            .problem("event_type")
            .is_some()
    );
}

#[test]
fn decode_limits_nesting() {
    // MAX_NESTING arrays in the payload plus the envelope array: one too many.
    let mut deep = json!(1);
    for _ in 0..MAX_NESTING {
        deep = json!([deep]);
    }
    let mut env = Envelope::from_json(BILLING.as_bytes()).unwrap();
    env.payload = deep.clone();
    let err = Envelope::decode(&env.to_bytes()).unwrap_err();
    assert!(err.problem("payload").is_some(), "{err}");
    env.payload = deep.as_array().unwrap().first().unwrap().clone();
    assert_eq!(Envelope::decode(&env.to_bytes()).unwrap(), env);
}

#[test]
fn deepest_json_payload_survives_binary() {
    // serde_json refuses 128 levels; find the deepest payload it accepts.
    let mut depth = 0;
    let mut accepted = None;
    loop {
        let payload = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let text = BILLING.replace(
            r#""payload": {"invoice_id": "inv-456", "amount": 12500, "line_items": 8}"#,
            &format!(r#""payload": {payload}"#),
        );
        match Envelope::from_json(text.as_bytes()) {
            Ok(env) => accepted = Some(env),
            Err(_) => break,
        }
        depth += 1;
    }
    let env = accepted.unwrap();
    assert!(depth > 100, "{depth}");
    assert_eq!(Envelope::decode(&env.to_bytes()).unwrap(), env);
}

#[test]
fn json_floats_round_trip_exactly() {
    // Found by proptest: without serde_json's `float_roundtrip` feature
    // this parses back one unit in the last place off.
    let mut env = Envelope::from_json(BILLING.as_bytes()).unwrap();
    env.payload = json!([
        3.790_497_541_858_391_5e-90,
        0.1,
        f64::MAX,
        f64::MIN_POSITIVE
    ]);
    let back = Envelope::from_json(&env.to_json()).unwrap();
    assert_eq!(back.payload, env.payload);
}

#[test]
fn numbers_keep_their_kind_through_binary() {
    let mut env = Envelope::from_json(BILLING.as_bytes()).unwrap();
    env.payload = json!({"i": -5, "u": u64::MAX, "f": 1.0, "g": -0.5, "big": i64::MIN, "z": 0});
    let back = Envelope::decode(&env.to_bytes()).unwrap();
    assert_eq!(back.payload, env.payload);
    assert!(back.payload["f"].is_f64() && back.payload["i"].is_i64());
    assert!(back.payload["u"].is_u64() && back.payload["z"].is_u64());
    assert_eq!(
        String::from_utf8(back.to_json())
            .unwrap()
            .rsplit_once("\"payload\":")
            .unwrap()
            .1,
        r#"{"i":-5,"u":18446744073709551615,"f":1.0,"g":-0.5,"big":-9223372036854775808,"z":0}}"#
    );
}
