//! A chat-completions SSE stream, split anywhere → [`Delta`]s, in order.

use super::fields::{content, count, error, first_choice, reasoning, text, usage};
use super::types::{ChatError, Delta};
use serde_json::Value;

/// The longest event (or line) kept while waiting for its end; beyond it the event is
/// dropped with a [`Delta::Error`], so a hostile upstream cannot grow the buffer forever.
/// The core's own line limit normally cuts such a stream first.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// Reads a stream's bytes, however they are split: buffers a partial line, accepts `\n`
/// and `\r\n`, skips comments (`: OPENROUTER PROCESSING`) and other fields, joins an
/// event's `data:` lines and dispatches it at the blank line that ends it.
#[derive(Debug, Default)]
pub struct ChunkReader {
    /// The line begun and not yet ended.
    line: Vec<u8>,
    /// The current event's data (its `data:` lines joined by `\n`).
    data: Vec<u8>,
    has_data: bool,
    /// Dropping the rest of a line that went over [`MAX_EVENT_BYTES`].
    skipping: bool,
    meta_sent: bool,
    finish_sent: bool,
    /// The calls seen so far: (the upstream's index, the upstream's id).
    calls: Vec<(u64, String)>,
}

impl ChunkReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the deltas of every event they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Delta> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = (&rest[..i], &rest[i + 1..]);
            rest = tail;
            if self.skipping {
                self.skipping = false;
                continue;
            }
            if self.line.is_empty() {
                self.line_done(head, &mut out);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(head);
                self.line_done(&line, &mut out);
            }
        }
        if !self.skipping && !rest.is_empty() {
            if self.line.len() + self.data.len() + rest.len() > MAX_EVENT_BYTES {
                self.overflow(&mut out);
            } else {
                self.line.extend_from_slice(rest);
            }
        }
        out
    }

    /// The stream ended: a last line without its newline and an event without its blank
    /// line are read as if they had them.
    pub fn finish(&mut self) -> Vec<Delta> {
        let mut out = Vec::new();
        if !self.line.is_empty() && !self.skipping {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, &mut out);
        }
        self.line.clear();
        self.skipping = false;
        self.dispatch(&mut out);
        out
    }

    fn overflow(&mut self, out: &mut Vec<Delta>) {
        self.line.clear();
        self.data.clear();
        self.has_data = false;
        self.skipping = true;
        out.push(Delta::Error(ChatError {
            status: None,
            kind: Some("stream_event_too_long".to_owned()),
            message: format!("an upstream event exceeded {MAX_EVENT_BYTES} bytes"),
        }));
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<Delta>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &b""[..]),
        };
        if field != b"data" {
            return;
        }
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if self.data.len() + value.len() > MAX_EVENT_BYTES {
            self.overflow(out);
            self.skipping = false;
            return;
        }
        if self.has_data {
            self.data.push(b'\n');
        }
        self.data.extend_from_slice(value);
        self.has_data = true;
    }

    fn dispatch(&mut self, out: &mut Vec<Delta>) {
        if !self.has_data {
            return;
        }
        let data = std::mem::take(&mut self.data);
        self.has_data = false;
        if let Some(v) = payload(&data) {
            self.chunk(&v, out);
            return;
        }
        // Lenient: `data:` lines run together without the blank line between events.
        // An unreadable payload is skipped: the core has already judged the stream.
        for part in data.split(|&b| b == b'\n') {
            if part.trim_ascii() == b"[DONE]" {
                out.push(Delta::Done);
            } else if let Some(v) = payload(part) {
                self.chunk(&v, out);
            }
        }
    }

    fn chunk(&mut self, v: &Value, out: &mut Vec<Delta>) {
        if !self.meta_sent && (v.get("id").is_some() || v.get("model").is_some()) {
            self.meta_sent = true;
            out.push(Delta::Meta {
                id: text(v, "id").unwrap_or_default(),
                model: text(v, "model").unwrap_or_default(),
                created: count(v, "created").unwrap_or(0),
            });
        }
        if let Some(e) = error(v) {
            out.push(Delta::Error(e));
        } else if let Some(choice) = first_choice(v) {
            self.choice(choice, out);
        }
        if let Some(u) = usage(v) {
            out.push(Delta::Usage(u));
        }
    }

    fn choice(&mut self, choice: &Value, out: &mut Vec<Delta>) {
        // A few providers stream `message` rather than `delta`.
        if let Some(delta) = choice.get("delta").or_else(|| choice.get("message")) {
            if let Some(r) = reasoning(delta).filter(|r| !r.is_empty()) {
                out.push(Delta::Reasoning(r));
            }
            if let Some(r) = text(delta, "refusal").filter(|r| !r.is_empty()) {
                out.push(Delta::Refusal(r));
            }
            if let Some(t) = content(delta).filter(|t| !t.is_empty()) {
                out.push(Delta::Text(t));
            }
            if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                for (position, call) in calls.iter().enumerate() {
                    self.tool_call(position, call, out);
                }
            }
        }
        if !self.finish_sent
            && let Some(reason) = text(choice, "finish_reason")
        {
            self.finish_sent = true;
            out.push(Delta::Finish(reason));
        }
    }

    /// A tool call's fragment. A call is known by the upstream's `index`, unless it comes
    /// with an id other than that call's: some providers give every call index 0.
    fn tool_call(&mut self, position: usize, call: &Value, out: &mut Vec<Delta>) {
        let upstream = count(call, "index").unwrap_or(position as u64);
        let id = text(call, "id").filter(|id| !id.is_empty());
        let function = call.get("function");
        let known = self.calls.iter().rposition(|(index, _)| *index == upstream);
        let index = match (known, &id) {
            (Some(k), Some(id)) if !self.calls[k].1.is_empty() && self.calls[k].1 != *id => None,
            (Some(k), _) => Some(k),
            (None, _) => None,
        };
        let index = match index {
            Some(k) => k,
            None => {
                let id = id.unwrap_or_default();
                self.calls.push((upstream, id.clone()));
                let name = function.and_then(|f| text(f, "name")).unwrap_or_default();
                out.push(Delta::ToolCallStart { index: self.calls.len() - 1, id, name });
                self.calls.len() - 1
            }
        };
        let fragment = match function.and_then(|f| f.get("arguments")) {
            Some(Value::String(s)) => s.clone(),
            Some(other) if !other.is_null() => other.to_string(),
            _ => String::new(),
        };
        if !fragment.is_empty() {
            out.push(Delta::ToolCallArguments { index, fragment });
        }
    }
}

/// A chunk's JSON object, if the payload is one.
fn payload(data: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Value>(data).ok().filter(Value::is_object)
}

#[cfg(test)]
mod tests;
