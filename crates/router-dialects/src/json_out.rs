//! Writing JSON from byte templates: the fixed parts are the dialect's own literals, and
//! only what comes from outside (text, ids, names) goes through serde's string escaping.
//! Cheaper than building a `serde_json::Value` for every event of a stream, or for every
//! request's chat body.

use router_core::WrittenMember;
use router_core::sse::json::is_plain as plain;

/// `s` as a JSON string, quotes included. Text with nothing to escape (ids, names, most
/// deltas) is copied as it is; the rest goes through serde's escaping.
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
    if plain(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    // Writing into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// `s` escaped as the inside of a JSON string, without its quotes (a piece of a string
/// written in pieces: escaping goes character by character, so the pieces' escapes are
/// the whole's).
pub(crate) fn string_content(out: &mut Vec<u8>, s: &str) {
    if plain(s.as_bytes()) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    let start = out.len();
    string(out, s);
    out.pop();
    out.remove(start);
}

/// `n` as a JSON number (two digits a step, as serde_json writes it).
pub(crate) fn number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `n` in lowercase hexadecimal, at least `width` digits (zeros before), without the
/// formatting machinery (an id a request makes).
pub(crate) fn hex(out: &mut Vec<u8>, n: u64, width: usize) {
    // Sixteen digits hold any `u64`.
    let mut digits = [b'0'; 16];
    let mut at = digits.len();
    let mut rest = n;
    while rest != 0 {
        at -= 1;
        digits[at] = b"0123456789abcdef"[(rest & 0xf) as usize];
        rest >>= 4;
    }
    let start = at.min(digits.len().saturating_sub(width.max(1)));
    out.extend_from_slice(&digits[start..]);
}

/// `s` as a JSON string, or `null`.
pub(crate) fn string_or_null(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// An object or an array written member by member, the separators its to write: a
/// request is translated straight into the bytes of its chat body, with no tree built.
pub(crate) struct Seq<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
    close: u8,
    /// Where each member lies, when asked for ([`Seq::object_spanned`]).
    spans: Option<Vec<WrittenMember>>,
}

impl<'o> Seq<'o> {
    pub(crate) fn object(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        Seq { out, first: true, close: b'}', spans: None }
    }

    /// An object that records where each member's key and value lie in `out`
    /// ([`Seq::end_spanned`] gives them), so that the core reads it without walking it.
    pub(crate) fn object_spanned(out: &'o mut Vec<u8>, members: usize) -> Self {
        out.push(b'{');
        Seq { out, first: true, close: b'}', spans: Some(Vec::with_capacity(members)) }
    }

    pub(crate) fn array(out: &'o mut Vec<u8>) -> Self {
        out.push(b'[');
        Seq { out, first: true, close: b']', spans: None }
    }

    /// A member named `key` (the dialect's own literal: no escapes); its value is the
    /// caller's to write into what this returns.
    pub(crate) fn key(&mut self, key: &str) -> &mut Vec<u8> {
        self.value_ends();
        self.item();
        let start = self.out.len();
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        if let Some(spans) = &mut self.spans {
            let value = self.out.len();
            spans.push(WrittenMember { key: start..value - 1, value: value..value });
        }
        self.out
    }

    /// The last member's value ends here (when spans are recorded).
    fn value_ends(&mut self) {
        if let Some(last) = self.spans.as_mut().and_then(|s| s.last_mut()) {
            last.value.end = self.out.len();
        }
    }

    /// The next element; its value is the caller's to write into what this returns.
    pub(crate) fn item(&mut self) -> &mut Vec<u8> {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        self.out
    }

    pub(crate) fn end(self) {
        self.out.push(self.close);
    }

    /// Ends an object made by [`Seq::object_spanned`]: where each member lies.
    pub(crate) fn end_spanned(mut self) -> Vec<WrittenMember> {
        self.value_ends();
        self.out.push(self.close);
        self.spans.unwrap_or_default()
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

/// What the core makes of a chat body written with [`Seq::object_spanned`], read where
/// its writer says the members are and read as a client's body: (written, as sent), which
/// must agree (the translations' tests compare them).
#[cfg(test)]
pub(crate) fn two_readings(chat: &[u8], members: &[WrittenMember]) -> (Result<String, String>, Result<String, String>) {
    use router_core::ChatRequest;
    let seen = |r: Result<ChatRequest, router_core::RequestError>| {
        r.map(|r| {
            let body = |plain| String::from_utf8_lossy(&r.body_for_upstream("m", plain, Some(5))).into_owned();
            format!("{r:?} {:?} {} {}", r.session_key(), body(false), body(true))
        })
        .map_err(|e| e.to_string())
    };
    let bytes = bytes::Bytes::copy_from_slice(chat);
    (seen(ChatRequest::from_written(bytes.clone(), members)), seen(ChatRequest::from_bytes(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_as_format_writes_it() {
        for n in [0, 1, 0xf, 0x10, 0xdead_beef, u64::MAX, 1 << 60] {
            for width in [0, 1, 8, 16] {
                let mut out = Vec::new();
                hex(&mut out, n, width);
                assert_eq!(out, format!("{n:0width$x}").into_bytes(), "{n} {width}");
            }
        }
    }

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

    proptest::proptest! {
        /// Any number at any width up to sixteen digits, as `format!` writes it.
        #[test]
        fn any_hex_is_written_as_format_writes_it(n in proptest::prelude::any::<u64>(), width in 0usize..=16) {
            let mut out = Vec::new();
            hex(&mut out, n, width);
            proptest::prop_assert_eq!(out, format!("{n:0width$x}").into_bytes());
        }

        /// Any text, of any length and with a special byte anywhere, is written as serde
        /// writes it (the plain test reads words that overlap).
        #[test]
        fn any_string_is_written_as_serde_writes_it(s in "[a-z\"\\\\\\x00-\\x1f\\x7f-\\xff€]{0,40}") {
            let mut out = Vec::new();
            string(&mut out, &s);
            proptest::prop_assert_eq!(out, serde_json::to_vec(&s).unwrap_or_default());
        }

        /// A string written in pieces, each piece's content escaped, is the whole string
        /// as serde writes it (item ids are written so).
        #[test]
        fn pieces_escaped_apart_are_the_whole_escaped(a in "[a-z\"\\\\\\x00-\\x1f€]{0,12}", b in "[a-z\"\\\\\\x00-\\x1f€]{0,12}") {
            let mut out = vec![b'"'];
            string_content(&mut out, &a);
            string_content(&mut out, &b);
            out.push(b'"');
            proptest::prop_assert_eq!(out, serde_json::to_vec(&format!("{a}{b}")).unwrap_or_default());
        }
    }

    #[test]
    fn sequences_write_their_separators() {
        let mut out = Vec::new();
        let mut o = Seq::object(&mut out);
        string(o.key("a"), "x");
        let mut list = Seq::array(o.key("b"));
        number(list.item(), 1);
        number(list.item(), 2);
        list.end();
        Seq::object(o.key("c")).end();
        o.end();
        assert_eq!(out, br#"{"a":"x","b":[1,2],"c":{}}"#);
    }

    #[test]
    fn strings_and_numbers_read_back_as_written() {
        for s in [
            "",
            "plain id",
            "tab\there",
            "quote\"",
            "back\\slash",
            "\u{7f}\u{1f}é😀",
            "</script>",
            "a longer plain text over eight bytes: ünïcödé",
            "a longer text whose ninth byte\u{0} is a control",
            "eight by\"",
        ] {
            let mut out = Vec::new();
            string(&mut out, s);
            assert_eq!(serde_json::from_slice::<String>(&out).expect("json"), s);
        }
        // Every ASCII character at every place of a text longer than one word.
        for c in (0u8..0x80).map(char::from) {
            for at in 0..17 {
                let mut text: String = "abcdefghijklmnopq".into();
                text.replace_range(at..=at, &c.to_string());
                let mut out = Vec::new();
                string(&mut out, &text);
                assert_eq!(out, serde_json::to_vec(&text).expect("json"), "{text:?}");
            }
        }
        for n in [0, 7, 10, 99, 1_234_567, u64::MAX] {
            let mut out = Vec::new();
            number(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
