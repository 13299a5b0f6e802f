//! Dedup through the `fabric` command line, end to end with the built
//! binary: each command is its own process, so every run after the first
//! rebuilds the dedup cache from the data directory (a restart). In its own
//! test binary: `tests/dedup.rs` closes and reopens fabrics in parallel
//! threads, which a forked child would share lock files with until it execs.
mod common;

use std::fs;

use common::{fabric_ok as ok, json_lines as lines};
use serde_json::Value;

#[test]
fn produce_acks_report_a_retry_after_a_restart_as_a_duplicate_whatever_its_emitted_at() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let topic = "billing.domain.v1";
    ok(data, &["topic", "create", topic, "--partitions", "3"], b"");
    // The seed event's emitted_at is months before the test runs.
    let path = format!(
        "{}/tests/fixtures/seed-events/billing.invoice.issued.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let value: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    let line = format!("{}\n", serde_json::to_string(&value).unwrap());

    let first = lines(&ok(data, &["produce", topic, "--acks"], line.as_bytes()));
    assert_eq!(first.len(), 1);
    assert!(first[0].get("duplicate_of").is_none(), "{}", first[0]);
    let position = serde_json::json!({
        "partition": first[0]["partition"],
        "offset": first[0]["offset"],
    });
    // A second process (a restart) publishes the same envelope twice more.
    let twice = format!("{line}{line}");
    let again = lines(&ok(data, &["produce", topic, "--acks"], twice.as_bytes()));
    assert_eq!(again.len(), 2);
    for ack in &again {
        assert_eq!(ack["event_id"], value["event_id"]);
        assert_eq!(
            ack["duplicate_of"], position,
            "a retry after a restart was stored again: {ack}"
        );
    }
    let consumed = lines(&ok(data, &["consume", topic], b""));
    assert_eq!(consumed.len(), 1, "stored twice: {consumed:?}");
}
