//! Just enough of a JSON reader to walk an answer's structure without building a tree:
//! it checks the grammar of what it walks (nesting, separators, strings and their
//! escapes, literals and numbers; UTF-8 is the caller's to check, once per body) and
//! keeps nothing but a cursor. Serves reading answers (`answer`), setting `model`
//! (`splice`) and judging substance (`substance`); public for the dialects' translations
//! (`router-dialects`), which read chunks through it too.

use std::ops::Range;

/// How deep values may nest: a hostile upstream's `[[[[…` ends here, not in a stack
/// overflow (serde_json's own limit).
const MAX_DEPTH: usize = 128;

/// A cursor over one JSON text. Its steps are `#[inline]` so that the dialects, which
/// walk every chunk through it from another crate, need not call out for each one.
#[derive(Debug)]
pub struct Scanner<'a> {
    pub(super) b: &'a [u8],
    pub(super) i: usize,
    depth: usize,
}

/// Eight bytes (little-endian) at a time: a mask with the high bit set in each byte that
/// is a quote, a backslash or a control character. Bytes above a flagged one may be
/// flagged wrongly (a borrow), the lowest flagged byte never is; so the mask is 0
/// exactly when none of the eight bytes is special. Public for the dialects, which write
/// strings with the same test.
#[inline]
pub fn specials(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    below_space | zero(word ^ (ONES * u64::from(b'"'))) | zero(word ^ (ONES * u64::from(b'\\')))
}

/// Where the run of plain string bytes (no quote, backslash or control byte) that starts
/// at `i` ends, read eight bytes at a time: at its first special byte, or within the last
/// seven bytes of `b`, which the caller reads one by one. The one such loop of every
/// string reader, the core's and the dialects'.
#[inline(always)]
pub fn skip_plain(b: &[u8], mut i: usize) -> usize {
    while let Some(word) = b.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        let flagged = specials(u64::from_le_bytes(word));
        if flagged != 0 {
            return i + flagged.trailing_zeros() as usize / 8;
        }
        i += 8;
    }
    i
}

/// Whether `b` has no byte that JSON escapes or refuses in a string (a quote, a
/// backslash, a control character), eight bytes at a time: the last seven or fewer in
/// one word that overlaps the one before, not byte by byte.
pub fn is_plain(b: &[u8]) -> bool {
    let full = b.len() - b.len() % 8;
    if skip_plain(b, 0) < full {
        return false;
    }
    match b.len().checked_sub(8).and_then(|last| <[u8; 8]>::try_from(&b[last..]).ok()) {
        Some(word) => specials(u64::from_le_bytes(word)) == 0,
        None => b.iter().all(|&c| c >= 0x20 && c != b'"' && c != b'\\'),
    }
}

impl<'a> Scanner<'a> {
    /// A cursor at the start of `b`.
    pub fn new(b: &'a [u8]) -> Self {
        Scanner { b, i: 0, depth: 0 }
    }

    /// Where the cursor is, in bytes from the start.
    #[inline]
    pub fn pos(&self) -> usize {
        self.i
    }

