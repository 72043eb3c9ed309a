//! A Responses `input` (a string, or items: messages, function calls and their outputs,
//! reasoning) as chat messages. Consecutive function calls become one assistant message
//! with several `tool_calls`; each output becomes a `tool` message placed after the
//! assistant message that holds its call, so a `tool` message never stands without it.

use super::error::InvalidRequest;
use crate::tree::Json;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

/// The chat messages for `input`.
pub(crate) fn messages(input: Option<&Json<'_>>) -> Result<Vec<Value>, InvalidRequest> {
    let items = match input {
        None | Some(Json::Null) => {
            return Err(InvalidRequest::new("`input` is required", "input", "missing_required"));
        }
        Some(Json::String(s)) => return Ok(vec![json!({"role": "user", "content": s.as_ref()})]),
        Some(Json::Array(items)) => items,
        Some(_) => return Err(invalid("`input` must be a string or an array of items", "input")),
    };
    let mut out = Conversation::default();
    for (i, item) in items.iter().enumerate() {
        let param = format!("input[{i}]");
        if !item.is_object() {
            return Err(invalid("an input item must be an object", &param));
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
                    param,
                    "stateless",
                ));
            }
            Some(other) => {
                return Err(InvalidRequest::new(
                    format!("input items of type `{other}` are not supported by the free router"),
                    param,
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
struct Conversation {
    messages: Vec<Value>,
    /// Each call's id, and the index of the assistant message that holds it.
    calls: HashMap<String, usize>,
    answered: HashSet<String>,
}

impl Conversation {
    /// A function call joins the assistant message just before it (its text or the
    /// calls before it), else starts one.
    fn call(&mut self, item: &Json<'_>, param: &str) -> Result<(), InvalidRequest> {
        let call_id = text_field(item, "call_id", param)?;
        let name = text_field(item, "name", param)?;
        let arguments = match item.get("arguments") {
            Some(Json::String(s)) => s.to_string(),
            None | Some(Json::Null) => "{}".to_owned(),
            // Some clients send the object itself.
            Some(other) => other.to_value().to_string(),
        };
        if self.calls.contains_key(&call_id) {
            return Err(invalid(format!("the call id `{call_id}` is used by two function calls"), param));
        }
        let call = json!({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}});
        let last_is_assistant = self.messages.last().is_some_and(|m| m["role"] == "assistant");
        if !last_is_assistant {
            self.messages.push(json!({"role": "assistant", "content": null}));
        }
        let at = self.messages.len() - 1;
        let Some(Value::Object(assistant)) = self.messages.last_mut() else { return Ok(()) };
        match assistant.entry("tool_calls").or_insert_with(|| Value::Array(Vec::new())) {
            Value::Array(calls) => calls.push(call),
            other => *other = Value::Array(vec![call]),
        }
        self.calls.insert(call_id, at);
        Ok(())
    }

    /// An output goes after its call's assistant message and the outputs already there.
    fn output(&mut self, item: &Json<'_>, param: &str) -> Result<(), InvalidRequest> {
        let call_id = text_field(item, "call_id", param)?;
        let Some(&at) = self.calls.get(&call_id) else {
            return Err(invalid(format!("no function call with call_id `{call_id}` comes before its output"), param));
        };
        if !self.answered.insert(call_id.clone()) {
            return Err(invalid(format!("the function call `{call_id}` has two outputs"), param));
        }
        let content = output_text(item.get("output"), param)?;
        let mut pos = at + 1;
        while self.messages.get(pos).is_some_and(|m| m["role"] == "tool") {
            pos += 1;
        }
        self.messages.insert(pos, json!({"role": "tool", "tool_call_id": call_id, "content": content}));
        // Every call held after `pos` moved one place on.
        for index in self.calls.values_mut() {
            if *index >= pos {
                *index += 1;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<Value>, InvalidRequest> {
        let mut unanswered: Vec<&String> = self.calls.keys().filter(|id| !self.answered.contains(*id)).collect();
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

fn text_field(item: &Json<'_>, key: &str, param: &str) -> Result<String, InvalidRequest> {
    item.get(key)
        .and_then(Json::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| invalid(format!("`{key}` must be a non-empty string"), &format!("{param}.{key}")))
}

/// A function's output: a string, or parts whose text is kept (chat's `tool` messages
/// carry text only).
fn output_text(output: Option<&Json<'_>>, param: &str) -> Result<String, InvalidRequest> {
    match output {
        Some(Json::String(s)) => Ok(s.to_string()),
        Some(Json::Array(parts)) => {
            Ok(parts.iter().filter_map(|p| p.get("text").and_then(Json::as_str)).collect::<Vec<_>>().join("\n"))
        }
        _ => Err(invalid("`output` must be a string or an array of parts", &format!("{param}.output"))),
    }
}

/// A message item as a chat message.
fn message(item: &Json<'_>, param: &str) -> Result<Value, InvalidRequest> {
    let role = match item.get("role").and_then(Json::as_str) {
        Some(r @ ("user" | "assistant" | "system")) => r,
        // Chat's `developer` role is not known to every upstream; `system` is.
        Some("developer") => "system",
        _ => {
            return Err(invalid(
                "`role` must be `user`, `assistant`, `system` or `developer`",
                &format!("{param}.role"),
            ));
        }
    };
    let content = match item.get("content") {
        Some(Json::String(s)) => Value::String(s.to_string()),
        Some(Json::Array(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, p) in parts.iter().enumerate() {
                out.push(part(p, &format!("{param}.content[{j}]"))?);
            }
            join_text(role, out)
        }
        _ => return Err(invalid("`content` must be a string or an array of parts", &format!("{param}.content"))),
    };
    Ok(json!({"role": role, "content": content}))
}

/// Text-only content as one string for assistant and system messages (what every
/// upstream takes), and for a single text part; other content stays a list of parts.
fn join_text(role: &str, parts: Vec<Value>) -> Value {
    let all_text = parts.iter().all(|p| p["type"] == "text");
    if all_text && (role != "user" || parts.len() == 1) {
        let texts: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        return Value::String(texts.join("\n\n"));
    }
    Value::Array(parts)
}

/// One content part in chat's shape.
fn part(p: &Json<'_>, param: &str) -> Result<Value, InvalidRequest> {
    let kind = p.get("type").and_then(Json::as_str).unwrap_or("");
    let str_of = |k: &str| p.get(k).and_then(Json::as_str);
    match kind {
        "input_text" | "output_text" | "text" => {
            let text = str_of("text").ok_or_else(|| invalid("a text part needs `text`", param))?;
            Ok(json!({"type": "text", "text": text}))
        }
        "refusal" => Ok(json!({"type": "text", "text": str_of("refusal").unwrap_or("")})),
        "input_image" => {
            let Some(url) = str_of("image_url").filter(|u| !u.is_empty()) else {
                return Err(file_id_refused("an image", param));
            };
            let detail = str_of("detail").unwrap_or("auto");
            Ok(json!({"type": "image_url", "image_url": {"url": url, "detail": detail}}))
        }
        "input_file" => {
            let Some(data) = str_of("file_data").or_else(|| str_of("file_url")).filter(|d| !d.is_empty()) else {
                return Err(file_id_refused("a file", param));
            };
            let mut file = Map::new();
            file.insert("file_data".into(), Value::String(data.to_owned()));
            if let Some(name) = str_of("filename") {
                file.insert("filename".into(), Value::String(name.to_owned()));
            }
            Ok(json!({"type": "file", "file": file}))
        }
        "input_audio" => {
            Ok(json!({"type": "input_audio", "input_audio": p.get("input_audio").map_or(Value::Null, Json::to_value)}))
        }
        other => Err(InvalidRequest::new(
            format!("content parts of type `{other}` are not supported by the free router"),
            param,
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
