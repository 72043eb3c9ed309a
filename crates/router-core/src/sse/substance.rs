//! What a chat answer (a whole body) or one stream chunk carries: enough to tell an
//! answer from an empty one without building a `Value` tree of its content.

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
    /// Reads a chat completion body or chunk payload; `None` when it is not JSON.
    pub fn of(payload: &[u8]) -> Option<Substance> {
        let shape: Shape<'_> = serde_json::from_slice(payload).ok()?;
        let mut s = Substance { has_choices: shape.choices.is_some(), ..Substance::default() };
        for choice in shape.choices.into_iter().flatten() {
            for part in [choice.message, choice.delta].into_iter().flatten() {
                s.content |=
                    part.content.0 || part.tool_calls.0 || part.function_call.0 || part.images.0 || part.audio.0;
                s.reasoning |= part.reasoning.0 || part.reasoning_details.0;
            }
            if let Some(reason) = choice.finish_reason {
                s.finished = true;
                s.cut_by_length |= reason == "length";
            }
        }
        Some(s)
    }

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

#[derive(serde::Deserialize)]
struct Shape<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<ChoiceShape<'a>>>,
}

#[derive(serde::Deserialize)]
struct ChoiceShape<'a> {
    #[serde(default)]
    message: Option<PartShape>,
    #[serde(default)]
    delta: Option<PartShape>,
    #[serde(default, borrow)]
    finish_reason: Option<std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct PartShape {
    #[serde(default)]
    content: Filled,
    #[serde(default)]
    tool_calls: Filled,
    #[serde(default)]
    function_call: Filled,
    #[serde(default)]
    images: Filled,
    #[serde(default)]
    audio: Filled,
    #[serde(default)]
    reasoning: Filled,
    #[serde(default)]
    reasoning_details: Filled,
}

/// Whether a member holds something: a string with a visible character, a non-empty
/// list or object, a number or a boolean. `null`, `""` and whitespace are nothing.
#[derive(Default)]
struct Filled(bool);

impl<'de> serde::Deserialize<'de> for Filled {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Filled;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Filled, E> {
                Ok(Filled(!v.trim().is_empty()))
            }
            fn visit_unit<E>(self) -> Result<Filled, E> {
                Ok(Filled(false))
            }
            fn visit_none<E>(self) -> Result<Filled, E> {
                Ok(Filled(false))
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Filled, D::Error> {
                d.deserialize_any(V)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Filled, E> {
                Ok(Filled(true))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Filled, E> {
                Ok(Filled(true))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Filled, E> {
                Ok(Filled(true))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Filled, E> {
                Ok(Filled(true))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Filled, A::Error> {
                let mut any = false;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    any = true;
                }
                Ok(Filled(any))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Filled, A::Error> {
                let mut any = false;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                    any = true;
                }
                Ok(Filled(any))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_empty_answers_from_answers() {
        let judge = |b: &str| Substance::of(b.as_bytes()).expect("json");
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
        assert!(Substance::of(b"not json").is_none());
        let role_only = judge(r#"{"choices":[{"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#);
        assert!(!role_only.says_something(true) && !role_only.finished);
        let first_token = judge(r#"{"choices":[{"delta":{"content":" "},"finish_reason":null}]}"#);
        assert!(!first_token.content, "whitespace alone is not yet an answer");
        let finish = judge(r#"{"choices":[{"delta":{"content":""},"finish_reason":"stop"}]}"#);
        assert!(finish.finished && !finish.cut_by_length);
    }
}
