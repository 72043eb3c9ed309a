//! Domain types for models: ids, capabilities, prices, and the catalog entry itself.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A model id as OpenRouter spells it, e.g. `meta-llama/llama-3.3-70b-instruct:free`.
/// Cheap to clone: ids are shared between the catalog, decisions and the health state.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ModelId(Arc<str>);

impl ModelId {
    /// An id from its text, taken as given (no check of its form).
    pub fn new(id: &str) -> Self {
        ModelId(Arc::from(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A free variant by name (`:free` suffix). Only one of the signals of free-ness.
    pub fn is_free_variant(&self) -> bool {
        self.0.ends_with(":free")
    }
}

impl fmt::Debug for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for ModelId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ModelId {
    fn from(s: &str) -> Self {
        ModelId::new(s)
    }
}

/// One thing a request can need from a model. Each maps to a catalog signal
/// (an input or output modality, or a supported parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Capability {
    /// Produces text (`output_modalities` has `text`).
    TextOutput,
    /// Reads images in messages (`input_modalities` has `image`).
    ImageInput,
    /// Reads files such as PDFs in messages (`input_modalities` has `file`).
    FileInput,
    /// Reads audio in messages (`input_modalities` has `audio`).
    AudioInput,
    /// Reads video in messages (`input_modalities` has `video`).
    VideoInput,
    /// Produces images (`output_modalities` has `image`).
    ImageOutput,
    /// Produces audio (`output_modalities` has `audio`).
    AudioOutput,
    /// Takes `tools` (function calling).
    Tools,
    /// Takes `tool_choice`.
    ToolChoice,
    /// `response_format: {type: json_schema}`.
    StructuredOutputs,
    /// `response_format: {type: json_object}`: `response_format` or `structured_outputs`.
    JsonMode,
    /// Takes `reasoning` or `include_reasoning`.
    Reasoning,
    /// Takes `logprobs`.
    Logprobs,
    /// Takes `top_logprobs`.
    TopLogprobs,
    /// Produces embedding vectors (`output_modalities` has `embeddings`): served only
    /// on `/embeddings`, never to a chat request (which needs [`Capability::TextOutput`]).
    EmbeddingsOutput,
}

impl Capability {
    /// Every capability, in declaration (and bit) order; the order explanations list them in.
    pub const ALL: [Capability; 15] = [
        Capability::TextOutput,
        Capability::ImageInput,
        Capability::FileInput,
        Capability::AudioInput,
        Capability::VideoInput,
        Capability::ImageOutput,
        Capability::AudioOutput,
        Capability::Tools,
        Capability::ToolChoice,
        Capability::StructuredOutputs,
        Capability::JsonMode,
        Capability::Reasoning,
        Capability::Logprobs,
        Capability::TopLogprobs,
        Capability::EmbeddingsOutput,
    ];

    /// The short label used in explanations and error messages.
    pub fn label(self) -> &'static str {
        match self {
            Capability::TextOutput => "text output",
            Capability::ImageInput => "image input",
            Capability::FileInput => "file input",
            Capability::AudioInput => "audio input",
            Capability::VideoInput => "video input",
            Capability::ImageOutput => "image output",
            Capability::AudioOutput => "audio output",
            Capability::Tools => "tools",
            Capability::ToolChoice => "tool_choice",
            Capability::StructuredOutputs => "structured outputs",
            Capability::JsonMode => "json mode",
            Capability::Reasoning => "reasoning",
            Capability::Logprobs => "logprobs",
            Capability::TopLogprobs => "top_logprobs",
            Capability::EmbeddingsOutput => "embeddings output",
        }
    }

    const fn bit(self) -> u16 {
        1 << self as u8
    }
}

/// A set of [`Capability`] as a bit set, so that "what is missing" is one AND per model.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CapSet(u16);

impl CapSet {
    /// The set with no members.
    pub const EMPTY: CapSet = CapSet(0);

    /// This set plus `c`; usable in `const` items.
    pub const fn with(self, c: Capability) -> CapSet {
        CapSet(self.0 | c.bit())
    }

    /// Adds `c` to the set.
    pub fn insert(&mut self, c: Capability) {
        self.0 |= c.bit();
    }

    /// Whether `c` is a member.
    pub const fn contains(self, c: Capability) -> bool {
        self.0 & c.bit() != 0
    }

    /// Members of either set.
    #[must_use]
    pub const fn union(self, other: CapSet) -> CapSet {
        CapSet(self.0 | other.0)
    }

    /// Members of `self` that `other` lacks.
    pub const fn missing_from(self, other: CapSet) -> CapSet {
        CapSet(self.0 & !other.0)
    }

    /// Whether the set has no members.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members, in [`Capability::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL.into_iter().filter(move |c| self.contains(*c))
    }

