//! The topics-file lint: the shipped example passes; each kind of mistake
//! is one `FILE:LINE: RULE: message` finding at the line that holds it;
//! a version bump is diffed against a previous file or data directory.

use std::fs;
use std::path::{Path, PathBuf};

use eventfabric::governance::topics_file::{self, Against, Finding};
use eventfabric::governance::{Catalog, Classification, SchemaCandidate};
use serde_json::json;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/topics.yaml")
}

fn findings(path: &Path, against: Against<'_>) -> Vec<Finding> {
    topics_file::check(path, against).unwrap().findings
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

/// A temp dir holding `topics.yaml` (the example with `edit` applied) and
/// copies of the example schemas.
fn variant(edit: impl Fn(String) -> String) -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let schemas = dir.path().join("schemas");
    fs::create_dir(&schemas).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/schemas");
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), schemas.join(entry.file_name())).unwrap();
    }
    let text = edit(fs::read_to_string(example()).unwrap());
    let path = dir.path().join("topics.yaml");
    fs::write(&path, &text).unwrap();
    (dir, path, text)
}

#[test]
fn the_example_file_is_clean() {
    let report = topics_file::check(&example(), Against::Nothing).unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    let file = report.file.as_ref().unwrap();
    assert_eq!(file.topics.len(), 3);
    assert!(file.topics.values().all(|t| t.governance().require_schemas));
    assert!(
        report
            .summary()
            .starts_with("ok: 3 topics, 3 event types (4 schema versions)")
    );
    assert!(
        report
            .catalog
            .version("billing.invoice.issued", "1.2.0")
            .is_some()
    );
}

#[test]
fn a_missing_schema_file_and_an_undeclared_event_type_are_named_at_their_lines() {
    let (_dir, path, text) = variant(|t| {
        t.replace(
            "schemas/auth.user.login_succeeded-1.0.1.json",
            "schemas/nope.json",
        )
        .replace(
            "[billing.invoice.issued]",
            "[billing.invoice.issued, billing.invoice.paid]",
        )
    });
    let found = findings(&path, Against::Nothing);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(found[0].rule, "SCHEMA_MISSING");
    assert_eq!(found[0].line, line_of(&text, "billing.invoice.paid"));
    assert!(found[0].message.contains("billing.invoice.paid"));
    assert_eq!(found[1].rule, "SCHEMA_MISSING");
    assert_eq!(found[1].line, line_of(&text, "schemas/nope.json"));
    let shown = found[1].to_string();
    assert!(
        shown.starts_with(&format!(
            "{}:{}: SCHEMA_MISSING: ",
            path.display(),
            found[1].line
        )),
        "{shown}"
    );
}

#[test]
fn an_untagged_field_is_found() {
    let (_dir, path, text) = variant(|t| t.replacen("          /mfa: none\n", "", 1));
    let found = findings(&path, Against::Nothing);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].rule, "FIELD_UNCLASSIFIED");
    assert!(found[0].message.contains("/mfa"), "{}", found[0].message);
    assert_eq!(found[0].line, line_of(&text, "- version: 1.0.1"));
}

#[test]
fn an_invalid_setting_and_a_parse_error_are_found() {
    let (_dir, path, text) = variant(|t| t.replace("    partitions: 12\n", "    partitions: 0\n"));
    let found = findings(&path, Against::Nothing);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].rule, "SETTING_INVALID");
    assert_eq!(found[0].line, line_of(&text, "partitions: 0"));

    let (_dir, path, text) =
        variant(|t| t.replace("    fsync: always\n", "    fsync: sometimes\n"));
    let found = findings(&path, Against::Nothing);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].rule, "PARSE_ERROR");
    assert_eq!(found[0].line, line_of(&text, "fsync: sometimes"));

    let (_dir, path, _) = variant(|t| {
        t.replace(
            "    tenancy: hybrid\n",
            "    tenancy: hybrid\n    colour: blue\n",
        )
    });
    let found = findings(&path, Against::Nothing);
    assert_eq!(found[0].rule, "PARSE_ERROR", "{found:#?}");
    assert!(found[0].message.contains("colour"), "{}", found[0].message);
}

