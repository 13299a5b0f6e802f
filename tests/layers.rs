//! The layer rule of docs/ARCHITECTURE.md, checked on the source itself.
//!
//! Reads every library file under `src/` (not `src/bin/`, not test modules:
//! `#[cfg(test)]` items and `tests.rs` files are skipped, since a test may
//! build a whole `Fabric` as its fixture), collects the `crate::` and
//! `super::` paths each one names, and fails when
//! - a file imports from a layer above its own (the order is [`LAYERS`]), or
//!   `storage` imports `envelope` (bytes on disk never know what an event is);
//! - two or more files import each other in a cycle.
//!
//! The check is textual on purpose: it needs no compiler plugin and sees
//! exactly what a reader of the source sees.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules from the bottom up: a file may import its own layer and
/// the ones listed before it. `produce` comes before `consume` (a DLQ replay
/// publishes; a producer never reads).
const LAYERS: &[&str] = &[
    "envelope",
    "fixtures",
    "observe",
    "error",
    "clock",
    "storage",
    "topic",
    "governance",
    "tier",
    "produce",
    "consume",
    "fabric",
    "ops",
    "relay",
    "outbox",
];

/// Test and fuzz support: may import anything, and nothing may import it.
const SUPPORT: &[&str] = &["fuzzing", "testing", "lib"];

type Module = Vec<String>;

fn module_path(root: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(root).expect("file under src/");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().map(String::as_str) == Some("mod") {
        parts.pop();
    }
    parts
}

fn library_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            let name = path.file_name().unwrap_or_default();
            if name != "bin" && name != "tests" {
                library_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
}

/// The source without `#[cfg(test)]` items and comment lines.
fn non_test_code(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_start();
        if line.starts_with("#[cfg(test)]") || line.starts_with("#[cfg(any(test") {
            // Skip further attributes, then the item: one line, or a braced block.
            let mut j = i + 1;
            while j < lines.len() && lines[j].trim_start().starts_with("#[") {
                j += 1;
            }
            if j < lines.len() && lines[j].contains('{') {
                let mut depth = 0i64;
                let mut k = j;
                while k < lines.len() {
                    depth += lines[k].matches('{').count() as i64;
                    depth -= lines[k].matches('}').count() as i64;
                    if depth <= 0 {
                        break;
                    }
                    k += 1;
                }
                i = k + 1;
            } else {
                i = j + 1;
            }
            continue;
        }
        if !line.starts_with("//") {
            out.push_str(lines[i]);
            out.push('\n');
        }
        i += 1;
    }
    out
}

/// Every full path a use tree starting at `text` names, e.g. `a::{b, c::d}`
/// gives `a::b` and `a::c::d`.
fn use_tree_paths(text: &str, prefix: &[String], out: &mut Vec<Module>) -> usize {
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut path = prefix.to_vec();
    loop {
        let start = pos;
        while pos < bytes.len() && (bytes[pos].is_ascii_alphanumeric() || bytes[pos] == b'_') {
            pos += 1;
        }
        if pos > start {
            path.push(text[start..pos].to_string());
        }
        if text[pos..].starts_with("::{") {
            pos += 3;
            loop {
                while pos < bytes.len() && (bytes[pos] == b' ' || bytes[pos] == b'\n') {
                    pos += 1;
                }
                if pos >= bytes.len() || bytes[pos] == b'}' {
                    return pos + 1;
                }
                pos += use_tree_paths(&text[pos..], &path, out);
                while pos < bytes.len() && bytes[pos] != b',' && bytes[pos] != b'}' {
                    pos += 1;
                }
                if pos < bytes.len() && bytes[pos] == b',' {
                    pos += 1;
                }
            }
        } else if text[pos..].starts_with("::") {
            pos += 2;
        } else {
            out.push(path);
            return pos;
        }
    }
}

