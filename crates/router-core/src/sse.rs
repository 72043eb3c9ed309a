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
    model: String,
    error_events: u64,
}

impl ModelRewriter {
    pub fn new(model: &str) -> Self {
        ModelRewriter {
            lines: LineSplitter::default(),
            expected: model_member(model),
            model: model.to_owned(),
            error_events: 0,
        }
    }

    /// Rewrites one chunk. Returns what can be sent now; an unfinished line waits for
    /// the rest of it.
    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(chunk.len() + 16);
        let (expected, model, errors) = (&self.expected, &self.model, &mut self.error_events);
        self.lines.feed(chunk, |line| *errors += u64::from(rewrite_line(line, expected, model, &mut out)));
        out.freeze()
    }

    pub fn finish(&mut self) -> Bytes {
        let rest = self.lines.finish();
        let mut out = BytesMut::new();
        self.error_events += u64::from(rewrite_line(&rest, &self.expected, &self.model, &mut out));
        out.freeze()
    }

    /// Error events passed on so far.
    pub fn error_events(&self) -> u64 {
        self.error_events
    }
}

/// Writes `line` to `out` with its `model` rewritten; true when it is an error event.
fn rewrite_line(line: &[u8], expected: &[u8], model: &str, out: &mut BytesMut) -> bool {
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
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(payload) {
        Ok(mut chunk) if chunk.contains_key("model") => {
            chunk.insert("model".into(), model.into());
            out.extend_from_slice(b"data: ");
            let mut w = Vec::with_capacity(payload.len() + model.len());
            let _ = serde_json::to_writer(&mut w, &chunk);
            out.extend_from_slice(&w);
            out.extend_from_slice(&line[trim_eol(line).len()..]);
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
/// model or none. Bodies that already name the chosen model come back untouched.
pub fn ensure_model(body: Bytes, model: &str) -> Bytes {
    // The usual case, settled by one search as in the stream rewriter: no parse.
    if memmem::find(&body, &model_member(model)).is_some() {
        return body;
    }
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        model: Option<std::borrow::Cow<'a, str>>,
    }
    match serde_json::from_slice::<Head<'_>>(&body) {
        Ok(Head { model: Some(m) }) if m == model => return body,
        Ok(_) => {}
        Err(_) => return body, // not ours to fix: pass upstream's bytes on
    }
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body) {
        Ok(mut obj) => {
            obj.insert("model".into(), model.into());
            serde_json::to_vec(&obj).map(Bytes::from).unwrap_or(body)
        }
        Err(_) => body,
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
    }
}
