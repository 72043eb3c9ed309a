//! The official `openai` SDKs' Responses clients, unchanged, against the router: Python
//! (`client.responses.create` and `client.responses.stream`, whose accumulator checks the
//! event sequence) and Node (`openai`, pinned in `tests/agents/codex`): text, streams,
//! a function-call round trip, structured output, errors, and a stream that fails after it
//! began (read to its `response.failed` by the stream helpers).
//!
//! They need python3 with `openai`, and node with the pinned packages in `$CODEX_DIR`, so
//! they are ignored by default; `cargo xtask ci` installs both and runs them.

use crate::support::{FREE_TEXT_MODELS, STRUCTURED_MODEL, TestServer, start};
use fake_upstream::Behaviour;
use serde_json::Value;

const PYTHON: &str = r#"
import json, sys
import openai
client = openai.OpenAI(base_url=sys.argv[1], api_key="client-key-not-checked")
out = {}
r = client.responses.create(model="openrouter/free", input="Say hello", store=False)
out["model"], out["text"], out["status"] = r.model, r.output_text, r.status
with client.responses.stream(model="openrouter/free", input="Count to three") as stream:
    out["stream_kinds"] = [e.type for e in stream]
    final = stream.get_final_response()
out["stream_text"], out["stream_model"] = final.output_text, final.model
tools = [{"type": "function", "name": "get_weather", "description": "The weather in a city", "strict": True,
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                         "required": ["city"], "additionalProperties": False}},
         {"type": "web_search"}]
question = [{"role": "user", "content": "Weather in Paris?"}]
with client.responses.stream(model="openrouter/free", input=question, tools=tools) as stream:
    for _ in stream:
        pass
    first = stream.get_final_response()
call = next(o for o in first.output if o.type == "function_call")
out["call"] = {"name": call.name, "arguments": call.arguments, "parsed": call.parsed_arguments}
second = client.responses.create(model="openrouter/free", tools=tools,
    input=question + first.output + [{"type": "function_call_output", "call_id": call.call_id, "output": "21C"}])
out["after_tool"] = second.output_text
person = {"type": "json_schema", "name": "person", "strict": True,
          "schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
                     "additionalProperties": False}}
out["structured_model"] = client.responses.create(model="openrouter/free", input="Invent a person.",
                                                  text={"format": person}).model
for name, kwargs in [("store", {"store": True}), ("paid", {"model": "openai/gpt-4o"})]:
    try:
        client.responses.create(**{"model": "openrouter/free", "input": "hi", **kwargs})
        out[name] = "answered"
    except openai.APIStatusError as e:
        out[name] = [type(e).__name__, e.status_code, e.body.get("code") if isinstance(e.body, dict) else None]
print(json.dumps(out))
"#;

/// A stream that fails after it began, read to its end by the stream helper.
const PYTHON_FAILED: &str = r#"
import json, sys
import openai
client = openai.OpenAI(base_url=sys.argv[1], api_key="client-key-not-checked")
kinds = []
try:
    with client.responses.stream(model="openrouter/free", input="hi") as stream:
        for e in stream:
            kinds.append(e.type)
except Exception as e:
    kinds.append("raised " + type(e).__name__)
print(json.dumps({"failed_kinds": kinds}))
"#;

const NODE: &str = r#"
import OpenAI from "openai";
const client = new OpenAI({ baseURL: process.argv[1], apiKey: "client-key-not-checked" });
const out = {};
const r = await client.responses.create({ model: "openrouter/free", input: "Say hello" });
Object.assign(out, { model: r.model, text: r.output_text, status: r.status });
const stream = client.responses.stream({ model: "openrouter/free", input: "Count to three" });
out.stream_kinds = [];
for await (const e of stream) out.stream_kinds.push(e.type);
const final = await stream.finalResponse();
// The stream's final response carries no `output_text` convenience; its parts do.
const text = (resp) => resp.output.flatMap((o) => o.content ?? []).map((c) => c.text ?? "").join("");
Object.assign(out, { stream_text: text(final), stream_model: final.model });
const tools = [{ type: "function", name: "get_weather", description: "The weather in a city", strict: true,
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false } },
  { type: "web_search" }];
const question = [{ role: "user", content: "Weather in Paris?" }];
const toolStream = client.responses.stream({ model: "openrouter/free", input: question, tools });
for await (const _ of toolStream) {}
const first = await toolStream.finalResponse();
const call = first.output.find((o) => o.type === "function_call");
out.call = { name: call.name, arguments: call.arguments, parsed: call.parsed_arguments ?? null };
const second = await client.responses.create({ model: "openrouter/free", tools,
  input: [...question, ...first.output, { type: "function_call_output", call_id: call.call_id, output: "21C" }] });
