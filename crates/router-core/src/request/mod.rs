//! The chat request as the router sees it: the JSON body, kept as sent for forwarding,
//! and the analysis of what it needs from a model.

//!
//! Read in this order: `requirements` (the vocabulary), `scan` (the one pass over the
//! body), `locate` (where each member's bytes are), `analyse` (the rules), then this file
//! (the request type and the body sent upstream).

mod analyse;
mod locate;
mod requirements;
mod scan;
mod written;

pub use requirements::{
    MAX_MODEL_ID_BYTES, MAX_MODELS, MAX_SESSION_KEY_BYTES, ROUTER_ALIASES, ROUTER_MODEL_ID, RequestError, Requirements,
    Target,
};
pub use written::WrittenMember;

use crate::model::{CapSet, Capability};
use crate::upstream::Endpoint;
use analyse::{Fields, analyse, checked_session_key, session_key, targets};
use bytes::Bytes;
use locate::{Located, last_of_each, locate};
use requirements::LOST;
use scan::TopLevel;
use serde::de::IgnoredAny;
use serde_json::Value;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// Body fields that steer the router and must not reach upstream: `models` would make
/// upstream run its own fallback (possibly to a paid model), `route` configures it.
const ROUTER_ONLY_FIELDS: [&str; 2] = ["models", "route"];

/// Body fields only OpenRouter understands, left out of a body for a plain
/// OpenAI-compatible server (which may refuse an unknown field or ignore it silently).
pub const OPENROUTER_ONLY_FIELDS: [&str; 6] = ["provider", "transforms", "plugins", "route", "models", "usage"];

/// A parsed, analysed chat request. The body is kept as the client sent it; forwarding
/// copies its members byte for byte, so nothing is re-encoded on the way upstream.
#[derive(Clone)]
pub struct ChatRequest {
    raw: Bytes,
    /// The members to forward, in the client's order: all but `model` and the
    /// router-only fields, and for a key given twice only the last (as a JSON map reads it).
    members: Vec<Member>,
    targets: Vec<Target>,
    stream: bool,
    requirements: Requirements,
    /// What keeps a conversation on one model: the `x-session-id` header (set by the
    /// server), else the body's `session_id`, else its `user`.
    session: Option<Box<str>>,
    /// The client's choice of a quality-weighted (`true`) or uniform (`false`) pick;
    /// `None` leaves it to the router's configuration.
    weighted: Option<bool>,
    /// An embeddings request's family: only that family's endpoints are candidates, and
    /// the body goes to `/embeddings` (see [`ChatRequest::embeddings`]).
    family: Option<Arc<str>>,
    /// A dialect translates the answer: its reading records where its members are (see
    /// [`record_answer_spans`](Self::record_answer_spans)).
    answer_spans: bool,
}

/// One top-level member of the body, as byte ranges of `raw`.
#[derive(Clone, Debug)]
struct Member {
    key: Key,
    value: Range<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Key {
    /// The key with its quotes, when it has no escapes (almost always).
    Span(Range<usize>),
    /// The unescaped key, re-encoded when forwarding.
    Escaped(String),
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
        Self::from_bytes(Bytes::copy_from_slice(body))
    }

    /// Analyses a request built as a value (its members are forwarded in key order).
    pub fn from_value(value: Value) -> Result<Self, RequestError> {
        let body = serde_json::to_vec(&value).map_err(|e| RequestError::Json(e.to_string()))?;
        Self::from_bytes(Bytes::from(body))
    }

    /// Parses and analyses a request body without copying it.
    ///
    /// One pass over the body: `messages`, the bulk of a request, is analysed by
    /// visitors that keep counts and flags rather than values, every other member is
    /// only skipped, and the members' byte ranges are found from the keys' positions. No
    /// JSON tree is built; the few small fields the analysis needs are read as values.
    pub fn from_bytes(raw: Bytes) -> Result<Self, RequestError> {
        Self::read(raw, None)
    }

    /// An embeddings request body (already read and bounded by its reader), routed to
    /// any free endpoint of `family` and posted to `/embeddings`: forwarded like a chat
    /// body (only `model` replaced, router-only fields cut), never streamed, and needing
    /// nothing but embeddings output from a model.
    pub fn embeddings(raw: Bytes, family: &str) -> Result<Self, RequestError> {
        Self::read(raw, Some(Arc::from(family)))
    }

