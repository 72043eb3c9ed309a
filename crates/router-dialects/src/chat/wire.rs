//! A chat answer or stream chunk read with the core's checking cursor
//! (`router_core::sse::json::Scanner`): no tree, strings borrowed from the payload when
//! they have no escapes, only the members a dialect needs, everything else walked past.
//! Every member is lenient, as upstreams differ: one of an unexpected type reads as
//! absent (a number where text is expected as its text), never as an unreadable answer.
//! A repeated member: the last one wins, as in a tree.

use super::types::ReadError;
use router_core::sse::json::Scanner;
use serde_json::Value;
use std::borrow::Cow;

/// An answer's or a chunk's top level.
#[derive(Default, Debug, PartialEq)]
pub(super) struct Body<'a> {
    /// `Some` when the member is present (even `null`).
    pub id: Option<Option<Cow<'a, str>>>,
    pub model: Option<Option<Cow<'a, str>>>,
    pub created: Option<u64>,
    /// The first choice (the router asks for one).
    pub choice: Option<Choice<'a>>,
    pub usage: Option<UsageIn>,
    /// The top-level `error`, when it is not `null` (rare: read into a tree).
    pub error: Option<Value>,
}

#[derive(Default, Debug, PartialEq)]
pub(super) struct Choice<'a> {
    /// `Some` when present (even `null`): a chunk's `delta` wins over its `message`.
    pub delta: Option<Option<Message<'a>>>,
    pub message: Option<Message<'a>>,
    pub finish_reason: Option<Cow<'a, str>>,
    /// Only text: a number there is a stop token's id.
    pub stop_reason: Option<Cow<'a, str>>,
}

#[derive(Default, Debug, PartialEq)]
pub(super) struct Message<'a> {
    pub content: Option<Cow<'a, str>>,
    pub reasoning: Option<Cow<'a, str>>,
    pub reasoning_content: Option<Cow<'a, str>>,
    pub refusal: Option<Cow<'a, str>>,
    /// Each element of `tool_calls` (one that is not an object as a call with nothing).
    pub tool_calls: Option<Vec<Call<'a>>>,
}

#[derive(Default, Debug, PartialEq)]
pub(super) struct Call<'a> {
    pub index: Option<u64>,
    pub id: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
    pub arguments: Option<Cow<'a, str>>,
}

#[derive(Default, Clone, Copy, Debug, PartialEq)]
pub(super) struct UsageIn {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub total_tokens: Option<u64>,
    pub cached_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
}

/// Reads a JSON object's bytes and hands its members to `with`. Without `meta`, the
/// answer's identity (`id`, `model`, `created`) is walked past unread: a stream needs it
/// from its first chunk only.
pub(super) fn read<R>(bytes: &[u8], meta: bool, with: impl FnOnce(Body<'_>) -> R) -> Result<R, ReadError> {
    // One UTF-8 check of the whole; the cursor checks the grammar as it walks.
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => return Err(not_json(bytes)),
    };
    let mut s = Scanner::new(text.as_bytes());
    s.ws();
    if s.peek() != Some(b'{') {
        return Err(not_json(bytes));
    }
    let mut body = Body::default();
    let walked = s.members(|s, key| {
        match key {
            b"id" if meta => body.id = Some(textual(s, text)?),
            b"model" if meta => body.model = Some(textual(s, text)?),
            b"created" if meta => body.created = count(s)?,
            b"choices" => body.choice = first_choice(s, text)?,
            b"usage" => body.usage = usage(s)?,
            b"error" => body.error = tree(s, text)?.filter(|e| !e.is_null()),
            _ => s.value()?,
        }
        Some(())
    });
    if walked.is_none() || !s.at_end() {
        return Err(not_json(bytes));
    }
    Ok(with(body))
}

/// Why `bytes` are not an answer: serde's word on them.
fn not_json(bytes: &[u8]) -> ReadError {
    match serde_json::from_slice::<Value>(bytes) {
        Err(e) => ReadError::NotJson(e),
        Ok(_) => ReadError::NotObject,
    }
}

/// A string's text: borrowed when it has no escapes.
fn string<'a>(s: &mut Scanner<'_>, text: &'a str) -> Option<Cow<'a, str>> {
    let quoted = s.string()?;
    let inner = &text[quoted.start + 1..quoted.end - 1];
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(&text[quoted]).ok().map(Cow::Owned)
}

/// Text only; any other value is walked past and reads as absent.
pub(super) fn text_only<'a>(s: &mut Scanner<'_>, text: &'a str) -> Option<Option<Cow<'a, str>>> {
    if s.peek()? == b'"' {
        return string(s, text).map(Some);
    }
    s.value()?;
    Some(None)
}

/// Text, or a number written out (some providers send numeric ids).
pub(super) fn textual<'a>(s: &mut Scanner<'_>, text: &'a str) -> Option<Option<Cow<'a, str>>> {
    match s.peek()? {
        b'"' => string(s, text).map(Some),
        b'-' | b'0'..=b'9' => {
            let token = s.scalar()?;
            let n: serde_json::Number = serde_json::from_slice(token).ok()?;
            Some(Some(Cow::Owned(n.to_string())))
        }
        _ => {
            s.value()?;
            Some(None)
        }
    }
}

