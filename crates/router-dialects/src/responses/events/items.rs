//! An output item's life in the event stream: added, its parts closed, done; and the
//! snapshots (`response.created`, `in_progress`, the final one) that list the items.

use super::frame::{
    EVENTS_CAPACITY, ITEM_ID_KEY, PLACE_CAPACITY, Place, event_at, head, next, small_number, write_event,
};
use super::{Events, Item, Kind, Part};
use crate::json_out::{number, string};
use crate::responses::output::{Status, write_part_by, write_response, write_summary_part};

impl Events {
    /// Room in an empty `out` for a chunk's events (two snapshots with the echo at the
    /// start), reserved only when one is written: most chunks of a stream (a comment,
    /// the finish, the usage) give none.
    pub(super) fn room(&self, out: &mut Vec<u8>) {
        if out.capacity() == 0 {
            out.reserve(EVENTS_CAPACITY + 2 * self.echo.len());
        }
    }

    /// Adds an item (`response.output_item.added`); returns its output index.
    pub(super) fn open(&mut self, kind: Kind, out: &mut Vec<u8>) -> usize {
        let index = self.items.len();
        let mut bytes = Vec::with_capacity(PLACE_CAPACITY);
        bytes.extend_from_slice(ITEM_ID_KEY);
        kind.id(self.meta.tail()).write(&mut bytes);
        let id_end = bytes.len();
        bytes.extend_from_slice(b",\"output_index\":");
        small_number(&mut bytes, index as u64);
        let head = bytes.len();
        self.items.push(Item { kind, place: Place { bytes, id_end, head, done: false }, open: true });
        self.item_event(out, head!("response.output_item.added"), index);
        index
    }

    /// Text and reasoning end where another item begins; calls stay open to the end,
    /// since a chat stream may interleave the arguments of several.
    pub(super) fn close_all_but_calls(&mut self, out: &mut Vec<u8>) {
        for i in 0..self.items.len() {
            if !matches!(self.items.get(i).map(|item| &item.kind), Some(Kind::Call { .. })) {
                self.close(i, out);
            }
        }
    }

    pub(super) fn close(&mut self, index: usize, out: &mut Vec<u8>) {
        // Borrowed apart, so that the item's text is written without a copy of it.
        let Events { items, seq, .. } = self;
        let Some(item) = items.get_mut(index) else { return };
        if !item.open {
            return;
        }
        let place = &item.place;
        let at = place.head();
        match &item.kind {
            Kind::Message { parts, .. } => {
                if let Some(last) = parts.len().checked_sub(1)
                    && let Some(p) = parts.get(last)
                {
                    part_done(out, seq, place, last, p);
                }
            }
            Kind::Reasoning { text, .. } => {
                event_at(out, seq, head!("response.reasoning_summary_text.done"), at, None, |o| {
                    o.extend_from_slice(b",\"summary_index\":0,\"text\":");
                    string(o, text);
                });
                event_at(out, seq, head!("response.reasoning_summary_part.done"), at, None, |o| {
                    o.extend_from_slice(b",\"summary_index\":0,\"part\":");
                    write_summary_part(o, text);
                });
            }
            Kind::Call { name, arguments, .. } => {
                event_at(out, seq, head!("response.function_call_arguments.done"), at, None, |o| {
                    o.extend_from_slice(b",\"name\":");
                    string(o, name);
                    o.extend_from_slice(b",\"arguments\":");
                    string(o, arguments);
                });
            }
        }
        item.open = false;
        let n = next(seq);
        write_event(out, head!("response.output_item.done"), n, |o| {
            o.extend_from_slice(b",\"output_index\":");
            small_number(o, index as u64);
            o.extend_from_slice(b",\"item\":");
            let start = o.len();
            item.write(o);
            // The parts' texts are in the item's bytes now: the place keeps those instead.
            let place = &mut item.place;
            place.bytes.truncate(place.head);
            place.bytes.extend_from_slice(&o[start..]);
            place.done = true;
        });
    }

    /// A new message's (or reasoning's) id number: none for the first of its kind
    /// (`msg_<tail>`), then 1, 2, ... (`msg_<tail>_1`).
    pub(super) fn nth(&self, message: bool) -> Option<usize> {
        let same = self
            .items
            .iter()
            .filter(|i| matches!((&i.kind, message), (Kind::Message { .. }, true) | (Kind::Reasoning { .. }, false)))
            .count();
        (same > 0).then_some(same)
    }

    /// An event carrying the whole response as it stands (`response.created`, …).
    /// Returns where in `out` the response's bytes are.
    pub(super) fn snapshot_event(&mut self, out: &mut Vec<u8>, kind: &[u8], status: &Status) -> std::ops::Range<usize> {
        let usage = if matches!(status, Status::InProgress) { None } else { self.usage };
        let (meta, echo, items) = (&self.meta, &self.echo, &self.items);
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
                    match item.place.done() {
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
    pub(super) fn item_event(&mut self, out: &mut Vec<u8>, kind: &[u8], index: usize) {
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
    pub(super) fn item_event_at(
        &mut self,
        out: &mut Vec<u8>,
        kind: &[u8],
        index: usize,
        content_index: Option<usize>,
        rest: impl FnOnce(&mut Vec<u8>),
    ) {
        let place = self.items.get(index).map_or(&[][..], |item| item.place.head());
        event_at(out, &mut self.seq, kind, place, content_index, rest);
    }

    /// A message's content part is complete: its text's done event, then the part's.
    pub(super) fn close_part(&mut self, index: usize, part: usize, out: &mut Vec<u8>) {
        let Events { items, seq, .. } = self;
        if let Some(Item { kind: Kind::Message { parts, .. }, place, .. }) = items.get(index)
            && let Some(p) = parts.get(part)
        {
            part_done(out, seq, place, part, p);
        }
    }
}

/// A message's content part `p` (the item's `part`th, its text in `place`) is complete:
/// its text's done event, then the part's.
fn part_done(out: &mut Vec<u8>, seq: &mut u64, place: &Place, part: usize, p: &Part) {
    let kind = if p.refusal { head!("response.refusal.done") } else { head!("response.output_text.done") };
    event_at(out, seq, kind, place.head(), Some(part), |o| {
        o.extend_from_slice(if p.refusal { b",\"refusal\":" } else { b",\"text\":" });
        p.write_text(o, place);
        if !p.refusal {
            o.extend_from_slice(b",\"logprobs\":[]");
        }
    });
    event_at(out, seq, head!("response.content_part.done"), place.head(), Some(part), |o| {
        o.extend_from_slice(b",\"part\":");
        write_part_by(o, p.refusal, |o| p.write_text(o, place));
    });
}
