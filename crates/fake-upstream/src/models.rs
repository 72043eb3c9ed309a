//! The fake catalog: model entries in OpenRouter's `/models` shape, written from the
//! documented schema (not copied from real snapshots).

use serde_json::{Value, json};

/// One catalog entry. Build with [`FakeModel::free`] or [`FakeModel::paid`] and the
/// builder methods; [`models_json`] renders a list as OpenRouter's `/models` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeModel {
    pub id: String,
    pub context_length: u64,
    /// `architecture.input_modalities`, e.g. `["text", "image"]`.
    pub input_modalities: Vec<String>,
    pub supported_parameters: Vec<String>,
    /// `pricing.prompt` (and `pricing.completion`), as OpenRouter's decimal string.
    pub prompt_price: String,
    /// `YYYY-MM-DD`, the last day the free variant is served.
    pub expiration_date: Option<String>,
    pub max_completion_tokens: Option<u64>,
}

const BASE_PARAMS: &[&str] = &["max_tokens", "temperature", "top_p", "stop", "seed"];

impl FakeModel {
    /// A zero-priced text model with a 131,072-token context and the common sampling
    /// parameters. Pass the id with its `:free` suffix when the model should be free.
    pub fn free(id: &str) -> Self {
        FakeModel {
            id: id.to_owned(),
            context_length: 131_072,
            input_modalities: vec!["text".into()],
            supported_parameters: BASE_PARAMS.iter().map(|s| (*s).to_owned()).collect(),
            prompt_price: "0".into(),
            expiration_date: None,
            max_completion_tokens: None,
        }
    }

    /// A priced text model (`price` per prompt token, e.g. `"0.00000015"`).
    pub fn paid(id: &str, price: &str) -> Self {
        FakeModel { prompt_price: price.to_owned(), ..FakeModel::free(id) }
    }

    #[must_use]
    pub fn context(mut self, tokens: u64) -> Self {
        self.context_length = tokens;
        self
    }

    /// Accepts image input.
    #[must_use]
    pub fn vision(mut self) -> Self {
        if !self.input_modalities.iter().any(|m| m == "image") {
            self.input_modalities.push("image".into());
        }
        self
    }

    /// Supports `tools` and `tool_choice`.
    #[must_use]
    pub fn tools(self) -> Self {
        self.with_params(&["tools", "tool_choice"])
    }

    /// Supports `response_format` and `structured_outputs`.
    #[must_use]
    pub fn structured(self) -> Self {
        self.with_params(&["response_format", "structured_outputs"])
    }

    /// Supports reasoning (`reasoning`, `include_reasoning`).
    #[must_use]
    pub fn reasoning(self) -> Self {
        self.with_params(&["reasoning", "include_reasoning"])
    }

    /// Adds supported parameters (duplicates are skipped).
    #[must_use]
    pub fn with_params(mut self, params: &[&str]) -> Self {
        for p in params {
            if !self.supported_parameters.iter().any(|s| s == p) {
                self.supported_parameters.push((*p).to_owned());
            }
        }
        self
    }

