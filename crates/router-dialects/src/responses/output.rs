//! The response object (`object: "response"`) and its output items, for a whole answer
//! and for the snapshots a stream's events carry.

use crate::chat::{Answer, ChatError, Usage};
use crate::json_out::{number, string, string_content};
use router_core::ModelId;
use serde_json::{Map, Value};

/// Who a response is: its id (`resp_…`), when it began, and the model that answers.
/// The server makes them (it has the clock); the translation only repeats them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseMeta {
    pub id: String,
    /// Unix seconds.
    pub created_at: u64,
    /// The exposed id of the free model that answered (shared with the router's report,
    /// not copied).
    pub model: ModelId,
}

impl ResponseMeta {
    /// A response's id, `resp_` and the time in milliseconds and the request's seed in
    /// hexadecimal (the seed in sixteen digits).
    pub fn id_of(now_ms: u64, seed: u64) -> String {
        let mut id = Vec::with_capacity(5 + 16 + 16);
        id.extend_from_slice(b"resp_");
        crate::json_out::hex(&mut id, now_ms, 1);
        crate::json_out::hex(&mut id, seed, 16);
        // Hexadecimal digits are ASCII.
        String::from_utf8(id).unwrap_or_default()
    }

    /// The id's tail, which the output items' ids repeat (`msg_<tail>`, `fc_<tail>_0`).
    pub(crate) fn tail(&self) -> &str {
        self.id.strip_prefix("resp_").unwrap_or(&self.id)
    }
}

/// An output item's id, written where it is needed instead of kept as a string of its
/// own.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ItemId<'a> {
    /// `<prefix>_<tail>` (the tail of the response's id), then `_<nth>` for a later item
    /// of the same kind, or a call's index.
    Made { prefix: &'static str, tail: &'a str, nth: Option<usize> },
    /// The id as the JSON string it was written as once (a stream's item place).
    Written(&'a [u8]),
}

impl ItemId<'_> {
    /// The id as a JSON string.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let (prefix, tail, nth) = match *self {
            ItemId::Made { prefix, tail, nth } => (prefix, tail, nth),
            ItemId::Written(json) => return out.extend_from_slice(json),
        };
        out.push(b'"');
        out.extend_from_slice(prefix.as_bytes());
        out.push(b'_');
        string_content(out, tail);
        if let Some(n) = nth {
            out.push(b'_');
            number(out, n as u64);
        }
        out.push(b'"');
    }
}

/// How a response ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    InProgress,
    Completed,
    /// Cut short: `max_output_tokens` or `content_filter`.
    Incomplete(&'static str),
    Failed(ChatError),
}

impl Status {
    /// From the chat answer's `finish_reason`.
    pub(crate) fn of_finish(finish: Option<&str>) -> Status {
        match finish {
            Some("length") => Status::Incomplete("max_output_tokens"),
            Some("content_filter") => Status::Incomplete("content_filter"),
            _ => Status::Completed,
        }
    }

    /// The stream event that ends a response with this status.
    pub(crate) fn final_event(&self) -> &'static str {
        match self {
            Status::Incomplete(_) => "response.incomplete",
            Status::Failed(_) => "response.failed",
            Status::InProgress | Status::Completed => "response.completed",
        }
    }
}

/// The echoed request members as JSON members without their braces (`"k":v,...`),
/// written once per response and copied into each snapshot.
pub fn echo_members(echo: &Map<String, Value>) -> Vec<u8> {
    let mut all = serde_json::to_vec(echo).unwrap_or_default();
    // `{` … `}` around the members.
    all.pop();
    if !all.is_empty() {
        all.remove(0);
    }
    all
}

/// The response object; `output` writes the items of its `output` array.
pub(crate) fn write_response(
    out: &mut Vec<u8>,
    meta: &ResponseMeta,
    echo: &[u8],
    status: &Status,
    output: impl FnOnce(&mut Vec<u8>),
    usage: Option<&Usage>,
) {
    write_response_by(out, meta, meta.model.as_str(), echo, status, output, usage);
}

