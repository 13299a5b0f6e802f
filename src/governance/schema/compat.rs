//! The compatibility checker: can data valid under one JSON Schema be read
//! by a consumer holding another, and which named [`Rule`]s say why not.
//!
//! Owns the structural comparison of two schemas (types, required fields,
//! properties and closed/open objects, enums and constants, bounds and
//! string constraints, array items, compositions, local `$ref`s) and the
//! classification rule. The comparison is conservative: what it cannot
//! prove safe (a changed `allOf`, `not`, conditional, ...) is reported as
//! [`Rule::CompositionChanged`]. One documented assumption: an *open* object
//! (no `additionalProperties: false`) carries no meaningful undeclared
//! fields, so declaring a new optional field in an open object, or dropping
//! an optional one from it, is compatible (Confluent's stricter reading
//! would refuse almost every change to open schemas).
//!
//! It must never look at payloads and never fetch anything: a non-local
//! `$ref` is refused when the schema is compiled, before it gets here.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::{Classification, Rule, Violation, child_pointer};

/// Which way a change is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The new schema reads data written with the old one.
    Backward,
    /// The old schema reads data written with the new one.
    Forward,
}

/// Deepest `$ref`/nesting the checker follows (a recursive schema stops here).
const MAX_DEPTH: usize = 64;

/// The compatibility violations of changing `old` into `new`, checked in `direction`.
pub fn check(old: &Value, new: &Value, direction: Direction) -> Vec<Violation> {
    let (reader, writer) = match direction {
        Direction::Backward => (new, old),
        Direction::Forward => (old, new),
    };
    let mut walk = Walk {
        reader_root: reader,
        writer_root: writer,
        same_roots: reader == writer,
        direction,
        out: Vec::new(),
    };
    walk.compare(reader, writer, "", 0);
    walk.out
        .sort_by(|a, b| (&a.pointer, a.rule).cmp(&(&b.pointer, b.rule)));
    walk.out.dedup();
    walk.out
}

/// Number of compatibility rules one direction's check evaluates.
pub const COMPAT_RULES_PER_DIRECTION: usize = 14;

/// A sensitive tag of `old_tags` that `new_tags` no longer carries (on the
/// field or an ancestor) while the field still exists in `new_schema`.
pub fn classification_removed(
    old_tags: &BTreeMap<String, Classification>,
    new_tags: &BTreeMap<String, Classification>,
    new_schema: &Value,
) -> Vec<Violation> {
    old_tags
        .iter()
        .filter(|(_, class)| class.is_sensitive())
        .filter(|(pointer, _)| pointer_defined(new_schema, pointer))
        .filter(|(pointer, _)| {
            !effective_classification(new_tags, pointer).is_some_and(Classification::is_sensitive)
        })
        .map(|(pointer, class)| {
            Violation::new(
                Rule::ClassificationRemoved,
                pointer.clone(),
                format!(
                    "the field was tagged {} and the new version does not tag it sensitive",
                    class.as_str()
                ),
            )
        })
        .collect()
}

/// The tag of `pointer` or of its nearest tagged ancestor.
pub fn effective_classification(
    tags: &BTreeMap<String, Classification>,
    pointer: &str,
) -> Option<Classification> {
    let mut p = pointer;
    loop {
        if let Some(c) = tags.get(p) {
            return Some(*c);
        }
        match p.rfind('/') {
            Some(i) => p = &p[..i],
            None => return tags.get("").copied(),
        }
    }
}

/// Tags whose pointer the schema does not define.
pub fn unknown_tag_pointers(
    schema: &Value,
    tags: &BTreeMap<String, Classification>,
) -> Vec<Violation> {
    tags.keys()
        .filter(|p| !pointer_defined(schema, p))
        .map(|p| {
            Violation::new(
                Rule::TagPointerUnknown,
                p.clone(),
                "the schema defines no field at this pointer (use /field/sub, * for array items)",
            )
        })
        .collect()
}

/// Leaf fields (and the payload itself, for a scalar schema) that carry no
/// classification, on themselves or an ancestor.
pub fn unclassified_fields(
    schema: &Value,
    tags: &BTreeMap<String, Classification>,
) -> Vec<Violation> {
    let mut leaves = Vec::new();
    collect_leaves(schema, schema, "", 0, &mut leaves);
    leaves
        .into_iter()
        .filter(|p| effective_classification(tags, p).is_none())
        .map(|p| {
            Violation::new(
                Rule::FieldUnclassified,
                p,
                "the field has no classification tag (pii, pci, secret or none)",
            )
        })
        .collect()
}

