//! The request translation: Codex CLI's and the SDKs' shapes, the stateless refusals, and
//! the tool round trip (unit and property tests).

use crate::json_out::two_readings;
use crate::responses::*;
use proptest::prelude::*;
use serde_json::{Value, json};

/// The chat body for `req` under `policy`, with the rest of the translation.
fn check(req: Value, policy: ToolPolicy) -> (Value, Translated) {
    let body = serde_json::to_vec(&req).expect("json");
    let t = to_chat(&body, policy).unwrap_or_else(|e| panic!("refused: {e}"));
    let (written, sent) = two_readings(&t.chat, &t.members);
    assert_eq!(written, sent, "{}", String::from_utf8_lossy(&t.chat));
    (serde_json::from_slice(&t.chat).expect("chat json"), t)
}

fn refused(req: Value, policy: ToolPolicy) -> InvalidRequest {
    let body = serde_json::to_vec(&req).expect("json");
    match to_chat(&body, policy) {
        Ok(t) => panic!("accepted: {}", String::from_utf8_lossy(&t.chat)),
        Err(e) => e,
    }
}

/// What Codex CLI sends a custom provider, cut down to its shapes.
fn codex_request() -> Value {
    json!({
        "model": "openrouter/free",
        "instructions": "You are Codex.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<permissions>"}]},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "<environment_context>"},
                {"type": "input_text", "text": "list the files"}
            ]}
        ],
        "tools": [
            {"type": "function", "name": "exec_command", "description": "Runs a command",
             "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]},
             "strict": false},
            {"type": "namespace", "name": "mcp", "tools": []},
            {"type": "web_search"},
            {"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}}
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "reasoning": {"summary": "auto"},
        "store": false,
        "stream": true,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "019-session"
    })
}

#[test]
fn codex_cli_requests_become_chat_with_only_function_tools() {
    let (chat, t) = check(codex_request(), ToolPolicy::Drop);
    assert_eq!(
        chat["messages"],
        json!([
            {"role": "system", "content": "You are Codex."},
            {"role": "system", "content": "<permissions>"},
            {"role": "user", "content": [
                {"type": "text", "text": "<environment_context>"},
                {"type": "text", "text": "list the files"}
            ]}
        ])
    );
    assert_eq!(
        chat["tools"],
        json!([{"type": "function", "function": {"name": "exec_command", "description": "Runs a command",
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]},
            "strict": false}}])
    );
    assert_eq!(t.dropped_tools, ["namespace:mcp", "web_search", "custom:apply_patch"]);
    assert_eq!((chat["tool_choice"].as_str(), chat["parallel_tool_calls"].as_bool()), (Some("auto"), Some(false)));
    assert_eq!((chat["stream"].as_bool(), &chat["stream_options"]), (Some(true), &json!({"include_usage": true})));
    assert!(t.stream);
    // A summary alone asks for no reasoning model; store, include and the key are not forwarded.
    for key in ["reasoning", "store", "include", "prompt_cache_key", "instructions", "input"] {
        assert!(chat.get(key).is_none(), "{key} forwarded: {chat}");
    }
    assert_eq!(t.session.as_deref(), Some("019-session"));
    assert_eq!(t.echo_object()["tools"][0]["name"], "exec_command");
    assert_eq!(t.echo_object()["store"], false);
}

#[test]
fn unserved_tools_are_refused_by_the_refuse_policy() {
    let e = refused(codex_request(), ToolPolicy::Refuse);
    assert_eq!((e.param.as_deref(), e.code), (Some("tools[1]"), "unsupported_tool"));
    assert!(e.message.contains("namespace:mcp"), "{e}");
}

