//! Chat SSE chunks → Anthropic's event stream, re-framed as the chunks arrive: each input
//! chunk gives the events it completes, nothing more is held than a partial line.
//!
//! `message_start` (then one `ping`), per block `content_block_start`,
//! `content_block_delta` (`text_delta`, `thinking_delta`, `input_json_delta`) and
//! `content_block_stop`, then `message_delta` (stop reason, usage) and `message_stop`;
//! an upstream error after the start is an `error` event.

use super::answer::{stop_reason, write_usage};
use super::error::error_type_for_status;
use super::ids::{message_id, tool_use_id};
use crate::chat::{ChatError, ChunkReader, Delta, Usage};
use crate::json_out::{event, number, string, string_or_null};
use serde_json::Value;

/// The bytes reserved for the events of one upstream chunk.
const EVENTS_CAPACITY: usize = 1024;

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
    /// Apart from the reader, so that the reader can hand it the deltas it borrows.
    w: Writer,
}

/// The events' state: what has been written and what the end needs.
#[derive(Debug)]
struct Writer {
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
        let w = Writer {
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
        };
        MessageStream { reader: ChunkReader::new(), w }
    }

    /// The events that `chunk` completes (perhaps none), into `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let w = &mut self.w;
        self.reader.push_with(chunk, &mut |delta| w.apply(delta, out));
    }

    /// The upstream's stream ended: the rest of the answer's events, when it did not end
    /// them itself with `[DONE]`.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let w = &mut self.w;
        self.reader.finish_with(&mut |delta| w.apply(delta, out));
        if !self.w.ended {
            self.w.end(out);
        }
    }

    /// The stream failed after it began (a timeout, a lost connection): an `error` event.
    pub fn fail(&mut self, status: u16, message: &str, out: &mut Vec<u8>) {
        if !self.w.ended {
            self.w.ended = true;
            error_event(out, status, message);
        }
    }

    /// A `ping` event, to keep a quiet connection open.
    pub fn ping() -> &'static [u8] {
        b"event: ping\ndata: {\"type\":\"ping\"}\n\n"
    }

    /// Whether the answer's last event has been written.
    pub fn is_ended(&self) -> bool {
        self.w.ended
    }
}

impl Writer {
    /// One delta's events, none after the end.
    fn apply(&mut self, delta: Delta<'_>, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        // Room for a chunk's events, so that writing them seldom grows the buffer.
        if out.capacity() == 0 {
            out.reserve(EVENTS_CAPACITY);
        }
        self.delta(delta, out);
    }

    fn delta(&mut self, delta: Delta<'_>, out: &mut Vec<u8>) {
        match delta {
            Delta::Meta { id, model, .. } => {
                // Written straight into `message_start`, not kept: nothing else uses them.
                let model = Some(&*model).filter(|m| !m.is_empty());
                self.start_as(&id, model, out);
            }
            Delta::Reasoning(t) => self.fragment(Kind::Thinking, THINKING_DELTA, &t, out),
            Delta::Text(t) => self.fragment(Kind::Text, TEXT_DELTA, &t, out),
            Delta::Refusal(t) => {
                self.refused = true;
                self.fragment(Kind::Text, TEXT_DELTA, &t, out);
            }
            Delta::ToolCallStart { index, id, name } => {
                self.start(out);
                let block = self.open_block(out);
                let tool_id = tool_use_id(&id, &self.id, &self.fallback_id, index);
                block_start(out, block, |o| {
                    o.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
                    string(o, &tool_id);
                    o.extend_from_slice(b",\"name\":");
                    string(o, &name);
                    o.extend_from_slice(b",\"input\":{}}");
                });
                self.open = Some((block, Kind::Tool(index)));
                if self.tools.len() <= index {
                    self.tools.resize(index + 1, block);
                }
                self.tools[index] = block;
            }
            Delta::ToolCallArguments { index, fragment } => {
                // A fragment of a call whose block is closed keeps its block's index.
                if let Some(&block) = self.tools.get(index) {
                    block_delta(out, block, JSON_DELTA, &fragment);
                }
            }
            Delta::Finish(reason) => self.finish = Some(reason.into_owned()),
            Delta::Usage(u) => self.usage = Some(u),
            Delta::Error(e) => self.error(&e, out),
            Delta::Done => self.end(out),
        }
    }

    /// `message_start` (and a `ping`), once, before any other event.
    fn start(&mut self, out: &mut Vec<u8>) {
        self.start_as("", None, out);
    }

    /// [`Self::start`] with the upstream's id and model, when a chunk named them.
    fn start_as(&mut self, upstream_id: &str, model: Option<&str>, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        self.id = message_id(upstream_id, &self.fallback_id);
        let model = model.unwrap_or(&self.model);
        event(out, "message_start", |o| {
            o.extend_from_slice(b"{\"type\":\"message_start\",\"message\":{\"id\":");
            string(o, &self.id);
            o.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
            string(o, model);
            o.extend_from_slice(b",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
            write_usage(o, None, self.estimate);
            o.extend_from_slice(b"}}");
        });
        out.extend_from_slice(MessageStream::ping());
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
            block_stop(out, index);
        }
    }

