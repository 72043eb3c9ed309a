//! `POST /v1/messages` over loopback against the fake upstream: Anthropic's Messages API
//! as Claude Code and the Anthropic SDKs speak it, answered by free models only: whole
//! answers and event streams, a tool round trip, an image, Claude ids served from the
//! free pool, count_tokens, the Anthropic model list, `x-api-key`, and errors in
//! Anthropic's shape.

use crate::support::{FREE_TEXT_MODELS, PAID_MODEL, Reply, TestServer, VISION_MODEL, start, start_with};
use fake_upstream::{Behaviour, FakeModel, FakeUpstream, default_models, models_json};
use serde_json::{Value, json};

const PATHS: [&str; 2] = ["/v1/messages?beta=true", "/api/v1/messages"];
/// The headers Claude Code and the SDKs send.
const ANTHROPIC_HEADERS: [(&str, &str); 2] =
    [("anthropic-version", "2023-06-01"), ("anthropic-beta", "claude-code-20250219")];
/// A free model that has tools and reasoning, as Claude Code's requests need.
pub(crate) const AGENT_MODEL: &str = "qwen/qwen3-235b-a22b:free";

async fn post(s: &TestServer, body: &Value) -> Reply {
    s.post(PATHS[0], &body.to_string(), &ANTHROPIC_HEADERS).await
}

/// Asserts an error in Anthropic's shape with `status` and `kind`, whose message
/// contains `needle`.
#[track_caller]
fn check(reply: &Reply, status: u16, kind: &str, needle: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert!(reply.header("content-type").is_some_and(|c| c.starts_with("application/json")), "{reply:?}");
    let body = reply.json();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "`{needle}` not in `{message}`");
}

/// The events of an Anthropic stream, each checked against its `event:` line.
fn events(reply: &Reply) -> Vec<Value> {
    reply
        .text
        .split_terminator("\n\n")
        .map(|block| {
            let mut lines = block.lines();
            let kind = lines.next().and_then(|l| l.strip_prefix("event: ")).expect("an event line");
            let data = lines.next().and_then(|l| l.strip_prefix("data: ")).expect("a data line");
            let v: Value = serde_json::from_str(data).expect("json");
            assert_eq!(v["type"], kind);
            v
        })
        .collect()
}

fn hello() -> Value {
    json!({"model": "openrouter/free", "max_tokens": 256, "system": "Be terse.",
        "messages": [{"role": "user", "content": "Say hello"}]})
}

/// A fake upstream whose catalog also has [`AGENT_MODEL`].
pub(crate) async fn agent_upstream() -> FakeUpstream {
    let upstream = FakeUpstream::start().await;
    let mut models = default_models();
    models.push(FakeModel::free(AGENT_MODEL).context(262_144).tools().reasoning());
    upstream.set_models(serde_json::to_vec(&models_json(&models)).expect("json"));
    upstream
}

