//! The turns of a Messages request and their content blocks → chat messages.

use super::error::TranslateError;
use crate::tree::Json;
use serde_json::{Value, json};

/// The role of a Messages turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    User,
    Assistant,
    /// Not Anthropic's, but clients send it: read as more system text.
    System,
}

/// Appends the chat messages for `turns`. A `tool_result` becomes a `tool` message right
/// after the assistant message whose `tool_calls` hold its id; one whose call is not
/// there (a client's mistake or a trimmed history) becomes text, since an upstream
/// refuses a `tool` message without its call.
pub(crate) fn translate_messages(turns: &[Json<'_>], out: &mut Vec<Value>) -> Result<(), TranslateError> {
    // The calls of the last assistant message that still wait for their results.
    let mut open_calls: Vec<String> = Vec::new();
    for (i, turn) in turns.iter().enumerate() {
        let path = format!("messages[{i}]");
        let role = turn
            .get("role")
            .and_then(Json::as_str)
            .and_then(Turn::of)
            .ok_or_else(|| TranslateError::invalid(format!("{path}.role"), "must be `user` or `assistant`"))?;
        let content =
            turn.get("content").ok_or_else(|| TranslateError::invalid(format!("{path}.content"), "is required"))?;
        match role {
            Turn::System => {
                out.push(json!({"role": "system", "content": system_text(content, &format!("{path}.content"))?}))
            }
            Turn::Assistant => {
                let (message, calls) = assistant(content, &path)?;
                out.push(message);
                open_calls = calls;
            }
            Turn::User => {
                user(content, &path, &mut open_calls, out)?;
                open_calls.clear();
            }
        }
    }
    Ok(())
}

fn blocks<'a, 'j>(content: &'a Json<'j>, path: &str) -> Result<&'a [Json<'j>], TranslateError> {
    match content {
        Json::Array(b) => Ok(b),
        _ => Err(TranslateError::invalid(format!("{path}.content"), "must be a string or an array of content blocks")),
    }
}

fn block_type<'a>(block: &'a Json<'_>, path: &str) -> Result<&'a str, TranslateError> {
    block
        .get("type")
        .and_then(Json::as_str)
        .ok_or_else(|| TranslateError::invalid(path, "must be a block with a `type`"))
}

fn text_of<'a>(block: &'a Json<'_>, path: &str) -> Result<&'a str, TranslateError> {
    block
        .get("text")
        .and_then(Json::as_str)
        .ok_or_else(|| TranslateError::invalid(format!("{path}.text"), "must be a string"))
}

/// The assistant's message and the ids of its tool calls.
fn assistant(content: &Json<'_>, path: &str) -> Result<(Value, Vec<String>), TranslateError> {
    if let Json::String(s) = content {
        return Ok((json!({"role": "assistant", "content": s.as_ref()}), Vec::new()));
    }
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut ids = Vec::new();
    for (j, block) in blocks(content, path)?.iter().enumerate() {
        let bpath = format!("{path}.content[{j}]");
        match block_type(block, &bpath)? {
            "text" => text.push_str(text_of(block, &bpath)?),
            "tool_use" => {
                let id = non_empty(block, "id", &bpath)?;
                let name = non_empty(block, "name", &bpath)?;
                let input = match block.get("input") {
                    None | Some(Json::Null) => "{}".to_owned(),
                    Some(v @ Json::Object(_)) => v.to_json(),
                    Some(_) => return Err(TranslateError::invalid(format!("{bpath}.input"), "must be an object")),
                };
                ids.push(id.to_owned());
                calls.push(json!({"id": id, "type": "function", "function": {"name": name, "arguments": input}}));
            }
            // Thinking is the model's own; its text is not sent back as if it were an answer.
            _ => {}
        }
    }
    let content = if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) };
    let mut message = json!({"role": "assistant", "content": content});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    Ok((message, ids))
}

fn non_empty<'a>(block: &'a Json<'_>, key: &str, path: &str) -> Result<&'a str, TranslateError> {
    block
        .get(key)
        .and_then(Json::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| TranslateError::invalid(format!("{path}.{key}"), "must be a non-empty string"))
}

