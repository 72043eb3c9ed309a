//! The accept loop and the HTTP/1.1 connections, with the client-side limits of
//! [`crate::limits`]: a deadline for every request head (and so for idle keep-alive
//! connections), a bounded gap between body bytes, a cap on open connections answered
//! with 503 + `Retry-After`, and `accept` failures for want of descriptors paused on
//! and counted rather than spun on. Cleartext HTTP/2 is not served.

use crate::limits::{
    ACCEPT_ERROR_PAUSE, MAX_REFUSALS_IN_FLIGHT, ServeLimits, ServeStats, TimeoutBody, is_local_exhaustion,
    over_capacity_response,
};
use crate::stall::WriteDeadline;
use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

/// Most bytes read (and thrown away) from a refused connection before closing it, so
/// that the close does not reset the connection under the client's feet.
const REFUSAL_DRAIN_BYTES: usize = 64 * 1024;
/// How long a refused connection is given to read its 503.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// This listener's connections: how many are open, and a wake-up when none is.
#[derive(Debug, Default)]
struct Open {
    count: AtomicUsize,
    idle: Notify,
}

/// Counts one open connection, in this listener's and in the server's totals.
struct ConnGuard {
    local: Arc<Open>,
    stats: Arc<ServeStats>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
        if self.local.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.local.idle.notify_waiters();
        }
    }
}

/// Serves `app` on `listener` with `limits` until `shutdown` completes; then stops
/// accepting, lets the open connections finish their current request, and returns when
/// none is left or `grace` after the signal, whichever is first.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
    limits: ServeLimits,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let open = Arc::new(Open::default());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let limits = Arc::new(limits);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if is_local_exhaustion(&e) => {
                out_of_resources(&e, &limits).await;
                continue;
            }
            // The peer gave up before we got to it, and the like: nothing to do.
            Err(_) => continue,
        };
        // Small SSE chunks must leave at once, not wait for Nagle.
        let _ = stream.set_nodelay(true);
        if limits.stats.open.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
            limits.stats.open.fetch_sub(1, Ordering::AcqRel);
            refuse(stream, limits.stats.clone());
            continue;
        }
        open.count.fetch_add(1, Ordering::AcqRel);
        let guard = ConnGuard { local: open.clone(), stats: limits.stats.clone() };
        // Served on its own task, with the body and write deadlines, until the client goes
        // away or `stop` turns true (then its current request finishes). Written out here:
        // moved into a function of its own, it cost two allocations a request more (the
        // callgrind profile of `router-bench --profile json`, session 8).
        let app = app.clone();
        let body_timeout = limits.body_timeout;
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let req = req.map(|body| {
                if body.is_end_stream() {
                    Body::empty()
                } else {
                    Body::new(TimeoutBody::new(Body::new(body), body_timeout))
                }
            });
            app.clone().oneshot(req)
        });
        let io = WriteDeadline::new(TokioIo::new(stream), limits.write_timeout);
        let conn = http.serve_connection(ShapedParseErrors::new(io), service);
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _guard = guard;
            tokio::pin!(conn);
            tokio::select! {
                // A client going away, a head that came too late: the connection's end.
                _ = conn.as_mut() => return,
                _ = stop.wait_for(|stopped| *stopped) => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
    }
    drop(listener);
    tracing::info!(grace_secs = grace.as_secs_f64(), "shutting down: no new connections, finishing in-flight requests");
    let _ = stop_tx.send(true);
    drain(&open, grace).await;
    Ok(())
}

/// An `accept` that failed for want of descriptors (or memory): counted, warned about
/// at a bounded rate, and paused on rather than spun on.
async fn out_of_resources(e: &std::io::Error, limits: &ServeLimits) {
    limits.stats.accept_resource_errors.fetch_add(1, Ordering::Relaxed);
    if let Some(hidden) = limits.stats.warnings.check() {
        tracing::warn!(
            error = %e,
            more_since_last_warning = hidden,
            "cannot accept a client connection: out of local resources (raise the open-files limit or \
             lower max_connections)"
        );
    }
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}

