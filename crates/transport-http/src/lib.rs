//! The HTTP chat transport: forwards chat completions to OpenRouter (or anything that
//! speaks its API) over one pooled reqwest client, streams answers without buffering,
//! bounds each wait with its own timeout, and classifies failures for the core.

mod classify;
mod stream;

pub use classify::{Dialect, LOCAL_BUSY_BACKOFF, classify, classify_openai, parse_go_duration};

use bytes::Bytes;
use reqwest::header::{
    ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue,
};
use router_core::{Body, ChatTransport, ErrorKind, ModelId, Secret, Timestamp, TransportError, UpstreamResponse};
use serde::Deserialize;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Upstream connect timeout, by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Upstream time from sending a request to the response head, by default.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest gap between two chunks of a stream, by default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The whole of a non-streamed answer, by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The largest non-streamed answer read from upstream, well above any real completion:
/// beyond it the attempt is a protocol failure (and falls back), not an allocation.
pub const DEFAULT_MAX_ANSWER_SIZE: usize = 32 * 1024 * 1024;

/// Idle upstream connections kept per host (per transport, so per serving thread): a
/// burst of thousands of HTTP/1.1 streams must not leave thousands of idle sockets and
/// their buffers behind once it is over (over HTTP/2 one connection carries them all).
pub const MAX_IDLE_UPSTREAM_CONNECTIONS: usize = 64;

/// Attempts that failed for want of local resources (open files, memory), over the
/// whole process: the descriptor table is the process's, not a transport's.
static LOCAL_RESOURCE_FAILURES: AtomicU64 = AtomicU64::new(0);

/// Upstream connections that could not be opened for want of local resources, since
/// the process started.
pub fn local_resource_failures() -> u64 {
    LOCAL_RESOURCE_FAILURES.load(Ordering::Relaxed)
}

/// Whether an IO error means this process ran out of something (descriptors, memory,
/// buffers) rather than anything the peer or the network did.
pub fn is_local_exhaustion(e: &std::io::Error) -> bool {
    // EMFILE, ENFILE, ENOMEM and ENOBUFS on Linux and the BSDs/macOS.
    const CODES: &[i32] = if cfg!(any(target_os = "macos", target_os = "ios", target_os = "freebsd")) {
        &[24, 23, 12, 55]
    } else {
        &[24, 23, 12, 105]
    };
    e.kind() == std::io::ErrorKind::OutOfMemory || e.raw_os_error().is_some_and(|c| CODES.contains(&c))
}

/// `Retry-After` for a request that failed for want of local resources.
pub const LOCAL_RESOURCE_RETRY_AFTER: Duration = Duration::from_secs(1);
/// At most one warning per this period about local resource exhaustion.
pub const LOCAL_RESOURCE_WARNING_EVERY: Duration = Duration::from_secs(10);

/// Counts a local exhaustion and warns about it, at most once per
/// [`LOCAL_RESOURCE_WARNING_EVERY`] (with the number of occurrences not logged since).
fn local_exhaustion_warning(message: &str) {
    static LAST: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
    static HIDDEN: AtomicU64 = AtomicU64::new(0);
    LOCAL_RESOURCE_FAILURES.fetch_add(1, Ordering::Relaxed);
    let now = Instant::now();
    let mut last = LAST.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if last.is_some_and(|t| now.duration_since(t) < LOCAL_RESOURCE_WARNING_EVERY) {
        HIDDEN.fetch_add(1, Ordering::Relaxed);
        return;
    }
    *last = Some(now);
    drop(last);
    tracing::warn!(
        error = message,
        more_since_last_warning = HIDDEN.swap(0, Ordering::Relaxed),
        "cannot open an upstream connection: out of local resources (raise the open-files limit or lower \
         max_connections); answered 503, no model or quota charged"
    );
}

/// Whether `e` or one of its sources is a local exhaustion.
fn caused_by_local_exhaustion(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>().is_some_and(is_local_exhaustion) {
            return true;
        }
        source = s.source();
    }
    false
}

