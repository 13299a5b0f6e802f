//! `fabric retention show|run`, the tier flags of `topic create` and the tier
//! fields of `inspect`, end to end with the built binary.
mod common;

use common::fabric;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn ok(data: &Path, args: &[&str], stdin: &[u8]) -> (String, String) {
    let out = fabric(data, args, stdin);
    assert!(
        out.status.success(),
        "fabric {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn retention_run_moves_old_segments_to_warm_and_show_and_inspect_report_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    ok(
        data,
        &[
            "topic",
            "create",
            "auth.audit.v1",
            "--partitions",
            "1",
            "--segment-bytes",
            "16384",
            "--warm-retention-ms",
            "31536000000",
            "--cold-action",
            "export",
        ],
        b"",
    );
    let events = Command::new(env!("CARGO_BIN_EXE_fabric"))
        .args([
            "gen",
            "auth.user.login_succeeded",
            "--count",
            "300",
            "--seed",
            "3",
        ])
        .output()
        .unwrap()
        .stdout;
    // Fifty events per run: each run appends one batch, and a batch that would
    // overflow the 16 KiB segment rolls it.
    let events: Vec<&[u8]> = events.split_inclusive(|&b| b == b'\n').collect();
    for chunk in events.chunks(50) {
        ok(
            data,
            &["produce", "auth.audit.v1", "--fsync", "os"],
            &chunk.concat(),
        );
    }

    let (show, _) = ok(data, &["retention", "show", "auth.audit.v1"], b"");
    let show = lines(&show);
    assert_eq!(show[0]["retention_ms"], 604_800_000u64);
    assert_eq!(show[0]["warm_retention_ms"], 31_536_000_000u64);
    assert_eq!(show[0]["cold_action"], "export");
    let hot_before = show[1]["hot"]["segments"].as_u64().unwrap();
    assert!(hot_before >= 3, "{show:?}");
    assert_eq!(show[1]["warm"]["segments"], 0);

    // The fixture events are from June 2026: 30 days later they are past hot retention.
    let (run, progress) = ok(
        data,
        &[
            "retention",
            "run",
            "auth.audit.v1",
            "--now",
            "2026-07-10T12:00:00Z",
        ],
        b"",
    );
    let report = &lines(&run)[0];
    assert_eq!(report["segments_to_warm"].as_u64().unwrap(), hot_before - 1);
    assert!(report["bytes_after"].as_u64().unwrap() < report["bytes_before"].as_u64().unwrap());
    assert!(progress.contains("hot -> warm"), "{progress}");

    let (show, _) = ok(data, &["retention", "show", "auth.audit.v1"], b"");
    let show = lines(&show);
    assert_eq!(show[1]["hot"]["segments"], 1);
    assert_eq!(
        show[1]["warm"]["segments"].as_u64().unwrap(),
        hot_before - 1
    );
    assert_eq!(show[1]["earliest_offset"], 0);

    let (inspect, _) = ok(data, &["inspect", "--json"], b"");
    let doc: Value = serde_json::from_str(&inspect).unwrap();
    let p = &doc["topics"][0]["partitions"][0];
    assert_eq!(p["earliest_available_offset"], 0);
    let warm = p["warm"].as_array().unwrap();
    assert_eq!(warm.len() as u64, hot_before - 1);
    assert_eq!(warm[0]["base_offset"], 0);
    assert_eq!(warm[0]["schema_versions"][0], "1.0.1"); // the auth fixture's contract
    let (text, _) = ok(data, &["inspect"], b"");
    assert!(text.contains("    warm "), "{text}");

    // Every event still reads back, from warm then hot.
    let (consumed, _) = ok(data, &["consume", "auth.audit.v1"], b"");
    assert_eq!(lines(&consumed).len(), 300);

    // A year later the archives are exported to the cold directory.
    let (run, _) = ok(
        data,
        &[
            "retention",
            "run",
            "auth.audit.v1",
            "--now",
            "2027-07-10T12:00:00Z",
        ],
        b"",
    );
    let report = &lines(&run)[0];
    assert_eq!(report["segments_to_cold"].as_u64().unwrap(), hot_before - 1);
    let first_hot = report["earliest_changes"][0]["earliest_offset"]
        .as_u64()
        .unwrap();
    assert!(first_hot > 0);
    let (consumed, _) = ok(data, &["consume", "auth.audit.v1"], b"");
    assert_eq!(lines(&consumed).len() as u64, 300 - first_hot);
    let (show, _) = ok(data, &["retention", "show", "auth.audit.v1"], b"");
    assert_eq!(
        lines(&show)[1]["cold"]["segments"].as_u64().unwrap(),
        hot_before - 1
    );
    assert!(data.join("cold/auth.audit.v1/0").is_dir());
}

#[test]
fn bad_retention_flags_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = fabric(
        dir.path(),
        &[
            "topic",
            "create",
            "t.v1",
            "--partitions",
            "1",
            "--warm-retention-ms",
            "1000",
        ],
        b"",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warm_retention_ms"), "{err}");
    let out = fabric(
        dir.path(),
        &[
            "topic",
            "create",
            "t.v1",
            "--partitions",
            "1",
            "--cold-action",
            "shred",
        ],
        b"",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("delete, export"));
}
