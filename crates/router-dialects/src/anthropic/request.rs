//! A Messages request body → a chat-completions body the router routes as any other.
//!
//! Every block keeps its place: text, images and PDFs become content parts, `tool_use`
//! becomes the assistant's `tool_calls`, each `tool_result` a `tool` message right after
//! the assistant message that made the call; thinking blocks are not sent upstream.

use super::blocks::{system_text, text_message, translate_messages};
pub use super::error::{REFUSE_SERVER_TOOLS_SETTING, SERVE_CLAUDE_IDS_SETTING, TranslateError};
use super::session;
use crate::json_out::{Seq, number, string};
use crate::tree::Json;
use router_core::WrittenMember;

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
    /// Where each of its top-level members lies, for [`router_core::ChatRequest::from_written`].
    pub members: Vec<WrittenMember>,
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
    // Compared in place, case aside, without a lowercased copy.
    let starts = |prefix: &str| model.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix));
    starts("claude") || starts("anthropic/")
}

/// Translates a Messages body. `max_tokens` is not required, so that the same reading
/// serves `count_tokens`.
pub fn to_chat(body: &[u8], options: &Options) -> Result<Translated, TranslateError> {
    let req = Json::parse(body).map_err(|e| TranslateError::Json(e.to_string()))?;
    if !req.is_object() {
        return Err(TranslateError::NotAnObject);
    }
    let requested_model = match req.get("model") {
        Some(Json::String(m)) => m.to_string(),
        None | Some(Json::Null) => return Err(TranslateError::invalid("model", "is required")),
        Some(_) => return Err(TranslateError::invalid("model", "must be a string")),
    };
    let served_as_free = is_claude_id(&requested_model);
    if served_as_free && !options.serve_claude_ids {
        return Err(TranslateError::ClaudeModel(requested_model));
    }
    // The chat body is written as it is read; the bulk is the messages, copied once.
    let mut out = Vec::with_capacity(body.len() + CHAT_BODY_EXTRA);
    let mut chat = Seq::object_spanned(&mut out, CHAT_MEMBERS);
    string(chat.key("model"), if served_as_free { FREE_MODEL } else { requested_model.as_str() });
    let mut messages = Seq::array(chat.key("messages"));
    if let Some(system) = req.get("system").filter(|s| !s.is_null()) {
        text_message(messages.item(), "system", &system_text(system, "system")?);
    }
    let turns = match req.get("messages") {
        Some(Json::Array(turns)) => turns,
        _ => return Err(TranslateError::invalid("messages", "is required and must be an array")),
    };
    translate_messages(turns, &mut messages)?;
    messages.end();

    let dropped_tools = tools(&req, options, &mut chat)?;
    sampling(&req, &mut chat)?;
    let stream = match req.get("stream") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(_) => return Err(TranslateError::invalid("stream", "must be a boolean")),
    };
    if stream {
        chat.key("stream").extend_from_slice(b"true");
        // Usage arrives on the last chunk, for `message_delta`.
        chat.key("stream_options").extend_from_slice(b"{\"include_usage\":true}");
    }
    if let Some(reasoning) = thinking(req.get("thinking"))? {
        let o = chat.key("reasoning");
        match reasoning {
            Some(budget) => {
                o.extend_from_slice(b"{\"max_tokens\":");
                number(o, budget);
                o.push(b'}');
            }
            None => o.extend_from_slice(b"{\"enabled\":true}"),
        }
    }
    if let Some(key) = req.get("metadata").and_then(|m| m.get("user_id")).and_then(Json::as_str)
        && let Some(key) = session::session_key(key)
    {
        string(chat.key("session_id"), &key);
    }
    let members = chat.end_spanned();
    Ok(Translated { body: out, members, stream, requested_model, served_as_free, dropped_tools })
}

/// The most members a chat body written here has.
const CHAT_MEMBERS: usize = 16;

/// Room for what the chat body adds to the Messages body's size (`stream_options`, the
/// tools' wrapping), so that writing it seldom grows the buffer.
const CHAT_BODY_EXTRA: usize = 128;

/// A function tool: its name, description and schema.
type Function<'a, 'j> = (&'a str, Option<&'a str>, Option<&'a Json<'j>>);

/// `tools` and `tool_choice`; returns the server tools left out.
fn tools(req: &Json<'_>, options: &Options, chat: &mut Seq<'_>) -> Result<Vec<String>, TranslateError> {
    let (functions, dropped) = functions(req.get("tools"), options)?;
    let has_tools = !functions.is_empty();
    if has_tools {
        let mut list = Seq::array(chat.key("tools"));
        for (name, description, schema) in &functions {
            let mut tool = Seq::object(list.item());
            string(tool.key("type"), "function");
            let mut function = Seq::object(tool.key("function"));
            string(function.key("name"), name);
            match schema {
                Some(s) => s.write_json(function.key("parameters")),
                None => function.key("parameters").extend_from_slice(b"{\"type\":\"object\",\"properties\":{}}"),
            }
            if let Some(d) = description {
                string(function.key("description"), d);
            }
            function.end();
            tool.end();
        }
        list.end();
    }
    if let Some(choice) = req.get("tool_choice").filter(|c| !c.is_null()) {
        tool_choice(choice, has_tools, chat)?;
    }
    Ok(dropped)
}

