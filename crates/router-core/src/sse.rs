//! Server-sent events, line by line, without buffering whole events: enough to spot
//! error chunks and to make every chunk's `model` name the model that answered.

use bytes::{Bytes, BytesMut};
use memchr::memmem;

/// Splits a byte stream into complete lines (each with its `\n`), keeping only the
/// unfinished tail between chunks. Upstreams send whole events per chunk, so in
/// practice nothing waits here.
#[derive(Debug, Default)]
pub struct LineSplitter {
    tail: BytesMut,
}

impl LineSplitter {
    /// Feeds a chunk; calls `line` for every complete line, in order.
    pub fn feed(&mut self, chunk: &[u8], mut line: impl FnMut(&[u8])) {
        let mut rest = chunk;
        if !self.tail.is_empty() {
            match memchr::memchr(b'\n', rest) {
                None => {
                    self.tail.extend_from_slice(rest);
                    return;
                }
                Some(i) => {
                    self.tail.extend_from_slice(&rest[..=i]);
                    let joined = std::mem::take(&mut self.tail);
                    line(&joined);
                    rest = &rest[i + 1..];
                }
            }
        }
        while let Some(i) = memchr::memchr(b'\n', rest) {
            line(&rest[..=i]);
            rest = &rest[i + 1..];
        }
        self.tail.extend_from_slice(rest);
    }

    /// The length of the line begun and not yet finished.
    pub fn pending(&self) -> usize {
        self.tail.len()
    }

    /// Whatever is left when the stream ends without a final newline.
    pub fn finish(&mut self) -> Bytes {
        std::mem::take(&mut self.tail).freeze()
    }
}

/// The payload of a `data:` line, without the prefix and line ending.
pub fn data_payload(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_prefix(b"data:")?;
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    Some(trim_eol(rest))
}

fn trim_eol(mut s: &[u8]) -> &[u8] {
    while let [head @ .., b'\n' | b'\r'] = s {
        s = head;
    }
    s
}

/// If this `data:` payload is a chunk with a top-level `error` key, its error object.
/// Whatever its `finish_reason`, such a chunk means the generation failed.
pub fn error_in_payload(payload: &[u8]) -> Option<serde_json::Value> {
    // Cheap pre-check: most chunks are content deltas without the word.
    memmem::find(payload, b"\"error\"")?;
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    v.get("error").filter(|e| !e.is_null()).cloned()
}

/// Rewrites the `model` of every chunk that carries one to the chosen model, leaving
/// all other bytes (comments, `[DONE]`, other fields) as they came, and counts the error
/// events it passes on (chunks with a top-level `error`), in the same pass over the lines.
#[derive(Debug)]
pub struct ModelRewriter {
    lines: LineSplitter,
    /// `"model":"<chosen>"` as it appears in compact JSON: chunks that already match
    /// are passed through without parsing.
    expected: Vec<u8>,
    error_events: u64,
}

impl ModelRewriter {
    pub fn new(model: &str) -> Self {
        ModelRewriter { lines: LineSplitter::default(), expected: model_member(model), error_events: 0 }
    }

    /// Rewrites one chunk. Returns what can be sent now; an unfinished line waits for
    /// the rest of it.
    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(chunk.len() + 16);
        let (expected, errors) = (&self.expected, &mut self.error_events);
        self.lines.feed(chunk, |line| *errors += u64::from(rewrite_line(line, expected, &mut out)));
        out.freeze()
    }

    pub fn finish(&mut self) -> Bytes {
        let rest = self.lines.finish();
        let mut out = BytesMut::new();
        self.error_events += u64::from(rewrite_line(&rest, &self.expected, &mut out));
        out.freeze()
    }

    /// Error events passed on so far.
    pub fn error_events(&self) -> u64 {
        self.error_events
    }
}