/// Where to send requests, with what credentials, and how long to wait for each part.
#[derive(Clone)]
pub struct TransportConfig {
    /// E.g. `https://openrouter.ai/api/v1` (no trailing slash needed).
    pub base_url: String,
    /// Sent as `Authorization: Bearer <key>` when set.
    pub api_key: Option<Secret>,
    /// Sent as `HTTP-Referer` (OpenRouter's app attribution).
    pub referer: Option<String>,
    /// Sent as `X-Title`.
    pub title: Option<String>,
    pub connect_timeout: Duration,
    /// From sending the request to the response head.
    pub first_byte_timeout: Duration,
    /// The longest gap between two chunks of a stream.
    pub idle_timeout: Duration,
    /// The whole answer of a non-streamed request (head and body).
    pub request_timeout: Duration,
    /// The largest non-streamed answer (and error body) read, in bytes.
    pub max_answer_size: usize,
    /// Whose error bodies and rate-limit headers the answers carry.
    pub dialect: Dialect,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            base_url: "https://openrouter.ai/api/v1".into(),
            api_key: None,
            referer: None,
            title: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            first_byte_timeout: DEFAULT_FIRST_BYTE_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_answer_size: DEFAULT_MAX_ANSWER_SIZE,
            dialect: Dialect::OpenRouter,
        }
    }
}

impl fmt::Debug for TransportConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key) // Secret prints `***`
            .field("referer", &self.referer)
            .field("title", &self.title)
            .field("connect_timeout", &self.connect_timeout)
            .field("first_byte_timeout", &self.first_byte_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_answer_size", &self.max_answer_size)
            .field("dialect", &self.dialect)
            .finish()
    }
}

/// Why a transport could not be built. Never contains the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportInitError {
    #[error("the api key contains characters not allowed in an http header")]
    InvalidKey,
    #[error("the {0} header value contains characters not allowed in an http header")]
    InvalidHeader(&'static str),
    #[error("invalid base url {0:?}")]
    InvalidBaseUrl(String),
    #[error("could not build the http client: {0}")]
    Client(String),
}

/// Counters since the transport was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Chat requests sent.
    pub requests: u64,
    /// Chat requests that ended in a classified error before a response was handed over.
    pub failures: u64,
    /// Streams handed over.
    pub streams: u64,
    /// Streams cut by an idle timeout or a broken connection.
    pub stream_failures: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    failures: AtomicU64,
    streams: AtomicU64,
    pub(crate) stream_failures: AtomicU64,
}

/// The key's account, from `GET /key`: whether it is on the free tier decides the daily
/// free-model cap (50 requests a day on the free tier, 1000 once credits were bought).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct KeyInfo {
    #[serde(default)]
    pub label: Option<String>,
    /// Credit limit, `None` for unlimited.
    #[serde(default)]
    pub limit: Option<f64>,
    #[serde(default)]
    pub limit_remaining: Option<f64>,
    #[serde(default)]
    pub usage: Option<f64>,
    /// Absent is read as the free tier: the smaller cap is the safe assumption.
    #[serde(default = "free_tier_default")]
    pub is_free_tier: bool,
    /// Today's free-model requests as upstream counts them (reset at 00:00 UTC; failed
    /// attempts count; about a minute behind). Absent from older answers.
    #[serde(default)]
    pub free_model_daily_requests: Option<FreeModelDailyRequests>,
}

/// `free_model_daily_requests` of `GET /key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct FreeModelDailyRequests {
    pub used: u32,
    pub limit: u32,
    pub remaining: u32,
}

fn free_tier_default() -> bool {
    true
}

impl KeyInfo {
    /// Free-model requests a day this account may make.
    /// Upstream's own `free_model_daily_requests.limit` when it says (the limit depends
    /// on credits bought, not on the tier), else read from the tier.
    pub fn daily_free_requests(&self) -> u32 {
        if let Some(daily) = self.free_model_daily_requests {
            return daily.limit;
        }
        if self.is_free_tier { 50 } else { 1000 }
    }
}

/// Headers from upstream's answer worth passing on to the client. Prebuilt names: a
/// lookup by `&str` would parse the name again on every request.
static PASSED_HEADERS: [HeaderName; 7] = [
    CONTENT_TYPE,
    HeaderName::from_static("x-ratelimit-limit"),
    HeaderName::from_static("x-ratelimit-remaining"),
    HeaderName::from_static("x-ratelimit-reset"),
    HeaderName::from_static("x-generation-id"),
    // Groq's (and other OpenAI-compatible free tiers'): what is left of the model's
    // request limit, and when it resets.
    HeaderName::from_static("x-ratelimit-remaining-requests"),
    HeaderName::from_static("x-ratelimit-reset-requests"),
];

