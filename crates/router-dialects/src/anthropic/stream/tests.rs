//! The event stream: its sequence, that it adds up to the whole answer's translation,
//! and that any split of the upstream's bytes gives the same bytes out.

use super::*;
use crate::anthropic::to_message;
use crate::chat::read_answer;
use proptest::prelude::*;
use serde_json::json;

fn run(chunks: &[&[u8]]) -> Vec<u8> {
    let mut s = MessageStream::new("fb", "openrouter/free", 7);
    let mut out = Vec::new();
    for c in chunks {
        s.push(c, &mut out);
    }
    s.finish(&mut out);
    out
}

/// The events as (name, data).
fn events(bytes: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(bytes).expect("utf-8");
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (name, data) = e.split_once('\n').expect("two lines");
            let name = name.strip_prefix("event: ").expect("event line").to_owned();
            let data = serde_json::from_str(data.strip_prefix("data: ").expect("data line")).expect("json");
            (name, data)
        })
        .collect()
}

/// The message the events add up to, as the SDKs accumulate it.
fn accumulate(events: &[(String, Value)]) -> Value {
    let mut message = Value::Null;
    let mut json_bufs: Vec<String> = Vec::new();
    for (name, data) in events {
        assert_eq!(data["type"], name.as_str(), "the event's name is its data's type");
        match name.as_str() {
            "message_start" => message = data["message"].clone(),
            "content_block_start" => {
                let i = data["index"].as_u64().expect("index") as usize;
                let blocks = message["content"].as_array_mut().expect("content");
                assert_eq!(blocks.len(), i, "blocks start in order");
                blocks.push(data["content_block"].clone());
                json_bufs.push(String::new());
            }
            "content_block_delta" => {
                let i = data["index"].as_u64().expect("index") as usize;
                let block = &mut message["content"][i];
                let d = &data["delta"];
                match d["type"].as_str() {
                    Some("text_delta") => {
                        block["text"] = json!(format!(
                            "{}{}",
                            block["text"].as_str().unwrap_or(""),
                            d["text"].as_str().unwrap_or("")
                        ))
                    }
                    Some("thinking_delta") => {
                        block["thinking"] = json!(format!(
                            "{}{}",
                            block["thinking"].as_str().unwrap_or(""),
                            d["thinking"].as_str().unwrap_or("")
                        ))
                    }
                    Some("input_json_delta") => {
                        json_bufs[i].push_str(d["partial_json"].as_str().unwrap_or(""));
                        block["input"] = crate::anthropic::answer::tool_input(&json_bufs[i]);
                    }
                    other => panic!("unknown delta {other:?}"),
                }
            }
            "message_delta" => {
                message["stop_reason"] = data["delta"]["stop_reason"].clone();
                message["usage"] = data["usage"].clone();
            }
            "content_block_stop" | "message_stop" | "ping" => {}
            other => panic!("unexpected event {other}"),
        }
    }
    message
}

fn names(bytes: &[u8]) -> Vec<String> {
    events(bytes).into_iter().map(|(n, _)| n).collect()
}

