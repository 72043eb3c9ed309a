//! The request translation: Claude Code's shape, every block kind, the refusals, and
//! that an assistant turn survives the trip to chat and back.

use super::*;
use crate::anthropic::to_message;
use crate::chat::read_answer;
use crate::json_out::two_readings;
use proptest::prelude::*;
use serde_json::{Value, json};

fn chat(body: Value) -> Value {
    chat_with(body, &Options::default()).expect("translates")
}

fn chat_with(body: Value, options: &Options) -> Result<Value, TranslateError> {
    let t = to_chat(&serde_json::to_vec(&body).expect("json"), options)?;
    let (written, sent) = two_readings(&t.body, &t.members);
    assert_eq!(written, sent, "{}", String::from_utf8_lossy(&t.body));
    Ok(serde_json::from_slice(&t.body).expect("chat json"))
}

fn check_error(body: Value, options: &Options, expected: &str) {
    match chat_with(body, options) {
        Err(e) => assert!(e.to_string().contains(expected), "{e} does not say {expected}"),
        Ok(v) => panic!("expected an error, got {v}"),
    }
}

#[test]
fn claude_codes_request() {
    let body = json!({
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "stream": true,
        "thinking": {"type": "adaptive"},
        "metadata": {"user_id": "{\"device_id\":\"d\",\"session_id\":\"sess-1\"}"},
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "Be brief."}],
        "tools": [
            {"name": "Bash", "description": "Run a command", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "say hi", "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Running."},
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "echo hi"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "hi"}]},
                {"type": "text", "text": "go on"}]}
        ]
    });
    let t = to_chat(&serde_json::to_vec(&body).expect("json"), &Options::default()).expect("translates");
    assert!(t.served_as_free && t.stream);
    assert_eq!(t.dropped_tools, ["web_search"]);
    let v: Value = serde_json::from_slice(&t.body).expect("json");
    assert_eq!(
        v,
        json!({
            "model": "openrouter/free",
            "max_tokens": 32000,
            "stream": true,
            "stream_options": {"include_usage": true},
            "reasoning": {"enabled": true},
            "session_id": "sess-1",
            "tools": [{"type": "function", "function": {"name": "Bash", "description": "Run a command",
                "parameters": {"type": "object", "properties": {"command": {"type": "string"}}}}}],
            "tool_choice": "auto",
            "parallel_tool_calls": false,
            "messages": [
                {"role": "system", "content": "You are Claude Code.\n\nBe brief."},
                {"role": "user", "content": "say hi"},
                {"role": "assistant", "content": "Running.", "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "Bash", "arguments": "{\"command\":\"echo hi\"}"}}]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "hi"},
                {"role": "user", "content": "go on"}
            ]
        })
    );
}

#[test]
fn images_documents_and_errors_in_tool_results() {
    let v = chat(json!({"model": "openrouter/free", "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
        {"type": "document", "title": "a.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain"}},
        {"type": "text", "text": "what are these?"}]}]}));
    assert_eq!(
        v["messages"][0]["content"],
        json!([
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
            {"type": "text", "text": "plain"},
            {"type": "text", "text": "what are these?"}
        ])
    );
    let v = chat(json!({"model": "free", "messages": [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "is_error": true, "content": "boom"},
                                     {"type": "tool_result", "tool_use_id": "t9", "content": "stray"}]},
        {"role": "system", "content": "late system"}]}));
    assert_eq!(
        v["messages"],
        json!([
            {"role": "assistant", "content": null, "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "t1", "content": "Error: boom"},
            {"role": "user", "content": "Result of tool call t9: stray"},
            {"role": "system", "content": "late system"}
        ])
    );
}

#[test]
fn sampling_and_choices() {
    let v = chat(json!({"model": "m:free", "messages": [{"role": "user", "content": "x"}], "stop_sequences": ["END"],
        "temperature": 0.5, "top_p": 0.9, "top_k": 40, "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [{"name": "f", "input_schema": {"type": "object"}}], "tool_choice": {"type": "tool", "name": "f"},
        "unknown_field": {"anything": 1}}));
    assert_eq!(v["model"], "m:free");
    assert_eq!(v["stop"], json!(["END"]));
    assert_eq!((v["temperature"].clone(), v["top_p"].clone(), v["top_k"].clone()), (json!(0.5), json!(0.9), json!(40)));
    assert_eq!(v["reasoning"], json!({"max_tokens": 1024}));
    assert_eq!(v["tool_choice"], json!({"type": "function", "function": {"name": "f"}}));
    assert!(v.get("unknown_field").is_none() && v.get("stream").is_none());
    let any = chat(json!({"model": "free", "messages": [{"role": "user", "content": "x"}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}], "tool_choice": {"type": "any"}}));
    assert_eq!(any["tool_choice"], "required");
}