#[tokio::test]
async fn a_text_answer_is_a_message_from_a_free_model() {
    let s = start().await;
    for path in PATHS {
        let r = s.post(path, &hello().to_string(), &ANTHROPIC_HEADERS).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let body = r.json();
        let model = body["model"].as_str().expect("model");
        assert!(FREE_TEXT_MODELS.contains(&model), "{model}");
        assert_eq!(r.header("x-router-model"), Some(model));
        assert!(body["id"].as_str().is_some_and(|id| id.starts_with("msg_")), "{body}");
        assert_eq!((body["type"].as_str(), body["role"].as_str()), (Some("message"), Some("assistant")));
        assert_eq!(body["content"], json!([{"type": "text", "text": format!("hello from {model}")}]));
        assert_eq!(body["stop_reason"], "end_turn");
        assert_eq!(body["usage"]["input_tokens"], 12);
        assert!(body["usage"]["output_tokens"].as_u64().is_some_and(|n| n > 0), "{body}");
    }
    let upstream = s.upstream.requests();
    assert_eq!(upstream.len(), 2);
    assert_eq!(
        upstream[0].body["messages"],
        json!([{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Say hello"}])
    );
    assert_eq!(upstream[0].body["max_tokens"], 256);
    let metrics = s.get("/metrics").await.text;
    assert!(metrics.contains("router_requests_total{endpoint=\"messages\",status=\"200\"} 2"), "{metrics}");
}

#[tokio::test]
async fn a_claude_id_is_served_by_a_free_model_and_says_so() {
    let s = start().await;
    let mut body = hello();
    body["model"] = json!("claude-sonnet-4-5-20250929");
    let r = post(&s, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-router-served-as"), Some("openrouter/free"));
    let model = r.json()["model"].as_str().expect("model").to_owned();
    assert!(FREE_TEXT_MODELS.contains(&model.as_str()), "{model}");
    assert!(s.upstream.requests().iter().all(|q| q.model.ends_with(":free")), "only free models reached upstream");
}

#[tokio::test]
async fn a_stream_is_anthropics_event_sequence() {
    let s = start().await;
    let mut body = hello();
    body["stream"] = json!(true);
    let r = post(&s, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let events = events(&r);
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(&kinds[..3], ["message_start", "ping", "content_block_start"], "{}", r.text);
    assert_eq!(&kinds[kinds.len() - 3..], ["content_block_stop", "message_delta", "message_stop"], "{}", r.text);
    let model = events[0]["message"]["model"].as_str().expect("model");
    assert!(FREE_TEXT_MODELS.contains(&model), "{model}");
    let text: String = events.iter().filter_map(|e| e["delta"]["text"].as_str()).collect();
    assert_eq!(text, format!("hello from {model}"));
    assert_eq!(events[kinds.len() - 2]["delta"]["stop_reason"], "end_turn");
    let sent = &s.upstream.requests()[0].body;
    assert_eq!((sent["stream"].clone(), sent["stream_options"]["include_usage"].clone()), (json!(true), json!(true)));
}

/// Claude Code's request shape: system blocks with cache control, tools beside a server
/// tool, adaptive thinking, its JSON `user_id` with a session id.
fn claude_code_body(messages: Value, stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "stream": stream,
        "thinking": {"type": "adaptive"},
        "metadata": {"user_id": "{\"device_id\":\"dev\",\"account_uuid\":\"\",\"session_id\":\"5e3c-session\"}"},
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "tools": [
            {"name": "Bash", "description": "Runs a command", "input_schema": {"type": "object",
                "properties": {"command": {"type": "string"}}, "required": ["command"]}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 8}
        ],
        "messages": messages,
    })
}

#[tokio::test]
async fn a_tool_round_trip_keeps_the_tool_use_id() {
    let s = start_with(agent_upstream().await, |_| {}).await;
    s.upstream.set_default_behaviour(Behaviour::ToolRoundTrip {
        calls: vec![("Bash".into(), "{\"command\":\"echo hi\"}".into())],
    });
    for stream in [false, true] {
        let ask = json!([{"role": "user", "content": [{"type": "text", "text": "run echo hi"}]}]);
        let first = post(&s, &claude_code_body(ask.clone(), stream)).await;
        assert_eq!(first.status, 200, "{}", first.text);
        assert_eq!(first.header("x-router-dropped-tools"), Some("web_search"));
        assert_eq!(first.header("x-router-model"), Some(AGENT_MODEL));
        let (call, stop) = if stream {
            let events = events(&first);
            let start = events.iter().find(|e| e["content_block"]["type"] == "tool_use").expect("a tool_use block");
            let input: String = events.iter().filter_map(|e| e["delta"]["partial_json"].as_str()).collect();
            let mut call = start["content_block"].clone();
            call["input"] = serde_json::from_str(&input).expect("the input is json");
            let stop = events.iter().find_map(|e| e["delta"]["stop_reason"].as_str()).expect("stop").to_owned();
            (call, stop)
        } else {
            let body = first.json();
            (body["content"][0].clone(), body["stop_reason"].as_str().expect("stop").to_owned())
        };
        assert_eq!(stop, "tool_use");
        assert_eq!((call["name"].as_str(), &call["input"]), (Some("Bash"), &json!({"command": "echo hi"})));
        let id = call["id"].as_str().expect("id").to_owned();
        assert!(id.starts_with("toolu_"), "{id}");
        let mut history = ask.as_array().expect("array").clone();
        history.push(json!({"role": "assistant", "content": [call]}));
        history.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": id, "content": [{"type": "text", "text": "hi"}]},
            {"type": "text", "text": "<system-reminder>go on</system-reminder>"}]}));
        let second = post(&s, &claude_code_body(Value::Array(history), false)).await;
        assert_eq!(second.status, 200, "{}", second.text);
        assert_eq!(second.json()["content"][0]["text"], "tool said: hi");
        let sent = s.upstream.requests().last().expect("a request").body.clone();
        assert_eq!(sent["messages"][2]["tool_calls"][0]["id"], id.as_str());
        assert_eq!(sent["messages"][3], json!({"role": "tool", "tool_call_id": id, "content": "hi"}));
        assert_eq!(sent["session_id"], "5e3c-session");
        assert_eq!(sent["reasoning"], json!({"enabled": true}));
        assert_eq!(sent["tools"].as_array().map(Vec::len), Some(1), "the server tool is not forwarded: {sent}");
    }
    assert!(s.upstream.requests().iter().all(|q| q.model == AGENT_MODEL));
    // The session key keeps the conversation on its model.
    assert_eq!(
        post(&s, &claude_code_body(json!([{"role": "user", "content": "x"}]), false)).await.header("x-router-pick"),
        Some("sticky")
    );
}

