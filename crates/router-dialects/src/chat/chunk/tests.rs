//! The skimming chunk reader against the checking walk ([`super::super::wire::read`]):
//! the same members for any valid JSON (members in any order, nested values in skipped
//! members, escapes, whitespace), and no panic on anything else.

use super::super::wire::{self, Body};
use super::{Repeats, read};
use proptest::prelude::*;

/// What the checking walk reads (`None`: refused), as text to compare.
fn checked(bytes: &[u8], meta: bool) -> Option<String> {
    wire::read(bytes, meta, |body| format!("{body:?}")).ok()
}

fn skimmed(bytes: &[u8], meta: bool) -> Option<String> {
    let mut body = Body::default();
    read(bytes, meta, &mut Repeats::default(), &mut body).map(|()| format!("{body:?}"))
}

/// Read after `earlier` (which may leave a head behind).
fn skimmed_after(earlier: &[u8], bytes: &[u8]) -> Option<String> {
    let mut repeats = Repeats::default();
    let _ = read(earlier, false, &mut repeats, &mut Body::default());
    let mut body = Body::default();
    read(bytes, false, &mut repeats, &mut body).map(|()| format!("{body:?}"))
}

#[test]
fn a_recorded_chunk_reads_as_the_checking_walk_reads_it() {
    let chunk = br#"{"id":"gen-1","provider":"P","model":"m:free","created":17,"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi \"there\"\n"},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}"#;
    for meta in [true, false] {
        let got = skimmed(chunk, meta);
        assert!(got.is_some());
        assert_eq!(got, checked(chunk, meta));
    }
    let mut body = Body::default();
    read(chunk, true, &mut Repeats::default(), &mut body).expect("a chunk");
    let delta = body.choice.and_then(|c| c.delta).flatten().expect("a delta");
    assert_eq!(delta.content.as_deref(), Some("Hi \"there\"\n"));
}

