//! What the fake answers to one chat request: the scripted behaviours and the bytes
//! they produce, in OpenRouter's documented formats (JSON bodies, SSE chunks, errors).

use bytes::Bytes;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// The answer to one request, after any delay.
pub(crate) enum Reply {
    Full {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
    },
    /// SSE events, each written as its own body chunk after its pause.
    Sse(Vec<(Duration, Bytes)>),
    /// `head`, then `filler` `repeat` times, then `tail`, each its own chunk.
    Large {
        content_type: &'static str,
        head: Bytes,
        filler: Bytes,
        repeat: usize,
        tail: Bytes,
        declared: bool,
    },
}

/// The size of one chunk of a [`Reply::Large`] body.
pub(crate) const FILLER_CHUNK: usize = 64 * 1024;

pub(crate) const PROCESSING: &[u8] = b": OPENROUTER PROCESSING\n\n";
const DONE: &[u8] = b"data: [DONE]\n\n";
const PROVIDER: &str = "FakeProvider";

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}

/// An OpenRouter error body.
pub(crate) fn error_body(code: u16, message: &str, metadata: Option<Value>) -> Bytes {
    let mut error = json!({"code": code, "message": message});
    if let Some(m) = metadata {
        error["metadata"] = m;
    }
    Bytes::from(json!({"error": error, "user_id": "user_fake"}).to_string())
}

/// The per-answer fields every body or chunk repeats, pre-rendered.
struct Ctx {
    /// `"id":"gen-..","provider":"..",["model":"..",]"created":N`
    head: String,
    content_model: String,
}

impl Ctx {
    fn new(requested: &str, named: Option<&str>, serial: u64) -> Ctx {
        let created = now_ms() / 1000;
        let mut head = format!("\"id\":\"gen-{created}-{serial}\",\"provider\":\"{PROVIDER}\",");
        if let Some(m) = named {
            head.push_str("\"model\":");
            head.push_str(&json_str(m));
            head.push(',');
        }
        head.push_str(&format!("\"created\":{created}"));
        Ctx { head, content_model: requested.to_owned() }
    }

    fn chunk(&self, delta: &str, finish: &str, extra: &str) -> Bytes {
        Bytes::from(format!(
            "data: {{{},\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{delta},\
             \"finish_reason\":{finish},\"native_finish_reason\":{finish},\"logprobs\":null}}]{extra}}}\n\n",
            self.head
        ))
    }

    fn content_chunk(&self, text: &str) -> Bytes {
        self.chunk(&format!("{{\"role\":\"assistant\",\"content\":{}}}", json_str(text)), "null", "")
    }

    fn finish_chunk(&self, reason: &str) -> Bytes {
        self.chunk("{\"role\":\"assistant\",\"content\":\"\"}", &json_str(reason), "")
    }

    fn usage_chunk(&self, completion_tokens: usize) -> Bytes {
        self.chunk("{\"role\":\"assistant\",\"content\":\"\"}", "null", &usage(completion_tokens))
    }

    fn completion(&self, message: &str, finish: &str, completion_tokens: usize) -> Bytes {
        Bytes::from(format!(
            "{{{},\"object\":\"chat.completion\",\"choices\":[{{\"logprobs\":null,\"finish_reason\":\"{finish}\",\
             \"native_finish_reason\":\"{finish}\",\"index\":0,\"message\":{message}}}]{}}}",
            self.head,
            usage(completion_tokens)
        ))
    }

    fn text_message(&self, text: &str) -> String {
        format!("{{\"role\":\"assistant\",\"content\":{},\"refusal\":null,\"reasoning\":null}}", json_str(text))
    }

    fn hello(&self) -> String {
        format!("hello from {}", self.content_model)
    }
}

fn usage(completion_tokens: usize) -> String {
    format!(
        ",\"usage\":{{\"prompt_tokens\":12,\"completion_tokens\":{completion_tokens},\"total_tokens\":{},\"cost\":0,\
         \"is_byok\":false}}",
        12 + completion_tokens
    )
}

fn json_reply(status: u16, body: Bytes) -> Reply {
    Reply::Full { status, headers: Vec::new(), body }
}

fn sse(events: Vec<Bytes>) -> Reply {
    Reply::Sse(events.into_iter().map(|e| (Duration::ZERO, e)).collect())
}

/// The tool named in the request's first tool, or a default.
fn tool_name(request: &Value) -> String {
    request
        .pointer("/tools/0/function/name")
        .and_then(Value::as_str)
        .map_or_else(|| "get_weather".to_owned(), str::to_owned)
}

