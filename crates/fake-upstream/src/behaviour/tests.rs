//! Each behaviour's bytes: OpenRouter's shapes, valid JSON chunks, hostile answers, an
//! agent's tool round trip and compressed bodies that decode back.

use super::hostile::compress;
use super::*;
use serde_json::{Value, json};
use std::time::Duration;

#[test]
fn compressed_bodies_decode_to_the_plain_body() {
    use std::io::Read as _;
    let plain = b"data: {\"x\":1}\n\n".repeat(50);
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&compress("gzip", &plain)[..]).read_to_end(&mut out).expect("gzip");
    assert_eq!(out, plain);
    out.clear();
    flate2::read::ZlibDecoder::new(&compress("deflate", &plain)[..]).read_to_end(&mut out).expect("deflate");
    assert_eq!(out, plain);
    out.clear();
    brotli::Decompressor::new(&compress("br", &plain)[..], 4096).read_to_end(&mut out).expect("br");
    assert_eq!(out, plain);
    assert_eq!(zstd::decode_all(&compress("zstd", &plain)[..]).expect("zstd"), plain);
    assert!(compress("zstd", &plain).len() < plain.len() / 4, "really compressed");
}

/// Renders `b`'s reply as text (SSE events joined).
fn render(b: &Behaviour, stream: bool) -> (u16, String) {
    match reply(b, "a/b:free", stream, &json!({}), 7) {
        Reply::Full { status, body, .. } => (status, String::from_utf8_lossy(&body).into_owned()),
        Reply::Sse(ev) => (200, ev.iter().map(|(_, e)| String::from_utf8_lossy(e).into_owned()).collect()),
        Reply::Large { head, filler, repeat, tail, .. } => {
            let mut text = String::from_utf8_lossy(&head).into_owned();
            for _ in 0..repeat {
                text.push_str(&String::from_utf8_lossy(&filler));
            }
            text.push_str(&String::from_utf8_lossy(&tail));
            (200, text)
        }
    }
}

fn check(b: Behaviour, stream: bool, status: u16, contains: &[&str]) {
    let (s, text) = render(&b, stream);
    assert_eq!(s, status, "{b:?}: {text}");
    for c in contains {
        assert!(text.contains(c), "{b:?} (stream {stream}) lacks {c:?}: {text}");
    }
}

#[test]
fn a_tool_round_trip_calls_an_offered_tool_then_answers_from_its_result() {
    let b = Behaviour::ToolRoundTrip {
        calls: vec![
            ("shell".into(), "{\"command\":[\"ls\"]}".into()),
            ("exec_command".into(), "{\"cmd\":\"ls\"}".into()),
        ],
    };
    let tools = json!([{"type": "function", "function": {"name": "exec_command"}}]);
    let turn = |messages: Value, stream: bool| match reply(
        &b,
        "a/b:free",
        stream,
        &json!({"messages": messages, "tools": tools}),
        3,
    ) {
        Reply::Full { body, .. } => String::from_utf8_lossy(&body).into_owned(),
        Reply::Sse(ev) => ev.iter().map(|(_, e)| String::from_utf8_lossy(e).into_owned()).collect(),
        Reply::Large { .. } => String::new(),
    };
    let plain = reply(&b, "a/b:free", false, &json!({"messages": [{"role": "user", "content": "go"}]}), 3);
    assert!(
        matches!(plain, Reply::Full { body, .. } if String::from_utf8_lossy(&body).contains("hello from a/b:free"))
    );
    let first = turn(json!([{"role": "user", "content": "go"}]), false);
    assert!(first.contains("\"name\":\"exec_command\"") && first.contains("{\\\"cmd\\\":\\\"ls\\\"}"), "{first}");
    let result =
        json!([{"role": "user", "content": "go"}, {"role": "tool", "tool_call_id": "call_3", "content": "a.txt"}]);
    assert!(turn(result.clone(), false).contains("tool said: a.txt"));
    let streamed = turn(result, true);
    assert!(streamed.contains("\"content\":\"tool\"") && streamed.contains(" said: a.txt"), "{streamed}");
}