    /// The byte under the cursor.
    #[inline]
    pub fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    pub(super) fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    #[inline]
    pub(super) fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// Passes whitespace.
    #[inline]
    pub fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// Whether only whitespace is left.
    #[inline]
    pub fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }

    /// A string, quotes included; its escapes checked, control characters refused.
    #[inline]
    pub fn string(&mut self) -> Option<Range<usize>> {
        let start = self.i;
        self.eat(b'"')?;
        loop {
            // Plain bytes eight at a time, then straight to the first special one.
            self.i = skip_plain(self.b, self.i);
            match self.next()? {
                b'"' => return Some(start..self.i),
                b'\\' => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        let hex = self.b.get(self.i..self.i + 4)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return None;
                        }
                        self.i += 4;
                    }
                    _ => return None,
                },
                c if c < 0x20 => return None,
                _ => {}
            }
        }
    }

    /// Walks one value of any kind, checking it.
    #[inline]
    pub fn value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.nested(|s| s.members(|s, _| s.value())),
            b'[' => self.nested(|s| s.elements(Scanner::value)),
            _ => self.scalar().map(drop),
        }
    }

    fn nested(&mut self, walk: impl FnOnce(&mut Self) -> Option<()>) -> Option<()> {
        if self.depth == MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        let walked = walk(self);
        self.depth -= 1;
        walked
    }

    /// `true`, `false`, `null` or a number, as written.
    #[inline]
    pub fn scalar(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        // A literal is settled by its first byte, without walking it byte by byte.
        let literal: &[u8] = match self.peek()? {
            b'n' => b"null",
            b't' => b"true",
            b'f' => b"false",
            _ => b"",
        };
        if !literal.is_empty() {
            let end = start + literal.len();
            let whole = self.b.get(start..end) == Some(literal)
                && matches!(self.b.get(end), None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'));
            if !whole {
                return None;
            }
            self.i = end;
            return Some(literal);
        }
        while !matches!(self.peek(), None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
        let token = &self.b[start..self.i];
        (matches!(token, b"true" | b"false" | b"null") || is_number(token)).then_some(token)
    }

    /// Walks an object (the cursor on its `{`), calling `member` with each key (without
    /// its quotes, escapes as written) and the cursor on the value, which `member` must
    /// consume.
    pub fn members(&mut self, mut member: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.list(b'{', b'}', |s| {
            let key = s.string()?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            member(s, &s.b[key.start + 1..key.end - 1])
        })
    }

    /// Walks an array (the cursor on its `[`), calling `element` with the cursor on each
    /// element, which `element` must consume.
    pub fn elements(&mut self, element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.list(b'[', b']', element)
    }

    /// `open`, items separated by commas, `close`; whitespace anywhere between.
    fn list(&mut self, open: u8, close: u8, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(open)?;
        self.ws();
        if self.peek() == Some(close) {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            item(self)?;
            self.ws();
            match self.next()? {
                b',' => {}
                c if c == close => return Some(()),
                _ => return None,
            }
        }
    }

    /// Whether the value under the cursor is `null` (consumed when it is).
    #[inline]
    pub fn null(&mut self) -> bool {
        if self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            return true;
        }
        false
    }

    /// Consumes a value and tells whether it holds something: a string with a visible
    /// character, a non-empty list or object, a number or a boolean. `null`, `""` and
    /// whitespace are nothing.
    pub(super) fn filled(&mut self) -> Option<bool> {
        match self.peek()? {
            b'"' => {
                let quoted = self.string()?;
                let raw = &self.b[quoted.start + 1..quoted.end - 1];
                // The usual case, a word: settled by its first byte.
                if raw.first().is_some_and(|c| c.is_ascii_graphic() && *c != b'\\') {
                    return Some(true);
                }
                let text: String = serde_json::from_slice(&self.b[quoted]).ok()?;
                Some(!text.trim().is_empty())
            }
            b'{' | b'[' => {
                let start = self.i;
                self.value()?;
                Some(!self.b[start + 1..self.i - 1].trim_ascii().is_empty())
            }
            _ => Some(self.scalar()? != b"null"),
        }
    }
}

/// JSON's number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_number(t: &[u8]) -> bool {
    let digits = |t: &[u8]| t.iter().take_while(|c| c.is_ascii_digit()).count();
    let t = t.strip_prefix(b"-").unwrap_or(t);
    let int = digits(t);
    if int == 0 || (int > 1 && t[0] == b'0') {
        return false;
    }
    let mut t = &t[int..];
    if let Some(frac) = t.strip_prefix(b".") {
        let n = digits(frac);
        if n == 0 {
            return false;
        }
        t = &frac[n..];
    }
    if let Some(exp) = t.strip_prefix(b"e").or_else(|| t.strip_prefix(b"E")) {
        let exp = exp.strip_prefix(b"+").or_else(|| exp.strip_prefix(b"-")).unwrap_or(exp);
        let n = digits(exp);
        return n > 0 && n == exp.len();
    }
    t.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `text` walks as one value with nothing after it.
    fn check(text: &str, expected: bool) {
        let mut s = Scanner::new(text.as_bytes());
        s.ws();
        let walked = s.value().is_some() && s.at_end();
        assert_eq!(walked, expected, "{text}");
        // The reference: what serde_json accepts.
        assert_eq!(serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok(), expected, "serde on {text}");
    }

    #[test]
    fn a_plain_text_is_one_with_no_quote_backslash_or_control_byte() {
        // Every special byte at every place of texts shorter and longer than a word.
        for len in 0..20 {
            let text = vec![b'a'; len];
            assert!(is_plain(&text), "{len}");
            for at in 0..len {
                for special in [b'"', b'\\', 0x00, 0x1f] {
                    let mut t = text.clone();
                    t[at] = special;
                    assert!(!is_plain(&t), "{t:?}");
                }
                let mut t = text.clone();
                t[at] = 0x7f;
                assert!(is_plain(&t), "DEL is plain in JSON: {t:?}");
            }
        }
    }

    #[test]
    fn walks_what_serde_reads_and_refuses_the_rest() {
        for ok in [
            r#"{"a":[1,-2.5e+3,0,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9"],"b":{}}"#,
            r#" [ ] "#,
            r#""a long string of plain text, longer than eight bytes""#,
            "0.5",
            r#"{"é":"ünïcödé…"}"#,
            "null",
            "[true,false,null]",
            "{\"a\":null }",
        ] {
            check(ok, true);
        }
        for bad in [
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":{"b" 1}}"#,
            r#"[1 2]"#,
            r#"{"a":[}"#,
            r#"{"a":"tab	inside"}"#,
            r#""\x""#,
            r#""\u12""#,
            "01",
            "1.",
            "-",
            "1e",
            "tru",
            "nul",
            r#"{"choices":["#,
            "{} x",
            "",
            "nullx",
            "[truee]",
            "{\"a\":fals}",
            "null1",
        ] {
            check(bad, false);
        }
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let mut s = Scanner::new(deep.as_bytes());
        assert_eq!(s.value(), None, "nesting deeper than the limit");
        let fine = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        check(&fine, true);
    }
}