    /// Labels joined with ` + `, e.g. `tools + image input`.
    pub fn describe(self) -> String {
        self.iter().map(Capability::label).collect::<Vec<_>>().join(" + ")
    }
}

impl fmt::Debug for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<Capability> for CapSet {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        let mut s = CapSet::EMPTY;
        for c in iter {
            s.insert(c);
        }
        s
    }
}

/// Prices as the catalog serves them: USD per unit, as decimal strings (`"0"`,
/// `"0.0000003"`), plus the odd structured entry (`overrides` lists). Kept verbatim so
/// that nothing is lost in a round trip and zero is judged on the exact text.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pricing(pub BTreeMap<String, serde_json::Value>);

impl Pricing {
    /// Keys whose price is not exactly zero (or cannot be read as a number).
    pub fn priced_keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter(|(_, v)| !price_is_zero(v)).map(|(k, _)| k.as_str())
    }

    /// Every listed price is exactly zero, and there is at least one: an entry with no
    /// prices is unknown, and unknown is not free.
    pub fn all_zero(&self) -> bool {
        !self.0.is_empty() && self.priced_keys().next().is_none()
    }
}

/// Whether a price value is exactly zero. Anything that is not a readable number is
/// treated as non-zero: when unsure, a model is not free.
fn price_is_zero(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => decimal_is_zero(s) == Some(true),
        Value::Number(n) => decimal_is_zero(&n.to_string()) == Some(true),
        // Structured prices (e.g. `overrides: [{min_prompt_tokens, prompt, completion}]`):
        // every price inside must be zero; thresholds are not prices.
        Value::Array(items) => items.iter().all(price_is_zero),
        Value::Object(map) => {
            map.iter().filter(|(k, _)| !(k.starts_with("min_") || k.starts_with("max_"))).all(|(_, v)| price_is_zero(v))
        }
        Value::Null | Value::Bool(_) => false,
    }
}

/// Reads a decimal literal exactly: `Some(true)` when every digit of its mantissa is
/// zero, `Some(false)` for any other number, `None` when it is not a decimal literal.
/// No float conversion, so `"0.0000000000000000001"` is never mistaken for zero.
pub fn decimal_is_zero(s: &str) -> Option<bool> {
    let s = s.trim();
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    if let Some(e) = exponent {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    let mut digits = 0;
    let mut dots = 0;
    let mut zero = true;
    for b in mantissa.bytes() {
        match b {
            b'0' => digits += 1,
            b'1'..=b'9' => {
                digits += 1;
                zero = false;
            }
            b'.' => dots += 1,
            _ => return None,
        }
    }
    (digits > 0 && dots <= 1).then_some(zero)
}

/// A catalog entry: what the router knows about one model. Field names follow
/// OpenRouter's `/models` schema where one exists; `None` means "unknown".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The id clients name the model by (for a declared provider, prefixed with its name).
    pub id: ModelId,
    /// The display name; empty when the catalog gives none.
    #[serde(default)]
    pub name: String,
    /// When the model was added to the catalog, in Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
    /// The context window in tokens, prompt and completion together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u64>,
    /// `top_provider.max_completion_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    /// `architecture.input_modalities`: what the model reads (`text`, `image`, `file`, ...).
    #[serde(default)]
    pub input_modalities: Vec<String>,
    /// `architecture.output_modalities`: what the model produces (`text`, `image`, ...).
    #[serde(default)]
    pub output_modalities: Vec<String>,
    /// The request parameters the model accepts (`tools`, `response_format`, ...).
    #[serde(default)]
    pub supported_parameters: Vec<String>,
    /// The prices as served; empty when unknown, which is not free.
    #[serde(default)]
    pub pricing: Pricing,
    /// `architecture.tokenizer`; `Router` marks a meta model such as `openrouter/free`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<String>,
    /// `YYYY-MM-DD`, as served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<String>,
    /// The whole entry as upstream served it (every field, unknown ones included), for
    /// passing it on untouched; `None` for an entry built here (tests, the embedded
    /// catalog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawEntry>,
    /// The declared provider serving this model (a free tier or a local server); `None`
    /// for OpenRouter's own catalog, whose free rule is the `:free` one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provenance>,
    /// An embedding model's family (the vector space its answers live in), when the
    /// operator named one; `None` is the model's own id (see [`ModelInfo::family`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Arc<str>>,
    /// What an embedding endpoint needs beyond OpenAI's API (a batch limit, a default
    /// `input_type`), as the operator declared it.
    #[serde(default, skip_serializing_if = "EmbeddingQuirks::is_none")]
    pub embedding: EmbeddingQuirks,
}

/// An embedding endpoint's differences from OpenAI's API, declared per model.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingQuirks {
    /// The most inputs one upstream call may hold (Gemini's OpenAI-compatible endpoint
    /// refuses more than 100); a larger request is sent in chunks to this one model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch_inputs: Option<u32>,
    /// The `input_type` added to a body that has none (NVIDIA's retrieval models need
    /// `query` or `passage`, which OpenAI's clients never send).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_type: Option<Arc<str>>,
}

