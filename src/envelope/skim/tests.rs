//! The skim peeks against the full decoder (moved from the consumer groups,
//! their first user).

use super::{EnvelopeHead, EnvelopeRef, peek_event_id, peek_ttl_millis};
use crate::envelope::{Envelope, SchemaVersion, Ttl};
use serde_json::json;

/// A valid envelope with long strings (so lengths take `str 8`/`str 16`
/// headers) and its encoding. Built here rather than through the producer's
/// `Draft`: this layer's tests depend on nothing above it.
fn encoded(ttl: Option<u64>, tenant: Option<&str>, event_type: &str) -> (Envelope, Vec<u8>) {
    let at: jiff::Timestamp = "2026-06-10T12:00:00Z".parse().unwrap();
    let envelope = Envelope {
        event_id: Envelope::new_event_id(),
        event_type: event_type.into(),
        tenant_id: tenant.map(Into::into),
        occurred_at: at,
        emitted_at: at,
        source: "s".repeat(40),
        schema_version: SchemaVersion::new(1, 0, 0),
        correlation_id: "c".into(),
        causation_id: None,
        partition_key: "k".repeat(300),
        ttl: ttl.map(|ms| Ttl::from_millis(ms).unwrap()),
        payload: json!({"k": "v".repeat(300)}),
    };
    envelope.validate().unwrap();
    let mut bytes = Vec::new();
    envelope.encode(&mut bytes);
    (envelope, bytes)
}

#[test]
fn peeks_agree_with_the_full_decoder() {
    for ttl in [
        None,
        Some(1),
        Some(127),
        Some(128),
        Some(70_000),
        Some(5_000_000_000),
    ] {
        for tenant in [None, Some("tenant-1")] {
            let event_type = if tenant.is_some() {
                "billing.invoice.issued"
            } else {
                "system.node.up"
            };
            let (envelope, bytes) = encoded(ttl, tenant, event_type);
            assert_eq!(
                peek_ttl_millis(&bytes),
                Some(envelope.ttl.map(Ttl::as_millis))
            );
            assert_eq!(peek_event_id(&bytes), Some(envelope.event_id));
        }
    }
    assert_eq!(peek_ttl_millis(b"not an envelope"), None);
    assert_eq!(peek_event_id(b""), None);
}

#[test]
fn a_ttl_the_decoder_reads_is_never_missed_by_a_peek() {
    // The id written as a 16-byte str (D9 10) instead of bin (C4 10):
    // the decoder reads it (found by the state_decode fuzzer).
    let (envelope, mut bytes) = encoded(Some(70_000), Some("tenant-1"), "billing.invoice.issued");
    assert_eq!(bytes.get(2..4), Some(&[0xC4, 0x10][..]));
    bytes[2] = 0xD9;
    let full = EnvelopeRef::decode(&bytes).unwrap();
    assert_eq!(full.ttl_millis, Some(70_000));
    assert_eq!(peek_ttl_millis(&bytes), Some(Some(70_000)));
    assert_eq!(peek_event_id(&bytes), Some(envelope.event_id));
    let head = EnvelopeHead::peek(&bytes).unwrap();
    assert_eq!(head, EnvelopeHead::of(&full));
}

#[test]
fn bytes_after_the_envelope_make_the_record_no_envelope_for_decoder_and_peeks() {
    let (_, good) = encoded(Some(5), None, "system.node.up");
    for extra in [&[0xC0][..], &[0x00, 0x01], b"garbage"] {
        let mut bytes = good.clone();
        bytes.extend_from_slice(extra);
        let err = EnvelopeRef::decode(&bytes).unwrap_err();
        let problem = err.problem("envelope").unwrap().to_string();
        assert!(
            problem.contains(&format!(
                "{} trailing byte(s) after the envelope array, from byte {}",
                extra.len(),
                good.len()
            )),
            "{problem}"
        );
        assert!(Envelope::decode(&bytes).is_err());
        assert_eq!(peek_ttl_millis(&bytes), None);
        assert_eq!(peek_event_id(&bytes), None);
        assert_eq!(EnvelopeHead::peek(&bytes), None);
    }
    // What the encoder writes is exactly one envelope.
    assert!(super::is_one_value(&good));
    assert_eq!(peek_ttl_millis(&good), Some(Some(5)));
}
