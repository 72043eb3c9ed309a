//! Criterion benchmarks of the translations alone, in process: a Responses and a Messages
//! request to chat (the bench's small request, and one the size and shape of what Codex
//! CLI and Claude Code send), and a chat stream re-framed as either dialect's events, over
//! the frames the fake upstream sends for a streamed answer. The server-level figures
//! (each surface against chat, in instructions) are `router-bench --profile`'s
//! (docs/performance.md); these isolate the translation's share.
//!
//! `cargo bench -p router-dialects --bench translate -- --warm-up-time 1 --measurement-time 3`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use router_core::ModelId;
use router_dialects::anthropic::{self, MessageStream};
use router_dialects::chat::ChunkReader;
use router_dialects::responses::{self, EventWriter, ResponseMeta, ToolPolicy};
use serde_json::{Value, json};
use std::hint::black_box;

/// One chunk as the fake upstream writes it (its `Ctx::chunk`).
fn chunk(delta: &str, finish: &str, extra: &str) -> Vec<u8> {
    format!(
        "data: {{\"id\":\"gen-1765000000-17\",\"provider\":\"fake\",\"model\":\"fake/model-a:free\",\
         \"created\":1765000000,\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\
         \"delta\":{delta},\"finish_reason\":{finish},\"native_finish_reason\":{finish},\"logprobs\":null}}]\
         {extra}}}\n\n"
    )
    .into_bytes()
}

