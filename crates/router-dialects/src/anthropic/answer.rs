//! A whole chat answer → a Messages answer (`type: "message"`).

use super::ids::{message_id, tool_use_id};
use crate::chat::{Answer, Usage};
use crate::json_out::{number, string, string_or_null};
use serde::de::IgnoredAny;
use serde_json::Value;

/// Anthropic's `stop_reason` for a chat `finish_reason`. A tool call wins over `stop`,
/// since some providers end a tool call with `stop`.
pub fn stop_reason(finish: Option<&str>, has_tool_calls: bool, refused: bool) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ if has_tool_calls => "tool_use",
        _ if refused => "refusal",
        _ => "end_turn",
    }
}

/// The `usage` object; without the upstream's counts, `input_tokens` is the router's
/// estimate of the prompt and `output_tokens` 0.
pub(crate) fn write_usage(out: &mut Vec<u8>, usage: Option<&Usage>, estimate: u64) {
    let (input, output) = usage.map_or((estimate, 0), |u| (u.prompt_tokens, u.completion_tokens));
    out.extend_from_slice(b"{\"input_tokens\":");
    number(out, input);
    out.extend_from_slice(b",\"output_tokens\":");
    number(out, output);
    out.extend_from_slice(b",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0}");
}

/// The bytes reserved for a Messages answer besides its text.
const MESSAGE_JSON_ROOM: usize = 512;

/// The Messages answer as its JSON: thinking, then text (or the refusal), then tool
/// calls, in order. `fallback_id` names the message when the upstream gave no id.
pub fn message_json(answer: &Answer, fallback_id: &str, estimate: u64) -> Vec<u8> {
    let id = message_id(&answer.id, fallback_id);
    // Room for the usual answer with its fixed members (about 300 bytes before its
    // text), so that writing it seldom grows the buffer.
    let mut out = Vec::with_capacity(MESSAGE_JSON_ROOM + answer.text.as_ref().map_or(0, String::len));
    out.extend_from_slice(b"{\"id\":");
    string(&mut out, &id);
    out.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    string(&mut out, &answer.model);
    out.extend_from_slice(b",\"content\":[");
    let mut first = true;
    let mut block = |out: &mut Vec<u8>, kind: &[u8]| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(kind);
        out.extend_from_slice(b"\",\"");
    };
    if let Some(r) = &answer.reasoning {
        block(&mut out, b"thinking");
        out.extend_from_slice(b"thinking\":");
        string(&mut out, r);
        out.extend_from_slice(b",\"signature\":\"\"}");
    }
    if let Some(t) = answer.text.as_ref().or(answer.refusal.as_ref()) {
        block(&mut out, b"text");
        out.extend_from_slice(b"text\":");
        string(&mut out, t);
        out.push(b'}');
    }
    for (i, call) in answer.tool_calls.iter().enumerate() {
        block(&mut out, b"tool_use");
        out.extend_from_slice(b"id\":");
        string(&mut out, &tool_use_id(&call.id, &id, fallback_id, i));
        out.extend_from_slice(b",\"name\":");
        string(&mut out, &call.name);
        out.extend_from_slice(b",\"input\":");
        write_tool_input(&mut out, &call.arguments);
        out.push(b'}');
    }
    let refused = answer.text.is_none() && answer.refusal.is_some();
    let mut stop = stop_reason(answer.finish_reason.as_deref(), !answer.tool_calls.is_empty(), refused);
    let stop_sequence = answer.stop_sequence.as_deref().filter(|_| stop == "end_turn");
    if stop_sequence.is_some() {
        stop = "stop_sequence";
    }
    out.extend_from_slice(b"],\"stop_reason\":");
    string(&mut out, stop);
    out.extend_from_slice(b",\"stop_sequence\":");
    string_or_null(&mut out, stop_sequence);
    out.extend_from_slice(b",\"usage\":");
    write_usage(&mut out, answer.usage.as_ref(), estimate);
    out.push(b'}');
    out
}