/// Writes `line` to `out` with its `model` rewritten; true when it is an error event.
fn rewrite_line(line: &[u8], expected: &[u8], out: &mut BytesMut) -> bool {
    let payload = match data_payload(line) {
        Some(p) if p.first() == Some(&b'{') => p,
        _ => {
            out.extend_from_slice(line);
            return false;
        }
    };
    let is_error = error_in_payload(payload).is_some();
    // `expected` starts with `"model":`, so a line that already names the model is
    // settled by one search.
    if memmem::find(payload, expected).is_some() || memmem::find(payload, b"\"model\"").is_none() {
        out.extend_from_slice(line);
        return is_error;
    }
    // `expected` is `"model":` followed by the value.
    let value = &expected[b"\"model\":".len()..];
    match with_top_level_model(payload, value, false) {
        Some(Some(rewritten)) => {
            // `payload` lies inside `line`: the prefix and the line ending stay as they came.
            let start = payload.as_ptr() as usize - line.as_ptr() as usize;
            out.extend_from_slice(&line[..start]);
            out.extend_from_slice(&rewritten);
            out.extend_from_slice(&line[start + payload.len()..]);
        }
        _ => out.extend_from_slice(line),
    }
    is_error
}

/// `"model":"<id>"` as it appears in compact JSON.
fn model_member(model: &str) -> Vec<u8> {
    let mut member = b"\"model\":".to_vec();
    let _ = serde_json::to_writer(&mut member, model);
    member
}

/// Sets `model` in a whole (non-streamed) JSON response when upstream named another
/// model or none. Bodies that already name the chosen model come back untouched; others
/// get the top-level member's value replaced (or the member added) in one pass over the
/// bytes, without building the answer as a tree: an answer may be megabytes long.
pub fn ensure_model(body: Bytes, model: &str) -> Bytes {
    // The usual case, settled by one search as in the stream rewriter: no parse.
    if memmem::find(&body, &model_member(model)).is_some() {
        return body;
    }
    let mut value = Vec::with_capacity(model.len() + 2);
    let _ = serde_json::to_writer(&mut value, model);
    match with_top_level_model(&body, &value, true) {
        Some(Some(rewritten)) => Bytes::from(rewritten),
        // Already right, or not a JSON object: not ours to fix; upstream's bytes go on.
        Some(None) | None => body,
    }
}

/// `json` (an object) with its top-level `model` set to `value` (a JSON string), the
/// member added when absent and `insert`: `Some(None)` when nothing changes, `None` when
/// `json` is not a well-formed object.
fn with_top_level_model(json: &[u8], value: &[u8], insert: bool) -> Option<Option<Vec<u8>>> {
    let mut s = Scanner { b: json, i: 0 };
    s.ws();
    s.eat(b'{')?;
    let mut found = None;
    s.ws();
    if s.peek() == Some(b'}') {
        s.i += 1;
    } else {
        loop {
            s.ws();
            let key = s.string()?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            let start = s.i;
            s.value()?;
            if &json[key.start + 1..key.end - 1] == b"model" {
                found = Some(start..s.i);
            }
            s.ws();
            match s.next()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
    }
    let close = s.i - 1;
    s.ws();
    if s.i != json.len() {
        return None;
    }
    let mut out = Vec::with_capacity(json.len() + value.len() + 10);
    match found {
        Some(r) if &json[r.clone()] == value => return Some(None),
        None if !insert => return Some(None),
        Some(r) => {
            out.extend_from_slice(&json[..r.start]);
            out.extend_from_slice(value);
            out.extend_from_slice(&json[r.end..]);
        }
        None => {
            let empty = json[..close].trim_ascii_end().ends_with(b"{");
            out.extend_from_slice(&json[..close]);
            out.extend_from_slice(if empty { b"\"model\":" } else { b",\"model\":" });
            out.extend_from_slice(value);
            out.extend_from_slice(&json[close..]);
        }
    }
    Some(Some(out))
}

/// Just enough of a JSON reader to find a top-level member: it checks the structure it
/// walks (strings, nesting) and skips scalars by their delimiters.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// A string, quotes included.
    fn string(&mut self) -> Option<std::ops::Range<usize>> {
        let start = self.i;
        self.eat(b'"')?;
        loop {
            let rest = self.b.get(self.i..)?;
            let at = memchr::memchr2(b'"', b'\\', rest)?;
            self.i += at + 1;
            if rest[at] == b'"' {
                return Some(start..self.i);
            }
            self.i += 1; // the escaped character
        }
    }

    fn value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => depth -= 1,
                        _ => {}
                    }
                    self.i += 1;
                    if depth == 0 {
                        return Some(());
                    }
                }
            }
            _ => {
                let start = self.i;
                while !matches!(self.peek(), None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')) {
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
        }
    }
}

