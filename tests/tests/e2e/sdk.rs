//! The official Python `openai` client, unchanged, against the server: a completion and
//! a stream come back from a free model that meets the request's requirements.
//!
//! Needs `python3` with the `openai` package, so it is ignored by default;
//! `cargo xtask ci` installs the package and runs it (`cargo test -p tests --test e2e
//! sdk -- --ignored`).

use crate::support::start;
use serde_json::Value;

const SCRIPT: &str = r#"
import json, sys
from openai import OpenAI
client = OpenAI(base_url=sys.argv[1], api_key="client-key-not-checked")
out = {}
r = client.chat.completions.create(model="openrouter/free", messages=[{"role": "user", "content": "Say hello"}])
out["model"] = r.model
out["content"] = r.choices[0].message.content
chunks = list(client.chat.completions.create(
    model="openrouter/free", stream=True, messages=[{"role": "user", "content": "Count to three"}]))
out["stream_models"] = sorted({c.model for c in chunks if c.model})
out["stream_text"] = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
t = client.chat.completions.create(
    model="openrouter/free",
    messages=[{"role": "user", "content": "Weather in Paris?"}],
    tools=[{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])
out["tools_model"] = t.model
out["models"] = [m.id for m in client.models.list().data]
try:
    client.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}])
    out["paid"] = "answered"
except Exception as e:
    out["paid"] = type(e).__name__
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3 with the openai package; `cargo xtask ci` installs it and runs this test"]
async fn the_official_python_openai_client_works_unchanged() {
    let s = start().await;
    let base_url = format!("{}/api/v1", s.base);
    let output = tokio::task::spawn_blocking(move || {
        let mut python = std::process::Command::new("python3");
        python.arg("-c").arg(SCRIPT).arg(base_url);
        crate::support::output_within(python, crate::support::CLIENT_TIMEOUT)
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python failed: {stderr}");
    let out: Value = serde_json::from_slice(&output.stdout).expect("the script prints json");

    let free: Vec<String> =
        s.server.state.router.catalog().free_models(s.server.state.router.now()).map(|m| m.id.to_string()).collect();
    let model = out["model"].as_str().expect("model");
    assert!(free.iter().any(|f| f == model), "{model} is not a free model: {out}");
    assert_eq!(out["content"], format!("hello from {model}"));
    let stream_models = out["stream_models"].as_array().expect("stream models");
    assert_eq!(stream_models.len(), 1, "every chunk names the one model that answered: {out}");
    assert!(free.iter().any(|f| *f == stream_models[0]), "{out}");
    assert!(!out["stream_text"].as_str().unwrap_or_default().is_empty(), "{out}");
    let tools_model = out["tools_model"].as_str().expect("tools model");
    let tool_capable =
        s.server.state.router.catalog().get(tools_model).expect("listed").info.supports_parameter("tools");
    assert!(tool_capable, "{tools_model} cannot call tools");
    assert_eq!(out["models"][0], "openrouter/free");
    assert_eq!(out["paid"], "BadRequestError", "a paid model is refused with a 400");
    assert!(s.upstream.requests().iter().all(|r| r.model.ends_with(":free")), "only free models reached upstream");
}
