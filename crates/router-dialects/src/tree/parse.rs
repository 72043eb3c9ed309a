//! Reading a request's JSON text into a [`Json`] tree in one pass over its bytes, without
//! serde's visitor machinery (which cost about as much per value as the translation
//! itself). It only ever answers what serde would: whatever it is unsure of (an escape,
//! a number that is not plain digits, nesting at the limit) goes through serde, and a
//! text it does not read whole is handed to serde entirely, which then reads it or says
//! why not.

use super::Json;
use router_core::sse::json::skip_plain;
use std::borrow::Cow;

/// How deep values may nest (serde_json's own limit): deeper is left to serde.
const MAX_DEPTH: usize = 128;

/// The most digits of a count read without serde: any 19-digit number fits in a `u64`.
const MAX_PLAIN_DIGITS: usize = 19;

/// The tree of `text`, or `None` where serde must say (an error, or what this does not
/// read itself).
pub(super) fn parse(text: &str) -> Option<Json<'_>> {
    let mut p = Parser { text, b: text.as_bytes(), i: 0, depth: 0 };
    p.ws();
    let value = p.value()?;
    p.ws();
    (p.i == p.b.len()).then_some(value)
}

struct Parser<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn value(&mut self) -> Option<Json<'a>> {
        match *self.b.get(self.i)? {
            b'"' => self.string().map(Json::String),
            b'{' => self.nested(Parser::object),
            b'[' => self.nested(Parser::array),
            b't' => self.literal(b"true", Json::Bool(true)),
            b'f' => self.literal(b"false", Json::Bool(false)),
            b'n' => self.literal(b"null", Json::Null),
            _ => self.number(),
        }
    }

    fn nested(&mut self, read: fn(&mut Self) -> Option<Json<'a>>) -> Option<Json<'a>> {
        if self.depth == MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        let value = read(self);
        self.depth -= 1;
        value
    }

    fn literal(&mut self, word: &[u8], value: Json<'a>) -> Option<Json<'a>> {
        if !self.b[self.i..].starts_with(word) {
            return None;
        }
        self.i += word.len();
        Some(value)
    }

    /// A number: plain digits here, anything else (a sign, a fraction, an exponent, more
    /// digits than a `u64` surely holds) as serde reads it.
    fn number(&mut self) -> Option<Json<'a>> {
        let start = self.i;
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
        }
        let token = &self.b[start..self.i];
        let plain = !token.is_empty()
            && token.len() <= MAX_PLAIN_DIGITS
            && token.iter().all(u8::is_ascii_digit)
            && (token[0] != b'0' || token.len() == 1);
        if plain {
            let n = token.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            return Some(Json::Number(n.into()));
        }
        serde_json::from_str(&self.text[start..self.i]).ok().map(Json::Number)
    }

    /// A string's text: borrowed when it has no escapes; with escapes, serde's reading.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.i;
        self.i += 1;
        loop {
            // Plain bytes eight at a time, then straight to the first special one.
            self.i = skip_plain(self.b, self.i);
            match *self.b.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(Cow::Borrowed(&self.text[start + 1..self.i - 1]));
                }
                b'\\' => return self.escaped(start),
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
        }
    }

    /// A string with escapes (the cursor on its first one), decoded by serde.
    fn escaped(&mut self, start: usize) -> Option<Cow<'a, str>> {
        loop {
            match *self.b.get(self.i)? {
                b'"' => break,
                // Whatever follows a backslash is serde's to judge; it is not the end.
                b'\\' => self.i += 2,
                _ => self.i += 1,
            }
        }
        self.i += 1;
        serde_json::from_str::<String>(self.text.get(start..self.i)?).ok().map(Cow::Owned)
    }

    /// `close` after optional whitespace (consumed), or a comma before the next item.
    /// `Some(true)` at the end.
    #[inline]
    fn end_or_comma(&mut self, close: u8) -> Option<bool> {
        self.ws();
        match *self.b.get(self.i)? {
            c if c == close => {
                self.i += 1;
                Some(true)
            }
            b',' => {
                self.i += 1;
                self.ws();
                Some(false)
            }
            _ => None,
        }
    }

    fn object(&mut self) -> Option<Json<'a>> {
        self.i += 1;
        let mut members = Vec::new();
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Some(Json::Object(members));
        }
        loop {
            if self.b.get(self.i) != Some(&b'"') {
                return None;
            }
            let key = self.string()?;
            self.ws();
            if self.b.get(self.i) != Some(&b':') {
                return None;
            }
            self.i += 1;
            self.ws();
            members.push((key, self.value()?));
            if self.end_or_comma(b'}')? {
                return Some(Json::Object(members));
            }
        }
    }

    fn array(&mut self) -> Option<Json<'a>> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Some(Json::Array(items));
        }
        loop {
            items.push(self.value()?);
            if self.end_or_comma(b']')? {
                return Some(Json::Array(items));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference: serde's reading of the same tree.
    fn check(text: &str) {
        let serde = serde_json::from_str::<Json<'_>>(text).ok();
        // Left to serde (`None`) is always right: serde then reads it, or says why not.
        if let Some(tree) = parse(text) {
            assert_eq!(Some(tree), serde, "{text:?}");
        }
    }

    #[test]
    fn reads_what_serde_reads() {
        for text in [
            r#"{"model":"m","messages":[{"role":"user","content":"Say hello."}],"stream":false,"n":3}"#,
            r#" { "a" : [ 1 , -2 , 3.5 , 1e3 , 0 , 18446744073709551615 , 18446744073709551616 ] } "#,
            r#"{"e":"a\"b\\c\u00e9\n","k\u0041":null,"t":true,"f":false,"d":{"d":{}},"x":[]}"#,
            r#"{"a":1,"a":2}"#,
            r#""just a string, longer than eight bytes""#,
            "7",
            "-0",
        ] {
            assert!(parse(text).is_some(), "{text}");
            check(text);
        }
        for bad in [
            "",
            " ",
            "{",
            "}",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{a:1}",
            "01",
            "1.",
            "-",
            "+1",
            "1e",
            "tru",
            "nul",
            "truex",
            "[1 2]",
            "\"tab\there\"",
            "\"\\x\"",
            "\"\\u12\"",
            "{} x",
            "\"unterminated",
            "\"ends in a backslash\\",
            "1e400",
        ] {
            assert!(parse(bad).is_none() || serde_json::from_str::<Json<'_>>(bad).is_ok(), "{bad}");
            assert!(serde_json::from_str::<Json<'_>>(bad).is_err() || parse(bad).is_none(), "{bad}");
        }
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(&deep), None, "left to serde, which refuses it");
    }

    fn token() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            Just("0".to_owned()),
            Just("-1.5e-3".to_owned()),
            Just("12345678901234567890".to_owned()),
            Just("\"\\u00e9\\\"\\\\\"".to_owned()),
            Just("\"\\ud83d\\ude00\"".to_owned()),
            "[a-z\u{e9}\u{3000} ]{0,12}".prop_map(|t| format!("\"{t}\"")),
            (0u64..u64::MAX).prop_map(|n| n.to_string()),
        ]
    }

    fn value() -> impl Strategy<Value = String> {
        token().prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(","))),
                proptest::collection::vec(("[a-c]{1,2}", inner), 0..5).prop_map(|m| {
                    let members: Vec<String> = m.iter().map(|(k, v)| format!("\"{k}\" : {v}")).collect();
                    format!("{{ {} }}", members.join(" ,"))
                }),
            ]
        })
    }

    proptest! {
        /// Any JSON, and any JSON with a byte cut out or put in, reads as serde reads it,
        /// or is left to serde.
        #[test]
        fn agrees_with_serde(text in value(), at in any::<prop::sample::Index>(), byte in prop::sample::select(
            vec!["", "\"", "\\", ",", "}", "]", "{", "[", ":", " ", "1", "-", "e", "\u{1}", "x"],
        )) {
            check(&text);
            prop_assert!(parse(&text).is_some(), "valid JSON is read here: {}", text);
            // And written back as serde writes the tree (repeated keys included).
            if let Some(tree) = parse(&text) {
                let mut out = Vec::new();
                tree.write_json(&mut out);
                prop_assert_eq!(out, serde_json::to_vec(&tree).unwrap_or_default());
            }
            let cut = at.index(text.len());
            if text.is_char_boundary(cut) {
                let mut changed = text.clone();
                changed.insert_str(cut, byte);
                check(&changed);
                let mut changed = text.clone();
                if let Some(c) = changed[cut..].chars().next() {
                    changed.replace_range(cut..cut + c.len_utf8(), "");
                    check(&changed);
                }
            }
        }
    }
}