impl EmbeddingQuirks {
    /// Nothing declared.
    pub fn is_none(&self) -> bool {
        self.max_batch_inputs.is_none() && self.input_type.is_none()
    }
}

/// How the operator declared a provider's account: it cannot be billed (a free tier) or
/// it is their own server. `Billed` is never forwarded to; it exists so that the free
/// rule can say so rather than trust every adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Billing {
    /// An account on the provider's free tier, which cannot be billed.
    FreeTier,
    /// The operator's own server.
    Local,
    /// An account that can be billed: declared only to be refused.
    Billed,
}

impl Billing {
    /// The name as written in configuration and output (`free_tier`, `local`, `billed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Billing::FreeTier => "free_tier",
            Billing::Local => "local",
            Billing::Billed => "billed",
        }
    }
}

/// Where a model of a declared provider comes from: the provider's name (the exposed
/// id's prefix), the id its server knows it by, and the provider's declared billing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Provenance {
    /// The provider's name, which prefixes the exposed id.
    pub provider: Arc<str>,
    /// The id the provider's server knows the model by.
    pub upstream_id: Arc<str>,
    /// How the operator declared the provider's account.
    pub billing: Billing,
}

/// The output modality of an embedding model.
pub const EMBEDDINGS_MODALITY: &str = "embeddings";

/// The provider name shown for OpenRouter's own models.
pub const OPENROUTER_PROVIDER: &str = "openrouter";

/// One upstream catalog entry as served: compact JSON text, shared, compared by text.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawEntry(Arc<serde_json::value::RawValue>);

impl RawEntry {
    /// The entry's compact JSON text.
    pub fn from_value(entry: &serde_json::Value) -> Option<RawEntry> {
        serde_json::value::to_raw_value(entry).ok().map(|b| RawEntry(Arc::from(b)))
    }

    /// The entry's JSON text as served, whitespace and member order included.
    pub fn from_raw(entry: &serde_json::value::RawValue) -> RawEntry {
        RawEntry(Arc::from(entry.to_owned()))
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The JSON value, for writing it out with other values.
    pub fn as_raw(&self) -> &serde_json::value::RawValue {
        &self.0
    }
}

impl PartialEq for RawEntry {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl ModelInfo {
    /// A model with just an id and otherwise unknown properties; a convenient start
    /// for tests and for building entries field by field.
    pub fn new(id: &str) -> Self {
        ModelInfo {
            id: ModelId::new(id),
            name: String::new(),
            created: None,
            context_length: None,
            max_completion_tokens: None,
            input_modalities: Vec::new(),
            output_modalities: Vec::new(),
            supported_parameters: Vec::new(),
            pricing: Pricing::default(),
            tokenizer: None,
            expiration_date: None,
            raw: None,
            provider: None,
            family: None,
            embedding: EmbeddingQuirks::default(),
        }
    }

    /// Whether the model produces embeddings (`output_modalities` has `embeddings`).
    pub fn is_embedding(&self) -> bool {
        self.output_modalities.iter().any(|m| m == EMBEDDINGS_MODALITY)
    }

    /// The embedding family: the declared one, else the model's own id. Two endpoints
    /// of one family answer with vectors of one space; no other two do.
    pub fn family(&self) -> &str {
        self.family.as_deref().unwrap_or(self.id.as_str())
    }

    /// The provider's name: a declared provider's, else OpenRouter's.
    pub fn provider_name(&self) -> &str {
        self.provider.as_ref().map_or(OPENROUTER_PROVIDER, |p| &p.provider)
    }

    /// The id to send upstream: a declared provider's own id, else the id itself.
    pub fn upstream_id(&self) -> &str {
        self.provider.as_ref().map_or(self.id.as_str(), |p| &p.upstream_id)
    }

    /// A router or meta model (`openrouter/free`, `openrouter/auto`, ...): never a
    /// target, whatever its price says.
    pub fn is_router(&self) -> bool {
        self.tokenizer.as_deref() == Some("Router") || self.id.as_str().starts_with("openrouter/")
    }

    /// Whether `p` is among the model's `supported_parameters`.
    pub fn supports_parameter(&self, p: &str) -> bool {
        self.supported_parameters.iter().any(|s| s == p)
    }