/// An in-band error chunk in OpenRouter's format, ending the stream.
pub fn error_chunk(model: &str, code: u16, message: &str) -> Bytes {
    let chunk = serde_json::json!({
        "object": "chat.completion.chunk",
        "model": model,
        "error": {"code": code, "message": message},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    });
    Bytes::from(format!("data: {chunk}\n\ndata: [DONE]\n\n"))
}

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

/// Inserts `trailer` (whole SSE events) before the stream's `data: [DONE]` line, or at
/// its end when it has none: how `openrouter_metadata` rides on the final chunk.
pub fn insert_before_done(stream: crate::upstream::ByteStream, trailer: Bytes) -> crate::upstream::ByteStream {
    use futures_util::StreamExt;
    let state = (stream, Some(trailer));
    Box::pin(futures_util::stream::unfold(state, |(mut stream, mut trailer)| async move {
        let Some(t) = trailer.as_ref() else {
            let next = stream.next().await?;
            return Some((next, (stream, None)));
        };
        match stream.next().await {
            None => {
                let t = t.clone();
                Some((Ok(t), (stream, None)))
            }
            Some(Ok(chunk)) => match find_done(&chunk) {
                Some(at) => {
                    let mut out = BytesMut::with_capacity(chunk.len() + t.len());
                    out.extend_from_slice(&chunk[..at]);
                    out.extend_from_slice(t);
                    out.extend_from_slice(&chunk[at..]);
                    trailer = None;
                    Some((Ok(out.freeze()), (stream, trailer)))
                }
                None => Some((Ok(chunk), (stream, trailer))),
            },
            Some(Err(e)) => Some((Err(e), (stream, trailer))),
        }
    }))
}

