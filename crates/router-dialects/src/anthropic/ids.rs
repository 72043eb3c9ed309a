//! `msg_…` and `toolu_…` ids made from the upstream's, so that the same upstream id
//! always gives the same Anthropic id (a tool result names the call by it).

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

/// A tool call's id: kept when already `toolu_…`, else `toolu_` and the upstream's id,
/// else `toolu_<message suffix>_<index>` when the upstream gave none.
pub fn tool_use_id(upstream: &str, message_id: &str, index: usize) -> String {
    if upstream.starts_with("toolu_") && upstream.bytes().all(safe) {
        return upstream.to_owned();
    }
    let fallback = format!("{}_{index}", message_id.strip_prefix("msg_").unwrap_or(message_id));
    prefixed("toolu_", upstream, &fallback)
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
        assert_eq!(tool_use_id("call_1", "msg_gen", 0), "toolu_call_1");
        assert_eq!(tool_use_id("toolu_01A", "msg_gen", 0), "toolu_01A");
        assert_eq!(tool_use_id("", "msg_gen", 2), "toolu_gen_2");
        assert_eq!(fallback_id(0xabc), "0000000000000abc");
    }
}
