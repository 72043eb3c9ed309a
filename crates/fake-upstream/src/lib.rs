//! A fast, scriptable fake OpenRouter on loopback, shared by the tests and the benchmark.
//!
//! It serves `GET /api/v1/models`, `POST /api/v1/chat/completions` (JSON and real SSE),
//! `POST /api/v1/embeddings` (deterministic vectors) and `GET /api/v1/key` from memory, answers with no delay unless a [`Behaviour`] asks
//! for one, and records what it received so tests can assert on it. Each SSE event is
//! written as its own body chunk, so tests can observe chunk timing.
//!
//! Plaintext HTTP/1.1 by default; [`FakeUpstream::start_tls`] serves HTTPS with a
//! certificate made at start, HTTP/2 by ALPN and a chosen stream limit per connection.

mod behaviour;
mod chat;
mod embeddings;
mod models;
mod respond;
mod server;
mod shared;
mod tls;

pub use behaviour::Behaviour;
pub use embeddings::{DEFAULT_EMBEDDING_DIMENSION, GEMINI_BATCH_ERROR, embedding_models_json, encode_base64, vector};
pub use models::{FakeModel, default_models, models_json, openai_models_json};
pub use tls::{Alpn, TlsOptions};

use bytes::Bytes;
use serde_json::Value;
use shared::{Shared, lock, write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One chat request the fake received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub model: String,
    pub body: Value,
    pub authorization: Option<String>,
    /// Every request header, lowercase names, in order.
    pub headers: Vec<(String, String)>,
    pub stream: bool,
}

/// A running fake upstream. Dropping it stops the server and closes every connection.
#[derive(Debug)]
pub struct FakeUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
    /// The CA certificate (PEM) behind the server's certificate, in HTTPS mode.
    ca_pem: Option<String>,
}

impl FakeUpstream {
    /// Binds `127.0.0.1:0` and starts serving on the current tokio runtime.
    ///
    /// # Panics
    /// If no loopback port can be bound (a broken test machine).
    pub async fn start() -> FakeUpstream {
        Self::serve(None).await
    }

    /// Like [`start`](Self::start), over HTTPS: the certificate (for `127.0.0.1` and
    /// `localhost`) is issued at start by a CA whose certificate is [`ca_pem`](Self::ca_pem).
    ///
    /// # Panics
    /// If no loopback port can be bound or no certificate made (a broken test machine).
    pub async fn start_tls(options: TlsOptions) -> FakeUpstream {
        #[expect(clippy::expect_used, reason = "a test fixture: nothing to test without its certificate")]
        let (tls, ca_pem) = tls::make(options).expect("make the fake upstream's certificate");
        let mut up = Self::serve(Some(tls)).await;
        up.ca_pem = Some(ca_pem);
        up
    }

    async fn serve(tls: Option<tls::Tls>) -> FakeUpstream {
        #[expect(clippy::expect_used, reason = "a test fixture: there is nothing useful to do without a port")]
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port for the fake upstream");
        #[expect(clippy::expect_used, reason = "a bound listener has a local address")]
        let addr = listener.local_addr().expect("local address of a bound listener");
        let models = serde_json::to_vec(&models_json(&default_models())).unwrap_or_default();
        let shared = Arc::new(Shared::new(Bytes::from(models)));
        let task = tokio::spawn(server::accept_loop(listener, shared.clone(), tls));
        FakeUpstream { addr, shared, task, ca_pem: None }
    }

