//! Pure translation between the wire dialects clients speak and the chat-completions
//! dialect the router routes: Anthropic's Messages API and OpenAI's Responses API. No IO:
//! bytes in, bytes out; the server calls it between the wire and the router.
//!
//! - [`chat`]: the one reading of a chat-completions answer and of its SSE chunks, shared
//!   by both dialects.
//! - [`anthropic`]: `/v1/messages` requests to chat, answers and streams back.
//! - [`responses`]: `/v1/responses` requests to chat, answers and streams back.

pub mod anthropic;
mod call_ids;
pub mod chat;
mod chat_part;
mod json_out;
pub mod responses;
pub mod tree;
