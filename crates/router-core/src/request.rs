//! The chat request as the router sees it: the JSON body, kept whole for forwarding,
//! and the analysis of what it needs from a model.

use crate::model::{CapSet, Capability, ModelId};
use serde_json::{Map, Value};
use std::fmt;

/// The model names that mean "route among the free models".
pub const ROUTER_ALIASES: [&str; 2] = ["openrouter/free", "free"];

/// Body fields that steer the router and must not reach upstream: `models` would make
/// upstream run its own fallback (possibly to a paid model), `route` configures it.
const ROUTER_ONLY_FIELDS: [&str; 2] = ["models", "route"];

/// Fixed prompt-token cost of one non-text content part. Media travel as base64 or
/// URLs, so their length says nothing about their token cost; these are deliberately
/// generous figures (a high-detail image is about 1,000 tokens on most vision models).
const TOKENS_PER_IMAGE: u64 = 1_000;
const TOKENS_PER_AUDIO: u64 = 1_000;
const TOKENS_PER_FILE: u64 = 4_000;
const TOKENS_PER_VIDEO: u64 = 4_000;
/// Role markers and separators per message.
const TOKENS_PER_MESSAGE: u64 = 4;

/// Why a request body was refused before any routing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("request body is not valid json: {0}")]
    Json(String),
    #[error("request body must be a json object")]
    NotAnObject,
    #[error("`messages` is required and must be a non-empty array")]
    NoMessages,
    #[error("`messages[{0}]` must be an object")]
    BadMessage(usize),
    #[error("`model` must be a string")]
    BadModel,
    #[error("`models` must be an array of model id strings")]
    BadModels,
    #[error("`{field}` must be {expected}")]
    BadField { field: &'static str, expected: &'static str },
    #[error("{0}")]
    Billed(&'static str),
}

/// What the client asked to be routed to, in order of preference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Pick at random among the free candidates.
    AnyFree,
    /// A named model; must be free in the catalog.
    Model(ModelId),
}

/// What a request needs from a model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Requirements {
    pub caps: CapSet,
    /// Estimated prompt tokens (see [`estimate`](self) constants): UTF-8 bytes of all
    /// text / 4, rounded up, plus fixed costs per message and per media part.
    pub prompt_tokens: u64,
    /// `max_completion_tokens`, else `max_tokens`.
    pub max_output_tokens: Option<u64>,
}

impl Requirements {
    /// Context a model needs: the prompt estimate plus the requested output.
    pub fn context_needed(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.max_output_tokens.unwrap_or(0))
    }

    /// Human-readable list, e.g. `["text output", "tools", "context >= 1200 tokens"]`.
    pub fn labels(&self) -> Vec<String> {
        let mut out: Vec<String> = self.caps.iter().map(|c| c.label().to_owned()).collect();
        out.push(format!("context >= {} tokens", self.context_needed()));
        if let Some(n) = self.max_output_tokens {
            out.push(format!("max completion >= {n} tokens"));
        }
        out
    }
}

/// A parsed, analysed chat request.
#[derive(Clone)]
pub struct ChatRequest {
    body: Map<String, Value>,
    targets: Vec<Target>,
    stream: bool,
    requirements: Requirements,
}

impl fmt::Debug for ChatRequest {
    // The body may hold a user's data; keep it out of debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatRequest")
            .field("targets", &self.targets)
            .field("stream", &self.stream)
            .field("requirements", &self.requirements)
            .finish_non_exhaustive()
    }
}

