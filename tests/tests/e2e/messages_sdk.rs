//! The official Anthropic SDKs, unchanged, against `/v1/messages`: Python `anthropic`
//! and TypeScript `@anthropic-ai/sdk` parse every answer, stream and error the router
//! gives (text, a stream, a tool round trip, a streamed tool call, an image, count_tokens,
//! the model list, a refused paid model, a rate limit, a stream that fails after it began),
//! from free models only.
//!
//! Needs python3 with `anthropic`, and node with the pinned `@anthropic-ai/sdk` in
//! `$CLAUDE_CODE_DIR/node_modules`, so they are ignored by default; `cargo xtask ci`
//! installs both and runs them.

use crate::support::{TOOL_MODELS, TestServer, VISION_MODEL, start};
use fake_upstream::Behaviour;
use serde_json::Value;
use std::process::Command;

/// Rate-limited in these tests; asked for by name, its 429 reaches the client.
const LIMITED_MODEL: &str = "z-ai/glm-4.5-air:free";

const PYTHON: &str = r#"
import json, sys, anthropic
c = anthropic.Anthropic(base_url=sys.argv[1], api_key="client-key-not-checked", max_retries=0)
out = {}
hi = [{"role": "user", "content": "Say hello"}]
m = c.messages.create(model="claude-sonnet-4-5", max_tokens=256, messages=hi)
out["text"] = {"id": m.id, "model": m.model, "text": m.content[0].text, "stop": m.stop_reason, "in": m.usage.input_tokens}
with c.messages.stream(model="openrouter/free", max_tokens=256, messages=hi) as s:
    streamed = "".join(s.text_stream)
    final = s.get_final_message()
out["stream"] = {"text": streamed, "final": final.content[0].text, "model": final.model, "stop": final.stop_reason}
tools = [{"name": "get_weather", "description": "Weather of a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
ask = [{"role": "user", "content": "Weather in Paris?"}]
t = c.messages.create(model="openrouter/free", max_tokens=256, tools=tools, messages=ask)
tu = next(b for b in t.content if b.type == "tool_use")
out["tool"] = {"name": tu.name, "input": tu.input, "id": tu.id, "stop": t.stop_reason, "model": t.model}
t2 = c.messages.create(model="openrouter/free", max_tokens=256, tools=tools, messages=ask + [
    {"role": "assistant", "content": [b.model_dump() for b in t.content]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tu.id, "content": "21C"}]}])
out["tool_answer"] = t2.content[0].text
with c.messages.stream(model="openrouter/free", max_tokens=256, tools=tools, messages=ask) as s:
    fm = s.get_final_message()
stu = next(b for b in fm.content if b.type == "tool_use")
out["stream_tool"] = {"name": stu.name, "input": stu.input, "stop": fm.stop_reason}
img = c.messages.create(model="openrouter/free", max_tokens=64, messages=[{"role": "user", "content": [
    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
    {"type": "text", "text": "What is this?"}]}])
out["image_model"] = img.model
out["count"] = c.messages.count_tokens(model="openrouter/free", messages=hi).input_tokens
out["models"] = [x.id for x in c.models.list().data]
for name, model in [("paid", "openai/gpt-4o-mini"), ("limited", sys.argv[2])]:
    try:
        c.messages.create(model=model, max_tokens=16, messages=hi)
        out[name] = "answered"
    except anthropic.APIStatusError as e:
        out[name] = {"class": type(e).__name__, "status": e.status_code, "type": e.body["error"]["type"]}
print(json.dumps(out))
"#;

