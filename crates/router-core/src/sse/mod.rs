//! Server-sent events and chat answers as bytes: the line-level helpers, and the
//! one pass over a stream ([`StreamScan`]) that judges its head, counts error events and
//! names the model that answered, without buffering whole events or parsing answers
//! into trees.
//!
//! Read in this order: `json` (a cursor over JSON bytes, no tree), `line` (lines,
//! payloads, error chunks), `splice` (setting `model` in an answer's bytes), `scan` (the
//! one pass over a stream), `substance` (what an answer carries: empty or not),
//! `trailer` (what rides on the final chunk).

mod answer;
mod json;
mod line;
mod scan;
mod splice;
mod substance;
mod trailer;

pub use answer::{Answer, Unreadable, json_string};
pub use line::{LineSplitter, data_payload, error_chunk, error_in_payload};
pub use scan::{Event, LineTooLong, StreamScan};
pub use substance::Substance;
pub use trailer::{insert_before_done, member_chunk};
