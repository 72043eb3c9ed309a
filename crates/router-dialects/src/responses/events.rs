//! A chat stream's deltas as the Responses event stream: `response.created`,
//! `response.in_progress`, each output item added, its deltas and done events, then
//! `response.completed` (or `response.incomplete`, or `response.failed`), every event
//! numbered by `sequence_number`. Events are written as they become known; nothing waits
//! for the end of the stream but the final snapshot.

use super::output::{
    ResponseMeta, Status, call_id_or, write_call_item, write_message_item_by, write_part, write_part_by,
    write_reasoning_item, write_response, write_summary_part,
};
use crate::chat::{Answer, ChatError, ChunkReader, Delta, Usage};
use crate::json_out::{number, string};
use std::borrow::Cow;

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
    /// The text as its deltas wrote it (escaped, without the quotes): the done events
    /// and the item copy it instead of escaping the whole text again each time.
    json: Vec<u8>,
}

impl Part {
    /// The text as a JSON string.
    fn write_text(&self, out: &mut Vec<u8>) {
        out.reserve(self.json.len() + 2);
        out.push(b'"');
        out.extend_from_slice(&self.json);
        out.push(b'"');
    }
}

impl Item {
    fn is_open(&self) -> bool {
        match self {
            Item::Reasoning { open, .. } | Item::Message { open, .. } | Item::Call { open, .. } => *open,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Item::Reasoning { id, text, open } => write_reasoning_item(out, id, text, !open),
            Item::Message { id, parts, open } => write_message_item_by(out, id, !open, |o| {
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        o.push(b',');
                    }
                    write_part_by(o, p.refusal, |o| p.write_text(o));
                }
            }),
            Item::Call { id, call_id, name, arguments, open } => {
                write_call_item(out, id, call_id, name, arguments, !open)
            }
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
            items: Vec::new(),
            places: Vec::new(),
            calls: Vec::new(),
            finish: None,
            usage: None,
            started: false,
            ended: false,
        };
        EventWriter { reader: ChunkReader::new(), w }
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
    items: Vec<Item>,
    /// Each item's place, written once when it is added and copied into its events.
    places: Vec<Place>,
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
                // Usually the id the response already names (the router sets it).
                if !model.is_empty() && *model != *self.meta.model {
                    self.meta.model = model.into_owned();
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
            Some(Item::Message { open: true, .. }) => self.items.len() - 1,
            _ => {
                self.close_all_but_calls(out);
                let id = self.item_id("msg");
                self.open(Item::Message { id, parts: Vec::new(), open: true }, out)
            }
        };
        let (count, last_kind) = match self.items.get(index) {
            Some(Item::Message { parts, .. }) => (parts.len(), parts.last().map(|p| p.refusal)),
            _ => return,
        };
        let part_index = if last_kind == Some(refusal) {
            count - 1
        } else {
            if let Some(previous) = count.checked_sub(1) {
                self.close_part(index, previous, out);
            }
            if let Some(Item::Message { parts, .. }) = self.items.get_mut(index) {
                parts.push(Part { refusal, json: Vec::new() });
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
        if let Some(Item::Message { parts, .. }) = self.items.get_mut(index)
            && let Some(p) = parts.get_mut(part_index)
        {
            if p.json.is_empty() {
                // Room for the usual whole text, so that it seldom grows delta by delta.
                p.json.reserve(TEXT_CAPACITY);
            }
            p.json.extend_from_slice(out.get(escaped).unwrap_or_default());
        }
    }

    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        self.room(out);
        let index = match self.items.last() {
            Some(Item::Reasoning { open: true, .. }) => self.items.len() - 1,
            _ => {
                self.close_all_but_calls(out);
                let id = self.item_id("rs");
                let index = self.open(Item::Reasoning { id, text: String::new(), open: true }, out);
                self.item_event_at(out, head!("response.reasoning_summary_part.added"), index, None, |o| {
                    o.extend_from_slice(b",\"summary_index\":0,\"part\":");
                    write_summary_part(o, "");
                });
                index
            }
        };
        if let Some(Item::Reasoning { text: t, .. }) = self.items.get_mut(index) {
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
        self.room(out);
        // The reader starts every call before its arguments; one it did not is made here.
        if self.calls.get(index).is_none_or(|&at| at == usize::MAX) {
            self.call_start(index, "", "", out);
        }
        let Some(&at) = self.calls.get(index) else { return };
        if let Some(Item::Call { arguments, .. }) = self.items.get_mut(at) {
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

    /// Room in an empty `out` for a chunk's events (two snapshots with the echo at the
    /// start), reserved only when one is written: most chunks of a stream (a comment,
    /// the finish, the usage) give none.
    fn room(&self, out: &mut Vec<u8>) {
        if out.capacity() == 0 {
            out.reserve(EVENTS_CAPACITY + 2 * self.echo.len());
        }
    }

    /// Adds an item (`response.output_item.added`); returns its output index.
    fn open(&mut self, item: Item, out: &mut Vec<u8>) -> usize {
        let index = self.items.len();
        let mut place = Vec::with_capacity(PLACE_CAPACITY);
        place.extend_from_slice(b"\"item_id\":");
        match &item {
            Item::Reasoning { id, .. } | Item::Message { id, .. } | Item::Call { id, .. } => string(&mut place, id),
        }
        place.extend_from_slice(b",\"output_index\":");
        small_number(&mut place, index as u64);
        let head = place.len();
        self.places.push(Place { bytes: place, head, done: false });
        self.items.push(item);
        self.item_event(out, head!("response.output_item.added"), index);
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
        // Borrowed apart, so that the item's text is written without a copy of it.
        let Events { items, places, seq, .. } = self;
        let (Some(item), Some(place)) = (items.get_mut(index), places.get_mut(index)) else { return };
        if !item.is_open() {
            return;
        }
        let at = place.head();
        match &*item {
            Item::Message { parts, .. } => {
                if let Some(last) = parts.len().checked_sub(1)
                    && let Some(p) = parts.get(last)
                {
                    part_done(out, seq, at, last, p);
                }
            }
            Item::Reasoning { text, .. } => {
                event_at(out, seq, head!("response.reasoning_summary_text.done"), at, None, |o| {
                    o.extend_from_slice(b",\"summary_index\":0,\"text\":");
                    string(o, text);
                });
                event_at(out, seq, head!("response.reasoning_summary_part.done"), at, None, |o| {
                    o.extend_from_slice(b",\"summary_index\":0,\"part\":");
                    write_summary_part(o, text);
                });
            }
            Item::Call { name, arguments, .. } => {
                event_at(out, seq, head!("response.function_call_arguments.done"), at, None, |o| {
                    o.extend_from_slice(b",\"name\":");
                    string(o, name);
                    o.extend_from_slice(b",\"arguments\":");
                    string(o, arguments);
                });
            }
        }
        match item {
            Item::Reasoning { open, .. } | Item::Message { open, .. } | Item::Call { open, .. } => *open = false,
        }
        let n = next(seq);
        let item = &*item;
        write_event(out, head!("response.output_item.done"), n, |o| {
            o.extend_from_slice(b",\"output_index\":");
            small_number(o, index as u64);
            o.extend_from_slice(b",\"item\":");
            let start = o.len();
            item.write(o);
            place.bytes.extend_from_slice(&o[start..]);
            place.done = true;
        });
    }

    /// A new item's id: `msg_<tail>`, then `msg_<tail>_1`, ... for later ones.
    fn item_id(&self, prefix: &str) -> String {
        let same = self
            .items
            .iter()
            .filter(|i| matches!((i, prefix), (Item::Message { .. }, "msg") | (Item::Reasoning { .. }, "rs")))
            .count();
        // Pieces pushed in place: `format!` cost as much as the rest of the item's start.
        let tail = self.meta.tail();
        let mut id = String::with_capacity(prefix.len() + tail.len() + 8);
        id.push_str(prefix);
        id.push('_');
        id.push_str(tail);
        if same > 0 {
            id.push('_');
            id.push_str(&same.to_string());
        }
        id
    }

    /// An event carrying the whole response as it stands (`response.created`, …).
    /// Returns where in `out` the response's bytes are.
    fn snapshot_event(&mut self, out: &mut Vec<u8>, kind: &[u8], status: &Status) -> std::ops::Range<usize> {
        let usage = if matches!(status, Status::InProgress) { None } else { self.usage };
        let (meta, echo, items, places) = (&self.meta, &self.echo, &self.items, &self.places);
        let seq = self.seq;
        self.seq += 1;
        let mut response = 0..0;
        write_event(out, kind, seq, |o| {
            o.extend_from_slice(b",\"response\":");
            response.start = o.len();
            let output = |o: &mut Vec<u8>| {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        o.push(b',');
                    }
                    match places.get(i).and_then(Place::done) {
                        Some(bytes) => o.extend_from_slice(bytes),
                        None => item.write(o),
                    }
                }
            };
            write_response(o, meta, echo, status, output, usage.as_ref());
            response.end = o.len();
        });
        response
    }

    /// `response.output_item.added` or `.done` with the item as it stands.
    fn item_event(&mut self, out: &mut Vec<u8>, kind: &[u8], index: usize) {
        let Some(item) = self.items.get(index) else { return };
        let seq = self.seq;
        self.seq += 1;
        write_event(out, kind, seq, |o| {
            o.extend_from_slice(b",\"output_index\":");
            number(o, index as u64);
            o.extend_from_slice(b",\"item\":");
            item.write(o);
        });
    }

    /// An event about item `index`: its place, a part's `"content_index"`, then what
    /// `rest` writes (each member after a comma).
    fn item_event_at(
        &mut self,
        out: &mut Vec<u8>,
        kind: &[u8],
        index: usize,
        content_index: Option<usize>,
        rest: impl FnOnce(&mut Vec<u8>),
    ) {
        let place = self.places.get(index).map_or(&[][..], Place::head);
        event_at(out, &mut self.seq, kind, place, content_index, rest);
    }

    /// A message's content part is complete: its text's done event, then the part's.
    fn close_part(&mut self, index: usize, part: usize, out: &mut Vec<u8>) {
        let Events { items, places, seq, .. } = self;
        if let (Some(Item::Message { parts, .. }), Some(place)) = (items.get(index), places.get(index))
            && let Some(p) = parts.get(part)
        {
            part_done(out, seq, place.head(), part, p);
        }
    }
}