    /// A text or thinking fragment, in the open block of its kind or a new one.
    fn fragment(&mut self, kind: Kind, delta: &[u8], text: &str, out: &mut Vec<u8>) {
        self.start(out);
        let index = match self.open {
            Some((index, open)) if open == kind => index,
            _ => {
                let index = self.open_block(out);
                block_start(out, index, |o| o.extend_from_slice(empty_block(kind == Kind::Thinking)));
                self.open = Some((index, kind));
                index
            }
        };
        block_delta(out, index, delta, text);
    }

    fn error(&mut self, e: &ChatError, out: &mut Vec<u8>) {
        self.ended = true;
        error_event(out, e.status.unwrap_or(502), &e.message);
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        self.close(out);
        self.ended = true;
        let reason = stop_reason(self.finish.as_deref(), !self.tools.is_empty(), self.refused);
        message_end(out, reason, None, |o| write_usage(o, self.usage.as_ref(), self.estimate));
    }
}

/// A whole Messages answer (its JSON, as [`super::to_message`] writes it) as the event
/// stream a streaming client expects, for an upstream that answered a streamed request
/// with a whole body: each block in one delta. Rare, so read back through a tree.
pub fn whole_as_events(message: &[u8]) -> Vec<u8> {
    let message: Value = serde_json::from_slice(message).unwrap_or_default();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let mut out = Vec::new();
    event(&mut out, "message_start", |o| {
        let mut start = message.clone();
        start["content"] = Value::Array(Vec::new());
        start["stop_reason"] = Value::Null;
        o.extend_from_slice(b"{\"type\":\"message_start\",\"message\":");
        let _ = serde_json::to_writer(&mut *o, &start);
        o.push(b'}');
    });
    out.extend_from_slice(MessageStream::ping());
    let blocks = message["content"].as_array().map_or(&[][..], Vec::as_slice);
    for (index, block) in blocks.iter().enumerate() {
        match block["type"].as_str() {
            Some("thinking") => {
                block_start(&mut out, index, |o| o.extend_from_slice(empty_block(true)));
                block_delta(&mut out, index, THINKING_DELTA, &text(&block["thinking"]));
            }
            Some("tool_use") => {
                block_start(&mut out, index, |o| {
                    o.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
                    string(o, &text(&block["id"]));
                    o.extend_from_slice(b",\"name\":");
                    string(o, &text(&block["name"]));
                    o.extend_from_slice(b",\"input\":{}}");
                });
                block_delta(&mut out, index, JSON_DELTA, &block["input"].to_string());
            }
            _ => {
                block_start(&mut out, index, |o| o.extend_from_slice(empty_block(false)));
                block_delta(&mut out, index, TEXT_DELTA, &text(&block["text"]));
            }
        }
        block_stop(&mut out, index);
    }
    let reason = message["stop_reason"].as_str().unwrap_or("end_turn");
    message_end(&mut out, reason, message["stop_sequence"].as_str(), |o| {
        let _ = serde_json::to_writer(&mut *o, &message["usage"]);
    });
    out
}

/// An empty text or thinking block, as `content_block_start` carries it.
fn empty_block(thinking: bool) -> &'static [u8] {
    if thinking {
        b"{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}"
    } else {
        b"{\"type\":\"text\",\"text\":\"\"}"
    }
}

fn block_start(out: &mut Vec<u8>, index: usize, block: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":");
    number(out, index as u64);
    out.extend_from_slice(b",\"content_block\":");
    block(out);
    out.extend_from_slice(b"}\n\n");
}

/// A delta's opening, `type` and the field its text goes in, written as one piece.
const TEXT_DELTA: &[u8] = b",\"delta\":{\"type\":\"text_delta\",\"text\":";
const THINKING_DELTA: &[u8] = b",\"delta\":{\"type\":\"thinking_delta\",\"thinking\":";
const JSON_DELTA: &[u8] = b",\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":";

/// A `content_block_delta` with `delta` (one of the constants above) and its `text`;
/// the event's framing and fixed members written as one piece each (this is the event a
/// stream writes most).
fn block_delta(out: &mut Vec<u8>, index: usize, delta: &[u8], text: &str) {
    out.extend_from_slice(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":");
    number(out, index as u64);
    out.extend_from_slice(delta);
    string(out, text);
    out.extend_from_slice(b"}}\n\n");
}

fn block_stop(out: &mut Vec<u8>, index: usize) {
    out.extend_from_slice(b"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":");
    number(out, index as u64);
    out.extend_from_slice(b"}\n\n");
}

/// `message_delta` (the stop reason and `usage`, which `usage` writes) and `message_stop`.
fn message_end(out: &mut Vec<u8>, reason: &str, stop_sequence: Option<&str>, usage: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":");
    string(out, reason);
    out.extend_from_slice(b",\"stop_sequence\":");
    string_or_null(out, stop_sequence);
    out.extend_from_slice(b"},\"usage\":");
    usage(out);
    out.extend_from_slice(b"}\n\n");
    out.extend_from_slice(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
}

fn error_event(out: &mut Vec<u8>, status: u16, message: &str) {
    event(out, "error", |o| {
        o.extend_from_slice(b"{\"type\":\"error\",\"error\":{\"type\":");
        string(o, error_type_for_status(status));
        o.extend_from_slice(b",\"message\":");
        string(o, message);
        o.extend_from_slice(b"}}");
    });
}

#[cfg(test)]
mod tests;
