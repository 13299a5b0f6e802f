//! Reading the two envelope fields a consumer group needs per event — the
//! `event_id` and the `ttl` — straight from the encoded record.
//!
//! Owns nothing but these peeks over the layout-v1 MessagePack array of
//! `src/envelope.rs` (`docs/FORMAT.md`, "Event envelope"). Full validation
//! stays with [`crate::envelope`]; a record these peeks cannot follow is
//! reported as unknown, never guessed at.

use uuid::Uuid;

/// The envelope's `event_id`, when the record starts like a layout-v1 envelope.
pub(crate) fn peek_event_id(record: &[u8]) -> Option<Uuid> {
    match record {
        [0x9D, 0x01, 0xC4, 0x10, id @ ..] if id.len() >= 16 => Uuid::from_slice(&id[..16]).ok(),
        _ => None,
    }
}

/// The envelope's `ttl` in milliseconds: `Some(None)` when it has none,
/// `None` when the record cannot be followed as a layout-v1 envelope.
pub(crate) fn peek_ttl_millis(record: &[u8]) -> Option<Option<u64>> {
    let mut pos = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = record.get(pos..pos.checked_add(n)?)?;
        pos += n;
        Some(s)
    };
    if take(4)? != [0x9D, 0x01, 0xC4, 0x10] {
        return None;
    }
    take(16)?;
    // event-type tenant-id occurred-at emitted-at source schema-version
    // correlation-id causation-id partition-key, then ttl.
    for _ in 0..9 {
        let marker = take(1)?[0];
        let skip = match marker {
            0xA0..=0xBF => usize::from(marker & 0x1F),
            0xD9 => usize::from(take(1)?[0]),
            0xDA => usize::from(u16::from_be_bytes(take(2)?.try_into().ok()?)),
            0xDB => u32::from_be_bytes(take(4)?.try_into().ok()?) as usize,
            0xC0 | 0x00..=0x7F | 0xE0..=0xFF => 0,
            0xCC | 0xD0 => 1,
            0xCD | 0xD1 => 2,
            0xCE | 0xD2 => 4,
            0xCF | 0xD3 => 8,
            _ => return None,
        };
        take(skip)?;
    }
    let marker = take(1)?[0];
    let ttl = match marker {
        0xC0 => return Some(None),
        0x01..=0x7F => u64::from(marker),
        0xCC => u64::from(take(1)?[0]),
        0xCD => u64::from(u16::from_be_bytes(take(2)?.try_into().ok()?)),
        0xCE => u64::from(u32::from_be_bytes(take(4)?.try_into().ok()?)),
        0xCF => u64::from_be_bytes(take(8)?.try_into().ok()?),
        _ => return None,
    };
    Some(Some(ttl))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Envelope, Ttl};
    use crate::producer::Draft;
    use serde_json::json;

    fn encoded(ttl: Option<u64>, tenant: Option<&str>, event_type: &str) -> (Envelope, Vec<u8>) {
        let mut draft = Draft::new(event_type, tenant, json!({"k": "v".repeat(300)}));
        if let Some(ms) = ttl {
            draft = draft.ttl(Ttl::from_millis(ms).unwrap());
        }
        let mut value = draft.members().clone();
        value.insert("event_id".into(), json!(uuid::Uuid::now_v7().to_string()));
        value.insert("emitted_at".into(), json!("2026-06-10T12:00:00Z"));
        value.insert("occurred_at".into(), json!("2026-06-10T12:00:00Z"));
        value.insert("source".into(), json!("s".repeat(40)));
        value.insert("correlation_id".into(), json!("c"));
        value.insert("partition_key".into(), json!("k".repeat(300)));
        let envelope = Envelope::from_json_value(serde_json::Value::Object(value)).unwrap();
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
}
