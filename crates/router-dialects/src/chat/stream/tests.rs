//! The stream reader: recorded-like streams, quirks, and the split-anywhere property.

use super::*;
use crate::chat::Usage;
use proptest::prelude::*;

fn check(stream: &str, expected: &[Delta]) {
    let mut reader = ChunkReader::new();
    let mut got = reader.push(stream.as_bytes());
    got.extend(reader.finish());
    assert_eq!(got, expected);
}

fn all_at_once(bytes: &[u8]) -> Vec<Delta<'static>> {
    let mut reader = ChunkReader::new();
    let mut got = reader.push(bytes);
    got.extend(reader.finish());
    got
}

fn in_pieces(bytes: &[u8], cuts: &[usize]) -> Vec<Delta<'static>> {
    let mut reader = ChunkReader::new();
    let mut got = Vec::new();
    let mut start = 0;
    for &cut in cuts {
        got.extend(reader.push(&bytes[start..cut]));
        start = cut;
    }
    got.extend(reader.push(&bytes[start..]));
    got.extend(reader.finish());
    got
}

fn meta(model: &str) -> Delta<'_> {
    Delta::Meta { id: "gen-1".into(), model: model.into(), created: 5 }
}

#[test]
fn comments_reasoning_text_usage_and_done() {
    check(
        ": OPENROUTER PROCESSING\n\n\
         data: {\"id\":\"gen-1\",\"model\":\"m:free\",\"created\":5,\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"reasoning\":\"hm\"}}]}\n\n\
         : OPENROUTER PROCESSING\n\n\
         data: {\"id\":\"gen-1\",\"model\":\"m:free\",\"choices\":[{\"delta\":{\"reasoning_content\":\" ok\"}}]}\n\n\
         data: {\"id\":\"gen-1\",\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n\
         data: {\"id\":\"gen-1\",\"choices\":[{\"delta\":{\"content\":\"!\"},\"finish_reason\":\"stop\"}]}\n\n\
         data: {\"id\":\"gen-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n\
         data: [DONE]\n\n",
        &[
            meta("m:free"),
            Delta::Reasoning("hm".into()),
            Delta::Reasoning(" ok".into()),
            Delta::Text("Hi".into()),
            Delta::Text("!".into()),
            Delta::Finish("stop".into()),
            Delta::Usage(Usage { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5, ..Usage::default() }),
            Delta::Done,
        ],
    );
}

#[test]
fn crlf_and_multi_line_data() {
    check(
        "event: x\r\ndata: {\"id\":\"gen-1\",\"model\":\"m\",\"created\":5,\r\ndata: \"choices\":[{\"delta\":{\"content\":\"a\"}}]}\r\n\r\ndata:[DONE]\r\n\r\n",
        &[meta("m"), Delta::Text("a".into()), Delta::Done],
    );
}

#[test]
fn tool_calls_by_index_and_by_id() {
    check(
        concat!(
            r#"data: {"id":"gen-1","model":"m","created":5,"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"read","arguments":""}}]}}]}"#,
            "\n\n",
            r#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"p\":"}}]}}]}"#,
            "\n\n",
            r#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"arguments":"1}"}}]}}]}"#,
            "\n\n",
            // A provider that gives its second call index 0 again, with another id.
            r#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c2","function":{"name":"ls","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#,
            "\n\n",
        ),
        &[
            meta("m"),
            Delta::ToolCallStart { index: 0, id: "c1".into(), name: "read".into() },
            Delta::ToolCallArguments { index: 0, fragment: "{\"p\":".into() },
            Delta::ToolCallArguments { index: 0, fragment: "1}".into() },
            Delta::ToolCallStart { index: 1, id: "c2".into(), name: "ls".into() },
            Delta::ToolCallArguments { index: 1, fragment: "{}".into() },
            Delta::Finish("tool_calls".into()),
        ],
    );
}