/// A non-negative integer (a float truncated); anything else reads as absent.
pub(super) fn count(s: &mut Scanner<'_>) -> Option<Option<u64>> {
    if !matches!(s.peek()?, b'-' | b'0'..=b'9') {
        s.value()?;
        return Some(None);
    }
    let token = s.scalar()?;
    // Plain digits (nearly every count) without serde's number reading.
    if token.len() <= MAX_PLAIN_DIGITS && token.iter().all(u8::is_ascii_digit) {
        return Some(Some(token.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0'))));
    }
    let n: serde_json::Number = serde_json::from_slice(token).ok()?;
    Some(n.as_u64().or_else(|| n.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64)))
}

/// The most digits read without serde: any 19-digit number fits in a `u64`.
const MAX_PLAIN_DIGITS: usize = 19;

/// The value under the cursor as a tree (for what is rare: an error, odd arguments).
fn tree(s: &mut Scanner<'_>, text: &str) -> Option<Option<Value>> {
    let start = s.pos();
    s.value()?;
    Some(serde_json::from_str(&text[start..s.pos()]).ok())
}

/// Walks an object's members with `member`, or any other value past (`false`).
fn object(s: &mut Scanner<'_>, member: impl FnMut(&mut Scanner<'_>, &[u8]) -> Option<()>) -> Option<bool> {
    if s.peek()? != b'{' {
        s.value()?;
        return Some(false);
    }
    // The cursor's own lifetime ties the keys to the text; the closure needs no more.
    let mut member = member;
    s.members(|s, key| member(s, key))?;
    Some(true)
}

fn first_choice<'a>(s: &mut Scanner<'_>, text: &'a str) -> Option<Option<Choice<'a>>> {
    if s.peek()? != b'[' {
        s.value()?;
        return Some(None);
    }
    let mut first = None;
    let mut seen = false;
    s.elements(|s| {
        if std::mem::replace(&mut seen, true) {
            return s.value();
        }
        let mut choice = Choice::default();
        let is_object = object(s, |s, key| {
            match key {
                b"delta" => choice.delta = Some(message(s, text)?),
                b"message" => choice.message = message(s, text)?,
                b"finish_reason" => choice.finish_reason = textual(s, text)?,
                b"stop_reason" => choice.stop_reason = text_only(s, text)?,
                _ => s.value()?,
            }
            Some(())
        })?;
        first = is_object.then_some(choice);
        Some(())
    })?;
    Some(first)
}

fn message<'a>(s: &mut Scanner<'_>, text: &'a str) -> Option<Option<Message<'a>>> {
    let mut m = Message::default();
    let is_object = object(s, |s, key| {
        match key {
            b"content" => m.content = content(s, text)?,
            b"reasoning" => m.reasoning = text_only(s, text)?,
            b"reasoning_content" => m.reasoning_content = text_only(s, text)?,
            b"refusal" => m.refusal = textual(s, text)?,
            b"tool_calls" => m.tool_calls = tool_calls(s, text)?,
            _ => s.value()?,
        }
        Some(())
    })?;
    Some(is_object.then_some(m))
}

/// Content: text, or parts whose `text` is joined; anything else is absent.
pub(super) fn content<'a>(s: &mut Scanner<'_>, text: &'a str) -> Option<Option<Cow<'a, str>>> {
    if s.peek()? != b'[' {
        return text_only(s, text);
    }
    let mut joined = String::new();
    s.elements(|s| {
        let mut part = None;
        object(s, |s, key| {
            match key {
                b"text" => part = text_only(s, text)?,
                _ => s.value()?,
            }
            Some(())
        })?;
        joined.push_str(part.as_deref().unwrap_or(""));
        Some(())
    })?;
    Some(Some(Cow::Owned(joined)))
}

pub(super) fn tool_calls<'a>(s: &mut Scanner<'_>, text: &'a str) -> Option<Option<Vec<Call<'a>>>> {
    match s.peek()? {
        b'[' => {}
        b'n' if s.null() => return Some(None),
        _ => {
            s.value()?;
            return Some(Some(Vec::new()));
        }
    }
    let mut calls = Vec::new();
    s.elements(|s| {
        let mut call = Call::default();
        object(s, |s, key| {
            match key {
                b"index" => call.index = count(s)?,
                b"id" => call.id = textual(s, text)?,
                b"function" => {
                    let (mut name, mut arguments) = (None, None);
                    object(s, |s, key| {
                        match key {
                            b"name" => name = textual(s, text)?,
                            b"arguments" => arguments = arguments_of(s, text)?,
                            _ => s.value()?,
                        }
                        Some(())
                    })?;
                    (call.name, call.arguments) = (name, arguments);
                }
                _ => s.value()?,
            }
            Some(())
        })?;
        calls.push(call);
        Some(())
    })?;
    Some(Some(calls))
}

/// A call's arguments: their text, or the JSON text of any other non-null value (some
/// providers send the object itself).
fn arguments_of<'a>(s: &mut Scanner<'_>, text: &'a str) -> Option<Option<Cow<'a, str>>> {
    match s.peek()? {
        b'"' => string(s, text).map(Some),
        _ => Some(tree(s, text)?.filter(|v| !v.is_null()).map(|v| Cow::Owned(v.to_string()))),
    }
}

pub(super) fn usage(s: &mut Scanner<'_>) -> Option<Option<UsageIn>> {
    let mut u = UsageIn::default();
    let is_object = object(s, |s, key| {
        match key {
            b"prompt_tokens" => u.prompt_tokens = count(s)?,
            b"completion_tokens" => u.completion_tokens = count(s)?,
            b"total_tokens" => u.total_tokens = count(s)?,
            b"prompt_tokens_details" | b"completion_tokens_details" => {
                let mut n = None;
                let wanted: &[u8] =
                    if key == b"prompt_tokens_details" { b"cached_tokens" } else { b"reasoning_tokens" };
                object(s, |s, inner| {
                    if inner == wanted {
                        n = count(s)?;
                    } else {
                        s.value()?;
                    }
                    Some(())
                })?;
                if key == b"prompt_tokens_details" {
                    u.cached_tokens = n;
                } else {
                    u.reasoning_tokens = n;
                }
            }
            _ => s.value()?,
        }
        Some(())
    })?;
    Some(is_object.then_some(u))
}