/// The function tools of `tools`, and the server tools left out (their names, or types
/// when unnamed); a server tool is an error when the options refuse them.
fn functions<'a, 'j>(
    tools: Option<&'a Json<'j>>,
    options: &Options,
) -> Result<(Vec<Function<'a, 'j>>, Vec<String>), TranslateError> {
    let mut dropped = Vec::new();
    let mut functions = Vec::new();
    let tools = match tools {
        None | Some(Json::Null) => return Ok((functions, dropped)),
        Some(Json::Array(tools)) => tools,
        Some(_) => return Err(TranslateError::invalid("tools", "must be an array")),
    };
    for (i, tool) in tools.iter().enumerate() {
        let path = || format!("tools[{i}]");
        if !tool.is_object() {
            return Err(TranslateError::invalid(path(), "must be an object"));
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
            return Err(TranslateError::invalid(format!("{}.name", path()), "must be a non-empty string"));
        }
        let schema = match tool.get("input_schema") {
            Some(s @ Json::Object(_)) => Some(s),
            None | Some(Json::Null) => None,
            Some(_) => return Err(TranslateError::invalid(format!("{}.input_schema", path()), "must be an object")),
        };
        functions.push((name, tool.get("description").and_then(Json::as_str), schema));
    }
    Ok((functions, dropped))
}

/// `tool_choice` (checked even when no tool is left, written only when one is: a choice
/// over tools that were all dropped, or never given, means nothing upstream).
fn tool_choice(choice: &Json<'_>, has_tools: bool, chat: &mut Seq<'_>) -> Result<(), TranslateError> {
    let kind = choice.get("type").and_then(Json::as_str);
    let named = match kind {
        Some("auto" | "any" | "none") => None,
        Some("tool") => match choice.get("name").and_then(Json::as_str).filter(|n| !n.trim().is_empty()) {
            Some(name) => Some(name),
            None => return Err(TranslateError::invalid("tool_choice.name", "must be a non-empty string")),
        },
        _ => return Err(TranslateError::invalid("tool_choice.type", "must be `auto`, `any`, `tool` or `none`")),
    };
    if !has_tools {
        return Ok(());
    }
    let o = chat.key("tool_choice");
    match (kind, named) {
        (_, Some(name)) => {
            let mut c = Seq::object(o);
            string(c.key("type"), "function");
            let mut function = Seq::object(c.key("function"));
            string(function.key("name"), name);
            function.end();
            c.end();
        }
        (Some("any"), _) => string(o, "required"),
        (Some("none"), _) => string(o, "none"),
        _ => string(o, "auto"),
    }
    if choice.get("disable_parallel_tool_use") == Some(&Json::Bool(true)) {
        chat.key("parallel_tool_calls").extend_from_slice(b"false");
    }
    Ok(())
}

/// `max_tokens`, `stop_sequences`, `temperature`, `top_p`, `top_k`.
fn sampling(req: &Json<'_>, chat: &mut Seq<'_>) -> Result<(), TranslateError> {
    if let Some(n) = req.get("max_tokens").filter(|n| !n.is_null()) {
        match n.as_u64() {
            Some(n) if n > 0 => number(chat.key("max_tokens"), n),
            _ => return Err(TranslateError::invalid("max_tokens", "must be a positive integer")),
        };
    }
    match req.get("stop_sequences") {
        None | Some(Json::Null) => {}
        Some(stops @ Json::Array(list)) if list.iter().all(Json::is_string) => {
            if !list.is_empty() {
                stops.write_json(chat.key("stop"));
            }
        }
        Some(_) => return Err(TranslateError::invalid("stop_sequences", "must be an array of strings")),
    }
    for key in ["temperature", "top_p", "top_k"] {
        match req.get(key) {
            None | Some(Json::Null) => {}
            Some(n @ Json::Number(_)) => n.write_json(chat.key(key)),
            Some(_) => return Err(TranslateError::invalid(key, "must be a number")),
        }
    }
    Ok(())
}

/// `thinking` → chat's `reasoning`: `enabled` with its budget (`Some(Some(budget))`),
/// `adaptive` (or `enabled` without one) as enabled (`Some(None)`), `disabled` as nothing.
fn thinking(thinking: Option<&Json<'_>>) -> Result<Option<Option<u64>>, TranslateError> {
    let Some(t) = thinking.filter(|t| !t.is_null()) else { return Ok(None) };
    match t.get("type").and_then(Json::as_str) {
        Some("enabled") => Ok(Some(t.get("budget_tokens").and_then(Json::as_u64))),
        Some("adaptive") => Ok(Some(None)),
        Some("disabled") => Ok(None),
        _ => Err(TranslateError::invalid("thinking.type", "must be `enabled`, `adaptive` or `disabled`")),
    }
}

#[cfg(test)]
mod tests;
