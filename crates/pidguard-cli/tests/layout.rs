//! The source layout README's "Layout" section describes: the modules of
//! `src/` import each other without a circle, and `supervise/` (the
//! mechanisms) never imports `commands/` (the subcommands).
//!
//! The check reads the sources: every path through `crate::` or `super::`
//! (braces expanded) and every `use` of a child module is an edge from the
//! file it is written in to the file of the longest module prefix it names.
//! Unit tests (`#[cfg(test)] mod tests`, at the end of a file) are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, with its module path (`main.rs` is the
/// root, `a/mod.rs` is `a`, `a/b.rs` is `a::b`).
fn modules(root: &Path, dir: &Path, out: &mut BTreeMap<Vec<String>, PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            modules(root, &path, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap();
        let mut module: Vec<String> = rel
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if matches!(module.last().map(String::as_str), Some("mod" | "main")) {
            module.pop();
        }
        out.insert(module, path);
    }
}

/// The source without comments and without its unit-test module.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths written after `at` in `s`: `a::b::{c, d::e}` gives `a::b::c`
/// and `a::b::d::e` (one level of braces: enough for this crate, and a
/// deeper nesting only loses edges below the outer path, which is kept).
fn paths_at(s: &str) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    let mut rest = s;
    loop {
        let ident: String = rest.chars().take_while(|&c| is_ident(c)).collect();
        if ident.is_empty() {
            break;
        }
        rest = &rest[ident.len()..];
        prefix.push(ident);
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => return vec![prefix],
        }
        if let Some(r) = rest.strip_prefix('{') {
            let inner = &r[..r.find('}').unwrap_or(r.len())];
            let mut all = vec![prefix.clone()];
            for item in inner.split(',') {
                let item = item.trim();
                let segs: Vec<String> = item
                    .split("::")
                    .map(|seg| seg.chars().take_while(|&c| is_ident(c)).collect())
                    .take_while(|seg: &String| !seg.is_empty())
                    .collect();
                if segs.first().is_some_and(|s| s != "self") {
                    let mut p = prefix.clone();
                    p.extend(segs);
                    all.push(p);
                }
            }
            return all;
        }
    }
    vec![prefix]
}

/// The edges of the crate's module graph, file to file.
fn graph(src: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut files = BTreeMap::new();
    modules(src, src, &mut files);
    let mut edges = BTreeMap::new();
    for (module, path) in &files {
        let text = code(path);
        let is_dir_module = path
            .file_name()
            .is_some_and(|n| n == "mod.rs" || n == "main.rs");
        // What `super` names: the parent of this module.
        let parent: Vec<String> = module[..module.len().saturating_sub(1)].to_vec();
        let mut named: Vec<Vec<String>> = Vec::new();
        for (at, base) in [("crate::", Vec::new()), ("super::", parent)] {
            let mut from = 0;
            while let Some(i) = text[from..].find(at) {
                let start = from + i;
                from = start + at.len();
                // `crate::` inside an identifier (`mycrate::`) is no path.
                if text[..start].chars().next_back().is_some_and(is_ident) {
                    continue;
                }
                for p in paths_at(&text[from..]) {
                    let mut full = base.clone();
                    full.extend(p);
                    named.push(full);
                }
            }
        }
        // `child::…` (in a `use` or an expression) of a module declared in
        // this file: `mod child;`.
        if is_dir_module {
            let children: Vec<&str> = text
                .lines()
                .filter_map(|l| {
                    let l = l.trim_start();
                    let l = l
                        .strip_prefix("pub(crate) mod ")
                        .or_else(|| l.strip_prefix("pub mod "))
                        .or_else(|| l.strip_prefix("mod "))?;
                    l.strip_suffix(';')
                })
                .collect();
            for child in children {
                let at = format!("{child}::");
                let mut from = 0;
                while let Some(i) = text[from..].find(&at) {
                    let start = from + i;
                    from = start + at.len();
                    let before = text[..start].chars().next_back();
                    // Not a part of a longer name, nor of a longer path.
                    if before.is_some_and(|c| is_ident(c) || c == ':') {
                        continue;
                    }
                    for p in paths_at(&text[start..]) {
                        let mut full = module.clone();
                        full.extend(p);
                        named.push(full);
                    }
                }
            }
        }
        let mut to = BTreeSet::new();
        for p in named {
            // The longest prefix that is a file.
            let target = (0..=p.len())
                .rev()
                .map(|n| p[..n].to_vec())
                .find(|m| files.contains_key(m));
            if let Some(t) = target {
                if &t != module {
                    to.insert(t);
                }
            }
        }
        edges.insert(module.clone(), to);
    }
    edges
}

fn name(m: &[String]) -> String {
    if m.is_empty() {
        "main".into()
    } else {
        m.join("::")
    }
}

/// A circle through the graph, if any (depth first search).
fn circle(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<String>> {
    fn visit<'a>(
        n: &'a Vec<String>,
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<&'a Vec<String>, u8>,
        stack: &mut Vec<&'a Vec<String>>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let at = stack.iter().position(|s| *s == n).unwrap();
                let mut c: Vec<String> = stack[at..].iter().map(|m| name(m)).collect();
                c.push(name(n));
                return Some(c);
            }
            _ => {}
        }
        state.insert(n, 1);
        stack.push(n);
        for m in &edges[n] {
            if let Some(c) = visit(m, edges, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(n, 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if let Some(c) = visit(n, edges, &mut state, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn the_cli_modules_import_each_other_without_a_circle() {
    let edges = graph(&src());
    // The check sees the edges it must (a broken parser would pass vacuously).
    let run = vec!["commands".to_string(), "run".to_string()];
    assert!(
        edges[&run].contains(&vec!["exit".to_string()]),
        "the layout check no longer sees commands::run -> exit: {:?}",
        edges[&run]
    );
    if let Some(c) = circle(&edges) {
        panic!(
            "import circle in crates/pidguard-cli/src: {}",
            c.join(" -> ")
        );
    }
}

#[test]
fn supervise_never_imports_commands() {
    let edges = graph(&src());
    for (from, to) in &edges {
        if from.first().is_some_and(|m| m == "supervise") {
            for t in to {
                assert!(
                    t.first().is_none_or(|m| m != "commands"),
                    "{} imports {}: supervise/ holds the mechanisms and must not import \
                     commands/ (move what both need into supervise/ or below)",
                    name(from),
                    name(t)
                );
            }
        }
    }
}

/// Prints the graph (`cargo test -p pidguard-cli --test layout -- --nocapture print`).
#[test]
fn print_the_module_graph() {
    for (from, to) in graph(&src()) {
        let to: Vec<String> = to.iter().map(|t| name(t)).collect();
        println!("{} -> {}", name(&from), to.join(", "));
    }
}