#[test]
fn tool_steps_call_one_tool_a_turn_then_answer_from_every_result() {
    let b = Behaviour::ToolSteps {
        steps: vec![
            vec![("read".into(), "{\"path\":\"a\"}".into())],
            vec![("write".into(), "{}".into()), ("read".into(), "{\"path\":\"b\"}".into())],
        ],
    };
    let tools = json!([{"type": "function", "function": {"name": "read"}}]);
    let turn = |messages: Value| match reply(&b, "a/b:free", false, &json!({"messages": messages, "tools": tools}), 3) {
        Reply::Full { body, .. } => String::from_utf8_lossy(&body).into_owned(),
        Reply::Sse(_) | Reply::Large { .. } => panic!("a whole body"),
    };
    let user = json!({"role": "user", "content": "go"});
    let result = |id: &str, text: &str| json!({"role": "tool", "tool_call_id": id, "content": text});
    let first = turn(json!([user]));
    assert!(first.contains("\"name\":\"read\"") && first.contains("{\\\"path\\\":\\\"a\\\"}"), "{first}");
    // The second step's first offered tool (`write` is not offered).
    let second = turn(json!([user, result("call_1", "A")]));
    assert!(second.contains("{\\\"path\\\":\\\"b\\\"}"), "{second}");
    assert!(first.contains("\"id\":\"call_0\"") && second.contains("\"id\":\"call_0\""), "numbered per answer");
    let last = turn(json!([user, result("call_1", "A"), result("call_2", "B")]));
    assert!(last.contains("tools said: A / B"), "{last}");
}

#[test]
fn tools_at_once_are_one_answer_with_every_offered_call() {
    let b = Behaviour::ToolsAtOnce {
        calls: vec![
            ("read".into(), "{\"path\":\"a\"}".into()),
            ("write".into(), "{}".into()),
            ("read".into(), "{\"path\":\"b\"}".into()),
        ],
    };
    let tools = json!([{"type": "function", "function": {"name": "read"}}]);
    let user = json!({"role": "user", "content": "go"});
    let turn = |messages: Value, stream: bool| {
        reply(&b, "a/b:free", stream, &json!({"messages": messages, "tools": tools}), 3)
    };
    let Reply::Full { body, .. } = turn(json!([user]), false) else { panic!("a whole body") };
    let v: Value = serde_json::from_slice(&body).expect("json");
    let calls = v["choices"][0]["message"]["tool_calls"].as_array().expect("calls");
    let ids: Vec<&str> = calls.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids, ["call_3", "call_3_1"], "the two offered calls, `write` left out: {v}");
    assert_eq!(calls[1]["function"]["arguments"], "{\"path\":\"b\"}");
    let Reply::Sse(events) = turn(json!([user]), true) else { panic!("a stream") };
    let text: String = events.iter().map(|(_, e)| String::from_utf8_lossy(e).into_owned()).collect();
    assert!(text.contains("\"id\":\"call_3_1\"") && text.contains("\"index\":1"), "{text}");
    let results = json!([user, {"role": "tool", "tool_call_id": "call_3", "content": "A"},
        {"role": "tool", "tool_call_id": "call_3_1", "content": "B"}]);
    let Reply::Full { body, .. } = turn(results, false) else { panic!("a whole body") };
    assert!(String::from_utf8_lossy(&body).contains("tools said: A / B"));
}

#[test]
fn thinking_comes_before_the_answer() {
    let b = Behaviour::Thinking(Box::new(Behaviour::Ok));
    check(b.clone(), false, 200, &["\"reasoning\":\"Let me think.\"", "hello from a/b:free"]);
    check(b.clone(), true, 200, &["\"reasoning\":\"Let me think.\"", "hello", "data: [DONE]"]);
    let Reply::Sse(events) = reply(&b, "a/b:free", true, &json!({}), 3) else { panic!("a stream") };
    let at = |needle: &str| events.iter().position(|(_, e)| String::from_utf8_lossy(e).contains(needle));
    assert!(at("Let me think.") < at("hello"), "the reasoning first");
    assert_eq!(at(": OPENROUTER PROCESSING"), Some(0), "after the processing comment");
}

