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
mod embeddings;
mod models;
mod tls;

pub use behaviour::Behaviour;
pub use embeddings::{DEFAULT_EMBEDDING_DIMENSION, GEMINI_BATCH_ERROR, embedding_models_json, encode_base64, vector};
pub use models::{FakeModel, default_models, models_json, openai_models_json};
pub use tls::{Alpn, TlsOptions};

use behaviour::{Reply, error_body, reply};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use serde_json::Value;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

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

type RespBody = UnsyncBoxBody<Bytes, Infallible>;

#[derive(Debug)]
struct Shared {
    models_body: RwLock<Bytes>,
    models_status: AtomicUsize,
    /// The body of a `/models` answer that is not a 200, when a test chose one.
    models_error_body: RwLock<Option<Bytes>>,
    behaviours: RwLock<HashMap<String, Behaviour>>,
    default_behaviour: RwLock<Behaviour>,
    key_info: RwLock<Bytes>,
    record: AtomicBool,
    requests: Mutex<Vec<Recorded>>,
    calls: Mutex<HashMap<String, usize>>,
    total_calls: AtomicUsize,
    models_fetches: AtomicUsize,
    closed_early: AtomicUsize,
    events_sent: AtomicUsize,
    serial: AtomicU64,
    /// Each embedding model's dimension (`/embeddings`).
    embedding_dims: RwLock<HashMap<String, usize>>,
    /// Each embedding model's most inputs per call, past which it answers as Gemini does.
    embedding_batch_limits: RwLock<HashMap<String, usize>>,
    /// The body of `GET /embeddings/models`.
    embedding_models: RwLock<Bytes>,
    /// Set once by [`FakeUpstream::release_held`]: every [`Behaviour::Held`] request
    /// (and any later one) goes on.
    release: tokio::sync::watch::Sender<bool>,
    /// [`Behaviour::Held`] requests waiting now, and the most that ever waited at once.
    held_now: AtomicUsize,
    max_held: AtomicUsize,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(l: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    l.lock().unwrap_or_else(PoisonError::into_inner)
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
        let key = serde_json::json!({"data": {"is_free_tier": true, "limit": null, "usage": 0}}).to_string();
        let shared = Arc::new(Shared {
            models_body: RwLock::new(Bytes::from(models)),
            models_status: AtomicUsize::new(200),
            models_error_body: RwLock::new(None),
            behaviours: RwLock::new(HashMap::new()),
            default_behaviour: RwLock::new(Behaviour::Ok),
            key_info: RwLock::new(Bytes::from(key)),
            record: AtomicBool::new(true),
            requests: Mutex::new(Vec::new()),
            calls: Mutex::new(HashMap::new()),
            total_calls: AtomicUsize::new(0),
            models_fetches: AtomicUsize::new(0),
            closed_early: AtomicUsize::new(0),
            events_sent: AtomicUsize::new(0),
            serial: AtomicU64::new(0),
            embedding_dims: RwLock::new(HashMap::new()),
            embedding_batch_limits: RwLock::new(HashMap::new()),
            embedding_models: RwLock::new(Bytes::from_static(b"{\"data\":[]}")),
            release: tokio::sync::watch::Sender::new(false),
            held_now: AtomicUsize::new(0),
            max_held: AtomicUsize::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone(), tls));
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

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, tls: Option<tls::Tls>) {
    // Connection tasks live in this set, so aborting the loop closes them all.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                // Small writes must not wait for Nagle: SSE events and benchmark latency.
                let _ = stream.set_nodelay(true);
                conns.spawn(serve_connection(stream, shared.clone(), tls.clone()));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// One connection: plaintext HTTP/1.1, or TLS then whatever ALPN settled on. A client
/// going away mid-answer (or mid-handshake) is an expected outcome here.
async fn serve_connection(stream: TcpStream, shared: Arc<Shared>, tls: Option<tls::Tls>) {
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(shared, req).await) }
    });
    let Some(tls) = tls else {
        let io = hyper_util::rt::TokioIo::new(stream);
        let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
        return;
    };
    let Ok(stream) = tls.acceptor.accept(stream).await else { return };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    let io = hyper_util::rt::TokioIo::new(stream);
    if h2 {
        let mut builder = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
        if let Some(n) = tls.max_concurrent_streams {
            builder.max_concurrent_streams(n);
        }
        let _ = builder.serve_connection(io, service).await;
    } else {
        let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
    }
}