#[test]
fn a_breaking_change_needs_a_major_bump_and_a_migration_note_against_the_previous_file() {
    // The new file changes billing's 1.2.0 line_items into a string and
    // calls it 1.3.0: against the example it is a breaking minor bump.
    let (dir, path, text) = variant(|t| {
        t.replace(
            "  auth.user.login_succeeded:\n",
            "      - version: 1.3.0\n        path: schemas/billing-1.3.0.json\n        tags: {/invoice_id: none, /customer_id: pii, /amount: none, /currency: none, /due_date: none, /line_items: none}\n  auth.user.login_succeeded:\n",
        )
    });
    let broken = fs::read_to_string(dir.path().join("schemas/billing.invoice.issued-1.2.0.json"))
        .unwrap()
        .replace(
            "\"line_items\": {\"type\": \"integer\", \"minimum\": 1}",
            "\"line_items\": {\"type\": \"string\"}",
        );
    fs::write(dir.path().join("schemas/billing-1.3.0.json"), broken).unwrap();
    let found = findings(&path, Against::File(&example()));
    let rules: Vec<&str> = found.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(
        rules,
        ["TYPE_CHANGED", "BREAKING_CHANGE_NEEDS_MAJOR"],
        "{found:#?}"
    );
    assert!(found[0].message.contains("/line_items"));
    assert_eq!(found[0].line, line_of(&text, "- version: 1.3.0"));

    // As 2.0.0 without a note: the note is missing; with one: clean.
    let major = fs::read_to_string(&path)
        .unwrap()
        .replace("version: 1.3.0", "version: 2.0.0");
    fs::write(&path, &major).unwrap();
    let rules: Vec<String> = findings(&path, Against::File(&example()))
        .into_iter()
        .map(|f| f.rule)
        .collect();
    assert_eq!(rules, ["TYPE_CHANGED", "MIGRATION_NOTE_MISSING"]);
    fs::write(&path, major.replace("        path: schemas/billing-1.3.0.json\n", "        path: schemas/billing-1.3.0.json\n        migration: dual-write billing.domain.v2 for 30 days\n")).unwrap();
    let found = findings(&path, Against::File(&example()));
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn against_a_data_directory_catalog() {
    let data = tempfile::tempdir().unwrap();
    let mut catalog = Catalog::open(data.path()).unwrap();
    // The data directory has a 1.2.0 whose customer_id is tagged pii, and
    // the file's 1.2.0 differs from it (a different schema for a registered version).
    let mut registered = SchemaCandidate::new(
        "billing.invoice.issued",
        "1.2.0".parse().unwrap(),
        json!({"type": "object", "properties": {"customer_id": {"type": "string"}}}),
    );
    registered
        .tags
        .insert("/customer_id".into(), Classification::Pii);
    assert!(catalog.add(registered).unwrap().accepted());
    let found = findings(&example(), Against::DataDir(data.path()));
    let rules: Vec<&str> = found.iter().map(|f| f.rule.as_str()).collect();
    // 1.1.0 is below the registered 1.2.0; 1.2.0 is registered differently.
    assert_eq!(
        rules,
        ["VERSION_NOT_INCREASING", "VERSION_EXISTS"],
        "{found:#?}"
    );
    // The lint never wrote to the data directory's catalog.
    let reopened = Catalog::open(data.path()).unwrap();
    assert_eq!(
        reopened
            .get("billing.invoice.issued")
            .unwrap()
            .versions
            .len(),
        1
    );
    assert!(reopened.get("auth.user.login_succeeded").is_none());
}

#[test]
fn a_json_topics_file_is_read_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topics.json");
    let text = serde_json::to_string_pretty(&json!({
        "version": 1,
        "topics": {"a.v1": {"partitions": 2, "event_types": ["x.y.z"]}}
    }))
    .unwrap();
    fs::write(&path, &text).unwrap();
    let found = findings(&path, Against::Nothing);
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].rule.as_str(), found[0].line),
        ("SCHEMA_MISSING", line_of(&text, "x.y.z"))
    );
}