    /// [`embeddings`](Self::embeddings) sent only to `targets`, in order (each must be of
    /// `family`): the chunks of a batch cut for an endpoint's limit all go to the model
    /// that answered the first, so that one answer's vectors come from one model.
    pub fn embeddings_to(raw: Bytes, family: &str, targets: Vec<Target>) -> Result<Self, RequestError> {
        let mut req = Self::read(raw, Some(Arc::from(family)))?;
        req.targets = targets;
        Ok(req)
    }

    fn read(raw: Bytes, family: Option<Arc<str>>) -> Result<Self, RequestError> {
        let parts = {
            let text = match std::str::from_utf8(&raw) {
                Ok(text) => text,
                // Let the JSON reader say where the bad byte is, as it would for any error.
                Err(e) => {
                    let reason = serde_json::from_slice::<IgnoredAny>(&raw).err().map(|e| e.to_string());
                    return Err(RequestError::Json(reason.unwrap_or_else(|| e.to_string())));
                }
            };
            let top: TopLevel<'_> = serde_json::from_str(text).map_err(|e| RequestError::Json(e.to_string()))?;
            let TopLevel::Object(read) = top else { return Err(RequestError::NotAnObject) };
            let spans = locate(text, &read).ok_or_else(|| RequestError::Json(LOST.into()))?;
            analysed(text, family.is_some(), last_of_each(read.into_iter().zip(spans).collect()).map(Ok))?
        };
        Ok(Self::of(raw, parts, family))
    }

    /// The request over `raw` from what [`analysed`] made of it.
    fn of(raw: Bytes, parts: Parts, family: Option<Arc<str>>) -> Self {
        let Parts { members, targets, stream, requirements, session } = parts;
        ChatRequest {
            raw,
            members,
            targets,
            stream,
            requirements,
            session,
            weighted: None,
            family,
            answer_spans: false,
        }
    }

    /// Analyses a body its caller wrote, given where each top-level member lies (each key
    /// once): read as [`from_bytes`](Self::from_bytes) reads it (`messages` analysed, every
    /// other value taken as it lies), without walking the top level again. A span outside
    /// the body or off a key's quotes, or a key written twice, is refused, never read past.
    pub fn from_written(raw: Bytes, members: &[WrittenMember]) -> Result<Self, RequestError> {
        let parts = {
            let text = std::str::from_utf8(&raw).map_err(|e| RequestError::Json(e.to_string()))?;
            analysed(text, false, written::read(text, members)?)?
        };
        Ok(Self::of(raw, parts, None))
    }

    /// The body as the client sent it.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The embedding family an embeddings request is confined to; `None` for chat.
    pub fn family(&self) -> Option<&str> {
        self.family.as_deref()
    }

    /// The upstream endpoint the body goes to.
    pub fn endpoint(&self) -> Endpoint {
        if self.family.is_some() { Endpoint::Embeddings } else { Endpoint::Chat }
    }

