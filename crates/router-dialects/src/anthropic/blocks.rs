//! The turns of a Messages request and their content blocks → chat messages, written
//! straight into the chat body's bytes.

use super::error::TranslateError;
use crate::chat_part;
use crate::json_out::{Seq, string};
use crate::tree::Json;
use std::borrow::Cow;
use std::fmt;

/// The role of a Messages turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    User,
    Assistant,
    /// Not Anthropic's, but clients send it: read as more system text.
    System,
}

/// Where a value is in the request (`messages[2].content[0]`), written out only for an
/// error: a request with many blocks formats none of them on its way through.
#[derive(Clone, Copy)]
pub(crate) struct At<'p> {
    parent: Option<&'p At<'p>>,
    name: &'static str,
    index: usize,
}

impl<'p> At<'p> {
    pub(crate) fn new(name: &'static str, index: usize) -> Self {
        At { parent: None, name, index }
    }

    fn child(&'p self, name: &'static str, index: usize) -> At<'p> {
        At { parent: Some(self), name, index }
    }

    /// The path of a member below it (`messages[0].role`).
    fn member(&self, name: &str) -> String {
        format!("{self}.{name}")
    }
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(parent) = self.parent {
            write!(f, "{parent}.")?;
        }
        write!(f, "{}[{}]", self.name, self.index)
    }
}

/// A user block as a chat content part.
enum Part<'a> {
    Text(Cow<'a, str>),
    Image(Cow<'a, str>),
    File { name: &'a str, data: Cow<'a, str> },
}

impl Part<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Part::Text(t) => chat_part::text(out, t),
            Part::Image(url) => chat_part::image(out, url, None),
            Part::File { name, data } => chat_part::file(out, data, Some(name)),
        }
    }
}

/// `{"role": role, "content": text}`.
pub(crate) fn text_message(out: &mut Vec<u8>, role: &str, text: &str) {
    let mut m = Seq::object(out);
    string(m.key("role"), role);
    string(m.key("content"), text);
    m.end();
}

/// Writes the chat messages for `turns` into `list`. A `tool_result` becomes a `tool`
/// message right after the assistant message whose `tool_calls` hold its id; one whose
/// call is not there (a client's mistake or a trimmed history) becomes text, since an
/// upstream refuses a `tool` message without its call.
pub(crate) fn translate_messages(turns: &[Json<'_>], list: &mut Seq<'_>) -> Result<(), TranslateError> {
    // The calls of the last assistant message that still wait for their results.
    let mut open_calls: Vec<&str> = Vec::new();
    for (i, turn) in turns.iter().enumerate() {
        let at = At::new("messages", i);
        let role = turn
            .get("role")
            .and_then(Json::as_str)
            .and_then(Turn::of)
            .ok_or_else(|| TranslateError::invalid(at.member("role"), "must be `user` or `assistant`"))?;
        let content =
            turn.get("content").ok_or_else(|| TranslateError::invalid(at.member("content"), "is required"))?;
        match role {
            Turn::System => text_message(list.item(), "system", &system_text(content, &at.member("content"))?),
            Turn::Assistant => open_calls = assistant(content, &at, list)?,
            Turn::User => {
                user(content, &at, &mut open_calls, list)?;
                open_calls.clear();
            }
        }
    }
    Ok(())
}

fn blocks<'a, 'j>(content: &'a Json<'j>, at: &At<'_>) -> Result<&'a [Json<'j>], TranslateError> {
    match content {
        Json::Array(b) => Ok(b),
        _ => Err(TranslateError::invalid(at.member("content"), "must be a string or an array of content blocks")),
    }
}

fn block_type<'a>(block: &'a Json<'_>, at: &At<'_>) -> Result<&'a str, TranslateError> {
    block
        .get("type")
        .and_then(Json::as_str)
        .ok_or_else(|| TranslateError::invalid(at.to_string(), "must be a block with a `type`"))
}

fn text_of<'a>(block: &'a Json<'_>, at: &At<'_>) -> Result<&'a str, TranslateError> {
    block
        .get("text")
        .and_then(Json::as_str)
        .ok_or_else(|| TranslateError::invalid(at.member("text"), "must be a string"))
}

