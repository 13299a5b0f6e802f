//! The publish path of a topic that requires schemas: a valid payload is
//! appended; an invalid one, an unknown version or type, or a type the topic
//! does not allow is refused with every problem (pointer + keyword), counted,
//! and never quoted; a topic without the setting accepts any payload; the
//! setting survives reopening and is left out of topic.json by default.

use eventfabric::governance::{Catalog, Classification, SchemaCandidate, TopicGovernance};
use eventfabric::{Draft, Error, Fabric, FabricConfig, SchemaVersion, StartFrom, TopicConfig};
use serde_json::json;

fn register(data: &std::path::Path) {
    let mut catalog = Catalog::open(data).unwrap();
    let mut c = SchemaCandidate::new(
        "billing.invoice.issued",
        "1.2.0".parse().unwrap(),
        json!({
            "type": "object",
            "properties": {
                "invoice_id": {"type": "string"},
                "customer_email": {"type": "string", "maxLength": 10},
                "amount": {"type": "integer", "minimum": 0}
            },
            "required": ["invoice_id", "amount"]
        }),
    );
    c.tags.insert("/customer_email".into(), Classification::Pii);
    assert!(catalog.add(c).unwrap().accepted());
}

fn governed() -> TopicConfig {
    let mut config = TopicConfig::with_partitions(2);
    config.governance = TopicGovernance {
        require_schemas: true,
        event_types: vec!["billing.invoice.issued".into()],
        ..TopicGovernance::default()
    };
    config
}

fn draft(event_type: &str, version: &str, payload: serde_json::Value) -> Draft {
    Draft::new(event_type, Some("tenant-123"), payload)
        .schema_version(&version.parse::<SchemaVersion>().unwrap())
}

#[test]
fn a_topic_that_requires_schemas_refuses_what_its_catalog_does_not_accept() {
    let dir = tempfile::tempdir().unwrap();
    register(dir.path());
    let fabric = Fabric::open(dir.path(), FabricConfig::default()).unwrap();
    fabric
        .create_topic("billing.domain.v1", governed())
        .unwrap();
    fabric
        .create_topic("free.v1", TopicConfig::with_partitions(1))
        .unwrap();
    let mut producer = fabric
        .producer("billing.domain.v1", "billing-service")
        .unwrap();

    let ok = json!({"invoice_id": "inv-1", "amount": 12500});
    producer
        .send(draft("billing.invoice.issued", "1.2.0", ok.clone()))
        .unwrap();

    let secret = "alice.private@example.com";
    let bad = json!({"customer_email": secret, "amount": -5});
    let err = producer
        .send(draft("billing.invoice.issued", "1.2.0", bad.clone()))
        .unwrap_err();
    match &err {
        Error::SchemaViolation {
            event_type,
            version,
            problems,
        } => {
            assert_eq!(
                (event_type.as_str(), version.as_str()),
                ("billing.invoice.issued", "1.2.0")
            );
            let found: Vec<(&str, &str)> = problems
                .iter()
                .map(|p| (p.pointer.as_str(), p.rule.as_str()))
                .collect();
            for expected in [
                ("/invoice_id", "required"),
                ("/customer_email", "maxLength"),
                ("/amount", "minimum"),
            ] {
                assert!(
                    found.contains(&expected),
                    "{expected:?} missing from {found:?}"
                );
            }
        }
        other => panic!("expected a schema violation, got {other}"),
    }
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains(secret) && !text.contains("alice"),
        "PII leaked: {text}"
    );

    let err = producer
        .send(draft("billing.invoice.issued", "1.3.0", ok.clone()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1.3.0") && err.contains("not registered"),
        "{err}"
    );
    let err = producer
        .send(draft("billing.invoice.paid", "1.2.0", ok.clone()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not allowed on this topic") && err.contains("no registered schema"),
        "{err}"
    );
    // Batches go through the same check: nothing of a refused batch is appended.
    let envelopes: Vec<_> = [ok.clone(), bad]
        .into_iter()
        .map(|p| {
            producer
                .prepare(draft("billing.invoice.issued", "1.2.0", p))
                .unwrap()
        })
        .collect();
    assert!(matches!(
        producer.publish_batch(&envelopes),
        Err(Error::SchemaViolation { .. })
    ));
    assert_eq!(fabric.schema_violations("billing.domain.v1").unwrap(), 4);

    let stored: Vec<_> = fabric
        .reader("billing.domain.v1", StartFrom::Earliest)
        .unwrap()
        .map(|r| r.unwrap().envelope.payload)
        .collect();
    assert_eq!(
        stored,
        std::slice::from_ref(&ok),
        "only the valid event was appended"
    );

    // A topic without the setting takes any payload.
    let mut free = fabric.producer("free.v1", "anyone").unwrap();
    free.send(draft("x.y.z", "9.9.9", json!({"anything": [1, 2]})))
        .unwrap();
    assert_eq!(fabric.schema_violations("free.v1").unwrap(), 0);
    drop((producer, free));
    fabric.close().unwrap();

    // The setting is stored and survives reopening; the default is left out of topic.json.
    let fabric = Fabric::open(dir.path(), FabricConfig::default()).unwrap();
    assert!(
        fabric
            .topic_info("billing.domain.v1")
            .unwrap()
            .config
            .governance
            .require_schemas
    );
    let free_json = std::fs::read_to_string(dir.path().join("topics/free.v1/topic.json")).unwrap();
    assert!(!free_json.contains("governance"), "{free_json}");
    let governed_json =
        std::fs::read_to_string(dir.path().join("topics/billing.domain.v1/topic.json")).unwrap();
    assert!(
        governed_json.contains("\"require_schemas\": true"),
        "{governed_json}"
    );
    let mut producer = fabric
        .producer("billing.domain.v1", "billing-service")
        .unwrap();
    assert!(
        producer
            .send(draft(
                "billing.invoice.issued",
                "1.2.0",
                json!({"amount": 1})
            ))
            .is_err()
    );
    drop(producer);
    fabric.close().unwrap();
}
