//! Chat streams as Responses event streams: the documented sequence, the ends
//! (completed, incomplete, failed), and the properties: any split of the upstream's bytes
//! gives the same events, and the deltas add up to the final response.

use crate::chat::ChatError;
use crate::responses::*;
use proptest::prelude::*;
use serde_json::{Value, json};

fn writer() -> EventWriter {
    let meta = ResponseMeta { id: "resp_s1".into(), created_at: 7, model: "m:free".into() };
    EventWriter::new(meta, Vec::new())
}

/// One chat chunk's SSE event with `delta` (and `extra` members on the chunk).
fn chunk(delta: &Value, finish: Option<&str>, extra: &str) -> String {
    format!(
        "data: {{\"id\":\"gen-1\",\"model\":\"m:free\",\"created\":1,\"choices\":[{{\"index\":0,\"delta\":{delta},\
         \"finish_reason\":{}}}]{extra}}}\n\n",
        finish.map_or("null".to_owned(), |f| format!("\"{f}\""))
    )
}

fn usage_chunk() -> String {
    "data: {\"id\":\"gen-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":4,\"total_tokens\":16}}\n\n"
        .to_owned()
}

const DONE: &str = "data: [DONE]\n\n";

/// The events written for `stream` pushed whole, then ended; checked by [`validate`].
fn check(stream: &str) -> Vec<Value> {
    let mut w = writer();
    let mut out = Vec::new();
    w.push(stream.as_bytes(), &mut out);
    w.finish(&mut out);
    let events = parse(&out);
    validate(&events);
    events
}

/// The `data:` payloads of the writer's SSE, each checked against its `event:` line.
fn parse(out: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(out).expect("utf-8");
    text.split_terminator("\n\n")
        .map(|block| {
            let (event, data) = block.split_once('\n').expect("two lines");
            let kind = event.strip_prefix("event: ").expect("an event line");
            let v: Value = serde_json::from_str(data.strip_prefix("data: ").expect("a data line")).expect("json");
            assert_eq!(v["type"], kind, "{block}");
            v
        })
        .collect()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

/// What the SDKs' stream accumulators require: `response.created` first, numbered
/// events, every delta on an item (and part) added before and not yet done, one final
/// event, and a final response whose output is what the deltas built.
fn validate(events: &[Value]) {
    assert_eq!(events.first().map(|e| &e["type"]), Some(&json!("response.created")));
    let mut output: Vec<Value> = Vec::new();
    let mut done: Vec<bool> = Vec::new();
    let mut finals = 0;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], i, "{e}");
        let at = e["output_index"].as_u64().map(|n| usize::try_from(n).expect("index"));
        let open = |at: Option<usize>, done: &[bool]| {
            let at = at.expect("output_index");
            assert!(at < done.len() && !done[at], "event on an item not open: {e}");
            at
        };
        match e["type"].as_str().expect("type") {
            "response.output_item.added" => {
                assert_eq!(at, Some(output.len()), "items are added in order: {e}");
                output.push(e["item"].clone());
                done.push(false);
            }
            "response.content_part.added" => {
                let at = open(at, &done);
                let parts = output[at]["content"].as_array_mut().expect("a message");
                assert_eq!(e["content_index"], parts.len());
                parts.push(e["part"].clone());
            }
            "response.output_text.delta" => {
                let at = open(at, &done);
                let ci = usize::try_from(e["content_index"].as_u64().expect("content index")).expect("index");
                let part = &mut output[at]["content"][ci];
                assert_eq!(part["type"], "output_text");
                let text = format!("{}{}", part["text"].as_str().expect("text"), e["delta"].as_str().expect("delta"));
                part["text"] = json!(text);
            }
            "response.function_call_arguments.delta" => {
                let at = open(at, &done);
                let item = &mut output[at];
                assert_eq!(item["type"], "function_call");
                let args =
                    format!("{}{}", item["arguments"].as_str().expect("args"), e["delta"].as_str().expect("delta"));
                item["arguments"] = json!(args);
            }
            "response.reasoning_summary_text.delta" => {
                open(at, &done);
            }
            "response.output_text.done"
            | "response.content_part.done"
            | "response.function_call_arguments.done"
            | "response.reasoning_summary_text.done"
            | "response.reasoning_summary_part.added"
            | "response.reasoning_summary_part.done"
            | "response.refusal.delta"
            | "response.refusal.done" => {
                open(at, &done);
            }
            "response.output_item.done" => {
                let at = open(at, &done);
                done[at] = true;
                output[at] = e["item"].clone();
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                finals += 1;
                assert_eq!(i, events.len() - 1, "nothing after the final event");
                if e["type"] != "response.failed" {
                    assert!(done.iter().all(|d| *d), "every item done before the end");
                    assert_eq!(e["response"]["output"], json!(output), "the deltas add up to the response");
                }
            }
            "response.created" | "response.in_progress" => assert_eq!(e["response"]["status"], "in_progress"),
            other => panic!("unexpected event {other}"),
        }
    }
    assert_eq!(finals, 1, "one final event");
}