/// A user turn: its tool results first (as `tool` messages), then its other blocks.
fn user(
    content: &Json<'_>,
    path: &str,
    open_calls: &mut Vec<String>,
    out: &mut Vec<Value>,
) -> Result<(), TranslateError> {
    if let Json::String(s) = content {
        out.push(json!({"role": "user", "content": s.as_ref()}));
        return Ok(());
    }
    let mut parts = Vec::new();
    for (j, block) in blocks(content, path)?.iter().enumerate() {
        let bpath = format!("{path}.content[{j}]");
        match block_type(block, &bpath)? {
            "tool_result" => {
                let id = non_empty(block, "tool_use_id", &bpath)?;
                let (mut text, images) = tool_result_content(block.get("content"), &bpath)?;
                if block.get("is_error") == Some(&Json::Bool(true)) {
                    text = format!("Error: {text}");
                }
                if let Some(k) = open_calls.iter().position(|c| c == id) {
                    open_calls.remove(k);
                    out.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
                } else {
                    parts.push(json!({"type": "text", "text": format!("Result of tool call {id}: {text}")}));
                }
                // A `tool` message carries text only; its images follow as the user's.
                parts.extend(images);
            }
            _ => parts.extend(part(block, &bpath)?),
        }
    }
    match parts.as_slice() {
        [] => {}
        [only] if only["type"] == "text" => out.push(json!({"role": "user", "content": only["text"]})),
        _ => out.push(json!({"role": "user", "content": parts})),
    }
    Ok(())
}

/// A tool result's content: its text, and its images as parts.
fn tool_result_content(content: Option<&Json<'_>>, path: &str) -> Result<(String, Vec<Value>), TranslateError> {
    match content {
        None | Some(Json::Null) => Ok((String::new(), Vec::new())),
        Some(Json::String(s)) => Ok((s.to_string(), Vec::new())),
        Some(Json::Array(blocks)) => {
            let mut texts = Vec::new();
            let mut images = Vec::new();
            for (k, block) in blocks.iter().enumerate() {
                let bpath = format!("{path}.content[{k}]");
                if let Some(p) = part(block, &bpath)? {
                    match p.get("text").and_then(Value::as_str) {
                        Some(t) if p["type"] == "text" => texts.push(t.to_owned()),
                        _ => images.push(p),
                    }
                }
            }
            Ok((texts.join("\n"), images))
        }
        Some(_) => Err(TranslateError::invalid(format!("{path}.content"), "must be a string or an array of blocks")),
    }
}

/// A user block as chat content parts: text, an image, a document; nothing for thinking
/// and for the server tools' blocks, which a free model cannot use.
fn part(block: &Json<'_>, path: &str) -> Result<Option<Value>, TranslateError> {
    Ok(match block_type(block, path)? {
        "text" => Some(json!({"type": "text", "text": text_of(block, path)?})),
        "image" => Some(json!({"type": "image_url", "image_url": {"url": source_url(block, path, "image")?}})),
        "document" => Some(document(block, path)?),
        _ => None,
    })
}

/// An image's or a PDF's source as a URL: `data:` for base64, else the URL given.
fn source_url(block: &Json<'_>, path: &str, what: &str) -> Result<String, TranslateError> {
    let source = block.get("source").ok_or_else(|| TranslateError::invalid(format!("{path}.source"), "is required"))?;
    let field = |key: &str| {
        source
            .get(key)
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| TranslateError::invalid(format!("{path}.source.{key}"), "must be a non-empty string"))
    };
    match source.get("type").and_then(Json::as_str) {
        Some("base64") => Ok(format!("data:{};base64,{}", field("media_type")?, field("data")?)),
        Some("url") => Ok(field("url")?.to_owned()),
        _ => Err(TranslateError::invalid(
            format!("{path}.source.type"),
            format!("must be `base64` or `url` for an {what}"),
        )),
    }
}

/// A document: a PDF as a chat `file` part (the core reads it as the file requirement),
/// plain text as text.
fn document(block: &Json<'_>, path: &str) -> Result<Value, TranslateError> {
    let source = block.get("source");
    match source.and_then(|s| s.get("type")).and_then(Json::as_str) {
        Some("text") => {
            let data = source
                .and_then(|s| s.get("data"))
                .and_then(Json::as_str)
                .ok_or_else(|| TranslateError::invalid(format!("{path}.source.data"), "must be a string"))?;
            Ok(json!({"type": "text", "text": data}))
        }
        Some("content") => {
            let text = match source.and_then(|s| s.get("content")) {
                Some(Json::String(s)) => s.to_string(),
                Some(c) => system_text(c, &format!("{path}.source.content"))?,
                None => String::new(),
            };
            Ok(json!({"type": "text", "text": text}))
        }
        _ => {
            let url = source_url(block, path, "document")?;
            let name = block.get("title").and_then(Json::as_str).filter(|t| !t.is_empty()).unwrap_or("document.pdf");
            Ok(json!({"type": "file", "file": {"filename": name, "file_data": url}}))
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
