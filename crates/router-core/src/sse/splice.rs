//! Setting a stream line's top-level `model`: a line that already names the model is
//! settled by one search; another is read once ([`Answer`]) and its member's value
//! spliced, every other byte as upstream sent it (nothing parsed into a tree).

use super::answer::{Answer, json_string};
use memchr::memmem;
use std::sync::LazyLock;

/// The searcher for the `"model"` key, built once for the process rather than per line.
static MODEL_KEY: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b"\"model\""));

/// `"model":"<id>"` as it appears in compact JSON. Found by the process's one searcher
/// for `"model"` and a comparison of what follows: building a searcher for each answer
/// or stream cost more than all the searches it served (about 9k instructions).
#[derive(Clone, Debug)]
pub(super) struct ModelMember {
    member: Vec<u8>,
}

impl ModelMember {
    pub(super) fn new(model: &str) -> Self {
        ModelMember { member: [b"\"model\":".as_slice(), &json_string(model)].concat() }
    }

    /// The id as a JSON string, quotes included.
    fn value(&self) -> &[u8] {
        &self.member[b"\"model\":".len()..]
    }

    /// Whether `json` already carries the member (`Some(true)`), carries some other
    /// `"model"` key (`Some(false)`) or none at all (`None`): one search either way.
    fn seen_in(&self, json: &[u8]) -> Option<bool> {
        let mut any = false;
        for at in MODEL_KEY.find_iter(json) {
            if json[at..].starts_with(&self.member) {
                return Some(true);
            }
            any = true;
        }
        any.then_some(false)
    }
}

/// `line` (an SSE line whose data `payload` lies inside it) with its top-level `model`
/// set to `expected`'s, or `None` when it already names it or names none. A line that
/// already carries `expected` is settled by one search.
pub(super) fn rewrite_model(line: &[u8], payload: &[u8], expected: &ModelMember) -> Option<Vec<u8>> {
    if expected.seen_in(payload) != Some(false) {
        return None;
    }
    let value = expected.value();
    let rewritten = Answer::read(payload).ok()?.model_set(payload, value, false)?;
    // `payload` lies inside `line`: the prefix and the line ending stay as they came.
    let start = payload.as_ptr() as usize - line.as_ptr() as usize;
    let mut out = Vec::with_capacity(line.len() + value.len());
    out.extend_from_slice(&line[..start]);
    out.extend_from_slice(&rewritten);
    out.extend_from_slice(&line[start + payload.len()..]);
    Some(out)
}