/// The frames of a streamed two-chunk answer: a comment, two content chunks, the finish,
/// the usage, `[DONE]`.
fn frames() -> Vec<Vec<u8>> {
    vec![
        b": OPENROUTER PROCESSING\n\n".to_vec(),
        chunk(r#"{"role":"assistant","content":"hello"}"#, "null", ""),
        chunk(r#"{"role":"assistant","content":" from fake/model-a:free"}"#, "null", ""),
        chunk(r#"{"role":"assistant","content":""}"#, "\"stop\"", ""),
        chunk(
            r#"{"role":"assistant","content":""}"#,
            "null",
            r#","usage":{"prompt_tokens":12,"completion_tokens":4,"total_tokens":16,"cost":0,"is_byok":false}"#,
        ),
        b"data: [DONE]\n\n".to_vec(),
    ]
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Prose of about `n` bytes (a system prompt, instructions).
fn prose(n: usize) -> String {
    "You are a coding agent. Follow the repository's conventions, run the tests, and explain what you changed. "
        .repeat(n / 100 + 1)
}

/// A function tool's parameters, shaped like an agent's.
fn schema(i: usize) -> Value {
    json!({"type": "object", "properties": {
        "cmd": {"type": "string", "description": format!("the command to run ({i})")},
        "workdir": {"type": "string"}, "timeout_ms": {"type": "number"},
        "justification": {"type": "string"}}, "required": ["cmd"], "additionalProperties": false})
}

/// The small request of the bench's profile rows, in the Responses shape.
fn responses_small() -> Vec<u8> {
    bytes(&json!({"model": "openrouter/free", "input": [{"role": "user", "content": "Say hello."}],
        "stream": true, "store": false}))
}

/// A request the size and shape of Codex CLI's: instructions, developer and user
/// messages, function tools, a namespace and web search (dropped), reasoning.
fn responses_agent() -> Vec<u8> {
    let mut tools: Vec<Value> = (0..7)
        .map(|i| {
            json!({"type": "function", "name": format!("tool_{i}"), "description": prose(300),
            "strict": false, "parameters": schema(i)})
        })
        .collect();
    tools.push(json!({"type": "namespace", "name": "mcp", "tools": []}));
    tools.push(json!({"type": "web_search"}));
    let text = |role: &str, t: String| {
        json!({"type": "message", "role": role,
        "content": [{"type": "input_text", "text": t}]})
    };
    bytes(&json!({"model": "openrouter/free", "instructions": prose(12_000),
        "input": [text("developer", prose(4_000)), text("user", "Fix the failing test.".into())],
        "tools": tools, "tool_choice": "auto", "parallel_tool_calls": false,
        "reasoning": {"summary": "auto"}, "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "0199-session", "store": false, "stream": true}))
}

/// The small request in the Messages shape.
fn messages_small() -> Vec<u8> {
    bytes(&json!({"model": "openrouter/free", "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Say hello."}], "stream": true}))
}

/// A request the size and shape of Claude Code's: system blocks, a dozen tools, thinking,
/// the session in `metadata.user_id`, a paid model's id.
fn messages_agent() -> Vec<u8> {
    let tools: Vec<Value> = (0..12)
        .map(|i| json!({"name": format!("Tool{i}"), "description": prose(300), "input_schema": schema(i)}))
        .collect();
    bytes(&json!({"model": "claude-sonnet-4-5", "max_tokens": 128_000, "stream": true,
        "system": [{"type": "text", "text": prose(12_000), "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Fix the failing test."}]}],
        "tools": tools, "thinking": {"type": "adaptive"},
        "metadata": {"user_id": "{\"session_id\":\"0199-session\"}"}}))
}

fn requests(c: &mut Criterion) {
    let mut g = c.benchmark_group("to_chat");
    for (name, body) in [("responses/small", responses_small()), ("responses/agent", responses_agent())] {
        // A refusal would measure the error path: each body must translate.
        let translated = responses::to_chat(&body, ToolPolicy::Drop).expect(name);
        assert_eq!(translated.dropped_tools.len(), usize::from(name.ends_with("agent")) * 2, "{name}");
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| b.iter(|| responses::to_chat(black_box(&body), ToolPolicy::Drop)));
    }
    let options = anthropic::Options::default();
    for (name, body) in [("messages/small", messages_small()), ("messages/agent", messages_agent())] {
        anthropic::to_chat(&body, &options).expect(name);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| b.iter(|| anthropic::to_chat(black_box(&body), &options)));
    }
    g.finish();
}

fn streams(c: &mut Criterion) {
    let frames = frames();
    let echo = responses::to_chat(&responses_small(), ToolPolicy::Drop).map(|t| t.echo).unwrap_or_default();
    let meta = ResponseMeta {
        id: ResponseMeta::id_of(1_765_000_000_000, 0x5eed),
        created_at: 1_765_000_000,
        model: ModelId::new("fake/model-a:free"),
    };
    // The whole answer comes out, ended, from either writer.
    let mut out = Vec::new();
    let mut writer = EventWriter::new(meta.clone(), echo.clone());
    frames.iter().for_each(|f| writer.push(f, &mut out));
    writer.finish(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("hello from fake/model-a:free") && text.contains("response.completed"), "{text}");
    let mut out = Vec::new();
    let mut writer = MessageStream::new("msg_fallback", "fake/model-a:free", 12);
    frames.iter().for_each(|f| writer.push(f, &mut out));
    writer.finish(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("message_stop") && text.contains(" from fake/model-a:free"), "{text}");
    let mut g = c.benchmark_group("stream");
    g.bench_function("chunks", |b| {
        b.iter(|| {
            let mut reader = ChunkReader::without_meta();
            let mut deltas = 0;
            for f in &frames {
                reader.push_with(black_box(f), &mut |d| {
                    black_box(&d);
                    deltas += 1;
                });
            }
            deltas
        })
    });
    g.bench_function("responses", |b| {
        b.iter(|| {
            let mut writer = EventWriter::new(meta.clone(), echo.clone());
            let mut out = Vec::new();
            for f in &frames {
                writer.push(black_box(f), &mut out);
            }
            writer.finish(&mut out);
            out.len()
        })
    });
    g.bench_function("messages", |b| {
        b.iter(|| {
            let mut writer = MessageStream::new("msg_fallback", "fake/model-a:free", 12);
            let mut out = Vec::new();
            for f in &frames {
                writer.push(black_box(f), &mut out);
            }
            writer.finish(&mut out);
            out.len()
        })
    });
    g.finish();
}

criterion_group!(translate, requests, streams);
criterion_main!(translate);
