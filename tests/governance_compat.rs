//! The compatibility checker's table: every rule with a compatible and an
//! incompatible example in the direction it guards, the reversed rule in the
//! other direction, transitive vs non-transitive catalogs, semver gating,
//! and properties (self-compatibility; backward A→B equals forward B→A).

use std::collections::BTreeMap;

use eventfabric::governance::schema::compat::{self, Direction};
use eventfabric::governance::{Catalog, Classification, CompatMode, Rule, SchemaCandidate};
use proptest::prelude::*;
use serde_json::{Value, json};

fn rules(old: &Value, new: &Value, direction: Direction) -> Vec<(Rule, String)> {
    compat::check(old, new, direction)
        .into_iter()
        .map(|v| (v.rule, v.pointer))
        .collect()
}

fn obj(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required})
}

/// (rule, old, new, pointer): changing old into new breaks `backward` with
/// `rule` at `pointer` (and `forward` with its reverse when swapped), while
/// the listed compatible change of the same kind is accepted.
struct Case {
    rule: Rule,
    direction: Direction,
    old: Value,
    breaking_new: Value,
    compatible_new: Value,
    pointer: &'static str,
}

fn table() -> Vec<Case> {
    let base = obj(
        json!({"id": {"type": "string"}, "n": {"type": "integer"}}),
        &["id"],
    );
    let closed = json!({"type": "object", "properties": {"id": {"type": "string"}, "note": {"type": "string"}}, "additionalProperties": false});
    vec![
        Case {
            rule: Rule::TypeChanged,
            direction: Direction::Backward,
            old: base.clone(),
            breaking_new: obj(
                json!({"id": {"type": "integer"}, "n": {"type": "integer"}}),
                &["id"],
            ),
            compatible_new: obj(
                json!({"id": {"type": ["string", "null"]}, "n": {"type": "integer"}}),
                &["id"],
            ),
            pointer: "/id",
        },
        Case {
            rule: Rule::TypeNarrowed,
            direction: Direction::Backward,
            old: obj(
                json!({"id": {"type": "string"}, "n": {"type": "number"}}),
                &["id"],
            ),
            breaking_new: base.clone(),
            compatible_new: obj(
                json!({"id": {"type": "string"}, "n": {"type": ["number", "null"]}}),
                &["id"],
            ),
            pointer: "/n",
        },
        Case {
            rule: Rule::TypeWidened,
            direction: Direction::Forward,
            old: base.clone(),
            breaking_new: obj(
                json!({"id": {"type": "string"}, "n": {"type": "number"}}),
                &["id"],
            ),
            compatible_new: obj(
                json!({"id": {"type": "string"}, "n": {"type": "integer", "minimum": 0}}),
                &["id"],
            ),
            pointer: "/n",
        },
        Case {
            rule: Rule::RequiredFieldAdded,
            direction: Direction::Backward,
            old: base.clone(),
            breaking_new: obj(
                json!({"id": {"type": "string"}, "n": {"type": "integer"}, "c": {"type": "string"}}),
                &["id", "c"],
            ),
            compatible_new: obj(
                json!({"id": {"type": "string"}, "n": {"type": "integer"}, "c": {"type": "string"}}),
                &["id"],
            ),
            pointer: "/c",
        },
        Case {
            rule: Rule::RequiredFieldRemoved,
            direction: Direction::Forward,
            old: base.clone(),
            breaking_new: obj(json!({"n": {"type": "integer"}}), &[]),
            compatible_new: obj(json!({"id": {"type": "string"}}), &["id"]),
            pointer: "/id",
        },
        Case {
            rule: Rule::FieldRemoved,
            direction: Direction::Backward,
            old: closed.clone(),
            breaking_new: json!({"type": "object", "properties": {"id": {"type": "string"}}, "additionalProperties": false}),
            compatible_new: json!({"type": "object", "properties": {"id": {"type": "string"}, "note": {"type": "string"}, "extra": {"type": "string"}}, "additionalProperties": false}),
            pointer: "/note",
        },
        Case {
            rule: Rule::FieldAddedToClosedModel,
            direction: Direction::Forward,
            old: closed.clone(),
            breaking_new: json!({"type": "object", "properties": {"id": {"type": "string"}, "note": {"type": "string"}, "extra": {"type": "string"}}, "additionalProperties": false}),
            compatible_new: json!({"type": "object", "properties": {"id": {"type": "string"}}, "additionalProperties": false}),
            pointer: "/extra",
        },
        Case {
            rule: Rule::AdditionalPropertiesNarrowed,
            direction: Direction::Backward,
            old: base.clone(),
            breaking_new: json!({"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}}, "required": ["id"], "additionalProperties": false}),
            compatible_new: json!({"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}}, "required": ["id"], "additionalProperties": true}),
            pointer: "",
        },
        Case {
            rule: Rule::AdditionalPropertiesWidened,
            direction: Direction::Forward,
            old: json!({"type": "object", "properties": {"id": {"type": "string"}}, "additionalProperties": false}),
            breaking_new: json!({"type": "object", "properties": {"id": {"type": "string"}}}),
            compatible_new: json!({"type": "object", "properties": {"id": {"type": "string", "maxLength": 9}}, "additionalProperties": false}),
            pointer: "",
        },
        Case {
            rule: Rule::EnumValueRemoved,
            direction: Direction::Backward,
            old: obj(json!({"c": {"enum": ["USD", "EUR"]}}), &[]),
            breaking_new: obj(json!({"c": {"enum": ["USD"]}}), &[]),
            compatible_new: obj(json!({"c": {"enum": ["USD", "EUR", "GBP"]}}), &[]),
            pointer: "/c",
        },
        Case {
            rule: Rule::EnumValueAdded,
            direction: Direction::Forward,
            old: obj(json!({"c": {"enum": ["USD", "EUR"]}}), &[]),
            breaking_new: obj(json!({"c": {"enum": ["USD", "EUR", "GBP"]}}), &[]),
            compatible_new: obj(json!({"c": {"const": "USD"}}), &[]),
            pointer: "/c",
        },
        Case {
            rule: Rule::ConstraintNarrowed,
            direction: Direction::Backward,
            old: obj(json!({"s": {"type": "string", "maxLength": 10}}), &[]),
            breaking_new: obj(json!({"s": {"type": "string", "maxLength": 5}}), &[]),
            compatible_new: obj(json!({"s": {"type": "string", "maxLength": 20}}), &[]),
            pointer: "/s",
        },
        Case {
            rule: Rule::ConstraintWidened,
            direction: Direction::Forward,
            old: obj(json!({"a": {"type": "integer", "minimum": 1}}), &[]),
            breaking_new: obj(json!({"a": {"type": "integer", "minimum": 0}}), &[]),
            compatible_new: obj(
                json!({"a": {"type": "integer", "minimum": 1, "maximum": 9}}),
                &[],
            ),
            pointer: "/a",
        },
        Case {
            rule: Rule::CompositionChanged,
            direction: Direction::Backward,
            old: obj(
                json!({"v": {"anyOf": [{"type": "string"}, {"type": "integer"}]}}),
                &[],
            ),
            breaking_new: obj(
                json!({"v": {"anyOf": [{"type": "string"}, {"type": "boolean"}]}}),
                &[],
            ),
            compatible_new: obj(
                json!({"v": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}}),
                &[],
            ),
            pointer: "/v",
        },
    ]
}

#[test]
fn every_compat_rule_has_a_breaking_and_a_compatible_example() {
    let cases = table();
    let covered: std::collections::BTreeSet<Rule> = cases.iter().map(|c| c.rule).collect();
    for rule in Rule::ALL.into_iter().filter(|r| r.is_compatibility()) {
        assert!(covered.contains(&rule), "{rule} has no table row");
    }
    for case in cases {
        let found = rules(&case.old, &case.breaking_new, case.direction);
        assert!(
            found.contains(&(case.rule, case.pointer.to_string())),
            "{}: expected {} at {:?}, got {found:?}",
            case.rule,
            case.rule,
            case.pointer
        );
        let other = match case.direction {
            Direction::Backward => Direction::Forward,
            Direction::Forward => Direction::Backward,
        };
        // The same change seen from the other side: swapping the versions
        // and the direction names the reversed rule.
        let swapped = rules(&case.breaking_new, &case.old, other);
        assert!(
            swapped.contains(&(case.rule.reversed(), case.pointer.to_string())),
            "{}: swapped expected {} got {swapped:?}",
            case.rule,
            case.rule.reversed()
        );
        let ok = rules(&case.old, &case.compatible_new, case.direction);
        assert!(
            ok.is_empty(),
            "{}: compatible example refused: {ok:?}",
            case.rule
        );
    }
}

#[test]
fn nested_pointers_and_array_items_are_named() {
    let old = json!({"type": "object", "properties": {"lines": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}}}}}});
    let new = json!({"type": "object", "properties": {"lines": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "integer"}}}}}});
    assert_eq!(
        rules(&old, &new, Direction::Backward),
        vec![(Rule::TypeChanged, "/lines/*/sku".to_string())]
    );
    // Local $refs are followed.
    let with_ref = json!({"$defs": {"money": {"type": "integer"}}, "type": "object", "properties": {"amount": {"$ref": "#/$defs/money"}}});
    let with_ref_str = json!({"$defs": {"money": {"type": "string"}}, "type": "object", "properties": {"amount": {"$ref": "#/$defs/money"}}});
    assert_eq!(
        rules(&with_ref, &with_ref_str, Direction::Backward),
        vec![(Rule::TypeChanged, "/amount".to_string())]
    );
    assert!(rules(&with_ref, &with_ref, Direction::Forward).is_empty());
}

