//! Lines and payloads: complete lines out of a byte stream, the `data:` payload of a
//! line, its top-level `error`, and the in-band error chunk the router writes itself.

use bytes::{Bytes, BytesMut};
use memchr::memmem;
use std::sync::LazyLock;

/// The searcher for the `"error"` key, built once for the process rather than per line.
static ERROR_KEY: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b"\"error\""));

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
    ERROR_KEY.find(payload)?;
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    v.get("error").filter(|e| !e.is_null()).cloned()
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

    #[test]
    fn spots_error_chunks() {
        let line = br#"data: {"id":"x","error":{"code":400,"message":"Token limit reached"},"choices":[{"finish_reason":"stop"}]}"#;
        let err = data_payload(line).and_then(error_in_payload).expect("error chunk");
        assert_eq!(err["message"], "Token limit reached");
        assert!(data_payload(b"data: {\"choices\":[]}\n").and_then(error_in_payload).is_none());
        assert!(data_payload(b": comment\n").is_none());
    }
}
