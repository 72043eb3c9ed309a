//! `POST /v1/responses` over loopback against the fake upstream: whole answers and event
//! streams from free models, Codex CLI's request shape with its unserved tools dropped,
//! a function-call round trip, structured output, the stateless refusal and errors in
//! OpenAI's shape.

use crate::support::{
    FREE_TEXT_MODELS, PAID_MODEL, Reply, STRUCTURED_MODEL, TOOL_MODELS, TestServer, start, start_with,
};
use fake_upstream::Behaviour;
use fake_upstream::FakeUpstream;
use serde_json::{Value, json};

const PATHS: [&str; 2] = ["/v1/responses", "/api/v1/responses"];

async fn post(s: &TestServer, body: &Value) -> Reply {
    s.post(PATHS[0], &body.to_string(), &[]).await
}

/// Asserts an error in OpenAI's shape with `status`, whose message contains `needle`;
/// returns the error object.
#[track_caller]
fn check(reply: &Reply, status: u16, needle: &str) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert!(reply.header("content-type").is_some_and(|c| c.starts_with("application/json")), "{reply:?}");
    let error = reply.json()["error"].clone();
    for key in ["message", "type", "param", "code"] {
        assert!(error.get(key).is_some(), "no `{key}` in {error}");
    }
    assert!(error["type"].is_string(), "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "`{needle}` not in `{message}`");
    error
}

/// The `data:` payloads of a Responses event stream, each checked against its `event:`.
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

fn free(model: &str) -> bool {
    FREE_TEXT_MODELS.contains(&model)
}

#[tokio::test]
async fn a_text_answer_is_a_response_object_from_a_free_model() {
    let s = start().await;
    for path in PATHS {
        let r = s
            .post(path, &json!({"model": "openrouter/free", "input": "Say hello", "store": false}).to_string(), &[])
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let body = r.json();
        let model = body["model"].as_str().expect("model");
        assert!(free(model), "{model}");
        assert_eq!(r.header("x-router-model"), Some(model));
        assert!(body["id"].as_str().is_some_and(|id| id.starts_with("resp_")), "{body}");
        assert_eq!((body["object"].as_str(), body["status"].as_str()), (Some("response"), Some("completed")));
        assert_eq!(body["output"][0]["type"], "message");
        assert_eq!(body["output"][0]["content"][0]["text"], format!("hello from {model}"));
        assert_eq!(body["usage"]["input_tokens"], 12);
        assert_eq!(body["store"], false);
    }
    let metrics = s.get("/metrics").await.text;
    assert!(metrics.contains("router_requests_total{endpoint=\"responses\",status=\"200\"} 2"), "{metrics}");
    let upstream = s.upstream.requests();
    assert_eq!(upstream.len(), 2);
    assert_eq!(upstream[0].body["messages"], json!([{"role": "user", "content": "Say hello"}]));
}

#[tokio::test]
async fn a_stream_is_the_responses_event_sequence() {
    let s = start().await;
    let r = post(&s, &json!({"input": "Count to three", "stream": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let events = events(&r);
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"response.created"));
    assert_eq!(kinds.last(), Some(&"response.completed"));
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], i);
    }
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .filter_map(|e| e["delta"].as_str())
        .collect();
    let last = &events.last().expect("events")["response"];
    let model = last["model"].as_str().expect("model");
    assert!(free(model), "{model}");
    assert_eq!(text, format!("hello from {model}"));
    assert_eq!(last["output"][0]["content"][0]["text"], text);
    assert_eq!(s.upstream.requests()[0].body["stream"], true);
}

