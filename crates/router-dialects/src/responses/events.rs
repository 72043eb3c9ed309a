//! A chat stream's deltas as the Responses event stream: `response.created`,
//! `response.in_progress`, each output item added, its deltas and done events, then
//! `response.completed` (or `response.incomplete`, or `response.failed`), every event
//! numbered by `sequence_number`. Events are written as they become known; nothing waits
//! for the end of the stream but the final snapshot.

use super::output::{
    ResponseMeta, Status, call_id_or, call_item, message_item, reasoning_item, refusal_part, response, text_part,
};
use crate::chat::{Answer, ChatError, ChunkReader, Delta, Usage};
use serde_json::{Map, Value, json};

/// One output item as it grows.
#[derive(Debug)]
enum Item {
    Reasoning { id: String, text: String, open: bool },
    Message { id: String, parts: Vec<Part>, open: bool },
    Call { id: String, call_id: String, name: String, arguments: String, open: bool },
}

#[derive(Debug)]
struct Part {
    refusal: bool,
    text: String,
}

impl Item {
    fn is_open(&self) -> bool {
        match self {
            Item::Reasoning { open, .. } | Item::Message { open, .. } | Item::Call { open, .. } => *open,
        }
    }

    fn snapshot(&self) -> Value {
        match self {
            Item::Reasoning { id, text, open } => reasoning_item(id, text, !open),
            Item::Message { id, parts, open } => message_item(id, parts.iter().map(Part::value).collect(), !open),
            Item::Call { id, call_id, name, arguments, open } => call_item(id, call_id, name, arguments, !open),
        }
    }
}

impl Part {
    fn value(&self) -> Value {
        if self.refusal { refusal_part(&self.text) } else { text_part(&self.text) }
    }
}

/// Writes the Responses events for a chat stream, one upstream chunk at a time.
#[derive(Debug)]
pub struct EventWriter {
    meta: ResponseMeta,
    echo: Map<String, Value>,
    reader: ChunkReader,
    seq: u64,
    items: Vec<Item>,
    /// The output index of each chat tool call, by the reader's call index.
    calls: Vec<usize>,
    finish: Option<String>,
    usage: Option<Usage>,
    started: bool,
    ended: bool,
}

impl EventWriter {
    pub fn new(meta: ResponseMeta, echo: Map<String, Value>) -> Self {
        EventWriter {
            meta,
            echo,
            reader: ChunkReader::new(),
            seq: 0,
            items: Vec::new(),
            calls: Vec::new(),
            finish: None,
            usage: None,
            started: false,
            ended: false,
        }
    }

