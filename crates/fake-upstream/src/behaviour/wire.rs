//! The bytes every answer is made of, in OpenRouter's documented formats: the reply
//! shapes, a completion and its chunks with the per-answer fields pre-rendered, usage and
//! error bodies.

use bytes::Bytes;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
pub(super) const DONE: &[u8] = b"data: [DONE]\n\n";
pub(super) const PROVIDER: &str = "FakeProvider";

pub(super) fn json_str(s: &str) -> String {
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
pub(super) struct Ctx {
    /// `"id":"gen-..","provider":"..",["model":"..",]"created":N`
    pub(super) head: String,
    content_model: String,
}

impl Ctx {
    pub(super) fn new(requested: &str, named: Option<&str>, serial: u64) -> Ctx {
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

    pub(super) fn chunk(&self, delta: &str, finish: &str, extra: &str) -> Bytes {
        Bytes::from(format!(
            "data: {{{},\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{delta},\
             \"finish_reason\":{finish},\"native_finish_reason\":{finish},\"logprobs\":null}}]{extra}}}\n\n",
            self.head
        ))
    }

    pub(super) fn content_chunk(&self, text: &str) -> Bytes {
        self.chunk(&format!("{{\"role\":\"assistant\",\"content\":{}}}", json_str(text)), "null", "")
    }

    pub(super) fn finish_chunk(&self, reason: &str) -> Bytes {
        self.chunk("{\"role\":\"assistant\",\"content\":\"\"}", &json_str(reason), "")
    }

    pub(super) fn usage_chunk(&self, completion_tokens: usize) -> Bytes {
        self.chunk("{\"role\":\"assistant\",\"content\":\"\"}", "null", &usage(completion_tokens))
    }

    pub(super) fn completion(&self, message: &str, finish: &str, completion_tokens: usize) -> Bytes {
        Bytes::from(format!(
            "{{{},\"object\":\"chat.completion\",\"choices\":[{{\"logprobs\":null,\"finish_reason\":\"{finish}\",\
             \"native_finish_reason\":\"{finish}\",\"index\":0,\"message\":{message}}}]{}}}",
            self.head,
            usage(completion_tokens)
        ))
    }

    pub(super) fn text_message(&self, text: &str) -> String {
        format!("{{\"role\":\"assistant\",\"content\":{},\"refusal\":null,\"reasoning\":null}}", json_str(text))
    }

    pub(super) fn hello(&self) -> String {
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

pub(super) fn json_reply(status: u16, body: Bytes) -> Reply {
    Reply::Full { status, headers: Vec::new(), body }
}

pub(super) fn sse(events: Vec<Bytes>) -> Reply {
    Reply::Sse(events.into_iter().map(|e| (Duration::ZERO, e)).collect())
}
