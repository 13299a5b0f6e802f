//! docs/RUNBOOK.md's commands run for real: every fenced block tagged
//! ```` ```sh test ```` is parsed out of the runbook (not mirrored: editing a
//! command in the doc changes what runs here) and run, in order, by bash
//! with `set -euo pipefail` on one fixture data directory, with the
//! runbook's variables (`DATA`, `TOPIC`, `GROUP`, `FROM`, `TO`,
//! `HOOK_TOPIC`) set to the fixture's names and this build's `fabric` first
//! on PATH. Each block must exit 0; then a few outputs are checked.

mod console_fixture;

use std::path::Path;
use std::process::Command;

use console_fixture::{BILLING, BILLING_EVENTS, GROUP};

/// The bodies of the ```` ```sh test ```` blocks of `markdown`, in order,
/// with the line each starts at (indentation of list items removed).
fn test_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, usize, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut current {
            None => {
                if trimmed == "```sh test" {
                    current = Some((i + 1, line.len() - trimmed.len(), String::new()));
                }
            }
            Some((start, indent, body)) => {
                if trimmed == "```" {
                    blocks.push((*start, std::mem::take(body)));
                    current = None;
                } else {
                    let cut = line.len().min(*indent);
                    body.push_str(line.get(cut..).unwrap_or(line));
                    body.push('\n');
                }
            }
        }
    }
    assert!(current.is_none(), "an unclosed ```sh test block");
    blocks
}

#[test]
fn the_parser_finds_indented_blocks_and_skips_untagged_ones() {
    let doc = "x\n```sh\nuntested\n```\n1. step\n\n   ```sh test\n   a \"b\"\n     c\n   ```\n";
    assert_eq!(test_blocks(doc), vec![(7, "a \"b\"\n  c\n".to_string())]);
}

#[test]
fn every_tested_runbook_command_works_on_a_fixture() {
    let runbook =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/RUNBOOK.md")).unwrap();
    let blocks = test_blocks(&runbook);
    assert!(blocks.len() >= 15, "only {} tested blocks", blocks.len());
    let data = tempfile::tempdir().unwrap();
    console_fixture::build(data.path());
    let work = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_fabric")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let now = jiff::Timestamp::now();
    let from = now - jiff::SignedDuration::from_hours(1);
    let to = now + jiff::SignedDuration::from_hours(1);
    let mut transcript = String::new();
    for (line, body) in &blocks {
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", body])
            .current_dir(work.path())
            .env("PATH", &path)
            .env("DATA", data.path())
            .env("TOPIC", BILLING)
            .env("GROUP", GROUP)
            .env("HOOK_TOPIC", BILLING)
            .env("FROM", from.to_string())
            .env("TO", to.to_string())
            .output()
            .expect("bash runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "docs/RUNBOOK.md block at line {line} failed ({}):\n{body}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        );
        transcript.push_str(&format!("## line {line}\n{stdout}{stderr}"));
    }
    // The time-range replay re-read every fixture event into the replay group.
    let replayed = std::fs::read_to_string(work.path().join("replayed.ndjson")).unwrap();
    assert_eq!(
        replayed.lines().count() as u64,
        BILLING_EVENTS,
        "{transcript}"
    );
    // The DLQ replay published the schema violation once, then found it done.
    assert!(
        transcript.contains("replayed 1 dead letters into billing.invoice.v1"),
        "{transcript}"
    );
    assert!(transcript.contains("1 already replayed"), "{transcript}");
    // The skip left the group without lag.
    let fabric = eventfabric::Fabric::open_read_only(data.path()).unwrap();
    let stats = fabric.stats().unwrap();
    let group = stats.groups.iter().find(|g| g.group == GROUP).unwrap();
    assert_eq!(group.lag, 0, "{transcript}");
}
