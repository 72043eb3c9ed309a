//! `cargo xtask providers`: OpenRouter is one provider among others. Outside the homes
//! listed in [`HOMES`], no code (tests left out, from a `#[cfg(test)]` line to the end of
//! a file) names what tells OpenRouter apart: its dialect, its `kind`, the name its
//! account is kept under, or its catalog adapter. A rule that differs between providers
//! asks the provider's dialect or its data instead. Any other use fails the check,
//! which prints it.

use anyhow::{Context, Result, bail};
use std::path::Path;

/// The ways code can ask "is this OpenRouter".
const NAMES: [&str; 6] = [
    "Dialect::OpenRouter",
    "ProviderKind::Openrouter",
    "OPENROUTER_PROVIDER",
    "OpenRouterCatalog",
    "has_openrouter",
    "'openrouter'",
];

/// Where those names belong, each with why.
const HOMES: [(&str, &str); 8] = [
    ("crates/catalog-openrouter/", "OpenRouter's catalog adapter"),
    ("crates/router-core/src/dialect/", "OpenRouter's dialect: its error tables and what its key and host are like"),
    ("crates/router-core/src/model/info.rs", "the name the catalog's own models' account is kept under"),
    ("crates/router-core/src/model/mod.rs", "re-exports that name"),
    ("crates/router-core/src/lib.rs", "re-exports that name"),
    (
        "crates/router-settings/src/load.rs",
        "reads the flat OPENROUTER_* settings and a provider's `kind`, and builds the base kind's catalog from them",
    ),
    (
        "crates/router-settings/src/provider.rs",
        "the `kind` values and what each means: its adapters, dialect and account name",
    ),
    ("crates/fake-upstream/", "a test double of OpenRouter"),
];

pub(crate) fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("`cargo xtask providers` takes no arguments (got `{arg}`)");
    }
    let root = crate::root();
    let files = sources(&root)?;
    let tests_only: Vec<String> = files.iter().flat_map(|(rel, text)| test_modules(rel, text)).collect();
    let mut found = Vec::new();
    for (rel, text) in &files {
        if at_home(rel) || tests_only.iter().any(|t| t == rel) {
            continue;
        }
        found.extend(uses(text).into_iter().map(|(line, name)| format!("{rel}:{line}: {name}")));
    }
    if !found.is_empty() {
        found.sort();
        bail!(
            "code outside OpenRouter's homes asks whether a provider is OpenRouter (ask the provider's dialect or \
             data instead, or name the file in xtask/src/providers.rs with why):\n  {}",
            found.join("\n  ")
        );
    }
    eprintln!("==> providers: no code outside OpenRouter's homes asks whether a provider is OpenRouter");
    Ok(())
}

/// Every crate's sources, by path from the root (with `/`), and their text.
fn sources(root: &Path) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.join("crates")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            if is_source(&rel) {
                let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {rel}"))?;
                out.push((rel, text));
            }
        }
    }
    Ok(out)
}

/// The files of the modules `rel` declares for tests only (`#[cfg(test)]` then `mod x;`).
fn test_modules(rel: &str, text: &str) -> Vec<String> {
    let dir = match rel.rsplit_once('/') {
        Some((dir, "mod.rs" | "lib.rs" | "main.rs")) => dir.to_owned(),
        _ => rel.trim_end_matches(".rs").to_owned(),
    };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let declared = lines.windows(2).filter(|w| w[0] == "#[cfg(test)]");
    let names = declared.filter_map(|w| w[1].strip_prefix("mod ")?.strip_suffix(';'));
    names.flat_map(|n| [format!("{dir}/{n}.rs"), format!("{dir}/{n}/mod.rs")]).collect()
}

/// A crate's own source: `.rs` and `.js` files under a `src/` folder.
fn is_source(rel: &str) -> bool {
    let ext = Path::new(rel).extension().and_then(|e| e.to_str());
    rel.contains("/src/") && matches!(ext, Some("rs" | "js"))
}

fn at_home(rel: &str) -> bool {
    HOMES.iter().any(|(home, _)| rel.starts_with(home))
}

/// Each use of one of [`NAMES`] before the file's tests: (line number, name).
fn uses(text: &str) -> Vec<(usize, &'static str)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        if line.trim_start().starts_with("//") {
            continue;
        }
        out.extend(NAMES.iter().filter(|n| line.contains(*n)).map(|&n| (i + 1, n)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: &[(usize, &str)]) {
        assert_eq!(uses(text), expected);
    }

    #[test]
    fn a_branch_on_openrouter_is_found_and_tests_and_comments_are_not() {
        check("let plain = !Account::of(info).takes_extensions();\n", &[]);
        check("fn f() {}\nif d == Dialect::OpenRouter { x }\n", &[(2, "Dialect::OpenRouter")]);
        check("// Dialect::OpenRouter is OpenRouter's\n#[cfg(test)]\nuse ProviderKind::Openrouter;\n", &[]);
        check("m.upstream !== 'openrouter' ? a : b", &[(1, "'openrouter'")]);
    }

    #[test]
    fn a_module_declared_for_tests_only_is_left_out() {
        let parent = "//! x\n#[cfg(test)]\nmod names;\nmod view;\n";
        let found = test_modules("crates/s/src/dashboard/mod.rs", parent);
        assert_eq!(found, ["crates/s/src/dashboard/names.rs", "crates/s/src/dashboard/names/mod.rs"]);
        assert_eq!(test_modules("crates/s/src/status.rs", parent)[0], "crates/s/src/status/names.rs");
    }

    #[test]
    fn only_sources_outside_the_homes_are_read() {
        assert!(is_source("crates/router-server/src/dashboard/app.js"));
        assert!(!is_source("crates/router-server/tests/cli.rs"));
        assert!(at_home("crates/router-core/src/dialect/openrouter.rs"));
        assert!(!at_home("crates/router-core/src/router/account.rs"));
    }
}
