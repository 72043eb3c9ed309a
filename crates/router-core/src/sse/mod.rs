//! Server-sent events and chat answers as bytes: the one reading of an answer
//! ([`Answer`]), the line-level helpers, and the one pass over a stream ([`StreamScan`])
//! that judges its head, counts error events and names the model that answered, without
//! buffering whole events or parsing answers into trees.
//!
//! Read in this order (each uses only those before it): `json` (a checking cursor over
//! JSON bytes), `spans` (where a whole answer's members are, for the dialects),
//! `substance` (what an answer's choices carry: empty or not), `answer` (the one reading
//! of a whole answer or a chunk's payload), `line` (lines, payloads, error chunks),
//! `splice` (setting a chunk's `model` by splicing bytes), `scan` (the one pass over a
//! stream), `trailer` (what rides on the final chunk), `usage` (what an answer says it
//! spent).

pub mod json;
mod spans;
mod substance;

mod answer;

mod line;
mod splice;

mod scan;
mod trailer;
mod usage;

pub use answer::{Answer, Unreadable, json_string};
pub use line::{LineSplitter, data_payload, error_chunk, error_in_payload};
pub use scan::{Event, LineTooLong, StreamScan};
pub use spans::{AnswerSpans, Span};
pub use substance::Substance;
pub use trailer::{insert_before_done, member_chunk};
pub use usage::{MAX_USAGE_LINE, usage_total, watch_usage};