    /// The session key, if the request has one (see [`set_session_key`](Self::set_session_key)).
    pub fn session_key(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// Sets the session key from outside the body (the `x-session-id` header), which
    /// wins over the body's `session_id` and `user`. An empty key is ignored; one longer
    /// than [`MAX_SESSION_KEY_BYTES`] is refused (the router keeps it).
    pub fn set_session_key(&mut self, key: &str) -> Result<(), RequestError> {
        if !key.is_empty() {
            self.session = Some(checked_session_key(key, "x-session-id")?.into());
        }
        Ok(())
    }

    /// The client's weighting choice, if any (see [`set_weighted`](Self::set_weighted)).
    pub fn weighted(&self) -> Option<bool> {
        self.weighted
    }

    /// Asks for a quality-weighted (`true`) or uniform (`false`) pick for this request,
    /// whatever the router's default.
    pub fn set_weighted(&mut self, weighted: bool) {
        self.weighted = Some(weighted);
    }

    /// Asks the answer's one reading to record where its members are
    /// (`RouteReport::answer`), for a dialect that translates it (Messages, Responses):
    /// the chat path, which passes the answer on as it is, does not pay for it.
    pub fn record_answer_spans(&mut self) {
        self.answer_spans = true;
    }

    /// Whether the answer's reading records where its members are.
    pub fn records_answer_spans(&self) -> bool {
        self.answer_spans
    }

    /// What the client asked to be routed to, in order of preference.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Whether the client asked for a streamed (SSE) answer.
    pub fn is_stream(&self) -> bool {
        self.stream
    }

    /// What the request needs from a model.
    pub fn requirements(&self) -> &Requirements {
        &self.requirements
    }

    /// The body to send to a server that knows the model as `upstream_id`: the client's
    /// body untouched except for `model` (written first) and the router-only fields (left
    /// out). For a plain OpenAI-compatible server (`plain`), OpenRouter's own fields are
    /// left out too; with `max_tokens`, the request's `max_tokens` and
    /// `max_completion_tokens` say that (and `max_tokens` is added when the request had
    /// neither). An embeddings body has no output to bound: `max_tokens` is never added
    /// to it (a token budget's cap would otherwise reach `/embeddings` as a member it
    /// does not know).
    pub fn body_for_upstream(&self, upstream_id: &str, plain: bool, max_tokens: Option<u64>) -> Vec<u8> {
        let max_tokens = max_tokens.filter(|_| self.family.is_none());
        let mut out = Vec::with_capacity(self.raw.len() + upstream_id.len() + 32);
        out.extend_from_slice(b"{\"model\":");
        write_json_str(&mut out, upstream_id);
        let mut said = false;
        for m in &self.members {
            let name = self.name(&m.key);
            if plain && OPENROUTER_ONLY_FIELDS.iter().any(|f| f.as_bytes() == name) {
                continue;
            }
            out.push(b',');
            match &m.key {
                Key::Span(r) => out.extend_from_slice(self.raw.get(r.clone()).unwrap_or_default()),
                Key::Escaped(k) => write_json_str(&mut out, k),
            }
            out.push(b':');
            match max_tokens {
                Some(n) if OUTPUT_LIMIT_FIELDS.iter().any(|f| f.as_bytes() == name) => {
                    out.extend_from_slice(n.to_string().as_bytes());
                    said = true;
                }
                _ => out.extend_from_slice(self.raw.get(m.value.clone()).unwrap_or_default()),
            }
        }
        if let Some(n) = max_tokens.filter(|_| !said) {
            out.extend_from_slice(format!(",\"max_tokens\":{n}").as_bytes());
        }
        out.push(b'}');
        out
    }
}

impl ChatRequest {
    /// Adds `"input_type": input_type` to `body` (this request's [`body_for_upstream`](
    /// Self::body_for_upstream)) when it is an embeddings body whose client sent no
    /// `input_type`: a model's declared default, since the client's own always wins.
    ///
    /// NVIDIA's NeMo Retriever embedding NIM (API reference, OpenAI API): "NV-Embed-QA and
    /// E5 models operate in passage or query mode, and thus require the input_type
    /// parameter" (`"query"` or `"passage"`), which OpenAI's API and its clients do not
    /// have; its GTE and GTR models accept no `input_type`. So the default is per model.
    pub fn add_input_type(&self, body: &mut Vec<u8>, input_type: &str) {
        let said = self.members.iter().any(|m| self.name(&m.key) == b"input_type");
        if self.family.is_none() || said || body.pop() != Some(b'}') {
            return;
        }
        body.extend_from_slice(b",\"input_type\":");
        write_json_str(body, input_type);
        body.push(b'}');
    }
}

/// What the analysis makes of a body's members.
struct Parts {
    members: Vec<Member>,
    targets: Vec<Target>,
    stream: bool,
    requirements: Requirements,
    session: Option<Box<str>>,
}

/// The members of the body `text` (each with where it lies, each key once), analysed:
/// what is forwarded, the targets, the requirements and the session key. An embeddings
/// body (`embeddings`) needs only embeddings output.
fn analysed<'a>(
    text: &'a str,
    embeddings: bool,
    members: impl Iterator<Item = Result<Located<'a>, RequestError>>,
) -> Result<Parts, RequestError> {
    let mut fields = Fields::default();
    let mut forward = Vec::with_capacity(members.size_hint().1.unwrap_or(0));
    let mut input_bytes = 0;
    for member in members {
        let ((key, value), span) = member?;
        let raw_value = text.get(span.value.clone()).unwrap_or("null");
        if embeddings && key.as_str() == "input" {
            input_bytes = raw_value.len();
        }
        fields.set(key.as_str(), raw_value, value);
        if key.as_str() == "model" || ROUTER_ONLY_FIELDS.contains(&key.as_str()) {
            continue;
        }
        let key = match (key, span.key) {
            (_, Some(quoted)) => Key::Span(quoted),
            (key, None) => Key::Escaped(key.as_str().to_owned()),
        };
        forward.push(Member { key, value: span.value });
    }
    if embeddings {
        let session = session_key(&fields)?;
        // Charged to token budgets as free tiers count it: the input (its JSON text, 4
        // bytes a token, as a prompt is estimated), and no output.
        let requirements = Requirements {
            caps: CapSet::EMPTY.with(Capability::EmbeddingsOutput),
            prompt_tokens: u64::try_from(input_bytes.div_ceil(4)).unwrap_or(u64::MAX),
            max_output_tokens: Some(0),
        };
        return Ok(Parts { members: forward, targets: vec![Target::AnyFree], stream: false, requirements, session });
    }
    let targets = targets(&fields)?;
    let stream = match fields.stream {
        None | Some("null" | "false") => false,
        Some("true") => true,
        Some(_) => return Err(RequestError::BadField { field: "stream", expected: "a boolean" }),
    };
    let session = session_key(&fields)?;
    let requirements = analyse(fields)?;
    Ok(Parts { members: forward, targets, stream, requirements, session })
}

