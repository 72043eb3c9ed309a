//! The chat request as the router sees it: the JSON body, kept as sent for forwarding,
//! and the analysis of what it needs from a model.

use crate::model::{CapSet, Capability, ModelId};
use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt;
use std::ops::Range;

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
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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
        let (members, targets, stream, requirements) = {
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
            let spans = locate(text, &read).ok_or_else(|| RequestError::Json("could not locate a member".into()))?;
            let mut fields = Fields::default();
            let mut forward = Vec::with_capacity(read.len());
            for ((key, value), span) in last_of_each(read.into_iter().zip(spans).collect()) {
                let raw_value = text.get(span.value.clone()).unwrap_or("null");
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
            let targets = targets(&fields)?;
            let stream = match fields.stream {
                None | Some("null" | "false") => false,
                Some("true") => true,
                Some(_) => return Err(RequestError::BadField { field: "stream", expected: "a boolean" }),
            };
            let requirements = analyse(fields)?;
            (forward, targets, stream, requirements)
        };
        Ok(ChatRequest { raw, members, targets, stream, requirements })
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
    /// `model` (written first) and the router-only fields (left out).
    pub fn body_for(&self, model: &ModelId) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.raw.len() + model.as_str().len() + 16);
        out.extend_from_slice(b"{\"model\":");
        write_json_str(&mut out, model.as_str());
        for m in &self.members {
            out.push(b',');
            match &m.key {
                Key::Span(r) => out.extend_from_slice(self.raw.get(r.clone()).unwrap_or_default()),
                Key::Escaped(k) => write_json_str(&mut out, k),
            }
            out.push(b':');
            out.extend_from_slice(self.raw.get(m.value.clone()).unwrap_or_default());
        }
        out.push(b'}');
        out
    }
}

fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Where one member is in the body.
struct Span {
    /// The key with its quotes, when it has no escapes.
    key: Option<Range<usize>>,
    value: Range<usize>,
}

/// Finds each member's key and value in `text`, the object the members were read from.
///
/// A value starts after its key's closing quote, whitespace and colon, and ends before
/// the whitespace and comma in front of the next key's opening quote (or before the
/// object's closing brace). A value whose end cannot be found that way (the next key
/// has escapes, so its place is unknown) was read as a raw value, or is read once more.
fn locate(text: &str, members: &[(Str<'_>, Val<'_>)]) -> Option<Vec<Span>> {
    let b = text.as_bytes();
    let base = text.as_ptr() as usize;
    let offset = |s: &str| (s.as_ptr() as usize).checked_sub(base).filter(|&o| o + s.len() <= b.len());
    let skip_ws = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    let back_ws = |mut i: usize| {
        while i > 0 && b[i - 1].is_ascii_whitespace() {
            i -= 1;
        }
        i
    };
    // The end of a value followed by whitespace, `terminator` and whitespace up to `at`.
    let end_before = |at: usize, terminator: u8| {
        let i = back_ws(at);
        (i > 0 && b[i - 1] == terminator).then(|| back_ws(i - 1))
    };
    let mut out = Vec::with_capacity(members.len());
    for (i, (key, value)) in members.iter().enumerate() {
        let key_span = match key {
            Str::Borrowed(k) => {
                let o = offset(k)?;
                Some(o.checked_sub(1)?..o + k.len() + 1)
            }
            Str::Owned(_) => None,
        };
        let value = match value {
            Val::Raw(r) => {
                let o = offset(r.get())?;
                o..o + r.get().len()
            }
            _ => {
                let after_key = key_span.as_ref()?.end;
                let colon = skip_ws(after_key);
                (b.get(colon) == Some(&b':')).then_some(())?;
                let start = skip_ws(colon + 1);
                let end = match members.get(i + 1) {
                    Some((Str::Borrowed(next), _)) => end_before(offset(next)?.checked_sub(1)?, b',')?,
                    Some((Str::Owned(_), _)) => {
                        let mut de = serde_json::Deserializer::from_str(text.get(start..)?);
                        start + <&RawValue>::deserialize(&mut de).ok()?.get().len()
                    }
                    None => end_before(back_ws(b.len()), b'}')?,
                };
                (start <= end).then_some(start..end)?
            }
        };
        out.push(Span { key: key_span, value });
    }
    Some(out)
}