/// The library files `code` (in module `module`) imports.
fn imports(code: &str, module: &Module, files: &BTreeSet<Module>) -> BTreeSet<Module> {
    let mut named = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        use_tree_paths(&code[at + "crate::".len()..], &[], &mut named);
    }
    for (at, _) in code.match_indices("super::") {
        let parent = module[..module.len().saturating_sub(1)].to_vec();
        use_tree_paths(&code[at + "super::".len()..], &parent, &mut named);
    }
    let mut deps = BTreeSet::new();
    for path in named {
        // The longest prefix that is a file is the module imported.
        if let Some(found) = (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| files.contains(p))
            && &found != module
        {
            deps.insert(found);
        }
    }
    deps
}

fn layer_index(module: &Module) -> Option<usize> {
    let top = module.first()?;
    LAYERS.iter().position(|l| l == top)
}

fn is_support(module: &Module) -> bool {
    module
        .first()
        .is_none_or(|top| SUPPORT.contains(&top.as_str()))
}

fn import_graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    library_files(&root, &mut paths);
    let modules: BTreeMap<Module, PathBuf> = paths
        .into_iter()
        .map(|p| (module_path(&root, &p), p))
        .collect();
    let files: BTreeSet<Module> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(module, path)| {
            let text = fs::read_to_string(path).expect("read source file");
            (
                module.clone(),
                imports(&non_test_code(&text), module, &files),
            )
        })
        .collect()
}

fn show(m: &Module) -> String {
    m.join("::")
}

#[test]
fn imports_point_down_the_layers() {
    let graph = import_graph();
    assert!(graph.len() > 50, "found only {} source files", graph.len());
    let mut upward = Vec::new();
    for (module, deps) in &graph {
        if is_support(module) {
            continue;
        }
        let Some(own) = layer_index(module) else {
            upward.push(format!("{} is in no layer of LAYERS", show(module)));
            continue;
        };
        for dep in deps {
            if is_support(dep) {
                upward.push(format!("{} -> {} (test support)", show(module), show(dep)));
                continue;
            }
            let Some(theirs) = layer_index(dep) else {
                continue;
            };
            let forbidden = module[0] == "storage" && dep[0] == "envelope";
            if theirs > own || forbidden {
                upward.push(format!("{} -> {}", show(module), show(dep)));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports pointing up the layers (docs/ARCHITECTURE.md):\n  {}",
        upward.join("\n  ")
    );
}

#[test]
fn no_file_imports_itself_through_others() {
    let graph = import_graph();
    // Tarjan's strongly connected components, iteratively small enough to recurse.
    struct State<'a> {
        graph: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        cycles: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Module) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let Some((w, _)) = s.graph.get_key_value(w) else {
                continue;
            };
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(show(w));
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.cycles.push(component);
            }
        }
    }
    let mut state = State {
        graph: &graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        cycles: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v) {
            visit(&mut state, v);
        }
    }
    assert!(
        state.cycles.is_empty(),
        "import cycles between files: {:?}",
        state.cycles
    );
}

#[test]
fn the_checker_sees_use_trees_and_test_modules() {
    let files: BTreeSet<Module> = [
        vec!["storage".to_string(), "log".to_string()],
        vec!["storage".to_string(), "le".to_string()],
        vec!["fabric".to_string()],
    ]
    .into_iter()
    .collect();
    let here = vec!["storage".to_string(), "segment".to_string()];
    let code = non_test_code(
        "use crate::storage::{log::Log, le};\n// use crate::fabric::Fabric;\n\
         #[cfg(test)]\nmod tests {\n    use crate::fabric::Fabric;\n}\n",
    );
    let deps = imports(&code, &here, &files);
    let shown: Vec<String> = deps.iter().map(show).collect();
    assert_eq!(shown, ["storage::le", "storage::log"]);
    let upward = imports("fn f() { crate::fabric::Fabric::open(); }", &here, &files);
    assert_eq!(upward.iter().map(show).collect::<Vec<_>>(), ["fabric"]);
}