const TEXT_STREAM: &str = concat!(
    ": OPENROUTER PROCESSING\n\n",
    r#"data: {"id":"gen-1","model":"m:free","created":1,"choices":[{"delta":{"role":"assistant","reasoning":"let me"}}]}"#,
    "\n\n",
    r#"data: {"id":"gen-1","choices":[{"delta":{"reasoning":" think"}}]}"#,
    "\n\n",
    r#"data: {"id":"gen-1","choices":[{"delta":{"content":"Hello"}}]}"#,
    "\n\n",
    r#"data: {"id":"gen-1","choices":[{"delta":{"content":" there"},"finish_reason":"stop"}]}"#,
    "\n\n",
    r#"data: {"id":"gen-1","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

const TOOL_STREAM: &str = concat!(
    r#"data: {"id":"gen-2","model":"m:free","choices":[{"delta":{"content":"Running it."}}]}"#,
    "\n\n",
    r#"data: {"id":"gen-2","choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"Bash","arguments":""}}]}}]}"#,
    "\n\n",
    r#"data: {"id":"gen-2","choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"command\":"}}]}}]}"#,
    "\n\n",
    r#"data: {"id":"gen-2","choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"echo hi\"}"}}]}}]}"#,
    "\n\n",
    r#"data: {"id":"gen-2","choices":[{"delta":{"tool_calls":[{"index":1,"id":"call_2","function":{"name":"Read","arguments":"{\"file_path\":\"/x\"}"}}]},"finish_reason":"tool_calls"}]}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

#[test]
fn a_text_stream_is_the_event_sequence() {
    let out = run(&[TEXT_STREAM.as_bytes()]);
    assert_eq!(
        names(&out),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
}

/// The stream adds up to what the whole answer translates to.
fn check_adds_up(stream: &str, whole: &str) {
    let streamed = accumulate(&events(&run(&[stream.as_bytes()])));
    let answer = read_answer(whole.as_bytes()).expect("chat answer");
    let mut expected = to_message(&answer, "fb", 7);
    expected["model"] = json!(answer.model);
    assert_eq!(streamed, expected);
}

#[test]
fn a_text_stream_adds_up_to_the_whole_answer() {
    check_adds_up(
        TEXT_STREAM,
        r#"{"id":"gen-1","model":"m:free","choices":[{"finish_reason":"stop","message":{"content":"Hello there","reasoning":"let me think"}}],
            "usage":{"prompt_tokens":12,"completion_tokens":3}}"#,
    );
}

#[test]
fn a_tool_stream_adds_up_to_the_whole_answer() {
    check_adds_up(
        TOOL_STREAM,
        r#"{"id":"gen-2","model":"m:free","choices":[{"finish_reason":"tool_calls","message":{"content":"Running it.","tool_calls":[
            {"id":"call_1","function":{"name":"Bash","arguments":"{\"command\":\"echo hi\"}"}},
            {"id":"call_2","function":{"name":"Read","arguments":"{\"file_path\":\"/x\"}"}}]}}]}"#,
    );
}

#[test]
fn an_error_chunk_is_an_error_event_and_the_end() {
    let out = run(&[
        b"data: {\"id\":\"g\",\"model\":\"m\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n",
        b"data: {\"error\":{\"code\":429,\"message\":\"slow down\"}}\n\ndata: [DONE]\n\n",
    ]);
    let evs = events(&out);
    let (name, data) = evs.last().expect("events");
    assert_eq!(name, "error");
    assert_eq!(data, &json!({"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}));
    assert!(!names(&out).contains(&"message_stop".to_owned()));
}

#[test]
fn a_stream_cut_without_done_still_ends_the_message() {
    let out = run(&[b"data: {\"id\":\"g\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"]);
    let msg = accumulate(&events(&out));
    assert_eq!(msg["content"], json!([{"type":"text","text":"a"}]));
    assert_eq!(msg["stop_reason"], "end_turn");
    assert_eq!(msg["model"], "openrouter/free");
}

#[test]
fn a_failure_after_the_start_is_an_error_event() {
    let mut s = MessageStream::new("fb", "m", 0);
    s.push(b"data: {\"id\":\"g\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n", &mut Vec::new());
    let mut out = Vec::new();
    s.fail(504, "no chunk for 60 s", &mut out);
    assert_eq!(names(&out), ["error"]);
    assert!(s.is_ended());
    let mut rest = Vec::new();
    s.finish(&mut rest);
    assert!(rest.is_empty());
}

#[test]
fn a_whole_answer_to_a_streamed_request_becomes_events_that_add_up_to_it() {
    for whole in [
        r#"{"id":"gen-1","model":"m:free","choices":[{"finish_reason":"stop","message":{"content":"Hello there","reasoning":"let me think"}}],
            "usage":{"prompt_tokens":12,"completion_tokens":3}}"#,
        r#"{"id":"gen-2","model":"m:free","choices":[{"finish_reason":"tool_calls","message":{"content":"Running it.","tool_calls":[
            {"id":"call_1","function":{"name":"Bash","arguments":"{\"command\":\"echo hi\"}"}}]}}]}"#,
    ] {
        let message = to_message(&read_answer(whole.as_bytes()).expect("chat answer"), "fb", 7);
        assert_eq!(accumulate(&events(&whole_as_events(&serde_json::to_vec(&message).unwrap_or_default()))), message);
    }
}

