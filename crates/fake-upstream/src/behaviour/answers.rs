//! The answers that succeed: text (whole or in chunks), tool calls and an agent's tool
//! round trip, slow streams, empty and reasoning-only answers.

use super::wire::{Ctx, DONE, PROCESSING, Reply, json_reply, sse};
use bytes::Bytes;
use serde_json::{Value, json};
use std::time::Duration;

pub(super) fn ok(ctx: &Ctx, stream: bool) -> Reply {
    text_reply(ctx, &ctx.hello(), stream)
}

/// 200 with `text`; streamed in two content chunks (split after its first word).
pub(super) fn text_reply(ctx: &Ctx, text: &str, stream: bool) -> Reply {
    if !stream {
        return json_reply(200, ctx.completion(&ctx.text_message(text), "stop", 4));
    }
    let (first, rest) = text.split_at(text.find(' ').unwrap_or(text.len()));
    sse(vec![
        Bytes::from_static(PROCESSING),
        ctx.content_chunk(first),
        ctx.content_chunk(rest),
        ctx.finish_chunk("stop"),
        ctx.usage_chunk(4),
        Bytes::from_static(DONE),
    ])
}

pub(super) const TOOL_ARGS: &str = "{\"city\":\"Paris\"}";

pub(super) fn tool_call(ctx: &Ctx, name: &str, args: &str, stream: bool, serial: u64) -> Reply {
    tool_calls(ctx, &[(name, args)], stream, CallIds::Serial(serial))
}

/// How an answer's call ids are numbered.
#[derive(Clone, Copy)]
pub(super) enum CallIds {
    /// `call_<serial>`, `call_<serial>_1`, …: unique to the answer (each id after the
    /// first begins with the first, as upstreams' ids often do).
    Serial(u64),
    /// `call_0`, `call_1`, … in every answer, as vLLM, llama.cpp and Kimi number them: the
    /// same ids come again in the next answer.
    PerAnswer,
}

/// 200 with `finish_reason: tool_calls` and one call for each of `calls` (name, arguments
/// as JSON text), their ids numbered by `ids`; streamed as each call's first chunk (id
/// and name) and its arguments in two pieces, one call after the other.
pub(super) fn tool_calls(ctx: &Ctx, calls: &[(&str, &str)], stream: bool, ids: CallIds) -> Reply {
    let id = |i: usize| match ids {
        CallIds::Serial(serial) if i == 0 => format!("call_{serial}"),
        CallIds::Serial(serial) => format!("call_{serial}_{i}"),
        CallIds::PerAnswer => format!("call_{i}"),
    };
    if !stream {
        let calls: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, (name, args))| {
                json!({"id": id(i), "index": i, "type": "function", "function": {"name": name, "arguments": args}})
            })
            .collect();
        let message =
            json!({"role": "assistant", "content": "", "refusal": null, "reasoning": null, "tool_calls": calls});
        return json_reply(200, ctx.completion(&message.to_string(), "tool_calls", 9));
    }
    let delta = |call: Value| json!({"role": "assistant", "content": null, "tool_calls": [call]}).to_string();
    let mut events = vec![Bytes::from_static(PROCESSING)];
    for (i, (name, args)) in calls.iter().enumerate() {
        let first = json!({"index": i, "id": id(i), "type": "function", "function": {"name": name, "arguments": ""}});
        events.push(ctx.chunk(&delta(first), "null", ""));
        let (a, b) = args.split_at(args.char_indices().nth(8).map_or(args.len(), |(i, _)| i));
        for part in [a, b] {
            events.push(ctx.chunk(&delta(json!({"index": i, "function": {"arguments": part}})), "null", ""));
        }
    }
    events.extend([ctx.finish_chunk("tool_calls"), ctx.usage_chunk(9), Bytes::from_static(DONE)]);
    sse(events)
}