fn text_stream() -> String {
    [
        ": OPENROUTER PROCESSING\n\n".to_owned(),
        chunk(&json!({"role": "assistant", "content": "hello"}), None, ""),
        chunk(&json!({"content": " from m"}), None, ""),
        chunk(&json!({"content": ""}), Some("stop"), ""),
        usage_chunk(),
        DONE.to_owned(),
    ]
    .concat()
}

fn tool_stream() -> String {
    [
        chunk(&json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "call_9", "type": "function",
            "function": {"name": "exec_command", "arguments": ""}}]}), None, ""),
        chunk(&json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"cmd\":"}}]}), None, ""),
        chunk(&json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"ls\"}"}}]}), None, ""),
        chunk(&json!({}), Some("tool_calls"), ""),
        usage_chunk(),
        DONE.to_owned(),
    ]
    .concat()
}

#[test]
fn a_text_stream_is_the_documented_event_sequence() {
    let events = check(&text_stream());
    assert_eq!(
        kinds(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let last = &events[9]["response"];
    assert_eq!((last["status"].as_str(), last["model"].as_str()), (Some("completed"), Some("m:free")));
    assert_eq!(last["output"][0]["content"][0]["text"], "hello from m");
    assert_eq!(last["usage"]["total_tokens"], 16);
    assert_eq!(events[6]["text"], "hello from m");
}

/// The call id the router makes for the upstream's `upstream` call at `index` of the
/// response `id`.
fn call_id_in(id: &str, upstream: &str, index: usize) -> String {
    let meta = ResponseMeta { id: id.into(), created_at: 7, model: "m:free".into() };
    crate::responses::output::call_id(upstream, &meta, index)
}

#[test]
fn a_tool_call_stream_is_a_function_call_item() {
    let events = check(&tool_stream());
    assert_eq!(
        kinds(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(
        events[6]["item"],
        json!({"type": "function_call", "id": "fc_s1_0", "call_id": call_id_in("resp_s1", "call_9", 0),
            "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}", "status": "completed"})
    );
}

#[test]
fn reasoning_comes_first_as_a_summary_then_the_message() {
    let stream = [
        chunk(&json!({"reasoning": "Let me "}), None, ""),
        chunk(&json!({"reasoning": "think."}), None, ""),
        chunk(&json!({"content": "Done."}), Some("stop"), ""),
        DONE.to_owned(),
    ]
    .concat();
    let events = check(&stream);
    let last = &events.last().expect("events")["response"];
    assert_eq!(
        last["output"][0],
        json!({"type": "reasoning", "id": "rs_s1", "summary": [{"type": "summary_text", "text": "Let me think."}]})
    );
    assert_eq!(last["output"][1]["content"][0]["text"], "Done.");
    assert!(kinds(&events).contains(&"response.reasoning_summary_text.done"));
}

#[test]
fn a_length_finish_ends_incomplete() {
    let stream = [chunk(&json!({"content": "cut"}), Some("length"), ""), DONE.to_owned()].concat();
    let events = check(&stream);
    let last = events.last().expect("events");
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(last["response"]["incomplete_details"], json!({"reason": "max_output_tokens"}));
}

#[test]
fn an_error_after_the_start_is_response_failed() {
    let stream = [
        chunk(&json!({"content": "hel"}), None, ""),
        chunk(
            &json!({"content": ""}),
            Some("error"),
            ",\"error\":{\"code\":502,\"message\":\"Provider disconnected\"}",
        ),
        DONE.to_owned(),
    ]
    .concat();
    let events = check(&stream);
    let last = events.last().expect("events");
    assert_eq!(last["type"], "response.failed");
    assert_eq!(last["response"]["status"], "failed");
    assert_eq!(last["response"]["error"]["message"], "Provider disconnected");

    let mut w = writer();
    let mut out = Vec::new();
    w.push(chunk(&json!({"content": "hel"}), None, "").as_bytes(), &mut out);
    w.fail(
        ChatError { status: None, kind: Some("connection".into()), message: "the upstream went away".into() },
        &mut out,
    );
    w.finish(&mut out);
    let events = parse(&out);
    validate(&events);
    assert_eq!(
        events.last().expect("events")["response"]["error"],
        json!({"code": "connection", "message": "the upstream went away"})
    );
}

#[test]
fn a_stream_cut_without_done_still_ends_once() {
    let events = check(&chunk(&json!({"content": "hi"}), None, ""));
    assert_eq!(kinds(&events).last(), Some(&"response.completed"));
}

/// A stream of text, reasoning and tool-call chunks, from a script of steps.
fn scripted(steps: &[(u8, String)]) -> String {
    let mut out = String::from(": OPENROUTER PROCESSING\n\n");
    let mut calls = 0;
    for (kind, text) in steps {
        let delta = match kind % 4 {
            0 => json!({"content": text}),
            1 => json!({"reasoning": text}),
            2 => {
                calls += 1;
                json!({"tool_calls": [{"index": calls - 1, "id": format!("call_{calls}"), "type": "function",
                    "function": {"name": format!("f{calls}"), "arguments": text}}]})
            }
            _ if calls > 0 => json!({"tool_calls": [{"index": calls - 1, "function": {"arguments": text}}]}),
            _ => json!({"content": text}),
        };
        out.push_str(&chunk(&delta, None, ""));
    }
    out.push_str(&chunk(&json!({}), Some("stop"), ""));
    out.push_str(&usage_chunk());
    out.push_str(DONE);
    out
}

fn written(stream: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut w = writer();
    let mut out = Vec::new();
    let mut from = 0;
    for &cut in cuts {
        w.push(&stream[from..cut], &mut out);
        from = cut;
    }
    w.push(&stream[from..], &mut out);
    w.finish(&mut out);
    out
}

#[test]
fn a_stream_split_at_every_byte_gives_the_same_events() {
    for stream in [text_stream(), tool_stream()] {
        let whole = written(stream.as_bytes(), &[]);
        let every: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(String::from_utf8_lossy(&written(stream.as_bytes(), &every)), String::from_utf8_lossy(&whole));
    }
}

proptest! {
    #[test]
    fn any_split_gives_the_same_valid_events(
        steps in prop::collection::vec((any::<u8>(), "[a-zé\"{} ]{0,6}"), 0..12),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let stream = scripted(&steps);
        let bytes = stream.as_bytes();
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len())).collect();
        cuts.sort_unstable();
        let whole = written(bytes, &[]);
        prop_assert_eq!(&written(bytes, &cuts), &whole);
        validate(&parse(&whole));
    }
}

#[test]
fn a_whole_answer_where_a_stream_was_asked_gives_the_same_events_as_its_stream() {
    let body = json!({"id": "gen-1", "model": "m:free", "created": 1, "choices": [{"index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "content": null, "tool_calls": [{"id": "call_9", "type": "function",
            "function": {"name": "exec_command", "arguments": "{\"cmd\":\"ls\"}"}}]}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}});
    let answer = crate::chat::read_answer(body.to_string().as_bytes()).expect("answer");
    let mut w = writer();
    let mut out = Vec::new();
    w.whole(&answer, &mut out);
    w.finish(&mut out);
    let whole = parse(&out);
    validate(&whole);
    let streamed = check(&tool_stream());
    let last = |events: &[Value]| events.last().expect("events")["response"].clone();
    assert_eq!(last(&whole), last(&streamed));
    assert_eq!(
        kinds(&whole),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
}
