//! A secret string (an API key) that never prints itself, and the redaction of text
//! that may carry one (an upstream's error body, a URL with a password) before it is kept,
//! logged or shown.

use std::fmt;

/// Holds a key. `Debug` and `Display` print `***`, so a key cannot reach a log line, an
/// error message or a panic through formatting; the only way to the text is `expose`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps the key `s`.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The key itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the key is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// The longest text from outside (an error body, an error message) the router keeps for
/// its pages, logs and decision log; the rest is cut.
pub const MAX_KEPT_TEXT_BYTES: usize = 1024;

/// What stands in for a redacted secret.
const REDACTED: &str = "***";

/// Prefixes of API keys the known providers issue; a word starting with one of them and
/// at least [`MIN_KEY_TAIL`] key characters long is taken for a key.
const KEY_PREFIXES: [&str; 7] = ["sk-", "gsk_", "AIza", "nvapi-", "csk-", "xai-", "hf_"];
const MIN_KEY_TAIL: usize = 16;

/// `text` with every secret the router could know of replaced by `***`: the given keys,
/// any `Bearer` credential, words shaped like a provider's key, and the user information
/// of URLs (`scheme://user:password@host`), then cut to [`MAX_KEPT_TEXT_BYTES`]. Used on
/// everything from outside before it is kept, logged or shown: an upstream or a proxy may
/// echo the `Authorization` header it was sent, and a client error may quote a URL.
pub fn redact(text: &str, keys: &[&Secret]) -> String {
    // Cut generously first (the work stays small), and exactly last, so that a key is
    // never cut in two before it is recognised.
    let out = scrub(bounded(text, 4 * MAX_KEPT_TEXT_BYTES), keys);
    bounded(&out, MAX_KEPT_TEXT_BYTES).to_owned()
}

/// [`redact`] without the cut: for text passed on whole (an upstream's error metadata).
pub fn scrub(text: &str, keys: &[&Secret]) -> String {
    let mut out = text.to_owned();
    for key in keys.iter().map(|k| k.expose()).filter(|k| !k.is_empty()) {
        if out.contains(key) {
            out = out.replace(key, REDACTED);
        }
    }
    redact_userinfo(&redact_words(&out))
}

/// The longest prefix of `text` within `max` bytes that ends on a character boundary.
pub fn bounded(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

/// Replaces the word after `Bearer ` and every word shaped like a provider's key.
fn redact_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut after_bearer = false;
    while let Some(start) = rest.find(is_key_char) {
        let (gap, tail) = rest.split_at(start);
        out.push_str(gap);
        let end = tail.find(|c| !is_key_char(c)).unwrap_or(tail.len());
        let word = &tail[..end];
        let keyish = KEY_PREFIXES.iter().any(|p| word.strip_prefix(p).is_some_and(|t| t.len() >= MIN_KEY_TAIL));
        if (after_bearer && gap.chars().all(|c| c == ' ')) || keyish {
            out.push_str(REDACTED);
        } else {
            out.push_str(word);
        }
        after_bearer = word.eq_ignore_ascii_case("bearer");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `scheme://user:password@host` becomes `scheme://***@host`.
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(at) => {
                out.push_str(REDACTED);
                out.push_str(&tail[at..authority_end]);
            }
            None => out.push_str(&tail[..authority_end]),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{Secret, redact};

    fn check(text: &str, keys: &[&Secret], expected: &str) {
        assert_eq!(redact(text, keys), expected, "{text}");
    }

    #[test]
    fn redacts_keys_bearer_credentials_and_url_passwords() {
        let key = Secret::new("my-private-upstream-key");
        check("echo: Authorization: Bearer my-private-upstream-key", &[&key], "echo: Authorization: Bearer ***");
        check("Bearer abc.def", &[], "Bearer ***");
        check("{\"auth\":\"Bearer xyz\"}", &[], "{\"auth\":\"Bearer xyz\"}".replace("xyz", "***").as_str());
        check("the key my-private-upstream-key leaked", &[&key], "the key *** leaked");
        check("got sk-or-v1-0123456789abcdef0123 back", &[], "got *** back");
        check("sk-short stays", &[], "sk-short stays");
        check("GET http://user:pa55@host:8080/v1/models failed", &[], "GET http://***@host:8080/v1/models failed");
        check("redis://:secret@127.0.0.1:6379/0", &[], "redis://***@127.0.0.1:6379/0");
        check("https://example.com/a@b", &[], "https://example.com/a@b");
        check("nothing secret here: 429 Too Many Requests", &[], "nothing secret here: 429 Too Many Requests");
    }

    #[test]
    fn keeps_at_most_the_limit_on_a_character_boundary() {
        let long = "é".repeat(super::MAX_KEPT_TEXT_BYTES);
        let kept = redact(&long, &[]);
        assert!(kept.len() <= super::MAX_KEPT_TEXT_BYTES && kept.chars().all(|c| c == 'é'));
    }

    #[test]
    fn never_prints_itself() {
        let s = super::Secret::new("sk-or-v1-abc");
        assert_eq!(format!("{s} {s:?} {:?}", Some(&s)), "*** *** Some(***)");
        assert_eq!(s.expose(), "sk-or-v1-abc");
    }
}