#[test]
fn classification_rules() {
    let schema = obj(
        json!({"email": {"type": "string"}, "id": {"type": "string"}}),
        &[],
    );
    let tags = |pairs: &[(&str, Classification)]| -> BTreeMap<String, Classification> {
        pairs.iter().map(|(p, c)| (p.to_string(), *c)).collect()
    };
    let old = tags(&[
        ("/email", Classification::Pii),
        ("/id", Classification::None),
    ]);
    let dropped = tags(&[("/id", Classification::None)]);
    let found = compat::classification_removed(&old, &dropped, &schema);
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].rule, found[0].pointer.as_str()),
        (Rule::ClassificationRemoved, "/email")
    );
    assert!(compat::classification_removed(&old, &old, &schema).is_empty());
    // An ancestor's tag covers its children.
    let nested = obj(
        json!({"customer": {"type": "object", "properties": {"email": {"type": "string"}}}}),
        &[],
    );
    let parent = tags(&[("/customer", Classification::Pii)]);
    assert!(compat::unclassified_fields(&nested, &parent).is_empty());
    let missing = compat::unclassified_fields(&nested, &BTreeMap::new());
    assert_eq!(missing[0].pointer, "/customer/email");
    let unknown = compat::unknown_tag_pointers(&schema, &tags(&[("/mail", Classification::Pii)]));
    assert_eq!(unknown[0].rule, Rule::TagPointerUnknown);
}

