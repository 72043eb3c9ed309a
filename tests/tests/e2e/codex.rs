//! The real Codex CLI (`codex exec`, pinned in `tests/agents/codex`) with a custom
//! provider pointed at the router: it gets an answer from a free model, runs a tool
//! round trip (the fake asks for a shell command, Codex runs it in a temp dir, the fake
//! answers from its output) and finishes.
//!
//! Needs node and the pinned packages installed with `npm ci` in the folder named by
//! `CODEX_DIR`, so it is ignored by default; `cargo xtask ci` installs them under
//! `target/agents/codex` and runs it.

use crate::support::{AgentRun, CLIENT_TIMEOUT, Calls, TOOL_MODELS, agent_bin, output_within, run_agent, start};
use fake_upstream::Behaviour;
use std::path::Path;
use std::process::{Command, Output};

/// `config.toml` for a temporary `CODEX_HOME`: the router as a Responses provider.
fn config(base_url: &str) -> String {
    format!(
        "model = \"openrouter/free\"\n\
         model_provider = \"router\"\n\
         approval_policy = \"never\"\n\
         sandbox_mode = \"danger-full-access\"\n\
         [model_providers.router]\n\
         name = \"Free Models Router\"\n\
         base_url = \"{base_url}\"\n\
         wire_api = \"responses\"\n\
         env_key = \"ROUTER_CLIENT_KEY\"\n"
    )
}

/// Runs `codex exec` in `workdir` with `home` as its `CODEX_HOME`, within [`CLIENT_TIMEOUT`].
fn codex_exec(home: &Path, workdir: &Path, prompt: &str) -> Output {
    let mut command = Command::new(agent_bin("CODEX_DIR", "codex"));
    command
        .args(["exec", "--skip-git-repo-check", "--color", "never", "--sandbox", "danger-full-access", "-C"])
        .arg(workdir)
        .arg(prompt)
        .env("CODEX_HOME", home)
        .env("HOME", home)
        // Its temporary files with its home, not in a /tmp other runs share.
        .env("TMPDIR", home)
        .env("ROUTER_CLIENT_KEY", "client-key-not-checked")
        .env("RUST_LOG", "error")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL");
    output_within(command, CLIENT_TIMEOUT)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs node and the pinned @openai/codex in $CODEX_DIR/node_modules (`cargo xtask ci` installs it)"]
async fn codex_exec_runs_a_tool_round_trip_through_the_router() {
    let s = start().await;
    s.upstream.set_default_behaviour(Behaviour::ToolRoundTrip { calls: shell("cat marker.txt") });
    let home = tempfile::tempdir().expect("codex home");
    let work = tempfile::tempdir().expect("work dir");
    let marker = format!("router-marker-{}", std::process::id());
    std::fs::write(work.path().join("marker.txt"), &marker).expect("marker written");
    std::fs::write(home.path().join("config.toml"), config(&s.url("/v1"))).expect("config written");

    let (home_path, work_path) = (home.path().to_owned(), work.path().to_owned());
    let AgentRun { stdout, requests, context, .. } =
        run_agent(&s, move || codex_exec(&home_path, &work_path, "Show me what marker.txt says.")).await;

    // Two turns with the tools, each on a free tool model: the call, then the answer from
    // the command's output. (A side request without tools, which a Codex version may
    // send, goes to any free model.)
    let turns: Vec<_> = requests.iter().filter(|r| r.body["tools"].is_array()).collect();
    assert!(turns.len() >= 2, "{context}");
    assert!(turns.iter().all(|r| TOOL_MODELS.contains(&r.model.as_str())), "only free tool models: {context}");
    let tool_result = turns
        .iter()
        .rev()
        .find_map(|r| r.body["messages"].as_array().and_then(|m| m.iter().rev().find(|m| m["role"] == "tool")).cloned())
        .unwrap_or_else(|| panic!("a turn carries the tool's result: {context}"));
    assert!(tool_result["content"].as_str().is_some_and(|c| c.contains(&marker)), "the command ran: {context}");
    // Codex printed the model's last message, which the fake built from the output.
    assert!(stdout.contains("tool said:") && stdout.contains(&marker), "{context}");
}

/// The shell tools Codex versions offer, each with its own arguments, to run `command`.
fn shell(command: &str) -> Vec<(String, String)> {
    vec![
        ("exec_command".into(), serde_json::json!({"cmd": command}).to_string()),
        ("shell_command".into(), serde_json::json!({"command": command}).to_string()),
        ("shell".into(), serde_json::json!({"command": ["bash", "-lc", command]}).to_string()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs node and the pinned @openai/codex in $CODEX_DIR/node_modules (`cargo xtask ci` installs it)"]
async fn codex_exec_carries_a_task_over_several_tool_turns() {
    two_file_task(
        Calls::OneATurn,
        Behaviour::ToolSteps { steps: vec![shell("cat first.txt"), shell("cat second.txt")] },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs node and the pinned @openai/codex in $CODEX_DIR/node_modules (`cargo xtask ci` installs it)"]
async fn codex_exec_runs_several_tool_calls_of_one_turn() {
    // Both commands in one answer, as models that call tools in parallel do (the calls of
    // the shell tool this Codex offers).
    let calls = [shell("cat first.txt"), shell("cat second.txt")];
    let at_once: Vec<(String, String)> = (0..3).flat_map(|tool| calls.iter().map(move |c| c[tool].clone())).collect();
    two_file_task(Calls::AtOnce, Behaviour::ToolsAtOnce { calls: at_once }).await;
}

/// Runs `codex exec` on a task about two files that `plan` answers, by a model that
/// reasons before each turn (its reasoning reaches Codex as reasoning items), and checks
/// that it finishes with both files' markers, that the turn with both results pairs each
/// call with its result by id, and that no reasoning went back upstream as text.
async fn two_file_task(made: Calls, plan: Behaviour) {
    let s = start().await;
    s.upstream.set_default_behaviour(Behaviour::Thinking(Box::new(plan)));
    let home = tempfile::tempdir().expect("codex home");
    let work = tempfile::tempdir().expect("work dir");
    let markers = [1, 2].map(|n| format!("router-marker-{n}-{}", std::process::id()));
    for (file, marker) in ["first.txt", "second.txt"].iter().zip(&markers) {
        std::fs::write(work.path().join(file), marker).expect("marker written");
    }
    std::fs::write(home.path().join("config.toml"), config(&s.url("/v1"))).expect("config written");

    let (home_path, work_path) = (home.path().to_owned(), work.path().to_owned());
    let AgentRun { stdout, requests, bodies, context } =
        run_agent(&s, move || codex_exec(&home_path, &work_path, "What do first.txt and second.txt say?")).await;

    let turns: Vec<&serde_json::Value> =
        requests.iter().filter(|r| r.body["tools"].is_array()).map(|r| &r.body).collect();
    made.check(&turns, &context);
    assert!(!bodies.iter().any(|b| b.contains("Let me think.")), "reasoning sent back upstream: {context}");
    assert!(stdout.contains("tools said:") && markers.iter().all(|m| stdout.contains(m.as_str())), "{context}");
}
