//! What a chat answer (a whole body) or one stream chunk carries: enough to tell an
//! answer from an empty one without building a `Value` tree of its content.

use super::json::Scanner;
use super::spans::{AnswerSpans, Span, message_member};

/// What a chat answer (a whole body) or one stream chunk carries: enough to tell an
/// answer from an empty one without building a `Value` tree of the content.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Substance {
    /// Some choice has text, tool calls, images or audio.
    pub content: bool,
    /// Some choice has reasoning (`reasoning`, `reasoning_details`).
    pub reasoning: bool,
    /// Some choice finished (a non-null `finish_reason`).
    pub finished: bool,
    /// Some choice finished with `length` (cut by the token limit: not empty by choice).
    pub cut_by_length: bool,
    /// The body or chunk has a `choices` member.
    pub has_choices: bool,
}

impl Substance {
    /// Whether this says something to the client: content, or reasoning when
    /// `reasoning_counts` (the request asked for reasoning).
    pub fn says_something(&self, reasoning_counts: bool) -> bool {
        self.content || (reasoning_counts && self.reasoning)
    }

    /// A whole answer that is empty: choices without content, tool calls (or asked-for
    /// reasoning), and not cut by the token limit. An answer without `choices` is not
    /// judged.
    pub fn is_empty_answer(&self, reasoning_counts: bool) -> bool {
        self.has_choices && !self.says_something(reasoning_counts) && !self.cut_by_length
    }
}

/// Walks the value of an answer's `choices` (checking it is JSON) and adds what its
/// choices carry to `out`; `out` becomes `None` when they are not shaped like a chat
/// answer's. The first choice's members a dialect reads are recorded in `spans`.
pub(super) fn choices(s: &mut Scanner<'_>, out: &mut Option<Substance>, spans: Option<&mut AnswerSpans>) -> Option<()> {
    let start = s.i;
    if s.null() {
        return Some(());
    }
    if let Some(sub) = out.as_mut() {
        sub.has_choices = true;
        let mut first = spans;
        if s.elements(|s| choice(s, sub, first.take())).is_some() {
            return Some(());
        }
    }
    s.i = start;
    *out = None;
    s.value()
}

/// One of `choices`: its `message` or `delta`, and its `finish_reason`; where they are
/// when `spans` (the first choice).
fn choice(s: &mut Scanner<'_>, out: &mut Substance, mut spans: Option<&mut AnswerSpans>) -> Option<()> {
    s.members(|s, key| match key {
        b"message" => {
            // A repeated `message` replaces the one before, as in a tree.
            if let Some(spans) = spans.as_deref_mut() {
                spans.forget_message();
            }
            if s.null() { Some(()) } else { part(s, out, spans.as_deref_mut()) }
        }
        b"delta" if s.null() => Some(()),
        b"delta" => part(s, out, None),
        b"finish_reason" if s.null() => {
            if let Some(spans) = spans.as_deref_mut() {
                spans.finish_reason = Span::default();
            }
            Some(())
        }
        b"finish_reason" => {
            let reason = s.string()?;
            out.finished = true;
            out.cut_by_length |= &s.b[reason.clone()] == b"\"length\"";
            if let Some(spans) = spans.as_deref_mut() {
                spans.finish_reason = Span::of(reason);
            }
            Some(())
        }
        b"stop_reason" if spans.is_some() => {
            let start = s.i;
            s.value()?;
            if let Some(spans) = spans.as_deref_mut() {
                spans.stop_reason = Span::of(start..s.i);
            }
            Some(())
        }
        _ => s.value(),
    })
}

