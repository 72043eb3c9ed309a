//! The requirement rules: from the few top-level members that matter to what a model
//! must support, and the refusal of features that bill even on free models.

use super::requirements::{
    MAX_MODEL_ID_BYTES, MAX_MODELS, MAX_SESSION_KEY_BYTES, ROUTER_ALIASES, RequestError, Requirements, Target,
};
use super::scan::{Messages, Str, Val};
use crate::model::{CapSet, Capability, ModelId};
use serde_json::Value;

/// The top-level members the analysis reads, as raw JSON text.
#[derive(Default)]
pub(super) struct Fields<'a> {
    pub(super) model: Option<&'a str>,
    pub(super) models: Option<&'a str>,
    pub(super) stream: Option<&'a str>,
    /// Analysed while the body was read, or (after an escaped key) still to analyse.
    messages: Option<Result<Messages, &'a str>>,
    tools: Option<&'a str>,
    tool_choice: Option<&'a str>,
    response_format: Option<&'a str>,
    reasoning: Option<&'a str>,
    reasoning_effort: Option<&'a str>,
    include_reasoning: Option<&'a str>,
    logprobs: Option<&'a str>,
    top_logprobs: Option<&'a str>,
    modalities: Option<&'a str>,
    max_tokens: Option<&'a str>,
    max_completion_tokens: Option<&'a str>,
    web_search_options: Option<&'a str>,
    plugins: Option<&'a str>,
    session_id: Option<&'a str>,
    user: Option<&'a str>,
}

impl<'a> Fields<'a> {
    pub(super) fn set(&mut self, key: &str, raw: &'a str, value: Val<'_>) {
        let slot = match key {
            "messages" => {
                self.messages = Some(match value {
                    Val::Messages(m) => Ok(m),
                    _ => Err(raw),
                });
                return;
            }
            "model" => &mut self.model,
            "models" => &mut self.models,
            "stream" => &mut self.stream,
            "tools" => &mut self.tools,
            "tool_choice" => &mut self.tool_choice,
            "response_format" => &mut self.response_format,
            "reasoning" => &mut self.reasoning,
            "reasoning_effort" => &mut self.reasoning_effort,
            "include_reasoning" => &mut self.include_reasoning,
            "logprobs" => &mut self.logprobs,
            "top_logprobs" => &mut self.top_logprobs,
            "modalities" => &mut self.modalities,
            "max_tokens" => &mut self.max_tokens,
            "max_completion_tokens" => &mut self.max_completion_tokens,
            "web_search_options" => &mut self.web_search_options,
            "plugins" => &mut self.plugins,
            "session_id" => &mut self.session_id,
            "user" => &mut self.user,
            _ => return,
        };
        *slot = Some(raw);
    }
}

/// A small field read as a value; `null` when absent (the same for every rule here).
fn value(raw: Option<&str>) -> Value {
    raw.and_then(|r| serde_json::from_str(r).ok()).unwrap_or(Value::Null)
}

fn is_null(raw: Option<&str>) -> bool {
    raw.is_none_or(|r| r == "null")
}

pub(super) fn targets(fields: &Fields<'_>) -> Result<Vec<Target>, RequestError> {
    let target = |id: &str, field: &'static str| {
        if id.len() > MAX_MODEL_ID_BYTES {
            return Err(RequestError::TooLong { field, limit: MAX_MODEL_ID_BYTES });
        }
        Ok(if ROUTER_ALIASES.contains(&id) { Target::AnyFree } else { Target::Model(ModelId::new(id)) })
    };
    let mut out = Vec::new();
    // OpenRouter falls back to the account's default model; ours is the free router.
    if !is_null(fields.model) {
        match fields.model.map(serde_json::from_str::<Str<'_>>) {
            Some(Ok(s)) if !s.as_str().is_empty() => out.push(target(s.as_str(), "model")?),
            _ => return Err(RequestError::BadModel),
        }
    }
    if let Some(raw) = fields.models.filter(|r| *r != "null") {
        let items: Vec<Str<'_>> = serde_json::from_str(raw).map_err(|_| RequestError::BadModels)?;
        if items.len() > MAX_MODELS {
            return Err(RequestError::TooManyModels);
        }
        // The list is the client's: keep the first of each id in linear time, whatever
        // its length (a `contains` per item would be quadratic).
        let mut seen: std::collections::HashSet<Target> = out.iter().cloned().collect();
        for item in items {
            let t = target(item.as_str(), "models")?;
            if seen.insert(t.clone()) {
                out.push(t);
            }
        }
    }
    if out.is_empty() {
        out.push(Target::AnyFree);
    }
    Ok(out)
}

