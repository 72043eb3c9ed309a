//! What the chat reading yields: a whole answer, its tool calls and token counts, the
//! steps of a stream, and why an answer could not be read.

use std::borrow::Cow;

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

/// One step of a streamed answer, in the order the upstream sent it. Its text borrows
/// the chunk it was read from where it can (no copy for each fragment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta<'a> {
    /// The answer's identity, once, from the first chunk that carries it.
    Meta { id: Cow<'a, str>, model: Cow<'a, str>, created: u64 },
    /// A fragment of the assistant's text.
    Text(Cow<'a, str>),
    /// A fragment of the reasoning (`reasoning` or `reasoning_content`).
    Reasoning(Cow<'a, str>),
    /// A fragment of a refusal.
    Refusal(Cow<'a, str>),
    /// A tool call begins. `index` counts calls in order of appearance from 0 (not the
    /// upstream's `index`, which some providers repeat for every call).
    ToolCallStart { index: usize, id: Cow<'a, str>, name: Cow<'a, str> },
    /// A fragment of tool call `index`'s arguments.
    ToolCallArguments { index: usize, fragment: Cow<'a, str> },
    /// The choice's `finish_reason`, once.
    Finish(Cow<'a, str>),
    /// Token counts (usually on the last chunk).
    Usage(Usage),
    /// An error chunk (`{"error":{…}}`): the generation failed after the stream began.
    Error(ChatError),
    /// `data: [DONE]`.
    Done,
}

impl Delta<'_> {
    /// The same step, holding its text.
    pub fn into_owned(self) -> Delta<'static> {
        let own = |t: Cow<'_, str>| Cow::Owned(t.into_owned());
        match self {
            Delta::Meta { id, model, created } => Delta::Meta { id: own(id), model: own(model), created },
            Delta::Text(t) => Delta::Text(own(t)),
            Delta::Reasoning(t) => Delta::Reasoning(own(t)),
            Delta::Refusal(t) => Delta::Refusal(own(t)),
            Delta::ToolCallStart { index, id, name } => Delta::ToolCallStart { index, id: own(id), name: own(name) },
            Delta::ToolCallArguments { index, fragment } => Delta::ToolCallArguments { index, fragment: own(fragment) },
            Delta::Finish(t) => Delta::Finish(own(t)),
            Delta::Usage(u) => Delta::Usage(u),
            Delta::Error(e) => Delta::Error(e),
            Delta::Done => Delta::Done,
        }
    }
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
