//! A whole chat-completions answer → [`Answer`]: walked whole, or read in place from
//! where the router's own reading found its members.

use super::fields::{error, reasoning, usage};
use super::types::{Answer, ReadError, ToolCall};
use super::wire::{self, Body, Call, Choice, Message, UsageIn};
use router_core::sse::json::Scanner;
use router_core::sse::{AnswerSpans, Span};
use std::borrow::Cow;

/// Reads a whole answer. An object without choices reads as an empty answer; one with a
/// top-level `error` is [`ReadError::Upstream`].
pub fn read_answer(bytes: &[u8]) -> Result<Answer, ReadError> {
    wire::read(bytes, true, answer)?
}

/// Reads a whole answer the router committed, from `spans` (where its reading found the
/// members, `RouteReport::answer`): only those values are read, the rest of the body is
/// not walked again. Without spans, or when one does not read as its member, the body
/// is walked whole ([`read_answer`]).
pub fn read_committed(bytes: &[u8], spans: Option<&AnswerSpans>) -> Result<Answer, ReadError> {
    match spans.and_then(|spans| in_place(bytes, spans)) {
        Some(body) => answer(body),
        None => read_answer(bytes),
    }
}

/// The members at `spans`, each read as the whole walk reads it; `None` when one is not.
fn in_place<'a>(bytes: &'a [u8], spans: &AnswerSpans) -> Option<Body<'a>> {
    let message = Message {
        content: text_at(bytes, spans.content, wire::content)?,
        reasoning: text_at(bytes, spans.reasoning, wire::text_only)?,
        reasoning_content: text_at(bytes, spans.reasoning_content, wire::text_only)?,
        refusal: text_at(bytes, spans.refusal, wire::textual)?,
        tool_calls: at(bytes, spans.tool_calls, wire::tool_calls)?.flatten(),
    };
    let choice = Choice {
        delta: None,
        message: Some(message),
        finish_reason: text_at(bytes, spans.finish_reason, wire::textual)?,
        stop_reason: text_at(bytes, spans.stop_reason, wire::text_only)?,
    };
    // The counts were found by the router's walk of `usage`: only their digits are read.
    let usage = match spans.usage.get(bytes) {
        Some([b'{', ..]) => Some(UsageIn {
            prompt_tokens: count_at(bytes, spans.prompt_tokens)?,
            completion_tokens: count_at(bytes, spans.completion_tokens)?,
            total_tokens: count_at(bytes, spans.total_tokens)?,
            cached_tokens: count_at(bytes, spans.cached_tokens)?,
            reasoning_tokens: count_at(bytes, spans.reasoning_tokens)?,
        }),
        _ => None,
    };
    Some(Body {
        id: Some(text_at(bytes, spans.id, wire::textual)?),
        model: Some(text_at(bytes, spans.model, wire::textual)?),
        created: count_at(bytes, spans.created)?,
        choice: Some(choice),
        usage,
        error: None,
    })
}

/// The value at `span` read by `read`: `Some(None)` when absent, `None` when it is not
/// one value that `read` reads.
fn at<'a, T>(
    bytes: &'a [u8],
    span: Span,
    read: impl FnOnce(&mut Scanner<'_>, &'a str) -> Option<T>,
) -> Option<Option<T>> {
    let Some(raw) = span.get(bytes) else { return Some(None) };
    let text = std::str::from_utf8(raw).ok()?;
    let mut s = Scanner::new(raw);
    let value = read(&mut s, text)?;
    s.at_end().then_some(Some(value))
}

/// Text at `span`: a string without escapes (nearly every one) borrowed as it is, since
/// the router's walk checked it; anything else as `read` reads it.
fn text_at<'a>(
    bytes: &'a [u8],
    span: Span,
    read: impl FnOnce(&mut Scanner<'_>, &'a str) -> Option<Option<Cow<'a, str>>>,
) -> Option<Option<Cow<'a, str>>> {
    if let Some([b'"', inner @ .., b'"']) = span.get(bytes)
        && !inner.contains(&b'\\')
    {
        return std::str::from_utf8(inner).ok().map(|t| Some(Cow::Borrowed(t)));
    }
    at(bytes, span, read).map(Option::flatten)
}

