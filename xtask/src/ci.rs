//! `cargo xtask ci`: every check CI runs, in order, stopping at the first failure.
//!
//! 1. `cargo fmt --all --check`
//! 2. no module circles in any crate (`cargo xtask modules`, run in this process), and no
//!    code outside OpenRouter's homes asks whether a provider is OpenRouter (`cargo xtask
//!    providers`, likewise)
//! 3. `cargo clippy --workspace --all-targets -- -D warnings`
//! 4. the documentation builds without warnings (`cargo doc --workspace --no-deps`, `-D warnings`)
//! 5. the tests (`cargo nextest run --workspace` when cargo-nextest is installed, else `cargo test`);
//!    among them, the README's settings table against the settings list
//! 6. the doc tests (`cargo test --workspace --doc`; nextest does not run them), and every
//!    criterion benchmark run once (`cargo test --workspace --bench '*'`), so that a bench
//!    whose setup no longer routes fails here rather than when someone measures
//! 7. the official Python `openai` client against the server (the e2e test `sdk`, ignored
//!    by plain `cargo test` because it needs Python; the `openai` package is installed with
//!    pip when missing)
//! 8. the official TypeScript `@openrouter/sdk` listing models through the router (the
//!    ignored e2e test, with the package installed by npm under `target/sdk` when missing)
//! 9. the Responses API's clients through the router: the official `openai` SDKs (Python
//!    and Node) and the real Codex CLI in `codex exec` mode (the ignored e2e tests
//!    `responses_clients` and `codex`, with the packages pinned in `tests/agents/codex`
//!    installed by `npm ci` under `target/agents/codex`)
//! 10. the Messages API's clients through the router: the official Anthropic SDKs (Python
//!     `anthropic`, installed with pip when missing, and the Node `@anthropic-ai/sdk`) and
//!     the real Claude Code CLI in print mode (the ignored e2e tests `messages_sdk` and
//!     `claude_code`, with the packages pinned in `tests/agents/claude-code` installed by
//!     `npm ci` under `target/agents/claude-code`)
//! 11. the architecture invariant: no async runtime or HTTP stack in `router-core`'s normal
//!     dependency tree (see [`forbidden_in_tree`])

use anyhow::{Context, Result, bail};
use std::process::{Command, Stdio};

/// Crates that must never be in `router-core`'s normal dependency tree: the runtime, the
/// HTTP stack, and the socket crates under them. Any of them means IO crept into the core.
const FORBIDDEN: [&str; 6] = ["tokio", "reqwest", "hyper", "axum", "mio", "socket2"];

pub(crate) fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("`cargo xtask ci` takes no arguments (got `{arg}`)");
    }
    cargo_step("formatting", &["fmt", "--all", "--check"])?;
    crate::modules::run(&[])?;
    crate::providers::run(&[])?;
    cargo_step("clippy", &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    eprintln!("==> docs: RUSTDOCFLAGS=-D warnings cargo doc --workspace --no-deps");
    let status = cargo()
        .args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings")
        .status()
        .context("could not start `cargo doc`")?;
    if !status.success() {
        bail!("ci step `docs` failed ({status}); rerun `RUSTDOCFLAGS=-D warnings cargo doc --workspace --no-deps`");
    }
    if nextest_available() {
        cargo_step("tests", &["nextest", "run", "--workspace"])?;
    } else {
        eprintln!("note: cargo-nextest is not installed; running the tests with `cargo test`");
        cargo_step("tests", &["test", "--workspace", "--lib", "--bins", "--tests"])?;
    }
    cargo_step("doc tests", &["test", "--workspace", "--doc"])?;
    cargo_step("benchmarks, once each", &["test", "--workspace", "--bench", "*"])?;
    ensure_python_package(PYTHON_OPENAI, "sdk compatibility")?;
    // `sdk::` would also match `messages_sdk::`, which needs the npm packages of its own step.
    let sdk = ["test", "-p", "tests", "--test", "e2e", "sdk::", "--", "--ignored", "--skip", "messages_sdk::"];
    cargo_step("sdk compatibility", &sdk)?;
    typescript_sdk()?;
    responses_clients()?;
    messages_clients()?;
    check_core_invariants()?;
    eprintln!("==> ci passed");
    Ok(())
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(crate::root());
    cmd
}

/// Runs `cargo <args>` with the output shown as it comes, and fails with the step's name.
fn cargo_step(name: &str, args: &[&str]) -> Result<()> {
    let line = format!("cargo {}", args.join(" "));
    eprintln!("==> {name}: {line}");
    let status = cargo().args(args).status().with_context(|| format!("could not start `{line}`"))?;
    if !status.success() {
        bail!("ci step `{name}` failed ({status}); rerun `{line}` to see why");
    }
    Ok(())
}

/// The Python SDKs the client tests drive, at least at the versions they were written
/// against (an older one may lack an API they call: `responses.stream`, `count_tokens`).
const PYTHON_OPENAI: (&str, &str) = ("openai", "3.63.0");
const PYTHON_ANTHROPIC: (&str, &str) = ("anthropic", "2.17.0");

