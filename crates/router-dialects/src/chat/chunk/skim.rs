//! The skimming cursor's steps over JSON: whitespace, a string to its closing quote (read
//! where a member is wanted), a scalar to its delimiter, an object or array to its matching
//! bracket. The reader of a chunk's shape (`super`) is made of these.

use super::Skim;
use router_core::sse::json::skip_plain;
use serde_json::Value;
use std::borrow::Cow;

/// How deep a skimmed value may nest (the checking cursor's and serde's limit).
const MAX_DEPTH: usize = 128;

/// Whether `c` ends a scalar: a separator, a bracket, whitespace or a quote.
#[inline(always)]
fn is_delimiter(c: u8) -> bool {
    matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'{' | b'[')
}

/// The most digits read without serde: any 19-digit number fits in a `u64`.
const MAX_PLAIN_DIGITS: usize = 19;

impl<'a> Skim<'a> {
    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    pub(super) fn ws(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r') => {}
                Some(b'\n') if !self.line => {}
                _ => return,
            }
            self.i += 1;
        }
    }

    #[inline]
    pub(super) fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// Enters an object or array (the cursor on `open`): whether an item follows.
    #[inline]
    pub(super) fn open(&mut self, open: u8, close: u8) -> Option<bool> {
        self.eat(open)?;
        self.ws();
        if self.peek()? == close {
            self.i += 1;
            return Some(false);
        }
        Some(true)
    }

    /// After an item: `true` past a comma (another follows), `false` past `close`.
    #[inline]
    pub(super) fn more(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let c = self.peek()?;
        self.i += 1;
        if c == b',' {
            self.ws();
            Some(true)
        } else {
            (c == close).then_some(false)
        }
    }

    /// A member's key (escapes as written, as the checking cursor gives it), the cursor
    /// left on its value.
    #[inline(always)]
    pub(super) fn key(&mut self) -> Option<&'a [u8]> {
        let (start, end, _) = self.quoted()?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(&self.b[start + 1..end - 1])
    }

    /// A string (the cursor on its quote): its span with the quotes, and whether it holds
    /// an escape. Control characters are refused; escapes are checked by whoever reads it.
    #[inline(always)]
    pub(super) fn quoted(&mut self) -> Option<(usize, usize, bool)> {
        let start = self.i;
        self.eat(b'"')?;
        let mut escaped = false;
        loop {
            self.i = skip_plain(self.b, self.i);
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => return Some((start, self.i, escaped)),
                b'\\' => {
                    escaped = true;
                    // The escaped byte, whatever it is: a quote there does not end the string.
                    self.peek()?;
                    self.i += 1;
                }
                c if c < 0x20 => return None,
                _ => {}
            }
        }
    }

    /// Skims one value: a string to its quote, an object or array to its matching bracket,
    /// a scalar to the next delimiter.
    #[inline(always)]
    pub(super) fn skip(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.quoted().map(drop),
            b'n' if self.literal(b"null") => Some(()),
            _ => self.skip_other(),
        }
    }

    /// Passes `word` when the cursor is on it and a delimiter (or the end) follows.
    #[inline(always)]
    pub(super) fn literal(&mut self, word: &[u8]) -> bool {
        let end = self.i + word.len();
        if self.b.get(self.i..end) == Some(word) && self.b.get(end).is_none_or(|&c| is_delimiter(c)) {
            self.i = end;
            return true;
        }
        false
    }

    /// [`Self::skip`] for what is not a string.
    #[inline(never)]
    pub(super) fn skip_other(&mut self) -> Option<()> {
        match self.peek()? {
            b'{' | b'[' => self.skip_nested(),
            _ => self.scalar().map(drop),
        }
    }

    /// A scalar's token (not empty), as written.
    #[inline]
    pub(super) fn scalar(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        while self.peek().is_some_and(|c| !is_delimiter(c)) {
            self.i += 1;
        }
        (self.i > start).then(|| &self.b[start..self.i])
    }

    /// An object or array skimmed to its matching bracket; brackets are matched by kind
    /// (one bit a level) up to [`MAX_DEPTH`].
    pub(super) fn skip_nested(&mut self) -> Option<()> {
        // Bit `d` set: level `d` is an object.
        let mut kinds: u128 = 0;
        let mut depth = 0usize;
        loop {
            let c = self.peek()?;
            match c {
                b'"' => {
                    self.quoted()?;
                    continue;
                }
                b'\n' if self.line => return None,
                b'{' | b'[' => {
                    if depth == MAX_DEPTH {
                        return None;
                    }
                    kinds = (kinds & !(1 << depth)) | (u128::from(c == b'{') << depth);
                    depth += 1;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    if (kinds >> depth) & 1 != u128::from(c == b'}') {
                        return None;
                    }
                    if depth == 0 {
                        self.i += 1;
                        return Some(());
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
    }

    /// A string's text: borrowed when it has no escapes, else decoded (and checked) by serde.
    pub(super) fn string(&mut self) -> Option<Cow<'a, str>> {
        let (start, end, escaped) = self.quoted()?;
        if !escaped {
            return std::str::from_utf8(&self.b[start + 1..end - 1]).ok().map(Cow::Borrowed);
        }
        serde_json::from_slice::<String>(&self.b[start..end]).ok().map(Cow::Owned)
    }

    /// Text only; any other value is skimmed and reads as absent.
    pub(super) fn text_only(&mut self) -> Option<Option<Cow<'a, str>>> {
        self.clean = false;
        if self.peek()? == b'"' {
            return self.string().map(Some);
        }
        self.skip()?;
        Some(None)
    }

    /// Text, or a number written out (some providers send numeric ids).
    pub(super) fn textual(&mut self) -> Option<Option<Cow<'a, str>>> {
        self.clean = false;
        match self.peek()? {
            b'"' => self.string().map(Some),
            b'-' | b'0'..=b'9' => {
                let n: serde_json::Number = serde_json::from_slice(self.scalar()?).ok()?;
                Some(Some(Cow::Owned(n.to_string())))
            }
            _ => {
                self.skip()?;
                Some(None)
            }
        }
    }

    /// A non-negative integer (a float truncated); anything else reads as absent.
    pub(super) fn count(&mut self) -> Option<Option<u64>> {
        self.clean = false;
        if !matches!(self.peek()?, b'-' | b'0'..=b'9') {
            self.skip()?;
            return Some(None);
        }
        // Plain digits (nearly every count), read as they are passed.
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek()
            && self.i - start < MAX_PLAIN_DIGITS
        {
            n = n * 10 + u64::from(d - b'0');
            self.i += 1;
        }
        if self.i > start && self.peek().is_none_or(is_delimiter) {
            // JSON has no leading zeros; the checking cursor refuses them.
            if self.i - start > 1 && self.b[start] == b'0' {
                return None;
            }
            return Some(Some(n));
        }
        self.i = start;
        let token = self.scalar()?;
        let n: serde_json::Number = serde_json::from_slice(token).ok()?;
        Some(n.as_u64().or_else(|| n.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64)))
    }

    /// The value as a tree (rare: an error, arguments that are not text); `None` inside
    /// when serde does not read it.
    pub(super) fn tree(&mut self) -> Option<Option<Value>> {
        self.clean = false;
        let start = self.i;
        self.skip()?;
        Some(serde_json::from_slice(&self.b[start..self.i]).ok())
    }

    /// Whether the value is an object, entered when it is; any other value is skimmed.
    pub(super) fn object(&mut self) -> Option<Option<bool>> {
        if self.peek()? != b'{' {
            self.skip()?;
            return Some(None);
        }
        self.open(b'{', b'}').map(Some)
    }
}