#[test]
fn an_error_chunk_after_the_start() {
    check(
        "data: {\"id\":\"gen-1\",\"model\":\"m\",\"created\":5,\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n\
         data: {\"id\":\"gen-1\",\"error\":{\"code\":400,\"message\":\"Token limit reached\"},\"choices\":[{\"delta\":{},\"finish_reason\":\"error\"}]}\n\n\
         data: [DONE]\n\n",
        &[
            meta("m"),
            Delta::Text("a".into()),
            Delta::Error(ChatError { status: Some(400), kind: None, message: "Token limit reached".into() }),
            Delta::Done,
        ],
    );
}

#[test]
fn a_line_break_inside_a_data_line_ends_it() {
    // Over two lines, the event's data is the first line only (not JSON); the second is a
    // field of its own. The next event, with whitespace before its CRLF, reads as usual.
    check(
        "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\n\"x\":1}\n\n\
         data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]} \t\r\n\r\n",
        &[Delta::Text("b".into())],
    );
}

#[test]
fn a_last_event_without_its_blank_line_is_read_at_finish() {
    let mut reader = ChunkReader::new();
    assert_eq!(reader.push(b"data: [DONE]"), vec![]);
    assert_eq!(reader.finish(), vec![Delta::Done]);
}

#[test]
fn an_endless_line_is_dropped_with_an_error() {
    let mut reader = ChunkReader::new();
    let big = vec![b'x'; MAX_EVENT_BYTES + 1];
    let got = reader.push(&big);
    assert!(matches!(got.as_slice(), [Delta::Error(_)]), "{got:?}");
    assert_eq!(reader.push(b"more\n\ndata: [DONE]\n\n"), vec![Delta::Done]);
}

/// One event of a generated stream, written as the upstream would.
fn event() -> impl Strategy<Value = String> {
    let text = "[a-zé \"\\\\{}\n]{0,6}";
    prop_oneof![
        Just(": OPENROUTER PROCESSING\n\n".to_owned()),
        text.prop_map(|t| format!("data: {}\n\n", serde_json::json!({"choices":[{"delta":{"content":t}}]}))),
        text.prop_map(|t| format!("data: {}\n\n", serde_json::json!({"choices":[{"delta":{"reasoning":t}}]}))),
        text.prop_map(|t| format!("data: {} \r\n\r\n", serde_json::to_string_pretty(&serde_json::json!({"choices":[{"delta":{"content":t}}]})).unwrap_or_default())),
        (0u64..3, "[a-z]{0,3}", text).prop_map(|(i, id, a)| format!(
            "data: {}\r\n\r\n",
            serde_json::json!({"choices":[{"delta":{"tool_calls":[{"index":i,"id":id,"function":{"name":"f","arguments":a}}]}}]})
        )),
        Just("data: {\"id\":\"g\",\"model\":\"m\",\"created\":1,\"choices\":[]}\n\n".to_owned()),
        Just("data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1}}\n\n".to_owned()),
        Just("data: {\"error\":{\"code\":502,\"message\":\"gone\"}}\n\n".to_owned()),
        Just("data: [DONE]\n\n".to_owned()),
        Just("data: not json\n\n".to_owned()),
    ]
}

proptest! {
    #[test]
    fn split_at_every_position_reads_the_same(events in prop::collection::vec(event(), 0..8)) {
        let bytes = events.concat().into_bytes();
        let whole = all_at_once(&bytes);
        for cut in 0..=bytes.len() {
            prop_assert_eq!(&in_pieces(&bytes, &[cut]), &whole, "cut at {}", cut);
        }
    }

    #[test]
    fn split_into_many_pieces_reads_the_same(
        events in prop::collection::vec(event(), 0..8),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let bytes = events.concat().into_bytes();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        cuts.sort_unstable();
        prop_assert_eq!(in_pieces(&bytes, &cuts), all_at_once(&bytes));
    }
}

proptest! {
    /// The word-at-a-time search finds the first newline wherever it is.
    #[test]
    fn newline_finds_the_first(bytes in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'a'), Just(0x8a_u8), any::<u8>()], 0..40)) {
        prop_assert_eq!(newline(&bytes), bytes.iter().position(|&b| b == b'\n'));
    }
}