proptest! {
    #[test]
    fn any_split_gives_the_same_events(which in 0usize..2, cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10)) {
        let bytes = [TEXT_STREAM, TOOL_STREAM][which].as_bytes();
        let whole = run(&[bytes]);
        for cut in 0..=bytes.len() {
            prop_assert_eq!(&run(&[&bytes[..cut], &bytes[cut..]]), &whole);
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut start = 0;
        for c in cuts {
            pieces.push(&bytes[start..c]);
            start = c;
        }
        pieces.push(&bytes[start..]);
        prop_assert_eq!(run(&pieces), whole);
    }
}

/// A streamed answer in the order upstreams send it: reasoning, text, then tool calls
/// (each a name and its arguments in fragments), with the finish and usage at the end.
/// Reasoning fragments, text fragments, and tool calls (a name, argument fragments).
type Streamed = (Vec<String>, Vec<String>, Vec<(String, Vec<String>)>);

fn streamed_answer() -> impl Strategy<Value = Streamed> {
    let fragment = "[a-zé \"\\\\{}]{1,5}";
    (
        prop::collection::vec(fragment, 0..3),
        prop::collection::vec(fragment, 0..3),
        prop::collection::vec(("[A-Za-z]{1,6}", prop::collection::vec(fragment, 0..3)), 0..3),
    )
}

proptest! {
    /// Whatever the fragments, the events add up to the whole answer's translation.
    #[test]
    fn the_events_add_up_to_the_whole_answer((reasoning, text, calls) in streamed_answer()) {
        let chunk = |delta: Value, finish: Value| {
            format!("data: {}\n\n", json!({"id": "gen-p", "model": "m:free", "choices": [{"delta": delta, "finish_reason": finish}]}))
        };
        let mut stream = String::new();
        for r in &reasoning {
            stream.push_str(&chunk(json!({"reasoning": r}), Value::Null));
        }
        for t in &text {
            stream.push_str(&chunk(json!({"content": t}), Value::Null));
        }
        for (i, (name, args)) in calls.iter().enumerate() {
            let start = json!({"tool_calls": [{"index": i, "id": format!("call_{i}"), "type": "function", "function": {"name": name, "arguments": ""}}]});
            stream.push_str(&chunk(start, Value::Null));
            for a in args {
                stream.push_str(&chunk(json!({"tool_calls": [{"index": i, "function": {"arguments": a}}]}), Value::Null));
            }
        }
        let finish = if calls.is_empty() { "stop" } else { "tool_calls" };
        stream.push_str(&chunk(json!({}), json!(finish)));
        stream.push_str("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":9}}\n\ndata: [DONE]\n\n");

        let tool_calls: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, (name, args))| json!({"id": format!("call_{i}"), "function": {"name": name, "arguments": args.concat()}}))
            .collect();
        let mut message = json!({"content": text.concat()});
        if !reasoning.is_empty() {
            message["reasoning"] = json!(reasoning.concat());
        }
        if !tool_calls.is_empty() {
            message["tool_calls"] = json!(tool_calls);
        }
        let whole = json!({"id": "gen-p", "model": "m:free", "choices": [{"finish_reason": finish, "message": message}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 9}});
        let expected = to_message(&read_answer(whole.to_string().as_bytes()).expect("chat answer"), "fb", 7);
        prop_assert_eq!(accumulate(&events(&run(&[stream.as_bytes()]))), expected);
    }
}
