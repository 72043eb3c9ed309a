//! The one reading of a chat-completions answer (JSON) and of its stream (SSE chunks), shared by every dialect.
//!
//! Both dialects read what the router hands back through this module, so a quirk of an
//! upstream (`reasoning` or `reasoning_content`, content as a string or as parts, a tool
//! call's id repeated on every fragment, an error chunk inside a 200) is handled once.
//!
//! - [`read_answer`]: a whole answer → [`Answer`] ([`read_committed`]: in place, from where
//!   the router's reading found its members).
//! - [`ChunkReader`]: SSE bytes split anywhere → [`Delta`]s, in order.

mod answer;
mod chunk;
mod fields;
mod stream;
mod types;
mod wire;

pub use answer::{read_answer, read_committed};
pub use stream::{ChunkReader, MAX_EVENT_BYTES};
pub use types::{Answer, ChatError, Delta, ReadError, ToolCall, Usage};
