//! Chat SSE chunks → Anthropic's event stream, re-framed as the chunks arrive: each input
//! chunk gives the events it completes, nothing more is held than a partial line.
//!
//! `message_start` (then one `ping`), per block `content_block_start`,
//! `content_block_delta` (`text_delta`, `thinking_delta`, `input_json_delta`) and
//! `content_block_stop`, then `message_delta` (stop reason, usage) and `message_stop`;
//! an upstream error after the start is an `error` event.

use super::answer::{stop_reason, usage};
use super::error::error_type_for_status;
use super::ids::{message_id, tool_use_id};
use crate::chat::{ChatError, ChunkReader, Delta, Usage};
use serde_json::{Value, json};

/// The kind of the block being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Thinking,
    Text,
    /// A tool call, by its order among the calls.
    Tool(usize),
}

/// One streamed answer's translation.
#[derive(Debug)]
pub struct MessageStream {
    reader: ChunkReader,
    fallback_id: String,
    estimate: u64,
    id: String,
    model: String,
    started: bool,
    ended: bool,
    /// The open block: its index and kind.
    open: Option<(usize, Kind)>,
    blocks: usize,
    /// Block index of each tool call, by its order.
    tools: Vec<usize>,
    finish: Option<String>,
    refused: bool,
    usage: Option<Usage>,
}

impl MessageStream {
    /// `fallback_id` names the message when the upstream gives no id; `model` is used
    /// until a chunk names one; `estimate` is the prompt's tokens until usage arrives.
    pub fn new(fallback_id: &str, model: &str, estimate: u64) -> Self {
        MessageStream {
            reader: ChunkReader::new(),
            fallback_id: fallback_id.to_owned(),
            estimate,
            id: String::new(),
            model: model.to_owned(),
            started: false,
            ended: false,
            open: None,
            blocks: 0,
            tools: Vec::new(),
            finish: None,
            refused: false,
            usage: None,
        }
    }