#[test]
fn the_router_is_stateless() {
    for (member, value) in [
        ("store", json!(true)),
        ("previous_response_id", json!("resp_1")),
        ("conversation", json!("conv_1")),
        ("background", json!(true)),
    ] {
        let mut req = json!({"input": "hi"});
        req[member] = value;
        let e = refused(req, ToolPolicy::Drop);
        assert_eq!((e.param.as_deref(), e.code), (Some(member), "stateless"), "{e}");
        assert!(e.message.contains("stateless"), "{e}");
    }
    for store in [json!(false), Value::Null] {
        let (chat, _) = check(json!({"input": "hi", "store": store, "previous_response_id": null}), ToolPolicy::Drop);
        assert_eq!(chat["messages"], json!([{"role": "user", "content": "hi"}]));
    }
    let e = refused(json!({"input": [{"type": "item_reference", "id": "msg_1"}]}), ToolPolicy::Drop);
    assert_eq!(e.code, "stateless");
}

#[test]
fn a_string_input_is_one_user_message_to_the_free_router() {
    let (chat, t) = check(json!({"input": "Say hello", "user": "u-1"}), ToolPolicy::Drop);
    assert_eq!(
        chat,
        json!({"model": "openrouter/free", "messages": [{"role": "user", "content": "Say hello"}], "user": "u-1"})
    );
    assert!(!t.stream);
    assert_eq!(t.session.as_deref(), Some("u-1"));
}

#[test]
fn sampling_output_and_reasoning_members_map_to_chat() {
    let (chat, t) = check(
        json!({
            "model": "qwen/qwen3-coder:free",
            "input": "Invent a person.",
            "max_output_tokens": 300,
            "temperature": 0.2,
            "top_p": 0.9,
            "reasoning": {"effort": "low"},
            "metadata": {"k": "v"},
            "safety_identifier": "safe-1",
            "text": {"format": {"type": "json_schema", "name": "person", "strict": true,
                "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}}
        }),
        ToolPolicy::Drop,
    );
    assert_eq!(chat["model"], "qwen/qwen3-coder:free");
    assert_eq!(chat["max_tokens"], 300);
    assert_eq!((chat["temperature"].as_f64(), chat["top_p"].as_f64()), (Some(0.2), Some(0.9)));
    assert_eq!(chat["reasoning"], json!({"effort": "low"}));
    assert_eq!(
        chat["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "person", "strict": true,
            "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}})
    );
    assert!(chat.get("metadata").is_none(), "metadata stays with the router: {chat}");
    assert_eq!(t.echo_object()["metadata"], json!({"k": "v"}));
    assert_eq!(t.session.as_deref(), Some("safe-1"));
    let (chat, _) = check(json!({"input": "x", "text": {"format": {"type": "json_object"}}}), ToolPolicy::Drop);
    assert_eq!(chat["response_format"], json!({"type": "json_object"}));
    let (chat, _) = check(json!({"input": "x", "text": {"format": {"type": "text"}}}), ToolPolicy::Drop);
    assert!(chat.get("response_format").is_none());
}

#[test]
fn media_parts_become_chat_parts_and_uploaded_ids_are_refused() {
    let (chat, _) = check(
        json!({"input": [{"role": "user", "content": [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
            {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"}
        ]}]}),
        ToolPolicy::Drop,
    );
    assert_eq!(
        chat["messages"][0]["content"],
        json!([
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}}
        ])
    );
    let e = refused(
        json!({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]}),
        ToolPolicy::Drop,
    );
    assert_eq!((e.param.as_deref(), e.code), (Some("input[0].content[0]"), "stateless"));
}

#[test]
fn consecutive_calls_are_one_assistant_message_followed_by_their_outputs() {
    let (chat, _) = check(
        json!({"input": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "call_id": "call_a", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call", "call_id": "call_b", "name": "get_weather", "arguments": "{\"city\":\"Rome\"}"},
            {"type": "function_call_output", "call_id": "call_b", "output": "18C"},
            {"type": "function_call_output", "call_id": "call_a", "output": [{"type": "input_text", "text": "21C"}]},
            {"role": "user", "content": "Thanks"}
        ],
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]}),
        ToolPolicy::Drop,
    );
    assert_eq!(
        chat["messages"],
        json!([
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_b", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_a", "content": "21C"},
            {"role": "user", "content": "Thanks"}
        ])
    );
}