impl ChatRequest {
    /// Parses and analyses a request body.
    pub fn from_slice(body: &[u8]) -> Result<Self, RequestError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| RequestError::Json(e.to_string()))?;
        Self::from_value(value)
    }

    pub fn from_value(value: Value) -> Result<Self, RequestError> {
        let Value::Object(mut body) = value else {
            return Err(RequestError::NotAnObject);
        };
        let targets = targets(&body)?;
        let stream = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(RequestError::BadField { field: "stream", expected: "a boolean" });
            }
        };
        let requirements = analyse(&body)?;
        for f in ROUTER_ONLY_FIELDS {
            body.remove(f);
        }
        Ok(ChatRequest { body, targets, stream, requirements })
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    pub fn is_stream(&self) -> bool {
        self.stream
    }

    pub fn requirements(&self) -> &Requirements {
        &self.requirements
    }

    /// The body to send upstream for `model`: the client's body untouched except for
    /// `model` and the router-only fields.
    pub fn body_for(&self, model: &ModelId) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        // Serialise `model` first, then every other field, without cloning the body.
        out.push(b'{');
        write_json(&mut out, &Value::String("model".into()));
        out.push(b':');
        write_json(&mut out, &Value::String(model.as_str().into()));
        for (k, v) in &self.body {
            if k == "model" {
                continue;
            }
            out.push(b',');
            write_json_str(&mut out, k);
            out.push(b':');
            write_json(&mut out, v);
        }
        out.push(b'}');
        out
    }
}

fn write_json(out: &mut Vec<u8>, v: &Value) {
    // Writing a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

fn write_json_str(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *out, s);
}

fn targets(body: &Map<String, Value>) -> Result<Vec<Target>, RequestError> {
    let target = |id: &str| {
        if ROUTER_ALIASES.contains(&id) { Target::AnyFree } else { Target::Model(ModelId::new(id)) }
    };
    let mut out = Vec::new();
    match body.get("model") {
        // OpenRouter falls back to the account's default model; ours is the free router.
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if !s.is_empty() => out.push(target(s)),
        Some(_) => return Err(RequestError::BadModel),
    }
    match body.get("models") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let Value::String(s) = item else { return Err(RequestError::BadModels) };
                let t = target(s);
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        Some(_) => return Err(RequestError::BadModels),
    }
    if out.is_empty() {
        out.push(Target::AnyFree);
    }
    Ok(out)
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => true,
    }
}

fn as_tokens(body: &Map<String, Value>, field: &'static str) -> Result<Option<u64>, RequestError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or(RequestError::BadField { field, expected: "a non-negative integer" }),
    }
}

