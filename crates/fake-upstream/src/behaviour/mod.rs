//! What the fake answers to one chat request: the scripted behaviours and the bytes
//! they produce, in OpenRouter's documented formats (JSON bodies, SSE chunks, errors).
//!
//! `reply` picks the answer; `answers` holds the successful ones, `errors` the refusals
//! and failures, `hostile` the answers a router must survive, `wire` the bytes they share.

mod answers;
mod errors;
mod hostile;
mod wire;

pub(crate) use wire::{Reply, error_body};

use serde_json::Value;
use std::time::Duration;
use wire::{Ctx, json_reply};

/// How the fake answers chat requests for a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// 200: a `chat.completion` (or an SSE stream when the request has `stream: true`)
    /// whose `model` echoes the requested model; content `hello from <model>`.
    Ok,
    /// Like `Ok`, but the body / chunks carry no `model` field.
    OkWithoutModel,
    /// Like `Ok`, but upstream names another model (e.g. the id without `:free`).
    OkWithModel(String),
    /// 200 with `finish_reason: tool_calls`; arguments are a JSON string. Streams too.
    ToolCall,
    /// An agent's turn. When a tool's result follows the last assistant message: 200
    /// with the text `tool said: <result>`. Otherwise a tool call to the first of `calls` (name,
    /// arguments as JSON text) that the request offers, else to its first tool with `{}`;
    /// without tools, as `Ok`. Streams too.
    ToolRoundTrip { calls: Vec<(String, String)> },
    /// An agent's task in several steps, one tool call a turn: while the conversation holds
    /// fewer tools' results than `steps`, a call to the first tool of the next step that
    /// the request offers (name, arguments as JSON text); then 200 with the text
    /// `tools said: <result> / <result> …`, every result in order. Without tools, as `Ok`.
    /// Streams too. Its calls' ids are numbered in each answer (`call_0` every time), as
    /// vLLM, llama.cpp and Kimi number them.
    ToolSteps { steps: Vec<Vec<(String, String)>> },
    /// An agent's turn that calls several tools at once: every one of `calls` (name,
    /// arguments as JSON text) that the request offers, in one answer; once the
    /// conversation holds tools' results, 200 with the text `tools said: <result> / …`.
    /// Without tools, as `Ok`. Streams too.
    ToolsAtOnce { calls: Vec<(String, String)> },
    /// As `then`, with the model's reasoning (`Let me think.`) before its answer: a first
    /// `reasoning` delta in a stream, `message.reasoning` in a whole 200 body.
    Thinking(Box<Behaviour>),
    /// 429 "Provider returned error", `metadata.raw` "`<model>` is temporarily
    /// rate-limited upstream...", with `Retry-After` (seconds) when given.
    RateLimited { retry_after: Option<u64> },
    /// 429 `free-models-per-day` with `X-RateLimit-Limit: 50`, `X-RateLimit-Remaining: 0`
    /// and `X-RateLimit-Reset: <reset_ms>` (epoch milliseconds).
    DailyCap { reset_ms: u64 },
    /// 429 `free-models-per-min` with `X-RateLimit-*` headers (reset at the next minute).
    MinuteCap,
    /// An OpenAI-compatible free tier's 429 (Groq's shape): `{"error":{"message","type",
    /// "code":"rate_limit_exceeded"}}` with `x-ratelimit-remaining-requests: 0`,
    /// `x-ratelimit-reset-requests: <reset>` (a Go duration such as `2m59.56s`) and
    /// `retry-after` when given.
    OpenAiRateLimited { reset: String, retry_after: Option<u64> },
    /// Like `Ok` (a whole body), with Groq's headers saying that no request is left until
    /// `reset` (`x-ratelimit-remaining-requests: 0`, `x-ratelimit-reset-requests: <reset>`).
    OkLastRequest { reset: String },
    /// 404 "No endpoints found for `<model>`."
    NoEndpoints,
    /// Any status with a raw body (served as `application/json`).
    Status { status: u16, body: String },
    /// Waits `first_byte` before answering at all, then behaves as `then`.
    Delay { first_byte: Duration, then: Box<Behaviour> },
    /// 200 SSE with `chunks` content chunks (`tok0 `, `tok1 `, ...), `gap` between them,
    /// then the finish chunk, usage and `[DONE]`. Without `stream`, answers the whole
    /// text after `chunks × gap`.
    SlowStream { chunks: usize, gap: Duration },
    /// 200 SSE: a processing comment, a content chunk, then an error chunk (502
    /// "Provider disconnected", `finish_reason: error`) and `[DONE]`. Without `stream`,
    /// a 502 error body.
    MidStreamError,
    /// 200 SSE whose first data event is an error chunk with this code. Without
    /// `stream`, that status with an error body.
    ErrorFirstInStream { code: u16 },
    /// Never answers.
    Hang,
    /// Waits until [`FakeUpstream::release_held`](crate::FakeUpstream::release_held)
    /// (counted meanwhile by `held_now` and `max_held`), then behaves as `then`: how a
    /// test holds many streams open at once without timing.
    Held { then: Box<Behaviour> },
    /// An error whose `metadata.limit_source` says why (`openrouter_free_tier_daily`,
    /// `openrouter_shared_capacity`, `upstream_provider_shared_pool`, or a 402 source),
    /// with `Retry-After` when given. With `in_band`, the error comes inside a 200
    /// (a whole body, or the first event of a stream) with `status` as its `code`.
    Limited { status: u16, source: String, message: String, retry_after: Option<u64>, in_band: bool },
    /// 200 with nothing in it: `content: null`, a `refusal`, zero completion tokens and
    /// `finish_reason: stop` (a stream: a role delta, an empty finish chunk, `[DONE]`).
    EmptyAnswer,
    /// 200 whose only output is reasoning: `content: ""` beside `reasoning`.
    ReasoningOnly,
    /// 200 `application/json`: a valid completion about `bytes` long (the content is
    /// `a`s), sent in 64 KiB chunks, with a `content-length` when `declared`, else
    /// chunked. Streamed or not, the same.
    HugeBody { bytes: usize, declared: bool },
    /// 200 `text/event-stream`: a processing comment, then one `data:` line `bytes`
    /// long that never ends (the connection closes after it). Streamed or not, the same.
    EndlessLine { bytes: usize },
    /// 200 `text/html`: a proxy's error page where an answer should be.
    Html,
    /// What `Ok` would send (JSON or the event stream) compressed with `encoding`
    /// (`gzip`, `br`, `deflate` or `zstd`) and said so in `content-encoding`, whatever
    /// the request's `accept-encoding`.
    Compressed { encoding: String },
}

