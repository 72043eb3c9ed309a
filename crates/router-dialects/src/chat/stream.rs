//! A chat-completions SSE stream, split anywhere → [`Delta`]s, in order.

use super::chunk;
use super::fields::{error, usage};
use super::types::{ChatError, Delta};
use super::wire::{Body, Call, Choice};
use std::borrow::Cow;

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
    /// What the chunks repeat around what is read ([`chunk::read`]).
    repeats: chunk::Repeats,
}

impl ChunkReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// A reader that gives no [`Delta::Meta`]: for a writer that names the response's
    /// id and model itself (the core has already made every chunk's `model` the routed
    /// one), so that the first chunk's `id`, `model` and `created` are skimmed, not read.
    pub fn without_meta() -> Self {
        ChunkReader { meta_sent: true, ..Self::default() }
    }

    /// Feeds bytes; returns the deltas of every event they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Delta<'static>> {
        let mut deltas = Vec::new();
        self.push_with(bytes, &mut |d| deltas.push(d.into_owned()));
        deltas
    }

    /// Feeds bytes; hands `out` the deltas of every event they complete, in order, their
    /// text borrowed from `bytes` where an event lies whole in them.
    pub fn push_with<'b>(&mut self, bytes: &'b [u8], out: &mut impl FnMut(Delta<'b>)) {
        let mut rest = bytes;
        loop {
            if let Some(after) = self.inline_event(rest, out) {
                rest = after;
                continue;
            }
            let Some(i) = newline(rest) else { break };
            let (head, tail) = (&rest[..i], &rest[i + 1..]);
            // The usual event, one `data:` line and its blank line within these bytes, is
            // read where it lies rather than copied into the event's buffer first.
            if let Some(after) = self.whole_event(head, tail, out) {
                rest = after;
                continue;
            }
            rest = tail;
            if self.skipping {
                self.skipping = false;
                continue;
            }
            if self.line.is_empty() {
                self.line_done(head, out);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(head);
                self.line_done(&line, out);
            }
        }
        if !self.skipping && !rest.is_empty() {
            if self.line.len() + self.data.len() + rest.len() > MAX_EVENT_BYTES {
                self.overflow(out);
            } else {
                self.line.extend_from_slice(rest);
            }
        }
    }

    /// The stream ended: a last line without its newline and an event without its blank
    /// line are read as if they had them.
    pub fn finish(&mut self) -> Vec<Delta<'static>> {
        let mut deltas = Vec::new();
        self.finish_with(&mut |d| deltas.push(d.into_owned()));
        deltas
    }

    /// [`Self::finish`], handing the deltas to `out`.
    pub fn finish_with(&mut self, out: &mut impl FnMut(Delta<'static>)) {
        if !self.line.is_empty() && !self.skipping {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, out);
        }
        self.line.clear();
        self.skipping = false;
        self.dispatch(out);
    }

    /// The usual event, a `data:` line with a chunk's object and the blank line after it,
    /// read where it lies at the start of `rest`: the chunk's reading finds where the
    /// object ends, so the line's end is not searched for. Returns the bytes after the
    /// blank line; `None` (nothing done) for anything else.
    fn inline_event<'b>(&mut self, rest: &'b [u8], out: &mut impl FnMut(Delta<'b>)) -> Option<&'b [u8]> {
        if self.skipping || self.has_data || !self.line.is_empty() {
            return None;
        }
        let value = rest.strip_prefix(b"data:")?;
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if value.first() != Some(&b'{') {
            return None;
        }
        let mut body = Body::default();
        let end = chunk::read_line(value, !self.meta_sent, &mut self.repeats, &mut body)?;
        if end > MAX_EVENT_BYTES {
            return None;
        }
        let mut after = &value[end..];
        while let [b' ' | b'\t' | b'\r', tail @ ..] = after {
            after = tail;
        }
        let after = after.strip_prefix(b"\n")?;
        let after = after.strip_prefix(b"\n").or_else(|| after.strip_prefix(b"\r\n"))?;
        self.chunk(&mut body, out);
        Some(after)
    }

    /// When `head` is a `data:` line that starts an event and `tail` begins with the blank
    /// line that ends it, reads its payload in place and returns the bytes after the
    /// blank line.
    fn whole_event<'b>(&mut self, head: &'b [u8], tail: &'b [u8], out: &mut impl FnMut(Delta<'b>)) -> Option<&'b [u8]> {
        if self.skipping || self.has_data || !self.line.is_empty() {
            return None;
        }
        let after = tail.strip_prefix(b"\n").or_else(|| tail.strip_prefix(b"\r\n"))?;
        let line = head.strip_suffix(b"\r").unwrap_or(head);
        let value = line.strip_prefix(b"data:")?;
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if value.len() > MAX_EVENT_BYTES {
            return None;
        }
        self.read(value, out);
        Some(after)
    }

    fn overflow<'b>(&mut self, out: &mut impl FnMut(Delta<'b>)) {
        self.line.clear();
        self.data.clear();
        self.has_data = false;
        self.skipping = true;
        out(Delta::Error(ChatError {
            status: None,
            kind: Some("stream_event_too_long".to_owned()),
            message: format!("an upstream event exceeded {MAX_EVENT_BYTES} bytes"),
        }));
    }

    fn line_done<'b>(&mut self, line: &[u8], out: &mut impl FnMut(Delta<'b>)) {
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

    fn dispatch<'b>(&mut self, out: &mut impl FnMut(Delta<'b>)) {
        if !self.has_data {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        self.has_data = false;
        // The data is the reader's own buffer, kept for the next event: the deltas own
        // their text.
        self.read(&data, &mut |d: Delta<'_>| out(d.into_owned()));
        // The buffer is kept for the next event.
        data.clear();
        self.data = data;
    }

    fn read<'d>(&mut self, data: &'d [u8], out: &mut impl FnMut(Delta<'d>)) {
        // The end, settled before the JSON reading (which would refuse it at a cost).
        if data.trim_ascii() == b"[DONE]" {
            out(Delta::Done);
            return;
        }
        let mut body = Body::default();
        if chunk::read(data, !self.meta_sent, &mut self.repeats, &mut body).is_some() {
            self.chunk(&mut body, out);
            return;
        }
        // Lenient: `data:` lines run together without the blank line between events.
        // An unreadable payload is skipped: the core has already judged the stream.
        for part in data.split(|&b| b == b'\n') {
            if part.trim_ascii() == b"[DONE]" {
                out(Delta::Done);
            } else {
                let mut body = Body::default();
                if chunk::read(part, !self.meta_sent, &mut self.repeats, &mut body).is_some() {
                    self.chunk(&mut body, out);
                }
            }
        }
    }

    /// A chunk's deltas, its members taken out of `body` (moving the whole body, some
    /// hundreds of bytes, was a copy each time).
    fn chunk<'d>(&mut self, body: &mut Body<'d>, out: &mut impl FnMut(Delta<'d>)) {
        if !self.meta_sent && (body.id.is_some() || body.model.is_some()) {
            self.meta_sent = true;
            let text = |t: Option<Option<Cow<'d, str>>>| t.flatten().unwrap_or_default();
            out(Delta::Meta {
                id: text(body.id.take()),
                model: text(body.model.take()),
                created: body.created.unwrap_or(0),
            });
        }
        if let Some(e) = &body.error {
            out(Delta::Error(error(e)));
        } else if let Some(choice) = &mut body.choice {
            self.choice(choice, out);
        }
        if let Some(u) = &body.usage {
            out(Delta::Usage(usage(u)));
        }
    }

    fn choice<'d>(&mut self, choice: &mut Choice<'d>, out: &mut impl FnMut(Delta<'d>)) {
        // A few providers stream `message` rather than `delta`.
        let delta = match &mut choice.delta {
            Some(delta) => delta,
            None => &mut choice.message,
        };
        if let Some(delta) = delta {
            let non_empty = |t: Option<Cow<'d, str>>| t.filter(|t| !t.is_empty());
            // `reasoning`, else `reasoning_content` (providers use either).
            if let Some(r) = non_empty(delta.reasoning.take().or(delta.reasoning_content.take())) {
                out(Delta::Reasoning(r));
            }
            if let Some(r) = non_empty(delta.refusal.take()) {
                out(Delta::Refusal(r));
            }
            if let Some(t) = non_empty(delta.content.take()) {
                out(Delta::Text(t));
            }
            if let Some(calls) = delta.tool_calls.take() {
                for (position, call) in calls.into_iter().enumerate() {
                    self.tool_call(position, call, out);
                }
            }
        }
        if !self.finish_sent
            && let Some(reason) = choice.finish_reason.take()
        {
            self.finish_sent = true;
            out(Delta::Finish(reason));
        }
    }

    /// A tool call's fragment. A call is known by the upstream's `index`, unless it comes
    /// with an id other than that call's: some providers give every call index 0.
    fn tool_call<'d>(&mut self, position: usize, call: Call<'d>, out: &mut impl FnMut(Delta<'d>)) {
        let upstream = call.index.unwrap_or(position as u64);
        let id = call.id.filter(|id| !id.is_empty());
        let known = self.calls.iter().rposition(|(index, _)| *index == upstream);
        let index = match (known, &id) {
            (Some(k), Some(id)) if !self.calls[k].1.is_empty() && self.calls[k].1 != **id => None,
            (Some(k), _) => Some(k),
            (None, _) => None,
        };
        let index = match index {
            Some(k) => k,
            None => {
                let id = id.unwrap_or_default();
                self.calls.push((upstream, id.to_string()));
                let name = call.name.unwrap_or_default();
                out(Delta::ToolCallStart { index: self.calls.len() - 1, id, name });
                self.calls.len() - 1
            }
        };
        if let Some(fragment) = call.arguments.filter(|f| !f.is_empty()) {
            out(Delta::ToolCallArguments { index, fragment });
        }
    }
}

/// The first `\n` in `b`, eight bytes at a time (byte by byte, this search was a tenth
/// of a stream's translation).
fn newline(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(word) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(word.try_into().ok()?) ^ (ONES * u64::from(b'\n'));
        // The lowest flagged byte is exact (a borrow may flag only bytes above it).
        let zero = x.wrapping_sub(ONES) & !x & HIGH;
        if zero != 0 {
            return Some(i + zero.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    b[i..].iter().position(|&c| c == b'\n').map(|p| i + p)
}

#[cfg(test)]
mod tests;
