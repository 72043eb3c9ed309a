//! One `chat.completion.chunk` of a stream, read for what the events need: the members
//! [`super::wire`] reads, into the same [`Body`], but everything else is skimmed (a
//! string to its closing quote, an object or array to its matching bracket) instead of
//! walked by the checking cursor, which cost about 150 instructions a member and most of
//! a stream's translation. What is read is checked as before (UTF-8, escapes through
//! serde, numbers); what is skimmed is only matched, so a malformed member the events do
//! not use no longer drops the chunk. Any valid JSON reads as the checking walk reads it
//! (a property test holds the two together).

use super::wire::{Body, Call, Choice, Message, UsageIn};
use std::borrow::Cow;

/// Reads one chunk's JSON into `body`; `None` when it is not an object with nothing after
/// it. Without `meta`, `id`, `model` and `created` are skimmed: a stream needs them once.
///
/// `head` is what the stream's chunks repeat: the bytes of an earlier chunk up to the key
/// of the first member read in `choices[0].delta`, where nothing had been read yet. A
/// chunk that begins with the same bytes would be read the same way up to there, so it is
/// read from there (one comparison instead of a dozen members skimmed). A head is used
/// only without `meta` (with it, `id` and `model` are read), and may be taken with it.
pub(super) fn read<'a>(bytes: &'a [u8], meta: bool, repeats: &mut Repeats, body: &mut Body<'a>) -> Option<()> {
    let end = object(bytes, meta, repeats, body, false)?;
    bytes[end..].iter().all(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r')).then_some(())
}

/// [`read`] for an event's `data:` line that lies in the stream's bytes: the object that
/// `bytes` begin with, without a line break anywhere in it (the line would end there);
/// returns where it ends, so that no search for the line's end is needed.
pub(super) fn read_line<'a>(bytes: &'a [u8], meta: bool, repeats: &mut Repeats, body: &mut Body<'a>) -> Option<usize> {
    object(bytes, meta, repeats, body, true)
}

/// What a stream's chunks repeat around the part that changes (see [`read`]), in one
/// buffer: the head, then the tail.
#[derive(Debug, Default)]
pub(super) struct Repeats {
    bytes: Vec<u8>,
    /// Where the head ends and the tail begins.
    split: usize,
}

impl Repeats {
    /// The bytes before the first member read in `choices[0].delta` (its key's quote
    /// included), where nothing had been read yet.
    pub(super) fn head(&self) -> &[u8] {
        self.bytes.get(..self.split).unwrap_or_default()
    }

    /// The bytes from the end of that `delta` to the end of `choices`, read without
    /// effect (`"finish_reason":null`, …), that followed the head: a chunk with both is
    /// read past them. Empty when unknown.
    pub(super) fn tail(&self) -> &[u8] {
        self.bytes.get(self.split..).unwrap_or_default()
    }

    /// A new head (see [`keep`]), with no tail.
    fn keep_head(&mut self, head: &[u8], line: bool) {
        self.bytes.clear();
        // Room for the usual tail too, so that keeping it does not move the head.
        self.bytes.reserve(head.len() + TAIL_ROOM);
        keep(&mut self.bytes, head, line);
        self.split = self.bytes.len();
    }

    /// A new tail (see [`keep`]) after the head.
    fn keep_tail(&mut self, tail: &[u8], line: bool) {
        self.bytes.truncate(self.split);
        keep(&mut self.bytes, tail, line);
    }
}

/// The bytes reserved for a tail beside its head (`},"finish_reason":null,…}]` is about
/// seventy).
const TAIL_ROOM: usize = 128;

/// The object `bytes` begin with (after whitespace), read into `body`; where it ends.
fn object<'a>(bytes: &'a [u8], meta: bool, repeats: &mut Repeats, body: &mut Body<'a>, line: bool) -> Option<usize> {
    // What is kept holds no line break (see `keep`), so a line may be read from it too.
    let head = repeats.head();
    if !meta && !head.is_empty() && bytes.starts_with(head) {
        // On the key's quote, the last byte of the head.
        let mut s = Skim::new(bytes, head.len() - 1, false, line);
        s.resume(body, repeats.tail())?;
        if let Some(tail) = s.tail.clone() {
            repeats.keep_tail(&bytes[tail], line);
        }
        return Some(s.i);
    }
    let mut s = Skim::new(bytes, 0, true, line);
    s.ws();
    if s.peek()? != b'{' {
        return None;
    }
    if s.open(b'{', b'}')? {
        s.top_members(body, meta)?;
    }
    if let Some(mark) = s.mark {
        repeats.keep_head(&bytes[..=mark], line);
        if !repeats.head().is_empty()
            && let Some(tail) = s.tail.clone()
        {
            repeats.keep_tail(&bytes[tail], line);
        }
    }
    Some(s.i)
}

/// Adds `bytes` to `into` when they hold no line break (always so when read as a line);
/// else adds nothing.
fn keep(into: &mut Vec<u8>, bytes: &[u8], line: bool) {
    if line || !bytes.contains(&b'\n') {
        into.extend_from_slice(bytes);
    }
}