/// What `behaviour` (already past any delay) answers to a request for `model`.
pub(crate) fn reply(behaviour: &Behaviour, model: &str, stream: bool, request: &Value, serial: u64) -> Reply {
    let ok_ctx = |named: Option<&str>| Ctx::new(model, named, serial);
    match behaviour {
        Behaviour::Ok => answers::ok(&ok_ctx(Some(model)), stream),
        Behaviour::OkWithoutModel => answers::ok(&ok_ctx(None), stream),
        Behaviour::OkWithModel(other) => answers::ok(&ok_ctx(Some(other)), stream),
        Behaviour::ToolCall => {
            answers::tool_call(&ok_ctx(Some(model)), &answers::tool_name(request), answers::TOOL_ARGS, stream, serial)
        }
        Behaviour::ToolRoundTrip { calls } => {
            answers::tool_round_trip(&ok_ctx(Some(model)), calls, request, stream, serial)
        }
        Behaviour::ToolSteps { steps } => answers::tool_steps(&ok_ctx(Some(model)), steps, request, stream),
        Behaviour::ToolsAtOnce { calls } => {
            answers::tools_at_once(&ok_ctx(Some(model)), calls, request, stream, serial)
        }
        Behaviour::Thinking(then) => {
            answers::thinking(&ok_ctx(Some(model)), reply(then, model, stream, request, serial))
        }
        Behaviour::OkLastRequest { reset } => answers::ok_last_request(&ok_ctx(Some(model)), reset),
        Behaviour::OpenAiRateLimited { reset, retry_after } => errors::openai_rate_limited(model, reset, *retry_after),
        Behaviour::RateLimited { retry_after } => errors::rate_limited(model, *retry_after),
        Behaviour::DailyCap { reset_ms } => errors::daily_cap(*reset_ms),
        Behaviour::MinuteCap => errors::minute_cap(),
        Behaviour::NoEndpoints => json_reply(404, error_body(404, &format!("No endpoints found for {model}."), None)),
        Behaviour::Status { status, body } => json_reply(*status, bytes::Bytes::from(body.clone())),
        Behaviour::SlowStream { chunks, gap } => answers::slow_stream(&ok_ctx(Some(model)), *chunks, *gap, stream),
        Behaviour::MidStreamError => errors::mid_stream_error(&ok_ctx(Some(model)), stream),
        Behaviour::ErrorFirstInStream { code } => errors::error_first_in_stream(&ok_ctx(Some(model)), *code, stream),
        Behaviour::HugeBody { bytes, declared } => hostile::huge_body(&ok_ctx(Some(model)), *bytes, *declared),
        Behaviour::EndlessLine { bytes } => hostile::endless_line(*bytes),
        Behaviour::Html => hostile::html(),
        Behaviour::Compressed { encoding } => hostile::compressed(&ok_ctx(Some(model)), encoding, stream),
        Behaviour::Limited { status, source, message, retry_after, in_band } => {
            errors::limited(*status, source, message, *retry_after, *in_band, stream)
        }
        Behaviour::EmptyAnswer => answers::empty_answer(&ok_ctx(Some(model)), stream),
        Behaviour::ReasoningOnly => answers::reasoning_only(&ok_ctx(Some(model)), stream),
        // Resolved before a reply is built; kept total for safety.
        Behaviour::Delay { then, .. } | Behaviour::Held { then } => reply(then, model, stream, request, serial),
        Behaviour::Hang => json_reply(504, error_body(504, "hang", None)),
    }
}

#[cfg(test)]
mod tests;
