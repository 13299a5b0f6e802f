//! The governance CLI contract: `fabric schema add|check|list|show` output
//! lines and exit statuses (nothing stored on refusal), and `fabric check`
//! on the good example file and on a bad one.

mod common;

use std::fs;
use std::path::Path;

use common::{fabric, fabric_ok, json_lines};
use serde_json::json;

fn write_schema(dir: &Path, name: &str, schema: serde_json::Value) -> String {
    let path = dir.join(name);
    fs::write(&path, serde_json::to_vec(&schema).unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn schema_add_check_list_show() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let v1 = write_schema(
        dir.path(),
        "v1.json",
        json!({"type": "object", "properties": {"id": {"type": "string"}, "email": {"type": "string"}}, "required": ["id"]}),
    );
    let v2 = write_schema(
        dir.path(),
        "v2.json",
        json!({"type": "object", "properties": {"id": {"type": "integer"}, "email": {"type": "string"}}, "required": ["id"]}),
    );

    let out = fabric_ok(
        &data,
        &[
            "schema",
            "add",
            "billing.invoice.issued",
            "1.0.0",
            &v1,
            "--tag",
            "/email=pii",
            "--tag",
            "/id=none",
            "--owner",
            "billing",
        ],
        b"",
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["event_type"], "billing.invoice.issued");
    assert_eq!(lines[0]["version"], "1.0.0");
    assert_eq!(lines[0]["compat"], "backward_transitive");
    assert!(lines[0]["rules_checked"].as_u64().unwrap() > 0);
    let keys: Vec<&String> = lines[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["event_type", "version", "compat", "rules_checked"]);

    // A breaking minor bump: exit 1, one line per rule, nothing stored.
    for sub in ["check", "add"] {
        let out = fabric(
            &data,
            &[
                "schema",
                sub,
                "billing.invoice.issued",
                "1.1.0",
                &v2,
                "--tag",
                "/email=pii",
                "--tag",
                "/id=none",
            ],
            b"",
        );
        assert_eq!(out.status.code(), Some(1), "{sub}");
        let lines = json_lines(&String::from_utf8(out.stdout).unwrap());
        let rules: Vec<&str> = lines.iter().map(|l| l["rule"].as_str().unwrap()).collect();
        assert_eq!(
            rules,
            ["TYPE_CHANGED", "BREAKING_CHANGE_NEEDS_MAJOR"],
            "{sub}"
        );
        assert_eq!(lines[0]["pointer"], "/id");
        assert!(lines[0]["message"].is_string());
    }
    // Without the pii tag the classification rule fires too.
    let out = fabric(
        &data,
        &["schema", "check", "billing.invoice.issued", "1.0.1", &v1],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("CLASSIFICATION_REMOVED"));
    // A major bump with a migration note is accepted.
    fabric_ok(
        &data,
        &[
            "schema",
            "add",
            "billing.invoice.issued",
            "2.0.0",
            &v2,
            "--tag",
            "/email=pii",
            "--tag",
            "/id=none",
            "--migration",
            "dual-write for 30 days",
        ],
        b"",
    );

    let list = fabric_ok(&data, &["schema", "list"], b"");
    assert_eq!(
        list.trim(),
        "billing.invoice.issued backward_transitive 1.0.0 2.0.0"
    );
    let list = json_lines(&fabric_ok(&data, &["schema", "list", "--json"], b""));
    assert_eq!(list[0]["versions"], json!(["1.0.0", "2.0.0"]));
    let shown = json_lines(&fabric_ok(
        &data,
        &["schema", "show", "billing.invoice.issued", "2.0.0"],
        b"",
    ));
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0]["migration"], "dual-write for 30 days");
    assert_eq!(shown[0]["tags"]["/email"], "pii");
    assert_eq!(
        json_lines(&fabric_ok(
            &data,
            &["schema", "show", "billing.invoice.issued"],
            b""
        ))
        .len(),
        2
    );
    let out = fabric(&data, &["schema", "show", "nope.x.y"], b"");
    assert_eq!(out.status.code(), Some(1));
    // A bad argument is exit 2.
    let out = fabric(
        &data,
        &["schema", "check", "billing.invoice.issued", "1.2", &v1],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn fabric_check_on_good_and_bad_example_files() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/topics.yaml");
    let unused = tempfile::tempdir().unwrap();
    let out = fabric_ok(unused.path(), &["check", example.to_str().unwrap()], b"");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("ok: 3 topics"), "{out}");
    assert!(
        !unused.path().join("governance").exists(),
        "check wrote nothing"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("topics.yaml");
    fs::write(
        &bad,
        "version: 1\ntopics:\n  a.v1:\n    partitions: 0\n    event_types: [x.y.z]\n",
    )
    .unwrap();
    let out = fabric(unused.path(), &["check", bad.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let file = bad.display().to_string();
    assert!(
        lines.contains(
            &format!("{file}:4: SETTING_INVALID: invalid partitions: 0 is outside 1..=4096")
                .as_str()
        ),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{file}:5: SCHEMA_MISSING: "))),
        "{stdout}"
    );
}

#[test]
fn produce_refuses_a_payload_that_fails_its_schema_with_line_pointer_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let schema = write_schema(
        dir.path(),
        "s.json",
        json!({"type": "object", "properties": {"amount": {"type": "integer"}, "email": {"type": "string", "maxLength": 5}}, "required": ["amount"]}),
    );
    fabric_ok(
        &data,
        &[
            "schema",
            "add",
            "billing.invoice.issued",
            "1.2.0",
            &schema,
            "--tag",
            "/email=pii",
            "--tag",
            "/amount=none",
        ],
        b"",
    );
    fabric_ok(
        &data,
        &[
            "topic",
            "create",
            "billing.domain.v1",
            "--partitions",
            "2",
            "--require-schemas",
        ],
        b"",
    );
    let line = |payload: serde_json::Value| {
        json!({"event_type": "billing.invoice.issued", "tenant_id": "t1", "occurred_at": "2026-06-10T12:00:00Z", "schema_version": "1.2.0", "payload": payload}).to_string()
    };
    let input = [
        line(json!({"amount": 5})),
        line(json!({"amount": "five", "email": "secret.person@example.com"})),
        line(json!({"amount": 7})),
    ]
    .join("\n");
    let out = fabric(&data, &["produce", "billing.domain.v1"], input.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("line 2 rejected")
            && stderr.contains("/amount: type")
            && stderr.contains("/email: maxLength"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret.person"), "PII leaked: {stderr}");
    assert!(stderr.contains("produced 2 events"), "{stderr}");
}

#[test]
fn plan_and_apply_the_example_file() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/topics.yaml");
    let example = example.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fabric_ok(
        &data,
        &["topic", "create", "old.v1", "--partitions", "1"],
        b"",
    );
    // The file does not list old.v1: deleting it is blocked, nothing applied.
    let out = fabric(&data, &["plan", example], b"");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(
            "create topic billing.domain.v1 partitions=6 tenancy=shared require_schemas=true"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("register schema billing.invoice.issued 1.2.0"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-destructive"));
    let out = fabric(&data, &["apply", example], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        fabric_ok(&data, &["schema", "list"], b"").is_empty(),
        "nothing applied"
    );

    let applied = fabric_ok(&data, &["apply", example, "--allow-destructive"], b"");
    assert!(applied.contains("delete topic old.v1"), "{applied}");
    let list = fabric_ok(&data, &["schema", "list"], b"");
    assert_eq!(list.lines().count(), 3, "{list}");
    let topics = fabric_ok(&data, &["topic", "list"], b"");
    for name in ["billing.domain.v1", "auth.audit.v1", "workflow.events.v1"] {
        assert!(topics.contains(name), "{topics}");
    }
    assert!(!topics.contains("old.v1"), "{topics}");
    assert!(
        data.join("governance/acls.json").exists() && data.join("governance/quotas.json").exists()
    );
    // Re-running converges: nothing left to change.
    let out = fabric(&data, &["plan", example], b"");
    assert!(out.status.success());
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The applied topic requires schemas.
    let event = json!({"event_type": "billing.invoice.issued", "tenant_id": "t1", "occurred_at": "2026-06-10T12:00:00Z", "schema_version": "1.2.0", "payload": {"invoice_id": "bad id"}});
    // The applied ACLs: the host principal may not produce; billing-service may.
    let out = fabric(
        &data,
        &["produce", "billing.domain.v1"],
        event.to_string().as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        stderr.contains(
            "access denied: principal \"host\" may not produce topic \"billing.domain.v1\""
        ),
        "{stderr}"
    );
    let args = [
        "--principal",
        "billing-service",
        "produce",
        "billing.domain.v1",
    ];
    let out = fabric(&data, &args, event.to_string().as_bytes());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/invoice_id: pattern"));
    // consume: invoice-projector is allowed, billing-service is not.
    fabric_ok(
        &data,
        &[
            "--principal",
            "invoice-projector",
            "consume",
            "billing.domain.v1",
        ],
        b"",
    );
    let out = fabric(
        &data,
        &[
            "--principal",
            "billing-service",
            "consume",
            "billing.domain.v1",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));

    // fabric acl / fabric quota.
    let rule = [
        "--principal",
        "host",
        "--operation",
        "produce",
        "--name",
        "billing.",
        "--prefix",
    ];
    fabric_ok(&data, &[&["acl", "add"][..], &rule].concat(), b"");
    assert_eq!(
        json_lines(&fabric_ok(&data, &["acl", "list"], b"")).len(),
        6
    );
    fabric_ok(&data, &[&["acl", "remove"][..], &rule].concat(), b"");
    assert_eq!(
        json_lines(&fabric_ok(&data, &["acl", "list"], b"")).len(),
        5
    );
    fabric_ok(
        &data,
        &[
            "quota",
            "set",
            "--tenant",
            "tenant-123",
            "--events-per-sec",
            "10",
            "--action",
            "reject",
        ],
        b"",
    );
    let quotas = json_lines(&fabric_ok(&data, &["quota", "list"], b""));
    assert_eq!(quotas.len(), 3, "the tenant's rule was replaced, not added");
    assert!(quotas.iter().any(|q| q["tenant"] == "tenant-123"
        && q["events_per_sec"] == 10
        && q.get("producer").is_none()));
    assert_eq!(
        fabric(&data, &["quota", "set", "--producer", "p"], b"")
            .status
            .code(),
        Some(2)
    );
}