/// The tool named in the request's first tool, or a default.
pub(super) fn tool_name(request: &Value) -> String {
    request
        .pointer("/tools/0/function/name")
        .and_then(Value::as_str)
        .map_or_else(|| "get_weather".to_owned(), str::to_owned)
}

/// An agent's turn: text from the tool's result when one follows the last assistant
/// message, else a call to the first of `calls` the request offers (else its first tool).
pub(super) fn tool_round_trip(
    ctx: &Ctx,
    calls: &[(String, String)],
    request: &Value,
    stream: bool,
    serial: u64,
) -> Reply {
    // An agent's side request without tools (a title, a summary) gets text.
    if request.pointer("/tools").and_then(Value::as_array).is_none_or(|t| t.is_empty()) {
        return ok(ctx, stream);
    }
    // The tool's result: a `tool` message after the last assistant turn (a client
    // may add its own text after it, as Claude Code does).
    let messages = request.pointer("/messages").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let turn = messages.iter().rposition(|m| m["role"] == "assistant").map_or(0, |i| i + 1);
    if let Some(result) = messages[turn..].iter().rev().find(|m| m["role"] == "tool") {
        return text_reply(ctx, &format!("tool said: {}", result_text(result)), stream);
    }
    call_offered(ctx, calls, request, stream, CallIds::Serial(serial))
}

/// A call to the first of `calls` that `request` offers, else to its first tool with `{}`.
fn call_offered(ctx: &Ctx, calls: &[(String, String)], request: &Value, stream: bool, ids: CallIds) -> Reply {
    let offered = |name: &str| {
        request.pointer("/tools").and_then(Value::as_array).is_some_and(|tools| {
            tools.iter().any(|t| t.pointer("/function/name").and_then(Value::as_str) == Some(name))
        })
    };
    let (name, args) = match calls.iter().find(|(name, _)| offered(name)) {
        Some((name, args)) => (name.clone(), args.as_str()),
        None => (tool_name(request), "{}"),
    };
    tool_calls(ctx, &[(&name, args)], stream, ids)
}

/// An agent's task in `steps`, one tool call a turn (see `Behaviour::ToolSteps`).
pub(super) fn tool_steps(ctx: &Ctx, steps: &[Vec<(String, String)>], request: &Value, stream: bool) -> Reply {
    if request.pointer("/tools").and_then(Value::as_array).is_none_or(|t| t.is_empty()) {
        return ok(ctx, stream);
    }
    let results = tool_results(request);
    match steps.get(results.len()) {
        Some(calls) => call_offered(ctx, calls, request, stream, CallIds::PerAnswer),
        None => text_reply(ctx, &format!("tools said: {}", results.join(" / ")), stream),
    }
}

/// `Ok` as a whole body, with Groq's headers saying no request is left until `reset`.
pub(super) fn ok_last_request(ctx: &Ctx, reset: &str) -> Reply {
    match ok(ctx, false) {
        Reply::Full { status, mut headers, body } => {
            headers.push(("x-ratelimit-remaining-requests", "0".to_owned()));
            headers.push(("x-ratelimit-reset-requests", reset.to_owned()));
            Reply::Full { status, headers, body }
        }
        other => other,
    }
}

/// `chunks` content chunks `gap` apart (or their whole text at once without `stream`).
pub(super) fn slow_stream(ctx: &Ctx, chunks: usize, gap: Duration, stream: bool) -> Reply {
    let pieces: Vec<String> = (0..chunks).map(|i| format!("tok{i} ")).collect();
    if !stream {
        let body = ctx.completion(&ctx.text_message(&pieces.concat()), "stop", chunks);
        return json_reply(200, body);
    }
    let mut events = vec![(Duration::ZERO, Bytes::from_static(PROCESSING))];
    for (i, p) in pieces.iter().enumerate() {
        events.push((if i == 0 { Duration::ZERO } else { gap }, ctx.content_chunk(p)));
    }
    events.push((gap, ctx.finish_chunk("stop")));
    events.push((Duration::ZERO, ctx.usage_chunk(chunks)));
    events.push((Duration::ZERO, Bytes::from_static(DONE)));
    Reply::Sse(events)
}