const NODE: &str = r#"
const sdk = require('@anthropic-ai/sdk');
const Anthropic = sdk.default ?? sdk.Anthropic ?? sdk;
(async () => {
  const c = new Anthropic({ baseURL: process.argv[1], apiKey: 'client-key-not-checked', maxRetries: 0 });
  const out = {};
  const hi = [{ role: 'user', content: 'Say hello' }];
  const m = await c.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 256, messages: hi });
  out.text = { id: m.id, model: m.model, text: m.content[0].text, stop: m.stop_reason, in: m.usage.input_tokens };
  const s = c.messages.stream({ model: 'openrouter/free', max_tokens: 256, messages: hi });
  let streamed = '';
  s.on('text', (t) => { streamed += t; });
  const final = await s.finalMessage();
  out.stream = { text: streamed, final: final.content[0].text, model: final.model, stop: final.stop_reason };
  const tools = [{ name: 'get_weather', description: 'Weather of a city',
    input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
  const ask = [{ role: 'user', content: 'Weather in Paris?' }];
  const t = await c.messages.create({ model: 'openrouter/free', max_tokens: 256, tools, messages: ask });
  const tu = t.content.find((b) => b.type === 'tool_use');
  out.tool = { name: tu.name, input: tu.input, id: tu.id, stop: t.stop_reason, model: t.model };
  const t2 = await c.messages.create({ model: 'openrouter/free', max_tokens: 256, tools, messages: [...ask,
    { role: 'assistant', content: t.content },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: tu.id, content: '21C' }] }] });
  out.tool_answer = t2.content[0].text;
  const fm = await c.messages.stream({ model: 'openrouter/free', max_tokens: 256, tools, messages: ask }).finalMessage();
  const stu = fm.content.find((b) => b.type === 'tool_use');
  out.stream_tool = { name: stu.name, input: stu.input, stop: fm.stop_reason };
  const img = await c.messages.create({ model: 'openrouter/free', max_tokens: 64, messages: [{ role: 'user', content: [
    { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
    { type: 'text', text: 'What is this?' }] }] });
  out.image_model = img.model;
  out.count = (await c.messages.countTokens({ model: 'openrouter/free', messages: hi })).input_tokens;
  const models = [];
  for await (const x of c.models.list()) models.push(x.id);
  out.models = models;
  for (const [name, model] of [['paid', 'openai/gpt-4o-mini'], ['limited', process.argv[2]]]) {
    try {
      await c.messages.create({ model, max_tokens: 16, messages: hi });
      out[name] = 'answered';
    } catch (e) {
      out[name] = { class: e.constructor.name, status: e.status, type: e.error?.error?.type };
    }
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
"#;

/// A stream that fails after it began: the SDK raises the `error` event's error.
const PYTHON_STREAM_ERROR: &str = r#"
import json, sys, anthropic
c = anthropic.Anthropic(base_url=sys.argv[1], api_key="client-key-not-checked", max_retries=0)
try:
    with c.messages.stream(model="openrouter/free", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
        text = "".join(s.text_stream)
    out = {"completed": text}
except anthropic.APIStatusError as e:
    out = {"class": type(e).__name__, "type": e.body["error"]["type"], "message": e.body["error"]["message"]}
print(json.dumps(out))
"#;

const NODE_STREAM_ERROR: &str = r#"
const sdk = require('@anthropic-ai/sdk');
const Anthropic = sdk.default ?? sdk.Anthropic ?? sdk;
(async () => {
  const c = new Anthropic({ baseURL: process.argv[1], apiKey: 'client-key-not-checked', maxRetries: 0 });
  let out;
  try {
    const m = await c.messages.stream({ model: 'openrouter/free', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] }).finalMessage();
    out = { completed: m.content };
  } catch (e) {
    out = { class: e.constructor.name, type: e.error?.error?.type, message: e.error?.error?.message };
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
"#;

/// What either SDK saw of a stream that failed after it began.
fn check_stream_error(out: &Value, class: &str) {
    assert_eq!(out["class"], class, "{out}");
    assert_eq!(
        (out["type"].as_str(), out["message"].as_str()),
        (Some("api_error"), Some("Provider disconnected")),
        "{out}"
    );
}

/// A server whose tool models answer as an agent would, and whose [`LIMITED_MODEL`]
/// is rate-limited.
async fn server() -> TestServer {
    let s = start().await;
    s.upstream.set_default_behaviour(Behaviour::ToolRoundTrip {
        calls: vec![("get_weather".into(), "{\"city\":\"Paris\"}".into())],
    });
    s.upstream.set_behaviour(LIMITED_MODEL, Behaviour::RateLimited { retry_after: Some(30) });
    s
}

/// What either SDK's script saw, checked the same way.
fn check(s: &TestServer, out: &Value) {
    let free: Vec<String> =
        s.server.state.router.catalog().free_models(s.server.state.router.now()).map(|m| m.id.to_string()).collect();
    let is_free = |v: &Value| free.iter().any(|f| Some(f.as_str()) == v.as_str());
    let text = &out["text"];
    assert!(is_free(&text["model"]), "{out}");
    assert!(text["id"].as_str().is_some_and(|id| id.starts_with("msg_")), "{out}");
    assert_eq!(text["text"], format!("hello from {}", text["model"].as_str().unwrap_or_default()));
    assert_eq!((text["stop"].as_str(), text["in"].as_u64()), (Some("end_turn"), Some(12)), "{out}");
    let stream = &out["stream"];
    assert!(is_free(&stream["model"]), "{out}");
    assert_eq!(stream["text"], format!("hello from {}", stream["model"].as_str().unwrap_or_default()));
    assert_eq!((&stream["final"], stream["stop"].as_str()), (&stream["text"], Some("end_turn")), "{out}");
    let tool = &out["tool"];
    assert!(TOOL_MODELS.iter().any(|m| tool["model"] == *m), "{out}");
    assert_eq!((tool["name"].as_str(), tool["stop"].as_str()), (Some("get_weather"), Some("tool_use")), "{out}");
    assert_eq!(tool["input"], serde_json::json!({"city": "Paris"}));
    assert!(tool["id"].as_str().is_some_and(|id| id.starts_with("toolu_")), "{out}");
    assert_eq!(out["tool_answer"], "tool said: 21C");
    assert_eq!(
        out["stream_tool"],
        serde_json::json!({"name": "get_weather", "input": {"city": "Paris"}, "stop": "tool_use"})
    );
    assert_eq!(out["image_model"], VISION_MODEL);
    assert!(out["count"].as_u64().is_some_and(|n| n > 0), "{out}");
    assert_eq!(out["models"][0], "openrouter/free");
    assert_eq!(out["paid"]["status"], 400, "{out}");
    assert_eq!(
        (out["paid"]["class"].as_str(), out["paid"]["type"].as_str()),
        (Some("BadRequestError"), Some("invalid_request_error"))
    );
    assert_eq!(out["limited"]["status"], 429, "{out}");
    assert_eq!(
        (out["limited"]["class"].as_str(), out["limited"]["type"].as_str()),
        (Some("RateLimitError"), Some("rate_limit_error"))
    );
    assert!(s.upstream.requests().iter().all(|r| r.model.ends_with(":free")), "only free models reached upstream");
}

async fn run(command: Command) -> Value {
    let output =
        tokio::task::spawn_blocking(move || crate::support::output_within(command, crate::support::CLIENT_TIMEOUT))
            .await
            .expect("join");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the client failed: {stderr}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("the script prints json ({e}): {stderr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3 with the anthropic package; `cargo xtask ci` installs it and runs this test"]
async fn the_official_python_anthropic_client_works_unchanged() {
    let s = server().await;
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(PYTHON)
        .arg(&s.base)
        .arg(LIMITED_MODEL)
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL");
    let out = run(cmd).await;
    check(&s, &out);
    s.upstream.set_default_behaviour(Behaviour::MidStreamError);
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(PYTHON_STREAM_ERROR)
        .arg(&s.base)
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL");
    check_stream_error(&run(cmd).await, "APIStatusError");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs node and the pinned @anthropic-ai/sdk in $CLAUDE_CODE_DIR/node_modules (`cargo xtask ci` installs it)"]
async fn the_official_typescript_anthropic_sdk_works_unchanged() {
    let dir = std::env::var("CLAUDE_CODE_DIR")
        .expect("CLAUDE_CODE_DIR names a folder with `npm ci` done in tests/agents/claude-code");
    let s = server().await;
    let mut cmd = Command::new("node");
    cmd.arg("-e")
        .arg(NODE)
        .arg(&s.base)
        .arg(LIMITED_MODEL)
        .env("NODE_PATH", std::path::Path::new(&dir).join("node_modules"));
    cmd.env_remove("ANTHROPIC_API_KEY").env_remove("ANTHROPIC_BASE_URL");
    let out = run(cmd).await;
    check(&s, &out);
    s.upstream.set_default_behaviour(Behaviour::MidStreamError);
    let mut cmd = Command::new("node");
    cmd.arg("-e").arg(NODE_STREAM_ERROR).arg(&s.base).env("NODE_PATH", std::path::Path::new(&dir).join("node_modules"));
    cmd.env_remove("ANTHROPIC_API_KEY").env_remove("ANTHROPIC_BASE_URL");
    check_stream_error(&run(cmd).await, "APIError");
}