fn candidate(version: &str, schema: Value) -> SchemaCandidate {
    SchemaCandidate::new("billing.invoice.issued", version.parse().unwrap(), schema)
}

fn rule_ids(v: &eventfabric::governance::Verdict) -> Vec<Rule> {
    v.violations.iter().map(|v| v.rule).collect()
}

/// v1 has `n` integer; v2 drops `n` (open object: compatible); v3
/// re-adds `n` as a string: compatible with v2, not with v1. Only the
/// transitive modes compare v3 with v1.
#[test]
fn transitive_modes_compare_every_version_of_the_major_line() {
    let v1 = json!({"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}}});
    let v2 = json!({"type": "object", "properties": {"id": {"type": "string"}}});
    let v3 = json!({"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "string"}}});
    for (mode, breaks) in [
        (CompatMode::BackwardTransitive, true),
        (CompatMode::Backward, false),
        (CompatMode::FullTransitive, true),
        (CompatMode::Full, false),
    ] {
        let mut catalog = Catalog::in_memory();
        let mut c1 = candidate("1.0.0", v1.clone());
        c1.compat = Some(mode);
        catalog.add(c1).unwrap();
        assert!(
            catalog
                .add(candidate("1.1.0", v2.clone()))
                .unwrap()
                .accepted()
        );
        let verdict = catalog.check(&candidate("1.2.0", v3.clone()));
        assert_eq!(
            !verdict.accepted(),
            breaks,
            "{mode}: {:?}",
            verdict.violations
        );
        if breaks {
            assert!(rule_ids(&verdict).contains(&Rule::TypeChanged), "{mode}");
            assert!(rule_ids(&verdict).contains(&Rule::BreakingChangeNeedsMajor));
        }
    }
}

#[test]
fn semver_is_enforced() {
    let v1 = obj(json!({"id": {"type": "string"}}), &["id"]);
    let compatible = obj(
        json!({"id": {"type": "string"}, "n": {"type": "integer"}}),
        &["id"],
    );
    let breaking = obj(json!({"id": {"type": "integer"}}), &["id"]);
    let mut catalog = Catalog::in_memory();
    assert!(
        catalog
            .add(candidate("1.0.0", v1.clone()))
            .unwrap()
            .accepted()
    );
    // Same version, same schema: idempotent; different schema: refused.
    assert!(catalog.check(&candidate("1.0.0", v1.clone())).unchanged);
    assert_eq!(
        rule_ids(&catalog.check(&candidate("1.0.0", compatible.clone()))),
        [Rule::VersionExists]
    );
    assert_eq!(
        rule_ids(&catalog.check(&candidate("0.9.0", compatible.clone()))),
        [Rule::VersionNotIncreasing]
    );
    assert!(
        catalog
            .check(&candidate("1.0.1", compatible.clone()))
            .accepted()
    );
    assert!(
        catalog
            .check(&candidate("1.1.0", compatible.clone()))
            .accepted()
    );
    assert_eq!(
        rule_ids(&catalog.check(&candidate("2.0.0", compatible.clone()))),
        [Rule::MajorBumpWithoutBreakingChange]
    );
    assert_eq!(
        rule_ids(&catalog.check(&candidate("1.1.0", breaking.clone()))),
        [Rule::TypeChanged, Rule::BreakingChangeNeedsMajor]
    );
    assert_eq!(
        rule_ids(&catalog.check(&candidate("2.0.0", breaking.clone()))),
        [Rule::TypeChanged, Rule::MigrationNoteMissing]
    );
    let mut with_note = candidate("2.0.0", breaking.clone());
    with_note.migration = Some("dual-write billing.domain.v2 for 30 days".into());
    let verdict = catalog.add(with_note).unwrap();
    assert!(verdict.accepted(), "{:?}", verdict.violations);
    assert_eq!(verdict.accepted_breaking[0].rule, Rule::TypeChanged);
    let stored = catalog.version("billing.invoice.issued", "2.0.0").unwrap();
    assert_eq!(
        stored.migration.as_deref(),
        Some("dual-write billing.domain.v2 for 30 days")
    );
    // The new major line is compared with itself only.
    let v21 = obj(
        json!({"id": {"type": "integer"}, "m": {"type": "string"}}),
        &["id"],
    );
    assert!(catalog.check(&candidate("2.1.0", v21)).accepted());
    // Invalid documents and unknown tag pointers are refused outright.
    assert_eq!(
        rule_ids(&catalog.check(&candidate("2.1.0", json!({"type": 5})))),
        [Rule::SchemaInvalid]
    );
    assert_eq!(
        rule_ids(&catalog.check(&candidate(
            "2.1.0",
            json!({"$ref": "https://example.com/s.json"})
        ))),
        [Rule::SchemaInvalid]
    );
    let mut tagged = candidate("2.0.1", breaking);
    tagged.tags.insert("/nope".into(), Classification::Pii);
    assert_eq!(rule_ids(&catalog.check(&tagged)), [Rule::TagPointerUnknown]);
}

#[test]
fn a_dropped_pii_tag_is_a_breaking_change() {
    let schema = obj(json!({"email": {"type": "string"}}), &[]);
    let mut catalog = Catalog::in_memory();
    let mut c1 = candidate("1.0.0", schema.clone());
    c1.tags.insert("/email".into(), Classification::Pii);
    catalog.add(c1).unwrap();
    let verdict = catalog.check(&candidate("1.0.1", schema));
    assert_eq!(
        rule_ids(&verdict),
        [Rule::ClassificationRemoved, Rule::BreakingChangeNeedsMajor]
    );
}

fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"type": "string"})),
        Just(json!({"type": "integer"})),
        Just(json!({"type": "number", "minimum": 0})),
        Just(json!({"type": ["string", "null"]})),
        Just(json!({"enum": ["a", "b", "c"]})),
        Just(json!({"enum": ["a", 1]})),
        Just(json!({"const": "x"})),
        Just(json!({"type": "string", "maxLength": 8, "pattern": "^[a-z]+$"})),
        Just(json!({"type": "integer", "exclusiveMaximum": 10})),
        Just(json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})),
        Just(json!(true)),
        Just(json!({})),
    ]
}

