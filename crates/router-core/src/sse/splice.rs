//! Setting the top-level `model` of an answer or a chunk by splicing bytes found by a
//! structural scan: every other byte stays as upstream sent it, and nothing is parsed
//! into a tree and serialised again (an answer may be megabytes long).

use bytes::Bytes;
use memchr::memmem;
use std::sync::LazyLock;

/// The searcher for the `"model"` key, built once for the process rather than per line.
static MODEL_KEY: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b"\"model\""));

/// `"model":"<id>"` as it appears in compact JSON, with its searcher built once (per
/// stream, or per answer) rather than for every line searched.
#[derive(Clone, Debug)]
pub(super) struct ModelMember {
    finder: memmem::Finder<'static>,
}

impl ModelMember {
    pub(super) fn new(model: &str) -> Self {
        let mut member = b"\"model\":".to_vec();
        let _ = serde_json::to_writer(&mut member, model);
        ModelMember { finder: memmem::Finder::new(&member).into_owned() }
    }

    /// The id as a JSON string, quotes included.
    fn value(&self) -> &[u8] {
        &self.finder.needle()[b"\"model\":".len()..]
    }

    /// Whether `json` already carries the member, settled by one search.
    fn found_in(&self, json: &[u8]) -> bool {
        self.finder.find(json).is_some()
    }
}

/// `line` (an SSE line whose data `payload` lies inside it) with its top-level `model`
/// set to `expected`'s, or `None` when it already names it or names none. A line that
/// already carries `expected` is settled by one search.
pub(super) fn rewrite_model(line: &[u8], payload: &[u8], expected: &ModelMember) -> Option<Vec<u8>> {
    if expected.found_in(payload) || MODEL_KEY.find(payload).is_none() {
        return None;
    }
    let value = expected.value();
    let rewritten = with_top_level_model(payload, value, false)??;
    // `payload` lies inside `line`: the prefix and the line ending stay as they came.
    let start = payload.as_ptr() as usize - line.as_ptr() as usize;
    let mut out = Vec::with_capacity(line.len() + value.len());
    out.extend_from_slice(&line[..start]);
    out.extend_from_slice(&rewritten);
    out.extend_from_slice(&line[start + payload.len()..]);
    Some(out)
}

/// Sets `model` in a whole (non-streamed) JSON response when upstream named another
/// model or none. Bodies that already name the chosen model come back untouched; others
/// get the top-level member's value replaced (or the member added) in one pass over the
/// bytes, without building the answer as a tree: an answer may be megabytes long.
pub fn ensure_model(body: Bytes, model: &str) -> Bytes {
    // The usual case, settled by one search as in the stream rewriter: no parse.
    let member = ModelMember::new(model);
    if member.found_in(&body) {
        return body;
    }
    match with_top_level_model(&body, member.value(), true) {
        Some(Some(rewritten)) => Bytes::from(rewritten),
        // Already right, or not a JSON object: not ours to fix; upstream's bytes go on.
        Some(None) | None => body,
    }
}

/// `json` (an object) with its top-level `model` set to `value` (a JSON string), the
/// member added when absent and `insert`: `Some(None)` when nothing changes, `None` when
/// `json` is not a well-formed object.
fn with_top_level_model(json: &[u8], value: &[u8], insert: bool) -> Option<Option<Vec<u8>>> {
    let mut s = Scanner { b: json, i: 0 };
    s.ws();
    s.eat(b'{')?;
    let mut found = None;
    s.ws();
    if s.peek() == Some(b'}') {
        s.i += 1;
    } else {
        loop {
            s.ws();
            let key = s.string()?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            let start = s.i;
            s.value()?;
            if &json[key.start + 1..key.end - 1] == b"model" {
                found = Some(start..s.i);
            }
            s.ws();
            match s.next()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
    }
    let close = s.i - 1;
    s.ws();
    if s.i != json.len() {
        return None;
    }
    let mut out = Vec::with_capacity(json.len() + value.len() + 10);
    match found {
        Some(r) if &json[r.clone()] == value => return Some(None),
        None if !insert => return Some(None),
        Some(r) => {
            out.extend_from_slice(&json[..r.start]);
            out.extend_from_slice(value);
            out.extend_from_slice(&json[r.end..]);
        }
        None => {
            let empty = json[..close].trim_ascii_end().ends_with(b"{");
            out.extend_from_slice(&json[..close]);
            out.extend_from_slice(if empty { b"\"model\":" } else { b",\"model\":" });
            out.extend_from_slice(value);
            out.extend_from_slice(&json[close..]);
        }
    }
    Some(Some(out))
}

/// Just enough of a JSON reader to find a top-level member: it checks the structure it
/// walks (strings, nesting) and skips scalars by their delimiters.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// A string, quotes included.
    fn string(&mut self) -> Option<std::ops::Range<usize>> {
        let start = self.i;
        self.eat(b'"')?;
        loop {
            let rest = self.b.get(self.i..)?;
            let at = memchr::memchr2(b'"', b'\\', rest)?;
            self.i += at + 1;
            if rest[at] == b'"' {
                return Some(start..self.i);
            }
            self.i += 1; // the escaped character
        }
    }

    fn value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => depth -= 1,
                        _ => {}
                    }
                    self.i += 1;
                    if depth == 0 {
                        return Some(());
                    }
                }
            }
            _ => {
                let start = self.i;
                while !matches!(self.peek(), None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')) {
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensures_model_in_whole_bodies() {
        let same = Bytes::from_static(br#"{"model":"m:free","choices":[]}"#);
        assert_eq!(ensure_model(same.clone(), "m:free"), same);
        let other = ensure_model(Bytes::from_static(br#"{"choices":[]}"#), "m:free");
        assert_eq!(&other[..], br#"{"choices":[],"model":"m:free"}"#);
        let check = |body: &str, expected: &str| {
            let got = ensure_model(Bytes::from(body.to_owned()), "m:free");
            assert_eq!(String::from_utf8_lossy(&got), expected, "{body}");
        };
        // Replaced in place, every other byte as it came (spacing, order, nested models).
        check(
            r#"{ "id": "x", "model" : "m", "choices": [{"model": "inner", "s": "\"model\""}] }"#,
            r#"{ "id": "x", "model" : "m:free", "choices": [{"model": "inner", "s": "\"model\""}] }"#,
        );
        check(r#"{"model":null,"n":1.5e3}"#, r#"{"model":"m:free","n":1.5e3}"#);
        check("{ }", r#"{ "model":"m:free"}"#);
        check(r#"{"a":{"model":"x"}}"#, r#"{"a":{"model":"x"},"model":"m:free"}"#);
        // Not an object, or not well formed: passed on untouched.
        for raw in [r#"[1,2]"#, r#"{"model":"m""#, r#"{"a":1}x"#, r#"{"a":"unterminated}"#, ""] {
            check(raw, raw);
        }
    }
}
