//! The HTTP chat transport: forwards chat completions to OpenRouter (or anything that
//! speaks its API) over pooled reqwest clients (lanes: another HTTP/2 connection once
//! one is at its stream budget), streams answers without buffering, bounds each wait
//! with its own timeout, and classifies failures for the core.

mod local;

mod failure;

mod answer;
mod classify;
mod key;
mod lanes;
mod roots;
mod stream;

pub use classify::classify;
pub use key::{FreeModelDailyRequests, KeyInfo};
pub use lanes::{DEFAULT_STREAMS_PER_CONNECTION, MAX_LANES};
pub use local::{
    LOCAL_RESOURCE_RETRY_AFTER, LOCAL_RESOURCE_WARNING_EVERY, is_local_exhaustion, local_resource_failures,
};
pub use roots::{Certificate, read_ca_file};
pub use router_core::Dialect;
pub use router_core::dialect::openai::{LOCAL_BUSY_BACKOFF, parse_go_duration};

use answer::{Content, protocol, read_body, timeout_error};
use failure::{error_chain, map_reqwest_error, scrub_value};

use bytes::Bytes;
use reqwest::header::{ACCEPT_ENCODING, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use router_core::{
    Body, ChatTransport, Endpoint, ErrorKind, ModelId, Secret, Timestamp, TransportError, UpstreamResponse,
};
use serde::Deserialize;
use std::fmt;
use std::sync::Arc;
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
    /// Streams in flight on one HTTP/2 connection before the next opens (see `lanes`);
    /// at most the upstream's `SETTINGS_MAX_CONCURRENT_STREAMS`.
    pub streams_per_connection: usize,
    /// Certificates trusted beside the system's (a local server's own CA).
    pub extra_roots: Vec<reqwest::Certificate>,
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
            dialect: Dialect::default(),
            streams_per_connection: DEFAULT_STREAMS_PER_CONNECTION,
            extra_roots: Vec::new(),
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
            .field("streams_per_connection", &self.streams_per_connection)
            .field("extra_roots", &self.extra_roots.len())
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
    #[error("cannot use {path} as extra CA certificates: {why}")]
    ExtraCa { path: String, why: String },
}

/// Headers from upstream's answer worth passing on to the client. Prebuilt names: a
/// lookup by `&str` would parse the name again on every request.
static PASSED_HEADERS: [HeaderName; 9] = [
    CONTENT_TYPE,
    HeaderName::from_static("x-ratelimit-limit"),
    HeaderName::from_static("x-ratelimit-remaining"),
    HeaderName::from_static("x-ratelimit-reset"),
    HeaderName::from_static("x-generation-id"),
    // Groq's (and other OpenAI-compatible free tiers'): what is left of the model's
    // request limit, and when it resets.
    HeaderName::from_static("x-ratelimit-remaining-requests"),
    HeaderName::from_static("x-ratelimit-reset-requests"),
    // The same for tokens: the router's token budget takes the provider's own count.
    HeaderName::from_static("x-ratelimit-limit-tokens"),
    HeaderName::from_static("x-ratelimit-remaining-tokens"),
];

/// The answer's headers worth passing on, each once (its first value): one walk over
/// the answer's few headers, comparing names, costs less than hashing every name of
/// [`PASSED_HEADERS`] for a lookup.
fn passed_headers(answer: &reqwest::header::HeaderMap) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for (name, value) in answer {
        let Some(known) = PASSED_HEADERS.iter().find(|k| *k == name) else { continue };
        let Ok(value) = value.to_str() else { continue };
        if !out.iter().any(|(n, _)| *n == known.as_str()) {
            out.push((known.as_str(), value.to_owned()));
        }
    }
    out
}