/// Forwards chat requests over one pooled client. Cheap to share behind an `Arc`.
pub struct HttpTransport {
    client: reqwest::Client,
    /// Parsed once: handing reqwest a string would parse it again (IDNA and all) on
    /// every request, which showed in the profile.
    chat_url: reqwest::Url,
    key_url: reqwest::Url,
    /// The key's text, kept only to scrub it from anything upstream echoes back.
    key: Option<Secret>,
    config: TransportConfig,
    counters: Arc<Counters>,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport").field("config", &self.config).field("stats", &self.stats()).finish()
    }
}

impl HttpTransport {
    pub fn new(config: TransportConfig) -> Result<Self, TransportInitError> {
        // reqwest is built without a default crypto provider; installing one twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let base = config.base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(TransportInitError::InvalidBaseUrl(config.base_url.clone()));
        }
        let mut headers = HeaderMap::new();
        // Nothing here decodes compressed bodies, so none is asked for; an answer encoded
        // anyway is refused (see `forward`) rather than passed on contradicting its headers.
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        let key = config.api_key.clone().filter(|k| !k.is_empty());
        if let Some(key) = &key {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                .map_err(|_| TransportInitError::InvalidKey)?;
            // Keeps the value out of hyper's debug output and HPACK tables.
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        for (name, value, label) in
            [("http-referer", &config.referer, "HTTP-Referer"), ("x-title", &config.title, "X-Title")]
        {
            if let Some(value) = value {
                let v = HeaderValue::from_str(value).map_err(|_| TransportInitError::InvalidHeader(label))?;
                headers.insert(HeaderName::from_static(name), v);
            }
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(MAX_IDLE_UPSTREAM_CONNECTIONS)
            .tcp_keepalive(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| TransportInitError::Client(error_chain(&e)))?;
        let url = |path: &str| {
            reqwest::Url::parse(&format!("{base}/{path}"))
                .map_err(|_| TransportInitError::InvalidBaseUrl(config.base_url.clone()))
        };
        Ok(HttpTransport {
            client,
            chat_url: url("chat/completions")?,
            key_url: url("key")?,
            key,
            config,
            counters: Arc::default(),
        })
    }

    pub fn config(&self) -> &TransportConfig {
        &self.config
    }

    pub fn stats(&self) -> TransportStats {
        let c = &self.counters;
        TransportStats {
            requests: c.requests.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            streams: c.streams.load(Ordering::Relaxed),
            stream_failures: c.stream_failures.load(Ordering::Relaxed),
        }
    }

    /// The key's account (`GET {base}/key`).
    pub async fn key_info(&self) -> Result<KeyInfo, TransportError> {
        #[derive(Deserialize)]
        struct Envelope {
            data: KeyInfo,
        }
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.config.request_timeout;
        let result = async {
            let resp = tokio::time::timeout_at(deadline, self.client.get(self.key_url.clone()).send())
                .await
                .map_err(|_| timeout_error("no answer from upstream's key endpoint", self.config.request_timeout))?
                .map_err(|e| map_reqwest_error(e, "the key request failed"))?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = read_body(resp, deadline, self.config.request_timeout, self.config.max_answer_size).await?;
            if !(200..300).contains(&status) {
                return Err(classify(status, &headers, &body, now()));
            }
            serde_json::from_slice::<Envelope>(&body)
                .map(|e| e.data)
                .map_err(|e| TransportError::new(ErrorKind::Protocol, format!("unreadable key info: {e}")))
        }
        .await;
        result.map_err(|e| self.scrub(e).with_elapsed(started.elapsed()))
    }

    /// Removes the key from anything upstream may have echoed into an error.
    fn scrub(&self, mut err: TransportError) -> TransportError {
        if let Some(key) = self.key.as_ref().map(Secret::expose) {
            if err.message.contains(key) {
                err.message = err.message.replace(key, "***");
            }
            if let Some(m) = err.metadata.as_mut() {
                scrub_value(m, key);
            }
        }
        err
    }

    async fn forward(&self, body: Bytes, stream: bool) -> Result<UpstreamResponse, TransportError> {
        let started = Instant::now();
        // A non-streamed answer must arrive whole within `request_timeout`; the head of
        // either within `first_byte_timeout`.
        let deadline = tokio::time::Instant::now() + self.config.request_timeout;
        let first_byte = if stream {
            self.config.first_byte_timeout
        } else {
            self.config.first_byte_timeout.min(self.config.request_timeout)
        };
        let request = self
            .client
            .post(self.chat_url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body)
            .send();
        let resp = tokio::time::timeout(first_byte, request)
            .await
            .map_err(|_| timeout_error("no response from upstream", first_byte))?
            .map_err(|e| map_reqwest_error(e, "the upstream request failed"))?;
        let elapsed = started.elapsed();
        let status = resp.status().as_u16();
        let headers: Vec<(&'static str, String)> = PASSED_HEADERS
            .iter()
            .filter_map(|name| {
                let v = resp.headers().get(name)?.to_str().ok()?;
                Some((name.as_str(), v.to_owned()))
            })
            .collect();

        if !resp.status().is_success() {
            let head = resp.headers().clone();
            // An error body too large to keep is classified by its status alone.
            let body = match read_body(resp, deadline, self.config.request_timeout, self.config.max_answer_size).await {
                Err(e) if e.kind == ErrorKind::Protocol => Bytes::new(),
                other => other?,
            };
            return Err(match self.config.dialect {
                Dialect::OpenRouter => classify(status, &head, &body, now()),
                Dialect::OpenAi { local } => classify_openai(status, &head, &body, local),
            });
        }
        let content = Content::of(resp.headers());
        if let Some(encoding) = content.encoding {
            return Err(protocol(
                status,
                format!(
                    "upstream answered {status} with content-encoding `{encoding}`, which the router did not ask for"
                ),
            ));
        }
        if stream && content.is_sse {
            self.counters.streams.fetch_add(1, Ordering::Relaxed);
            let inner = Box::pin(resp.bytes_stream());
            let s = stream::UpstreamStream::new(inner, self.config.idle_timeout, self.counters.clone(), started);
            return Ok(UpstreamResponse { status, headers, body: Body::Stream(Box::pin(s)), elapsed });
        }
        if let Some(other) = content.not_json {
            let wanted = if stream { "an event stream or JSON" } else { "JSON" };
            return Err(protocol(
                status,
                format!("upstream answered {status} with content type `{other}`, not {wanted}"),
            ));
        }
        // Whether the body is JSON at all is the router's to judge, in the one reading
        // of the answer it makes anyway (`router_core::sse::Answer`).
        let body = read_body(resp, deadline, self.config.request_timeout, self.config.max_answer_size).await?;
        Ok(UpstreamResponse { status, headers, body: Body::Full(body), elapsed })
    }
}

#[async_trait::async_trait]
impl ChatTransport for HttpTransport {
    // The body already names the model; the transport only moves bytes.
    async fn send(&self, _model: &ModelId, body: Bytes, stream: bool) -> Result<UpstreamResponse, TransportError> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        self.forward(body, stream).await.map_err(|e| {
            self.counters.failures.fetch_add(1, Ordering::Relaxed);
            self.scrub(e).with_elapsed(started.elapsed())
        })
    }
}

/// What a 2xx answer's head says about its body.
#[derive(Debug, Default, PartialEq, Eq)]
struct Content {
    is_sse: bool,
    /// The content type when it is neither JSON nor an event stream.
    not_json: Option<String>,
    /// A `content-encoding` other than `identity`.
    encoding: Option<String>,
}

impl Content {
    fn of(headers: &HeaderMap) -> Content {
        let text = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).trim().to_owned();
        // The media type, compared without building a lower-case copy (ASCII case only,
        // as `to_ascii_lowercase` would): no allocation for the usual answers.
        let value = headers.get(CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()));
        let mime = value.as_deref().map(|t| t.split(';').next().unwrap_or("").trim());
        let is = |m: &str, expected: &str| m.eq_ignore_ascii_case(expected);
        let is_sse = mime.is_some_and(|m| is(m, "text/event-stream"));
        // No content type at all is judged by the body (it must be JSON).
        let is_json = mime.is_none_or(|m| {
            let b = m.as_bytes();
            is(m, "application/json")
                || (b.get(..12).is_some_and(|p| p.eq_ignore_ascii_case(b"application/"))
                    && b.len() >= 5
                    && b[b.len() - 5..].eq_ignore_ascii_case(b"+json"))
                || is(m, "text/json")
        });
        let encoding = headers
            .get_all(CONTENT_ENCODING)
            .iter()
            .map(text)
            .find(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"));
        let not_json = (!is_json && !is_sse).then(|| mime.unwrap_or_default().to_ascii_lowercase());
        Content { is_sse, not_json: if is_sse { None } else { not_json }, encoding }
    }
}