/// The members that bound the output, rewritten when the router lowers it.
const OUTPUT_LIMIT_FIELDS: [&str; 2] = ["max_tokens", "max_completion_tokens"];

impl ChatRequest {
    /// A member's name, unescaped only when it had escapes.
    fn name<'a>(&'a self, key: &'a Key) -> &'a [u8] {
        match key {
            Key::Span(r) => self.raw.get(r.start + 1..r.end.saturating_sub(1)).unwrap_or_default(),
            Key::Escaped(k) => k.as_bytes(),
        }
    }
}

fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
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
    fn a_lowered_output_replaces_both_limits_in_place() {
        let body = format!(r#"{{{HI},"max_tokens":128000,"temperature":0,"max_completion_tokens":64000}}"#);
        let r = ChatRequest::from_slice(body.as_bytes()).expect("valid");
        let sent = String::from_utf8(r.body_for_upstream("m", false, Some(8192))).expect("utf-8");
        assert_eq!(
            sent,
            format!(r#"{{"model":"m",{HI},"max_tokens":8192,"temperature":0,"max_completion_tokens":8192}}"#)
        );
        let unchanged = String::from_utf8(r.body_for_upstream("m", false, None)).expect("utf-8");
        assert_eq!(unchanged, body.replacen('{', r#"{"model":"m","#, 1));
    }

    #[test]
    fn an_embeddings_body_is_never_given_an_output_limit() {
        let body = br#"{"model":"free","input":["a"],"provider":{"sort":"price"}}"#;
        let r = ChatRequest::embeddings(Bytes::from_static(body), "f").expect("valid");
        let sent = String::from_utf8(r.body_for_upstream("m", true, Some(512))).expect("utf-8");
        assert_eq!(sent, r#"{"model":"m","input":["a"]}"#);
    }

    #[test]
    fn a_declared_input_type_is_added_only_where_the_client_said_none() {
        let check = |r: &ChatRequest, expected: &str| {
            let mut body = r.body_for_upstream("m", true, None);
            r.add_input_type(&mut body, "passage");
            assert_eq!(String::from_utf8(body).expect("utf-8"), expected);
        };
        let bare = ChatRequest::embeddings(Bytes::from_static(br#"{"model":"free","input":"x"}"#), "f").expect("ok");
        check(&bare, r#"{"model":"m","input":"x","input_type":"passage"}"#);
        let own = br#"{"model":"free","input":"x","input_type":"query"}"#;
        let own = ChatRequest::embeddings(Bytes::from_static(own), "f").expect("ok");
        check(&own, r#"{"model":"m","input":"x","input_type":"query"}"#);
        let chat = ChatRequest::from_slice(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#);
        check(&chat.expect("ok"), r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#);
    }

    #[test]
    fn strings_the_router_keeps_are_bounded() {
        let long = "m".repeat(MAX_MODEL_ID_BYTES + 1);
        let at_limit = "m".repeat(MAX_MODEL_ID_BYTES);
        check(&format!(r#"{{{HI},"model":"{long}"}}"#), "error: `model` is longer than 256 bytes");
        check(&format!(r#"{{{HI},"models":["a:free","{long}"]}}"#), "error: `models` is longer than 256 bytes");
        check(&format!(r#"{{{HI},"model":"{at_limit}"}}"#), "text output, context >= 5 tokens");
        let many: Vec<String> = (0..=MAX_MODELS).map(|i| format!("\"m{i}:free\"")).collect();
        check(&format!(r#"{{{HI},"models":[{}]}}"#, many.join(",")), "error: `models` may hold at most 64 ids");
        let key = "k".repeat(MAX_SESSION_KEY_BYTES + 1);
        check(&format!(r#"{{{HI},"session_id":"{key}"}}"#), "error: `session_id` is longer than 256 bytes");
        check(&format!(r#"{{{HI},"user":"{key}"}}"#), "error: `user` is longer than 256 bytes");
        let mut r = ChatRequest::from_slice(format!("{{{HI}}}").as_bytes()).expect("valid");
        let refused = r.set_session_key(&key).expect_err("too long");
        assert_eq!(refused.to_string(), "`x-session-id` is longer than 256 bytes");
        assert_eq!(r.session_key(), None);
    }

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
        let body: Value = serde_json::from_slice(&r.body_for_upstream("c:free", false, None)).expect("json");
        assert_eq!(
            body,
            serde_json::json!({"model":"c:free","messages":[{"role":"user","content":"hi"}],"stream":true})
        );
        let default = ChatRequest::from_slice(format!("{{{HI}}}").as_bytes()).expect("valid");
        assert_eq!(default.targets(), [Target::AnyFree]);
    }

    #[test]
    fn a_plain_server_gets_its_own_id_and_no_openrouter_fields() {
        let r = ChatRequest::from_slice(
            format!(
                r#"{{"model":"groq/llama-3.1-8b-instant",{HI},"provider":{{"sort":"price"}},"transforms":[],"plugins":[],"usage":{{"include":true}},"\u0075sage":1,"temperature":0.2}}"#
            )
            .as_bytes(),
        )
        .expect("valid request");
        let body: Value =
            serde_json::from_slice(&r.body_for_upstream("llama-3.1-8b-instant", true, None)).expect("json");
        assert_eq!(
            body,
            serde_json::json!({"model":"llama-3.1-8b-instant","messages":[{"role":"user","content":"hi"}],"temperature":0.2})
        );
        // OpenRouter itself gets them all.
        let body: Value = serde_json::from_slice(&r.body_for_upstream("x:free", false, None)).expect("json");
        // A lowered output replaces both limits, or is added when the request had none.
        let lowered: Value = serde_json::from_slice(&r.body_for_upstream("x:free", false, Some(99))).expect("json");
        assert_eq!(lowered["max_tokens"], 99);
        assert_eq!(body["provider"]["sort"], "price");
        assert_eq!(body["transforms"], serde_json::json!([]));
    }

    #[test]
    fn session_key_from_session_id_then_user_then_header() {
        let key =
            |body: String| ChatRequest::from_slice(body.as_bytes()).expect("valid").session_key().map(String::from);
        assert_eq!(key(format!("{{{HI}}}")), None);
        assert_eq!(key(format!(r#"{{{HI},"user":"u-1"}}"#)).as_deref(), Some("u-1"));
        assert_eq!(key(format!(r#"{{"session_id":"s-1",{HI},"user":"u-1"}}"#)).as_deref(), Some("s-1"));
        assert_eq!(key(format!(r#"{{{HI},"session_id":"","user":"u-1"}}"#)).as_deref(), Some("u-1"));
        assert_eq!(key(format!(r#"{{{HI},"user":42}}"#)), None);
        let mut r = ChatRequest::from_slice(format!(r#"{{{HI},"session_id":"s-1"}}"#).as_bytes()).expect("valid");
        r.set_session_key("").expect("empty is ignored");
        assert_eq!(r.session_key(), Some("s-1"));
        r.set_session_key("h-1").expect("short");
        assert_eq!(r.session_key(), Some("h-1"));
        // Both fields are the client's and go upstream as sent.
        let body: Value = serde_json::from_slice(&r.body_for_upstream("c:free", false, None)).expect("json");
        assert_eq!(body["session_id"], "s-1");
    }
}
