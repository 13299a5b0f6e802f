//! Entry points for the cargo-fuzz targets in `fuzz/`: the decoders of the
//! consumer-side state (state-log container, cursor records, queue state,
//! dead-letter records) and the field peeks consumers use on raw records,
//! reachable from outside without widening the supported API. Hidden from
//! the docs; not for applications. Every function returns an error for
//! input it rejects and must never panic — except [`record_peeks`], whose
//! panics are the fuzzer's oracle (a peek disagreeing with the full decoder).

use std::path::Path;

use bytes::Bytes;

use crate::envelope::{EnvelopeHead, EnvelopeRef};

const PATH: &str = "fuzz-input";

/// Parses `bytes` as a state-log file, as recovery does; the intact payloads.
pub fn state_log(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    crate::statelog::parse_bytes(bytes, Path::new(PATH)).map_err(|e| e.to_string())
}

/// Replays state-log payloads as a consumer group's cursor log; how many
/// partitions end up committed.
pub fn cursor_records(records: &[Vec<u8>]) -> Result<usize, String> {
    crate::group::store::replay_for_fuzzing(records, Path::new(PATH)).map_err(|e| e.to_string())
}

/// Folds state-log payloads as a queue's state log.
pub fn queue_records(records: &[Vec<u8>]) -> Result<(), String> {
    crate::queue_state::fold(records, Path::new(PATH))
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Decodes `bytes` as a dead-letter record.
pub fn dead_letter(bytes: &[u8]) -> Result<(), String> {
    crate::dlq::decode(&Bytes::copy_from_slice(bytes), 0, 0).map(drop)
}

/// Runs every field peek on `bytes` and, when the full decoder accepts them
/// as an envelope, panics if a peek disagrees with it.
pub fn record_peeks(bytes: &[u8]) {
    let peeked_id = crate::envelope::peek_event_id(bytes);
    let peeked_ttl = crate::envelope::peek_ttl_millis(bytes);
    let head = EnvelopeHead::peek(bytes);
    let dedup_id = crate::dedup::event_id_of(bytes);
    if let Ok(full) = EnvelopeRef::decode(bytes) {
        assert_eq!(peeked_id, Some(full.event_id), "group event_id peek");
        assert_eq!(peeked_ttl, Some(full.ttl_millis), "group ttl peek");
        assert_eq!(dedup_id, Some(full.event_id.as_u128()), "dedup event_id");
        if let Some(head) = head {
            assert_eq!(head, EnvelopeHead::of(&full), "envelope head peek");
        }
    }
}
