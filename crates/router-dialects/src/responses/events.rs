//! A chat stream's deltas as the Responses event stream: `response.created`,
//! `response.in_progress`, each output item added, its deltas and done events, then
//! `response.completed` (or `response.incomplete`, or `response.failed`), every event
//! numbered by `sequence_number`. Events are written as they become known; nothing waits
//! for the end of the stream but the final snapshot.

use super::output::{
    ItemId, ResponseMeta, Status, call_id, write_call_item, write_message_item_by, write_part, write_part_by,
    write_reasoning_item, write_summary_part,
};
use crate::chat::{Answer, ChatError, ChunkReader, Delta, Usage};
use crate::json_out::string;
use frame::{Place, final_head, head, write_event};
use router_core::ModelId;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::ops::Range;

/// One output item as it grows: what it is, where it is, whether it is still open.
#[derive(Debug)]
struct Item {
    kind: Kind,
    place: Place,
    open: bool,
}

/// What an item is. `nth` is its id's number ([`ItemId`]): a later item of its kind, or
/// a call's index.
#[derive(Debug)]
enum Kind {
    Reasoning { nth: Option<usize>, text: String },
    Message { nth: Option<usize>, parts: SmallVec<[Part; 1]> },
    Call { nth: Option<usize>, call_id: String, name: String, arguments: String },
}

#[derive(Debug)]
struct Part {
    refusal: bool,
    /// Where its text lies in the item's place, as its deltas wrote it (escaped, without
    /// the quotes): the done events and the item copy it instead of escaping the whole
    /// text again, and it needs no buffer of its own.
    text: Range<usize>,
}

impl Part {
    /// The text as a JSON string.
    fn write_text(&self, out: &mut Vec<u8>, place: &Place) {
        let text = place.bytes.get(self.text.clone()).unwrap_or_default();
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text);
        out.push(b'"');
    }
}

impl Kind {
    /// The id of an item of this kind, with `tail` the response id's.
    fn id<'t>(&self, tail: &'t str) -> ItemId<'t> {
        let (prefix, nth) = match self {
            Kind::Reasoning { nth, .. } => ("rs", *nth),
            Kind::Message { nth, .. } => ("msg", *nth),
            Kind::Call { nth, .. } => ("fc", *nth),
        };
        ItemId::Made { prefix, tail, nth }
    }
}

impl Item {
    /// The item as JSON, as it stands: while it is open, or for its done event (after
    /// that its place holds the item's bytes instead of its parts' texts, and those are
    /// copied).
    fn write(&self, out: &mut Vec<u8>) {
        let (id, done) = (self.place.id(), !self.open);
        match &self.kind {
            Kind::Reasoning { text, .. } => write_reasoning_item(out, id, text, done),
            Kind::Message { parts, .. } => write_message_item_by(out, id, done, |o| {
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        o.push(b',');
                    }
                    write_part_by(o, p.refusal, |o| p.write_text(o, &self.place));
                }
            }),
            Kind::Call { call_id, name, arguments, .. } => write_call_item(out, id, call_id, name, arguments, done),
        }
    }
}

/// Writes the Responses events for a chat stream, one upstream chunk at a time.
#[derive(Debug)]
pub struct EventWriter {
    reader: ChunkReader,
    /// Apart from the reader, so that the reader can hand it the deltas it borrows.
    w: Events,
}

impl EventWriter {
    /// `echo`: the request's members the response repeats, as [`super::Translated::echo`].
    pub fn new(meta: ResponseMeta, echo: Vec<u8>) -> Self {
        let w = Events {
            meta,
            echo,
            seq: 0,
            items: SmallVec::new(),
            calls: Vec::new(),
            finish: None,
            usage: None,
            started: false,
            ended: false,
        };
        EventWriter { reader: ChunkReader::without_meta(), w }
    }

    /// `response.created` and `response.in_progress`, once, before anything else.
    pub fn start(&mut self, out: &mut Vec<u8>) {
        self.w.start(out);
    }