    /// The capabilities this model's catalog entry advertises.
    pub fn capabilities(&self) -> CapSet {
        let input = |m: &str| self.input_modalities.iter().any(|s| s == m);
        let output = |m: &str| self.output_modalities.iter().any(|s| s == m);
        let param = |p: &str| self.supports_parameter(p);
        let mut caps = CapSet::EMPTY;
        let mut set = |c: Capability, yes: bool| {
            if yes {
                caps.insert(c);
            }
        };
        set(Capability::TextOutput, output("text"));
        set(Capability::ImageInput, input("image"));
        set(Capability::FileInput, input("file"));
        set(Capability::AudioInput, input("audio"));
        set(Capability::VideoInput, input("video"));
        set(Capability::ImageOutput, output("image"));
        set(Capability::AudioOutput, output("audio"));
        set(Capability::Tools, param("tools"));
        set(Capability::ToolChoice, param("tool_choice"));
        set(Capability::StructuredOutputs, param("structured_outputs"));
        set(Capability::JsonMode, param("response_format") || param("structured_outputs"));
        set(Capability::Reasoning, param("reasoning") || param("include_reasoning"));
        set(Capability::Logprobs, param("logprobs"));
        set(Capability::TopLogprobs, param("top_logprobs"));
        set(Capability::EmbeddingsOutput, output(EMBEDDINGS_MODALITY));
        caps
    }
}

/// A model in OpenRouter's `/models` entry shape (every member of its `Model` schema),
/// built from what the router knows, for a model without its upstream entry (the
/// embedded catalog, a declared provider's models). It is the shape of the router's own
/// `/models`, so it lives with the model rather than in an adapter. Unknown values are `null` where the schema allows it; an unknown
/// `created` (a required integer) is `0`.
pub fn to_openrouter_json(m: &ModelInfo) -> serde_json::Value {
    let modality = (!m.input_modalities.is_empty() || !m.output_modalities.is_empty())
        .then(|| format!("{}->{}", m.input_modalities.join("+"), m.output_modalities.join("+")));
    serde_json::json!({
        "id": m.id.as_str(),
        "canonical_slug": m.id.as_str(),
        "hugging_face_id": null,
        "name": m.name,
        "created": m.created.unwrap_or(0),
        "description": "",
        "context_length": m.context_length,
        "architecture": {
            "modality": modality,
            "input_modalities": m.input_modalities,
            "output_modalities": m.output_modalities,
            "tokenizer": m.tokenizer,
            "instruct_type": null,
        },
        "pricing": m.pricing,
        "top_provider": {
            "context_length": m.context_length,
            "max_completion_tokens": m.max_completion_tokens,
            "is_moderated": false,
        },
        "per_request_limits": null,
        "supported_parameters": m.supported_parameters,
        "default_parameters": {},
        "supported_voices": null,
        "knowledge_cutoff": null,
        "expiration_date": m.expiration_date,
        "links": {"details": format!("/api/v1/models/{}/endpoints", m.id)},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(price: serde_json::Value, zero: bool) {
        assert_eq!(price_is_zero(&price), zero, "{price}");
    }

    #[test]
    fn zero_is_never_tiny() {
        check(json!("0"), true);
        check(json!("0.0"), true);
        check(json!("-0"), true);
        check(json!("0e-5"), true);
        check(json!(0), true);
        check(json!(0.0), true);
        check(json!("0.0000003"), false);
        check(json!("0.0000000000000000000000001"), false);
        check(json!("1e-30"), false);
        check(json!("-1"), false);
        check(json!(""), false);
        check(json!("free"), false);
        check(json!("0.0.0"), false);
        check(json!(null), false);
        check(json!([]), true);
        check(json!([{"min_prompt_tokens": 128000, "prompt": "0", "completion": "0"}]), true);
        check(json!([{"min_prompt_tokens": 128000, "prompt": "0.000001", "completion": "0"}]), false);
    }

    #[test]
    fn capabilities_from_catalog_signals() {
        let mut m = ModelInfo::new("a/b:free");
        m.input_modalities = vec!["text".into(), "image".into()];
        m.output_modalities = vec!["text".into()];
        m.supported_parameters = vec!["tools".into(), "response_format".into(), "include_reasoning".into()];
        let caps = m.capabilities();
        assert_eq!(caps.describe(), "text output + image input + tools + json mode + reasoning");
        assert!(!caps.contains(Capability::StructuredOutputs));
    }

    #[test]
    fn a_built_entry_has_openrouter_s_members() {
        let mut m = ModelInfo::new("acme/bare");
        assert_eq!(to_openrouter_json(&m)["architecture"]["modality"], serde_json::Value::Null);
        m.input_modalities = vec!["text".into(), "image".into()];
        m.output_modalities = vec!["text".into()];
        m.max_completion_tokens = Some(4096);
        let v = to_openrouter_json(&m);
        assert_eq!(v["architecture"]["modality"], json!("text+image->text"));
        assert_eq!(v["top_provider"]["max_completion_tokens"], json!(4096));
        assert_eq!(v["created"], json!(0), "a required integer, 0 when unknown");
        assert_eq!(v["links"]["details"], json!("/api/v1/models/acme/bare/endpoints"));
    }
}