/// The members of a JSON object, in order, with every key given more than once kept
/// only at its last place (as a JSON map reads them). Pairs are compared for the usual
/// handful of members; sorting keeps this `O(n log n)` whatever the client sends.
fn last_of_each<'a, T>(members: Vec<((Str<'a>, T), Span)>) -> impl Iterator<Item = ((Str<'a>, T), Span)> {
    let n = members.len();
    let mut keep = vec![true; n];
    let key = |i: usize| members[i].0.0.as_str();
    if n <= 32 {
        for (i, k) in keep.iter_mut().enumerate() {
            *k = !(i + 1..n).any(|j| key(j) == key(i));
        }
    } else {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| key(a).cmp(key(b)).then(a.cmp(&b)));
        for w in order.windows(2) {
            if key(w[0]) == key(w[1]) {
                keep[w[0]] = false;
            }
        }
    }
    members.into_iter().zip(keep).filter_map(|(m, k)| k.then_some(m))
}

/// The top-level members the analysis reads, as raw JSON text.
#[derive(Default)]
struct Fields<'a> {
    model: Option<&'a str>,
    models: Option<&'a str>,
    stream: Option<&'a str>,
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
}

impl<'a> Fields<'a> {
    fn set(&mut self, key: &str, raw: &'a str, value: Val<'_>) {
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

fn targets(fields: &Fields<'_>) -> Result<Vec<Target>, RequestError> {
    let target = |id: &str| {
        if ROUTER_ALIASES.contains(&id) { Target::AnyFree } else { Target::Model(ModelId::new(id)) }
    };
    let mut out = Vec::new();
    // OpenRouter falls back to the account's default model; ours is the free router.
    if !is_null(fields.model) {
        match fields.model.map(serde_json::from_str::<Str<'_>>) {
            Some(Ok(s)) if !s.as_str().is_empty() => out.push(target(s.as_str())),
            _ => return Err(RequestError::BadModel),
        }
    }
    if let Some(raw) = fields.models.filter(|r| *r != "null") {
        let items: Vec<Str<'_>> = serde_json::from_str(raw).map_err(|_| RequestError::BadModels)?;
        // The list is the client's: keep the first of each id in linear time, whatever
        // its length (a `contains` per item would be quadratic).
        let mut seen: std::collections::HashSet<Target> = out.iter().cloned().collect();
        for item in items {
            let t = target(item.as_str());
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
fn analyse(fields: Fields<'_>) -> Result<Requirements, RequestError> {
    let mut caps = CapSet::EMPTY.with(Capability::TextOutput);
    let messages = match fields.messages {
        Some(Ok(m)) => Some(m),
        Some(Err(raw)) => serde_json::from_str::<Messages>(raw).ok(),
        None => None,
    };
    let messages = messages.filter(|m| m.count > 0).ok_or(RequestError::NoMessages)?;
    if let Some(i) = messages.first_bad {
        return Err(RequestError::BadMessage(i));
    }
    caps = caps.union(messages.caps);
    let mut text_bytes = messages.text_bytes;
    let fixed = messages.fixed;

    match fields.tools.map(str::as_bytes) {
        None | Some(b"null") => {}
        Some(tools) if tools.first() == Some(&b'[') => {
            // Non-empty when anything but whitespace and `]` follows the bracket.
            let rest = tools.get(1..).unwrap_or_default();
            if rest.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b']') {
                caps.insert(Capability::Tools);
                // The JSON text as sent, whitespace included: cheap, and errs on the
                // generous side for pretty-printed bodies.
                text_bytes += tools.len() as u64;
            }
        }
        Some(_) => return Err(RequestError::BadField { field: "tools", expected: "an array" }),
    }
    if fields.tool_choice.is_some() {
        match value(fields.tool_choice) {
            Value::String(s) if s == "required" => caps.insert(Capability::ToolChoice),
            Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
                caps.insert(Capability::ToolChoice);
            }
            _ => {}
        }
    }
    if fields.response_format.is_some() {
        let rf = value(fields.response_format);
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
    if reasoning_obj || effort || include {
        caps.insert(Capability::Reasoning);
    }
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
    refuse_billed_features(&fields)?;

    let max_output_tokens = match as_tokens(fields.max_completion_tokens, "max_completion_tokens")? {
        Some(n) => Some(n),
        None => as_tokens(fields.max_tokens, "max_tokens")?,
    };
    Ok(Requirements { caps, prompt_tokens: text_bytes.div_ceil(4) + fixed, max_output_tokens })
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

// ---------------------------------------------------------------------------------------
// Visitors: read the body into counts and flags without building JSON values.
// ---------------------------------------------------------------------------------------

/// A string borrowed from the body when it has no escapes, owned otherwise.
enum Str<'a> {
    Borrowed(&'a str),
    Owned(String),
}

impl Str<'_> {
    fn as_str(&self) -> &str {
        match self {
            Str::Borrowed(s) => s,
            Str::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Str<'de>, E> {
                Ok(Str::Borrowed(s))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Str<'de>, E> {
                Ok(Str::Owned(s.to_owned()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Str<'de>, E> {
                Ok(Str::Owned(s))
            }
        }
        d.deserialize_str(V)
    }
}

/// The body: its members in order, or "not an object".
enum TopLevel<'a> {
    Object(Vec<(Str<'a>, Val<'a>)>),
    Other,
}

/// What was kept of a member's value while reading the body.
enum Val<'a> {
    /// Skipped; its place is found from the keys around it.
    Skipped,
    /// `messages`, analysed on the way.
    Messages(Messages),
    /// Read as raw text because its key has escapes, so its place cannot be found later.
    Raw(&'a RawValue),
}

/// Implements every `visit_*` a lenient visitor does not care about: consume the
/// value and return `$default`.
macro_rules! ignore_others {
    ($default:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($default)
        }
    };
}

macro_rules! ignore_strings {
    ($default:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($default)
        }
    };
}

macro_rules! ignore_seqs {
    ($default:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($default)
        }
    };
}

macro_rules! ignore_maps {
    ($default:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($default)
        }
    };
}