#[tokio::test]
async fn an_image_goes_to_a_vision_model() {
    let s = start().await;
    let body = json!({"model": "openrouter/free", "max_tokens": 100, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "text", "text": "What is this?"}]}]});
    let r = post(&s, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["model"], VISION_MODEL);
    let sent = &s.upstream.requests()[0].body;
    assert_eq!(sent["messages"][0]["content"][0]["image_url"]["url"], "data:image/png;base64,iVBORw0KGgo=");
}

#[tokio::test]
async fn errors_come_in_anthropics_shape() {
    let s = start().await;
    let mut paid = hello();
    paid["model"] = json!(PAID_MODEL);
    check(&post(&s, &paid).await, 400, "invalid_request_error", "paid");
    check(&s.post(PATHS[0], "{not json", &ANTHROPIC_HEADERS).await, 400, "invalid_request_error", "json");
    let mut nameless = hello();
    nameless["tools"] = json!([{"name": "", "input_schema": {"type": "object"}}]);
    check(&post(&s, &nameless).await, 400, "invalid_request_error", "tools[0].name");
    let mut malformed = hello();
    malformed["messages"] = json!([{"role": "user", "content": [{"type": "image", "source": {}}]}]);
    check(&post(&s, &malformed).await, 400, "invalid_request_error", "messages[0].content[0].source");
    let wrong_type = Reply::read(
        s.client.post(s.url(PATHS[0])).header("content-type", "text/plain").body("hi").send().await.expect("sent"),
    )
    .await;
    check(&wrong_type, 415, "invalid_request_error", "content-type");
    let doubled = s.post("/v1/v1/messages?beta=true", &hello().to_string(), &ANTHROPIC_HEADERS).await;
    check(&doubled, 404, "not_found_error", "without /v1");
    check(&s.get("/v1/messages").await, 405, "invalid_request_error", "GET");
    let too_big = Reply::read(
        s.client
            .post(s.url(PATHS[0]))
            .header("content-type", "application/json")
            .body(vec![b' '; s.config.max_body_size + 1])
            .send()
            .await
            .expect("sent"),
    )
    .await;
    check(&too_big, 413, "request_too_large", "limit");
    assert_eq!(s.upstream.total_calls(), 0, "nothing went upstream");
    s.upstream.set_default_behaviour(Behaviour::RateLimited { retry_after: Some(30) });
    let limited = post(&s, &hello()).await;
    check(&limited, 429, "rate_limit_error", "");
    assert!(limited.header("retry-after").is_some(), "{limited:?}");
    assert!(s.upstream.requests().iter().all(|r| r.model.ends_with(":free")), "only free models reached upstream");
}