/// A count at `span`: plain digits (nearly every count) folded, anything else as the
/// whole walk reads it.
fn count_at(bytes: &[u8], span: Span) -> Option<Option<u64>> {
    match span.get(bytes) {
        Some(digits) if digits.len() <= MAX_PLAIN_DIGITS && digits.iter().all(u8::is_ascii_digit) => {
            Some(Some(digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0'))))
        }
        _ => at(bytes, span, |s, _| wire::count(s)).map(Option::flatten),
    }
}

/// The most digits folded without the walk: any 19-digit number fits in a `u64`.
const MAX_PLAIN_DIGITS: usize = 19;

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
    use proptest::prelude::*;

    fn check(body: &str, expected: Answer) {
        assert_eq!(read_answer(body.as_bytes()).expect("readable"), expected);
        in_place_agrees(body);
    }

    /// `body` as the router commits it (its model set to `m:free`) reads the same in
    /// place, from the router's spans, as walked whole; and in place it is read.
    fn in_place_agrees(body: &str) {
        let Ok(read) = router_core::sse::Answer::read_recording(body.as_bytes()) else { return };
        let (out, spans) = read.with_model_spans(bytes::Bytes::from(body.to_owned()), br#""m:free""#);
        let Some(spans) = spans else { return };
        assert!(in_place(&out, &spans).is_some(), "{body}");
        let whole = read_answer(&out).map_err(|e| e.to_string());
        assert_eq!(read_committed(&out, Some(&spans)).map_err(|e| e.to_string()), whole, "{body}");
    }

    fn member_value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_owned()),
            Just("7".to_owned()),
            Just("\"\"".to_owned()),
            Just("\"a \\\"q\\\" \\u00e9\"".to_owned()),
            Just("[{\"type\":\"text\",\"text\":\"p\"},{\"text\":\"q\"}]".to_owned()),
            Just("[{\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}},5]".to_owned()),
            Just("{\"prompt_tokens\":3,\"completion_tokens_details\":{\"reasoning_tokens\":1}}".to_owned()),
            Just(
                "{\"total_tokens\":1.5,\"prompt_tokens\":\"4\",\"prompt_tokens_details\":{\"cached_tokens\":2},\
                 \"prompt_tokens_details\":null,\"completion_tokens\":12345678901234567890}"
                    .to_owned()
            ),
            Just(
                "{\"prompt_tokens_details\":{\"cached_tokens\":2,\"reasoning_tokens\":9},\"completion_tokens_details\":\
                 {\"reasoning_tokens\":0},\"completion_tokens\":7}"
                    .to_owned()
            ),
            "[ a-z\u{e9}]{0,6}".prop_map(|t| serde_json::to_string(&t).expect("a string")),
        ]
    }

    fn members(keys: &'static [&'static str]) -> impl Strategy<Value = Vec<(&'static str, String)>> {
        proptest::collection::vec((proptest::sample::select(keys), member_value()), 0..6)
    }

    fn object(members: &[(&str, String)], sep: &str) -> String {
        let members: Vec<String> = members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", members.join(sep))
    }

    proptest! {
        /// Whatever the members, their order, repeats and types, an answer reads the same
        /// in place as walked whole.
        #[test]
        fn in_place_reads_as_the_whole_walk(
            top in members(&["id", "model", "created", "usage", "object", "system_fingerprint"]),
            choice in members(&["finish_reason", "stop_reason", "index", "logprobs"]),
            message in members(&["content", "reasoning", "reasoning_content", "refusal", "tool_calls", "role"]),
            more_choices in 0..3usize,
            spaced in proptest::bool::ANY,
        ) {
            let sep = if spaced { " ,\n " } else { "," };
            let mut choice = choice;
            choice.push(("message", object(&message, sep)));
            let choices = vec![object(&choice, sep); more_choices + 1].join(sep);
            let mut top = top;
            top.push(("choices", format!("[{choices}]")));
            in_place_agrees(&object(&top, sep));
        }
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