/// Writes the assistant's message; returns the ids of its tool calls.
fn assistant<'j>(content: &'j Json<'_>, at: &At<'_>, list: &mut Seq<'_>) -> Result<Vec<&'j str>, TranslateError> {
    if let Json::String(s) = content {
        text_message(list.item(), "assistant", s);
        return Ok(Vec::new());
    }
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, block) in blocks(content, at)?.iter().enumerate() {
        let at = at.child("content", j);
        match block_type(block, &at)? {
            "text" => text.push_str(text_of(block, &at)?),
            "tool_use" => {
                let id = non_empty(block, "id", &at)?;
                let name = non_empty(block, "name", &at)?;
                let input = match block.get("input") {
                    None | Some(Json::Null) => None,
                    Some(v @ Json::Object(_)) => Some(v),
                    Some(_) => return Err(TranslateError::invalid(at.member("input"), "must be an object")),
                };
                calls.push((id, name, input));
            }
            // Thinking is the model's own; its text is not sent back as if it were an answer.
            _ => {}
        }
    }
    let mut m = Seq::object(list.item());
    string(m.key("role"), "assistant");
    if text.is_empty() && !calls.is_empty() {
        m.key("content").extend_from_slice(b"null");
    } else {
        string(m.key("content"), &text);
    }
    if !calls.is_empty() {
        let mut tool_calls = Seq::array(m.key("tool_calls"));
        for (id, name, input) in &calls {
            let mut call = Seq::object(tool_calls.item());
            string(call.key("id"), id);
            string(call.key("type"), "function");
            let mut function = Seq::object(call.key("function"));
            string(function.key("name"), name);
            // The arguments are the input's JSON text, as a string.
            string(function.key("arguments"), &input.map_or_else(|| "{}".to_owned(), |v| v.to_json()));
            function.end();
            call.end();
        }
        tool_calls.end();
    }
    m.end();
    Ok(calls.into_iter().map(|(id, _, _)| id).collect())
}

fn non_empty<'a>(block: &'a Json<'_>, key: &str, at: &At<'_>) -> Result<&'a str, TranslateError> {
    block
        .get(key)
        .and_then(Json::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| TranslateError::invalid(at.member(key), "must be a non-empty string"))
}

/// A user turn: its tool results first (as `tool` messages), then its other blocks.
fn user<'j>(
    content: &'j Json<'_>,
    at: &At<'_>,
    open_calls: &mut Vec<&str>,
    list: &mut Seq<'_>,
) -> Result<(), TranslateError> {
    if let Json::String(s) = content {
        text_message(list.item(), "user", s);
        return Ok(());
    }
    let mut parts: Vec<Part<'j>> = Vec::new();
    for (j, block) in blocks(content, at)?.iter().enumerate() {
        let at = at.child("content", j);
        match block_type(block, &at)? {
            "tool_result" => {
                let id = non_empty(block, "tool_use_id", &at)?;
                let (mut text, images) = tool_result_content(block.get("content"), &at)?;
                if block.get("is_error") == Some(&Json::Bool(true)) {
                    text = format!("Error: {text}");
                }
                if let Some(k) = open_calls.iter().position(|c| *c == id) {
                    open_calls.remove(k);
                    let mut m = Seq::object(list.item());
                    string(m.key("role"), "tool");
                    string(m.key("tool_call_id"), id);
                    string(m.key("content"), &text);
                    m.end();
                } else {
                    parts.push(Part::Text(Cow::Owned(format!("Result of tool call {id}: {text}"))));
                }
                // A `tool` message carries text only; its images follow as the user's.
                parts.extend(images);
            }
            _ => parts.extend(part(block, &at)?),
        }
    }
    match parts.as_slice() {
        [] => {}
        [Part::Text(t)] => text_message(list.item(), "user", t),
        _ => {
            let mut m = Seq::object(list.item());
            string(m.key("role"), "user");
            let mut content = Seq::array(m.key("content"));
            for p in &parts {
                p.write(content.item());
            }
            content.end();
            m.end();
        }
    }
    Ok(())
}

