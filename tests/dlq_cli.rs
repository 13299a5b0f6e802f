//! `fabric dlq list|show|replay` end to end, and `fabric consume` on a
//! `.dlq` topic pointing at them.

use std::path::Path;
use std::process::{Command, Output};

use eventfabric::{DlqReason, Draft, Fabric, FabricConfig, Failure, QueueConfig, TopicConfig};
use serde_json::{Value, json};

const TOPIC: &str = "billing.domain.v1";

fn fabric(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fabric"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("run fabric")
}

fn lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "fabric failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Three events; the first dead-lettered as a schema violation, the second
/// as a handler error, the third acked.
fn setup() -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let fabric = Fabric::open(dir.path(), FabricConfig::default()).unwrap();
    fabric
        .create_topic(TOPIC, TopicConfig::with_partitions(1))
        .unwrap();
    let mut p = fabric.producer(TOPIC, "cli").unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        let (e, _) = p
            .send(Draft::new(
                "billing.invoice.issued",
                Some("t"),
                json!({"i": i}),
            ))
            .unwrap();
        ids.push(e.event_id.hyphenated().to_string());
    }
    let queue = fabric
        .queue("cli-q", TOPIC, QueueConfig::default())
        .unwrap();
    let got = queue.try_fetch(3).unwrap();
    queue
        .nack(
            &got[0],
            Failure::fatal(DlqReason::SchemaViolation, "bad amount"),
        )
        .unwrap();
    queue
        .nack(&got[1], Failure::fatal(DlqReason::HandlerError, "db down"))
        .unwrap();
    queue.ack(&got[2]).unwrap();
    drop((p, queue));
    fabric.close().unwrap();
    (dir, ids)
}

#[test]
fn dlq_list_show_and_replay_from_the_command_line() {
    let (dir, ids) = setup();
    let data = dir.path();
    let all = lines(&fabric(data, &["dlq", "list", TOPIC]));
    assert_eq!(all.len(), 2);
    let first = &all[0];
    assert_eq!(first["reason"], "schema_violation");
    assert_eq!(first["error"], "bad amount");
    assert_eq!(first["attempts"], 1);
    assert_eq!(first["original_topic"], TOPIC);
    assert_eq!(first["original_partition"], 0);
    assert_eq!(first["original_offset"], 0);
    assert_eq!(first["consumer"], "cli-q");
    assert_eq!(first["event_id"], ids[0].as_str());
    assert_eq!(first["hash_ok"], true);
    assert_eq!(first["payload_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(first["envelope"]["payload"]["i"], 0);
    for field in [
        "first_failure_at",
        "last_failure_at",
        "dead_lettered_at",
        "original_timestamp",
    ] {
        assert!(
            first[field].as_str().unwrap().ends_with('Z'),
            "{field}: {first}"
        );
    }

    let handler = lines(&fabric(
        data,
        &["dlq", "list", TOPIC, "--reason", "handler_error"],
    ));
    assert_eq!(handler.len(), 1);
    assert_eq!(handler[0]["event_id"], ids[1].as_str());
    let future = lines(&fabric(
        data,
        &["dlq", "list", TOPIC, "--from", "2999-01-01T00:00:00Z"],
    ));
    assert!(future.is_empty());

    let shown = lines(&fabric(data, &["dlq", "show", TOPIC, "--offset", "0:1"]));
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0], handler[0]);
    let shown = lines(&fabric(
        data,
        &["dlq", "show", TOPIC, "--event-id", &ids[0]],
    ));
    assert_eq!(shown.len(), 1);
    assert_eq!(&shown[0], first);

    let replayed = lines(&fabric(
        data,
        &[
            "dlq",
            "replay",
            TOPIC,
            "--reason",
            "handler_error",
            "--rate",
            "50/s",
        ],
    ));
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0]["event_id"], ids[1].as_str());
    assert_eq!(
        replayed[0]["offset"], 3,
        "appended after the three originals"
    );
    let again = lines(&fabric(data, &["dlq", "replay", TOPIC]));
    assert_eq!(again.len(), 1, "only the schema violation is left");
    assert_eq!(again[0]["event_id"], ids[0].as_str());
    assert!(lines(&fabric(data, &["dlq", "replay", TOPIC])).is_empty());

    // The replayed events are ordinary events of the source topic.
    let consumed = lines(&fabric(data, &["consume", TOPIC]));
    let tail: Vec<&str> = consumed[3..]
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(tail, [ids[1].as_str(), ids[0].as_str()]);
}

#[test]
fn consume_on_a_dlq_topic_and_bad_flags_fail_clearly() {
    let (dir, _) = setup();
    let data = dir.path();
    let out = fabric(data, &["consume", "billing.domain.v1.dlq"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dead letter") && err.contains("fabric dlq"),
        "{err}"
    );

    for (args, expect) in [
        (
            vec!["dlq", "list", TOPIC, "--reason", "bogus"],
            "handler_error",
        ),
        (
            vec!["dlq", "list", TOPIC, "--from", "yesterday"],
            "RFC 3339",
        ),
        (
            vec!["dlq", "show", TOPIC, "--offset", "7"],
            "PARTITION:OFFSET",
        ),
        (vec!["dlq", "replay", TOPIC, "--rate", "fast"], "N/s"),
        (vec!["dlq", "list", "no.such.topic"], "does not exist"),
    ] {
        let out = fabric(data, &args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{args:?}: {err}");
    }
}

/// `dlq list` streams: every letter read before a damaged record is printed
/// (one JSON line each, as it is read), then the damaged record is an error
/// naming where it is; the library iterator yields letters the same way.
#[test]
fn dlq_list_streams_each_letter_as_it_is_read() {
    let (dir, ids) = setup();
    let data = dir.path();
    {
        let fabric = Fabric::open(data, FabricConfig::default()).unwrap();
        let log = fabric.partition("billing.domain.v1.dlq", 0).unwrap();
        log.append(b"not a dead letter").unwrap();
        log.flush().unwrap();
        let letters = fabric.dead_letters(TOPIC).unwrap();
        let mut iter = letters.iter(&eventfabric::DlqFilter::default()).unwrap();
        let first = iter.next().unwrap().unwrap();
        assert_eq!(first.event_id().unwrap().hyphenated().to_string(), ids[0]);
        assert!(iter.next().unwrap().is_ok());
        let err = iter.next().unwrap().unwrap_err().to_string();
        assert!(err.contains("offset 2"), "{err}");
        assert!(iter.next().is_none(), "the iterator ends after an error");
        drop((iter, letters, log));
        fabric.close().unwrap();
    }
    let out = fabric(data, &["dlq", "list", TOPIC]);
    assert!(
        !out.status.success(),
        "a damaged record must fail the listing"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("offset 2") && err.contains("not a valid dead letter"),
        "{err}"
    );
    let printed: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let printed: Vec<&str> = printed
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(printed, [ids[0].as_str(), ids[1].as_str()]);
}

#[test]
fn dlq_list_of_a_topic_with_no_dead_letter_yet_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    {
        let fabric = Fabric::open(dir.path(), FabricConfig::default()).unwrap();
        fabric
            .create_topic(TOPIC, TopicConfig::with_partitions(1))
            .unwrap();
        fabric.close().unwrap();
    }
    // The CLI reads beside a possible writer: read-only, so it cannot create
    // the `.dlq` topic; the DLQ is still just empty.
    let out = fabric(dir.path(), &["dlq", "list", TOPIC]);
    assert!(lines(&out).is_empty());
    // A source topic that does not exist is still an error naming it.
    let out = fabric(dir.path(), &["dlq", "list", "no.such.v1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no.such.v1"));
}