#[test]
fn the_head_a_chunk_leaves_ends_at_the_first_member_read() {
    let first = br#"{"id":"gen-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}"#;
    let mut repeats = Repeats::default();
    read(first, false, &mut repeats, &mut Body::default()).expect("a chunk");
    let head = repeats.head().to_vec();
    assert_eq!(
        head,
        br#"{"id":"gen-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant",""#
    );
    let next = br#"{"id":"gen-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","reasoning":"x\"y"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3}}"#;
    assert_eq!(skimmed_after(first, next), checked(next, false));
    assert!(skimmed_after(first, next).is_some_and(|b| b.contains("x\\\"y") && b.contains("stop")));
    // With `meta` (the first chunk), `id` is read and the same head is kept.
    let mut with_meta = Repeats::default();
    read(first, true, &mut with_meta, &mut Body::default()).expect("a chunk");
    assert_eq!(with_meta.head(), head);
    // What followed the delta to the end of `choices` is kept as the tail.
    assert_eq!(with_meta.tail(), br#","finish_reason":null}]"#);
}

#[test]
fn what_is_not_one_object_is_refused() {
    for bad in
        [&b""[..], b"not json", b"[1]", b"{\"a\":1} x", b"{\"a\":1}{\"b\":2}", b"{\"a\":[}", b"{\"a\"", b"{\"a\":1,}"]
    {
        assert_eq!(skimmed(bad, true), None, "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn a_malformed_member_that_is_skimmed_does_not_drop_the_chunk() {
    let chunk = b"{\"provider\":tru,\"choices\":[{\"delta\":{\"content\":\"a\"}}]}";
    assert_eq!(checked(chunk, true), None);
    assert!(skimmed(chunk, true).is_some_and(|b| b.contains("\"a\"")));
}

#[test]
fn nesting_beyond_the_limit_is_refused() {
    let deep = format!("{{\"x\":{}{}}}", "[".repeat(129), "]".repeat(129));
    assert_eq!(skimmed(deep.as_bytes(), true), None);
    let fine = format!("{{\"x\":{}{}}}", "[".repeat(128), "]".repeat(128));
    assert!(skimmed(fine.as_bytes(), true).is_some());
}

/// A JSON value, written by [`write`] with members in the order generated.
#[derive(Clone, Debug)]
enum J {
    Lit(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

/// Every key the reader looks for, at any level, and one it does not.
const KEYS: &[&str] = &[
    "id",
    "model",
    "created",
    "choices",
    "usage",
    "error",
    "delta",
    "message",
    "finish_reason",
    "stop_reason",
    "content",
    "reasoning",
    "reasoning_content",
    "refusal",
    "tool_calls",
    "index",
    "function",
    "name",
    "arguments",
    "text",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
    "cached_tokens",
    "reasoning_tokens",
    "other",
];

fn write(j: &J, pad: &str, out: &mut String) {
    match j {
        J::Lit(l) => out.push_str(l),
        J::Str(s) => out.push_str(&serde_json::to_string(s).expect("a string")),
        J::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(pad);
                write(item, pad, out);
            }
            out.push_str(pad);
            out.push(']');
        }
        J::Obj(members) => {
            out.push('{');
            for (i, (key, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(pad);
                out.push_str(&serde_json::to_string(key).expect("a key"));
                out.push_str(pad);
                out.push(':');
                out.push_str(pad);
                write(value, pad, out);
            }
            out.push_str(pad);
            out.push('}');
        }
    }
}

fn leaf() -> impl Strategy<Value = J> {
    prop_oneof![
        prop::sample::select(vec!["null", "true", "false", "0", "7", "-3", "1.5", "2e3", "12345678901234567890"])
            .prop_map(|l| J::Lit(l.to_owned())),
        "[a-zé \"\\\\\n\u{1}{}\\[\\]:,]{0,6}".prop_map(J::Str),
    ]
}

/// Any value, with keys drawn mostly from [`KEYS`] so that every reading path is taken.
fn value() -> impl Strategy<Value = J> {
    leaf().prop_recursive(5, 48, 5, |inner| {
        let key = prop_oneof![4 => prop::sample::select(KEYS).prop_map(str::to_owned), 1 => "[a-z_\\\\\"]{0,4}"];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(J::Arr),
            prop::collection::vec((key, inner), 0..5).prop_map(J::Obj),
        ]
    })
}

/// An object of `members` (each perhaps left out) and some others, in any order.
fn object(members: Vec<(&'static str, BoxedStrategy<J>)>) -> BoxedStrategy<J> {
    let wanted: Vec<_> = members
        .into_iter()
        .map(|(k, v)| prop::option::weighted(0.8, v).prop_map(move |v| v.map(|v| (k.to_owned(), v))))
        .collect();
    let others = prop::collection::vec(("[a-z_]{1,8}", value()), 0..3);
    (wanted, others)
        .prop_map(|(wanted, others)| wanted.into_iter().flatten().chain(others).collect::<Vec<_>>())
        .prop_shuffle()
        .prop_map(J::Obj)
        .boxed()
}

fn text() -> BoxedStrategy<J> {
    prop_oneof![4 => "[a-zé \"\\\\\n{}]{0,6}".prop_map(J::Str), 1 => value()].boxed()
}

fn count() -> BoxedStrategy<J> {
    prop_oneof![4 => (0u64..40).prop_map(|n| J::Lit(n.to_string())), 1 => leaf()].boxed()
}

/// A chunk as upstreams write them, with every member the reader wants perhaps present.
fn chunk() -> impl Strategy<Value = J> {
    let function = object(vec![("name", text()), ("arguments", text())]);
    let call = object(vec![("index", count()), ("id", text()), ("function", function)]);
    let calls = prop_oneof![4 => prop::collection::vec(call, 0..3).prop_map(J::Arr), 1 => leaf()].boxed();
    let part = object(vec![("type", text()), ("text", text())]);
    let content = prop_oneof![4 => text(), 1 => prop::collection::vec(part, 0..3).prop_map(J::Arr)].boxed();
    let delta = object(vec![
        ("role", text()),
        ("content", content),
        ("reasoning", text()),
        ("reasoning_content", text()),
        ("refusal", text()),
        ("tool_calls", calls),
    ]);
    let choice = object(vec![
        ("index", count()),
        ("delta", delta.clone()),
        ("message", delta),
        ("finish_reason", text()),
        ("stop_reason", text()),
    ]);
    let choices = prop::collection::vec(choice, 0..3).prop_map(J::Arr).boxed();
    let details = |k: &'static str| object(vec![(k, count())]);
    let usage = object(vec![
        ("prompt_tokens", count()),
        ("completion_tokens", count()),
        ("total_tokens", count()),
        ("prompt_tokens_details", details("cached_tokens")),
        ("completion_tokens_details", details("reasoning_tokens")),
    ]);
    let error = object(vec![("code", count()), ("message", text())]);
    object(vec![
        ("id", text()),
        ("model", text()),
        ("created", count()),
        ("object", text()),
        ("choices", choices),
        ("usage", usage),
        ("error", prop_oneof![Just(J::Lit("null".to_owned())), error].boxed()),
    ])
}

fn written(j: &J, pad: &str) -> String {
    let mut out = String::new();
    write(j, pad, &mut out);
    out
}

proptest! {
    #[test]
    fn any_valid_chunk_reads_as_the_checking_walk_reads_it(
        j in prop_oneof![3 => chunk(), 1 => value()],
        pad in prop::sample::select(vec!["", " ", "\n", " \r\n\t"]),
        meta in any::<bool>(),
    ) {
        let text = written(&j, pad);
        let old = checked(text.as_bytes(), meta);
        if matches!(j, J::Obj(_)) {
            prop_assert!(old.is_some(), "the checking walk reads every object: {}", text);
        }
        prop_assert_eq!(skimmed(text.as_bytes(), meta), old, "{}", text);
    }

    /// Cut or changed anywhere: no panic, and whatever the checking walk still reads
    /// (valid JSON) reads the same.
    #[test]
    fn damaged_chunks_never_panic(j in chunk(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
        let mut bytes = written(&j, "").into_bytes();
        let i = at.index(bytes.len());
        if cut {
            bytes.truncate(i);
        } else {
            bytes[i] = byte;
        }
        let new = skimmed(&bytes, true);
        if let Some(old) = checked(&bytes, true) {
            prop_assert_eq!(new, Some(old));
        }
    }

    /// A chunk that begins with the head an earlier one left reads as it reads alone,
    /// whatever follows the head.
    #[test]
    fn a_known_head_reads_as_the_whole(
        earlier in chunk(),
        other in chunk(),
        cut in any::<prop::sample::Index>(),
        own in any::<bool>(),
        meta in any::<bool>(),
    ) {
        let earlier = written(&earlier, "");
        let mut repeats = Repeats::default();
        let _ = read(earlier.as_bytes(), meta, &mut repeats, &mut Body::default());
        let head = repeats.head().to_vec();
        let tail = if own {
            earlier.as_bytes()[head.len().min(earlier.len())..].to_vec()
        } else {
            let other = written(&other, "").into_bytes();
            other[cut.index(other.len() + 1)..].to_vec()
        };
        let bytes = [head.as_slice(), &tail].concat();
        let mut body = Body::default();
        let after = read(&bytes, false, &mut repeats, &mut body).map(|()| format!("{body:?}"));
        prop_assert_eq!(after, skimmed(&bytes, false));
    }

    /// A chunk with the head and the tail an earlier one left, and anything between and
    /// after them, reads as it reads alone.
    #[test]
    fn a_known_head_and_tail_read_as_the_whole(
        earlier in prop_oneof![
            1 => chunk().prop_map(|j| written(&j, "")),
            2 => prop::sample::select(vec![
                r#"{"id":"g","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null,"logprobs":null}]}"#,
                r#"{"choices":[{"delta":{"content":"a"}},{"delta":{}}],"usage":null}"#,
                r#"{"choices":[{"delta":{"reasoning":"a","x":[1,{"y":"}"}]},"stop_reason":null}]}"#,
            ]).prop_map(str::to_owned),
        ],
        middle in prop::sample::select(vec![
            // The head ends on the opening quote of a key.
            "content\":\"a\"}", "content\":\"a\",\"x\":{}}", "reasoning\":1}", "x\":\"}\"}",
            "content\":\"b\"},\"delta\":{}}", "content\":\"a\"", "}", "",
        ]),
        after in prop::sample::select(vec!["}", ",\"usage\":{\"prompt_tokens\":3}}", ",\"choices\":[]}", "", "]}", "} x"]),
        meta in any::<bool>(),
    ) {
        let mut repeats = Repeats::default();
        let _ = read(earlier.as_bytes(), meta, &mut repeats, &mut Body::default());
        let bytes = [repeats.head(), middle.as_bytes(), repeats.tail(), after.as_bytes()].concat();
        let mut body = Body::default();
        let kept = read(&bytes, false, &mut repeats, &mut body).map(|()| format!("{body:?}"));
        prop_assert_eq!(kept, skimmed(&bytes, false));
    }

    #[test]
    fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64), meta in any::<bool>()) {
        let _ = read(&bytes, meta, &mut Repeats::default(), &mut Body::default());
    }
}
