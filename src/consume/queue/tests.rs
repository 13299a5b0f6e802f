use super::*;
use crate::Fabric;
use crate::{Draft, FabricConfig, FsyncPolicy, TopicConfig};

#[test]
fn peeked_routing_fields_agree_with_the_full_decoder() {
    let mut generator = crate::fixtures::FixtureGenerator::new(7, 50);
    let kinds = crate::fixtures::FixtureKind::all();
    for i in 0..300 {
        let mut e = generator.next(kinds[i % kinds.len()]);
        if i % 3 == 0 {
            e.ttl = crate::Ttl::from_millis(i as u64 * 1_000 + 1);
        }
        if i % 5 == 0 && e.event_type.starts_with("system.") {
            e.tenant_id = None;
        }
        let bytes = e.to_bytes();
        let full = EnvelopeRef::decode(&bytes).unwrap();
        let peek = EnvelopeHead::peek(&bytes).unwrap();
        assert_eq!(peek.tenant_id, full.tenant_id);
        assert_eq!(peek.emitted_at_micros, full.emitted_at_micros);
        assert_eq!(peek.ttl_millis, full.ttl_millis);
        for cut in [0, 1, bytes.len() / 3, bytes.len() / 2] {
            let short = EnvelopeHead::peek(&bytes[..cut]);
            assert!(short.is_none() || cut > bytes.len() / 3);
        }
    }
    assert!(EnvelopeHead::peek(b"EFDL not an envelope").is_none());
}

#[test]
fn timers_of_acked_messages_do_not_pile_up() {
    let dir = tempfile::tempdir().unwrap();
    let fabric = Fabric::open(dir.path(), FabricConfig::with_fsync(FsyncPolicy::Os)).unwrap();
    fabric
        .create_topic("t.v1", TopicConfig::with_partitions(1))
        .unwrap();
    let mut p = fabric.producer("t.v1", "test").unwrap();
    for i in 0..5_000 {
        p.send(Draft::new(
            "billing.invoice.issued",
            Some("t"),
            serde_json::json!(i),
        ))
        .unwrap();
    }
    let queue = fabric.queue("q", "t.v1", QueueConfig::default()).unwrap();
    let mut acked = 0;
    loop {
        let got = queue.try_fetch(100).unwrap();
        if got.is_empty() {
            break;
        }
        queue.ack_all(&got).unwrap();
        acked += got.len();
        let s = queue.inner.state.lock();
        assert!(s.timers.len() <= 2 * s.outstanding.len() + 1024 + 100);
    }
    assert_eq!(acked, 5_000);
}