impl<'de> Deserialize<'de> for TopLevel<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TopLevel<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a json object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel<'de>, A::Error> {
                let mut members = Vec::with_capacity(16);
                while let Some(key) = map.next_key::<Str<'de>>()? {
                    let value = match &key {
                        Str::Owned(_) => Val::Raw(map.next_value()?),
                        Str::Borrowed("messages") => Val::Messages(map.next_value()?),
                        Str::Borrowed(_) => {
                            map.next_value::<IgnoredAny>()?;
                            Val::Skipped
                        }
                    };
                    members.push((key, value));
                }
                Ok(TopLevel::Object(members))
            }
            ignore_others!(TopLevel::Other);
            ignore_strings!(TopLevel::Other);
            ignore_seqs!(TopLevel::Other);
        }
        d.deserialize_any(V)
    }
}

/// What the analysis takes from `messages`.
#[derive(Clone, Copy, Default)]
struct Messages {
    count: usize,
    first_bad: Option<usize>,
    caps: CapSet,
    text_bytes: u64,
    fixed: u64,
}

impl<'de> Deserialize<'de> for Messages {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Messages;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of messages")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Messages, A::Error> {
                let mut out = Messages::default();
                while let Some(m) = seq.next_element::<Message>()? {
                    match m {
                        Message::Object { content, tool_calls_len } => {
                            out.fixed += TOKENS_PER_MESSAGE + content.fixed;
                            out.text_bytes += content.text_bytes + tool_calls_len;
                            out.caps = out.caps.union(content.caps);
                        }
                        Message::Other => {
                            out.first_bad.get_or_insert(out.count);
                        }
                    }
                    out.count += 1;
                }
                Ok(out)
            }
            ignore_others!(Messages::default());
            ignore_strings!(Messages::default());
            ignore_maps!(Messages::default());
        }
        d.deserialize_any(V)
    }
}