/// A session key from outside the body (the `x-session-id` header), checked against
/// [`MAX_SESSION_KEY_BYTES`].
pub(super) fn checked_session_key<'k>(key: &'k str, field: &'static str) -> Result<&'k str, RequestError> {
    if key.len() > MAX_SESSION_KEY_BYTES {
        return Err(RequestError::TooLong { field, limit: MAX_SESSION_KEY_BYTES });
    }
    Ok(key)
}

/// The session key from the body: `session_id`, else `user`, when a non-empty string
/// (anything else is left for upstream to judge and keys nothing).
pub(super) fn session_key(fields: &Fields<'_>) -> Result<Option<Box<str>>, RequestError> {
    for (raw, field) in [(fields.session_id, "session_id"), (fields.user, "user")] {
        let Some(s) = raw.and_then(|r| serde_json::from_str::<Str<'_>>(r).ok()) else { continue };
        if !s.as_str().is_empty() {
            return checked_session_key(s.as_str(), field).map(|k| Some(k.into()));
        }
    }
    Ok(None)
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        _ => true,
    }
}

fn as_tokens(raw: Option<&str>, field: &'static str) -> Result<Option<u64>, RequestError> {
    match value(raw) {
        Value::Null => Ok(None),
        v => v.as_u64().map(Some).ok_or(RequestError::BadField { field, expected: "a non-negative integer" }),
    }
}

/// Derives the hard requirements (see the table in `docs/architecture.md`).
pub(super) fn analyse(fields: Fields<'_>) -> Result<Requirements, RequestError> {
    let messages = checked_messages(fields.messages)?;
    let mut caps = CapSet::EMPTY.with(Capability::TextOutput).union(messages.caps);
    let mut text_bytes = messages.text_bytes;
    text_bytes += tools(fields.tools, &mut caps)?;
    tool_choice(fields.tool_choice, &mut caps);
    text_bytes += response_format(fields.response_format, &mut caps);
    if wants_reasoning(&fields) {
        caps.insert(Capability::Reasoning);
    }
    output_options(&fields, &mut caps);
    refuse_billed_features(&fields)?;

    let max_output_tokens = match as_tokens(fields.max_completion_tokens, "max_completion_tokens")? {
        Some(n) => Some(n),
        None => as_tokens(fields.max_tokens, "max_tokens")?,
    };
    Ok(Requirements { caps, prompt_tokens: text_bytes.div_ceil(4) + messages.fixed, max_output_tokens })
}

/// The messages as analysed while the body was read (or now, after an escaped key):
/// at least one, each well formed.
fn checked_messages(messages: Option<Result<Messages, &str>>) -> Result<Messages, RequestError> {
    let messages = match messages {
        Some(Ok(m)) => Some(m),
        Some(Err(raw)) => serde_json::from_str::<Messages>(raw).ok(),
        None => None,
    };
    let messages = messages.filter(|m| m.count > 0).ok_or(RequestError::NoMessages)?;
    if let Some(i) = messages.first_bad {
        return Err(RequestError::BadMessage(i));
    }
    Ok(messages)
}

