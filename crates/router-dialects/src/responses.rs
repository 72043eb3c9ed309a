//! OpenAI's Responses API (stateless): requests to chat, chat answers and streams back to Responses.
//!
//! Read in this order: `error` (OpenAI's error shape), `input` (items to messages),
//! `request` (the whole request to a chat body).

mod error;
mod input;
mod request;

pub use error::{InvalidRequest, error_body, error_type, from_openrouter};
pub use request::{DEFAULT_MODEL, DEFAULT_TOOL_POLICY, ToolPolicy, Translated, to_chat};

#[cfg(test)]
mod tests;