/// What the analysis takes from one message or one content.
#[derive(Clone, Copy, Default)]
struct Content {
    caps: CapSet,
    text_bytes: u64,
    fixed: u64,
}

enum Message {
    Object { content: Content, tool_calls_len: u64 },
    Other,
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Message;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a message object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
                // A key given twice counts once, at its last value.
                let (mut content, mut tool_calls_len) = (Content::default(), 0);
                while let Some(key) = map.next_key::<Str<'de>>()? {
                    match key.as_str() {
                        "content" => content = map.next_value()?,
                        // Assistant tool calls and their arguments are prompt text too.
                        "tool_calls" => tool_calls_len = map.next_value::<&RawValue>()?.get().len() as u64,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Message::Object { content, tool_calls_len })
            }
            ignore_others!(Message::Other);
            ignore_strings!(Message::Other);
            ignore_seqs!(Message::Other);
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Content;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("message content")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Content, E> {
                Ok(Content { text_bytes: s.len() as u64, ..Content::default() })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content, A::Error> {
                let mut out = Content::default();
                while let Some(part) = seq.next_element::<Part>()? {
                    match part.kind {
                        PartKind::Image => {
                            out.caps.insert(Capability::ImageInput);
                            out.fixed += TOKENS_PER_IMAGE;
                        }
                        PartKind::File => {
                            out.caps.insert(Capability::FileInput);
                            out.fixed += TOKENS_PER_FILE;
                        }
                        PartKind::Audio => {
                            out.caps.insert(Capability::AudioInput);
                            out.fixed += TOKENS_PER_AUDIO;
                        }
                        PartKind::Video => {
                            out.caps.insert(Capability::VideoInput);
                            out.fixed += TOKENS_PER_VIDEO;
                        }
                        PartKind::Other => out.text_bytes += part.text_bytes,
                    }
                }
                Ok(out)
            }
            ignore_others!(Content::default());
            ignore_maps!(Content::default());
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Copy, Default)]
enum PartKind {
    Image,
    File,
    Audio,
    Video,
    /// Text, or anything the router does not know: its `text`, if any, is counted.
    #[default]
    Other,
}

impl<'de> Deserialize<'de> for PartKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PartKind;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a content part type")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<PartKind, E> {
                Ok(match s {
                    "image_url" => PartKind::Image,
                    "file" => PartKind::File,
                    "input_audio" => PartKind::Audio,
                    "video_url" | "input_video" => PartKind::Video,
                    _ => PartKind::Other,
                })
            }
            ignore_others!(PartKind::Other);
            ignore_seqs!(PartKind::Other);
            ignore_maps!(PartKind::Other);
        }
        d.deserialize_any(V)
    }
}

/// The UTF-8 length of a string value; zero for anything else.
struct TextLen(u64);

impl<'de> Deserialize<'de> for TextLen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TextLen;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("text")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<TextLen, E> {
                Ok(TextLen(s.len() as u64))
            }
            ignore_others!(TextLen(0));
            ignore_seqs!(TextLen(0));
            ignore_maps!(TextLen(0));
        }
        d.deserialize_any(V)
    }
}

/// One content part: its type and the length of its `text`.
#[derive(Default)]
struct Part {
    kind: PartKind,
    text_bytes: u64,
}

impl<'de> Deserialize<'de> for Part {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Part;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a content part")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Part, A::Error> {
                let mut part = Part::default();
                while let Some(key) = map.next_key::<Str<'de>>()? {
                    match key.as_str() {
                        "type" => part.kind = map.next_value()?,
                        "text" => part.text_bytes = map.next_value::<TextLen>()?.0,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(part)
            }
            ignore_others!(Part::default());
            ignore_strings!(Part::default());
            ignore_seqs!(Part::default());
        }
        d.deserialize_any(V)
    }
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