    /// `response.created` and `response.in_progress`, once, before anything else.
    pub fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let snapshot = self.snapshot(&Status::InProgress);
        self.event(out, "response.created", json!({"response": snapshot}));
        let snapshot = self.snapshot(&Status::InProgress);
        self.event(out, "response.in_progress", json!({"response": snapshot}));
    }

    /// The events that `bytes` (any slice of the upstream's SSE stream) complete.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        self.start(out);
        for delta in self.reader.push(bytes) {
            self.delta(delta, out);
        }
    }

    /// The upstream stream ended: what it left unfinished, then the final event (once).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        for delta in self.reader.finish() {
            self.delta(delta, out);
        }
        self.end(out);
    }

    /// The stream broke after the answer began (a transport error): `response.failed`.
    pub fn fail(&mut self, error: ChatError, out: &mut Vec<u8>) {
        self.start(out);
        if self.ended {
            return;
        }
        self.ended = true;
        let snapshot = self.snapshot(&Status::Failed(error));
        self.event(out, "response.failed", json!({"response": snapshot}));
    }

    /// A whole answer where a stream was asked for (an upstream that ignored `stream`):
    /// the same events a stream of it would give, then the final one.
    pub fn whole(&mut self, answer: &Answer, out: &mut Vec<u8>) {
        self.start(out);
        let mut deltas =
            vec![Delta::Meta { id: answer.id.clone(), model: answer.model.clone(), created: answer.created }];
        deltas.extend(answer.reasoning.clone().map(Delta::Reasoning));
        deltas.extend(answer.text.clone().map(Delta::Text));
        deltas.extend(answer.refusal.clone().map(Delta::Refusal));
        for (index, call) in answer.tool_calls.iter().enumerate() {
            deltas.push(Delta::ToolCallStart { index, id: call.id.clone(), name: call.name.clone() });
            deltas.push(Delta::ToolCallArguments { index, fragment: call.arguments.clone() });
        }
        deltas.extend(answer.finish_reason.clone().map(Delta::Finish));
        deltas.extend(answer.usage.map(Delta::Usage));
        for delta in deltas {
            self.delta(delta, out);
        }
        self.end(out);
    }

    /// Whether the final event has been written.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    fn delta(&mut self, delta: Delta, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        match delta {
            Delta::Meta { model, .. } => {
                if !model.is_empty() {
                    self.meta.model = model;
                }
            }
            Delta::Text(t) => self.text(&t, false, out),
            Delta::Refusal(t) => self.text(&t, true, out),
            Delta::Reasoning(t) => self.reasoning(&t, out),
            Delta::ToolCallStart { index, id, name } => self.call_start(index, &id, &name, out),
            Delta::ToolCallArguments { index, fragment } => self.call_arguments(index, &fragment, out),
            Delta::Finish(reason) => self.finish = Some(reason),
            Delta::Usage(u) => self.usage = Some(u),
            Delta::Error(e) => self.fail(e, out),
            Delta::Done => self.end(out),
        }
    }

    fn text(&mut self, text: &str, refusal: bool, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        let index = match self.items.last() {
            Some(Item::Message { open: true, .. }) => self.items.len() - 1,
            _ => {
                self.close_all_but_calls(out);
                let id = self.item_id("msg");
                self.open(Item::Message { id, parts: Vec::new(), open: true }, out)
            }
        };
        let item_id = self.id_of(index);
        let (count, last_kind) = match self.items.get(index) {
            Some(Item::Message { parts, .. }) => (parts.len(), parts.last().map(|p| p.refusal)),
            _ => return,
        };
        let part_index = if last_kind == Some(refusal) {
            count - 1
        } else {
            if let Some(previous) = count.checked_sub(1) {
                self.part_done(index, previous, out);
            }
            let part = Part { refusal, text: String::new() };
            let added = part.value();
            if let Some(Item::Message { parts, .. }) = self.items.get_mut(index) {
                parts.push(part);
            }
            let body = json!({"item_id": item_id, "output_index": index, "content_index": count, "part": added});
            self.event(out, "response.content_part.added", body);
            count
        };
        if let Some(Item::Message { parts, .. }) = self.items.get_mut(index)
            && let Some(p) = parts.get_mut(part_index)
        {
            p.text.push_str(text);
        }
        let (kind, body) = if refusal {
            (
                "response.refusal.delta",
                json!({"item_id": item_id, "output_index": index, "content_index": part_index, "delta": text}),
            )
        } else {
            (
                "response.output_text.delta",
                json!({"item_id": item_id, "output_index": index, "content_index": part_index, "delta": text, "logprobs": []}),
            )
        };
        self.event(out, kind, body);
    }

    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        let index = match self.items.last() {
            Some(Item::Reasoning { open: true, .. }) => self.items.len() - 1,
            _ => {
                self.close_all_but_calls(out);
                let id = self.item_id("rs");
                let index = self.open(Item::Reasoning { id, text: String::new(), open: true }, out);
                let item_id = self.id_of(index);
                let body = json!({"item_id": item_id, "output_index": index, "summary_index": 0,
                    "part": {"type": "summary_text", "text": ""}});
                self.event(out, "response.reasoning_summary_part.added", body);
                index
            }
        };
        let item_id = self.id_of(index);
        if let Some(Item::Reasoning { text: t, .. }) = self.items.get_mut(index) {
            t.push_str(text);
        }
        let body = json!({"item_id": item_id, "output_index": index, "summary_index": 0, "delta": text});
        self.event(out, "response.reasoning_summary_text.delta", body);
    }

    fn call_start(&mut self, index: usize, id: &str, name: &str, out: &mut Vec<u8>) {
        self.close_all_but_calls(out);
        let call_id = call_id_or(id, &self.meta, index);
        let item_id = format!("fc_{}_{index}", self.meta.tail());
        let at = self.open(
            Item::Call { id: item_id, call_id, name: name.to_owned(), arguments: String::new(), open: true },
            out,
        );
        if self.calls.len() <= index {
            self.calls.resize(index + 1, usize::MAX);
        }
        if let Some(slot) = self.calls.get_mut(index) {
            *slot = at;
        }
    }

    fn call_arguments(&mut self, index: usize, fragment: &str, out: &mut Vec<u8>) {
        if fragment.is_empty() {
            return;
        }
        // The reader starts every call before its arguments; one it did not is made here.
        if self.calls.get(index).is_none_or(|&at| at == usize::MAX) {
            self.call_start(index, "", "", out);
        }
        let Some(&at) = self.calls.get(index) else { return };
        let item_id = self.id_of(at);
        if let Some(Item::Call { arguments, .. }) = self.items.get_mut(at) {
            arguments.push_str(fragment);
        }
        let body = json!({"item_id": item_id, "output_index": at, "delta": fragment});
        self.event(out, "response.function_call_arguments.delta", body);
    }

    /// The final event, once: every open item closed, then the whole response.
    fn end(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        for i in 0..self.items.len() {
            self.close(i, out);
        }
        self.ended = true;
        let status = Status::of_finish(self.finish.as_deref());
        let snapshot = self.snapshot(&status);
        self.event(out, status.final_event(), json!({"response": snapshot}));
    }

    /// Adds an item (`response.output_item.added`); returns its output index.
    fn open(&mut self, item: Item, out: &mut Vec<u8>) -> usize {
        let snapshot = item.snapshot();
        self.items.push(item);
        let index = self.items.len() - 1;
        self.event(out, "response.output_item.added", json!({"output_index": index, "item": snapshot}));
        index
    }

    /// Text and reasoning end where another item begins; calls stay open to the end,
    /// since a chat stream may interleave the arguments of several.
    fn close_all_but_calls(&mut self, out: &mut Vec<u8>) {
        for i in 0..self.items.len() {
            if !matches!(self.items.get(i), Some(Item::Call { .. })) {
                self.close(i, out);
            }
        }
    }

    fn close(&mut self, index: usize, out: &mut Vec<u8>) {
        if !self.items.get(index).is_some_and(Item::is_open) {
            return;
        }
        let item_id = self.id_of(index);
        match self.items.get(index) {
            Some(Item::Message { parts, .. }) => {
                if let Some(last) = parts.len().checked_sub(1) {
                    self.part_done(index, last, out);
                }
            }
            Some(Item::Reasoning { text, .. }) => {
                let text = text.clone();
                let body = json!({"item_id": item_id, "output_index": index, "summary_index": 0, "text": text});
                self.event(out, "response.reasoning_summary_text.done", body);
                let body = json!({"item_id": item_id, "output_index": index, "summary_index": 0,
                    "part": {"type": "summary_text", "text": text}});
                self.event(out, "response.reasoning_summary_part.done", body);
            }
            Some(Item::Call { name, arguments, .. }) => {
                let body = json!({"item_id": item_id, "output_index": index, "name": name, "arguments": arguments});
                self.event(out, "response.function_call_arguments.done", body);
            }
            None => return,
        }
        match self.items.get_mut(index) {
            Some(Item::Reasoning { open, .. } | Item::Message { open, .. } | Item::Call { open, .. }) => *open = false,
            None => return,
        }
        let snapshot = self.items.get(index).map(Item::snapshot).unwrap_or_default();
        self.event(out, "response.output_item.done", json!({"output_index": index, "item": snapshot}));
    }

    /// A message's content part is complete: its text's done event, then the part's.
    fn part_done(&mut self, index: usize, part: usize, out: &mut Vec<u8>) {
        let item_id = self.id_of(index);
        let Some(Item::Message { parts, .. }) = self.items.get(index) else { return };
        let Some(p) = parts.get(part) else { return };
        let (kind, body) = if p.refusal {
            (
                "response.refusal.done",
                json!({"item_id": item_id, "output_index": index, "content_index": part, "refusal": p.text}),
            )
        } else {
            (
                "response.output_text.done",
                json!({"item_id": item_id, "output_index": index, "content_index": part, "text": p.text, "logprobs": []}),
            )
        };
        let value = p.value();
        self.event(out, kind, body);
        let body = json!({"item_id": item_id, "output_index": index, "content_index": part, "part": value});
        self.event(out, "response.content_part.done", body);
    }

    fn id_of(&self, index: usize) -> String {
        match self.items.get(index) {
            Some(Item::Reasoning { id, .. } | Item::Message { id, .. } | Item::Call { id, .. }) => id.clone(),
            None => String::new(),
        }
    }

    /// A new item's id: `msg_<tail>`, then `msg_<tail>_1`, ... for later ones.
    fn item_id(&self, prefix: &str) -> String {
        let same = self
            .items
            .iter()
            .filter(|i| matches!((i, prefix), (Item::Message { .. }, "msg") | (Item::Reasoning { .. }, "rs")))
            .count();
        if same == 0 {
            format!("{prefix}_{}", self.meta.tail())
        } else {
            format!("{prefix}_{}_{same}", self.meta.tail())
        }
    }

    fn snapshot(&self, status: &Status) -> Value {
        let output = self.items.iter().map(Item::snapshot).collect();
        let usage = if matches!(status, Status::InProgress) { None } else { self.usage.as_ref() };
        response(&self.meta, &self.echo, status, output, usage)
    }

    /// One SSE event: `event: <type>` and its JSON with `type` and `sequence_number`.
    fn event(&mut self, out: &mut Vec<u8>, kind: &str, body: Value) {
        let mut body = match body {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        body.insert("type".into(), Value::String(kind.to_owned()));
        body.insert("sequence_number".into(), json!(self.seq));
        self.seq += 1;
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        let _ = serde_json::to_writer(&mut *out, &Value::Object(body));
        out.extend_from_slice(b"\n\n");
    }
}