    /// The events that `chunk` completes (perhaps none).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let deltas = self.reader.push(chunk);
        self.apply(deltas)
    }

    /// The upstream's stream ended: the rest of the answer's events, when it did not end
    /// them itself with `[DONE]`.
    pub fn finish(&mut self) -> Vec<u8> {
        let deltas = self.reader.finish();
        let mut out = self.apply(deltas);
        if !self.ended {
            self.end(&mut out);
        }
        out
    }

    /// The stream failed after it began (a timeout, a lost connection): an `error` event.
    pub fn fail(&mut self, status: u16, message: &str) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.ended {
            self.ended = true;
            event(&mut out, "error", &error_event(status, message));
        }
        out
    }

    /// A `ping` event, to keep a quiet connection open.
    pub fn ping() -> &'static [u8] {
        b"event: ping\ndata: {\"type\":\"ping\"}\n\n"
    }

    /// Whether the answer's last event has been written.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    fn apply(&mut self, deltas: Vec<Delta>) -> Vec<u8> {
        let mut out = Vec::new();
        for delta in deltas {
            if self.ended {
                break;
            }
            self.delta(delta, &mut out);
        }
        out
    }

    fn delta(&mut self, delta: Delta, out: &mut Vec<u8>) {
        match delta {
            Delta::Meta { id, model, .. } => {
                if !self.started {
                    self.id = id;
                    if !model.is_empty() {
                        self.model = model;
                    }
                    self.start(out);
                }
            }
            Delta::Reasoning(t) => self.fragment(Kind::Thinking, "thinking_delta", "thinking", &t, out),
            Delta::Text(t) => self.fragment(Kind::Text, "text_delta", "text", &t, out),
            Delta::Refusal(t) => {
                self.refused = true;
                self.fragment(Kind::Text, "text_delta", "text", &t, out);
            }
            Delta::ToolCallStart { index, id, name } => {
                self.start(out);
                let block = self.open_block(out);
                let tool_id = tool_use_id(&id, &self.id, index);
                let start = json!({"type": "tool_use", "id": tool_id, "name": name, "input": {}});
                event(
                    out,
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": block, "content_block": start}),
                );
                self.open = Some((block, Kind::Tool(index)));
                if self.tools.len() <= index {
                    self.tools.resize(index + 1, block);
                }
                self.tools[index] = block;
            }
            Delta::ToolCallArguments { index, fragment } => {
                // A fragment of a call whose block is closed keeps its block's index.
                if let Some(&block) = self.tools.get(index) {
                    let delta = json!({"type": "input_json_delta", "partial_json": fragment});
                    event(
                        out,
                        "content_block_delta",
                        &json!({"type": "content_block_delta", "index": block, "delta": delta}),
                    );
                }
            }
            Delta::Finish(reason) => self.finish = Some(reason),
            Delta::Usage(u) => self.usage = Some(u),
            Delta::Error(e) => self.error(&e, out),
            Delta::Done => self.end(out),
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        self.id = message_id(&self.id, &self.fallback_id);
        let message = json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": usage(None, self.estimate),
        });
        event(out, "message_start", &json!({"type": "message_start", "message": message}));
        out.extend_from_slice(Self::ping());
    }

    /// Closes the open block and returns the next block's index.
    fn open_block(&mut self, out: &mut Vec<u8>) -> usize {
        self.close(out);
        let index = self.blocks;
        self.blocks += 1;
        index
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some((index, _)) = self.open.take() {
            event(out, "content_block_stop", &json!({"type": "content_block_stop", "index": index}));
        }
    }

    /// A text or thinking fragment, in the open block of its kind or a new one.
    fn fragment(&mut self, kind: Kind, delta_type: &str, field: &str, text: &str, out: &mut Vec<u8>) {
        self.start(out);
        let index = match self.open {
            Some((index, open)) if open == kind => index,
            _ => {
                let index = self.open_block(out);
                let block = match kind {
                    Kind::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
                    _ => json!({"type": "text", "text": ""}),
                };
                event(
                    out,
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": index, "content_block": block}),
                );
                self.open = Some((index, kind));
                index
            }
        };
        let mut delta = json!({"type": delta_type});
        delta[field] = json!(text);
        event(out, "content_block_delta", &json!({"type": "content_block_delta", "index": index, "delta": delta}));
    }

    fn error(&mut self, e: &ChatError, out: &mut Vec<u8>) {
        self.ended = true;
        event(out, "error", &error_event(e.status.unwrap_or(502), &e.message));
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        self.close(out);
        self.ended = true;
        let reason = stop_reason(self.finish.as_deref(), !self.tools.is_empty(), self.refused);
        let delta = json!({
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": null},
            "usage": usage(self.usage.as_ref(), self.estimate),
        });
        event(out, "message_delta", &delta);
        event(out, "message_stop", &json!({"type": "message_stop"}));
    }
}

/// A whole Messages answer as the event stream a streaming client expects, for an
/// upstream that answered a streamed request with a whole body: each block in one delta.
pub fn whole_as_events(message: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut start = message.clone();
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    event(&mut out, "message_start", &json!({"type": "message_start", "message": start}));
    out.extend_from_slice(MessageStream::ping());
    let blocks = message["content"].as_array().map_or(&[][..], Vec::as_slice);
    for (index, block) in blocks.iter().enumerate() {
        let (empty, delta) = match block["type"].as_str() {
            Some("thinking") => (
                json!({"type": "thinking", "thinking": "", "signature": ""}),
                json!({"type": "thinking_delta", "thinking": block["thinking"]}),
            ),
            Some("tool_use") => (
                json!({"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}),
                json!({"type": "input_json_delta", "partial_json": block["input"].to_string()}),
            ),
            _ => (json!({"type": "text", "text": ""}), json!({"type": "text_delta", "text": block["text"]})),
        };
        event(
            &mut out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": empty}),
        );
        event(&mut out, "content_block_delta", &json!({"type": "content_block_delta", "index": index, "delta": delta}));
        event(&mut out, "content_block_stop", &json!({"type": "content_block_stop", "index": index}));
    }
    let delta = json!({
        "type": "message_delta",
        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]},
        "usage": message["usage"],
    });
    event(&mut out, "message_delta", &delta);
    event(&mut out, "message_stop", &json!({"type": "message_stop"}));
    out
}

fn error_event(status: u16, message: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type_for_status(status), "message": message}})
}

fn event(out: &mut Vec<u8>, name: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // Writing a `Value` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, data);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests;
