//! The workspace's layering, checked: each crate depends only on the crates of the layers
//! below it (never on one beside it or above), and inside each crate no module circle (at
//! every level of the module tree, the sibling modules and what they import form no circle).
//! `ARCHITECTURE.md` draws the same layers; a change to one is a change to the other.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first; a crate may depend on crates of lower layers only.
const LAYERS: &[&[&str]] = &[
    &["dbkeep-model"],
    &["dbkeep-config"],
    &[
        "dbkeep-catalog",
        "dbkeep-engine",
        "dbkeep-pipeline",
        "dbkeep-store",
        "dbkeep-notify",
    ],
    &["dbkeep-core"],
    &["dbkeep-service"],
    &["dbkeep-web"],
    &["dbkeep"],
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn layer_of(name: &str) -> Option<usize> {
    LAYERS.iter().position(|row| row.contains(&name))
}

/// The workspace's crates: name and folder.
fn crates() -> Vec<(String, PathBuf)> {
    let mut out = vec![("dbkeep".to_string(), root())];
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        if dir.join("Cargo.toml").is_file() {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            out.push((name, dir));
        }
    }
    out.sort();
    out
}

/// The workspace crates `manifest` names under `[dependencies]` (not dev-dependencies).
fn internal_dependencies(manifest: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    doc.get("dependencies")
        .and_then(|d| d.as_table())
        .map(|deps| {
            deps.keys()
                .filter(|k| k.starts_with("dbkeep"))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_crate_depends_only_on_lower_layers() {
    let crates = crates();
    let mut wrong = Vec::new();
    for (name, dir) in &crates {
        let Some(mine) = layer_of(name) else {
            wrong.push(format!(
                "{name} is in no layer: add it to LAYERS and ARCHITECTURE.md"
            ));
            continue;
        };
        for dep in internal_dependencies(&dir.join("Cargo.toml")) {
            match layer_of(&dep) {
                Some(theirs) if theirs < mine => {}
                Some(_) => wrong.push(format!("{name} depends on {dep}, beside or above it")),
                None => wrong.push(format!("{name} depends on {dep}, which is in no layer")),
            }
        }
    }
    assert!(crates.len() >= 11, "found only {crates:?}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// One source file: its module path and what it refers to (absolute module paths, as
/// written after `crate::`, resolved from `super::`, `self::` or a child's name).
struct Source {
    file: String,
    module: Vec<String>,
    refers: Vec<Vec<String>>,
}

fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [only] if only == "lib" || only == "main" => Vec::new(),
        _ => parts.into_iter().filter(|p| p != "mod").collect::<Vec<_>>(),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without its tests (from `#[cfg(test)]` on).
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths in `code` that start with `crate::`, `super::` or `self::`, or, in `use`
/// items, with one of `children` (a relative path), each cut into its segments; groups
/// (`crate::a::{b, c::d}`) give one path per member.
fn paths(code: &str, children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(is_ident(bytes[i - 1]) || bytes[i - 1] == b':');
        if !starts_word || !is_ident(bytes[i]) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < bytes.len() && is_ident(bytes[j]) {
            j += 1;
        }
        let first = &code[i..j];
        let after_use = code[..i].trim_end().ends_with("use");
        let rooted =
            matches!(first, "crate" | "super" | "self") || (after_use && children.contains(first));
        if rooted && code[j..].starts_with("::") {
            let (found, end) = expand(code, i);
            out.extend(found);
            i = end;
        } else {
            i = j;
        }
    }
    out
}

/// The path(s) starting at `at`: `a::b::c` or `a::{b, c::d}` (one level of braces and
/// nested ones), and where they end.
fn expand(code: &str, at: usize) -> (Vec<Vec<String>>, usize) {
    let bytes = code.as_bytes();
    let mut segs = Vec::new();
    let mut i = at;
    loop {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        if start == i {
            break;
        }
        segs.push(code[start..i].to_string());
        if code[i..].starts_with("::") {
            i += 2;
            if code[i..].starts_with('{') {
                let mut depth = 0;
                let open = i;
                while i < bytes.len() {
                    match bytes[i] {
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                let inner = &code[open + 1..i.min(code.len())];
                let mut out = Vec::new();
                for member in split_top(inner) {
                    let member = member.trim();
                    if member.is_empty() || member == "self" {
                        out.push(segs.clone());
                        continue;
                    }
                    let (more, _) = expand(member, 0);
                    for m in more {
                        let mut full = segs.clone();
                        full.extend(m);
                        out.push(full);
                    }
                }
                return (out, i + 1);
            }
        } else {
            break;
        }
    }
    (vec![segs], i)
}

/// `inner` split at its top-level commas.
fn split_top(inner: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&inner[start..]);
    out
}

/// `path` as written in the file of `module` made absolute (from the crate root).
fn absolute(module: &[String], path: &[String]) -> Vec<String> {
    let mut base: Vec<String> = module.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        _ => {}
    }
    base.extend(rest.iter().cloned());
    base
}

/// The circles among sibling modules of one crate, each as its modules' paths, with the
/// files that make its edges.
fn circles(src: &Path) -> Vec<(Vec<String>, Vec<String>)> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(src, f)).collect();
    let children_of = |m: &[String]| -> BTreeSet<String> {
        modules
            .iter()
            .filter(|c| c.len() == m.len() + 1 && c.starts_with(m))
            .map(|c| c[m.len()].clone())
            .collect()
    };
    let mut sources = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        if name == "tests.rs" {
            continue;
        }
        let module = module_of(src, file);
        let text = std::fs::read_to_string(file).unwrap();
        let children = children_of(&module);
        let refers = paths(&code(&text), &children)
            .iter()
            .map(|p| absolute(&module, p))
            .collect();
        let file = file.strip_prefix(src).unwrap().display().to_string();
        sources.push(Source {
            file,
            module,
            refers,
        });
    }
    // Edges between siblings: under each parent, from the child holding the file to the
    // child its path goes into.
    let mut edges: BTreeMap<Vec<String>, BTreeSet<(String, String)>> = BTreeMap::new();
    let mut why: BTreeMap<(Vec<String>, String, String), BTreeSet<String>> = BTreeMap::new();
    for s in &sources {
        for target in &s.refers {
            let common = s
                .module
                .iter()
                .zip(target)
                .take_while(|(a, b)| a == b)
                .count();
            if common >= s.module.len() || common >= target.len() {
                continue;
            }
            let parent = &s.module[..common];
            let (from, to) = (&s.module[common], &target[common]);
            if children_of(parent).contains(to) {
                edges
                    .entry(parent.to_vec())
                    .or_default()
                    .insert((from.clone(), to.clone()));
                why.entry((parent.to_vec(), from.clone(), to.clone()))
                    .or_default()
                    .insert(format!("{} uses {}", s.file, target.join("::")));
            }
        }
    }
    let mut found = Vec::new();
    for (parent, pairs) in &edges {
        for circle in strongly_connected(pairs) {
            let prefix = parent.join("::");
            let mut because = Vec::new();
            for (from, to) in pairs {
                if circle.contains(from) && circle.contains(to) {
                    let key = (parent.clone(), from.clone(), to.clone());
                    because.extend(why[&key].iter().cloned());
                }
            }
            let names = circle
                .into_iter()
                .map(|m| {
                    if prefix.is_empty() {
                        m
                    } else {
                        format!("{prefix}::{m}")
                    }
                })
                .collect();
            found.push((names, because));
        }
    }
    found
}

/// The strongly connected parts of more than one node (the circles) of the graph `edges`.
fn strongly_connected(edges: &BTreeSet<(String, String)>) -> Vec<Vec<String>> {
    let nodes: BTreeSet<&String> = edges.iter().flat_map(|(a, b)| [a, b]).collect();
    let reaches = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for (a, b) in edges {
                if *a == n && seen.insert(b.clone()) {
                    todo.push(b.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<String>> =
        nodes.iter().map(|n| (*n, reaches(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for n in &nodes {
        if done.contains(*n) || !reach[n].contains(*n) {
            continue;
        }
        let part: Vec<String> = nodes
            .iter()
            .filter(|m| reach[n].contains(**m) && reach[*m].contains(*n))
            .map(|m| (*m).clone())
            .collect();
        done.extend(part.iter().cloned());
        out.push(part);
    }
    out
}

#[test]
fn no_crate_has_a_module_circle() {
    let mut wrong = Vec::new();
    for (name, dir) in crates() {
        for (circle, because) in circles(&dir.join("src")) {
            wrong.push(format!(
                "{name}: {}\n    {}",
                circle.join(" ⇄ "),
                because.join("\n    ")
            ));
        }
    }
    assert!(wrong.is_empty(), "module circles:\n{}", wrong.join("\n"));
}

#[test]
fn the_circle_check_sees_a_circle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\nmod c;\n").unwrap();
    std::fs::write(src.join("a.rs"), "use crate::b::{x, y::Z};\n").unwrap();
    std::fs::create_dir(src.join("b")).unwrap();
    std::fs::write(src.join("b.rs"), "mod inner;\n").unwrap();
    std::fs::write(src.join("b/inner.rs"), "fn f() { super::super::a::g() }\n").unwrap();
    std::fs::write(src.join("c.rs"), "use crate::a::g;\n").unwrap();
    let found = circles(src);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, ["a", "b"]);
    assert_eq!(
        found[0].1,
        [
            "a.rs uses b::x",
            "a.rs uses b::y::Z",
            "b/inner.rs uses a::g"
        ]
    );
    std::fs::write(src.join("b/inner.rs"), "// crate::a::g\n").unwrap();
    assert!(circles(src).is_empty());
}

#[test]
fn the_library_without_its_web_pulls_no_web_framework() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let tree = |features: &[&str]| {
        let out = std::process::Command::new(&cargo)
            .current_dir(root())
            .args([
                "tree", "--locked", "-e", "normal", "-p", "dbkeep", "--prefix", "none",
            ])
            .args(features)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let web_crates = |tree: &str| -> BTreeSet<String> {
        tree.lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|name| {
                ["axum", "askama", "dbkeep-web"]
                    .iter()
                    .any(|w| name.starts_with(w))
            })
            .map(str::to_string)
            .collect()
    };
    let without = web_crates(&tree(&["--no-default-features"]));
    assert!(without.is_empty(), "without the web, still: {without:?}");
    // The same question asked of the default build finds them: the check can see them.
    let with = web_crates(&tree(&[]));
    assert!(with.contains("axum") && with.contains("askama"), "{with:?}");
}