/// A cursor that reads the wanted members and skims the rest.
struct Skim<'a> {
    b: &'a [u8],
    i: usize,
    /// Nothing read yet (only skimmed, or entered on the way to `choices[0].delta`).
    clean: bool,
    /// Where the last member of `choices[0].delta` began while `clean` (its key's quote).
    mark: Option<usize>,
    /// Reading a `data:` line in place: a line feed (whitespace to JSON) ends it.
    line: bool,
    /// Where the marked `delta` ended, while what followed it had no effect.
    delta_end: Option<usize>,
    /// Something was read since `delta_end` (or, resuming, since the delta ended).
    touched: bool,
    /// A tail to keep: from the marked delta's end to the end of `choices`, read without
    /// effect.
    tail: Option<std::ops::Range<usize>>,
}

impl<'a> Skim<'a> {
    fn new(b: &'a [u8], i: usize, clean: bool, line: bool) -> Self {
        Skim { b, i, clean, mark: None, line, delta_end: None, touched: false, tail: None }
    }

    /// The rest of a chunk whose head is a known one (see [`read`]): the cursor on a key
    /// of `choices[0].delta`, in the first element of `choices`, in the top object.
    fn resume(&mut self, body: &mut Body<'a>, tail: &[u8]) -> Option<()> {
        let choice = body.choice.insert(Choice::default());
        let delta = choice.delta.insert(Some(Message::default()));
        if let Some(m) = delta {
            self.message_members(m)?;
        }
        if !tail.is_empty() && self.b[self.i..].starts_with(tail) {
            // Read the same way as before, to the same end, with no effect.
            self.i += tail.len();
        } else {
            let start = self.i;
            self.touched = false;
            if self.more(b'}')? {
                self.choice_members(choice)?;
            }
            while self.more(b']')? {
                self.skip()?;
            }
            if !self.touched {
                self.tail = Some(start..self.i);
            }
        }
        if self.more(b'}')? {
            self.top_members(body, false)?;
        }
        Some(())
    }

    /// The top object's members, the cursor on the first one's key.
    fn top_members(&mut self, body: &mut Body<'a>, meta: bool) -> Option<()> {
        loop {
            match self.key()? {
                b"id" if meta => body.id = Some(self.meta(Self::textual)?),
                b"model" if meta => body.model = Some(self.meta(Self::textual)?),
                b"created" if meta => body.created = self.meta(Self::count)?,
                b"choices" => self.first_choice(&mut body.choice)?,
                b"usage" => body.usage = self.usage()?,
                b"error" => body.error = self.tree()?.filter(|e| !e.is_null()),
                _ => self.skip()?,
            }
            if !self.more(b'}')? {
                return Some(());
            }
        }
    }

    /// Reads one of `id`, `model`, `created` with `meta`, leaving the cursor `clean`: they
    /// are skimmed where the head is used, and reading a value never accepts what
    /// skimming refuses.
    fn meta<T>(&mut self, read: fn(&mut Self) -> Option<T>) -> Option<T> {
        let clean = self.clean;
        let value = read(self);
        self.clean = clean;
        value
    }

    /// `choices`: its first element into `into` (`None` when there is none or it is not an
    /// object), the rest skimmed.
    fn first_choice(&mut self, into: &mut Option<Choice<'a>>) -> Option<()> {
        *into = None;
        if self.peek()? != b'[' {
            self.clean = false;
            return self.skip();
        }
        if self.open(b'[', b']')? {
            match self.object()? {
                None => {}
                Some(false) => *into = Some(Choice::default()),
                Some(true) => self.choice_members(into.insert(Choice::default()))?,
            }
            while self.more(b']')? {
                self.skip()?;
            }
        }
        if let Some(end) = self.delta_end.take()
            && !self.touched
        {
            self.tail = Some(end..self.i);
        }
        self.clean = false;
        Some(())
    }

    /// A choice's members, the cursor on the first one's key.
    fn choice_members(&mut self, choice: &mut Choice<'a>) -> Option<()> {
        loop {
            match self.key()? {
                b"delta" => {
                    let marked = self.mark.is_some();
                    self.message(choice.delta.insert(None), true)?;
                    if !marked && self.mark.is_some() {
                        // The delta that ends the head: a tail may follow it.
                        self.delta_end = Some(self.i);
                        self.touched = false;
                    } else {
                        self.touched = true;
                    }
                }
                b"message" => {
                    self.message(&mut choice.message, false)?;
                    self.touched = true;
                }
                b"finish_reason" => {
                    choice.finish_reason = self.textual()?;
                    self.touched |= choice.finish_reason.is_some();
                }
                b"stop_reason" => {
                    choice.stop_reason = self.text_only()?;
                    self.touched |= choice.stop_reason.is_some();
                }
                _ => self.skip()?,
            }
            if !self.more(b'}')? {
                return Some(());
            }
        }
    }

    /// A message (`None` when it is not an object); `delta`: the first choice's delta,
    /// where [`read`] marks the head.
    fn message(&mut self, into: &mut Option<Message<'a>>, delta: bool) -> Option<()> {
        *into = None;
        if !delta {
            self.clean = false;
        }
        match self.object()? {
            None => {}
            Some(false) => *into = Some(Message::default()),
            Some(true) => {
                let m = into.insert(Message::default());
                if delta && self.clean {
                    self.mark = Some(self.i);
                }
                self.message_members(m)?;
            }
        }
        self.clean = false;
        Some(())
    }

