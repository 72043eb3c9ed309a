//! The ids the router gives a model's tool calls on the Messages and Responses surfaces:
//! of one length, drawn from the answer's own id, the call's place in it and the
//! upstream's id, never the upstream's id itself.
//!
//! Upstreams number their calls: `call_0` in every answer (vLLM, llama.cpp, Kimi's
//! `functions.Bash:0`), or `call_7` and `call_7_1` within one. Handed on as they are, a
//! conversation holds the same id twice (a Responses request with two calls of one id is
//! ambiguous, and refused), and Claude Code, which pairs a result with its call by the
//! start of its id, gave `toolu_call_7` the result of `toolu_call_7_1`. Ids of one length
//! are never the start of another, and these differ from answer to answer.

use std::hash::{DefaultHasher, Hash, Hasher};

/// The base-62 digits after an id's prefix: two 64-bit hashes, eleven digits each.
pub(crate) const DIGITS: usize = 22;

/// `prefix` and [`DIGITS`] letters and digits drawn from `answer` (ids that together are
/// unique to the answer), the call's `index` in it and the `upstream`'s id for it. The
/// same inputs give the same id (a stream and a whole answer agree).
pub(crate) fn made(prefix: &str, answer: &[&str], index: usize, upstream: &str) -> String {
    let half = |part: u8| {
        let mut h = DefaultHasher::new();
        (part, answer, index, upstream).hash(&mut h);
        h.finish()
    };
    let mut id = String::with_capacity(prefix.len() + DIGITS);
    id.push_str(prefix);
    for part in [0, 1] {
        base62(&mut id, half(part));
    }
    id
}

/// `n` in eleven base-62 digits (62¹¹ > 2⁶⁴), most significant first.
fn base62(out: &mut String, mut n: u64) {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut digits = [b'0'; DIGITS / 2];
    for d in digits.iter_mut().rev() {
        *d = ALPHABET[usize::try_from(n % 62).unwrap_or(0)];
        n /= 62;
    }
    out.extend(digits.iter().map(|&d| char::from(d)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_one_length_and_none_starts_another() {
        assert_eq!(made("call_", &["resp_1"], 0, "call_0"), made("call_", &["resp_1"], 0, "call_0"), "the same call");
        let mut ids = Vec::new();
        for answer in ["resp_1", "resp_2", "resp_1x"] {
            for (index, upstream) in ["call_0", "call_0_1", "", "", "functions.Bash:0"].iter().enumerate() {
                ids.push(made("call_", &[answer], index, upstream));
            }
        }
        for (i, a) in ids.iter().enumerate() {
            assert_eq!(a.len(), "call_".len() + DIGITS, "{a}");
            assert!(a["call_".len()..].bytes().all(|b| b.is_ascii_alphanumeric()), "{a}");
            for b in &ids[i + 1..] {
                assert!(!a.starts_with(b.as_str()) && !b.starts_with(a.as_str()), "{a} and {b}");
            }
        }
    }

    #[test]
    fn base62_is_eleven_digits_most_significant_first() {
        let digits = |n| {
            let mut s = String::new();
            base62(&mut s, n);
            s
        };
        assert_eq!(digits(0), "00000000000");
        assert_eq!(digits(61), "0000000000z");
        assert_eq!(digits(62), "00000000010");
        assert_eq!(digits(u64::MAX), "LygHa16AHYF");
    }
}
