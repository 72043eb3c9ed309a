//! Anthropic's Messages API: requests to chat, chat answers and streams back to Messages.
//!
//! - [`request`]: a Messages body → a chat-completions body ([`to_chat`]), with the model
//!   id rule (Claude ids served from the free pool, or refused by a setting) and server
//!   tools dropped or refused.
//! - [`answer`]: a whole chat answer → a Messages answer.
//! - [`stream`]: chat SSE chunks → Anthropic's event stream, one output per input chunk.
//! - [`error`]: every error in Anthropic's shape, and its type from an HTTP status.
//! - [`ids`]: `msg_…` and `toolu_…` ids made from the upstream's.

pub mod answer;
mod blocks;
pub mod error;
pub mod ids;
pub mod request;
mod session;
pub mod stream;

pub use answer::{message_json, to_message};
pub use error::{error_body, error_type_for_status};
pub use request::{Options, TranslateError, Translated, to_chat};
pub use stream::{MessageStream, whole_as_events};