    /// A message's members, the cursor on the first one's key.
    fn message_members(&mut self, m: &mut Message<'a>) -> Option<()> {
        loop {
            match self.key()? {
                b"content" => m.content = self.content()?,
                b"reasoning" => m.reasoning = self.text_only()?,
                b"reasoning_content" => m.reasoning_content = self.text_only()?,
                b"refusal" => m.refusal = self.textual()?,
                b"tool_calls" => m.tool_calls = self.tool_calls()?,
                _ => self.skip()?,
            }
            if !self.more(b'}')? {
                return Some(());
            }
            if self.clean {
                // Still only skimmed: the next member's key may end the head.
                self.mark = Some(self.i);
            }
        }
    }

    /// Content: text, or parts whose `text` is joined; anything else is absent.
    fn content(&mut self) -> Option<Option<Cow<'a, str>>> {
        self.clean = false;
        if self.peek()? != b'[' {
            return self.text_only();
        }
        let mut joined = String::new();
        let mut more = self.open(b'[', b']')?;
        while more {
            if self.object()? == Some(true) {
                loop {
                    match self.key()? {
                        b"text" => joined.push_str(self.text_only()?.as_deref().unwrap_or("")),
                        _ => self.skip()?,
                    }
                    if !self.more(b'}')? {
                        break;
                    }
                }
            }
            more = self.more(b']')?;
        }
        Some(Some(Cow::Owned(joined)))
    }

    fn tool_calls(&mut self) -> Option<Option<Vec<Call<'a>>>> {
        self.clean = false;
        match self.peek()? {
            b'[' => {}
            b'n' if self.b[self.i..].starts_with(b"null") => {
                self.scalar()?;
                return Some(None);
            }
            _ => {
                self.skip()?;
                return Some(Some(Vec::new()));
            }
        }
        let mut calls = Vec::new();
        let mut more = self.open(b'[', b']')?;
        while more {
            calls.push(self.call()?);
            more = self.more(b']')?;
        }
        Some(Some(calls))
    }

    fn call(&mut self) -> Option<Call<'a>> {
        let mut call = Call::default();
        if self.object()? != Some(true) {
            return Some(call);
        }
        loop {
            match self.key()? {
                b"index" => call.index = self.count()?,
                b"id" => call.id = self.textual()?,
                b"function" => (call.name, call.arguments) = self.function()?,
                _ => self.skip()?,
            }
            if !self.more(b'}')? {
                return Some(call);
            }
        }
    }

    /// A call's `function`: its name and arguments (each absent when not given).
    fn function(&mut self) -> Option<NameAndArguments<'a>> {
        let (mut name, mut arguments) = (None, None);
        if self.object()? != Some(true) {
            return Some((name, arguments));
        }
        loop {
            match self.key()? {
                b"name" => name = self.textual()?,
                b"arguments" => arguments = self.arguments()?,
                _ => self.skip()?,
            }
            if !self.more(b'}')? {
                return Some((name, arguments));
            }
        }
    }

    /// A call's arguments: their text, or the JSON text of any other non-null value (some
    /// providers send the object itself).
    fn arguments(&mut self) -> Option<Option<Cow<'a, str>>> {
        match self.peek()? {
            b'"' => self.string().map(Some),
            _ => Some(self.tree()?.filter(|v| !v.is_null()).map(|v| Cow::Owned(v.to_string()))),
        }
    }

    fn usage(&mut self) -> Option<Option<UsageIn>> {
        self.clean = false;
        let mut u = UsageIn::default();
        match self.object()? {
            None => return Some(None),
            Some(false) => return Some(Some(u)),
            Some(true) => {}
        }
        loop {
            match self.key()? {
                b"prompt_tokens" => u.prompt_tokens = self.count()?,
                b"completion_tokens" => u.completion_tokens = self.count()?,
                b"total_tokens" => u.total_tokens = self.count()?,
                b"prompt_tokens_details" => u.cached_tokens = self.detail(b"cached_tokens")?,
                b"completion_tokens_details" => u.reasoning_tokens = self.detail(b"reasoning_tokens")?,
                _ => self.skip()?,
            }
            if !self.more(b'}')? {
                return Some(Some(u));
            }
        }
    }

    /// One count inside a details object; absent when the value is not an object.
    fn detail(&mut self, wanted: &[u8]) -> Option<Option<u64>> {
        let mut n = None;
        if self.object()? != Some(true) {
            return Some(n);
        }
        loop {
            if self.key()? == wanted {
                n = self.count()?;
            } else {
                self.skip()?;
            }
            if !self.more(b'}')? {
                return Some(n);
            }
        }
    }
}

/// A call's function: its name and its arguments, each absent when not given.
type NameAndArguments<'a> = (Option<Cow<'a, str>>, Option<Cow<'a, str>>);

mod skim;
#[cfg(test)]
mod tests;
