//! OpenAI's Responses API (stateless): requests to chat, chat answers and streams back to Responses.
//!
//! Read in this order: `error` (OpenAI's error shape), `input` (items to messages),
//! `request` (the whole request to a chat body), `output` (the response object and its
//! items, for a whole answer), `events` (a chat stream as the Responses event stream).

mod error;
mod events;
mod input;
mod output;
mod request;

pub use error::{InvalidRequest, error_body, error_type, from_openrouter};
pub use events::EventWriter;
pub use output::{ResponseMeta, answer_to_response, echo_members, response_json};
pub use request::{DEFAULT_MODEL, DEFAULT_REFUSE_UNSERVED_TOOLS, ToolPolicy, Translated, to_chat};

#[cfg(test)]
mod tests;
