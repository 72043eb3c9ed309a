//! `cargo xtask modules`: no module circles in any crate.
//!
//! For each crate under `crates/`, every module (a file, or a folder's `mod.rs`) is a
//! node, and a path it names (`crate::a::b`, `super::x`, or `use child::...` for one of
//! its own submodules) is an edge to the deepest module that path reaches. The crate
//! root only declares and re-exports, so edges to it are not followed; inside a crate,
//! modules name each other by module path. Tests (from a `#[cfg(test)]` line to the end
//! of a file) are left out: a test module may look at anything. Any cycle fails the
//! check, which prints it.

use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub(crate) fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("`cargo xtask modules` takes no arguments (got `{arg}`)");
    }
    let crates = crate::root().join("crates");
    let mut failures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&crates).context("cannot list crates/")?.flatten().collect();
    entries.sort_by_key(std::fs::DirEntry::path);
    for entry in entries {
        let src = entry.path().join("src");
        if !src.is_dir() {
            continue;
        }
        let files = read_tree(&src)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(cycle) = find_cycle(&graph(&files)) {
            failures.push(format!("{name}: {}", cycle.join(" -> ")));
        }
    }
    if !failures.is_empty() {
        bail!("module circles (a module uses one that uses it back):\n  {}", failures.join("\n  "));
    }
    eprintln!("==> modules: no circles in any crate");
    Ok(())
}

/// The `.rs` files under `src`, by module path (`""` for the crate root).
fn read_tree(src: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "bin") {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap_or(&path).with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            out.insert(parts.join("::"), text);
        }
    }
    Ok(out)
}

/// The lines of `text` outside `#[cfg(test)]` items: an item is skipped from the
/// attribute to the brace that closes it (or its `;`), so that code after a test module
/// in the middle of a file is still checked.
fn outside_tests(text: &str) -> impl Iterator<Item = &str> {
    let (mut skipping, mut depth, mut opened) = (false, 0i64, false);
    text.lines().filter(move |line| {
        if !skipping {
            if !line.trim_start().starts_with("#[cfg(test)]") {
                return true;
            }
            (skipping, depth, opened) = (true, 0, false);
            return false;
        }
        for c in line.chars() {
            match c {
                '{' => (depth, opened) = (depth + 1, true),
                '}' => depth -= 1,
                _ => {}
            }
        }
        if (opened && depth <= 0) || (!opened && line.trim_end().ends_with(';')) {
            skipping = false;
        }
        false
    })
}

/// Module path -> the modules it names.
fn graph(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<&str> = files.keys().map(String::as_str).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in files {
        let out = edges.entry(module.clone()).or_default();
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        for line in outside_tests(text) {
            let code = line.split("//").next().unwrap_or("");
            for (start, base) in [("crate::", String::new()), ("super::", parent.to_owned())] {
                for (i, _) in code.match_indices(start) {
                    let before = code[..i].chars().next_back();
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        continue;
                    }
                    let path = path_after(&code[i + start.len()..]);
                    if let Some(target) = deepest(&modules, &base, &path) {
                        out.insert(target);
                    } else if start == "super::" && !parent.is_empty() {
                        // An item of the parent module itself.
                        out.insert(parent.to_owned());
                    }
                }
            }
            // `use child::...` for a submodule of this one.
            if let Some(rest) =
                code.trim_start().strip_prefix("use ").or_else(|| code.trim_start().strip_prefix("pub use "))
            {
                let path = path_after(rest);
                if let Some(first) = path.first() {
                    let child = if module.is_empty() { first.clone() } else { format!("{module}::{first}") };
                    if modules.contains(child.as_str()) {
                        out.insert(child);
                    }
                }
            }
        }
        out.remove(module);
        // The root declares and re-exports everything; it is not a dependency.
        out.remove("");
    }
    edges
}

/// The identifiers of a path, up to the first thing that is not one.
fn path_after(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text;
    loop {
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        parts.push(rest[..end].to_owned());
        match rest[end..].strip_prefix("::") {
            Some(more) => rest = more,
            None => break,
        }
    }
    parts
}

/// The deepest module `base::path[..k]` that exists, if any.
fn deepest(modules: &BTreeSet<&str>, base: &str, path: &[String]) -> Option<String> {
    (1..=path.len()).rev().find_map(|k| {
        let tail = path[..k].join("::");
        let full = if base.is_empty() { tail } else { format!("{base}::{tail}") };
        modules.contains(full.as_str()).then_some(full)
    })
}

/// A cycle, as the modules along it (the first repeated at the end), if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = stack.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = stack[from..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_owned(), Mark::Open);
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, marks, stack) {
                return Some(c);
            }
        }
        stack.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    edges.keys().find_map(|n| visit(n, edges, &mut marks, &mut Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds the graph of `files` (`module: text` pairs) and compares the cycle found
    /// (or "none") to `expected`.
    fn check(files: &[(&str, &str)], expected: &str) {
        let files = files.iter().map(|(m, t)| ((*m).to_owned(), (*t).to_owned())).collect();
        let got = find_cycle(&graph(&files)).map_or_else(|| "none".to_owned(), |c| c.join(" -> "));
        assert_eq!(got, expected);
    }

    #[test]
    fn a_straight_line_passes() {
        check(
            &[
                ("", "pub mod a; pub mod b; pub use a::A;"),
                ("a", "pub struct A;"),
                ("b", "use crate::a::A;"),
                ("c", "use crate::b; use crate::A; // crate::c in a comment"),
            ],
            "none",
        );
    }

    #[test]
    fn two_modules_that_use_each_other_fail() {
        check(
            &[("ports", "use crate::health::HealthState;"), ("health", "use crate::ports::{ErrorKind};")],
            "health -> ports -> health",
        );
    }

    #[test]
    fn a_child_using_its_parents_items_closes_a_circle() {
        check(
            &[
                ("router", "mod plan;\nuse plan::next_pick;\npub struct Router;"),
                ("router::plan", "use super::Router;"),
            ],
            "router -> router::plan -> router",
        );
        // Siblings through `super::` are fine.
        check(
            &[
                ("router", "mod plan;\nmod report;\nuse plan::next_pick;"),
                ("router::plan", "use super::report::Attempt;"),
                ("router::report", ""),
            ],
            "none",
        );
    }

    #[test]
    fn tests_are_left_out() {
        check(&[("a", "use crate::b;"), ("b", "pub fn f() {}\n#[cfg(test)]\nmod tests { use crate::a; }")], "none");
        // Code after a test module in the middle of a file is still read.
        check(
            &[("a", "use crate::b;"), ("b", "#[cfg(test)]\nmod tests {\n    use crate::a;\n}\n\nuse crate::a::X;")],
            "a -> b -> a",
        );
    }
}