/// What `behaviour` (already past any delay) answers to a request for `model`.
pub(crate) fn reply(behaviour: &Behaviour, model: &str, stream: bool, request: &Value, serial: u64) -> Reply {
    let ok_ctx = |named: Option<&str>| Ctx::new(model, named, serial);
    match behaviour {
        Behaviour::Ok => ok(&ok_ctx(Some(model)), stream),
        Behaviour::OkWithoutModel => ok(&ok_ctx(None), stream),
        Behaviour::OkWithModel(other) => ok(&ok_ctx(Some(other)), stream),
        Behaviour::ToolCall => tool_call(&ok_ctx(Some(model)), &tool_name(request), TOOL_ARGS, stream, serial),
        Behaviour::ToolRoundTrip { calls } => {
            let ctx = ok_ctx(Some(model));
            // An agent's side request without tools (a title, a summary) gets text.
            if request.pointer("/tools").and_then(Value::as_array).is_none_or(|t| t.is_empty()) {
                return ok(&ctx, stream);
            }
            // The tool's result: a `tool` message after the last assistant turn (a client
            // may add its own text after it, as Claude Code does).
            let messages = request.pointer("/messages").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
            let turn = messages.iter().rposition(|m| m["role"] == "assistant").map_or(0, |i| i + 1);
            if let Some(result) = messages[turn..].iter().rev().find(|m| m["role"] == "tool") {
                let content = match &result["content"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                return text_reply(&ctx, &format!("tool said: {content}"), stream);
            }
            let tools = request.pointer("/tools").and_then(Value::as_array);
            if tools.is_none_or(Vec::is_empty) {
                return text_reply(&ctx, &ctx.hello(), stream);
            }
            let offered = |name: &str| {
                request.pointer("/tools").and_then(Value::as_array).is_some_and(|tools| {
                    tools.iter().any(|t| t.pointer("/function/name").and_then(Value::as_str) == Some(name))
                })
            };
            match calls.iter().find(|(name, _)| offered(name)) {
                Some((name, args)) => tool_call(&ctx, name, args, stream, serial),
                None => tool_call(&ctx, &tool_name(request), "{}", stream, serial),
            }
        }
        Behaviour::OkLastRequest { reset } => match ok(&ok_ctx(Some(model)), false) {
            Reply::Full { status, mut headers, body } => {
                headers.push(("x-ratelimit-remaining-requests", "0".to_owned()));
                headers.push(("x-ratelimit-reset-requests", reset.clone()));
                Reply::Full { status, headers, body }
            }
            other => other,
        },
        Behaviour::OpenAiRateLimited { reset, retry_after } => {
            let body = json!({"error": {
                "message": format!("Rate limit reached for model `{model}` on requests per day (RPD)"),
                "type": "requests",
                "code": "rate_limit_exceeded",
            }});
            let mut headers = vec![
                ("x-ratelimit-limit-requests", "14400".to_owned()),
                ("x-ratelimit-remaining-requests", "0".to_owned()),
                ("x-ratelimit-reset-requests", reset.clone()),
            ];
            headers.extend(retry_after.map(|s| ("retry-after", s.to_string())));
            Reply::Full { status: 429, headers, body: Bytes::from(body.to_string()) }
        }
        Behaviour::RateLimited { retry_after } => {
            let raw = format!(
                "{model} is temporarily rate-limited upstream. Please retry shortly, or add your own key to \
                 accumulate your rate limits: https://openrouter.ai/settings/integrations"
            );
            let body = error_body(429, "Provider returned error", Some(json!({"provider_name": PROVIDER, "raw": raw})));
            let headers = retry_after.map(|s| vec![("retry-after", s.to_string())]).unwrap_or_default();
            Reply::Full { status: 429, headers, body }
        }
        Behaviour::DailyCap { reset_ms } => rate_limit_reply(
            "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day",
            50,
            *reset_ms,
        ),
        Behaviour::MinuteCap => {
            let next_minute = (now_ms() / 60_000 + 1) * 60_000;
            rate_limit_reply("Rate limit exceeded: free-models-per-min. ", 20, next_minute)
        }
        Behaviour::NoEndpoints => json_reply(404, error_body(404, &format!("No endpoints found for {model}."), None)),
        Behaviour::Status { status, body } => json_reply(*status, Bytes::from(body.clone())),
        Behaviour::SlowStream { chunks, gap } => {
            let ctx = ok_ctx(Some(model));
            let pieces: Vec<String> = (0..*chunks).map(|i| format!("tok{i} ")).collect();
            if !stream {
                let body = ctx.completion(&ctx.text_message(&pieces.concat()), "stop", *chunks);
                return json_reply(200, body);
            }
            let mut events = vec![(Duration::ZERO, Bytes::from_static(PROCESSING))];
            for (i, p) in pieces.iter().enumerate() {
                events.push((if i == 0 { Duration::ZERO } else { *gap }, ctx.content_chunk(p)));
            }
            events.push((*gap, ctx.finish_chunk("stop")));
            events.push((Duration::ZERO, ctx.usage_chunk(*chunks)));
            events.push((Duration::ZERO, Bytes::from_static(DONE)));
            Reply::Sse(events)
        }
        Behaviour::MidStreamError => {
            if !stream {
                return json_reply(502, error_body(502, "Provider disconnected", None));
            }
            let ctx = ok_ctx(Some(model));
            let err = ctx.chunk(
                "{\"role\":\"assistant\",\"content\":\"\"}",
                "\"error\"",
                ",\"error\":{\"code\":502,\"message\":\"Provider disconnected\"}",
            );
            sse(vec![Bytes::from_static(PROCESSING), ctx.content_chunk("hello"), err, Bytes::from_static(DONE)])
        }
        Behaviour::ErrorFirstInStream { code } => {
            let message = "Provider returned error";
            if !stream {
                return json_reply(*code, error_body(*code, message, None));
            }
            let ctx = ok_ctx(Some(model));
            let err = ctx.chunk(
                "{\"role\":\"assistant\",\"content\":\"\"}",
                "\"error\"",
                &format!(",\"error\":{{\"code\":{code},\"message\":\"{message}\"}}"),
            );
            sse(vec![Bytes::from_static(PROCESSING), err, Bytes::from_static(DONE)])
        }
        Behaviour::HugeBody { bytes, declared } => {
            let ctx = ok_ctx(Some(model));
            let head = format!(
                "{{{},\"object\":\"chat.completion\",\"choices\":[{{\"finish_reason\":\"stop\",\"index\":0,\
                 \"message\":{{\"role\":\"assistant\",\"content\":\"",
                ctx.head
            );
            Reply::Large {
                content_type: "application/json",
                head: Bytes::from(head),
                filler: Bytes::from(vec![b'a'; FILLER_CHUNK]),
                repeat: bytes.div_ceil(FILLER_CHUNK),
                tail: Bytes::from_static(b"\"}}]}"),
                declared: *declared,
            }
        }
        Behaviour::EndlessLine { bytes } => Reply::Large {
            content_type: "text/event-stream",
            head: Bytes::from_static(b": OPENROUTER PROCESSING\n\ndata: {\"choices\":[{\"delta\":{\"content\":\""),
            filler: Bytes::from(vec![b'a'; FILLER_CHUNK]),
            repeat: bytes.div_ceil(FILLER_CHUNK),
            tail: Bytes::new(),
            declared: false,
        },
        Behaviour::Html => Reply::Full {
            status: 200,
            headers: vec![("content-type", "text/html; charset=utf-8".to_owned())],
            body: Bytes::from_static(
                b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>",
            ),
        },
        Behaviour::Compressed { encoding } => {
            let (content_type, plain) = match ok(&ok_ctx(Some(model)), stream) {
                Reply::Full { body, .. } => ("application/json", body),
                Reply::Sse(events) => {
                    ("text/event-stream", events.into_iter().flat_map(|(_, b)| b).collect::<Vec<u8>>().into())
                }
                _ => return json_reply(500, error_body(500, "unreachable", None)),
            };
            Reply::Full {
                status: 200,
                headers: vec![("content-type", content_type.to_owned()), ("content-encoding", encoding.clone())],
                body: compress(encoding, &plain),
            }
        }
        Behaviour::Limited { status, source, message, retry_after, in_band } => {
            let metadata = json!({"limit_source": source});
            if *in_band {
                let error = json!({"code": status, "message": message, "metadata": metadata});
                if !stream {
                    return json_reply(200, Bytes::from(json!({"error": error, "user_id": "user_fake"}).to_string()));
                }
                let event = Bytes::from(format!("data: {}\n\n", json!({"error": error})));
                return sse(vec![Bytes::from_static(PROCESSING), event, Bytes::from_static(DONE)]);
            }
            let headers = retry_after.map(|s| vec![("retry-after", s.to_string())]).unwrap_or_default();
            Reply::Full { status: *status, headers, body: error_body(*status, message, Some(metadata)) }
        }
        Behaviour::EmptyAnswer => {
            let ctx = ok_ctx(Some(model));
            if !stream {
                let message = "{\"role\":\"assistant\",\"content\":null,\"refusal\":\"I can't help with that.\",\"reasoning\":null}";
                return json_reply(200, ctx.completion(message, "stop", 0));
            }
            sse(vec![
                Bytes::from_static(PROCESSING),
                ctx.chunk("{\"role\":\"assistant\",\"content\":\"\"}", "null", ""),
                ctx.finish_chunk("stop"),
                ctx.usage_chunk(0),
                Bytes::from_static(DONE),
            ])
        }
        Behaviour::ReasoningOnly => {
            let ctx = ok_ctx(Some(model));
            if !stream {
                let message =
                    "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null,\"reasoning\":\"Let me think.\"}";
                return json_reply(200, ctx.completion(message, "stop", 5));
            }
            sse(vec![
                Bytes::from_static(PROCESSING),
                ctx.chunk("{\"role\":\"assistant\",\"content\":\"\",\"reasoning\":\"Let me think.\"}", "null", ""),
                ctx.finish_chunk("stop"),
                ctx.usage_chunk(5),
                Bytes::from_static(DONE),
            ])
        }
        // Resolved before a reply is built; kept total for safety.
        Behaviour::Delay { then, .. } | Behaviour::Held { then } => reply(then, model, stream, request, serial),
        Behaviour::Hang => json_reply(504, error_body(504, "hang", None)),
    }
}

/// `data` compressed with a `content-encoding`: `gzip`, `br`, `deflate` (zlib, as HTTP
/// means it) or `zstd`; anything else is left as it is.
fn compress(encoding: &str, data: &[u8]) -> Bytes {
    use std::io::Write as _;
    let out = match encoding {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).and_then(|()| e.finish())
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).and_then(|()| e.finish())
        }
        "br" => {
            let mut out = Vec::new();
            let mut e = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            let written = e.write_all(data).and_then(|()| e.flush());
            drop(e);
            written.map(|()| out)
        }
        "zstd" => zstd::encode_all(data, 3),
        _ => Ok(data.to_vec()),
    };
    Bytes::from(out.unwrap_or_default())
}