fn full(status: u16, content_type: &'static str, body: Bytes) -> Response<RespBody> {
    let mut resp = Response::new(Full::new(body).boxed_unsync());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

const JSON: &str = "application/json";

fn error(status: u16, message: &str) -> Response<RespBody> {
    full(status, JSON, error_body(status, message, None))
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<RespBody> {
    let path = req.uri().path();
    match (req.method(), path.strip_prefix("/api/v1").or_else(|| path.strip_prefix("/v1")).unwrap_or(path)) {
        (&Method::POST, "/chat/completions") => chat(shared, req).await,
        (&Method::POST, "/embeddings") => embeddings::embeddings(shared, req).await,
        (&Method::GET, "/models") => {
            shared.models_fetches.fetch_add(1, Ordering::Relaxed);
            let status = u16::try_from(shared.models_status.load(Ordering::Relaxed)).unwrap_or(500);
            match read(&shared.models_error_body).clone() {
                _ if status == 200 => full(200, JSON, read(&shared.models_body).clone()),
                Some(body) => full(status, JSON, body),
                None => error(status, "Internal Server Error"),
            }
        }
        (&Method::GET, "/embeddings/models") => full(200, JSON, read(&shared.embedding_models).clone()),
        (&Method::GET, "/key") => full(200, JSON, read(&shared.key_info).clone()),
        _ => error(404, "Not Found"),
    }
}

/// Counts an answer as cut short when it is dropped before being marked done.
struct InFlight {
    shared: Arc<Shared>,
    done: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.done {
            self.shared.closed_early.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn chat(shared: Arc<Shared>, req: Request<Incoming>) -> Response<RespBody> {
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(http_body_util::Collected::to_bytes) else {
        return error(400, "could not read the request body");
    };
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "request body is not valid json");
    };
    let Some(model) = json.get("model").and_then(Value::as_str).map(str::to_owned) else {
        return error(400, "model is required");
    };
    let stream = json.get("stream").and_then(Value::as_bool).unwrap_or(false);

    shared.total_calls.fetch_add(1, Ordering::Relaxed);
    *lock(&shared.calls).entry(model.clone()).or_insert(0) += 1;
    let behaviour =
        read(&shared.behaviours).get(&model).cloned().unwrap_or_else(|| read(&shared.default_behaviour).clone());
    let serial = shared.serial.fetch_add(1, Ordering::Relaxed);
    if shared.record.load(Ordering::Relaxed) {
        let header_text = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
        let recorded = Recorded {
            model: model.clone(),
            authorization: parts.headers.get(header::AUTHORIZATION).map(header_text),
            headers: parts.headers.iter().map(|(k, v)| (k.as_str().to_owned(), header_text(v))).collect(),
            body: json.clone(),
            stream,
        };
        lock(&shared.requests).push(recorded);
    }

    let mut guard = InFlight { shared: shared.clone(), done: false };
    let mut b = behaviour;
    loop {
        match b {
            Behaviour::Delay { first_byte, then } => {
                tokio::time::sleep(first_byte).await;
                b = *then;
            }
            Behaviour::Hang => std::future::pending::<()>().await,
            Behaviour::Held { then } => {
                hold(&shared).await;
                b = *then;
            }
            _ => break,
        }
    }
    match reply(&b, &model, stream, &json, serial) {
        Reply::Full { status, headers, body } => {
            guard.done = true;
            drop(guard);
            let mut resp = full(status, JSON, body);
            for (name, value) in headers {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    resp.headers_mut().insert(name, v);
                }
            }
            resp
        }
        Reply::Sse(events) => sse_response(guard, events),
        Reply::Large { content_type, head, filler, repeat, tail, declared } => {
            let total = head.len() + filler.len() * repeat + tail.len();
            let chunks = std::iter::once(head)
                .chain(std::iter::repeat_n(filler, repeat))
                .chain(std::iter::once(tail))
                .filter(|c| !c.is_empty());
            let state = (guard, chunks);
            let stream = futures_util::stream::unfold(state, |(mut guard, mut chunks)| async move {
                let Some(chunk) = chunks.next() else {
                    guard.done = true;
                    drop(guard);
                    return None;
                };
                Some((Ok::<_, Infallible>(Frame::data(chunk)), (guard, chunks)))
            });
            let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            if declared {
                resp.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(total));
            }
            resp
        }
    }
}

/// Waits for [`FakeUpstream::release_held`], counted in `held_now` (also when the
/// client goes away meanwhile) and `max_held`.
async fn hold(shared: &Shared) {
    struct Waiting<'a>(&'a AtomicUsize);
    impl Drop for Waiting<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let mut released = shared.release.subscribe();
    let now = shared.held_now.fetch_add(1, Ordering::Relaxed) + 1;
    let _waiting = Waiting(&shared.held_now);
    shared.max_held.fetch_max(now, Ordering::Relaxed);
    // The sender lives in `shared`, so it cannot close while we wait.
    let _ = released.wait_for(|r| *r).await;
}

