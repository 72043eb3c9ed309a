//! A Responses `input` (a string, or items: messages, function calls and their outputs,
//! reasoning) as chat messages. Consecutive function calls become one assistant message
//! with several `tool_calls`; each output becomes a `tool` message placed after the
//! assistant message that holds its call, so a `tool` message never stands without it.

use super::error::InvalidRequest;
use crate::chat_part;
use crate::json_out::{Seq, string};
use crate::tree::Json;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// A chat message, kept typed until the conversation is whole (an output may still go
/// before later messages), then written straight into the chat body.
pub(crate) struct Message<'j> {
    role: &'static str,
    content: Content<'j>,
    /// An assistant's tool calls.
    calls: Vec<Call<'j>>,
    /// A `tool` message's call.
    tool_call_id: Option<&'j str>,
}

enum Content<'j> {
    Null,
    Text(Cow<'j, str>),
    Parts(Vec<Part<'j>>),
}

struct Call<'j> {
    id: &'j str,
    name: &'j str,
    arguments: Cow<'j, str>,
}

/// One content part in chat's shape.
enum Part<'j> {
    Text(&'j str),
    Image { url: &'j str, detail: &'j str },
    File { data: &'j str, name: Option<&'j str> },
    Audio(Option<&'j Json<'j>>),
}

impl<'j> Message<'j> {
    /// A message of text.
    pub(crate) fn text(role: &'static str, text: &'j str) -> Self {
        Message { role, content: Content::Text(Cow::Borrowed(text)), calls: Vec::new(), tool_call_id: None }
    }

    /// Its JSON, as chat's message.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let mut m = Seq::object(out);
        string(m.key("role"), self.role);
        let content = m.key("content");
        match &self.content {
            Content::Null => content.extend_from_slice(b"null"),
            Content::Text(t) => string(content, t),
            Content::Parts(parts) => {
                let mut list = Seq::array(content);
                for p in parts {
                    p.write(list.item());
                }
                list.end();
            }
        }
        if let Some(id) = self.tool_call_id {
            string(m.key("tool_call_id"), id);
        }
        if !self.calls.is_empty() {
            let mut calls = Seq::array(m.key("tool_calls"));
            for c in &self.calls {
                let mut call = Seq::object(calls.item());
                string(call.key("id"), c.id);
                string(call.key("type"), "function");
                let mut function = Seq::object(call.key("function"));
                string(function.key("name"), c.name);
                string(function.key("arguments"), &c.arguments);
                function.end();
                call.end();
            }
            calls.end();
        }
        m.end();
    }
}

impl Part<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Part::Text(t) => chat_part::text(out, t),
            Part::Image { url, detail } => chat_part::image(out, url, Some(detail)),
            Part::File { data, name } => chat_part::file(out, data, *name),
            Part::Audio(audio) => {
                let mut o = Seq::object(out);
                string(o.key("type"), "input_audio");
                match audio {
                    Some(a) => a.write_json(o.key("input_audio")),
                    None => o.key("input_audio").extend_from_slice(b"null"),
                }
                o.end();
            }
        }
    }
}

/// The chat messages for `input`, after `system` (from `instructions`) when there is one.
pub(crate) fn messages<'j>(
    system: Option<Message<'j>>,
    input: Option<&'j Json<'_>>,
) -> Result<Vec<Message<'j>>, InvalidRequest> {
    let items = match input {
        None | Some(Json::Null) => {
            return Err(InvalidRequest::new("`input` is required", "input", "missing_required"));
        }
        Some(Json::String(s)) => return Ok(system.into_iter().chain([Message::text("user", s)]).collect()),
        Some(Json::Array(items)) => items,
        Some(_) => return Err(invalid("`input` must be a string or an array of items", "input")),
    };
    // Usually one message an item: room for them all at once.
    let mut messages = Vec::with_capacity(items.len() + 1);
    messages.extend(system);
    let mut out = Conversation { messages, ..Conversation::default() };
    for (i, item) in items.iter().enumerate() {
        // Written out only for an error.
        let param = || format!("input[{i}]");
        if !item.is_object() {
            return Err(invalid("an input item must be an object", &param()));
        }
        let kind = item.get("type").and_then(Json::as_str);
        match kind {
            None | Some("message") => out.messages.push(message(item, &param)?),
            Some("function_call") => out.call(item, &param)?,
            Some("function_call_output") => out.output(item, &param)?,
            // The upstream never made them; encrypted content is another vendor's.
            Some("reasoning") => {}
            Some("item_reference") => {
                return Err(InvalidRequest::new(
                    "`item_reference` needs stored items: the router is stateless; send the items themselves",
                    param(),
                    "stateless",
                ));
            }
            Some(other) => {
                return Err(InvalidRequest::new(
                    format!("input items of type `{other}` are not supported by the free router"),
                    param(),
                    "unsupported_item",
                ));
            }
        }
    }
    out.finish()
}

