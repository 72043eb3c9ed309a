//! A whole answer, or one chunk's payload, read in one walk over its bytes: whether it
//! is JSON at all, its top-level `error` and `model`, and what its choices carry. The
//! router decides everything it needs about an answer from this one reading.

use super::json::Scanner;
use super::spans::{AnswerSpans, Span, usage};
use super::substance::{Substance, choices};
use bytes::Bytes;
use std::ops::Range;

/// `text` as a JSON string, quotes included.
pub fn json_string(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2);
    // Writing a `str` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut out, text);
    out
}

/// The body is not one well-formed JSON value (or not UTF-8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not one well-formed JSON value (stopped at byte {0})")]
pub struct Unreadable(pub usize);

/// What one reading found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// The top-level `error` member's value, when present and not `null`.
    error: Option<Range<usize>>,
    /// The top-level `model` member's value.
    model: Option<Range<usize>>,
    /// Where the top-level object's closing brace is (`None`: not an object).
    close: Option<usize>,
    /// What the choices carry; `None` when the body is not shaped like a chat answer.
    pub substance: Option<Substance>,
    /// Where the members a dialect reads are, when `recorded`.
    spans: AnswerSpans,
    recorded: bool,
}

impl Answer {
    /// Reads `json`, checking it is one well-formed JSON value.
    pub fn read(json: &[u8]) -> Result<Answer, Unreadable> {
        Self::walk(json, false)
    }

    /// [`read`](Self::read), recording where the members a dialect reads are (see
    /// [`with_model_spans`](Self::with_model_spans)).
    pub fn read_recording(json: &[u8]) -> Result<Answer, Unreadable> {
        Self::walk(json, true)
    }

    fn walk(json: &[u8], record: bool) -> Result<Answer, Unreadable> {
        std::str::from_utf8(json).map_err(|e| Unreadable(e.valid_up_to()))?;
        let mut s = Scanner::new(json);
        s.ws();
        let mut answer = Answer::default();
        let walked = if s.peek() == Some(b'{') {
            let mut substance = Some(Substance::default());
            let walked = s.members(|s, key| {
                match key {
                    b"choices" => return choices(s, &mut substance, record.then_some(&mut answer.spans)),
                    b"usage" if record => return usage(s, &mut answer.spans),
                    _ => {}
                }
                let start = s.i;
                s.value()?;
                let value = start..s.i;
                match key {
                    b"error" => answer.error = (s.b[value.clone()] != *b"null").then_some(value),
                    b"model" => answer.model = Some(value),
                    b"id" => answer.spans.id = Span::of(value),
                    b"created" => answer.spans.created = Span::of(value),
                    _ => {}
                }
                Some(())
            });
            answer.close = Some(s.i.saturating_sub(1));
            answer.recorded = record;
            answer.substance = substance;
            walked
        } else {
            s.value()
        };
        if walked.is_none() || !s.at_end() {
            return Err(Unreadable(s.i));
        }
        Ok(answer)
    }

    /// The top-level error object, when the answer is one.
    pub fn error(&self, json: &[u8]) -> Option<serde_json::Value> {
        serde_json::from_slice(&json[self.error.clone()?]).ok()
    }

    /// `json` (the bytes this was read from) with its top-level `model` set to `value`
    /// (a JSON string, quotes included): the same bytes when it already is, the member's
    /// value replaced or the member added otherwise, every other byte as it came. A body
    /// that is not an object goes on as it came.
    pub fn with_model(&self, json: Bytes, value: &[u8]) -> Bytes {
        self.model_set(&json, value, true).map_or(json, Bytes::from)
    }

    /// [`with_model`](Self::with_model), and where the members a dialect reads are in the
    /// bytes it returns; `None` for those when the body is not shaped like a chat answer.
    pub fn with_model_spans(&self, json: Bytes, value: &[u8]) -> (Bytes, Option<AnswerSpans>) {
        let Some(out) = self.model_set(&json, value, true) else {
            let spans = AnswerSpans { model: self.model.clone().map_or_else(Span::default, Span::of), ..self.spans };
            return (json, self.chat_shaped().then_some(spans));
        };
        let spans = match (&self.model, self.close) {
            // Replaced: what follows the old value moved by the difference in length.
            (Some(r), _) => AnswerSpans {
                model: Span::of(r.start..r.start + value.len()),
                ..self.spans.shifted(r.end, value.len() as isize - r.len() as isize)
            },
            // Added before the closing brace, after every member recorded.
            _ => {
                let end = out.len() - (json.len() - self.close.unwrap_or(json.len()));
                AnswerSpans { model: Span::of(end - value.len()..end), ..self.spans }
            }
        };
        (Bytes::from(out), self.chat_shaped().then_some(spans))
    }