#[test]
fn an_output_comes_after_its_call_even_when_sent_later() {
    let (chat, _) = check(
        json!({"input": [
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"role": "user", "content": "meanwhile"},
            {"type": "function_call_output", "call_id": "c1", "output": "done"}
        ]}),
        ToolPolicy::Drop,
    );
    let roles: Vec<&str> =
        chat["messages"].as_array().expect("messages").iter().filter_map(|m| m["role"].as_str()).collect();
    assert_eq!(roles, ["assistant", "tool", "user"]);
}

#[test]
fn calls_and_outputs_must_pair() {
    let e = refused(
        json!({"input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]}),
        ToolPolicy::Drop,
    );
    assert!(e.message.contains("nope"), "{e}");
    let e = refused(json!({"input": [{"type": "function_call", "call_id": "c1", "name": "f"}]}), ToolPolicy::Drop);
    assert!(e.message.contains("no output"), "{e}");
    let e = refused(
        json!({"input": [
            {"type": "function_call", "call_id": "c1", "name": "f"},
            {"type": "function_call_output", "call_id": "c1", "output": "x"},
            {"type": "function_call_output", "call_id": "c1", "output": "y"}
        ]}),
        ToolPolicy::Drop,
    );
    assert!(e.message.contains("two outputs"), "{e}");
}

#[test]
fn tool_choice_forms_map_to_chat() {
    let tools = json!([{"type": "function", "name": "f"}]);
    for (choice, expected) in [
        (json!("required"), json!("required")),
        (json!({"type": "function", "name": "f"}), json!({"type": "function", "function": {"name": "f"}})),
        (json!({"type": "allowed_tools", "mode": "auto", "tools": []}), json!("auto")),
    ] {
        let (chat, _) = check(json!({"input": "x", "tools": tools, "tool_choice": choice}), ToolPolicy::Drop);
        assert_eq!(chat["tool_choice"], expected);
    }
    let e = refused(json!({"input": "x", "tools": tools, "tool_choice": {"type": "web_search"}}), ToolPolicy::Drop);
    assert_eq!(e.code, "unsupported_tool");
    // Only dropped tools: no tools and no choice go upstream.
    let (chat, t) =
        check(json!({"input": "x", "tools": [{"type": "web_search"}], "tool_choice": "auto"}), ToolPolicy::Drop);
    assert!(chat.get("tools").is_none() && chat.get("tool_choice").is_none(), "{chat}");
    assert_eq!(t.dropped_tools, ["web_search"]);
}

#[test]
fn malformed_requests_name_the_member() {
    for (req, param) in [
        (json!([1]), "body"),
        (json!({}), "input"),
        (json!({"input": 5}), "input"),
        (json!({"input": [{"role": "robot", "content": "x"}]}), "input[0].role"),
        (json!({"input": [{"role": "user", "content": [{"type": "input_video"}]}]}), "input[0].content[0]"),
        (json!({"input": "x", "max_output_tokens": -1}), "max_output_tokens"),
        (json!({"input": "x", "tools": [{"type": "function"}]}), "tools[0]"),
        (json!({"input": "x", "model": 3}), "model"),
        (json!({"input": "x", "text": {"format": {"type": "yaml"}}}), "text.format"),
    ] {
        let e = refused(req.clone(), ToolPolicy::Drop);
        assert_eq!(e.param.as_deref(), Some(param), "{req}: {e}");
    }
    assert!(to_chat(b"{not json", ToolPolicy::Drop).is_err());
}

/// Input items of a conversation with `groups` rounds of parallel calls; each round's
/// outputs come in the order given by its permutation key.
fn round_trip_input(groups: &[(usize, u64)]) -> (Vec<Value>, Vec<String>) {
    let mut items = vec![json!({"role": "user", "content": "go"})];
    let mut ids = Vec::new();
    for (g, (calls, order)) in groups.iter().enumerate() {
        let round: Vec<String> = (0..*calls).map(|c| format!("call_{g}_{c}")).collect();
        for id in &round {
            items.push(json!({"type": "function_call", "call_id": id, "name": "f", "arguments": format!("{{\"id\":\"{id}\"}}")}));
        }
        let mut outputs = round.clone();
        outputs.sort_by_key(|id| (order ^ id.len() as u64).wrapping_mul(fnv(id)));
        for id in outputs {
            items.push(json!({"type": "function_call_output", "call_id": id, "output": format!("out of {id}")}));
        }
        ids.extend(round);
    }
    (items, ids)
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

proptest! {
    /// Every call keeps its id, arguments and place; every `tool` message follows the
    /// assistant message that holds its call, before the next other message.
    #[test]
    fn a_tool_round_trip_keeps_call_ids_and_order(groups in prop::collection::vec((1usize..4, any::<u64>()), 0..5)) {
        let (items, ids) = round_trip_input(&groups);
        let (chat, _) = check(json!({"input": items}), ToolPolicy::Drop);
        let messages = chat["messages"].as_array().expect("messages");
        let mut seen_calls = Vec::new();
        let mut open: Vec<String> = Vec::new();
        for m in messages {
            match m["role"].as_str() {
                Some("assistant") => {
                    prop_assert!(open.is_empty(), "a call left unanswered before the next assistant: {open:?}");
                    for c in m["tool_calls"].as_array().expect("calls") {
                        let id = c["id"].as_str().expect("id").to_owned();
                        let args = format!("{{\"id\":\"{id}\"}}");
                        prop_assert_eq!(c["function"]["arguments"].as_str(), Some(args.as_str()));
                        open.push(id.clone());
                        seen_calls.push(id);
                    }
                }
                Some("tool") => {
                    let id = m["tool_call_id"].as_str().expect("id");
                    let at = open.iter().position(|o| o == id);
                    prop_assert!(at.is_some(), "tool message {id} without its call");
                    open.retain(|o| o != id);
                    let out = format!("out of {id}");
                    prop_assert_eq!(m["content"].as_str(), Some(out.as_str()));
                }
                _ => prop_assert!(open.is_empty(), "a message between calls and their outputs"),
            }
        }
        prop_assert!(open.is_empty());
        prop_assert_eq!(seen_calls, ids);
        prop_assert_eq!(messages.iter().filter(|m| m["role"] == "assistant").count(), groups.len());
    }
}

/// Any JSON value, nested a few levels, with the members a Responses body has.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z_]{0,8}".prop_map(Value::String),
        prop::sample::select(vec![
            "function",
            "message",
            "function_call",
            "function_call_output",
            "user",
            "input_text",
            "json_schema"
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        let keys = prop::sample::select(vec![
            "type",
            "role",
            "content",
            "input",
            "tools",
            "name",
            "call_id",
            "output",
            "text",
            "format",
            "schema",
            "tool_choice",
            "store",
            "model",
            "arguments",
            "image_url",
            "file_data",
            "reasoning",
            "effort",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((keys, inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

proptest! {
    /// Whatever a client sends, the translation answers (a chat body that is JSON, or a
    /// refusal naming a member) and never panics.
    #[test]
    fn any_body_is_translated_or_refused(body in any_json(), policy in prop::bool::ANY) {
        let bytes = serde_json::to_vec(&body).expect("json");
        match to_chat(&bytes, ToolPolicy::refusing(policy)) {
            Ok(t) => {
                prop_assert!(serde_json::from_slice::<Value>(&t.chat).is_ok());
                let (written, sent) = two_readings(&t.chat, &t.members);
                prop_assert_eq!(written, sent);
            }
            Err(e) => prop_assert!(e.param.is_some() && !e.message.is_empty()),
        }
    }
}