/// Forwards chat requests over pooled clients (lanes). Cheap to share behind an `Arc`.
pub struct HttpTransport {
    /// Parsed once: handing reqwest a string would parse it again (IDNA and all) on
    /// every request, which showed in the profile.
    chat_url: reqwest::Url,
    /// `{base}/embeddings`, for [`Endpoint::Embeddings`].
    embeddings_url: reqwest::Url,
    key_url: reqwest::Url,
    /// The key's text, kept only to scrub it from anything upstream echoes back.
    key: Option<Secret>,
    config: TransportConfig,
    /// Shared with every stream handed over: a stream frees its lane place when it ends.
    lanes: Arc<lanes::Lanes>,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport").field("config", &self.config).field("lanes", &self.lanes.open()).finish()
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
        // Uncompressed is asked for (nothing to decode on loopback and local networks);
        // an answer compressed anyway with gzip, br, deflate or zstd is decoded by reqwest,
        // within the same size bound, and any other encoding is refused (see `forward`).
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
        let (connect_timeout, roots) = (config.connect_timeout, config.extra_roots.clone());
        let https = base.starts_with("https://");
        // The lanes of an upstream trusted through the system's roots share one TLS
        // configuration; with extra roots reqwest builds each (it cannot give their DER back).
        let shared_tls = if https && roots.is_empty() { Some(roots::shared_client_tls()?) } else { None };
        let make = move || {
            let builder = reqwest::Client::builder()
                .default_headers(headers.clone())
                .connect_timeout(connect_timeout)
                .tcp_nodelay(true)
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_max_idle_per_host(MAX_IDLE_UPSTREAM_CONNECTIONS)
                .tcp_keepalive(Duration::from_secs(30))
                .redirect(reqwest::redirect::Policy::none());
            match &shared_tls {
                Some(tls) => builder.tls_backend_preconfigured(tls.clone()),
                None => builder.tls_certs_merge(roots.iter().cloned()),
            }
            .build()
        };
        let client = make().map_err(|e| TransportInitError::Client(error_chain(&e)))?;
        let lanes = lanes::Lanes::new(client, Box::new(make), config.streams_per_connection, https);
        let url = |path: &str| {
            reqwest::Url::parse(&format!("{base}/{path}"))
                .map_err(|_| TransportInitError::InvalidBaseUrl(config.base_url.clone()))
        };
        Ok(HttpTransport {
            chat_url: url(Endpoint::Chat.path())?,
            embeddings_url: url(Endpoint::Embeddings.path())?,
            key_url: url("key")?,
            key,
            config,
            lanes: Arc::new(lanes),
        })
    }

    pub fn config(&self) -> &TransportConfig {
        &self.config
    }

    /// Lanes (clients, so HTTP/2 connections) opened to the upstream so far.
    pub fn lanes(&self) -> usize {
        self.lanes.open()
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
            let resp = tokio::time::timeout_at(deadline, self.lanes.first().get(self.key_url.clone()).send())
                .await
                .map_err(|_| timeout_error("no answer from upstream's key endpoint", self.config.request_timeout))?
                .map_err(|e| map_reqwest_error(e, "the key request failed"))?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = read_body(resp, deadline, self.config.request_timeout, self.config.max_answer_size).await?;
            if !(200..300).contains(&status) {
                return Err(classify(self.config.dialect, status, &headers, &body, now()));
            }
            serde_json::from_slice::<Envelope>(&body)
                .map(|e| e.data)
                .map_err(|e| TransportError::new(ErrorKind::Protocol, format!("unreadable key info: {e}")))
        }
        .await;
        result.map_err(|e| self.scrub(e).with_elapsed(started.elapsed()))
    }

    /// Removes the key from anything upstream may have echoed into an error.
    /// The key, any `Bearer` credential, key-shaped words and URL passwords out of what
    /// the client and the logs will see: an upstream or a proxy may echo what it was sent.
    fn scrub(&self, mut err: TransportError) -> TransportError {
        let keys: Vec<&Secret> = self.key.iter().collect();
        err.message = router_core::scrub(&err.message, &keys);
        if let Some(m) = err.metadata.as_mut() {
            scrub_value(m, &keys);
        }
        err
    }

    async fn forward(&self, url: &reqwest::Url, body: Bytes, stream: bool) -> Result<UpstreamResponse, TransportError> {
        let started = Instant::now();
        // A non-streamed answer must arrive whole within `request_timeout`; the head of
        // either within `first_byte_timeout`.
        let deadline = tokio::time::Instant::now() + self.config.request_timeout;
        let first_byte = if stream {
            self.config.first_byte_timeout
        } else {
            self.config.first_byte_timeout.min(self.config.request_timeout)
        };
        // Held until the answer is read, or by the stream until it ends.
        let ticket = self.lanes.acquire();
        let request = ticket
            .client
            .post(url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body)
            .send();
        let resp = tokio::time::timeout(first_byte, request)
            .await
            .map_err(|_| timeout_error("no response from upstream", first_byte))?
            .map_err(|e| map_reqwest_error(e, "the upstream request failed"))?;
        let elapsed = started.elapsed();
        if resp.version() == reqwest::Version::HTTP_11 {
            self.lanes.saw_http1();
        }
        let status = resp.status().as_u16();
        let headers = passed_headers(resp.headers());

        if !resp.status().is_success() {
            let head = resp.headers().clone();
            // An error body too large to keep is classified by its status alone.
            let body = match read_body(resp, deadline, self.config.request_timeout, self.config.max_answer_size).await {
                Err(e) if e.kind == ErrorKind::Protocol => Bytes::new(),
                other => other?,
            };
            return Err(classify(self.config.dialect, status, &head, &body, now()));
        }
        let content = Content::of(resp.headers());
        if let Some(encoding) = content.encoding {
            return Err(protocol(
                status,
                format!(
                    "upstream answered {status} with content-encoding `{encoding}`, which the router cannot decode"
                ),
            ));
        }
        if stream && content.is_sse {
            let inner = Box::pin(resp.bytes_stream());
            let lane = ticket.into_lane();
            let s = stream::UpstreamStream::new(inner, self.config.idle_timeout, self.lanes.clone(), started, lane);
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
    async fn send(&self, model: &ModelId, body: Bytes, stream: bool) -> Result<UpstreamResponse, TransportError> {
        self.send_to(Endpoint::Chat, model, body, stream).await
    }

    async fn send_to(
        &self,
        endpoint: Endpoint,
        _model: &ModelId,
        body: Bytes,
        stream: bool,
    ) -> Result<UpstreamResponse, TransportError> {
        let started = Instant::now();
        let url = match endpoint {
            Endpoint::Chat => &self.chat_url,
            Endpoint::Embeddings => &self.embeddings_url,
        };
        self.forward(url, body, stream).await.map_err(|e| self.scrub(e).with_elapsed(started.elapsed()))
    }
}

fn now() -> Timestamp {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Timestamp::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(config: TransportConfig, expected: Result<(), TransportInitError>) {
        assert_eq!(HttpTransport::new(config).map(|_| ()), expected);
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
    fn the_passed_headers_are_found_by_one_walk_each_once() {
        let mut answer = reqwest::header::HeaderMap::new();
        answer.insert("server", "fake".parse().expect("value"));
        answer.append("x-ratelimit-remaining-requests", "0".parse().expect("value"));
        answer.append("x-ratelimit-remaining-requests", "9".parse().expect("value"));
        answer.insert("x-ratelimit-reset-requests", "7m12s".parse().expect("value"));
        answer.insert(CONTENT_TYPE, "application/json".parse().expect("value"));
        let mut got = passed_headers(&answer);
        got.sort();
        let expected = [
            ("content-type", "application/json"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "7m12s"),
        ];
        assert_eq!(got, expected.map(|(n, v)| (n, v.to_owned())), "the first value of each, nothing else");
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
        err.metadata = Some(serde_json::json!({"raw": ["key sk-echo rejected", "Authorization: Bearer other"]}));
        let err = t.scrub(err);
        assert_eq!(err.message, "bad key ***");
        let raw = serde_json::json!({"raw": ["key *** rejected", "Authorization: Bearer ***"]});
        assert_eq!(err.metadata, Some(raw));
    }
}