    /// Whether spans were recorded for a body shaped like a chat answer.
    fn chat_shaped(&self) -> bool {
        self.recorded && self.substance.is_some()
    }

    /// `json` with its top-level `model` set to `value`, the member added when absent and
    /// `insert`; `None` when nothing changes.
    pub(super) fn model_set(&self, json: &[u8], value: &[u8], insert: bool) -> Option<Vec<u8>> {
        let (at, resume, member): (usize, usize, &[u8]) = match (&self.model, self.close) {
            (Some(r), _) if json[r.clone()] == *value => return None,
            (Some(r), _) => (r.start, r.end, b""),
            (None, Some(close)) if insert => {
                let empty = json[..close].trim_ascii_end().ends_with(b"{");
                (close, close, if empty { b"\"model\":" } else { b",\"model\":" })
            }
            (None, _) => return None,
        };
        let mut out = Vec::with_capacity(json.len() + member.len() + value.len());
        out.extend_from_slice(&json[..at]);
        out.extend_from_slice(member);
        out.extend_from_slice(value);
        out.extend_from_slice(&json[resume..]);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `body` and sets its model to `m:free`: the result, or `unreadable`.
    fn check(body: &str, expected: &str) {
        let got = match Answer::read(body.as_bytes()) {
            Ok(a) => {
                String::from_utf8(a.with_model(Bytes::from(body.to_owned()), br#""m:free""#).to_vec()).expect("utf-8")
            }
            Err(_) => "unreadable".to_owned(),
        };
        assert_eq!(got, expected, "{body}");
    }

    #[test]
    fn sets_the_model_in_one_reading() {
        let same = r#"{"model":"m:free","choices":[]}"#;
        check(same, same);
        check(r#"{"choices":[]}"#, r#"{"choices":[],"model":"m:free"}"#);
        // Replaced in place, every other byte as it came (spacing, order, nested models).
        check(
            r#"{ "id": "x", "model" : "m", "choices": [{"model": "inner", "s": "\"model\""}] }"#,
            r#"{ "id": "x", "model" : "m:free", "choices": [{"model": "inner", "s": "\"model\""}] }"#,
        );
        check(r#"{"model":null,"n":1.5e3}"#, r#"{"model":"m:free","n":1.5e3}"#);
        check("{ }", r#"{ "model":"m:free"}"#);
        check(r#"{"a":{"model":"x"}}"#, r#"{"a":{"model":"x"},"model":"m:free"}"#);
        // JSON that is not an object goes on untouched; what is not JSON is unreadable.
        check("[1,2]", "[1,2]");
        for bad in [r#"{"model":"m""#, r#"{"a":1}x"#, r#"{"a":"unterminated}"#, "", "<html>", r#"{"choices":["#] {
            check(bad, "unreadable");
        }
        assert_eq!(Answer::read(b"{\"a\":\"\xff\"}"), Err(Unreadable(6)), "not UTF-8");
    }

    #[test]
    fn finds_the_error_and_the_substance() {
        let body = br#"{"error":{"code":429,"message":"slow down"},"choices":[{"message":{"content":"hi"}}]}"#;
        let a = Answer::read(body).expect("readable");
        assert_eq!(a.error(body).expect("an error")["code"], 429);
        assert!(a.substance.expect("chat-shaped").content);
        let body = br#"{"error":null,"choices":{"odd":1}}"#;
        let a = Answer::read(body).expect("readable: only oddly shaped");
        assert_eq!((a.error(body), a.substance), (None, None));
        assert_eq!(Answer::read(br#"{"choices":{"odd":}}"#).map(|_| ()), Err(Unreadable(18)));
    }

    #[test]
    fn records_where_the_members_are_in_the_body_it_returns() {
        let text = |bytes: &[u8], span: Span| span.get(bytes).map(|b| String::from_utf8_lossy(b).into_owned());
        for (body, model) in [
            // The model replaced by a longer and a shorter id, added, and left as it was.
            (
                r#"{"id":"g","model":"m","created":7,"choices":[{"finish_reason":"stop","message":{"content":"hi"}}],"usage":{"a":1}}"#,
                r#""m:free""#,
            ),
            (
                r#"{"id":"g","model":"a-much-longer-id","created":7,"choices":[{"finish_reason":"stop","message":{"content":"hi"}}],"usage":{"a":1}}"#,
                r#""m""#,
            ),
            (
                r#"{"id":"g","created":7,"choices":[{"finish_reason":"stop","message":{"content":"hi"}}],"usage":{"a":1}}"#,
                r#""m""#,
            ),
            (
                r#"{"id":"g","model":"m","created":7,"choices":[{"finish_reason":"stop","message":{"content":"hi"}}],"usage":{"a":1}}"#,
                r#""m""#,
            ),
            // The model last, after every recorded member.
            (
                r#"{"id":"g","created":7,"choices":[{"finish_reason":"stop","message":{"content":"hi"}}],"usage":{"a":1},"model":"x"}"#,
                r#""m:free""#,
            ),
        ] {
            let answer = Answer::read_recording(body.as_bytes()).expect("readable");
            let (out, spans) = answer.with_model_spans(Bytes::from(body.to_owned()), model.as_bytes());
            let spans = spans.expect("a chat answer");
            assert_eq!(text(&out, spans.model).as_deref(), Some(model), "{body}");
            assert_eq!(text(&out, spans.id).as_deref(), Some(r#""g""#), "{body}");
            assert_eq!(text(&out, spans.created).as_deref(), Some("7"), "{body}");
            assert_eq!(text(&out, spans.finish_reason).as_deref(), Some(r#""stop""#), "{body}");
            assert_eq!(text(&out, spans.content).as_deref(), Some(r#""hi""#), "{body}");
            assert_eq!(text(&out, spans.usage).as_deref(), Some(r#"{"a":1}"#), "{body}");
            assert_eq!(text(&out, spans.tool_calls), None, "{body}");
        }
        // Only the first choice, a repeated message as its last, and `delta` never.
        let body = br#"{"choices":[{"message":{"content":"a","refusal":"r"},"message":{"tool_calls":[]},"stop_reason":"E"},{"message":{"content":"b"}}]}"#;
        let (out, spans) =
            Answer::read_recording(body).expect("readable").with_model_spans(Bytes::from_static(body), b"\"m\"");
        let spans = spans.expect("a chat answer");
        assert_eq!((text(&out, spans.content), text(&out, spans.refusal)), (None, None));
        assert_eq!(text(&out, spans.tool_calls).as_deref(), Some("[]"));
        assert_eq!(text(&out, spans.stop_reason).as_deref(), Some(r#""E""#));
        let body = br#"{"choices":[{"delta":{"content":"a"}}]}"#;
        let spans =
            Answer::read_recording(body).expect("readable").with_model_spans(Bytes::from_static(body), b"\"m\"").1;
        assert_eq!(spans.map(|s| s.content), Some(Span::default()));
        // The usage's counts, nested ones included.
        let body = br#"{"choices":[],"usage":{"prompt_tokens":5,"prompt_tokens_details":{"cached_tokens":2},
            "completion_tokens_details":{"x":[1],"reasoning_tokens":3},"total_tokens":9}}"#;
        let (out, spans) =
            Answer::read_recording(body).expect("readable").with_model_spans(Bytes::from_static(body), b"\"m\"");
        let spans = spans.expect("a chat answer");
        let counts = [spans.prompt_tokens, spans.cached_tokens, spans.reasoning_tokens, spans.total_tokens];
        assert_eq!(counts.map(|c| text(&out, c)), ["5", "2", "3", "9"].map(|c| Some(c.to_owned())));
        assert_eq!(text(&out, spans.completion_tokens), None);
        // Without recording (the chat path), no spans.
        let body = br#"{"choices":[{"message":{"content":"a"}}]}"#;
        assert_eq!(Answer::read(body).expect("readable").with_model_spans(Bytes::from_static(body), b"\"m\"").1, None);
        // Not shaped like a chat answer: nothing to read in place.
        for body in [&br#"{"choices":{"odd":1}}"#[..], b"[1]"] {
            let spans =
                Answer::read_recording(body).expect("readable").with_model_spans(Bytes::from_static(body), b"\"m\"").1;
            assert_eq!(spans, None);
        }
    }
}
