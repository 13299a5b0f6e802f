//! The consumer-group commands of the `fabric` binary, end to end: `consume
//! --group G --commit` resumes from the committed cursor while another
//! process is the writer, `group list|describe|reset` (reset refused while a
//! member holds the group), and `replay` of an offset range into a group.
mod common;

use common::fabric;

use std::path::Path;
use std::process::Command;

use eventfabric::ConsumerConfig;
use eventfabric::{Fabric, FabricConfig, FsyncPolicy};
use serde_json::Value;

const TOPIC: &str = "billing.domain.v1";

fn ok(data: &Path, args: &[&str]) -> Vec<Value> {
    let out = fabric(data, args, b"");
    assert!(
        out.status.success(),
        "fabric {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn setup(data: &Path, events: u64) {
    ok(data, &["topic", "create", TOPIC, "--partitions", "2"]);
    let generated = Command::new(env!("CARGO_BIN_EXE_fabric"))
        .args([
            "gen",
            "billing.invoice.issued",
            "--count",
            &events.to_string(),
        ])
        .output()
        .unwrap();
    assert!(generated.status.success());
    let out = fabric(data, &["produce", TOPIC], &generated.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn offsets(lines: &[Value]) -> Vec<(u64, u64)> {
    lines
        .iter()
        .map(|l| {
            (
                l["_partition"].as_u64().unwrap(),
                l["_offset"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn consume_with_a_group_resumes_from_its_commit_beside_a_live_writer() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    setup(data, 20);
    // This process is the writer meanwhile: the CLI commits from a read-only view.
    let writer = Fabric::open(data, FabricConfig::with_fsync(FsyncPolicy::Os)).unwrap();
    let first = ok(
        data,
        &["consume", TOPIC, "--group", "g", "--commit", "--max", "8"],
    );
    assert_eq!(first.len(), 8);
    assert!(first[0]["event_type"] == "billing.invoice.issued");
    // Without --commit nothing moves: the same events come again.
    let peek = ok(data, &["consume", TOPIC, "--group", "g", "--max", "3"]);
    let again = ok(data, &["consume", TOPIC, "--group", "g", "--commit"]);
    assert_eq!(again.len(), 12);
    assert_eq!(offsets(&peek), offsets(&again[..3]));
    let mut all = offsets(&first);
    all.extend(offsets(&again));
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        20,
        "every event exactly once across the two runs"
    );
    assert!(ok(data, &["consume", TOPIC, "--group", "g"]).is_empty());

    let listed = ok(data, &["group", "list"]);
    assert_eq!(
        listed,
        vec![serde_json::json!({"group": "g", "topics": [TOPIC]})]
    );
    let described = ok(data, &["group", "describe", "g"]);
    assert_eq!(described.len(), 2);
    assert!(
        described
            .iter()
            .all(|l| l["lag"] == 0 && l["committed"] == l["end"])
    );

    // A live member in the writer process holds the group: reset is refused.
    let member = writer
        .consumer("g", TOPIC, ConsumerConfig::default())
        .unwrap();
    let refused = fabric(
        data,
        &["group", "reset", "g", "--topic", TOPIC, "--to", "earliest"],
        b"",
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("in use by pid") && stderr.contains(&std::process::id().to_string()),
        "{stderr}"
    );
    let refused = fabric(data, &["consume", TOPIC, "--group", "g", "--commit"], b"");
    assert!(
        !refused.status.success(),
        "a second owner of the group's cursor log"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("in use by pid"));
    drop(member);
    let reset = ok(
        data,
        &["group", "reset", "g", "--topic", TOPIC, "--to", "earliest"],
    );
    assert!(reset.iter().all(|l| l["committed"] == 0));
    assert_eq!(ok(data, &["consume", TOPIC, "--group", "g"]).len(), 20);
    // Without --topic, every topic the group has cursors for moves.
    let reset = ok(data, &["group", "reset", "g", "--to", "latest"]);
    assert!(!reset.is_empty() && reset.iter().all(|l| l["topic"] == TOPIC));
    let committed: u64 = reset.iter().map(|l| l["committed"].as_u64().unwrap()).sum();
    assert_eq!(committed, 20, "latest = the end of every partition");
    assert!(ok(data, &["consume", TOPIC, "--group", "g"]).is_empty());
    writer.close().unwrap();
}

#[test]
fn replay_prints_a_range_and_commits_it_to_its_group_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    setup(data, 30);
    ok(
        data,
        &[
            "consume", TOPIC, "--group", "live", "--commit", "--max", "5",
        ],
    );
    let before = ok(data, &["group", "describe", "live"]);
    let replayed = ok(
        data,
        &[
            "replay", TOPIC, "--group", "audit", "--from", "2", "--to", "6", "--rate", "1000/s",
        ],
    );
    let got = offsets(&replayed);
    assert!(got.iter().all(|&(_, o)| (2..6).contains(&o)), "{got:?}");
    let fabric_view = Fabric::open_read_only(data).unwrap();
    let expected: u64 = (0..2)
        .map(|p| {
            fabric_view
                .partition(TOPIC, p)
                .unwrap()
                .next_offset()
                .min(6)
                - fabric_view
                    .partition(TOPIC, p)
                    .unwrap()
                    .next_offset()
                    .min(2)
        })
        .sum();
    assert_eq!(got.len() as u64, expected);
    let audit = ok(data, &["group", "describe", "audit"]);
    for line in &audit {
        let end = line["end"].as_u64().unwrap();
        assert_eq!(line["committed"].as_u64().unwrap(), end.min(6));
    }
    assert_eq!(ok(data, &["group", "describe", "live"]), before);
    let bad = fabric(
        data,
        &[
            "replay", TOPIC, "--group", "x", "--from", "2", "--rate", "fast",
        ],
        b"",
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--rate"));
    // From a time in the future: nothing to replay, nothing printed.
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    assert!(ok(data, &["replay", TOPIC, "--group", "y", "--from", &later]).is_empty());
}