#[test]
fn bodies_follow_openrouter_shapes() {
    check(Behaviour::Ok, false, 200, &["\"model\":\"a/b:free\"", "hello from a/b:free", "\"chat.completion\""]);
    check(Behaviour::Ok, true, 200, &[": OPENROUTER PROCESSING", "\"finish_reason\":\"stop\"", "data: [DONE]"]);
    check(Behaviour::OkWithModel("a/b".into()), false, 200, &["\"model\":\"a/b\""]);
    check(Behaviour::ToolCall, false, 200, &["\"tool_calls\"", "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\""]);
    check(Behaviour::ToolCall, true, 200, &["\"finish_reason\":\"tool_calls\""]);
    check(Behaviour::RateLimited { retry_after: Some(3) }, false, 429, &["is temporarily rate-limited upstream"]);
    check(Behaviour::DailyCap { reset_ms: 5 }, false, 429, &["free-models-per-day", "\"X-RateLimit-Reset\":\"5\""]);
    check(Behaviour::MinuteCap, false, 429, &["free-models-per-min"]);
    check(Behaviour::NoEndpoints, false, 404, &["No endpoints found for a/b:free."]);
    check(Behaviour::MidStreamError, true, 200, &["Provider disconnected", "\"finish_reason\":\"error\""]);
    check(Behaviour::ErrorFirstInStream { code: 503 }, true, 200, &["\"error\":{\"code\":503"]);
    check(Behaviour::SlowStream { chunks: 2, gap: Duration::ZERO }, true, 200, &["tok0 ", "tok1 "]);
    let shared = |in_band| Behaviour::Limited {
        status: 429,
        source: "openrouter_shared_capacity".into(),
        message: "limited to 8 requests per minute".into(),
        retry_after: None,
        in_band,
    };
    check(shared(false), false, 429, &["\"limit_source\":\"openrouter_shared_capacity\""]);
    check(shared(true), false, 200, &["\"error\":{", "\"limit_source\""]);
    check(shared(true), true, 200, &["data: {\"error\":{\"code\":429"]);
    check(Behaviour::EmptyAnswer, false, 200, &["\"content\":null", "\"completion_tokens\":0"]);
    check(Behaviour::EmptyAnswer, true, 200, &["\"finish_reason\":\"stop\"", "data: [DONE]"]);
    check(Behaviour::ReasoningOnly, false, 200, &["\"content\":\"\"", "\"reasoning\":\"Let me think.\""]);
    check(Behaviour::ReasoningOnly, true, 200, &["\"reasoning\":\"Let me think.\""]);
    let (_, no_model) = render(&Behaviour::OkWithoutModel, true);
    assert!(!no_model.contains("\"model\""), "{no_model}");
}

#[test]
fn hostile_answers() {
    let (_, huge) = render(&Behaviour::HugeBody { bytes: 200_000, declared: true }, false);
    let v: Value = serde_json::from_str(&huge).expect("a huge body is still valid JSON");
    assert!(v["choices"][0]["message"]["content"].as_str().is_some_and(|c| c.len() >= 200_000));
    let (_, line) = render(&Behaviour::EndlessLine { bytes: 100_000 }, true);
    assert!(line.len() > 100_000 && !line.ends_with('\n'), "the data line never ends");
    assert_eq!(line.matches('\n').count(), 2, "only the comment's lines end");
    let Reply::Full { headers, .. } = reply(&Behaviour::Html, "m", false, &json!({}), 1) else { panic!("full") };
    assert!(headers.iter().any(|(k, v)| *k == "content-type" && v.starts_with("text/html")));
}

#[test]
fn every_chunk_is_valid_json() {
    for b in [Behaviour::Ok, Behaviour::ToolCall, Behaviour::MidStreamError] {
        let Reply::Sse(events) = reply(&b, "m\"x", true, &json!({}), 1) else { panic!("not a stream") };
        for (_, e) in events {
            let text = std::str::from_utf8(&e).expect("utf8");
            assert!(text.ends_with("\n\n"), "{text}");
            if let Some(payload) = text.strip_prefix("data: ").filter(|p| p.starts_with('{')) {
                serde_json::from_str::<Value>(payload.trim_end()).expect("chunk json");
            }
        }
    }
}