out.after_tool = second.output_text;
const person = { type: "json_schema", name: "person", strict: true,
  schema: { type: "object", properties: { name: { type: "string" } }, required: ["name"], additionalProperties: false } };
out.structured_model = (await client.responses.create({ model: "openrouter/free", input: "Invent a person.",
  text: { format: person } })).model;
for (const [name, extra] of [["store", { store: true }], ["paid", { model: "openai/gpt-4o" }]]) {
  try {
    await client.responses.create({ model: "openrouter/free", input: "hi", ...extra });
    out[name] = "answered";
  } catch (e) {
    out[name] = [e.constructor.name, e.status, e.code ?? null];
  }
}
console.log(JSON.stringify(out));
"#;

const NODE_FAILED: &str = r#"
import OpenAI from "openai";
const client = new OpenAI({ baseURL: process.argv[1], apiKey: "client-key-not-checked" });
const kinds = [];
try {
  const stream = client.responses.stream({ model: "openrouter/free", input: "hi" });
  for await (const e of stream) kinds.push(e.type);
} catch (e) {
  kinds.push(`raised ${e.constructor.name}`);
}
console.log(JSON.stringify({ failed_kinds: kinds }));
"#;

/// Runs `program` with `script` (its flag first) and the router's base URL; returns what
/// it printed.
async fn run(program: &'static str, flags: &[&str], script: &'static str, base: &str, dir: Option<&str>) -> Value {
    let mut cmd = std::process::Command::new(program);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    cmd.args(flags).arg(script).arg(base);
    let output =
        tokio::task::spawn_blocking(move || crate::support::output_within(cmd, crate::support::CLIENT_TIMEOUT))
            .await
            .expect("join");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{program} failed: {stderr}");
    serde_json::from_slice(&output.stdout).expect("the script prints JSON")
}

/// Runs the client's main script against a fake that plays a tool round trip, then its
/// failed-stream script against one whose streams break after they began; checks what
/// the SDK made of each.
async fn check(s: &TestServer, program: &'static str, flags: &[&str], scripts: [&'static str; 2], dir: Option<&str>) {
    let base = s.url("/v1");
    s.upstream.set_default_behaviour(Behaviour::ToolRoundTrip {
        calls: vec![("get_weather".into(), "{\"city\":\"Paris\"}".into())],
    });
    let out = run(program, flags, scripts[0], &base, dir).await;
    let model = out["model"].as_str().expect("model");
    assert!(FREE_TEXT_MODELS.contains(&model), "{out}");
    assert_eq!(
        (out["text"].as_str(), out["status"].as_str()),
        (Some(format!("hello from {model}").as_str()), Some("completed"))
    );
    let kinds: Vec<&str> = out["stream_kinds"].as_array().expect("kinds").iter().filter_map(Value::as_str).collect();
    assert_eq!(kinds.first(), Some(&"response.created"), "{out}");
    assert_eq!(kinds.last(), Some(&"response.completed"), "{out}");
    assert!(kinds.contains(&"response.output_text.delta"), "{out}");
    let stream_model = out["stream_model"].as_str().expect("stream model");
    assert_eq!(out["stream_text"], format!("hello from {stream_model}"));
    assert_eq!(out["call"]["name"], "get_weather");
    assert_eq!(out["call"]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(out["after_tool"], "tool said: 21C");
    assert_eq!(out["structured_model"], STRUCTURED_MODEL);
    assert_eq!(out["store"][1], 400, "store: true is refused: {out}");
    assert_eq!(out["store"][2], "stateless", "{out}");
    assert_eq!(out["paid"][1], 400, "a paid model is refused: {out}");
    assert!(s.upstream.requests().iter().all(|r| r.model.ends_with(":free")), "only free models reached upstream");

    s.upstream.set_default_behaviour(Behaviour::MidStreamError);
    let out = run(program, flags, scripts[1], &base, dir).await;
    let failed: Vec<&str> = out["failed_kinds"].as_array().expect("kinds").iter().filter_map(Value::as_str).collect();
    assert_eq!(failed.first(), Some(&"response.created"), "{out}");
    assert_eq!(failed.last(), Some(&"response.failed"), "the helper reads a failed stream to its end: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3 with the openai package; `cargo xtask ci` installs it and runs this test"]
async fn the_official_python_sdk_speaks_responses_through_the_router() {
    let s = start().await;
    check(&s, "python3", &["-c"], [PYTHON, PYTHON_FAILED], None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs node and the pinned `openai` in $CODEX_DIR/node_modules (`cargo xtask ci` installs it)"]
async fn the_official_node_sdk_speaks_responses_through_the_router() {
    let dir = std::env::var("CODEX_DIR").expect("CODEX_DIR names a folder with `npm ci` done in tests/agents/codex");
    let s = start().await;
    check(&s, "node", &["--input-type=module", "-e"], [NODE, NODE_FAILED], Some(&dir)).await;
}