    /// Replaces the supported parameters.
    #[must_use]
    pub fn params(mut self, params: &[&str]) -> Self {
        self.supported_parameters = params.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    #[must_use]
    pub fn modalities(mut self, input: &[&str]) -> Self {
        self.input_modalities = input.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    #[must_use]
    pub fn price(mut self, prompt: &str) -> Self {
        self.prompt_price = prompt.to_owned();
        self
    }

    #[must_use]
    pub fn expires(mut self, date: &str) -> Self {
        self.expiration_date = Some(date.to_owned());
        self
    }

    #[must_use]
    pub fn max_completion(mut self, tokens: u64) -> Self {
        self.max_completion_tokens = Some(tokens);
        self
    }

    /// The entry as OpenRouter's `/models` lists it.
    pub fn to_json(&self) -> Value {
        let router = self.id.starts_with("openrouter/");
        let tokenizer = if router { "Router" } else { "Other" };
        let modality = format!("{}->text", self.input_modalities.join("+"));
        let slug = self.id.strip_suffix(":free").unwrap_or(&self.id);
        json!({
            "id": self.id,
            "canonical_slug": slug,
            "hugging_face_id": "",
            "name": format!("Fake: {}", self.id),
            "created": 1_750_000_000u64,
            "description": format!("A fake model served by the test upstream ({})", self.id),
            "context_length": self.context_length,
            "architecture": {
                "modality": modality,
                "input_modalities": self.input_modalities,
                "output_modalities": ["text"],
                "tokenizer": tokenizer,
                "instruct_type": null,
            },
            "pricing": {"prompt": self.prompt_price, "completion": self.prompt_price},
            "top_provider": {
                "context_length": if router { Value::Null } else { json!(self.context_length) },
                "max_completion_tokens": self.max_completion_tokens,
                "is_moderated": false,
            },
            "per_request_limits": null,
            "supported_parameters": self.supported_parameters,
            "default_parameters": {},
            "supported_voices": null,
            "knowledge_cutoff": null,
            "expiration_date": self.expiration_date,
            "links": {"details": format!("/api/v1/models/{slug}/endpoints")},
        })
    }
}

/// The default catalog: five free text models (one with a small context), a free
/// vision + tools model, a free structured-outputs model, one paid model, one
/// zero-priced model that is not a `:free` variant, and `openrouter/free` itself.
pub fn default_models() -> Vec<FakeModel> {
    vec![
        FakeModel::free("meta-llama/llama-3.3-70b-instruct:free"),
        FakeModel::free("mistralai/mistral-small-3.2-24b-instruct:free").context(96_000).max_completion(8192),
        FakeModel::free("qwen/qwen3-coder:free").context(262_144).tools(),
        FakeModel::free("z-ai/glm-4.5-air:free").context(8192).reasoning(),
        FakeModel::free("google/gemma-3-27b-it:free").context(96_000).vision().tools(),
        FakeModel::free("deepseek/deepseek-chat-v3-0324:free").context(163_840).structured(),
        FakeModel::paid("openai/gpt-4o-mini", "0.00000015").vision().tools().structured(),
        FakeModel::free("nvidia/nemotron-nano-9b-v2").context(128_000),
        FakeModel::free("openrouter/free").context(200_000).vision().tools().structured().reasoning(),
    ]
}

/// OpenRouter's `/models` body for `models`: `{"data":[...]}`.
pub fn models_json(models: &[FakeModel]) -> Value {
    json!({ "data": models.iter().map(FakeModel::to_json).collect::<Vec<_>>() })
}

/// A plain OpenAI-compatible `/models` body (`{"object":"list","data":[{"id",...}]}`):
/// ids only, no prices, no capabilities, as Groq, Ollama or vLLM list them.
pub fn openai_models_json(ids: &[&str]) -> Value {
    let data: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "fake"}))
        .collect();
    json!({ "object": "list", "data": data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(model: &FakeModel, pointer: &str, expected: Value) {
        assert_eq!(model.to_json().pointer(pointer), Some(&expected), "{} at {pointer}", model.id);
    }

    #[test]
    fn renders_the_models_shape() {
        let vision = FakeModel::free("g/v:free").vision().tools().max_completion(100).expires("2026-01-01");
        check(&vision, "/architecture/input_modalities", json!(["text", "image"]));
        check(&vision, "/architecture/modality", json!("text+image->text"));
        check(&vision, "/architecture/tokenizer", json!("Other"));
        check(&vision, "/pricing/prompt", json!("0"));
        check(&vision, "/top_provider/max_completion_tokens", json!(100));
        check(&vision, "/expiration_date", json!("2026-01-01"));
        check(&vision, "/canonical_slug", json!("g/v"));
        let router = FakeModel::free("openrouter/free");
        check(&router, "/architecture/tokenizer", json!("Router"));
        check(&FakeModel::paid("a/b", "0.001"), "/pricing/completion", json!("0.001"));
    }

    #[test]
    fn default_catalog_has_each_kind() {
        let models = default_models();
        let free = models.iter().filter(|m| m.id.ends_with(":free") && m.prompt_price == "0").count();
        assert!(free >= 5, "{free} free models");
        assert!(models.iter().any(|m| m.prompt_price != "0"));
        assert!(models.iter().any(|m| m.id == "openrouter/free"));
        assert!(models.iter().any(|m| m.supported_parameters.iter().any(|p| p == "structured_outputs")));
        let body = models_json(&models);
        assert_eq!(body["data"].as_array().map(Vec::len), Some(models.len()));
    }
}
