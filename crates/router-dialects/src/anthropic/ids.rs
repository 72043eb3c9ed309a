//! `msg_…` ids made from the upstream's, and `toolu_…` ids in Anthropic's shape: a
//! tool result names its call by it.

use crate::call_ids;

/// The message id: `msg_` and the upstream's id (its safe characters), else `fallback`.
pub fn message_id(upstream: &str, fallback: &str) -> String {
    prefixed("msg_", upstream, fallback)
}

/// The id a message falls back on when the upstream gave none: the request's seed in
/// sixteen hexadecimal digits.
pub fn fallback_id(seed: u64) -> String {
    let mut id = Vec::with_capacity(16);
    crate::json_out::hex(&mut id, seed, 16);
    // Hexadecimal digits are ASCII.
    String::from_utf8(id).unwrap_or_default()
}

/// How long a `toolu_…` id the router makes is: Anthropic's length (`toolu_01` and 22
/// letters and digits).
pub const TOOL_USE_ID_LEN: usize = TOOL_USE_PREFIX.len() + call_ids::DIGITS;

const TOOL_USE_PREFIX: &str = "toolu_01";

/// A tool call's id: the upstream's when it is already Anthropic's (`toolu_…`); else one
/// the router makes (`call_ids`) from the message's id and the answer's own `salt` (its
/// fallback id, drawn from the request's seed), so that no id is the start of another.
pub fn tool_use_id(upstream: &str, message_id: &str, salt: &str, index: usize) -> String {
    if upstream.len() > "toolu_".len() && upstream.starts_with("toolu_") && upstream.bytes().all(safe) {
        return upstream.to_owned();
    }
    call_ids::made(TOOL_USE_PREFIX, &[message_id, salt], index, upstream)
}

fn prefixed(prefix: &str, upstream: &str, fallback: &str) -> String {
    // The usual case: an id of safe characters only, kept whole.
    if !upstream.is_empty() && upstream.bytes().all(safe) {
        let mut id = String::with_capacity(prefix.len() + upstream.len());
        id.push_str(prefix);
        id.push_str(upstream);
        return id;
    }
    let body: String = upstream.chars().filter(|c| c.is_ascii() && safe(*c as u8)).collect();
    let body =
        if body.is_empty() { fallback.chars().filter(|c| c.is_ascii() && safe(*c as u8)).collect() } else { body };
    format!("{prefix}{body}")
}

/// Characters Anthropic's ids use (and any client accepts in one).
fn safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_the_upstreams_and_fall_back() {
        assert_eq!(message_id("gen-17/x", "f"), "msg_gen-17x");
        assert_eq!(message_id("", "abc"), "msg_abc");
        assert_eq!(tool_use_id("toolu_01A", "msg_gen", "s", 0), "toolu_01A");
        assert_eq!(fallback_id(0xabc), "0000000000000abc");
    }

    #[test]
    fn tool_use_ids_have_anthropics_shape_and_none_starts_another() {
        let id = tool_use_id("call_0", "msg_gen", "s", 0);
        assert_eq!(id, tool_use_id("call_0", "msg_gen", "s", 0), "the same call, the same id");
        let mut ids = Vec::new();
        for message in ["msg_gen-1", "msg_gen-2"] {
            for (index, upstream) in ["call_0", "call_0_1", "", "", "functions.Bash:0", "toolu_"].iter().enumerate() {
                ids.push(tool_use_id(upstream, message, "s", index));
            }
        }
        ids.push(tool_use_id("call_0", "msg_gen-1", "t", 0));
        for (i, a) in ids.iter().enumerate() {
            assert!(a.starts_with("toolu_01") && a.len() == TOOL_USE_ID_LEN, "{a}");
            assert!(a.bytes().all(safe), "{a}");
            for b in &ids[i + 1..] {
                assert!(!a.starts_with(b.as_str()) && !b.starts_with(a.as_str()), "{a} and {b}");
            }
        }
    }
}
