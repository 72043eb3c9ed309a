//! A whole chat-completions answer → [`Answer`].

use super::fields::{content, count, error, first_choice, reasoning, text, usage};
use super::types::{Answer, ReadError, ToolCall};
use serde_json::Value;

/// Reads a whole answer. An object without choices reads as an empty answer; one with a
/// top-level `error` is [`ReadError::Upstream`].
pub fn read_answer(bytes: &[u8]) -> Result<Answer, ReadError> {
    let v: Value = serde_json::from_slice(bytes)?;
    if !v.is_object() {
        return Err(ReadError::NotObject);
    }
    if let Some(e) = error(&v) {
        return Err(ReadError::Upstream(e));
    }
    let mut answer = Answer {
        id: text(&v, "id").unwrap_or_default(),
        model: text(&v, "model").unwrap_or_default(),
        created: count(&v, "created").unwrap_or(0),
        usage: usage(&v),
        ..Answer::default()
    };
    let Some(choice) = first_choice(&v) else { return Ok(answer) };
    answer.finish_reason = text(choice, "finish_reason");
    // A number there is a stop token's id, not a sequence the client gave.
    answer.stop_sequence = choice.get("stop_reason").and_then(Value::as_str).map(str::to_owned);
    let Some(message) = choice.get("message") else { return Ok(answer) };
    answer.text = content(message).filter(|t| !t.is_empty());
    answer.reasoning = reasoning(message).filter(|t| !t.is_empty());
    answer.refusal = text(message, "refusal").filter(|t| !t.is_empty());
    answer.tool_calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| calls.iter().map(tool_call).collect())
        .unwrap_or_default();
    Ok(answer)
}

fn tool_call(call: &Value) -> ToolCall {
    let function = call.get("function");
    let arguments = match function.and_then(|f| f.get("arguments")) {
        Some(Value::String(s)) => s.clone(),
        // Some providers send the arguments as an object rather than its text.
        Some(other) if !other.is_null() => other.to_string(),
        _ => String::new(),
    };
    ToolCall {
        id: text(call, "id").unwrap_or_default(),
        name: function.and_then(|f| text(f, "name")).unwrap_or_default(),
        arguments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{ChatError, Usage};

    fn check(body: &str, expected: Answer) {
        assert_eq!(read_answer(body.as_bytes()).expect("readable"), expected);
    }

    #[test]
    fn text_reasoning_and_usage() {
        check(
            r#"{"id":"gen-1","model":"m:free","created":17,"choices":[{"index":0,"finish_reason":"stop",
                "message":{"role":"assistant","content":"hi","reasoning":"think"}}],
                "usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7,
                "completion_tokens_details":{"reasoning_tokens":1},"prompt_tokens_details":{"cached_tokens":3}}}"#,
            Answer {
                id: "gen-1".into(),
                model: "m:free".into(),
                created: 17,
                text: Some("hi".into()),
                reasoning: Some("think".into()),
                finish_reason: Some("stop".into()),
                usage: Some(Usage {
                    prompt_tokens: 5,
                    completion_tokens: 2,
                    total_tokens: 7,
                    cached_tokens: 3,
                    reasoning_tokens: 1,
                }),
                ..Answer::default()
            },
        );
    }

    #[test]
    fn tool_calls_keep_order_and_text_arguments() {
        check(
            r#"{"id":"x","model":"m","choices":[{"finish_reason":"tool_calls","message":{"content":null,
                "reasoning_content":"r","tool_calls":[
                {"id":"call_1","type":"function","function":{"name":"a","arguments":"{\"q\":1}"}},
                {"id":"call_2","type":"function","function":{"name":"b","arguments":{"z":true}}}]}}]}"#,
            Answer {
                id: "x".into(),
                model: "m".into(),
                reasoning: Some("r".into()),
                tool_calls: vec![
                    ToolCall { id: "call_1".into(), name: "a".into(), arguments: r#"{"q":1}"#.into() },
                    ToolCall { id: "call_2".into(), name: "b".into(), arguments: r#"{"z":true}"#.into() },
                ],
                finish_reason: Some("tool_calls".into()),
                ..Answer::default()
            },
        );
    }

    #[test]
    fn a_stop_sequence_named_by_the_upstream() {
        check(
            r#"{"choices":[{"finish_reason":"stop","stop_reason":"END","message":{"content":"a"}}]}"#,
            Answer {
                text: Some("a".into()),
                finish_reason: Some("stop".into()),
                stop_sequence: Some("END".into()),
                ..Answer::default()
            },
        );
        check(
            r#"{"choices":[{"finish_reason":"stop","stop_reason":151645,"message":{"content":"a"}}]}"#,
            Answer { text: Some("a".into()), finish_reason: Some("stop".into()), ..Answer::default() },
        );
    }

    #[test]
    fn content_parts_and_refusal() {
        check(
            r#"{"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],
                "refusal":"no"}}]}"#,
            Answer { text: Some("ab".into()), refusal: Some("no".into()), ..Answer::default() },
        );
    }

    #[test]
    fn an_error_inside_a_200_is_an_error() {
        let e =
            read_answer(br#"{"error":{"code":429,"message":"slow down","metadata":{"error_type":"rate_limited"}}}"#);
        match e {
            Err(ReadError::Upstream(ChatError { status, kind, message })) => {
                assert_eq!((status, kind.as_deref(), message.as_str()), (Some(429), Some("rate_limited"), "slow down"));
            }
            other => panic!("expected an upstream error, got {other:?}"),
        }
    }

    #[test]
    fn not_json_and_not_object_are_errors() {
        assert!(matches!(read_answer(b"<html>"), Err(ReadError::NotJson(_))));
        assert!(matches!(read_answer(b"[1]"), Err(ReadError::NotObject)));
    }
}