/// A non-empty `tools` array needs tool support; its text counts toward the prompt (the
/// bytes returned).
fn tools(tools: Option<&str>, caps: &mut CapSet) -> Result<u64, RequestError> {
    match tools.map(str::as_bytes) {
        None | Some(b"null") => Ok(0),
        Some(tools) if tools.first() == Some(&b'[') => {
            // Non-empty when anything but whitespace and `]` follows the bracket.
            let rest = tools.get(1..).unwrap_or_default();
            if rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b']') {
                return Ok(0);
            }
            caps.insert(Capability::Tools);
            // The JSON text as sent, whitespace included: cheap, and errs on the
            // generous side for pretty-printed bodies.
            Ok(tools.len() as u64)
        }
        Some(_) => Err(RequestError::BadField { field: "tools", expected: "an array" }),
    }
}

/// `tool_choice` `required` or a named function needs tool choice support.
fn tool_choice(raw: Option<&str>, caps: &mut CapSet) {
    if raw.is_none() {
        return;
    }
    match value(raw) {
        Value::String(s) if s == "required" => caps.insert(Capability::ToolChoice),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            caps.insert(Capability::ToolChoice);
        }
        _ => {}
    }
}

/// A JSON schema needs structured outputs (its text counts toward the prompt, the bytes
/// returned); `json_object` needs JSON mode.
fn response_format(raw: Option<&str>, caps: &mut CapSet) -> u64 {
    if raw.is_none() {
        return 0;
    }
    let rf = value(raw);
    match rf.get("type").and_then(Value::as_str) {
        Some("json_schema") => {
            caps.insert(Capability::StructuredOutputs);
            rf.get("json_schema").map_or(0, json_len)
        }
        Some("json_object") => {
            caps.insert(Capability::JsonMode);
            0
        }
        _ => 0,
    }
}

/// Reasoning asked for by a `reasoning` object not turned off, a `reasoning_effort`
/// other than `none`, or `include_reasoning: true`.
fn wants_reasoning(fields: &Fields<'_>) -> bool {
    let reasoning_obj = match value(fields.reasoning) {
        Value::Object(r) => {
            let disabled = r.get("enabled") == Some(&Value::Bool(false))
                || r.get("effort").and_then(Value::as_str) == Some("none");
            !disabled
        }
        _ => false,
    };
    let effort = matches!(value(fields.reasoning_effort), Value::String(s) if s != "none");
    let include = fields.include_reasoning == Some("true");
    reasoning_obj || effort || include
}

/// Log probabilities and image or audio output.
fn output_options(fields: &Fields<'_>, caps: &mut CapSet) {
    if fields.logprobs == Some("true") {
        caps.insert(Capability::Logprobs);
    }
    if truthy(&value(fields.top_logprobs)) {
        caps.insert(Capability::TopLogprobs);
    }
    if let Value::Array(mods) = value(fields.modalities) {
        for m in mods {
            match m.as_str() {
                Some("image") => caps.insert(Capability::ImageOutput),
                Some("audio") => caps.insert(Capability::AudioOutput),
                _ => {}
            }
        }
    }
}

/// Features that OpenRouter bills per request even on a free model. Forwarding them
/// would cost money, so they are refused rather than silently dropped.
fn refuse_billed_features(fields: &Fields<'_>) -> Result<(), RequestError> {
    if !is_null(fields.web_search_options) {
        return Err(RequestError::Billed(
            "`web_search_options` enables paid web search; the free router does not forward it",
        ));
    }
    if let Value::Array(plugins) = value(fields.plugins) {
        let web = plugins.iter().any(|p| p.get("id").and_then(Value::as_str) == Some("web"));
        if web {
            return Err(RequestError::Billed(
                "the `web` plugin is billed per request; the free router does not forward it",
            ));
        }
    }
    Ok(())
}

/// Length of a value's compact JSON text, without building the text.
fn json_len(v: &Value) -> u64 {
    struct Counter(u64);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Counter(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}