/// Derives the hard requirements (see the table in `docs/architecture.md`).
fn analyse(body: &Map<String, Value>) -> Result<Requirements, RequestError> {
    let mut caps = CapSet::EMPTY.with(Capability::TextOutput);
    let mut text_bytes: u64 = 0;
    let mut fixed: u64 = 0;

    let messages = match body.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        _ => return Err(RequestError::NoMessages),
    };
    for (i, msg) in messages.iter().enumerate() {
        let Value::Object(msg) = msg else { return Err(RequestError::BadMessage(i)) };
        fixed += TOKENS_PER_MESSAGE;
        match msg.get("content") {
            Some(Value::String(s)) => text_bytes += s.len() as u64,
            Some(Value::Array(parts)) => {
                for part in parts {
                    let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
                    match kind {
                        "image_url" => {
                            caps.insert(Capability::ImageInput);
                            fixed += TOKENS_PER_IMAGE;
                        }
                        "file" => {
                            caps.insert(Capability::FileInput);
                            fixed += TOKENS_PER_FILE;
                        }
                        "input_audio" => {
                            caps.insert(Capability::AudioInput);
                            fixed += TOKENS_PER_AUDIO;
                        }
                        "video_url" | "input_video" => {
                            caps.insert(Capability::VideoInput);
                            fixed += TOKENS_PER_VIDEO;
                        }
                        _ => {
                            if let Some(Value::String(t)) = part.get("text") {
                                text_bytes += t.len() as u64;
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        // Assistant tool calls and their arguments are prompt text too.
        if let Some(calls) = msg.get("tool_calls") {
            text_bytes += json_len(calls);
        }
    }

    match body.get("tools") {
        Some(tools @ Value::Array(list)) if !list.is_empty() => {
            caps.insert(Capability::Tools);
            text_bytes += json_len(tools);
        }
        None | Some(Value::Null | Value::Array(_)) => {}
        Some(_) => return Err(RequestError::BadField { field: "tools", expected: "an array" }),
    }
    match body.get("tool_choice") {
        Some(Value::String(s)) if s == "required" => caps.insert(Capability::ToolChoice),
        Some(Value::Object(o)) if o.get("type").and_then(Value::as_str) == Some("function") => {
            caps.insert(Capability::ToolChoice);
        }
        _ => {}
    }
    if let Some(rf) = body.get("response_format") {
        match rf.get("type").and_then(Value::as_str) {
            Some("json_schema") => {
                caps.insert(Capability::StructuredOutputs);
                if let Some(schema) = rf.get("json_schema") {
                    text_bytes += json_len(schema);
                }
            }
            Some("json_object") => caps.insert(Capability::JsonMode),
            _ => {}
        }
    }
    let reasoning_obj = match body.get("reasoning") {
        Some(Value::Object(r)) => {
            let disabled = r.get("enabled") == Some(&Value::Bool(false))
                || r.get("effort").and_then(Value::as_str) == Some("none");
            !disabled
        }
        _ => false,
    };
    let effort = matches!(body.get("reasoning_effort"), Some(Value::String(s)) if s != "none");
    if reasoning_obj || effort || body.get("include_reasoning") == Some(&Value::Bool(true)) {
        caps.insert(Capability::Reasoning);
    }
    if body.get("logprobs") == Some(&Value::Bool(true)) {
        caps.insert(Capability::Logprobs);
    }
    if truthy(body.get("top_logprobs")) {
        caps.insert(Capability::TopLogprobs);
    }
    if let Some(Value::Array(mods)) = body.get("modalities") {
        for m in mods {
            match m.as_str() {
                Some("image") => caps.insert(Capability::ImageOutput),
                Some("audio") => caps.insert(Capability::AudioOutput),
                _ => {}
            }
        }
    }
    refuse_billed_features(body)?;

    let max_output_tokens = match as_tokens(body, "max_completion_tokens")? {
        Some(n) => Some(n),
        None => as_tokens(body, "max_tokens")?,
    };
    Ok(Requirements { caps, prompt_tokens: text_bytes.div_ceil(4) + fixed, max_output_tokens })
}

/// Features that OpenRouter bills per request even on a free model. Forwarding them
/// would cost money, so they are refused rather than silently dropped.
fn refuse_billed_features(body: &Map<String, Value>) -> Result<(), RequestError> {
    if body.get("web_search_options").is_some_and(|v| !v.is_null()) {
        return Err(RequestError::Billed(
            "`web_search_options` enables paid web search; the free router does not forward it",
        ));
    }
    if let Some(Value::Array(plugins)) = body.get("plugins") {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Analyses `body` and compares the requirement labels (or the error) to `expected`.
    fn check(body: &str, expected: &str) {
        let got = match ChatRequest::from_slice(body.as_bytes()) {
            Ok(r) => r.requirements().labels().join(", "),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "{body}");
    }

    const HI: &str = r#""messages":[{"role":"user","content":"hi"}]"#;

    #[test]
    fn requirement_table() {
        check(&format!("{{{HI}}}"), "text output, context >= 5 tokens");
        check(
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"what is this"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#,
            "text output, image input, context >= 1007 tokens",
        );
        check(
            r#"{"messages":[{"role":"user","content":[{"type":"file","file":{}},{"type":"input_audio","input_audio":{}},{"type":"video_url","video_url":{}}]}]}"#,
            "text output, file input, audio input, video input, context >= 9004 tokens",
        );
        check(
            r#"{"messages":[{"role":"user","content":[{"type":"input_video"}]}]}"#,
            "text output, video input, context >= 4004 tokens",
        );
        check(&format!(r#"{{{HI},"tools":[]}}"#), "text output, context >= 5 tokens");
        check(
            &format!(r#"{{{HI},"tools":[{{"type":"function","function":{{"name":"f"}}}}],"tool_choice":"required"}}"#),
            "text output, tools, tool_choice, context >= 16 tokens",
        );
        check(
            &format!(r#"{{{HI},"tool_choice":{{"type":"function","function":{{"name":"f"}}}}}}"#),
            "text output, tool_choice, context >= 5 tokens",
        );
        check(&format!(r#"{{{HI},"tool_choice":"auto"}}"#), "text output, context >= 5 tokens");
        check(
            &format!(r#"{{{HI},"response_format":{{"type":"json_schema","json_schema":{{"name":"x"}}}}}}"#),
            "text output, structured outputs, context >= 8 tokens",
        );
        check(
            &format!(r#"{{{HI},"response_format":{{"type":"json_object"}}}}"#),
            "text output, json mode, context >= 5 tokens",
        );
        check(&format!(r#"{{{HI},"reasoning":{{"effort":"high"}}}}"#), "text output, reasoning, context >= 5 tokens");
        check(&format!(r#"{{{HI},"reasoning":{{"enabled":false}}}}"#), "text output, context >= 5 tokens");
        check(&format!(r#"{{{HI},"reasoning":{{"effort":"none"}}}}"#), "text output, context >= 5 tokens");
        check(&format!(r#"{{{HI},"reasoning_effort":"low"}}"#), "text output, reasoning, context >= 5 tokens");
        check(&format!(r#"{{{HI},"include_reasoning":true}}"#), "text output, reasoning, context >= 5 tokens");
        check(
            &format!(r#"{{{HI},"logprobs":true,"top_logprobs":3}}"#),
            "text output, logprobs, top_logprobs, context >= 5 tokens",
        );
        check(&format!(r#"{{{HI},"modalities":["image","text"]}}"#), "text output, image output, context >= 5 tokens");
        check(
            &format!(r#"{{{HI},"max_tokens":100}}"#),
            "text output, context >= 105 tokens, max completion >= 100 tokens",
        );
        check(
            &format!(r#"{{{HI},"max_tokens":100,"max_completion_tokens":50}}"#),
            "text output, context >= 55 tokens, max completion >= 50 tokens",
        );
    }

    #[test]
    fn refusals() {
        check("{", "error: request body is not valid json: EOF while parsing an object at line 1 column 1");
        check("[1]", "error: request body must be a json object");
        check("{}", "error: `messages` is required and must be a non-empty array");
        check(r#"{"messages":[]}"#, "error: `messages` is required and must be a non-empty array");
        check(r#"{"messages":[1]}"#, "error: `messages[0]` must be an object");
        check(&format!(r#"{{{HI},"model":3}}"#), "error: `model` must be a string");
        check(&format!(r#"{{{HI},"models":"a"}}"#), "error: `models` must be an array of model id strings");
        check(&format!(r#"{{{HI},"stream":"yes"}}"#), "error: `stream` must be a boolean");
        check(&format!(r#"{{{HI},"max_tokens":-1}}"#), "error: `max_tokens` must be a non-negative integer");
        check(
            &format!(r#"{{{HI},"plugins":[{{"id":"web"}}]}}"#),
            "error: the `web` plugin is billed per request; the free router does not forward it",
        );
    }

    #[test]
    fn targets_and_forwarded_body() {
        let r = ChatRequest::from_slice(
            format!(r#"{{"model":"a/b:free","models":["c:free","openrouter/free","a/b:free"],"route":"fallback",{HI},"stream":true}}"#)
                .as_bytes(),
        )
        .expect("valid request");
        assert_eq!(r.targets(), [Target::Model("a/b:free".into()), Target::Model("c:free".into()), Target::AnyFree]);
        assert!(r.is_stream());
        let body: Value = serde_json::from_slice(&r.body_for(&"c:free".into())).expect("json");
        assert_eq!(
            body,
            serde_json::json!({"model":"c:free","messages":[{"role":"user","content":"hi"}],"stream":true})
        );
        let default = ChatRequest::from_slice(format!("{{{HI}}}").as_bytes()).expect("valid");
        assert_eq!(default.targets(), [Target::AnyFree]);
    }
}