/// Where an item is, `"item_id":…,"output_index":…`, then the item as its
/// `response.output_item.done` event wrote it: the final snapshot copies those bytes
/// instead of writing the item a second time (one buffer for both, one allocation).
#[derive(Debug)]
struct Place {
    bytes: Vec<u8>,
    /// Where the place ends and the item's bytes begin.
    head: usize,
    done: bool,
}

impl Place {
    fn head(&self) -> &[u8] {
        self.bytes.get(..self.head).unwrap_or_default()
    }

    /// The item's bytes, once its done event has written them.
    fn done(&self) -> Option<&[u8]> {
        self.done.then(|| self.bytes.get(self.head..)).flatten()
    }
}

/// The next sequence number.
fn next(seq: &mut u64) -> u64 {
    let n = *seq;
    *seq += 1;
    n
}

/// An event about the item at `place`: its place, a part's `"content_index"`, then what
/// `rest` writes (each member after a comma).
fn event_at(
    out: &mut Vec<u8>,
    seq: &mut u64,
    kind: &[u8],
    place: &[u8],
    content_index: Option<usize>,
    rest: impl FnOnce(&mut Vec<u8>),
) {
    write_event(out, kind, next(seq), |o| {
        o.push(b',');
        o.extend_from_slice(place);
        if let Some(c) = content_index {
            o.extend_from_slice(b",\"content_index\":");
            small_number(o, c as u64);
        }
        rest(o);
    });
}

