//! A Messages request body → a chat-completions body the router routes as any other.
//!
//! Every block keeps its place: text, images and PDFs become content parts, `tool_use`
//! becomes the assistant's `tool_calls`, each `tool_result` a `tool` message right after
//! the assistant message that made the call; thinking blocks are not sent upstream.

use super::blocks::{system_text, translate_messages};
pub use super::error::{REFUSE_SERVER_TOOLS_SETTING, SERVE_CLAUDE_IDS_SETTING, TranslateError};
use super::session;
use crate::tree::Json;
use serde_json::{Map, Value, json};

/// The model id a Claude id is served as.
pub const FREE_MODEL: &str = "openrouter/free";

/// How to translate what the Messages API has and chat has not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Serve a Claude model id (`claude-*`, `anthropic/*`) from the free pool (else refuse it).
    pub serve_claude_ids: bool,
    /// Refuse a request with server tools (`web_search_*`, …) rather than drop them.
    pub refuse_server_tools: bool,
}

/// By default a Claude model id is served from the free models.
pub const DEFAULT_SERVE_CLAUDE_IDS: bool = true;
/// By default server tools are dropped (and named in a response header), not refused.
pub const DEFAULT_REFUSE_SERVER_TOOLS: bool = false;

impl Default for Options {
    fn default() -> Self {
        Options { serve_claude_ids: DEFAULT_SERVE_CLAUDE_IDS, refuse_server_tools: DEFAULT_REFUSE_SERVER_TOOLS }
    }
}

/// A translated request.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    /// The chat-completions body.
    pub body: Vec<u8>,
    pub stream: bool,
    /// The model id the client sent.
    pub requested_model: String,
    /// A Claude id was replaced by [`FREE_MODEL`].
    pub served_as_free: bool,
    /// Server tools left out (their names, or types when unnamed).
    pub dropped_tools: Vec<String>,
}

/// Whether `model` names an Anthropic model.
pub fn is_claude_id(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    m.starts_with("claude") || m.starts_with("anthropic/")
}

/// Translates a Messages body. `max_tokens` is not required, so that the same reading
/// serves `count_tokens`.
pub fn to_chat(body: &[u8], options: &Options) -> Result<Translated, TranslateError> {
    let req = Json::parse(body).map_err(|e| TranslateError::Json(e.to_string()))?;
    if !req.is_object() {
        return Err(TranslateError::NotAnObject);
    }
    let mut out = Map::new();

    let requested_model = match req.get("model") {
        Some(Json::String(m)) => m.to_string(),
        None | Some(Json::Null) => return Err(TranslateError::invalid("model", "is required")),
        Some(_) => return Err(TranslateError::invalid("model", "must be a string")),
    };
    let served_as_free = is_claude_id(&requested_model);
    if served_as_free && !options.serve_claude_ids {
        return Err(TranslateError::ClaudeModel(requested_model));
    }
    out.insert("model".into(), json!(if served_as_free { FREE_MODEL } else { requested_model.as_str() }));

    let mut messages = Vec::new();
    if let Some(system) = req.get("system").filter(|s| !s.is_null()) {
        messages.push(json!({"role": "system", "content": system_text(system, "system")?}));
    }
    let turns = match req.get("messages") {
        Some(Json::Array(turns)) => turns,
        _ => return Err(TranslateError::invalid("messages", "is required and must be an array")),
    };
    translate_messages(turns, &mut messages)?;
    out.insert("messages".into(), Value::Array(messages));

    let dropped_tools = tools(&req, options, &mut out)?;
    sampling(&req, &mut out)?;
    let stream = match req.get("stream") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(_) => return Err(TranslateError::invalid("stream", "must be a boolean")),
    };
    if stream {
        out.insert("stream".into(), json!(true));
        // Usage arrives on the last chunk, for `message_delta`.
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(reasoning) = thinking(req.get("thinking"))? {
        out.insert("reasoning".into(), reasoning);
    }
    if let Some(key) = req.get("metadata").and_then(|m| m.get("user_id")).and_then(Json::as_str)
        && let Some(key) = session::session_key(key)
    {
        out.insert("session_id".into(), json!(key));
    }
    let body = serde_json::to_vec(&Value::Object(out)).map_err(|e| TranslateError::Json(e.to_string()))?;
    Ok(Translated { body, stream, requested_model, served_as_free, dropped_tools })
}

