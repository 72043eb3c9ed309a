//! Whole chat answers as response objects: text, reasoning, calls, refusals, the
//! incomplete statuses and usage.

use crate::chat::read_answer;
use crate::responses::*;
use serde_json::{Map, Value, json};

fn meta() -> ResponseMeta {
    ResponseMeta { id: "resp_abc".into(), created_at: 1_700_000_000, model: "router/picked:free".into() }
}

/// The response object for the chat answer `body`, with the echo `{"metadata": {"k": "v"}}`.
fn check(body: Value) -> Value {
    let answer = read_answer(body.to_string().as_bytes()).expect("a readable answer");
    let mut echo = Map::new();
    echo.insert("metadata".into(), json!({"k": "v"}));
    answer_to_response(&answer, &meta(), &echo)
}

fn answer(message: Value, finish: &str) -> Value {
    json!({"id": "gen-1", "model": "qwen/qwen3-coder:free", "created": 5, "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": finish, "message": message}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16,
            "prompt_tokens_details": {"cached_tokens": 2}, "completion_tokens_details": {"reasoning_tokens": 1}}})
}

#[test]
fn a_text_answer_is_a_completed_response_with_one_message() {
    let r = check(answer(json!({"role": "assistant", "content": "hello", "reasoning": "think"}), "stop"));
    assert_eq!(r["id"], "resp_abc");
    assert_eq!((r["object"].as_str(), r["status"].as_str()), (Some("response"), Some("completed")));
    assert_eq!(r["created_at"], 1_700_000_000);
    assert_eq!(r["model"], "qwen/qwen3-coder:free", "the model that answered");
    assert_eq!(r["metadata"], json!({"k": "v"}));
    assert_eq!(
        r["output"],
        json!([
            {"type": "reasoning", "id": "rs_abc", "summary": [{"type": "summary_text", "text": "think"}]},
            {"type": "message", "id": "msg_abc", "status": "completed", "role": "assistant",
             "content": [{"type": "output_text", "text": "hello", "annotations": [], "logprobs": []}]}
        ])
    );
    assert_eq!(
        r["usage"],
        json!({"input_tokens": 12, "input_tokens_details": {"cached_tokens": 2}, "output_tokens": 4,
            "output_tokens_details": {"reasoning_tokens": 1}, "total_tokens": 16})
    );
    assert_eq!((r["error"].clone(), r["incomplete_details"].clone()), (Value::Null, Value::Null));
}

#[test]
fn tool_calls_are_function_call_items_with_their_call_ids() {
    let r = check(answer(
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
        ]}),
        "tool_calls",
    ));
    // The router's own call ids (the upstream's may repeat from answer to answer).
    let id = |upstream: &str, index| crate::responses::output::call_id(upstream, &meta(), index);
    assert_eq!(
        r["output"],
        json!([
            {"type": "function_call", "id": "fc_abc_0", "call_id": id("call_1", 0), "name": "get_weather",
             "arguments": "{\"city\":\"Paris\"}", "status": "completed"},
            {"type": "function_call", "id": "fc_abc_1", "call_id": id("", 1), "name": "get_time",
             "arguments": "{}", "status": "completed"}
        ])
    );
    assert_ne!(
        id("call_1", 0),
        crate::responses::output::call_id("call_1", &ResponseMeta { id: "resp_b".into(), ..meta() }, 0)
    );
    assert_eq!(r["status"], "completed");
}

#[test]
fn a_cut_answer_is_incomplete_with_its_reason() {
    let r = check(answer(json!({"role": "assistant", "content": "hel"}), "length"));
    assert_eq!(
        (r["status"].as_str(), &r["incomplete_details"]),
        (Some("incomplete"), &json!({"reason": "max_output_tokens"}))
    );
    let r = check(answer(json!({"role": "assistant", "content": "x"}), "content_filter"));
    assert_eq!(r["incomplete_details"], json!({"reason": "content_filter"}));
}

#[test]
fn a_refusal_is_a_refusal_part() {
    let r = check(answer(json!({"role": "assistant", "content": null, "refusal": "no"}), "stop"));
    assert_eq!(r["output"][0]["content"], json!([{"type": "refusal", "refusal": "no"}]));
}

#[test]
fn an_answer_without_model_or_usage_keeps_the_routed_model() {
    let r = check(
        json!({"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}]}),
    );
    assert_eq!(r["model"], "router/picked:free");
    assert_eq!(r["usage"], Value::Null);
}
