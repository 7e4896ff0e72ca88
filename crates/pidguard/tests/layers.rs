//! The library's modules import each other in one direction only: no
//! circle. A module is a top-level file or folder of `src/` (`lock/` is one
//! module); an edge is any `crate::<module>` in its code (comments left
//! out), or a `crate::<Name>` re-exported by lib.rs from that module. The
//! order, lowest first, is written in README's Layout section.
//!
//! No edge is exempt. The value types `pid.rs` and `signal.rs` are leaves:
//! they import nothing of the crate, and `sys/`, which speaks in `Pid` and
//! `Signal`, sits above them (what they need from the system, `Pid::
//! kernel_max` and the check of the signal numbers, is in `sys/`).
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file belongs to: its first component under `src/`.
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_str()
        .unwrap();
    first.trim_end_matches(".rs").to_string()
}

/// The code of a file without its comments (line comments and doc
/// comments; the crate has no block comments).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("//") {
                ""
            } else {
                match l.find(" //") {
                    Some(i) if !l[..i].contains('"') => &l[..i],
                    _ => l,
                }
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names lib.rs re-exports (`pub use crate::{module::…, …}` or
/// `pub use module::…`), with the module each comes from.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    let lib = code(lib);
    for stmt in lib.split(';') {
        let Some(rest) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        // The items of `crate::{…}`, split at the commas outside braces.
        let items: Vec<&str> = match rest.strip_prefix("crate::{") {
            Some(group) => {
                let group = group.trim_end().strip_suffix('}').unwrap_or(group);
                let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            items.push(&group[start..i]);
                            start = i + 1;
                        }
                        _ => {}
                    }
                }
                items.push(&group[start..]);
                items
            }
            None => vec![rest],
        };
        for item in items {
            let Some((module, list)) = item.trim().split_once("::") else {
                continue;
            };
            for name in list.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                if !name.is_empty() {
                    names.entry(name.to_string()).or_insert(module.to_string());
                }
            }
        }
    }
    names
}

/// Every `crate::X` in `code`, and every `X` in a `crate::{X, Y}` group.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        if code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // `pub(crate)::`? never; `mycrate::`: not ours.
        }
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap()];
            out.extend(group.split(',').map(|n| n.trim().to_string()));
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let lib = fs::read_to_string(src().join("lib.rs")).unwrap();
    let names = reexports(&lib);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = module_of(file);
        if from == "lib" {
            continue;
        }
        let text = code(&fs::read_to_string(file).unwrap());
        for name in crate_paths(&text) {
            let to = if modules.contains(&name) {
                name
            } else if let Some(m) = names.get(&name) {
                m.clone()
            } else {
                continue;
            };
            if to != from {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
        edges.entry(from).or_default();
    }
    edges
}

/// A circle through the graph, if there is one (depth-first search).
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let start = stack.iter().position(|n| n == next).unwrap();
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(next, edges, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if !state.contains_key(node) {
            let mut stack = Vec::new();
            if let Some(c) = visit(node, edges, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn modules_import_each_other_in_one_direction() {
    let edges = graph();
    if let Some(cycle) = find_cycle(&edges) {
        panic!(
            "import circle among crates/pidguard/src modules: {}; move the shared \
             item down (see README, Layout, for the order)",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn the_value_types_are_leaves() {
    let edges = graph();
    for leaf in ["pid", "signal"] {
        assert!(
            edges[leaf].is_empty(),
            "{leaf}.rs imports {:?} from the crate: it is a leaf (README, Layout); \
             move what needs the system into sys/ (an inherent impl may live there)",
            edges[leaf]
        );
    }
}

#[test]
fn the_scanner_sees_edges_and_circles() {
    let edges = graph();
    // Edges that exist, written in the three ways the scanner reads.
    assert!(edges["lock"].contains("fs"), "{edges:?}"); // crate::fs::...
    assert!(edges["read"].contains("sys"), "{edges:?}");
    assert!(edges["control"].contains("lock"), "{edges:?}");
    assert!(edges["sys"].contains("pid"), "{edges:?}");
    assert!(edges["sys"].contains("signal"), "{edges:?}");
    let lib = fs::read_to_string(src().join("lib.rs")).unwrap();
    let names = reexports(&lib);
    assert_eq!(names["Identity"], "read", "{names:?}");
    assert_eq!(names["Guard"], "lock", "{names:?}");
    assert_eq!(names["Error"], "error", "{names:?}");
    assert!(edges["registry"].contains("read"), "{edges:?}"); // crate::DecidedBy
    assert_eq!(
        crate_paths("use crate::{Identity, Mismatch};\nlet x = crate::lock::Guard;"),
        ["Identity", "Mismatch", "lock"]
    );
    assert_eq!(
        code("// crate::lock\nlet a = 1; // crate::read"),
        "\nlet a = 1;"
    );
    let mut circle = BTreeMap::new();
    circle.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    circle.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert!(find_cycle(&circle).is_some());
    circle.get_mut("b").unwrap().clear();
    assert!(find_cycle(&circle).is_none());
}
