//! Writing JSON from byte templates: the fixed parts are the dialect's own literals, and
//! only what comes from outside (text, ids, names) goes through serde's string escaping.
//! Cheaper than building a `serde_json::Value` for every event of a stream.

/// `s` as a JSON string, quotes included.
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
    // Writing into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// `n` as a JSON number.
pub(crate) fn number(out: &mut Vec<u8>, n: u64) {
    let _ = serde_json::to_writer(&mut *out, &n);
}

/// `s` as a JSON string, or `null`.
pub(crate) fn string_or_null(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// One SSE event: `event: <name>`, then `data: ` and what `data` writes, then the blank line.
pub(crate) fn event(out: &mut Vec<u8>, name: &str, data: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    data(out);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_and_events_framed() {
        let mut out = Vec::new();
        event(&mut out, "e", |o| {
            o.extend_from_slice(b"{\"t\":");
            string(o, "a\"b\n\u{1}");
            o.extend_from_slice(b",\"n\":");
            number(o, 42);
            o.extend_from_slice(b",\"x\":");
            string_or_null(o, None);
            o.push(b'}');
        });
        assert_eq!(out, b"event: e\ndata: {\"t\":\"a\\\"b\\n\\u0001\",\"n\":42,\"x\":null}\n\n");
    }
}