#[tokio::test]
async fn a_whole_answer_to_a_stream_request_still_comes_as_events() {
    let s = start().await;
    // This behaviour answers JSON whatever the request's `stream`.
    s.upstream.set_default_behaviour(Behaviour::OkLastRequest { reset: "1m".into() });
    let r = post(&s, &json!({"input": "hi", "stream": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let events = events(&r);
    assert_eq!(events.first().map(|e| &e["type"]), Some(&json!("response.created")));
    let last = events.last().expect("events");
    assert_eq!(last["type"], "response.completed");
    let model = last["response"]["model"].as_str().expect("model");
    assert_eq!(last["response"]["output"][0]["content"][0]["text"], format!("hello from {model}"));
}

/// Codex CLI's shape: developer and user items with `input_text` parts, function tools
/// beside hosted ones, a reasoning summary, `include`, `prompt_cache_key`.
fn codex_body() -> Value {
    json!({
        "model": "openrouter/free",
        "instructions": "You are a coding agent.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<permissions>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list the files"}]}
        ],
        "tools": [
            {"type": "function", "name": "exec_command", "description": "Runs a command", "strict": false,
             "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}},
            {"type": "web_search"},
            {"type": "namespace", "name": "mcp", "tools": []}
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "reasoning": {"summary": "auto"},
        "store": false,
        "stream": true,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "conversation-1"
    })
}

#[tokio::test]
async fn codex_requests_keep_function_tools_and_name_the_dropped_ones() {
    let s = start().await;
    s.upstream.set_default_behaviour(Behaviour::ToolRoundTrip {
        calls: vec![("exec_command".into(), "{\"cmd\":\"ls\"}".into())],
    });
    let r = s.post(PATHS[0], &codex_body().to_string(), &[("session-id", "conversation-1")]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-router-dropped-tools"), Some("web_search, namespace:mcp"));
    let model = r.header("x-router-model").expect("model").to_owned();
    assert!(TOOL_MODELS.contains(&model.as_str()), "{model} cannot call tools");
    let done = events(&r).into_iter().find(|e| e["type"] == "response.output_item.done").expect("an item");
    assert_eq!(done["item"]["type"], "function_call");
    assert_eq!(
        (done["item"]["name"].as_str(), done["item"]["arguments"].as_str()),
        (Some("exec_command"), Some("{\"cmd\":\"ls\"}"))
    );
    let sent = &s.upstream.requests()[0].body;
    let tools: Vec<&str> =
        sent["tools"].as_array().expect("tools").iter().filter_map(|t| t["function"]["name"].as_str()).collect();
    assert_eq!(tools, ["exec_command"], "only the function tool goes upstream: {sent}");
    for key in ["include", "store", "prompt_cache_key", "web_search_options", "plugins"] {
        assert!(sent.get(key).is_none(), "{key} forwarded: {sent}");
    }
    // The same conversation stays on its model (the session key).
    let again = s.post(PATHS[0], &codex_body().to_string(), &[("session-id", "conversation-1")]).await;
    assert_eq!(again.header("x-router-model"), Some(model.as_str()));
    assert_eq!(again.header("x-router-pick"), Some("sticky"));
}

#[tokio::test]
async fn the_refuse_setting_refuses_unserved_tools_instead_of_dropping_them() {
    let s = start_with(FakeUpstream::start().await, |c| c.responses_refuse_unserved_tools = true).await;
    let e = check(&post(&s, &codex_body()).await, 400, "web_search");
    assert_eq!((e["code"].as_str(), e["param"].as_str()), (Some("unsupported_tool"), Some("tools[1]")));
    assert_eq!(s.upstream.total_calls(), 0);
}

#[tokio::test]
async fn a_function_call_round_trip_keeps_the_call_id() {
    let s = start().await;
    s.upstream.set_default_behaviour(Behaviour::ToolRoundTrip {
        calls: vec![("get_weather".into(), "{\"city\":\"Paris\"}".into())],
    });
    let tools = json!([{"type": "function", "name": "get_weather", "parameters": {"type": "object",
        "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    let first = post(&s, &json!({"input": "Weather in Paris?", "tools": tools})).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let call = first.json()["output"][0].clone();
    assert_eq!((call["type"].as_str(), call["name"].as_str()), (Some("function_call"), Some("get_weather")));
    let call_id = call["call_id"].as_str().expect("call id").to_owned();
    let mut input = vec![json!({"role": "user", "content": "Weather in Paris?"})];
    input.push(call);
    input.push(json!({"type": "function_call_output", "call_id": call_id, "output": "21C and sunny"}));
    let second = post(&s, &json!({"input": input, "tools": tools})).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.json()["output"][0]["content"][0]["text"], "tool said: 21C and sunny");
    let sent = &s.upstream.requests()[1].body["messages"];
    assert_eq!(sent[1]["tool_calls"][0]["id"], call_id.as_str());
    assert_eq!(sent[2], json!({"role": "tool", "tool_call_id": call_id, "content": "21C and sunny"}));
}

#[tokio::test]
async fn structured_output_is_routed_to_a_model_that_has_it() {
    let s = start().await;
    let format = json!({"format": {"type": "json_schema", "name": "person", "strict": true,
        "schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}});
    let r = post(&s, &json!({"input": "Invent a person.", "text": format})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["model"], STRUCTURED_MODEL);
    assert_eq!(r.json()["text"], format);
    assert_eq!(s.upstream.requests()[0].body["response_format"]["type"], "json_schema");
}

#[tokio::test]
async fn the_router_is_stateless_and_says_so() {
    let s = start().await;
    let e = check(&post(&s, &json!({"input": "hi", "store": true})).await, 400, "stateless");
    assert_eq!(
        (e["param"].as_str(), e["code"].as_str(), e["type"].as_str()),
        (Some("store"), Some("stateless"), Some("invalid_request_error"))
    );
    let e = check(&post(&s, &json!({"input": "hi", "previous_response_id": "resp_1"})).await, 400, "stateless");
    assert_eq!(e["param"], "previous_response_id");
    assert_eq!(s.upstream.total_calls(), 0, "nothing went upstream");
}

#[tokio::test]
async fn errors_come_in_openai_shape() {
    let s = start().await;
    let e = check(&post(&s, &json!({"model": PAID_MODEL, "input": "hi"})).await, 400, "");
    assert!(e["code"].is_string(), "{e}");
    check(&s.post(PATHS[0], "{not json", &[]).await, 400, "JSON");
    check(
        &post(&s, &json!({"input": [{"type": "function_call_output", "call_id": "x", "output": "y"}]})).await,
        400,
        "x",
    );
    let wrong_type = Reply::read(
        s.client.post(s.url(PATHS[0])).header("content-type", "text/plain").body("hi").send().await.expect("sent"),
    )
    .await;
    check(&wrong_type, 415, "content-type");
    s.upstream.set_default_behaviour(Behaviour::RateLimited { retry_after: Some(30) });
    let limited = post(&s, &json!({"input": "hi"})).await;
    let e = check(&limited, 429, "");
    assert_eq!(e["type"], "rate_limit_error");
    assert!(s.upstream.requests().iter().all(|r| r.model.ends_with(":free")), "only free models reached upstream");
}

#[tokio::test]
async fn a_missing_client_key_is_refused_in_openai_shape() {
    let s =
        start_with(FakeUpstream::start().await, |c| c.api_keys = vec![router_core::Secret::new("router-key")]).await;
    let e = check(&post(&s, &json!({"input": "hi"})).await, 401, "client key");
    assert_eq!(e["type"], "authentication_error");
    let ok = s
        .client
        .post(s.url(PATHS[1]))
        .header("content-type", "application/json")
        .header("authorization", "Bearer router-key")
        .body(json!({"input": "hi"}).to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn an_error_after_the_stream_began_is_response_failed() {
    let s = start().await;
    s.upstream.set_default_behaviour(Behaviour::MidStreamError);
    let r = post(&s, &json!({"input": "hi", "stream": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let events = events(&r);
    let last = events.last().expect("events");
    assert_eq!(last["type"], "response.failed", "{}", r.text);
    assert_eq!(last["response"]["error"]["message"], "Provider disconnected");
    assert_eq!(events.iter().filter(|e| e["type"] == "response.completed").count(), 0);
}