/// Makes sure `python3` has `package` at `floor` or later, installing it with pip when
/// it has not.
fn ensure_python_package((package, floor): (&str, &str), step: &str) -> Result<()> {
    // The installed version's leading numbers against the floor's.
    const AT_LEAST: &str = "import importlib.metadata as m, sys
def nums(v): return tuple(int(p) for p in v.split('.')[:3] if p.isdigit())
sys.exit(0 if nums(m.version(sys.argv[1])) >= nums(sys.argv[2]) else 1)";
    let present = || {
        Command::new("python3")
            .args(["-c", AT_LEAST, package, floor])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if present() {
        return Ok(());
    }
    let wanted = format!("{package}>={floor}");
    eprintln!("==> {step}: python3 -m pip install --quiet '{wanted}'");
    let status = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", &wanted])
        .status()
        .with_context(|| format!("could not start python3 (the {step} step needs it)"))?;
    if !status.success() || !present() {
        bail!("ci step `{step}` failed: could not install the Python package `{wanted}` with pip");
    }
    Ok(())
}

/// The official TypeScript SDK (`@openrouter/sdk`, pinned) lists models through the
/// router: installed with npm under `target/sdk` when missing, then the ignored e2e test
/// that drives it runs with `OPENROUTER_SDK_DIR` pointing there.
fn typescript_sdk() -> Result<()> {
    let dir = crate::root().join("target").join("sdk");
    if !dir.join("node_modules").join("@openrouter").join("sdk").is_dir() {
        eprintln!("==> typescript sdk: npm install --prefix target/sdk {OPENROUTER_SDK}");
        std::fs::create_dir_all(&dir).context("cannot create target/sdk")?;
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
            .arg(&dir)
            .arg(OPENROUTER_SDK)
            .status()
            .context("could not start npm (the typescript sdk step needs node and npm)")?;
        if !status.success() {
            bail!("ci step `typescript sdk` failed: could not install {OPENROUTER_SDK} with npm");
        }
    }
    let args = ["test", "-p", "tests", "--test", "e2e", "the_official_typescript_sdk", "--", "--ignored"];
    eprintln!("==> typescript sdk: OPENROUTER_SDK_DIR=target/sdk cargo {}", args.join(" "));
    let status = cargo().args(args).env("OPENROUTER_SDK_DIR", &dir).status().context("could not start cargo")?;
    if !status.success() {
        bail!("ci step `typescript sdk` failed ({status})");
    }
    Ok(())
}

/// The Responses clients (pinned in `tests/agents/codex`: `@openai/codex` and the Node
/// `openai` SDK); the ignored e2e tests that drive them, and the Python SDK's Responses
/// test, run with `CODEX_DIR` pointing at their install.
fn responses_clients() -> Result<()> {
    agent_step(Agent {
        step: "responses clients",
        name: "codex",
        bin: "codex",
        env: "CODEX_DIR",
        tests: &["responses_clients::", "codex::"],
    })
}

/// The Messages clients (pinned in `tests/agents/claude-code`: `@anthropic-ai/claude-code`
/// and `@anthropic-ai/sdk`, and the Python `anthropic` package from pip); the ignored e2e
/// tests that drive them run with `CLAUDE_CODE_DIR` pointing at their install.
fn messages_clients() -> Result<()> {
    ensure_python_package(PYTHON_ANTHROPIC, "messages clients")?;
    agent_step(Agent {
        step: "messages clients",
        name: "claude-code",
        bin: "claude",
        env: "CLAUDE_CODE_DIR",
        tests: &["messages_sdk::", "claude_code::"],
    })
}

/// One coding agent's CI step: its npm packages, pinned in `tests/agents/<name>`.
struct Agent {
    step: &'static str,
    /// The folder under `tests/agents` and `target/agents`.
    name: &'static str,
    /// The executable `npm ci` must leave in `node_modules/.bin`.
    bin: &'static str,
    /// The variable the tests read the install's folder from.
    env: &'static str,
    /// The ignored e2e tests to run.
    tests: &'static [&'static str],
}

/// Installs `agent`'s packages with `npm ci` under `target/agents/<name>` when missing or
/// when the lock file changed, then runs its ignored e2e tests with its variable set.
fn agent_step(agent: Agent) -> Result<()> {
    let Agent { step, name, bin, env, tests } = agent;
    let pinned = crate::root().join("tests").join("agents").join(name);
    let dir = crate::root().join("target").join("agents").join(name);
    let lock = std::fs::read(pinned.join("package-lock.json"))
        .with_context(|| format!("cannot read tests/agents/{name}/package-lock.json"))?;
    let installed = std::fs::read(dir.join("package-lock.json")).ok();
    if installed.as_deref() != Some(lock.as_slice()) || !dir.join("node_modules").join(".bin").join(bin).exists() {
        eprintln!("==> {step}: npm ci in target/agents/{name} (tests/agents/{name}'s lock file)");
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create target/agents/{name}"))?;
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(pinned.join(file), dir.join(file)).with_context(|| format!("cannot copy {file}"))?;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .with_context(|| format!("could not start npm (the {step} step needs node and npm)"))?;
        if !status.success() {
            bail!("ci step `{step}` failed: `npm ci` in target/agents/{name} failed ({status})");
        }
    }
    let mut args = vec!["test", "-p", "tests", "--test", "e2e", "--", "--ignored"];
    args.extend_from_slice(tests);
    eprintln!("==> {step}: {env}=target/agents/{name} cargo {}", args.join(" "));
    let status = cargo().args(&args).env(env, &dir).status().context("could not start cargo")?;
    if !status.success() {
        bail!("ci step `{step}` failed ({status})");
    }
    Ok(())
}