fn ok(ctx: &Ctx, stream: bool) -> Reply {
    text_reply(ctx, &ctx.hello(), stream)
}

/// 200 with `text`; streamed in two content chunks (split after its first word).
fn text_reply(ctx: &Ctx, text: &str, stream: bool) -> Reply {
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

const TOOL_ARGS: &str = "{\"city\":\"Paris\"}";

fn tool_call(ctx: &Ctx, name: &str, args: &str, stream: bool, serial: u64) -> Reply {
    let id = format!("call_{serial}");
    if !stream {
        let message = json!({
            "role": "assistant",
            "content": "",
            "refusal": null,
            "reasoning": null,
            "tool_calls": [{"id": id, "index": 0, "type": "function", "function": {"name": name, "arguments": args}}],
        });
        return json_reply(200, ctx.completion(&message.to_string(), "tool_calls", 9));
    }
    let first = json!({"role": "assistant", "content": null, "tool_calls": [
        {"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}
    ]});
    let (a, b) = args.split_at(args.char_indices().nth(8).map_or(args.len(), |(i, _)| i));
    let args = |part: &str| {
        json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "function": {"arguments": part}}]})
            .to_string()
    };
    sse(vec![
        Bytes::from_static(PROCESSING),
        ctx.chunk(&first.to_string(), "null", ""),
        ctx.chunk(&args(a), "null", ""),
        ctx.chunk(&args(b), "null", ""),
        ctx.finish_chunk("tool_calls"),
        ctx.usage_chunk(9),
        Bytes::from_static(DONE),
    ])
}

fn rate_limit_reply(message: &str, limit: u32, reset_ms: u64) -> Reply {
    let headers = vec![
        ("x-ratelimit-limit", limit.to_string()),
        ("x-ratelimit-remaining", "0".to_owned()),
        ("x-ratelimit-reset", reset_ms.to_string()),
    ];
    let metadata = json!({"headers": {
        "X-RateLimit-Limit": limit.to_string(),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": reset_ms.to_string(),
    }});
    Reply::Full { status: 429, headers, body: error_body(429, message, Some(metadata)) }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