/// `tools` and `tool_choice`; returns the server tools left out.
fn tools(req: &Json<'_>, options: &Options, out: &mut Map<String, Value>) -> Result<Vec<String>, TranslateError> {
    let mut dropped = Vec::new();
    let mut functions = Vec::new();
    match req.get("tools") {
        None | Some(Json::Null) => {}
        Some(Json::Array(tools)) => {
            for (i, tool) in tools.iter().enumerate() {
                let path = format!("tools[{i}]");
                if !tool.is_object() {
                    return Err(TranslateError::invalid(path, "must be an object"));
                }
                let name = tool.get("name").and_then(Json::as_str).unwrap_or("");
                let kind = tool.get("type").and_then(Json::as_str);
                if kind.is_some_and(|k| k != "custom") {
                    let label = if name.is_empty() { kind.unwrap_or_default() } else { name };
                    if options.refuse_server_tools {
                        return Err(TranslateError::ServerTool(label.to_owned()));
                    }
                    dropped.push(label.to_owned());
                    continue;
                }
                if name.trim().is_empty() {
                    return Err(TranslateError::invalid(format!("{path}.name"), "must be a non-empty string"));
                }
                let schema = match tool.get("input_schema") {
                    Some(s @ Json::Object(_)) => s.to_value(),
                    None | Some(Json::Null) => json!({"type": "object", "properties": {}}),
                    Some(_) => {
                        return Err(TranslateError::invalid(format!("{path}.input_schema"), "must be an object"));
                    }
                };
                let mut function = json!({"name": name, "parameters": schema});
                if let Some(d) = tool.get("description").and_then(Json::as_str) {
                    function["description"] = json!(d);
                }
                functions.push(json!({"type": "function", "function": function}));
            }
        }
        Some(_) => return Err(TranslateError::invalid("tools", "must be an array")),
    }
    let has_tools = !functions.is_empty();
    if has_tools {
        out.insert("tools".into(), Value::Array(functions));
    }
    if let Some(choice) = req.get("tool_choice").filter(|c| !c.is_null()) {
        let kind = choice.get("type").and_then(Json::as_str);
        let chat = match kind {
            Some("auto") => json!("auto"),
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => match choice.get("name").and_then(Json::as_str).filter(|n| !n.trim().is_empty()) {
                Some(name) => json!({"type": "function", "function": {"name": name}}),
                None => return Err(TranslateError::invalid("tool_choice.name", "must be a non-empty string")),
            },
            _ => return Err(TranslateError::invalid("tool_choice.type", "must be `auto`, `any`, `tool` or `none`")),
        };
        // A choice over tools that were all dropped (or never given) means nothing upstream.
        if has_tools {
            out.insert("tool_choice".into(), chat);
            if choice.get("disable_parallel_tool_use") == Some(&Json::Bool(true)) {
                out.insert("parallel_tool_calls".into(), json!(false));
            }
        }
    }
    Ok(dropped)
}

/// `max_tokens`, `stop_sequences`, `temperature`, `top_p`, `top_k`.
fn sampling(req: &Json<'_>, out: &mut Map<String, Value>) -> Result<(), TranslateError> {
    if let Some(n) = req.get("max_tokens").filter(|n| !n.is_null()) {
        match n.as_u64() {
            Some(n) if n > 0 => out.insert("max_tokens".into(), json!(n)),
            _ => return Err(TranslateError::invalid("max_tokens", "must be a positive integer")),
        };
    }
    match req.get("stop_sequences") {
        None | Some(Json::Null) => {}
        Some(Json::Array(stops)) if stops.iter().all(Json::is_string) => {
            if !stops.is_empty() {
                out.insert("stop".into(), Value::Array(stops.iter().map(Json::to_value).collect()));
            }
        }
        Some(_) => return Err(TranslateError::invalid("stop_sequences", "must be an array of strings")),
    }
    for key in ["temperature", "top_p", "top_k"] {
        match req.get(key) {
            None | Some(Json::Null) => {}
            Some(n @ Json::Number(_)) => {
                out.insert(key.into(), n.to_value());
            }
            Some(_) => return Err(TranslateError::invalid(key, "must be a number")),
        }
    }
    Ok(())
}

/// `thinking` → chat's `reasoning`: `enabled` with its budget, `adaptive` as enabled,
/// `disabled` as nothing.
fn thinking(thinking: Option<&Json<'_>>) -> Result<Option<Value>, TranslateError> {
    let Some(t) = thinking.filter(|t| !t.is_null()) else { return Ok(None) };
    match t.get("type").and_then(Json::as_str) {
        Some("enabled") => Ok(Some(match t.get("budget_tokens").and_then(Json::as_u64) {
            Some(budget) => json!({"max_tokens": budget}),
            None => json!({"enabled": true}),
        })),
        Some("adaptive") => Ok(Some(json!({"enabled": true}))),
        Some("disabled") => Ok(None),
        _ => Err(TranslateError::invalid("thinking.type", "must be `enabled`, `adaptive` or `disabled`")),
    }
}

#[cfg(test)]
mod tests;