/// A tool result's content: its text, and its images as parts.
fn tool_result_content<'j>(
    content: Option<&'j Json<'_>>,
    at: &At<'_>,
) -> Result<(String, Vec<Part<'j>>), TranslateError> {
    match content {
        None | Some(Json::Null) => Ok((String::new(), Vec::new())),
        Some(Json::String(s)) => Ok((s.to_string(), Vec::new())),
        Some(Json::Array(blocks)) => {
            let mut texts: Vec<Cow<'_, str>> = Vec::new();
            let mut images = Vec::new();
            for (k, block) in blocks.iter().enumerate() {
                match part(block, &at.child("content", k))? {
                    Some(Part::Text(t)) => texts.push(t),
                    Some(p) => images.push(p),
                    None => {}
                }
            }
            Ok((texts.join("\n"), images))
        }
        Some(_) => Err(TranslateError::invalid(at.member("content"), "must be a string or an array of blocks")),
    }
}

/// A user block as a chat content part: text, an image, a document; nothing for thinking
/// and for the server tools' blocks, which a free model cannot use.
fn part<'j>(block: &'j Json<'_>, at: &At<'_>) -> Result<Option<Part<'j>>, TranslateError> {
    Ok(match block_type(block, at)? {
        "text" => Some(Part::Text(Cow::Borrowed(text_of(block, at)?))),
        "image" => Some(Part::Image(source_url(block, at, "image")?)),
        "document" => Some(document(block, at)?),
        _ => None,
    })
}

/// An image's or a PDF's source as a URL: `data:` for base64, else the URL given.
fn source_url<'j>(block: &'j Json<'_>, at: &At<'_>, what: &str) -> Result<Cow<'j, str>, TranslateError> {
    let source = block.get("source").ok_or_else(|| TranslateError::invalid(at.member("source"), "is required"))?;
    let field =
        |key: &str| {
            source.get(key).and_then(Json::as_str).filter(|s| !s.is_empty()).ok_or_else(|| {
                TranslateError::invalid(at.member(&format!("source.{key}")), "must be a non-empty string")
            })
        };
    match source.get("type").and_then(Json::as_str) {
        Some("base64") => Ok(Cow::Owned(format!("data:{};base64,{}", field("media_type")?, field("data")?))),
        Some("url") => Ok(Cow::Borrowed(field("url")?)),
        _ => Err(TranslateError::invalid(at.member("source.type"), format!("must be `base64` or `url` for an {what}"))),
    }
}

/// A document: a PDF as a chat `file` part (the core reads it as the file requirement),
/// plain text as text.
fn document<'j>(block: &'j Json<'_>, at: &At<'_>) -> Result<Part<'j>, TranslateError> {
    let source = block.get("source");
    match source.and_then(|s| s.get("type")).and_then(Json::as_str) {
        Some("text") => {
            let data = source
                .and_then(|s| s.get("data"))
                .and_then(Json::as_str)
                .ok_or_else(|| TranslateError::invalid(at.member("source.data"), "must be a string"))?;
            Ok(Part::Text(Cow::Borrowed(data)))
        }
        Some("content") => {
            let text = match source.and_then(|s| s.get("content")) {
                Some(Json::String(s)) => Cow::Borrowed(s.as_ref()),
                Some(c) => Cow::Owned(system_text(c, &at.member("source.content"))?),
                None => Cow::Borrowed(""),
            };
            Ok(Part::Text(text))
        }
        _ => {
            let data = source_url(block, at, "document")?;
            let name = block.get("title").and_then(Json::as_str).filter(|t| !t.is_empty()).unwrap_or("document.pdf");
            Ok(Part::File { name, data })
        }
    }
}

/// A turn's role from its `role`.
impl Turn {
    pub(crate) fn of(role: &str) -> Option<Turn> {
        match role {
            "user" => Some(Turn::User),
            "assistant" => Some(Turn::Assistant),
            "system" => Some(Turn::System),
            _ => None,
        }
    }
}

/// `system` as a string, or text blocks joined by blank lines.
pub(crate) fn system_text(system: &Json<'_>, path: &str) -> Result<String, TranslateError> {
    match system {
        Json::String(s) => Ok(s.to_string()),
        Json::Array(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (i, b) in blocks.iter().enumerate() {
                match (b.get("type").and_then(Json::as_str), b.get("text")) {
                    (Some("text"), Some(Json::String(t))) => parts.push(t.as_ref()),
                    _ => return Err(TranslateError::invalid(format!("{path}[{i}]"), "must be a text block")),
                }
            }
            Ok(parts.join("\n\n"))
        }
        _ => Err(TranslateError::invalid(path, "must be a string or an array of text blocks")),
    }
}