/// Every field pointer the schema declares (objects' properties, arrays' items as `*`).
pub fn field_pointers(schema: &Value) -> Vec<String> {
    let mut all = Vec::new();
    collect_fields(schema, schema, "", 0, &mut all);
    all
}

fn collect_fields(root: &Value, s: &Value, at: &str, depth: usize, out: &mut Vec<String>) {
    if depth > MAX_DEPTH {
        return;
    }
    let s = resolve(root, s, 0);
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            let p = child_pointer(at, name);
            out.push(p.clone());
            collect_fields(root, sub, &p, depth + 1, out);
        }
    }
    if let Some(items) = s.get("items").filter(|v| v.is_object()) {
        let p = format!("{at}/*");
        out.push(p.clone());
        collect_fields(root, items, &p, depth + 1, out);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        for branch in s.get(key).and_then(Value::as_array).into_iter().flatten() {
            collect_fields(root, branch, at, depth + 1, out);
        }
    }
}

fn collect_leaves(root: &Value, s: &Value, at: &str, depth: usize, out: &mut Vec<String>) {
    if depth > MAX_DEPTH {
        return;
    }
    let s = resolve(root, s, 0);
    let mut inner = false;
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            inner = true;
            collect_leaves(root, sub, &child_pointer(at, name), depth + 1, out);
        }
    }
    if let Some(items) = s.get("items").filter(|v| v.is_object()) {
        inner = true;
        collect_leaves(root, items, &format!("{at}/*"), depth + 1, out);
    }
    if !inner {
        out.push(at.to_string());
    }
}

/// Whether `pointer` names a field the schema declares (the empty pointer
/// is the payload itself and always defined).
pub fn pointer_defined(schema: &Value, pointer: &str) -> bool {
    pointer.is_empty() || field_pointers(schema).iter().any(|p| p == pointer)
}

/// Follows local `$ref`s (`#` or `#/json/pointer`) to the schema they name.
fn resolve<'a>(root: &'a Value, s: &'a Value, depth: usize) -> &'a Value {
    if depth > MAX_DEPTH {
        return s;
    }
    match s.get("$ref").and_then(Value::as_str) {
        Some("#") => root,
        Some(r) if r.starts_with("#/") => match root.pointer(&r[1..]) {
            Some(target) => resolve(root, target, depth + 1),
            None => s,
        },
        _ => s,
    }
}

/// JSON types as a bit set; `number` is integer | fraction.
const NULL: u8 = 1;
const BOOLEAN: u8 = 2;
const INTEGER: u8 = 4;
const FRACTION: u8 = 8;
const STRING: u8 = 16;
const ARRAY: u8 = 32;
const OBJECT: u8 = 64;
const ANY: u8 = 127;

fn type_bits(name: &str) -> u8 {
    match name {
        "null" => NULL,
        "boolean" => BOOLEAN,
        "integer" => INTEGER,
        "number" => INTEGER | FRACTION,
        "string" => STRING,
        "array" => ARRAY,
        "object" => OBJECT,
        _ => 0,
    }
}

fn value_bits(v: &Value) -> u8 {
    match v {
        Value::Null => NULL,
        Value::Bool(_) => BOOLEAN,
        Value::Number(n) if n.is_i64() || n.is_u64() => INTEGER,
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => INTEGER,
        Value::Number(_) => FRACTION,
        Value::String(_) => STRING,
        Value::Array(_) => ARRAY,
        Value::Object(_) => OBJECT,
    }
}

fn type_names(bits: u8) -> String {
    let mut names = Vec::new();
    for (bit, name) in [
        (NULL, "null"),
        (BOOLEAN, "boolean"),
        (STRING, "string"),
        (ARRAY, "array"),
        (OBJECT, "object"),
    ] {
        if bits & bit != 0 {
            names.push(name);
        }
    }
    match bits & (INTEGER | FRACTION) {
        x if x == INTEGER | FRACTION => names.push("number"),
        INTEGER => names.push("integer"),
        FRACTION => names.push("non-integer number"),
        _ => {}
    }
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join("|")
    }
}

/// The values a schema admits, when it lists them (`const` or `enum`).
fn listed_values(s: &Map<String, Value>) -> Option<Vec<&Value>> {
    if let Some(c) = s.get("const") {
        return Some(vec![c]);
    }
    s.get("enum")
        .and_then(Value::as_array)
        .map(|values| values.iter().collect())
}

