//! What a request needs from a model, what it asked to be routed to, and why a body is
//! refused: the vocabulary the rest of the request module produces.

use crate::model::{CapSet, Capability, ModelId};

/// The model id that means "route among the free models", as clients send it and as
/// `/models` lists it.
pub const ROUTER_MODEL_ID: &str = "openrouter/free";

/// The model names that mean "route among the free models".
pub const ROUTER_ALIASES: [&str; 2] = [ROUTER_MODEL_ID, "free"];

/// The longest model id the router accepts (in `model` and each `models` item), in bytes.
/// Real ids are under 100 bytes; anything the router keeps (the decision log, events,
/// reports) holds ids, so a client cannot make it keep megabytes.
pub const MAX_MODEL_ID_BYTES: usize = 256;

/// The most ids a `models` list may hold (OpenRouter's fallback lists are a handful).
pub const MAX_MODELS: usize = 64;

/// The longest session key (`x-session-id`, `session_id` or `user`), in bytes.
pub const MAX_SESSION_KEY_BYTES: usize = 256;

/// Why a body whose members' places could not be found is refused.
pub(super) const LOST: &str = "could not locate a member";

/// Why a request body was refused before any routing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body is not JSON; the parser's message.
    #[error("request body is not valid json: {0}")]
    Json(String),
    /// The body is JSON but not an object.
    #[error("request body must be a json object")]
    NotAnObject,
    /// `messages` is missing, not an array, or empty.
    #[error("`messages` is required and must be a non-empty array")]
    NoMessages,
    /// The message at this index is not an object.
    #[error("`messages[{0}]` must be an object")]
    BadMessage(usize),
    /// `model` is present but not a string.
    #[error("`model` must be a string")]
    BadModel,
    /// `models` is present but not an array of strings.
    #[error("`models` must be an array of model id strings")]
    BadModels,
    /// A string the router keeps is longer than its limit.
    #[error("`{field}` is longer than {limit} bytes")]
    TooLong {
        /// The field (or header) name.
        field: &'static str,
        /// The limit, in bytes.
        limit: usize,
    },
    /// `models` has more ids than the router accepts.
    #[error("`models` may hold at most {MAX_MODELS} ids")]
    TooManyModels,
    /// Another field the router reads has the wrong type.
    #[error("`{field}` must be {expected}")]
    BadField {
        /// The field's name.
        field: &'static str,
        /// What it must be, in words (`a boolean`, ...).
        expected: &'static str,
    },
    /// The request asks for a feature that would be billed (web search); the message
    /// says which.
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
    /// The capabilities the request uses (tools, image input, ...).
    pub caps: CapSet,
    /// Estimated prompt tokens (see the estimate in `docs/architecture.md`): UTF-8 bytes of all
    /// text / 4, rounded up, plus fixed costs per message and per media part.
    pub prompt_tokens: u64,
    /// `max_completion_tokens`, else `max_tokens`.
    pub max_output_tokens: Option<u64>,
}

impl Requirements {
    /// Context a model needs: the prompt estimate plus the requested output. None for
    /// embeddings: an embedding model's context bounds each input, not the batch whose
    /// tokens `prompt_tokens` counts (for the token budgets).
    pub fn context_needed(&self) -> u64 {
        if self.is_embeddings() {
            return 0;
        }
        self.prompt_tokens.saturating_add(self.max_output_tokens.unwrap_or(0))
    }

    /// An embeddings request's: it asks for vectors, no output.
    fn is_embeddings(&self) -> bool {
        self.caps.contains(Capability::EmbeddingsOutput)
    }

    /// Human-readable list, e.g. `["text output", "tools", "context >= 1200 tokens"]`.
    pub fn labels(&self) -> Vec<String> {
        let mut out: Vec<String> = self.caps.iter().map(|c| c.label().to_owned()).collect();
        if !self.is_embeddings() {
            out.push(format!("context >= {} tokens", self.context_needed()));
        }
        if let Some(n) = self.max_output_tokens.filter(|_| !self.is_embeddings()) {
            out.push(format!("max completion >= {n} tokens"));
        }
        out
    }
}