/// [`write_response`] naming `model` as the one that answered.
fn write_response_by(
    out: &mut Vec<u8>,
    meta: &ResponseMeta,
    model: &str,
    echo: &[u8],
    status: &Status,
    output: impl FnOnce(&mut Vec<u8>),
    usage: Option<&Usage>,
) {
    out.extend_from_slice(b"{\"id\":");
    string(out, &meta.id);
    out.extend_from_slice(b",\"object\":\"response\",\"created_at\":");
    number(out, meta.created_at);
    out.extend_from_slice(b",\"model\":");
    string(out, model);
    out.extend_from_slice(b",\"status\":");
    match status {
        Status::InProgress => out.extend_from_slice(b"\"in_progress\",\"incomplete_details\":null,\"error\":null"),
        Status::Completed => out.extend_from_slice(b"\"completed\",\"incomplete_details\":null,\"error\":null"),
        Status::Incomplete(reason) => {
            out.extend_from_slice(b"\"incomplete\",\"incomplete_details\":{\"reason\":");
            string(out, reason);
            out.extend_from_slice(b"},\"error\":null");
        }
        Status::Failed(e) => {
            out.extend_from_slice(b"\"failed\",\"incomplete_details\":null,\"error\":{\"code\":");
            string(out, e.kind.as_deref().unwrap_or("server_error"));
            out.extend_from_slice(b",\"message\":");
            string(out, &e.message);
            out.push(b'}');
        }
    }
    out.extend_from_slice(b",\"output\":[");
    output(out);
    out.extend_from_slice(b"],\"usage\":");
    match usage {
        Some(u) => write_usage(out, u),
        None => out.extend_from_slice(b"null"),
    }
    if !echo.is_empty() {
        out.push(b',');
        out.extend_from_slice(echo);
    }
    out.push(b'}');
}

fn write_usage(out: &mut Vec<u8>, u: &Usage) {
    let total = if u.total_tokens > 0 { u.total_tokens } else { u.prompt_tokens + u.completion_tokens };
    out.extend_from_slice(b"{\"input_tokens\":");
    number(out, u.prompt_tokens);
    out.extend_from_slice(b",\"input_tokens_details\":{\"cached_tokens\":");
    number(out, u.cached_tokens);
    out.extend_from_slice(b"},\"output_tokens\":");
    number(out, u.completion_tokens);
    out.extend_from_slice(b",\"output_tokens_details\":{\"reasoning_tokens\":");
    number(out, u.reasoning_tokens);
    out.extend_from_slice(b"},\"total_tokens\":");
    number(out, total);
    out.push(b'}');
}

fn status_of(done: bool) -> &'static [u8] {
    if done { b"\"completed\"" } else { b"\"in_progress\"" }
}

pub(crate) fn write_reasoning_item(out: &mut Vec<u8>, id: ItemId<'_>, text: &str, done: bool) {
    out.extend_from_slice(b"{\"type\":\"reasoning\",\"id\":");
    id.write(out);
    out.extend_from_slice(b",\"summary\":[");
    if done {
        write_summary_part(out, text);
    }
    out.extend_from_slice(b"]}");
}

/// `{"type":"summary_text","text":…}`.
pub(crate) fn write_summary_part(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"{\"type\":\"summary_text\",\"text\":");
    string(out, text);
    out.push(b'}');
}

/// A message's content part: `output_text`, or a `refusal`.
pub(crate) fn write_part(out: &mut Vec<u8>, refusal: bool, text: &str) {
    write_part_by(out, refusal, |o| string(o, text));
}

/// [`write_part`] with its text written by `text` (as a JSON string).
pub(crate) fn write_part_by(out: &mut Vec<u8>, refusal: bool, text: impl FnOnce(&mut Vec<u8>)) {
    if refusal {
        out.extend_from_slice(b"{\"type\":\"refusal\",\"refusal\":");
        text(out);
        out.push(b'}');
    } else {
        out.extend_from_slice(b"{\"type\":\"output_text\",\"text\":");
        text(out);
        out.extend_from_slice(b",\"annotations\":[],\"logprobs\":[]}");
    }
}

/// A message item with its parts, each `(refusal, text)`.
pub(crate) fn write_message_item<'p>(
    out: &mut Vec<u8>,
    id: ItemId<'_>,
    parts: impl IntoIterator<Item = (bool, &'p str)>,
    done: bool,
) {
    write_message_item_by(out, id, done, |out| {
        for (i, (refusal, text)) in parts.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_part(out, refusal, text);
        }
    });
}