#[test]
fn refusals_are_clear() {
    let d = Options::default();
    let msg = json!([{"role": "user", "content": "x"}]);
    check_error(json!({"messages": msg}), &d, "`model`: is required");
    check_error(
        json!({"model": "free", "messages": msg, "tools": [{"name": " ", "input_schema": {}}]}),
        &d,
        "`tools[0].name`",
    );
    check_error(
        json!({"model": "free", "messages": [{"role": "user", "content": [{"text": "no type"}]}]}),
        &d,
        "`messages[0].content[0]`",
    );
    check_error(
        json!({"model": "free", "messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "", "input": {}}]}]}),
        &d,
        "`messages[0].content[0].name`",
    );
    check_error(json!({"model": "free", "messages": [{"role": "tool", "content": "x"}]}), &d, "`messages[0].role`");
    check_error(
        json!({"model": "free", "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}]}),
        &d,
        "source.type",
    );
    let strict = Options { serve_claude_ids: false, refuse_server_tools: true };
    check_error(json!({"model": "claude-opus-4", "messages": msg}), &strict, SERVE_CLAUDE_IDS_SETTING);
    check_error(
        json!({"model": "free", "messages": msg, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
        &strict,
        "`web_search` is a server tool",
    );
    assert!(matches!(to_chat(b"[", &d), Err(TranslateError::Json(_))));
    assert_eq!(TranslateError::ClaudeModel("claude-x".into()).status(), 404);
}

#[test]
fn model_ids() {
    for (id, expected) in [
        ("claude-3-5-haiku-latest", "openrouter/free"),
        ("anthropic/claude-sonnet-4", "openrouter/free"),
        ("openrouter/free", "openrouter/free"),
        ("free", "free"),
        ("acme/free", "acme/free"),
        ("m:free", "m:free"),
    ] {
        assert_eq!(
            chat(json!({"model": id, "messages": [{"role": "user", "content": "x"}]}))["model"],
            expected,
            "{id}"
        );
    }
}

/// An assistant turn: optional text, then tool calls with distinct ids.
fn assistant_turn() -> impl Strategy<Value = (Option<String>, Vec<(String, String, Value)>)> {
    let input = prop::collection::btree_map(
        "[a-z]{1,5}",
        prop_oneof![any::<i64>().prop_map(Value::from), "[ -~]{0,8}".prop_map(Value::from)],
        0..3,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()));
    (prop::option::of("[ -~é]{1,20}"), prop::collection::vec(("[A-Za-z][A-Za-z_]{0,8}", input), 0..4)).prop_map(
        |(text, calls)| {
            let calls =
                calls.into_iter().enumerate().map(|(i, (name, input))| (format!("toolu_{i}x"), name, input)).collect();
            (text, calls)
        },
    )
}

proptest! {
    /// An assistant turn sent as history, answered back by a model that said the same,
    /// comes back with every block, id and input, in order.
    #[test]
    fn an_assistant_turn_survives_the_round_trip((text, calls) in assistant_turn()) {
        prop_assume!(text.is_some() || !calls.is_empty());
        let mut blocks = Vec::new();
        if let Some(t) = &text {
            blocks.push(json!({"type": "text", "text": t}));
        }
        for (id, name, input) in &calls {
            blocks.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
        }
        let v = chat(json!({"model": "free", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": blocks}]}));
        let message = v["messages"][1].clone();
        let finish = if calls.is_empty() { "stop" } else { "tool_calls" };
        let answer = json!({"id": "gen-9", "model": "m:free", "choices": [{"finish_reason": finish, "message": message}]});
        let back = to_message(&read_answer(&serde_json::to_vec(&answer).expect("json")).expect("answer"), "fb", 0);
        prop_assert_eq!(&back["content"], &Value::Array(blocks));
    }
}

/// Any JSON value, with keys and strings from the Messages vocabulary so that the
/// generated bodies reach deep into the translation.
fn any_json() -> impl Strategy<Value = Value> {
    let word = prop::sample::select(vec![
        "model",
        "messages",
        "role",
        "user",
        "assistant",
        "system",
        "content",
        "type",
        "text",
        "image",
        "document",
        "tool_use",
        "tool_result",
        "tool_use_id",
        "id",
        "name",
        "input",
        "source",
        "base64",
        "url",
        "media_type",
        "data",
        "tools",
        "tool_choice",
        "auto",
        "any",
        "tool",
        "none",
        "thinking",
        "enabled",
        "adaptive",
        "metadata",
        "user_id",
        "stream",
        "max_tokens",
        "stop_sequences",
        "is_error",
        "input_schema",
        "title",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        word.clone().prop_map(Value::from),
        "[ -~]{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(word.clone().prop_map(str::to_owned), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// Nothing a client sends makes the translation panic; what it accepts is a chat
    /// body with a model and messages, and never a tool that is not a function.
    #[test]
    fn any_body_is_translated_or_refused(mut body in any_json(), model in any::<bool>(), messages in any_json()) {
        if let Value::Object(m) = &mut body {
            if model {
                m.insert("model".into(), json!("claude-x"));
            }
            m.insert("messages".into(), messages);
        }
        let bytes = serde_json::to_vec(&body).expect("json");
        for options in [Options::default(), Options { serve_claude_ids: false, refuse_server_tools: true }] {
            if let Ok(t) = to_chat(&bytes, &options) {
                let v: Value = serde_json::from_slice(&t.body).expect("the chat body is json");
                let (written, sent) = two_readings(&t.body, &t.members);
                prop_assert_eq!(written, sent);
                prop_assert!(v["model"].is_string() && v["messages"].is_array(), "{}", v);
                for tool in v["tools"].as_array().map_or(&[][..], Vec::as_slice) {
                    prop_assert_eq!(&tool["type"], "function");
                }
            }
        }
    }
}

#[test]
fn claude_ids_whatever_their_case() {
    for id in ["claude-3-opus", "Claude-Sonnet", "CLAUDE", "anthropic/claude-x", "Anthropic/x"] {
        assert!(is_claude_id(id), "{id}");
    }
    for id in ["openrouter/free", "claud", "anthropic", "é-claude", "", "xclaude"] {
        assert!(!is_claude_id(id), "{id}");
    }
}