fn invalid(message: impl Into<String>, param: &str) -> InvalidRequest {
    InvalidRequest::new(message, param, "invalid_value")
}

/// The messages so far, and where each call is.
#[derive(Default)]
struct Conversation<'j> {
    messages: Vec<Message<'j>>,
    /// Each call's id, and the index of the assistant message that holds it.
    calls: HashMap<&'j str, usize>,
    answered: HashSet<&'j str>,
}

impl<'j> Conversation<'j> {
    /// A function call joins the assistant message just before it (its text or the
    /// calls before it), else starts one.
    fn call(&mut self, item: &'j Json<'_>, param: &dyn Fn() -> String) -> Result<(), InvalidRequest> {
        let call_id = text_field(item, "call_id", param)?;
        let name = text_field(item, "name", param)?;
        let arguments = match item.get("arguments") {
            Some(Json::String(s)) => Cow::Borrowed(s.as_ref()),
            None | Some(Json::Null) => Cow::Borrowed("{}"),
            // Some clients send the object itself.
            Some(other) => Cow::Owned(other.to_json()),
        };
        if self.calls.contains_key(call_id) {
            return Err(invalid(format!("the call id `{call_id}` is used by two function calls"), &param()));
        }
        let call = Call { id: call_id, name, arguments };
        match self.messages.last_mut() {
            Some(last) if last.role == "assistant" => last.calls.push(call),
            _ => self.messages.push(Message {
                role: "assistant",
                content: Content::Null,
                calls: vec![call],
                tool_call_id: None,
            }),
        }
        self.calls.insert(call_id, self.messages.len() - 1);
        Ok(())
    }