/// A message's content part `p` (the item's `part`th) is complete: its text's done
/// event, then the part's.
fn part_done(out: &mut Vec<u8>, seq: &mut u64, place: &[u8], part: usize, p: &Part) {
    let kind = if p.refusal { head!("response.refusal.done") } else { head!("response.output_text.done") };
    event_at(out, seq, kind, place, Some(part), |o| {
        o.extend_from_slice(if p.refusal { b",\"refusal\":" } else { b",\"text\":" });
        p.write_text(o);
        if !p.refusal {
            o.extend_from_slice(b",\"logprobs\":[]");
        }
    });
    event_at(out, seq, head!("response.content_part.done"), place, Some(part), |o| {
        o.extend_from_slice(b",\"part\":");
        write_part_by(o, p.refusal, |o| p.write_text(o));
    });
}

/// An event's head, `event: <kind>` to `"sequence_number":`, as one literal.
macro_rules! head {
    ($kind:literal) => {
        concat!("event: ", $kind, "\ndata: {\"type\":\"", $kind, "\",\"sequence_number\":").as_bytes()
    };
}
use head;

/// The final event's head for `status` ([`Status::final_event`] names it).
fn final_head(status: &Status) -> &'static [u8] {
    match status.final_event() {
        "response.incomplete" => head!("response.incomplete"),
        "response.failed" => head!("response.failed"),
        _ => head!("response.completed"),
    }
}

/// An event: its `head` (from [`head!`]), `sequence_number`, then what `rest` writes.
fn write_event(out: &mut Vec<u8>, head: &[u8], seq: u64, rest: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(head);
    small_number(out, seq);
    rest(out);
    out.extend_from_slice(b"}\n\n");
}

/// The bytes reserved for the events of one upstream chunk, beside the echo.
const EVENTS_CAPACITY: usize = 2048;

/// `n` as a JSON number: a sequence number or an index, nearly always below 100, written
/// without the general writer's buffer.
fn small_number(out: &mut Vec<u8>, n: u64) {
    match n {
        0..10 => out.push(b'0' + n as u8),
        10..100 => out.extend_from_slice(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8]),
        _ => number(out, n),
    }
}

/// The bytes reserved for a content part's text when its first delta comes.
const TEXT_CAPACITY: usize = 128;

/// Room for an item's place (its id, `msg_` and the response id's tail, and its index)
/// and for the usual item written whole when it is done.
const PLACE_CAPACITY: usize = 384;

#[cfg(test)]
mod tests {
    #[test]
    fn small_numbers_are_written_as_the_general_writer_writes_them() {
        for n in [0, 9, 10, 42, 99, 100, 12_345, u64::MAX] {
            let (mut small, mut general) = (Vec::new(), Vec::new());
            super::small_number(&mut small, n);
            crate::json_out::number(&mut general, n);
            assert_eq!(small, general, "{n}");
        }
    }
}
