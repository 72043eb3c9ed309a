//! What the chat reading yields: a whole answer, its tool calls and token counts, the
//! steps of a stream, and why an answer could not be read.

/// A whole chat-completions answer, as far as a dialect needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// The upstream's `id` (`gen-…`, `chatcmpl-…`); empty when it sent none.
    pub id: String,
    /// The model that answered (the router has set it to the exposed id).
    pub model: String,
    /// Unix seconds; 0 when absent.
    pub created: u64,
    /// The assistant's text, `None` when it wrote none.
    pub text: Option<String>,
    /// The model's reasoning (`reasoning` or `reasoning_content`).
    pub reasoning: Option<String>,
    /// A refusal the model gave instead of content.
    pub refusal: Option<String>,
    /// The tool calls, in order.
    pub tool_calls: Vec<ToolCall>,
    /// `stop`, `length`, `tool_calls`, `content_filter`, … as the upstream wrote it.
    pub finish_reason: Option<String>,
    /// The upstream's own token counts, when it sent them.
    pub usage: Option<Usage>,
    /// The stop sequence that ended the answer, when the upstream says which (vLLM and
    /// SGLang put it in the choice's `stop_reason`).
    pub stop_sequence: Option<String>,
}

/// One tool call of an answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolCall {
    /// The call's id; empty when the upstream sent none (a dialect makes one).
    pub id: String,
    /// The function's name.
    pub name: String,
    /// The arguments as the model wrote them: JSON text, perhaps not valid.
    pub arguments: String,
}

/// Token counts (`usage`), absent fields as 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// `prompt_tokens_details.cached_tokens`.
    pub cached_tokens: u64,
    /// `completion_tokens_details.reasoning_tokens`.
    pub reasoning_tokens: u64,
}

/// An error object (`{"error":{"code","message","metadata"}}`), in a body or a chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatError {
    /// The numeric `code` (an HTTP status in OpenRouter's shape), when it is a number.
    pub status: Option<u16>,
    /// `metadata.error_type` (the router's own cases), else a textual `code`, else `type`.
    pub kind: Option<String>,
    pub message: String,
}

/// One step of a streamed answer, in the order the upstream sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    /// The answer's identity, once, from the first chunk that carries it.
    Meta { id: String, model: String, created: u64 },
    /// A fragment of the assistant's text.
    Text(String),
    /// A fragment of the reasoning (`reasoning` or `reasoning_content`).
    Reasoning(String),
    /// A fragment of a refusal.
    Refusal(String),
    /// A tool call begins. `index` counts calls in order of appearance from 0 (not the
    /// upstream's `index`, which some providers repeat for every call).
    ToolCallStart { index: usize, id: String, name: String },
    /// A fragment of tool call `index`'s arguments.
    ToolCallArguments { index: usize, fragment: String },
    /// The choice's `finish_reason`, once.
    Finish(String),
    /// Token counts (usually on the last chunk).
    Usage(Usage),
    /// An error chunk (`{"error":{…}}`): the generation failed after the stream began.
    Error(ChatError),
    /// `data: [DONE]`.
    Done,
}

/// Why a whole answer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the answer is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("the answer is not a JSON object")]
    NotObject,
    #[error("the answer is an error: {}", .0.message)]
    Upstream(ChatError),
}
