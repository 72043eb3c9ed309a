//! The catalog entry itself: what the router knows about one model, and what it reads
//! from it (capabilities, provider, embedding family).

use super::caps::{CapSet, Capability};
use super::id::ModelId;
use super::pricing::Pricing;
use super::provider::Provenance;
use super::raw::RawEntry;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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

/// The output modality of an embedding model.
pub const EMBEDDINGS_MODALITY: &str = "embeddings";

/// The provider name shown for OpenRouter's own models.
pub const OPENROUTER_PROVIDER: &str = "openrouter";

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