/// [`message_json`] as a tree.
pub fn to_message(answer: &Answer, fallback_id: &str, estimate: u64) -> Value {
    serde_json::from_slice(&message_json(answer, fallback_id, estimate)).unwrap_or_default()
}

/// A call's arguments as the `input` object: empty arguments are `{}`; text that is not
/// a JSON object is kept under `_raw` rather than lost, so the client sees what came.
pub fn tool_input(arguments: &str) -> Value {
    let mut out = Vec::new();
    write_tool_input(&mut out, arguments);
    serde_json::from_slice(&out).unwrap_or_default()
}

/// [`tool_input`]'s JSON: a valid object is written as the model wrote it.
fn write_tool_input(out: &mut Vec<u8>, arguments: &str) {
    let trimmed = arguments.trim();
    if trimmed.is_empty() {
        out.extend_from_slice(b"{}");
    } else if trimmed.starts_with('{') && serde_json::from_str::<IgnoredAny>(trimmed).is_ok() {
        out.extend_from_slice(trimmed.as_bytes());
    } else {
        out.extend_from_slice(b"{\"_raw\":");
        string(out, arguments);
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::read_answer;
    use serde_json::json;

    fn check(chat: &str, expected: Value) {
        let answer = read_answer(chat.as_bytes()).expect("a chat answer");
        assert_eq!(to_message(&answer, "fallback", 9), expected);
    }

    #[test]
    fn text_and_thinking_with_usage() {
        check(
            r#"{"id":"gen-1","model":"m:free","choices":[{"finish_reason":"stop","message":{"content":"Hi","reasoning":"r"}}],
               "usage":{"prompt_tokens":4,"completion_tokens":2}}"#,
            json!({"id":"msg_gen-1","type":"message","role":"assistant","model":"m:free",
                "content":[{"type":"thinking","thinking":"r","signature":""},{"type":"text","text":"Hi"}],
                "stop_reason":"end_turn","stop_sequence":null,
                "usage":{"input_tokens":4,"output_tokens":2,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}),
        );
    }

    #[test]
    fn tool_calls_become_tool_use_blocks() {
        check(
            r#"{"id":"","model":"m","choices":[{"finish_reason":"stop","message":{"content":null,"tool_calls":[
               {"id":"call_a","function":{"name":"Bash","arguments":"{\"command\":\"echo hi\"}"}},
               {"id":"","function":{"name":"Read","arguments":""}}]}}]}"#,
            json!({"id":"msg_fallback","type":"message","role":"assistant","model":"m",
                "content":[{"type":"tool_use","id":tool_use_id("call_a", "msg_fallback", "fallback", 0),
                            "name":"Bash","input":{"command":"echo hi"}},
                           {"type":"tool_use","id":tool_use_id("", "msg_fallback", "fallback", 1),
                            "name":"Read","input":{}}],
                "stop_reason":"tool_use","stop_sequence":null,
                "usage":{"input_tokens":9,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}),
        );
    }

    #[test]
    fn a_named_stop_sequence_is_the_stop_reason() {
        let answer = read_answer(br#"{"id":"g","model":"m","choices":[{"finish_reason":"stop","stop_reason":"END","message":{"content":"a"}}]}"#)
            .expect("answer");
        let m = to_message(&answer, "f", 0);
        assert_eq!((m["stop_reason"].as_str(), m["stop_sequence"].as_str()), (Some("stop_sequence"), Some("END")));
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(stop_reason(Some("length"), false, false), "max_tokens");
        assert_eq!(stop_reason(Some("content_filter"), false, false), "refusal");
        assert_eq!(stop_reason(None, false, true), "refusal");
        assert_eq!(stop_reason(Some("stop"), false, false), "end_turn");
    }

    #[test]
    fn unreadable_arguments_are_kept() {
        assert_eq!(tool_input("{\"a\":"), json!({"_raw": "{\"a\":"}));
        assert_eq!(tool_input("[1]"), json!({"_raw": "[1]"}));
    }
}