    /// The events that `bytes` (any slice of the upstream's SSE stream) complete.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        self.w.start(out);
        let w = &mut self.w;
        self.reader.push_with(bytes, &mut |delta| w.delta(delta, out));
    }

    /// The upstream stream ended: what it left unfinished, then the final event (once).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.w.start(out);
        let w = &mut self.w;
        self.reader.finish_with(&mut |delta| w.delta(delta, out));
        self.w.end(out);
    }

    /// The stream broke after the answer began (a transport error): `response.failed`.
    pub fn fail(&mut self, error: ChatError, out: &mut Vec<u8>) {
        self.w.fail(error, out);
    }

    /// A whole answer where a stream was asked for (an upstream that ignored `stream`):
    /// the same events a stream of it would give, then the final one.
    pub fn whole(&mut self, answer: &Answer, out: &mut Vec<u8>) {
        self.w.whole(answer, out);
    }

    /// Whether the final event has been written.
    pub fn is_ended(&self) -> bool {
        self.w.ended
    }
}

/// The events' state: the response as it grows, and what has been written.
#[derive(Debug)]
struct Events {
    meta: ResponseMeta,
    /// The echoed request members, as written into every snapshot.
    echo: Vec<u8>,
    seq: u64,
    /// The output items, inline: a stream seldom has more than two.
    items: SmallVec<[Item; 2]>,
    /// The output index of each chat tool call, by the reader's call index.
    calls: Vec<usize>,
    /// How the response ends, from the chat `finish_reason` (read when it comes, so that
    /// the reason's text is not kept).
    finish: Option<Status>,
    usage: Option<Usage>,
    started: bool,
    ended: bool,
}

