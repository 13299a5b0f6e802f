//! Crash tests of the catalog and ACL files: a crash (every file operation
//! after the n-th fails, for every n until a write completes) leaves
//! either the old or the new content, never a damaged or half-written file,
//! and the directory stays writable afterwards.

use std::sync::Arc;

use eventfabric::Error;
use eventfabric::governance::{
    AclRule, Acls, Catalog, Effect, Operation, PatternKind, ResourceKind, SchemaCandidate,
};
use eventfabric::testing::FaultPlan;
use serde_json::json;

fn candidate(version: &str, extra_field: &str) -> SchemaCandidate {
    SchemaCandidate::new(
        "billing.invoice.issued",
        version.parse().unwrap(),
        json!({"type": "object", "properties": {"id": {"type": "string"}, extra_field: {"type": "integer"}}}),
    )
}

#[test]
fn a_crash_at_every_catalog_file_operation_keeps_the_old_or_the_new_catalog() {
    let mut completed_at = None;
    for n in 0..40u64 {
        let data = tempfile::tempdir().unwrap();
        // The first version is stored without faults.
        Catalog::open(data.path())
            .unwrap()
            .add(candidate("1.0.0", "a"))
            .unwrap();
        let plan = Arc::new(FaultPlan::new().crash_after(n));
        let mut catalog = Catalog::open_with_faults(data.path(), Some(plan.clone())).unwrap();
        let result = catalog.add(candidate("1.1.0", "b"));
        // After the "crash", a fresh process reads the directory.
        let reopened = Catalog::open(data.path()).expect("the catalog must stay readable");
        let versions: Vec<String> = reopened
            .get("billing.invoice.issued")
            .unwrap()
            .versions
            .iter()
            .map(|v| v.version.to_string())
            .collect();
        match result {
            Ok(verdict) => {
                assert!(verdict.accepted());
                assert_eq!(versions, ["1.0.0", "1.1.0"], "n={n}");
                completed_at = Some(n);
                break;
            }
            Err(Error::Io { .. }) => {
                assert!(
                    versions == ["1.0.0"] || versions == ["1.0.0", "1.1.0"],
                    "n={n}: {versions:?}"
                );
                // The failed add left memory as it was: 1.1.0 is still new to it.
                assert!(catalog.version("billing.invoice.issued", "1.1.0").is_none());
                // And the directory takes the write once the disk is back.
                let mut again = Catalog::open(data.path()).unwrap();
                let verdict = again.add(candidate("1.1.0", "b")).unwrap();
                assert!(verdict.accepted(), "n={n}: {:?}", verdict.violations);
            }
            Err(other) => panic!("n={n}: unexpected {other}"),
        }
    }
    assert!(
        completed_at.is_some_and(|n| n >= 4),
        "{completed_at:?}: the write has create, write, sync, rename, sync-dir"
    );
}

#[test]
fn a_crash_creating_the_governance_directory_keeps_an_empty_catalog() {
    for n in 0..8u64 {
        let data = tempfile::tempdir().unwrap();
        let plan = Arc::new(FaultPlan::new().crash_after(n));
        let mut catalog = Catalog::open_with_faults(data.path(), Some(plan)).unwrap();
        let result = catalog.add(candidate("1.0.0", "a"));
        let reopened = Catalog::open(data.path()).unwrap();
        match result {
            Ok(_) => assert!(reopened.get("billing.invoice.issued").is_some()),
            Err(_) => assert!(
                reopened
                    .get("billing.invoice.issued")
                    .is_none_or(|e| e.versions.len() == 1)
            ),
        }
    }
}

#[test]
fn a_damaged_catalog_is_refused_naming_the_file() {
    let data = tempfile::tempdir().unwrap();
    Catalog::open(data.path())
        .unwrap()
        .add(candidate("1.0.0", "a"))
        .unwrap();
    let path = Catalog::file_path(data.path());
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"integer\"", "\"string\"")).unwrap();
    let err = Catalog::open(data.path()).unwrap_err().to_string();
    assert!(
        err.contains("checksum mismatch") && err.contains("catalog.json"),
        "{err}"
    );
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let err = Catalog::open(data.path()).unwrap_err().to_string();
    assert!(
        err.contains("not valid JSON") && err.contains("catalog.json"),
        "{err}"
    );
}

fn rule(principal: &str, effect: Effect) -> AclRule {
    AclRule {
        principal: principal.into(),
        tenant: "*".into(),
        operation: Operation::Produce,
        resource: ResourceKind::Topic,
        name: "billing.".into(),
        pattern: PatternKind::Prefix,
        effect,
    }
}

#[test]
fn a_crash_at_every_acl_file_operation_keeps_the_old_or_the_new_rules() {
    let mut completed = false;
    for n in 0..40u64 {
        let data = tempfile::tempdir().unwrap();
        Acls::open(data.path())
            .unwrap()
            .add(rule("billing-service", Effect::Allow))
            .unwrap();
        let plan = Arc::new(FaultPlan::new().crash_after(n));
        let mut acls = Acls::open_with_faults(data.path(), Some(plan)).unwrap();
        let result = acls.add(rule("intruder", Effect::Deny));
        let reopened = Acls::open(data.path()).expect("the ACL file must stay readable");
        let n_rules = reopened.rules().len();
        match result {
            Ok(added) => {
                assert!(added);
                assert_eq!(n_rules, 2);
                completed = true;
                break;
            }
            Err(_) => {
                assert!(n_rules == 1 || n_rules == 2, "n={n}: {n_rules}");
                assert_eq!(
                    acls.rules().len(),
                    1,
                    "memory unchanged after a failed write"
                );
            }
        }
    }
    assert!(completed);
}