fn protocol(status: u16, message: String) -> TransportError {
    let _ = status; // named in the message; a 2xx is not an error status to report
    TransportError::new(ErrorKind::Protocol, message)
}

/// The whole body, at most `max` bytes (more is a protocol failure; a declared length
/// over it fails before anything is read), within `deadline`.
async fn read_body(
    mut resp: reqwest::Response,
    deadline: tokio::time::Instant,
    limit: Duration,
    max: usize,
) -> Result<Bytes, TransportError> {
    let too_large = || {
        TransportError::new(ErrorKind::Protocol, format!("upstream's answer is larger than the limit of {max} bytes"))
    };
    let declared = resp.content_length().and_then(|n| usize::try_from(n).ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let read = async {
        // The chunks as they came, joined once at the end: a growing buffer would copy
        // the answer at every doubling and, for a large one, hold two copies at once.
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut len = 0usize;
        while let Some(chunk) =
            resp.chunk().await.map_err(|e| map_reqwest_error(e, "reading upstream's answer failed"))?
        {
            len += chunk.len();
            if len > max {
                return Err(too_large());
            }
            chunks.push(chunk);
        }
        Ok(match chunks.len() {
            // The usual case: one chunk is the whole body; no copy.
            0 | 1 => chunks.pop().unwrap_or_default(),
            _ => {
                let mut body = bytes::BytesMut::with_capacity(len);
                for chunk in chunks.drain(..) {
                    body.extend_from_slice(&chunk);
                }
                body.freeze()
            }
        })
    };
    tokio::time::timeout_at(deadline, read)
        .await
        .map_err(|_| timeout_error("upstream's answer did not complete", limit))?
}

fn timeout_error(what: &str, limit: Duration) -> TransportError {
    TransportError::new(ErrorKind::Timeout, format!("{what} within {} ms", limit.as_millis()))
}

fn now() -> Timestamp {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Timestamp::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// A reqwest failure as a transport error. The URL is left out (it is ours, not news),
/// and the key is never part of a reqwest error: it travels in a header.
pub(crate) fn map_reqwest_error(e: reqwest::Error, context: &str) -> TransportError {
    let e = e.without_url();
    if caused_by_local_exhaustion(&e) {
        let message = format!("{context}: {}", error_chain(&e));
        local_exhaustion_warning(&message);
        return TransportError::new(ErrorKind::LocalResource, message).with_retry_after(LOCAL_RESOURCE_RETRY_AFTER);
    }
    let kind = if e.is_connect() {
        ErrorKind::Connection
    } else if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_decode() {
        ErrorKind::Protocol
    } else {
        // A reset or closed connection mid-request or mid-body.
        ErrorKind::Connection
    };
    TransportError::new(kind, format!("{context}: {}", error_chain(&e)))
}

/// The error and its sources, outermost first.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn scrub_value(v: &mut serde_json::Value, key: &str) {
    match v {
        serde_json::Value::String(s) if s.contains(key) => *s = s.replace(key, "***"),
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| scrub_value(x, key)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|x| scrub_value(x, key)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(config: TransportConfig, expected: Result<(), TransportInitError>) {
        assert_eq!(HttpTransport::new(config).map(|_| ()), expected);
    }

    fn content(content_type: Option<&str>, encoding: Option<&str>) -> Content {
        let mut h = HeaderMap::new();
        if let Some(ct) = content_type {
            h.insert(CONTENT_TYPE, HeaderValue::from_str(ct).expect("header"));
        }
        if let Some(e) = encoding {
            h.insert(CONTENT_ENCODING, HeaderValue::from_str(e).expect("header"));
        }
        Content::of(&h)
    }

    #[test]
    fn content_types_compare_without_case() {
        let json = Content::default();
        assert_eq!(content(None, None), json);
        assert_eq!(content(Some("application/json"), None), json);
        assert_eq!(content(Some(" Application/JSON ; charset=utf-8"), None), json);
        assert_eq!(content(Some("application/vnd.api+JSON"), None), json);
        assert_eq!(content(Some("TEXT/JSON"), None), json);
        let sse = Content { is_sse: true, ..Content::default() };
        assert_eq!(content(Some("Text/Event-Stream; charset=utf-8"), None), sse);
        let html = Content { not_json: Some("text/html".into()), ..Content::default() };
        assert_eq!(content(Some("Text/HTML; charset=utf-8"), None), html);
        let plus = Content { not_json: Some("text/x+json".into()), ..Content::default() };
        assert_eq!(content(Some("text/x+json"), None), plus);
        let empty = Content { not_json: Some(String::new()), ..Content::default() };
        assert_eq!(content(Some(";"), None), empty);
        let gzip = Content { encoding: Some("gzip".into()), ..Content::default() };
        assert_eq!(content(Some("application/json"), Some(" gzip ")), gzip);
        assert_eq!(content(Some("application/json"), Some("identity")), json);
    }

    #[test]
    fn builds_or_says_why_not() {
        check(TransportConfig::default(), Ok(()));
        let bad_key = TransportConfig { api_key: Some(Secret::new("sk-or\nv1")), ..TransportConfig::default() };
        check(bad_key, Err(TransportInitError::InvalidKey));
        let bad_title = TransportConfig { title: Some("a\nb".into()), ..TransportConfig::default() };
        check(bad_title, Err(TransportInitError::InvalidHeader("X-Title")));
        let bad_url = TransportConfig { base_url: "openrouter.ai".into(), ..TransportConfig::default() };
        check(bad_url, Err(TransportInitError::InvalidBaseUrl("openrouter.ai".into())));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let config = TransportConfig { api_key: Some(Secret::new("sk-or-v1-secret")), ..TransportConfig::default() };
        let t = HttpTransport::new(config).expect("transport");
        let text = format!("{t:?}");
        assert!(!text.contains("sk-or-v1-secret") && text.contains("***"), "{text}");
        let init = HttpTransport::new(TransportConfig {
            api_key: Some(Secret::new("sk-or-v1-secret\n")),
            ..TransportConfig::default()
        })
        .expect_err("invalid key");
        assert!(!init.to_string().contains("sk-or-v1-secret"));
    }

    #[test]
    fn scrubs_echoed_keys() {
        let config = TransportConfig { api_key: Some(Secret::new("sk-echo")), ..TransportConfig::default() };
        let t = HttpTransport::new(config).expect("transport");
        let mut err = TransportError::new(ErrorKind::Auth, "bad key sk-echo");
        err.metadata = Some(serde_json::json!({"raw": ["key sk-echo rejected"]}));
        let err = t.scrub(err);
        assert_eq!(err.message, "bad key ***");
        assert_eq!(err.metadata, Some(serde_json::json!({"raw": ["key *** rejected"]})));
    }

    #[test]
    fn reads_key_info() {
        let info: KeyInfo = serde_json::from_str(r#"{"is_free_tier":false,"limit":null,"usage":1.5}"#).expect("info");
        assert_eq!(info.daily_free_requests(), 1000);
        let info: KeyInfo = serde_json::from_str(
            r#"{"is_free_tier":true,"free_model_daily_requests":{"used":12,"limit":1000,"remaining":988}}"#,
        )
        .expect("info");
        let daily = FreeModelDailyRequests { used: 12, limit: 1000, remaining: 988 };
        assert_eq!(info.free_model_daily_requests, Some(daily));
        assert_eq!(info.daily_free_requests(), 1000, "upstream's limit, not the tier's");
        let info: KeyInfo = serde_json::from_str(r#"{"label":"x"}"#).expect("info");
        assert_eq!(info.daily_free_requests(), 50);
    }
}