/// [`write_message_item`] with the items of its `content` written by `content`.
pub(crate) fn write_message_item_by(out: &mut Vec<u8>, id: ItemId<'_>, done: bool, content: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(b"{\"type\":\"message\",\"id\":");
    id.write(out);
    out.extend_from_slice(b",\"status\":");
    out.extend_from_slice(status_of(done));
    out.extend_from_slice(b",\"role\":\"assistant\",\"content\":[");
    content(out);
    out.extend_from_slice(b"]}");
}

pub(crate) fn write_call_item(
    out: &mut Vec<u8>,
    id: ItemId<'_>,
    call_id: &str,
    name: &str,
    arguments: &str,
    done: bool,
) {
    out.extend_from_slice(b"{\"type\":\"function_call\",\"id\":");
    id.write(out);
    out.extend_from_slice(b",\"call_id\":");
    string(out, call_id);
    out.extend_from_slice(b",\"name\":");
    string(out, name);
    out.extend_from_slice(b",\"arguments\":");
    string(out, arguments);
    out.extend_from_slice(b",\"status\":");
    out.extend_from_slice(status_of(done));
    out.push(b'}');
}

/// A call's `call_id`: `call_` and 22 letters and digits the router makes from the
/// response's id, the call's place and the upstream's id (see [`crate::call_ids`]: an
/// upstream that numbers its calls in each answer would give a conversation two calls of
/// one id, which the next request could not pair with their outputs).
pub(crate) fn call_id(upstream: &str, meta: &ResponseMeta, index: usize) -> String {
    crate::call_ids::made("call_", &[&meta.id], index, upstream)
}

/// A whole chat answer as a response object's JSON: reasoning, then the message, then
/// the function calls, in the order a model produces them. `echo` as [`echo_members`].
pub fn response_json(answer: &Answer, meta: &ResponseMeta, echo: &[u8]) -> Vec<u8> {
    let tail = meta.tail();
    let output = |out: &mut Vec<u8>| {
        let comma = |out: &mut Vec<u8>, first: &mut bool| {
            if !std::mem::take(first) {
                out.push(b',');
            }
        };
        let mut first = true;
        if let Some(r) = answer.reasoning.as_deref() {
            comma(out, &mut first);
            write_reasoning_item(out, ItemId::Made { prefix: "rs", tail, nth: None }, r, true);
        }
        if answer.text.is_some() || answer.refusal.is_some() {
            comma(out, &mut first);
            let parts = [(false, answer.text.as_deref()), (true, answer.refusal.as_deref())]
                .into_iter()
                .filter_map(|(refusal, t)| t.map(|t| (refusal, t)));
            write_message_item(out, ItemId::Made { prefix: "msg", tail, nth: None }, parts, true);
        }
        for (i, call) in answer.tool_calls.iter().enumerate() {
            comma(out, &mut first);
            let call_id = call_id(&call.id, meta, i);
            let id = ItemId::Made { prefix: "fc", tail, nth: Some(i) };
            write_call_item(out, id, &call_id, &call.name, &call.arguments, true);
        }
    };
    let status = Status::of_finish(answer.finish_reason.as_deref());
    // The answer names the model that wrote it (the router has set its exposed id).
    let model = if answer.model.is_empty() { meta.model.as_str() } else { &answer.model };
    let mut out = Vec::with_capacity(512 + echo.len());
    write_response_by(&mut out, meta, model, echo, &status, output, answer.usage.as_ref());
    out
}

/// [`response_json`] as a tree, with the echo as a map.
pub fn answer_to_response(answer: &Answer, meta: &ResponseMeta, echo: &Map<String, Value>) -> Value {
    serde_json::from_slice(&response_json(answer, meta, &echo_members(echo))).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_id_is_the_time_and_the_seed_in_hexadecimal() {
        assert_eq!(ResponseMeta::id_of(0x18f_0000_0001, 0x2a), "resp_18f00000001000000000000002a");
        assert_eq!(ResponseMeta::id_of(0, u64::MAX), "resp_0ffffffffffffffff");
    }
}
