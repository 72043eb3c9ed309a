//! Where each top-level member of the body is, as byte ranges: forwarding copies the
//! client's bytes instead of re-encoding them.

use super::scan::{Str, Val};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::ops::Range;

/// A member as the body's reading gives it: its key and what was kept of its value, and
/// where it is.
pub(super) type Located<'a> = ((Str<'a>, Val<'a>), Span);

/// Where one member is in the body.
pub(super) struct Span {
    /// The key with its quotes, when it has no escapes.
    pub(super) key: Option<Range<usize>>,
    pub(super) value: Range<usize>,
}

/// Finds each member's key and value in `text`, the object the members were read from.
///
/// A value starts after its key's closing quote, whitespace and colon, and ends before
/// the whitespace and comma in front of the next key's opening quote (or before the
/// object's closing brace). A value whose end cannot be found that way (the next key
/// has escapes, so its place is unknown) was read as a raw value, or is read once more.
pub(super) fn locate(text: &str, members: &[(Str<'_>, Val<'_>)]) -> Option<Vec<Span>> {
    let b = text.as_bytes();
    let base = text.as_ptr() as usize;
    let offset = |s: &str| (s.as_ptr() as usize).checked_sub(base).filter(|&o| o + s.len() <= b.len());
    let skip_ws = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    let back_ws = |mut i: usize| {
        while i > 0 && b[i - 1].is_ascii_whitespace() {
            i -= 1;
        }
        i
    };
    // The end of a value followed by whitespace, `terminator` and whitespace up to `at`.
    let end_before = |at: usize, terminator: u8| {
        let i = back_ws(at);
        (i > 0 && b[i - 1] == terminator).then(|| back_ws(i - 1))
    };
    let mut out = Vec::with_capacity(members.len());
    for (i, (key, value)) in members.iter().enumerate() {
        let key_span = match key {
            Str::Borrowed(k) => {
                let o = offset(k)?;
                Some(o.checked_sub(1)?..o + k.len() + 1)
            }
            Str::Owned(_) => None,
        };
        let value = match value {
            Val::Raw(r) => {
                let o = offset(r.get())?;
                o..o + r.get().len()
            }
            _ => {
                let after_key = key_span.as_ref()?.end;
                let colon = skip_ws(after_key);
                (b.get(colon) == Some(&b':')).then_some(())?;
                let start = skip_ws(colon + 1);
                let end = match members.get(i + 1) {
                    Some((Str::Borrowed(next), _)) => end_before(offset(next)?.checked_sub(1)?, b',')?,
                    Some((Str::Owned(_), _)) => {
                        let mut de = serde_json::Deserializer::from_str(text.get(start..)?);
                        start + <&RawValue>::deserialize(&mut de).ok()?.get().len()
                    }
                    None => end_before(back_ws(b.len()), b'}')?,
                };
                (start <= end).then_some(start..end)?
            }
        };
        out.push(Span { key: key_span, value });
    }
    Some(out)
}

/// The members of a JSON object, in order, with every key given more than once kept
/// only at its last place (as a JSON map reads them). Pairs are compared for the usual
/// handful of members; sorting keeps this `O(n log n)` whatever the client sends.
pub(super) fn last_of_each<'a, T>(members: Vec<((Str<'a>, T), Span)>) -> impl Iterator<Item = ((Str<'a>, T), Span)> {
    let n = members.len();
    let mut keep = vec![true; n];
    let key = |i: usize| members[i].0.0.as_str();
    if n <= 32 {
        for (i, k) in keep.iter_mut().enumerate() {
            *k = !(i + 1..n).any(|j| key(j) == key(i));
        }
    } else {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| key(a).cmp(key(b)).then(a.cmp(&b)));
        for w in order.windows(2) {
            if key(w[0]) == key(w[1]) {
                keep[w[0]] = false;
            }
        }
    }
    members.into_iter().zip(keep).filter_map(|(m, k)| k.then_some(m))
}