impl Events {
    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        self.room(out);
        let response = self.snapshot_event(out, head!("response.created"), &Status::InProgress);
        // The same response again, copied rather than written a second time.
        let seq = self.seq;
        self.seq += 1;
        write_event(out, head!("response.in_progress"), seq, |o| {
            o.extend_from_slice(b",\"response\":");
            o.extend_from_within(response);
        });
    }

    fn fail(&mut self, error: ChatError, out: &mut Vec<u8>) {
        self.start(out);
        if self.ended {
            return;
        }
        self.room(out);
        self.ended = true;
        self.snapshot_event(out, head!("response.failed"), &Status::Failed(error));
    }

    fn whole(&mut self, answer: &Answer, out: &mut Vec<u8>) {
        self.start(out);
        let mut deltas = vec![Delta::Meta {
            id: answer.id.as_str().into(),
            model: answer.model.as_str().into(),
            created: answer.created,
        }];
        deltas.extend(answer.reasoning.as_deref().map(|t| Delta::Reasoning(Cow::Borrowed(t))));
        deltas.extend(answer.text.as_deref().map(|t| Delta::Text(Cow::Borrowed(t))));
        deltas.extend(answer.refusal.as_deref().map(|t| Delta::Refusal(Cow::Borrowed(t))));
        for (index, call) in answer.tool_calls.iter().enumerate() {
            deltas.push(Delta::ToolCallStart { index, id: call.id.as_str().into(), name: call.name.as_str().into() });
            deltas.push(Delta::ToolCallArguments { index, fragment: call.arguments.as_str().into() });
        }
        deltas.extend(answer.finish_reason.as_deref().map(|t| Delta::Finish(Cow::Borrowed(t))));
        deltas.extend(answer.usage.map(Delta::Usage));
        for delta in deltas {
            self.delta(delta, out);
        }
        self.end(out);
    }

    fn delta(&mut self, delta: Delta<'_>, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        match delta {
            Delta::Meta { model, .. } => {
                // Only from a whole answer (the stream's reader gives none): usually the
                // id the response already names (the router sets it).
                if !model.is_empty() && *model != *self.meta.model.as_str() {
                    self.meta.model = ModelId::new(&model);
                }
            }
            Delta::Text(t) => self.text(&t, false, out),
            Delta::Refusal(t) => self.text(&t, true, out),
            Delta::Reasoning(t) => self.reasoning(&t, out),
            Delta::ToolCallStart { index, id, name } => self.call_start(index, &id, &name, out),
            Delta::ToolCallArguments { index, fragment } => self.call_arguments(index, &fragment, out),
            Delta::Finish(reason) => self.finish = Some(Status::of_finish(Some(&reason))),
            Delta::Usage(u) => self.usage = Some(u),
            Delta::Error(e) => self.fail(e, out),
            Delta::Done => self.end(out),
        }
    }

    fn text(&mut self, text: &str, refusal: bool, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        self.room(out);
        let index = match self.items.last() {
            Some(Item { kind: Kind::Message { .. }, open: true, .. }) => self.items.len() - 1,
            _ => {
                self.close_all_but_calls(out);
                let nth = self.nth(true);
                self.open(Kind::Message { nth, parts: SmallVec::new() }, out)
            }
        };
        let (count, last_kind) = match self.items.get(index).map(|i| &i.kind) {
            Some(Kind::Message { parts, .. }) => (parts.len(), parts.last().map(|p| p.refusal)),
            _ => return,
        };
        let part_index = if last_kind == Some(refusal) {
            count - 1
        } else {
            if let Some(previous) = count.checked_sub(1) {
                self.close_part(index, previous, out);
            }
            if let Some(Item { kind: Kind::Message { parts, .. }, place, .. }) = self.items.get_mut(index) {
                // Its text follows the texts before it in the place.
                let end = place.bytes.len();
                parts.push(Part { refusal, text: end..end });
            }
            self.item_event_at(out, head!("response.content_part.added"), index, Some(count), |o| {
                o.extend_from_slice(b",\"part\":");
                write_part(o, refusal, "");
            });
            count
        };
        let kind = if refusal { head!("response.refusal.delta") } else { head!("response.output_text.delta") };
        // Where the delta's escaped text lies in `out`, kept for the done events.
        let mut escaped = 0..0;
        self.item_event_at(out, kind, index, Some(part_index), |o| {
            o.extend_from_slice(b",\"delta\":");
            let start = o.len();
            string(o, text);
            // Inside the quotes.
            escaped = start + 1..o.len() - 1;
            if !refusal {
                o.extend_from_slice(b",\"logprobs\":[]");
            }
        });
        // The part is the item's last: its text ends the place's bytes.
        if let Some(Item { kind: Kind::Message { parts, .. }, place, .. }) = self.items.get_mut(index)
            && let Some(p) = parts.get_mut(part_index)
        {
            place.bytes.extend_from_slice(out.get(escaped).unwrap_or_default());
            p.text.end = place.bytes.len();
        }
    }

    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        self.room(out);
        let index = match self.items.last() {
            Some(Item { kind: Kind::Reasoning { .. }, open: true, .. }) => self.items.len() - 1,
            _ => {
                self.close_all_but_calls(out);
                let nth = self.nth(false);
                let index = self.open(Kind::Reasoning { nth, text: String::new() }, out);
                self.item_event_at(out, head!("response.reasoning_summary_part.added"), index, None, |o| {
                    o.extend_from_slice(b",\"summary_index\":0,\"part\":");
                    write_summary_part(o, "");
                });
                index
            }
        };
        if let Some(Item { kind: Kind::Reasoning { text: t, .. }, .. }) = self.items.get_mut(index) {
            t.push_str(text);
        }
        self.item_event_at(out, head!("response.reasoning_summary_text.delta"), index, None, |o| {
            o.extend_from_slice(b",\"summary_index\":0,\"delta\":");
            string(o, text);
        });
    }

    fn call_start(&mut self, index: usize, id: &str, name: &str, out: &mut Vec<u8>) {
        self.room(out);
        self.close_all_but_calls(out);
        let call_id = call_id(id, &self.meta, index);
        let at =
            self.open(Kind::Call { nth: Some(index), call_id, name: name.to_owned(), arguments: String::new() }, out);
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
        self.room(out);
        // The reader starts every call before its arguments; one it did not is made here.
        if self.calls.get(index).is_none_or(|&at| at == usize::MAX) {
            self.call_start(index, "", "", out);
        }
        let Some(&at) = self.calls.get(index) else { return };
        if let Some(Item { kind: Kind::Call { arguments, .. }, .. }) = self.items.get_mut(at) {
            arguments.push_str(fragment);
        }
        self.item_event_at(out, head!("response.function_call_arguments.delta"), at, None, |o| {
            o.extend_from_slice(b",\"delta\":");
            string(o, fragment);
        });
    }

    /// The final event, once: every open item closed, then the whole response.
    fn end(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.room(out);
        for i in 0..self.items.len() {
            self.close(i, out);
        }
        self.ended = true;
        let status = self.finish.take().unwrap_or(Status::Completed);
        self.snapshot_event(out, final_head(&status), &status);
    }
}

mod frame;
mod items;
