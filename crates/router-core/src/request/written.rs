//! A chat body that a dialect wrote itself (a Messages or Responses request translated),
//! read from where its writer says each top-level member lies: the same analysis as a
//! client's body, without a second walk of the top level to find the members.

use super::locate::{Located, Span};
use super::requirements::{LOST, RequestError};
use super::scan::{Messages, Str, Val};
use crate::sse::json::is_plain;
use std::ops::Range;

/// Where one top-level member of a written body lies, as byte ranges of the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenMember {
    /// The key with its quotes; a key without escapes (a dialect writes its own literals).
    pub key: Range<usize>,
    /// The value, a whole JSON value.
    pub value: Range<usize>,
}

/// The members of `text` where `members` say they are, each as the body's reading gives
/// it, for the analysis ([`super::ChatRequest::from_written`]); a key written twice is
/// refused at once, a span outside the body or off its key's quotes when it is reached.
pub(super) fn read<'a>(
    text: &'a str,
    members: &'a [WrittenMember],
) -> Result<impl Iterator<Item = Result<Located<'a>, RequestError>>, RequestError> {
    // A writer writes each key once; a client's repeated key keeps its last.
    let key = |m: &WrittenMember| text.get(m.key.clone());
    if let Some((_, twice)) = members.iter().enumerate().find(|(i, m)| members[..*i].iter().any(|p| key(p) == key(m))) {
        let name = key(twice).unwrap_or_default().trim_matches('"');
        return Err(RequestError::Json(format!("the member `{name}` is written twice")));
    }
    Ok(members.iter().map(move |m| member(text, m).ok_or_else(|| RequestError::Json(LOST.into()))))
}

/// One member as the body's reading gives it: its key, `messages` analysed, and where it is.
fn member<'a>(text: &'a str, m: &WrittenMember) -> Option<Located<'a>> {
    let quoted = text.get(m.key.clone())?;
    let key = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let raw_value = text.get(m.value.clone())?;
    // A word at a time: a char pattern decoded every character of every key.
    if !is_plain(key.as_bytes()) || raw_value.is_empty() {
        return None;
    }
    let value = match key {
        "messages" => Val::Messages(serde_json::from_str::<Messages>(raw_value).ok()?),
        _ => Val::Skipped,
    };
    Some(((Str::Borrowed(key), value), Span { key: Some(m.key.clone()), value: m.value.clone() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChatRequest;
    use bytes::Bytes;

    /// A body and the spans of its members, found by the test from the keys it names.
    fn spans(body: &str, keys: &[&str]) -> Vec<WrittenMember> {
        let b = body.as_bytes();
        keys.iter()
            .map(|k| {
                let quoted = format!("\"{k}\":");
                let start = body.find(&quoted).expect("key");
                let value_start = start + quoted.len();
                let mut de = serde_json::Deserializer::from_str(&body[value_start..]);
                let raw: &serde_json::value::RawValue = serde::Deserialize::deserialize(&mut de).expect("value");
                assert!(b.len() >= value_start + raw.get().len());
                WrittenMember { key: start..start + k.len() + 2, value: value_start..value_start + raw.get().len() }
            })
            .collect()
    }

    fn check(body: &str, keys: &[&str]) {
        let written = ChatRequest::from_written(Bytes::from(body.to_owned()), &spans(body, keys)).expect("written");
        let read = ChatRequest::from_bytes(Bytes::from(body.to_owned())).expect("read");
        assert_eq!(format!("{written:?}"), format!("{read:?}"), "{body}");
        assert_eq!(written.session_key(), read.session_key());
        for plain in [false, true] {
            assert_eq!(written.body_for_upstream("m", plain, Some(7)), read.body_for_upstream("m", plain, Some(7)));
        }
    }

    #[test]
    fn a_written_body_reads_as_a_client_s_body() {
        check(
            r#"{"model":"openrouter/free","messages":[{"role":"user","content":"hi"}],"stream":true}"#,
            &["model", "messages", "stream"],
        );
        check(
            r#"{"model":"a/b:free","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}],"tools":[{"type":"function","function":{"name":"f"}}],"max_tokens":9,"user":"u1","models":["c/d:free"]}"#,
            &["model", "messages", "tools", "max_tokens", "user", "models"],
        );
    }

    #[test]
    fn a_span_off_the_body_or_its_keys_is_refused() {
        let body = r#"{"model":"m","messages":[]}"#;
        let good = spans(body, &["model", "messages"]);
        let bad = [
            WrittenMember { key: 1..8, value: 9..400 },
            WrittenMember { key: 2..8, value: 9..12 },
            WrittenMember { key: 1..8, value: 9..9 },
            WrittenMember { key: Range { start: 50, end: 40 }, value: 9..12 },
        ];
        for b in bad {
            let members = [b.clone(), good[1].clone()];
            let got = ChatRequest::from_written(Bytes::from_static(body.as_bytes()), &members);
            assert!(matches!(got, Err(RequestError::Json(_))), "{b:?}");
        }
        let twice = r#"{"model":"m","model":"n"}"#;
        let members = [WrittenMember { key: 1..8, value: 9..12 }, WrittenMember { key: 13..20, value: 21..24 }];
        let got = ChatRequest::from_written(Bytes::from_static(twice.as_bytes()), &members);
        assert!(matches!(got, Err(RequestError::Json(m)) if m.contains("`model` is written twice")));
        // A value that is not what `messages` must be is refused as a client's body's is.
        let wrong = r#"{"model":"m","messages":"hi"}"#;
        let written =
            ChatRequest::from_written(Bytes::from_static(wrong.as_bytes()), &spans(wrong, &["model", "messages"]));
        let read = ChatRequest::from_bytes(Bytes::from_static(wrong.as_bytes()));
        assert_eq!(written.map(|r| format!("{r:?}")), read.map(|r| format!("{r:?}")));
    }
}