/// `content: null` beside a refusal, zero completion tokens.
pub(super) fn empty_answer(ctx: &Ctx, stream: bool) -> Reply {
    let message =
        "{\"role\":\"assistant\",\"content\":null,\"refusal\":\"I can't help with that.\",\"reasoning\":null}";
    one_delta(ctx, stream, message, "{\"role\":\"assistant\",\"content\":\"\"}", 0)
}

/// `content: ""` beside `reasoning`.
pub(super) fn reasoning_only(ctx: &Ctx, stream: bool) -> Reply {
    let message = "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null,\"reasoning\":\"Let me think.\"}";
    one_delta(ctx, stream, message, "{\"role\":\"assistant\",\"content\":\"\",\"reasoning\":\"Let me think.\"}", 5)
}

/// The texts of the tools' results in `request`'s conversation, in order.
fn tool_results(request: &Value) -> Vec<String> {
    let messages = request.pointer("/messages").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    messages.iter().filter(|m| m["role"] == "tool").map(result_text).collect()
}

/// A `tool` message's content as text (its JSON when it is not a string).
fn result_text(message: &Value) -> String {
    match &message["content"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An agent's turn with several calls at once (see `Behaviour::ToolsAtOnce`).
pub(super) fn tools_at_once(
    ctx: &Ctx,
    calls: &[(String, String)],
    request: &Value,
    stream: bool,
    serial: u64,
) -> Reply {
    let Some(tools) = request.pointer("/tools").and_then(Value::as_array).filter(|t| !t.is_empty()) else {
        return ok(ctx, stream);
    };
    let results = tool_results(request);
    if !results.is_empty() {
        return text_reply(ctx, &format!("tools said: {}", results.join(" / ")), stream);
    }
    let offered = |name: &str| tools.iter().any(|t| t.pointer("/function/name").and_then(Value::as_str) == Some(name));
    let chosen: Vec<(&str, &str)> =
        calls.iter().filter(|(name, _)| offered(name)).map(|(n, a)| (n.as_str(), a.as_str())).collect();
    if chosen.is_empty() {
        return tool_call(ctx, &tool_name(request), "{}", stream, serial);
    }
    tool_calls(ctx, &chosen, stream, CallIds::Serial(serial))
}

/// `reply` with reasoning before its answer (see `Behaviour::Thinking`).
pub(super) fn thinking(ctx: &Ctx, reply: Reply) -> Reply {
    const REASONING: &str = "Let me think.";
    match reply {
        Reply::Sse(mut events) => {
            let delta = json!({"role": "assistant", "content": null, "reasoning": REASONING}).to_string();
            // After the processing comment, before the answer's first chunk.
            let at = usize::from(events.first().is_some_and(|(_, e)| e.as_ref() == PROCESSING));
            events.insert(at, (Duration::ZERO, ctx.chunk(&delta, "null", "")));
            Reply::Sse(events)
        }
        Reply::Full { status: 200, headers, body } => {
            let mut v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if let Some(message) = v.pointer_mut("/choices/0/message").and_then(Value::as_object_mut) {
                message.insert("reasoning".into(), REASONING.into());
            }
            Reply::Full { status: 200, headers, body: Bytes::from(v.to_string()) }
        }
        other => other,
    }
}

/// A whole `message`, or a stream of one `delta`, the finish and the usage.
fn one_delta(ctx: &Ctx, stream: bool, message: &str, delta: &str, completion_tokens: usize) -> Reply {
    if !stream {
        return json_reply(200, ctx.completion(message, "stop", completion_tokens));
    }
    sse(vec![
        Bytes::from_static(PROCESSING),
        ctx.chunk(delta, "null", ""),
        ctx.finish_chunk("stop"),
        ctx.usage_chunk(completion_tokens),
        Bytes::from_static(DONE),
    ])
}