fn sse_response(guard: InFlight, events: Vec<(Duration, Bytes)>) -> Response<RespBody> {
    let state = (guard, events.into_iter());
    let stream = futures_util::stream::unfold(state, |(mut guard, mut events)| async move {
        let Some((pause, event)) = events.next() else {
            guard.done = true;
            drop(guard);
            return None;
        };
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        guard.shared.events_sent.fetch_add(1, Ordering::Relaxed);
        Some((Ok::<_, Infallible>(Frame::data(event)), (guard, events)))
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn json(resp: reqwest::Response) -> Value {
        serde_json::from_slice(&resp.bytes().await.expect("body")).expect("json")
    }

    fn client() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder().build().expect("client")
    }

    async fn chat(up: &FakeUpstream, model: &str, stream: bool) -> reqwest::Response {
        client()
            .post(format!("{}/chat/completions", up.base_url()))
            .bearer_auth("sk-test")
            .header("content-type", "application/json")
            .body(
                serde_json::json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
                    .to_string(),
            )
            .send()
            .await
            .expect("send")
    }

    #[tokio::test]
    async fn serves_models_chat_and_key() {
        let up = FakeUpstream::start().await;
        let models = json(client().get(format!("{}/models", up.base_url())).send().await.expect("models")).await;
        assert!(models["data"].as_array().is_some_and(|d| d.len() == default_models().len()));
        assert_eq!(up.models_fetches(), 1);

        let resp = chat(&up, "a/b:free", false).await;
        assert_eq!(resp.status(), 200);
        let body = json(resp).await;
        assert_eq!(body["model"], "a/b:free");
        assert_eq!(body["choices"][0]["message"]["content"], "hello from a/b:free");
        let rec = up.requests();
        assert_eq!(rec.len(), 1);
        assert_eq!(rec[0].authorization.as_deref(), Some("Bearer sk-test"));
        assert!(!rec[0].stream);
        assert_eq!(up.calls("a/b:free"), 1);

        up.set_behaviour("c/d:free", Behaviour::DailyCap { reset_ms: 1234 });
        let resp = chat(&up, "c/d:free", false).await;
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["x-ratelimit-reset"], "1234");
        assert_eq!(up.total_calls(), 2);

        let key = json(client().get(format!("{}/key", up.base_url())).send().await.expect("key")).await;
        assert_eq!(key["data"]["is_free_tier"], true);
        up.shutdown().await;
    }

    #[tokio::test]
    async fn streams_sse_and_counts_clients_that_leave() {
        let up = FakeUpstream::start().await;
        let resp = chat(&up, "a/b:free", true).await;
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let text = resp.text().await.expect("text");
        assert!(text.starts_with(": OPENROUTER PROCESSING\n\n"), "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        assert_eq!(up.open_connections_closed(), 0);

        up.set_default_behaviour(Behaviour::SlowStream { chunks: 3, gap: Duration::from_secs(30) });
        let mut resp = chat(&up, "slow:free", true).await;
        let first = resp.chunk().await.expect("chunk").expect("some");
        assert!(!first.is_empty());
        drop(resp);
        // Bound the wait generously: the server notices the closed socket promptly.
        for _ in 0..500 {
            if up.open_connections_closed() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(up.open_connections_closed(), 1);
    }

    fn tls_client(up: &FakeUpstream) -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca = reqwest::Certificate::from_pem(up.ca_pem().expect("https mode").as_bytes()).expect("pem");
        reqwest::Client::builder().tls_certs_only([ca]).build().expect("client")
    }

    #[tokio::test]
    async fn serves_https_by_alpn_and_holds_until_released() {
        for (alpn, version) in [(Alpn::H2, reqwest::Version::HTTP_2), (Alpn::Http1, reqwest::Version::HTTP_11)] {
            let up = FakeUpstream::start_tls(TlsOptions { alpn, max_concurrent_streams: Some(4) }).await;
            assert!(up.base_url().starts_with("https://127.0.0.1:"), "{}", up.base_url());
            let client = tls_client(&up);
            let resp = client.get(format!("{}/models", up.base_url())).send().await.expect("models");
            assert_eq!((resp.status().as_u16(), resp.version()), (200, version));

            up.set_default_behaviour(Behaviour::Held { then: Box::new(Behaviour::Ok) });
            let body = serde_json::json!({"model": "a/b:free", "messages": []}).to_string();
            let send = || client.post(format!("{}/chat/completions", up.base_url())).body(body.clone()).send();
            let (first, second) = (tokio::spawn(send()), tokio::spawn(send()));
            for _ in 0..3000 {
                if up.held_now() == 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!((up.held_now(), up.max_held()), (2, 2));
            up.release_held();
            for resp in [first, second] {
                assert_eq!(resp.await.expect("join").expect("send").status(), 200);
            }
            assert_eq!(up.held_now(), 0);
        }
        // Plaintext stays the default.
        assert!(FakeUpstream::start().await.ca_pem().is_none());
    }
}