    fn scheme(&self) -> &'static str {
        if self.ca_pem.is_some() { "https" } else { "http" }
    }

    /// `http://127.0.0.1:PORT/api/v1` (`https://` in HTTPS mode)
    pub fn base_url(&self) -> String {
        format!("{}://{}/api/v1", self.scheme(), self.addr)
    }

    /// `http://127.0.0.1:PORT/v1`: the same server as a plain OpenAI-compatible one
    /// (Ollama, vLLM, a free tier), for [`openai_models_json`] catalogs.
    pub fn openai_base_url(&self) -> String {
        format!("{}://{}/v1", self.scheme(), self.addr)
    }

    /// The CA certificate (PEM) a client must trust to reach the fake over HTTPS;
    /// `None` in plaintext mode.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// [`Behaviour::Held`] requests waiting now.
    pub fn held_now(&self) -> usize {
        self.shared.held_now.load(Ordering::Relaxed)
    }

    /// The most [`Behaviour::Held`] requests that ever waited at the same time.
    pub fn max_held(&self) -> usize {
        self.shared.max_held.load(Ordering::Relaxed)
    }

    /// Lets every [`Behaviour::Held`] request go on, now and from now on.
    pub fn release_held(&self) {
        self.shared.release.send_replace(true);
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The raw body `/models` serves from now on.
    pub fn set_models(&self, body: impl Into<Bytes>) {
        *write(&self.shared.models_body) = body.into();
    }

    /// A status other than 200 makes `/models` answer with an OpenRouter error body.
    pub fn set_models_status(&self, status: u16) {
        self.shared.models_status.store(usize::from(status), Ordering::Relaxed);
    }

    /// `/models` answers `status` with `body` (an upstream or proxy's own error page).
    pub fn set_models_error(&self, status: u16, body: impl Into<Bytes>) {
        *write(&self.shared.models_error_body) = Some(body.into());
        self.set_models_status(status);
    }

    /// The script for chat (and embeddings) requests naming `model`.
    pub fn set_behaviour(&self, model: &str, b: Behaviour) {
        write(&self.shared.behaviours).insert(model.to_owned(), b);
    }

    /// The dimension of `model`'s vectors on `/embeddings`.
    pub fn set_embedding_dimension(&self, model: &str, dimension: usize) {
        write(&self.shared.embedding_dims).insert(model.to_owned(), dimension);
    }

    /// At most `limit` inputs per `/embeddings` call to `model`: past it a 400 as
    /// Gemini's OpenAI-compatible endpoint answers (see [`GEMINI_BATCH_ERROR`]).
    pub fn set_embedding_batch_limit(&self, model: &str, limit: usize) {
        write(&self.shared.embedding_batch_limits).insert(model.to_owned(), limit);
    }

    /// The body of `GET /embeddings/models` (initially an empty list).
    pub fn set_embedding_models(&self, body: impl Into<Bytes>) {
        *write(&self.shared.embedding_models) = body.into();
    }

    /// The script for models without their own; initially [`Behaviour::Ok`].
    pub fn set_default_behaviour(&self, b: Behaviour) {
        *write(&self.shared.default_behaviour) = b;
    }

    /// The body of `GET /key`.
    pub fn set_key_info(&self, json: Value) {
        *write(&self.shared.key_info) = Bytes::from(json.to_string());
    }

    /// `GET /key` for a free-tier key whose `free_model_daily_requests` are `used` of
    /// `limit` today (`remaining` is the difference), as OpenRouter reports them.
    pub fn set_free_model_daily_requests(&self, used: u64, limit: u64) {
        self.set_key_info(serde_json::json!({"data": {
            "label": "fake", "is_free_tier": true, "limit": null, "usage": 0,
            "free_model_daily_requests": {"used": used, "limit": limit, "remaining": limit.saturating_sub(used)},
        }}));
    }

    /// Whether chat requests are kept for [`requests`](Self::requests) (on by default).
    /// The benchmark turns it off so memory stays flat; counters still count.
    pub fn set_recording(&self, on: bool) {
        self.shared.record.store(on, Ordering::Relaxed);
    }

    /// Every chat request received (while recording), in order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.requests).clone()
    }

    /// Chat requests received for `model`.
    pub fn calls(&self, model: &str) -> usize {
        lock(&self.shared.calls).get(model).copied().unwrap_or(0)
    }

    pub fn total_calls(&self) -> usize {
        self.shared.total_calls.load(Ordering::Relaxed)
    }

    pub fn models_fetches(&self) -> usize {
        self.shared.models_fetches.load(Ordering::Relaxed)
    }

    /// Chat answers whose client went away before the answer ended (while waiting to
    /// answer, or mid-stream): proof that a cancellation reached upstream.
    pub fn open_connections_closed(&self) -> usize {
        self.shared.closed_early.load(Ordering::Relaxed)
    }

    /// SSE events (comments and data) written to clients so far, over all streams.
    pub fn sse_events_sent(&self) -> usize {
        self.shared.events_sent.load(Ordering::Relaxed)
    }

    /// Clears recorded requests and counters; scripts and the catalog stay.
    pub fn reset_counters(&self) {
        lock(&self.shared.requests).clear();
        lock(&self.shared.calls).clear();
        for c in
            [&self.shared.total_calls, &self.shared.models_fetches, &self.shared.closed_early, &self.shared.events_sent]
        {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Stops accepting and closes every open connection.
    pub async fn shutdown(self) {
        self.task.abort();
        // Abort is the point; the join result only says it was cancelled.
        let _ = (&mut { self }.task).await;
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests;