/// The types a schema admits: its `type`, narrowed by its listed values.
fn admitted_types(s: &Map<String, Value>) -> u8 {
    let declared = match s.get("type") {
        Some(Value::String(t)) => type_bits(t),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .fold(0, |acc, t| acc | type_bits(t)),
        _ => ANY,
    };
    match listed_values(s) {
        Some(values) => declared & values.iter().fold(0, |acc, v| acc | value_bits(v)),
        None => declared,
    }
}

/// Keywords the checker does not reason about: any difference in them,
/// where the reader has them, is [`Rule::CompositionChanged`].
const OPAQUE_KEYWORDS: [&str; 16] = [
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "dependentSchemas",
    "dependentRequired",
    "patternProperties",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contains",
    "minContains",
    "maxContains",
    "prefixItems",
    "contentSchema",
];

struct Walk<'a> {
    reader_root: &'a Value,
    writer_root: &'a Value,
    same_roots: bool,
    direction: Direction,
    out: Vec<Violation>,
}

impl Walk<'_> {
    /// Records a finding phrased from the reader's side, named for the change.
    fn report(&mut self, backward_rule: Rule, pointer: &str, message: String) {
        let rule = match self.direction {
            Direction::Backward => backward_rule,
            Direction::Forward => backward_rule.reversed(),
        };
        self.out.push(Violation::new(rule, pointer, message));
    }

    /// Does everything valid under `writer` validate under `reader`?
    fn compare(&mut self, reader: &Value, writer: &Value, at: &str, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let reader = resolve(self.reader_root, reader, 0);
        let writer = resolve(self.writer_root, writer, 0);
        if reader == writer && (self.same_roots || !contains_ref(reader)) {
            return;
        }
        let empty = Map::new();
        let (r, w) = match (reader, writer) {
            (_, Value::Bool(false)) => return,
            (Value::Bool(true), _) => return,
            (Value::Bool(false), _) => {
                self.report(
                    Rule::TypeNarrowed,
                    at,
                    "the field accepted values before and now accepts none (false schema)".into(),
                );
                return;
            }
            (Value::Object(r), Value::Object(w)) => (r, w),
            (Value::Object(r), _) => (r, &empty),
            _ => return,
        };
        if self.compare_branches(r, w, at, depth) {
            return;
        }
        self.compare_types(r, w, at);
        self.compare_values(r, w, at);
        let common = admitted_types(r) & admitted_types(w);
        if common & OBJECT != 0 {
            self.compare_objects(r, w, at, depth);
        }
        if common & ARRAY != 0 {
            self.compare_arrays(r, w, at, depth);
        }
        if common & STRING != 0 {
            self.compare_strings(r, w, at);
        }
        if common & (INTEGER | FRACTION) != 0 {
            self.compare_numbers(r, w, at);
        }
        for key in OPAQUE_KEYWORDS {
            if let Some(rv) = r.get(key)
                && w.get(key) != Some(rv)
            {
                self.report(
                    Rule::CompositionChanged,
                    at,
                    format!("`{key}` differs and the checker cannot prove the change safe"),
                );
            }
        }
    }

    /// `anyOf`/`oneOf`: every writer branch must be read by some reader
    /// branch. Returns true when it handled the comparison.
    fn compare_branches(
        &mut self,
        r: &Map<String, Value>,
        w: &Map<String, Value>,
        at: &str,
        depth: usize,
    ) -> bool {
        let branches = |s: &Map<String, Value>| -> Option<Vec<Value>> {
            ["anyOf", "oneOf"].iter().find_map(|k| {
                s.get(*k).and_then(Value::as_array).map(|bs| {
                    let mut rest = s.clone();
                    rest.remove("anyOf");
                    rest.remove("oneOf");
                    bs.iter().map(|b| merge(&rest, b)).collect()
                })
            })
        };
        let (rb, wb) = (branches(r), branches(w));
        if rb.is_none() && wb.is_none() {
            return false;
        }
        let rb = rb.unwrap_or_else(|| vec![Value::Object(r.clone())]);
        let wb = wb.unwrap_or_else(|| vec![Value::Object(w.clone())]);
        for (i, writer_branch) in wb.iter().enumerate() {
            let read_by_some = rb.iter().any(|reader_branch| {
                let mut probe = Walk {
                    reader_root: self.reader_root,
                    writer_root: self.writer_root,
                    same_roots: self.same_roots,
                    direction: self.direction,
                    out: Vec::new(),
                };
                probe.compare(reader_branch, writer_branch, at, depth + 1);
                probe.out.is_empty()
            });
            if !read_by_some {
                self.report(
                    Rule::CompositionChanged,
                    at,
                    format!(
                        "alternative {i} of the writing schema matches no alternative of the reading schema"
                    ),
                );
            }
        }
        true
    }

    fn compare_types(&mut self, r: &Map<String, Value>, w: &Map<String, Value>, at: &str) {
        let (rt, wt) = (admitted_types(r), admitted_types(w));
        if wt & !rt == 0 {
            return;
        }
        let message = |from: u8, to: u8| {
            format!(
                "the type was {} and is now {}",
                type_names(from),
                type_names(to)
            )
        };
        let (old, new) = match self.direction {
            Direction::Backward => (wt, rt),
            Direction::Forward => (rt, wt),
        };
        if rt & wt == 0 {
            self.out
                .push(Violation::new(Rule::TypeChanged, at, message(old, new)));
        } else {
            self.report(Rule::TypeNarrowed, at, message(old, new));
        }
    }

    fn compare_values(&mut self, r: &Map<String, Value>, w: &Map<String, Value>, at: &str) {
        let Some(allowed) = listed_values(r) else {
            return;
        };
        match listed_values(w) {
            Some(written) => {
                let missing: Vec<String> = written
                    .iter()
                    .filter(|v| !allowed.contains(v))
                    .map(|v| v.to_string())
                    .collect();
                if !missing.is_empty() {
                    self.report(
                        Rule::EnumValueRemoved,
                        at,
                        format!("value(s) {} are in one version only", missing.join(", ")),
                    );
                }
            }
            None => self.report(
                Rule::EnumValueRemoved,
                at,
                "one version restricts the field to listed values and the other does not".into(),
            ),
        }
    }

    fn compare_objects(
        &mut self,
        r: &Map<String, Value>,
        w: &Map<String, Value>,
        at: &str,
        depth: usize,
    ) {
        let required = |s: &Map<String, Value>| -> BTreeSet<String> {
            s.get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        let (r_req, w_req) = (required(r), required(w));
        for name in r_req.difference(&w_req) {
            self.report(
                Rule::RequiredFieldAdded,
                &child_pointer(at, name),
                "the field is required by one version and not by the other".into(),
            );
        }
        let no_props = Map::new();
        let r_props = r
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&no_props);
        let w_props = w
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&no_props);
        let r_extra = r.get("additionalProperties").unwrap_or(&Value::Bool(true));
        let w_extra = w.get("additionalProperties").unwrap_or(&Value::Bool(true));
        for (name, w_sub) in w_props {
            let p = child_pointer(at, name);
            match r_props.get(name) {
                Some(r_sub) => self.compare(r_sub, w_sub, &p, depth + 1),
                None if r_extra == &Value::Bool(false) => self.report(
                    Rule::FieldRemoved,
                    &p,
                    "a closed object (additionalProperties: false) lacks a field the other version declares".into(),
                ),
                None => self.compare(r_extra, w_sub, &p, depth + 1),
            }
        }
        for (name, r_sub) in r_props {
            if w_props.contains_key(name) {
                continue;
            }
            // The writer's undeclared fields: nothing when closed; by the
            // module's open-object assumption nothing meaningful when open
            // without a schema; otherwise they follow that schema.
            if w_extra.is_object() {
                self.compare(r_sub, w_extra, &child_pointer(at, name), depth + 1);
            }
        }
        match (r_extra, w_extra) {
            (_, Value::Bool(false)) => {}
            (Value::Bool(false), _) => self.report(
                Rule::AdditionalPropertiesNarrowed,
                at,
                "one version refuses undeclared fields (additionalProperties: false) and the other accepts them".into(),
            ),
            _ if r_extra != w_extra => {
                let before = self.out.len();
                self.compare(r_extra, w_extra, &format!("{at}/*"), depth + 1);
                if self.out.len() > before {
                    self.out.truncate(before);
                    self.report(
                        Rule::AdditionalPropertiesNarrowed,
                        at,
                        "the schema of undeclared fields (additionalProperties) is stricter in one version".into(),
                    );
                }
            }
            _ => {}
        }
        self.compare_counts(r, w, at, "minProperties", "maxProperties");
    }

    fn compare_arrays(
        &mut self,
        r: &Map<String, Value>,
        w: &Map<String, Value>,
        at: &str,
        depth: usize,
    ) {
        let r_items = r.get("items").unwrap_or(&Value::Bool(true));
        let w_items = w.get("items").unwrap_or(&Value::Bool(true));
        self.compare(r_items, w_items, &format!("{at}/*"), depth + 1);
        self.compare_counts(r, w, at, "minItems", "maxItems");
        let unique = |s: &Map<String, Value>| s.get("uniqueItems") == Some(&Value::Bool(true));
        if unique(r) && !unique(w) {
            self.report(
                Rule::ConstraintNarrowed,
                at,
                "uniqueItems is set in one version only".into(),
            );
        }
    }

    fn compare_strings(&mut self, r: &Map<String, Value>, w: &Map<String, Value>, at: &str) {
        self.compare_counts(r, w, at, "minLength", "maxLength");
        for key in ["pattern", "format", "contentEncoding", "contentMediaType"] {
            if let Some(rv) = r.get(key)
                && w.get(key) != Some(rv)
            {
                self.report(
                    Rule::ConstraintNarrowed,
                    at,
                    format!(
                        "`{key}` is {rv} in one version and {} in the other",
                        w.get(key).map_or("absent".into(), Value::to_string)
                    ),
                );
            }
        }
    }

    /// `min`/`max` integer keywords: the reader's range must contain the writer's.
    fn compare_counts(
        &mut self,
        r: &Map<String, Value>,
        w: &Map<String, Value>,
        at: &str,
        min: &str,
        max: &str,
    ) {
        let get = |s: &Map<String, Value>, k: &str| s.get(k).and_then(Value::as_f64);
        if let Some(rmin) = get(r, min)
            && get(w, min).is_none_or(|wmin| wmin < rmin)
        {
            self.report(
                Rule::ConstraintNarrowed,
                at,
                format!("`{min}` differs ({rmin} in one version)"),
            );
        }
        if let Some(rmax) = get(r, max)
            && get(w, max).is_none_or(|wmax| wmax > rmax)
        {
            self.report(
                Rule::ConstraintNarrowed,
                at,
                format!("`{max}` differs ({rmax} in one version)"),
            );
        }
    }

    fn compare_numbers(&mut self, r: &Map<String, Value>, w: &Map<String, Value>, at: &str) {
        let bound = |s: &Map<String, Value>, inclusive: &str, exclusive: &str| {
            let i = s.get(inclusive).and_then(Value::as_f64).map(|v| (v, false));
            let x = s.get(exclusive).and_then(Value::as_f64).map(|v| (v, true));
            (i, x)
        };
        // Lower bounds: the reader's must be at or below the writer's.
        let lower = |s| {
            let (i, x) = bound(s, "minimum", "exclusiveMinimum");
            match (i, x) {
                (Some(a), Some(b)) => Some(if b.0 >= a.0 { b } else { a }),
                (a, b) => a.or(b),
            }
        };
        let upper = |s| {
            let (i, x) = bound(s, "maximum", "exclusiveMaximum");
            match (i, x) {
                (Some(a), Some(b)) => Some(if b.0 <= a.0 { b } else { a }),
                (a, b) => a.or(b),
            }
        };
        if let Some((rv, rx)) = lower(r) {
            let ok = lower(w).is_some_and(|(wv, wx)| wv > rv || (wv == rv && (!rx || wx)));
            if !ok {
                self.report(
                    Rule::ConstraintNarrowed,
                    at,
                    format!("the lower bound differs ({rv} in one version)"),
                );
            }
        }
        if let Some((rv, rx)) = upper(r) {
            let ok = upper(w).is_some_and(|(wv, wx)| wv < rv || (wv == rv && (!rx || wx)));
            if !ok {
                self.report(
                    Rule::ConstraintNarrowed,
                    at,
                    format!("the upper bound differs ({rv} in one version)"),
                );
            }
        }
        if let Some(rm) = r.get("multipleOf").and_then(Value::as_f64) {
            let ok = w
                .get("multipleOf")
                .and_then(Value::as_f64)
                .is_some_and(|wm| (wm / rm).fract() == 0.0);
            if !ok {
                self.report(
                    Rule::ConstraintNarrowed,
                    at,
                    format!("`multipleOf` differs ({rm} in one version)"),
                );
            }
        }
    }
}

/// Whether a `$ref` appears anywhere in `s` (equal subtrees that contain
/// one may still mean different things under two different roots).
fn contains_ref(s: &Value) -> bool {
    match s {
        Value::Object(m) => m.contains_key("$ref") || m.values().any(contains_ref),
        Value::Array(a) => a.iter().any(contains_ref),
        _ => false,
    }
}

/// A branch of a composition with its parent's other keywords applied.
fn merge(parent: &Map<String, Value>, branch: &Value) -> Value {
    match branch {
        Value::Object(b) => {
            let mut m = parent.clone();
            for (k, v) in b {
                m.insert(k.clone(), v.clone());
            }
            Value::Object(m)
        }
        other => other.clone(),
    }
}