#[tokio::test]
async fn an_error_after_the_stream_began_is_an_error_event() {
    let s = start().await;
    s.upstream.set_default_behaviour(Behaviour::MidStreamError);
    let mut body = hello();
    body["stream"] = json!(true);
    let r = post(&s, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let events = events(&r);
    let last = events.last().expect("events");
    assert_eq!(last["type"], "error", "{}", r.text);
    assert_eq!(last["error"]["message"], "Provider disconnected");
    assert_eq!(last["error"]["type"], "api_error");
    assert!(events.iter().all(|e| e["type"] != "message_stop"));
}

#[tokio::test]
async fn count_tokens_models_and_x_api_key() {
    let s = start_with(FakeUpstream::start().await, |c| c.api_keys = vec![router_core::Secret::new("ck-one")]).await;
    let key = [("x-api-key", "ck-one"), ANTHROPIC_HEADERS[0]];
    let send = |path: &str, body: Option<Value>, headers: &[(&str, &str)]| {
        let mut req = match &body {
            Some(b) => s.client.post(s.url(path)).header("content-type", "application/json").body(b.to_string()),
            None => s.client.get(s.url(path)),
        };
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        async move { Reply::read(req.send().await.expect("sent")).await }
    };
    let counted = send("/v1/messages/count_tokens", Some(hello()), &key).await;
    assert_eq!(counted.status, 200, "{}", counted.text);
    let n = counted.json()["input_tokens"].as_u64().expect("input_tokens");
    assert!(n > 0 && n < 100, "{n}");
    let models = send("/v1/models", None, &key).await;
    assert_eq!(models.status, 200, "{}", models.text);
    let list = models.json();
    assert_eq!(list["has_more"], false);
    assert_eq!(list["first_id"], "openrouter/free");
    for m in list["data"].as_array().expect("data") {
        assert_eq!(m["type"], "model");
        assert!(m["display_name"].is_string() && m["created_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{m}");
    }
    // Without `anthropic-version`, OpenRouter's shape.
    assert!(
        send("/v1/models", None, &[("authorization", "Bearer ck-one")]).await.json()["data"][0]["pricing"].is_object()
    );
    check(&send("/v1/messages", Some(hello()), &[("x-api-key", "wrong")]).await, 401, "authentication_error", "key");
    assert_eq!(send("/v1/messages", Some(hello()), &key).await.status, 200);
}

#[tokio::test]
async fn the_settings_refuse_claude_ids_and_server_tools() {
    let s = start_with(FakeUpstream::start().await, |c| {
        c.messages_serve_claude_ids = false;
        c.messages_refuse_server_tools = true;
    })
    .await;
    let mut claude = hello();
    claude["model"] = json!("claude-opus-4-1");
    check(&post(&s, &claude).await, 404, "not_found_error", "messages_serve_claude_ids");
    let mut search = hello();
    search["tools"] = json!([{"type": "web_search_20250305", "name": "web_search"}]);
    check(&post(&s, &search).await, 400, "invalid_request_error", "messages_refuse_server_tools");
    assert_eq!(s.upstream.total_calls(), 0, "nothing went upstream");
}

#[tokio::test]
async fn a_whole_answer_to_a_streamed_request_still_comes_as_events() {
    let s = start().await;
    let whole = json!({"id": "gen-7", "model": "x", "choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": "all at once"}}], "usage": {"prompt_tokens": 3, "completion_tokens": 3}});
    s.upstream.set_default_behaviour(Behaviour::Status { status: 200, body: whole.to_string() });
    let mut body = hello();
    body["stream"] = json!(true);
    let r = post(&s, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let events = events(&r);
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"message_start"));
    assert_eq!(kinds.last(), Some(&"message_stop"));
    let text: String = events.iter().filter_map(|e| e["delta"]["text"].as_str()).collect();
    assert_eq!(text, "all at once");
}