fn arb_schema() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            (
                proptest::collection::btree_map("[a-d]", inner.clone(), 0..4),
                proptest::collection::btree_set("[a-d]", 0..3),
                any::<bool>(),
            )
                .prop_map(|(props, required, closed)| {
                    let mut s =
                        json!({"type": "object", "properties": props, "required": required});
                    if closed {
                        s["additionalProperties"] = json!(false);
                    }
                    s
                }),
            (inner, 0u64..3)
                .prop_map(|(items, min)| json!({"type": "array", "items": items, "minItems": min})),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Every schema is compatible with itself, both ways.
    #[test]
    fn any_schema_is_compatible_with_itself(s in arb_schema()) {
        prop_assert!(compat::check(&s, &s, Direction::Backward).is_empty());
        prop_assert!(compat::check(&s, &s, Direction::Forward).is_empty());
    }

    /// backward of A→B finds what forward of B→A finds, with each rule
    /// named from the other side of the change.
    #[test]
    fn backward_of_a_to_b_is_forward_of_b_to_a(a in arb_schema(), b in arb_schema()) {
        let backward: Vec<(Rule, String)> = compat::check(&a, &b, Direction::Backward)
            .into_iter().map(|v| (v.rule.reversed(), v.pointer)).collect();
        let mut forward: Vec<(Rule, String)> = compat::check(&b, &a, Direction::Forward)
            .into_iter().map(|v| (v.rule, v.pointer)).collect();
        let mut backward = backward;
        backward.sort();
        forward.sort();
        prop_assert_eq!(backward, forward);
    }

    /// A verdict of "compatible" is never contradicted by a sample: a value
    /// valid under the old schema validates under a backward-compatible new one.
    #[test]
    fn backward_compatible_means_old_data_validates(a in arb_schema(), b in arb_schema(), sample in arb_instance()) {
        let old = jsonschema::draft202012::new(&a).unwrap();
        let new = jsonschema::draft202012::new(&b).unwrap();
        // The checker assumes open objects carry no undeclared fields
        // (module docs of compat), so samples are drawn within that assumption.
        if compat::check(&a, &b, Direction::Backward).is_empty()
            && old.is_valid(&sample)
            && only_declared(&a, &sample)
        {
            prop_assert!(new.is_valid(&sample), "old {a} new {b} sample {sample}");
        }
    }
}

fn arb_instance() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        Just(json!("a")),
        Just(json!("x")),
        Just(json!("ABC")),
        Just(json!(1)),
        Just(json!(12)),
        Just(json!(-3)),
        Just(json!(1.5)),
        Just(json!(true)),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map("[a-e]", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Whether every object key of `value` is declared by `schema`'s properties.
fn only_declared(schema: &Value, value: &Value) -> bool {
    match value {
        Value::Object(m) => m.iter().all(|(k, v)| {
            schema
                .get("properties")
                .and_then(|p| p.get(k))
                .is_some_and(|sub| only_declared(sub, v))
        }),
        Value::Array(items) => match schema.get("items") {
            Some(sub) => items.iter().all(|v| only_declared(sub, v)),
            None => items.iter().all(|v| only_declared(&json!({}), v)),
        },
        _ => true,
    }
}
