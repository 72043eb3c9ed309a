//! Client-side limits: how long a client may take to send a request head or the next
//! bytes of a body, how many connections may be open at once, which framings and sizes
//! are refused before a body is read, and the counters that say when a limit was hit.

use crate::error::{ApiError, BodyTimeout};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::time::Sleep;

pub use router_settings::{
    AUTO_MAX_CONNECTIONS, DEFAULT_CLIENT_BODY_TIMEOUT, DEFAULT_CLIENT_HEADER_TIMEOUT, DEFAULT_CLIENT_WRITE_TIMEOUT,
};
/// Descriptors kept out of the client-connection budget: the listeners, the state and
/// cache files, the runtime's own, and the connections being refused.
pub const DESCRIPTOR_RESERVE: u64 = 256;
/// The cap when the open-files limit is unlimited or unknown.
pub const MAX_CONNECTIONS_WITHOUT_FD_LIMIT: usize = 8_192;
/// `Retry-After` on a connection refused for being over the cap, in seconds.
pub const OVER_CAPACITY_RETRY_AFTER_SECS: u64 = 1;
/// Refused connections answered (503) at once at most; beyond, they are closed unanswered.
pub const MAX_REFUSALS_IN_FLIGHT: usize = 64;
/// How long the server waits before accepting again after running out of descriptors.
pub const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// At most one warning per this period for local resource exhaustion; the rest are counted.
pub const RESOURCE_WARNING_EVERY: Duration = Duration::from_secs(10);

/// The serving limits of one server (all its shards share one [`ServeStats`]).
#[derive(Clone, Debug)]
pub struct ServeLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// The longest a response waits on a client that does not read (see [`crate::stall`]).
    pub write_timeout: Duration,
    /// Client connections open at once; more are answered 503 with `Retry-After`.
    pub max_connections: usize,
    pub stats: Arc<ServeStats>,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_timeout: DEFAULT_CLIENT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_CLIENT_BODY_TIMEOUT,
            write_timeout: DEFAULT_CLIENT_WRITE_TIMEOUT,
            max_connections: auto_max_connections(),
            stats: Arc::default(),
        }
    }
}

impl ServeLimits {
    /// The limits a configuration asks for; `stats` is shared by every shard.
    pub fn from_config(config: &crate::Config, stats: Arc<ServeStats>) -> Self {
        ServeLimits {
            header_timeout: config.client_header_timeout_secs.get(),
            body_timeout: config.client_body_timeout_secs.get(),
            write_timeout: config.client_write_timeout_secs.get(),
            max_connections: match config.max_connections {
                AUTO_MAX_CONNECTIONS => auto_max_connections(),
                n => n,
            },
            stats,
        }
    }
}

/// Half of what the open-files limit leaves after [`DESCRIPTOR_RESERVE`]: each proxied
/// request holds a client and an upstream socket.
pub fn auto_max_connections() -> usize {
    connections_for(soft_fd_limit())
}

fn connections_for(soft: Option<u64>) -> usize {
    match soft {
        Some(n) => usize::try_from(n.saturating_sub(DESCRIPTOR_RESERVE) / 2).unwrap_or(usize::MAX).max(16),
        None => MAX_CONNECTIONS_WITHOUT_FD_LIMIT,
    }
}

#[cfg(unix)]
fn soft_fd_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(unix))]
fn soft_fd_limit() -> Option<u64> {
    None
}

/// What the serving loop counts, rendered in `/metrics` (by `crate::prom`).
#[derive(Debug, Default)]
pub struct ServeStats {
    /// Client connections open now (over all shards).
    pub open: AtomicUsize,
    /// Connections refused for being over the cap.
    pub refused: AtomicU64,
    /// Refusals being answered now.
    pub(crate) refusing: AtomicUsize,
    /// `accept` failures for want of local resources (descriptors, memory).
    pub accept_resource_errors: AtomicU64,
    pub(crate) warnings: RateLimitedWarning,
}

