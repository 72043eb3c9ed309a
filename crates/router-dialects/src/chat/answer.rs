//! A whole chat-completions answer → [`Answer`].

use super::fields::{error, reasoning, usage};
use super::types::{Answer, ReadError, ToolCall};
use super::wire::{self, Body, Call};
use std::borrow::Cow;

/// Reads a whole answer. An object without choices reads as an empty answer; one with a
/// top-level `error` is [`ReadError::Upstream`].
pub fn read_answer(bytes: &[u8]) -> Result<Answer, ReadError> {
    wire::read(bytes, true, answer)?
}

fn answer(body: Body<'_>) -> Result<Answer, ReadError> {
    if let Some(e) = &body.error {
        return Err(ReadError::Upstream(error(e)));
    }
    let owned = |t: Option<Option<Cow<'_, str>>>| t.flatten().map(Cow::into_owned).unwrap_or_default();
    let mut answer = Answer {
        id: owned(body.id),
        model: owned(body.model),
        created: body.created.unwrap_or(0),
        usage: body.usage.as_ref().map(usage),
        ..Answer::default()
    };
    let Some(choice) = body.choice else { return Ok(answer) };
    answer.finish_reason = choice.finish_reason.map(Cow::into_owned);
    // A number there is a stop token's id, not a sequence the client gave.
    answer.stop_sequence = choice.stop_reason.map(Cow::into_owned);
    let Some(message) = choice.message else { return Ok(answer) };
    let non_empty = |t: Option<&str>| t.filter(|t| !t.is_empty()).map(str::to_owned);
    answer.text = non_empty(message.content.as_deref());
    answer.reasoning = non_empty(reasoning(&message));
    answer.refusal = non_empty(message.refusal.as_deref());
    answer.tool_calls = message.tool_calls.map(|calls| calls.into_iter().map(tool_call).collect()).unwrap_or_default();
    Ok(answer)
}

fn tool_call(call: Call<'_>) -> ToolCall {
    let owned = |t: Option<Cow<'_, str>>| t.map(Cow::into_owned).unwrap_or_default();
    ToolCall { id: owned(call.id), name: owned(call.name), arguments: owned(call.arguments) }
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
    fn odd_members_read_as_absent_and_a_repeated_member_as_its_last() {
        check(
            r#"{"id":7,"created":1.5,"choices":[{"finish_reason":3,"message":{"content":{"x":1},"reasoning":2,
                "tool_calls":[5,{"function":{"name":"f","arguments":[1]}}]}}],"usage":"none"}"#,
            Answer {
                id: "7".into(),
                created: 1,
                finish_reason: Some("3".into()),
                tool_calls: vec![
                    ToolCall::default(),
                    ToolCall { id: String::new(), name: "f".into(), arguments: "[1]".into() },
                ],
                ..Answer::default()
            },
        );
        // serde refuses a repeated member; the tree keeps the last one.
        check(
            r#"{"id":"a","id":"b","choices":[{"message":{"content":"x"}}]}"#,
            Answer { id: "b".into(), text: Some("x".into()), ..Answer::default() },
        );
    }

    #[test]
    fn not_json_and_not_object_are_errors() {
        assert!(matches!(read_answer(b"<html>"), Err(ReadError::NotJson(_))));
        assert!(matches!(read_answer(b"[1]"), Err(ReadError::NotObject)));
    }
}
