//! The real Claude Code CLI (`claude -p`, pinned in `tests/agents/claude-code`) pointed
//! at the router with `ANTHROPIC_BASE_URL`: it gets an answer from a free model, runs a
//! tool round trip (the fake asks for a shell command, Claude Code runs it in a temp
//! dir, the fake answers from its output) and finishes, with no call to a paid model.
//!
//! Needs the pinned packages installed with `npm ci` in the folder named by
//! `CLAUDE_CODE_DIR`, so it is ignored by default; `cargo xtask ci` installs them under
//! `target/agents/claude-code` and runs it.

use crate::messages::{AGENT_MODEL, agent_upstream};
use crate::support::{AgentRun, CLIENT_TIMEOUT, Calls, TOOL_MODELS, agent_bin, output_within, run_agent, start_with};
use fake_upstream::Behaviour;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

/// Runs `claude -p <prompt> --output-format json` in `workdir` with `home` as its home.
fn claude_print(base_url: &str, home: &Path, workdir: &Path, prompt: &str) -> Output {
    let mut command = Command::new(agent_bin("CLAUDE_CODE_DIR", "claude"));
    command
        .args(["-p", prompt, "--output-format", "json", "--allowedTools", "Bash(cat:*)", "Read"])
        .current_dir(workdir)
        .env("ANTHROPIC_BASE_URL", base_url)
        .env("ANTHROPIC_AUTH_TOKEN", "client-key-not-checked")
        .env("DISABLE_TELEMETRY", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("HOME", home)
        // Its temporary files with its home, not in a /tmp other runs share.
        .env("TMPDIR", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("CLAUDE_CONFIG_DIR");
    output_within(command, CLIENT_TIMEOUT)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the pinned @anthropic-ai/claude-code in $CLAUDE_CODE_DIR/node_modules (`cargo xtask ci` installs it)"]
async fn claude_code_runs_a_tool_round_trip_through_the_router() {
    let s = start_with(agent_upstream().await, |_| {}).await;
    let home = tempfile::tempdir().expect("home");
    let work = tempfile::tempdir().expect("work dir");
    let marker = format!("router-marker-{}", std::process::id());
    let marker_file = work.path().join("marker.txt");
    std::fs::write(&marker_file, &marker).expect("marker written");
    s.upstream.set_default_behaviour(Behaviour::ToolRoundTrip {
        calls: vec![
            ("Bash".into(), json!({"command": "cat marker.txt", "description": "Show marker.txt"}).to_string()),
            ("Read".into(), json!({"file_path": marker_file}).to_string()),
        ],
    });

    let (base, home_path, work_path) = (s.base.clone(), home.path().to_owned(), work.path().to_owned());
    let AgentRun { stdout, requests, context, .. } =
        run_agent(&s, move || claude_print(&base, &home_path, &work_path, "Show me what marker.txt says.")).await;

    // The turns with the tools went to free models that have tools, and those that ask
    // for thinking (Claude Code's main turns do) to the one that also reasons; the
    // second turn carries the command's output.
    let turns: Vec<_> = requests.iter().filter(|r| r.body["tools"].is_array()).collect();
    let with_tools = |m: &str| m == AGENT_MODEL || TOOL_MODELS.contains(&m);
    assert!(turns.len() >= 2 && turns.iter().all(|r| with_tools(&r.model)), "{context}");
    let thinking: Vec<_> = turns.iter().filter(|r| r.body.get("reasoning").is_some()).collect();
    assert!(!thinking.is_empty() && thinking.iter().all(|r| r.model == AGENT_MODEL), "{context}");
    let tool_result = turns
        .iter()
        .rev()
        .find_map(|r| r.body["messages"].as_array().and_then(|m| m.iter().rev().find(|m| m["role"] == "tool")).cloned())
        .unwrap_or_else(|| panic!("a turn carries the tool's result: {context}"));
    assert!(tool_result["content"].as_str().is_some_and(|c| c.contains(&marker)), "the tool ran: {context}");
    // Claude Code's JSON result is the model's last answer, built from the tool's output.
    let result: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("json ({e}): {context}"));
    assert_eq!(result["is_error"], false, "{context}");
    let text = result["result"].as_str().unwrap_or_default();
    assert!(text.contains("tool said:") && text.contains(&marker), "{context}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the pinned @anthropic-ai/claude-code in $CLAUDE_CODE_DIR/node_modules (`cargo xtask ci` installs it)"]
async fn claude_code_carries_a_task_over_several_tool_turns() {
    // One command, then one file read (or the same command where Read is not offered).
    two_file_task(Calls::OneATurn, |files| Behaviour::ToolSteps {
        steps: vec![
            vec![("Bash".into(), json!({"command": "cat first.txt", "description": "Show first.txt"}).to_string())],
            vec![
                ("Read".into(), json!({"file_path": files[1]}).to_string()),
                ("Bash".into(), json!({"command": "cat second.txt", "description": "Show second.txt"}).to_string()),
            ],
        ],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the pinned @anthropic-ai/claude-code in $CLAUDE_CODE_DIR/node_modules (`cargo xtask ci` installs it)"]
async fn claude_code_runs_several_tool_calls_of_one_turn() {
    // A command and a file read in one answer, as models that call tools in parallel do.
    // The fake's call ids (`call_N`, `call_N_1`) start one another, as upstreams' often
    // do; Claude Code pairs a result with its call by the start of its id, so the
    // router's `toolu_…` ids must not.
    two_file_task(Calls::AtOnce, |files| Behaviour::ToolsAtOnce {
        calls: vec![
            ("Bash".into(), json!({"command": "cat first.txt", "description": "Show first.txt"}).to_string()),
            ("Read".into(), json!({"file_path": files[1]}).to_string()),
        ],
    })
    .await;
}

/// Runs Claude Code on a task about two files that `plan` answers, by a model that
/// reasons before each turn (its reasoning reaches Claude Code as thinking blocks), and
/// checks that it finishes with both files' markers, that the turn with both results
/// pairs each call with its result by id, and that no reasoning went back
/// upstream as text.
async fn two_file_task(made: Calls, plan: impl FnOnce(&[std::path::PathBuf; 2]) -> Behaviour) {
    let s = start_with(agent_upstream().await, |_| {}).await;
    let home = tempfile::tempdir().expect("home");
    let work = tempfile::tempdir().expect("work dir");
    let markers = [1, 2].map(|n| format!("router-marker-{n}-{}", std::process::id()));
    let files = ["first.txt", "second.txt"].map(|f| work.path().join(f));
    for (file, marker) in files.iter().zip(&markers) {
        std::fs::write(file, marker).expect("marker written");
    }
    s.upstream.set_default_behaviour(Behaviour::Thinking(Box::new(plan(&files))));

    let (base, home_path, work_path) = (s.base.clone(), home.path().to_owned(), work.path().to_owned());
    let AgentRun { stdout, requests, bodies, context } =
        run_agent(&s, move || claude_print(&base, &home_path, &work_path, "What do first.txt and second.txt say?"))
            .await;

    let turns: Vec<&Value> = requests.iter().filter(|r| r.body["tools"].is_array()).map(|r| &r.body).collect();
    made.check(&turns, &context);
    assert!(!bodies.iter().any(|b| b.contains("Let me think.")), "reasoning sent back upstream: {context}");
    let result: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("json ({e}): {context}"));
    assert_eq!(result["is_error"], false, "{context}");
    let text = result["result"].as_str().unwrap_or_default();
    assert!(text.contains("tools said:") && markers.iter().all(|m| text.contains(m.as_str())), "{context}");
}