/// Waits until no connection is open, or `grace`, whichever is first.
async fn drain(open: &Open, grace: Duration) {
    let drained = async {
        loop {
            let idle = open.idle.notified();
            if open.count.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!("shutdown grace period over; dropping the connections still open");
    }
}

/// Answers a connection over the cap with a 503 and closes it, without reading its
/// request; when too many refusals are under way already, closes it at once.
fn refuse(mut stream: TcpStream, stats: Arc<ServeStats>) {
    stats.refused.fetch_add(1, Ordering::Relaxed);
    if stats.refusing.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSALS_IN_FLIGHT {
        stats.refusing.fetch_sub(1, Ordering::AcqRel);
        return; // dropped: closed
    }
    tokio::spawn(async move {
        let answer = async {
            stream.write_all(&over_capacity_response()).await?;
            stream.shutdown().await?;
            // Read what the client sent until it closes, so that our close is clean.
            let mut buf = [0u8; 4096];
            let mut drained = 0;
            while drained < REFUSAL_DRAIN_BYTES {
                match stream.read(&mut buf).await? {
                    0 => break,
                    n => drained += n,
                }
            }
            Ok::<_, std::io::Error>(())
        };
        let _ = tokio::time::timeout(REFUSAL_LINGER, answer).await;
        stats.refusing.fetch_sub(1, Ordering::AcqRel);
    });
}

/// The connection's IO, with hyper's own answers to requests it could not parse (400,
/// 414, 431: a status line and `content-length: 0`, written before any request reached
/// the application) given an OpenRouter-shaped body. The application never answers an
/// error without a body, so nothing else matches.
struct ShapedParseErrors<T> {
    inner: T,
    /// The replacement being written, how much of it is out, and the length of hyper's
    /// buffer it stands for.
    pending: Option<(Bytes, usize, usize)>,
}

impl<T> ShapedParseErrors<T> {
    fn new(inner: T) -> Self {
        ShapedParseErrors { inner, pending: None }
    }
}

/// The answer to write instead of `head`, when `head` is hyper's bare parse-error answer.
fn shaped_parse_error(head: &[u8]) -> Option<Bytes> {
    let (status, reason, message) = if head.starts_with(b"HTTP/1.1 400 ") {
        (400, "Bad Request", "the request is not valid HTTP/1.1")
    } else if head.starts_with(b"HTTP/1.1 414 ") {
        (414, "URI Too Long", "the request target is too long")
    } else if head.starts_with(b"HTTP/1.1 431 ") {
        (431, "Request Header Fields Too Large", "the request head is too large or has too many fields")
    } else {
        return None;
    };
    let empty: &[u8] = b"\r\ncontent-length: 0\r\n";
    if !head.windows(empty.len()).any(|w| w == empty) {
        return None;
    }
    let body = router_core::error::error_body(status, message, "invalid_request").to_string();
    Some(Bytes::from(format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )))
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for ShapedParseErrors<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Write + Unpin> ShapedParseErrors<T> {
    /// Writes the pending replacement out; `Ready(Ok(n))` with the length of the buffer
    /// it replaced once it is all out.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        while let Some((bytes, done, stands_for)) = &mut self.pending {
            if *done == bytes.len() {
                let n = *stands_for;
                self.pending = None;
                return Poll::Ready(Ok(n));
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*done..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *done += n,
                other => return other,
            }
        }
        Poll::Ready(Ok(0))
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for ShapedParseErrors<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.pending.is_none()
            && let Some(shaped) = shaped_parse_error(buf)
        {
            this.pending = Some((shaped, 0, buf.len()));
        }
        if this.pending.is_some() {
            return this.drain(cx);
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.pending.is_none()
            && let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && let Some(shaped) = shaped_parse_error(first)
        {
            this.pending = Some((shaped, 0, bufs.iter().map(|b| b.len()).sum()));
        }
        if this.pending.is_some() {
            return this.drain(cx);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.pending.is_some() {
            match this.drain(cx) {
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::shaped_parse_error;

    #[test]
    fn only_hyper_bare_parse_error_answers_are_shaped() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let shaped = shaped_parse_error(bare).expect("shaped");
        let text = std::str::from_utf8(&shaped).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 431 ") && head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["error"]["code"], 431);
        assert!(shaped_parse_error(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").is_some());
        // The application's own answers carry a body; others are not ours to touch.
        assert!(shaped_parse_error(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 97\r\n\r\n").is_none());
        assert!(shaped_parse_error(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(shaped_parse_error(b"data: {\"x\":1}\n\n").is_none());
    }
}