/// Where a `data: [DONE]` line starts in `chunk`.
fn find_done(chunk: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = memmem::find(&chunk[from..], b"data: [DONE]").map(|i| i + from) {
        if i == 0 || chunk[i - 1] == b'\n' {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// One SSE event carrying `member: value` in an otherwise empty chunk.
pub fn member_chunk(model: &str, member: &str, value: &serde_json::Value) -> Bytes {
    let mut chunk = serde_json::Map::new();
    chunk.insert("object".into(), "chat.completion.chunk".into());
    chunk.insert("model".into(), model.into());
    chunk.insert("choices".into(), serde_json::Value::Array(Vec::new()));
    chunk.insert(member.into(), value.clone());
    Bytes::from(format!("data: {}\n\n", serde_json::Value::Object(chunk)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` to a rewriter for model `m` in chunks split at every `|`.
    fn check(input: &str, expected: &str) {
        let mut w = ModelRewriter::new("m:free");
        let mut out = Vec::new();
        for chunk in input.split('|') {
            out.extend_from_slice(&w.feed(chunk.as_bytes()));
        }
        out.extend_from_slice(&w.finish());
        assert_eq!(String::from_utf8_lossy(&out), expected);
    }

    #[test]
    fn rewrites_model_in_chunks() {
        check(": OPENROUTER PROCESSING\n\n", ": OPENROUTER PROCESSING\n\n");
        check("data: {\"model\":\"m:free\",\"x\":1}\n\n", "data: {\"model\":\"m:free\",\"x\":1}\n\n");
        check("data: {\"model\":\"m\",\"x\":1}\n\n", "data: {\"model\":\"m:free\",\"x\":1}\n\n");
        check(
            "data: {\"model\":\"|m\",\"x\":1}\n|\ndata: [DONE]\n\n",
            "data: {\"model\":\"m:free\",\"x\":1}\n\ndata: [DONE]\n\n",
        );
        check("data: {\"x\":1}\r\n\r\n", "data: {\"x\":1}\r\n\r\n");
        check("data: {\"model\":\"m\"}", "data: {\"model\":\"m:free\"}");
    }

    #[test]
    fn counts_error_events_in_the_same_pass() {
        let mut w = ModelRewriter::new("m:free");
        w.feed(
            b"data: {\"model\":\"m:free\",\"error\":null}\n\ndata: {\"choices\":[],\"content\":\"\\\"error\\\"\"}\n\n",
        );
        assert_eq!(w.error_events(), 0, "a null error and the word in content are not errors");
        w.feed(b"data: {\"model\":\"m\",\"error\":{\"code\":502,\"message\":\"x\"}}\n\ndata: {\"err");
        assert_eq!(w.error_events(), 1);
        w.feed(b"or\":{\"code\":500}}\n\n");
        assert_eq!(w.error_events(), 2, "an error event split across chunks counts once");
    }

    #[test]
    fn spots_error_chunks() {
        let line = br#"data: {"id":"x","error":{"code":400,"message":"Token limit reached"},"choices":[{"finish_reason":"stop"}]}"#;
        let err = data_payload(line).and_then(error_in_payload).expect("error chunk");
        assert_eq!(err["message"], "Token limit reached");
        assert!(data_payload(b"data: {\"choices\":[]}\n").and_then(error_in_payload).is_none());
        assert!(data_payload(b": comment\n").is_none());
    }

    #[test]
    fn ensures_model_in_whole_bodies() {
        let same = Bytes::from_static(br#"{"model":"m:free","choices":[]}"#);
        assert_eq!(ensure_model(same.clone(), "m:free"), same);
        let other = ensure_model(Bytes::from_static(br#"{"choices":[]}"#), "m:free");
        assert_eq!(&other[..], br#"{"choices":[],"model":"m:free"}"#);
        let check = |body: &str, expected: &str| {
            let got = ensure_model(Bytes::from(body.to_owned()), "m:free");
            assert_eq!(String::from_utf8_lossy(&got), expected, "{body}");
        };
        // Replaced in place, every other byte as it came (spacing, order, nested models).
        check(
            r#"{ "id": "x", "model" : "m", "choices": [{"model": "inner", "s": "\"model\""}] }"#,
            r#"{ "id": "x", "model" : "m:free", "choices": [{"model": "inner", "s": "\"model\""}] }"#,
        );
        check(r#"{"model":null,"n":1.5e3}"#, r#"{"model":"m:free","n":1.5e3}"#);
        check("{ }", r#"{ "model":"m:free"}"#);
        check(r#"{"a":{"model":"x"}}"#, r#"{"a":{"model":"x"},"model":"m:free"}"#);
        // Not an object, or not well formed: passed on untouched.
        for raw in [r#"[1,2]"#, r#"{"model":"m""#, r#"{"a":1}x"#, r#"{"a":"unterminated}"#, ""] {
            check(raw, raw);
        }
    }
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

    #[test]
    fn trailer_goes_before_done() {
        use futures_util::StreamExt;
        let run = |chunks: Vec<&'static [u8]>| {
            let s: crate::upstream::ByteStream =
                Box::pin(futures_util::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c)))));
            let out = futures_executor::block_on(
                insert_before_done(s, Bytes::from_static(b"data: {\"m\":1}\n\n")).collect::<Vec<_>>(),
            );
            out.into_iter().map(|c| String::from_utf8_lossy(&c.expect("ok")).into_owned()).collect::<String>()
        };
        assert_eq!(run(vec![b"data: {}\n\n", b"data: [DONE]\n\n"]), "data: {}\n\ndata: {\"m\":1}\n\ndata: [DONE]\n\n");
        assert_eq!(run(vec![b"data: {}\n\ndata: [DONE]\n\n"]), "data: {}\n\ndata: {\"m\":1}\n\ndata: [DONE]\n\n");
        assert_eq!(
            run(vec![b"data: {\"x\":\"data: [DONE]\"}\n\n"]),
            "data: {\"x\":\"data: [DONE]\"}\n\ndata: {\"m\":1}\n\n"
        );
    }
}