    /// An output goes after its call's assistant message and the outputs already there.
    fn output(&mut self, item: &'j Json<'_>, param: &dyn Fn() -> String) -> Result<(), InvalidRequest> {
        let call_id = text_field(item, "call_id", param)?;
        let Some(&at) = self.calls.get(call_id) else {
            return Err(invalid(
                format!("no function call with call_id `{call_id}` comes before its output"),
                &param(),
            ));
        };
        if !self.answered.insert(call_id) {
            return Err(invalid(format!("the function call `{call_id}` has two outputs"), &param()));
        }
        let content = output_text(item.get("output"), param)?;
        let mut pos = at + 1;
        while self.messages.get(pos).is_some_and(|m| m.role == "tool") {
            pos += 1;
        }
        let tool =
            Message { role: "tool", content: Content::Text(content), calls: Vec::new(), tool_call_id: Some(call_id) };
        self.messages.insert(pos, tool);
        // Every call held after `pos` moved one place on.
        for index in self.calls.values_mut() {
            if *index >= pos {
                *index += 1;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<Message<'j>>, InvalidRequest> {
        let mut unanswered: Vec<&&str> = self.calls.keys().filter(|id| !self.answered.contains(**id)).collect();
        unanswered.sort();
        if let Some(id) = unanswered.first() {
            return Err(invalid(
                format!("no output for the function call `{id}`: send its `function_call_output`"),
                "input",
            ));
        }
        if self.messages.is_empty() {
            return Err(invalid("`input` has no message", "input"));
        }
        Ok(self.messages)
    }
}

fn text_field<'j>(item: &'j Json<'_>, key: &str, param: &dyn Fn() -> String) -> Result<&'j str, InvalidRequest> {
    item.get(key)
        .and_then(Json::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(format!("`{key}` must be a non-empty string"), &format!("{}.{key}", param())))
}

/// A function's output: a string, or parts whose text is kept (chat's `tool` messages
/// carry text only).
fn output_text<'j>(output: Option<&'j Json<'_>>, param: &dyn Fn() -> String) -> Result<Cow<'j, str>, InvalidRequest> {
    match output {
        Some(Json::String(s)) => Ok(Cow::Borrowed(s.as_ref())),
        Some(Json::Array(parts)) => Ok(Cow::Owned(
            parts.iter().filter_map(|p| p.get("text").and_then(Json::as_str)).collect::<Vec<_>>().join("\n"),
        )),
        _ => Err(invalid("`output` must be a string or an array of parts", &format!("{}.output", param()))),
    }
}

/// A message item as a chat message.
fn message<'j>(item: &'j Json<'_>, param: &dyn Fn() -> String) -> Result<Message<'j>, InvalidRequest> {
    let role = match item.get("role").and_then(Json::as_str) {
        Some("user") => "user",
        Some("assistant") => "assistant",
        Some("system") => "system",
        // Chat's `developer` role is not known to every upstream; `system` is.
        Some("developer") => "system",
        _ => {
            return Err(invalid(
                "`role` must be `user`, `assistant`, `system` or `developer`",
                &format!("{}.role", param()),
            ));
        }
    };
    let content = match item.get("content") {
        Some(Json::String(s)) => Content::Text(Cow::Borrowed(s.as_ref())),
        Some(Json::Array(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, p) in parts.iter().enumerate() {
                out.push(part(p, &|| format!("{}.content[{j}]", param()))?);
            }
            join_text(role, out)
        }
        _ => {
            return Err(invalid("`content` must be a string or an array of parts", &format!("{}.content", param())));
        }
    };
    Ok(Message { role, content, calls: Vec::new(), tool_call_id: None })
}

/// Text-only content as one string for assistant and system messages (what every
/// upstream takes), and for a single text part; other content stays a list of parts.
fn join_text<'j>(role: &str, parts: Vec<Part<'j>>) -> Content<'j> {
    let all_text = parts.iter().all(|p| matches!(p, Part::Text(_)));
    if all_text && (role != "user" || parts.len() == 1) {
        if let [Part::Text(only)] = parts.as_slice() {
            return Content::Text(Cow::Borrowed(only));
        }
        let texts: Vec<&str> =
            parts.iter().filter_map(|p| if let Part::Text(t) = p { Some(*t) } else { None }).collect();
        return Content::Text(Cow::Owned(texts.join("\n\n")));
    }
    Content::Parts(parts)
}

/// One content part in chat's shape.
fn part<'j>(p: &'j Json<'_>, param: &dyn Fn() -> String) -> Result<Part<'j>, InvalidRequest> {
    let kind = p.get("type").and_then(Json::as_str).unwrap_or("");
    let str_of = |k: &str| p.get(k).and_then(Json::as_str);
    match kind {
        "input_text" | "output_text" | "text" => {
            let text = str_of("text").ok_or_else(|| invalid("a text part needs `text`", &param()))?;
            Ok(Part::Text(text))
        }
        "refusal" => Ok(Part::Text(str_of("refusal").unwrap_or(""))),
        "input_image" => {
            let Some(url) = str_of("image_url").filter(|u| !u.is_empty()) else {
                return Err(file_id_refused("an image", &param()));
            };
            Ok(Part::Image { url, detail: str_of("detail").unwrap_or("auto") })
        }
        "input_file" => {
            let Some(data) = str_of("file_data").or_else(|| str_of("file_url")).filter(|d| !d.is_empty()) else {
                return Err(file_id_refused("a file", &param()));
            };
            Ok(Part::File { data, name: str_of("filename") })
        }
        "input_audio" => Ok(Part::Audio(p.get("input_audio"))),
        other => Err(InvalidRequest::new(
            format!("content parts of type `{other}` are not supported by the free router"),
            param(),
            "unsupported_content",
        )),
    }
}

fn file_id_refused(what: &str, param: &str) -> InvalidRequest {
    InvalidRequest::new(
        format!("{what} must come inline (a URL or a data URL): the router is stateless and holds no uploaded files"),
        param,
        "stateless",
    )
}