/// A choice's `message` or `delta`: what it holds, and where (a first choice's message).
fn part(s: &mut Scanner<'_>, out: &mut Substance, mut spans: Option<&mut AnswerSpans>) -> Option<()> {
    s.members(|s, key| {
        let start = s.i;
        match key {
            b"content" | b"tool_calls" | b"function_call" | b"images" | b"audio" => out.content |= s.filled()?,
            b"reasoning" | b"reasoning_details" => out.reasoning |= s.filled()?,
            _ => s.value()?,
        }
        if let Some(span) = message_member(spans.as_deref_mut(), key) {
            *span = Span::of(start..s.i);
        }
        Some(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What one reading of `payload` says its choices carry.
    fn of(payload: &[u8]) -> Option<Substance> {
        super::super::answer::Answer::read(payload).ok()?.substance
    }

    #[test]
    fn tells_empty_answers_from_answers() {
        let judge = |b: &str| of(b.as_bytes()).expect("json");
        let empty = |b: &str, reasoning_counts: bool| judge(b).is_empty_answer(reasoning_counts);
        assert!(empty(
            r#"{"choices":[{"message":{"role":"assistant","content":null},"finish_reason":"stop"}]}"#,
            false
        ));
        assert!(empty(
            r#"{"choices":[{"message":{"content":"  \n","refusal":"I can't"},"finish_reason":"content_filter"}]}"#,
            false
        ));
        assert!(empty(r#"{"choices":[]}"#, false));
        assert!(!empty(r#"{"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}]}"#, false));
        assert!(!empty(
            r#"{"choices":[{"message":{"content":[{"type":"text","text":"x"}]},"finish_reason":"stop"}]}"#,
            false
        ));
        assert!(!empty(
            r#"{"choices":[{"message":{"content":"","tool_calls":[{"id":"c"}]},"finish_reason":"tool_calls"}]}"#,
            false
        ));
        assert!(
            !empty(r#"{"choices":[{"message":{"content":""},"finish_reason":"length"}]}"#, false),
            "cut by the limit"
        );
        let reasoning_only =
            r#"{"choices":[{"message":{"content":"","reasoning":"thinking..."},"finish_reason":"stop"}]}"#;
        assert!(empty(reasoning_only, false));
        assert!(!empty(reasoning_only, true), "reasoning was asked for");
        assert!(!empty(r#"{"id":"x","object":"other"}"#, false), "no choices: not judged");
        assert!(of(b"not json").is_none());
        let role_only = judge(r#"{"choices":[{"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#);
        assert!(!role_only.says_something(true) && !role_only.finished);
        let first_token = judge(r#"{"choices":[{"delta":{"content":" "},"finish_reason":null}]}"#);
        assert!(!first_token.content, "whitespace alone is not yet an answer");
        let finish = judge(r#"{"choices":[{"delta":{"content":""},"finish_reason":"stop"}]}"#);
        assert!(finish.finished && !finish.cut_by_length);
    }

    #[test]
    fn reads_escapes_nesting_and_odd_shapes() {
        let of = |b: &str| of(b.as_bytes());
        let content = |b: &str| of(b).expect("readable").content;
        assert!(!content(r#"{"choices":[{"message":{"content":"\n\t \u0020"}}]}"#), "escaped whitespace");
        assert!(content(r#"{"choices":[{"message":{"content":"\u00e9"}}]}"#), "an escaped letter");
        assert!(content(r#"{"choices":[{"message":{"content":"  é"}}]}"#));
        assert!(!content(r#"{"choices":[{"message":{"content":[ ]}}]}"#));
        assert!(content(r#"{"choices":[{"message":{"content":[{}]}}]}"#));
        assert!(content(r#"{"x":{"y":"}]\"{"},"choices":[{"delta":{"audio":{"id":"a"}}}]}"#));
        assert!(!of(r#"{"choices":null}"#).expect("readable").has_choices);
        for unreadable in [r#"{"choices":{}}"#, r#"{"choices":[1]}"#, r#"{"choices":[]} x"#, r#"{"a":"#, "[]"] {
            assert_eq!(of(unreadable), None, "{unreadable}");
        }
    }

    /// The serde reading this walk replaced, kept as the reference it must agree with.
    mod reference {
        use super::super::Substance;

        #[derive(serde::Deserialize)]
        struct Shape {
            #[serde(default)]
            choices: Option<Vec<Choice>>,
        }
        #[derive(serde::Deserialize)]
        struct Choice {
            #[serde(default)]
            message: Option<Part>,
            #[serde(default)]
            delta: Option<Part>,
            #[serde(default)]
            finish_reason: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Part {
            #[serde(default)]
            content: Option<serde_json::Value>,
            #[serde(default)]
            tool_calls: Option<serde_json::Value>,
            #[serde(default)]
            reasoning: Option<serde_json::Value>,
        }

        fn filled(v: Option<&serde_json::Value>) -> bool {
            match v {
                None | Some(serde_json::Value::Null) => false,
                Some(serde_json::Value::String(s)) => !s.trim().is_empty(),
                Some(serde_json::Value::Array(a)) => !a.is_empty(),
                Some(serde_json::Value::Object(o)) => !o.is_empty(),
                Some(_) => true,
            }
        }

        pub(super) fn of(payload: &[u8]) -> Option<Substance> {
            let shape: Shape = serde_json::from_slice(payload).ok()?;
            let mut s = Substance { has_choices: shape.choices.is_some(), ..Substance::default() };
            for choice in shape.choices.into_iter().flatten() {
                for part in [choice.message, choice.delta].into_iter().flatten() {
                    s.content |= filled(part.content.as_ref()) || filled(part.tool_calls.as_ref());
                    s.reasoning |= filled(part.reasoning.as_ref());
                }
                if let Some(reason) = choice.finish_reason {
                    s.finished = true;
                    s.cut_by_length |= reason == "length";
                }
            }
            Some(s)
        }
    }

    fn member_value() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            Just("null".to_owned()),
            Just("\"\"".to_owned()),
            Just("\" \\n \"".to_owned()),
            Just("\"\\u00e9\"".to_owned()),
            Just("\"}]{[\\\"\"".to_owned()),
            Just("[]".to_owned()),
            Just("[{\"type\":\"text\",\"text\":\"\"}]".to_owned()),
            Just("{}".to_owned()),
            Just("{\"a\":[1,{\"b\":null}]}".to_owned()),
            Just("0".to_owned()),
            Just("false".to_owned()),
            "[ a-z\u{e9}\u{3000}]{0,4}".prop_map(|t| serde_json::to_string(&t).expect("a string")),
        ]
    }

    proptest::proptest! {
        /// The walk reads what serde reads, on answers and chunks of every shape the
        /// router judges (content, tool calls, reasoning, finish reasons, odd members).
        #[test]
        fn agrees_with_serde(
            choices in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["message", "delta"]),
                    proptest::collection::vec(
                        (proptest::sample::select(vec!["content", "tool_calls", "reasoning", "role", "refusal"]), member_value()),
                        0..4,
                    ),
                    proptest::sample::select(vec!["null", "\"stop\"", "\"length\"", ""]),
                ),
                0..3,
            ),
            spaced in proptest::bool::ANY,
        ) {
            let sep = if spaced { " , " } else { "," };
            let choices: Vec<String> = choices
                .iter()
                .map(|(part, members, reason)| {
                    // serde refuses a duplicate field: each member once.
                    let mut seen = std::collections::HashSet::new();
                    let members: Vec<String> = members
                        .iter()
                        .filter(|(k, _)| seen.insert(*k))
                        .map(|(k, v)| format!("\"{k}\": {v}"))
                        .collect();
                    let reason = if reason.is_empty() { String::new() } else { format!("{sep}\"finish_reason\":{reason}") };
                    format!("{{\"index\":0{sep}\"{part}\":{{{}}}{reason}}}", members.join(sep))
                })
                .collect();
            let body = format!("{{\"id\":\"x\"{sep}\"choices\":[{}]{sep}\"model\":\"m\"}}", choices.join(sep));
            proptest::prop_assert_eq!(of(body.as_bytes()), reference::of(body.as_bytes()), "{}", body);
        }
    }
}
