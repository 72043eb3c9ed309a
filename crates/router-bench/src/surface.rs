//! The surfaces a scenario sends to the router (chat, Anthropic's Messages, OpenAI's
//! Responses, embeddings) and their request bodies; the direct runs send the upstream's
//! own request for the same thing (chat, or embeddings).

use crate::server::{READY_TIMEOUT, get};
use anyhow::{Result, bail};
use bytes::Bytes;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The embedding model the embeddings rows ask for: free, listed by the fake upstream.
pub(crate) const EMBEDDING_MODEL: &str = "nomic-ai/nomic-embed-text-v1.5:free";

/// Its vectors' dimension: nomic-embed-text's, so that answers have a real size.
pub(crate) const EMBEDDING_DIMENSION: usize = 768;

/// What a routed request asks for, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Surface {
    Chat,
    Messages,
    Responses,
    Embeddings,
}

impl Surface {
    pub(crate) fn router_path(self) -> &'static str {
        match self {
            Surface::Chat => "/api/v1/chat/completions",
            Surface::Messages => "/v1/messages",
            Surface::Responses => "/v1/responses",
            Surface::Embeddings => "/api/v1/embeddings",
        }
    }

    /// The upstream's path for the same request: Messages and Responses are chat there.
    pub(crate) fn direct_path(self) -> &'static str {
        match self {
            Surface::Embeddings => "/api/v1/embeddings",
            _ => "/api/v1/chat/completions",
        }
    }

    pub(crate) fn router_body(self, shape: &str, stream: bool) -> Result<Bytes> {
        let model = "openrouter/free";
        match self {
            Surface::Chat => body(shape, model, stream),
            Surface::Messages => messages_body(shape, model, stream),
            Surface::Responses => responses_body(shape, model, stream),
            Surface::Embeddings => embeddings_body(),
        }
    }

    pub(crate) fn direct_body(self, shape: &str, direct_model: &str, stream: bool) -> Result<Bytes> {
        match self {
            Surface::Embeddings => embeddings_body(),
            _ => body(shape, direct_model, stream),
        }
    }
}

/// Waits until the router lists [`EMBEDDING_MODEL`]: its embeddings catalog is read
/// beside the chat one, and `/readyz` waits for the chat one only (under valgrind the
/// first requests would come before it).
pub(crate) async fn embeddings_ready(addr: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(body) = get(addr, "/api/v1/embeddings/models").await
            && body.contains(EMBEDDING_MODEL)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the router did not list {EMBEDDING_MODEL} within {READY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One input to embed, naming the model (the router keeps to its family).
pub(crate) fn embeddings_body() -> Result<Bytes> {
    let b = serde_json::json!({"model": EMBEDDING_MODEL, "input": "The quick brown fox jumps over the lazy dog."});
    Ok(Bytes::from(serde_json::to_vec(&b)?))
}

/// The chat request the load sends.
pub(crate) fn body(shape: &str, model: &str, stream: bool) -> Result<Bytes> {
    let messages = match shape {
        "small" => serde_json::json!([{"role": "user", "content": "Say hello."}]),
        "tools" => serde_json::json!([{"role": "user", "content": "What is the weather in Paris?"}]),
        "conversation" => serde_json::Value::Array(
            (0..50)
                .map(|i| {
                    let role = if i % 2 == 0 { "user" } else { "assistant" };
                    serde_json::json!({"role": role, "content": format!("message {i}: {}", "lorem ipsum ".repeat(20))})
                })
                .collect(),
        ),
        other => bail!("unknown shape `{other}` (small, tools, conversation)"),
    };
    let mut b = serde_json::json!({"model": model, "messages": messages, "stream": stream});
    if shape == "tools" {
        b["tools"] = serde_json::json!([{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    }
    Ok(Bytes::from(serde_json::to_vec(&b)?))
}

/// The same request as [`body`] in Anthropic's Messages shape, for `/v1/messages`.
pub(crate) fn messages_body(shape: &str, model: &str, stream: bool) -> Result<Bytes> {
    let chat: serde_json::Value = serde_json::from_slice(&body(shape, model, stream)?)?;
    let mut b = serde_json::json!({"model": model, "max_tokens": 1024, "messages": chat["messages"], "stream": stream});
    if shape == "tools" {
        b["tools"] = serde_json::json!([{"name": "get_weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    }
    Ok(Bytes::from(serde_json::to_vec(&b)?))
}

/// The same request as [`body`] in OpenAI's Responses shape (stateless), for `/v1/responses`.
pub(crate) fn responses_body(shape: &str, model: &str, stream: bool) -> Result<Bytes> {
    let chat: serde_json::Value = serde_json::from_slice(&body(shape, model, stream)?)?;
    let mut b = serde_json::json!({"model": model, "input": chat["messages"], "stream": stream, "store": false});
    if shape == "tools" {
        b["tools"] = serde_json::json!([{"type": "function", "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    }
    Ok(Bytes::from(serde_json::to_vec(&b)?))
}