/// The SDK version the router's `/models` is checked against.
const OPENROUTER_SDK: &str = "@openrouter/sdk@1.3.19";

fn nextest_available() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn check_core_invariants() -> Result<()> {
    let args = ["tree", "-p", "router-core", "-e", "normal", "--prefix", "none"];
    let line = format!("cargo {}", args.join(" "));
    eprintln!("==> architecture invariants: {line}");
    let out =
        cargo().args(args).stderr(Stdio::inherit()).output().with_context(|| format!("could not start `{line}`"))?;
    if !out.status.success() {
        bail!("ci step `architecture invariants` failed: `{line}` exited with {}", out.status);
    }
    let tree = String::from_utf8(out.stdout).context("`cargo tree` printed something that is not utf-8")?;
    let found = forbidden_in_tree(&tree)?;
    if !found.is_empty() {
        bail!(
            "ci step `architecture invariants` failed: router-core must stay pure (no IO, no async runtime), \
             but its normal dependency tree contains {}; move that code into an adapter crate",
            found.join(", ")
        );
    }
    Ok(())
}

/// The forbidden crates (`name vX.Y.Z`, once each, in order of appearance) in the output of
/// `cargo tree -p router-core -e normal --prefix none`. Fails on text that is not such a
/// tree, so that a broken `cargo tree` call cannot pass the check by printing nothing.
pub(crate) fn forbidden_in_tree(tree: &str) -> Result<Vec<String>> {
    let mut lines = tree.lines().map(str::trim).filter(|l| !l.is_empty());
    match lines.next() {
        Some(first) if first.starts_with("router-core v") => {}
        other => bail!("unexpected `cargo tree` output: expected it to start with `router-core v...`, got {other:?}"),
    }
    let mut found: Vec<String> = Vec::new();
    for line in lines {
        let mut words = line.split_whitespace();
        let (Some(name), Some(version)) = (words.next(), words.next()) else { continue };
        if FORBIDDEN.contains(&name) {
            let hit = format!("{name} {version}");
            if !found.contains(&hit) {
                found.push(hit);
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pure core's tree, as `cargo tree --prefix none` prints it.
    const PURE: &str = "\
router-core v0.1.0 (/work/main/crates/router-core)
async-trait v0.1.92 (proc-macro)
proc-macro2 v1.0.101
unicode-ident v1.0.19
bytes v1.10.1
futures-util v0.3.31
futures-core v0.3.31
memchr v2.7.6
rand_chacha v0.10.0
serde_json v1.0.145
memchr v2.7.6 (*)
";

    /// Runs the check on `tree` and compares what it reports (or its error) to `expected`.
    fn check(tree: &str, expected: &str) {
        let got = match forbidden_in_tree(tree) {
            Ok(found) => found.join(", "),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "{tree}");
    }

    #[test]
    fn a_pure_core_passes() {
        check(PURE, "");
    }

    #[test]
    fn adding_tokio_fails_the_check() {
        check(&format!("{PURE}tokio v1.40.0\npin-project-lite v0.2.16\n"), "tokio v1.40.0");
    }

    #[test]
    fn every_forbidden_crate_is_named_once() {
        let tree = format!(
            "{PURE}reqwest v0.13.1\nhyper v1.7.0\ntokio v1.47.1\nmio v1.0.4\nsocket2 v0.6.0\n\
             tokio v1.47.1 (*)\naxum v0.8.4\nhyper v1.7.0 (*)\n"
        );
        check(&tree, "reqwest v0.13.1, hyper v1.7.0, tokio v1.47.1, mio v1.0.4, socket2 v0.6.0, axum v0.8.4");
    }

    #[test]
    fn names_are_matched_whole() {
        // Crates whose names merely start like a forbidden one are not flagged by name;
        // if they pulled in the real thing, that crate would be listed too.
        check(&format!("{PURE}tokio-macros v2.5.0 (proc-macro)\nhyperloglog v1.0.0\n"), "");
    }

    #[test]
    fn output_that_is_not_the_core_tree_fails() {
        check("", "error: unexpected `cargo tree` output: expected it to start with `router-core v...`, got None");
        check(
            "error: package ID specification `router-core` did not match any packages",
            "error: unexpected `cargo tree` output: expected it to start with `router-core v...`, \
             got Some(\"error: package ID specification `router-core` did not match any packages\")",
        );
    }
}