/// A warning logged at most once per [`RESOURCE_WARNING_EVERY`], with the number of
/// occurrences it stands for.
#[derive(Debug, Default)]
pub(crate) struct RateLimitedWarning {
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl RateLimitedWarning {
    /// Whether to log now, and how many occurrences were not logged since the last time.
    pub(crate) fn check(&self) -> Option<u64> {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|t| now.duration_since(t) < RESOURCE_WARNING_EVERY) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

/// Whether an IO error means this process ran out of something (descriptors, memory,
/// buffers), rather than anything the peer did.
pub fn is_local_exhaustion(e: &std::io::Error) -> bool {
    router_settings::adapters::is_local_exhaustion(e)
}

/// The raw 503 answered to a connection over the cap, before reading anything from it.
pub(crate) fn over_capacity_response() -> Bytes {
    let body =
        router_core::error::error_body(503, "the router has too many open connections; retry shortly", "over_capacity")
            .to_string();
    Bytes::from(format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: \
         {OVER_CAPACITY_RETRY_AFTER_SECS}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ))
}

/// Refuses, before the body is read, what the router would refuse after reading it: a
/// declared `Content-Length` over the body limit (413, so that a client sending
/// `Expect: 100-continue` never gets `100 Continue`), and any `Transfer-Encoding` other
/// than plain `chunked` (501).
pub async fn guard(State(max_body_size): State<usize>, req: Request, next: Next) -> Response {
    match refusal(max_body_size, req.headers(), req.uri().path()) {
        Some(refused) => refused,
        None => next.run(req).await,
    }
}

/// What [`guard`] answers without reading the body, if anything: an unsupported
/// `transfer-encoding` or a declared length over `max_body_size`. The server calls it
/// from its `observe` middleware, which saves a middleware layer (a boxed future and a
/// service clone) per request.
pub(crate) fn refusal(max_body_size: usize, headers: &axum::http::HeaderMap, path: &str) -> Option<Response> {
    let anthropic = crate::anthropic_errors::is_messages_path(path);
    if let Some(te) = headers.get(header::TRANSFER_ENCODING)
        && !te.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked")
    {
        let got = String::from_utf8_lossy(te.as_bytes()).into_owned();
        return Some(closing(
            ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                &format!("transfer-encoding `{got}` is not supported: send `chunked` or a content-length"),
                "unsupported_transfer_encoding",
            ),
            anthropic,
        ));
    }
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > u64::try_from(max_body_size).unwrap_or(u64::MAX)) {
        return Some(closing(ApiError::payload_too_large(max_body_size), anthropic));
    }
    None
}

/// The error with `connection: close`: the body that follows the head will not be read.
/// On a Messages path, in Anthropic's shape.
fn closing(e: ApiError, anthropic: bool) -> Response {
    let mut resp = if anthropic { crate::anthropic_errors::anthropic_error(e) } else { e.into_response() };
    resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// A request body that fails with [`BodyTimeout`] when the gap between two frames is
/// longer than `gap`.
#[derive(Debug)]
pub struct TimeoutBody {
    inner: Body,
    gap: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl TimeoutBody {
    pub fn new(inner: Body, gap: Duration) -> Self {
        TimeoutBody { inner, gap, timer: None, armed: false }
    }
}

impl hyper::body::Body for TimeoutBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.armed = false;
                Poll::Ready(frame)
            }
            Poll::Pending => {
                let deadline = tokio::time::Instant::now() + this.gap;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if !this.armed {
                    timer.as_mut().reset(deadline);
                    this.armed = true;
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimeout(this.gap))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_leaves_room_for_upstream_sockets() {
        assert_eq!(connections_for(Some(20_000)), (20_000 - 256) / 2);
        assert_eq!(connections_for(Some(1_024)), 384);
        assert_eq!(connections_for(Some(10)), 16, "never zero");
        assert_eq!(connections_for(None), MAX_CONNECTIONS_WITHOUT_FD_LIMIT);
    }

    #[test]
    fn warnings_are_rate_limited_and_count_what_they_hide() {
        let w = RateLimitedWarning::default();
        assert_eq!(w.check(), Some(0));
        assert_eq!(w.check(), None);
        assert_eq!(w.check(), None);
        *w.last.lock().expect("lock") = Some(Instant::now() - RESOURCE_WARNING_EVERY);
        assert_eq!(w.check(), Some(2));
    }

    #[test]
    fn the_over_capacity_answer_is_well_formed() {
        let raw = over_capacity_response();
        let text = std::str::from_utf8(&raw).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(head.contains("retry-after: 1\r\n"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["error"]["code"], 503);
    }
}
