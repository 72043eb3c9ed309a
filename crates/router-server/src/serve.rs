//! The accept loop and the HTTP/1.1 connections, with the client-side limits of
//! [`crate::limits`]: a deadline for every request head (and so for idle keep-alive
//! connections), a bounded gap between body bytes, a cap on open connections answered
//! with 503 + `Retry-After`, and `accept` failures for want of descriptors paused on
//! and counted rather than spun on. Cleartext HTTP/2 is not served.

use crate::limits::{
    ACCEPT_ERROR_PAUSE, MAX_REFUSALS_IN_FLIGHT, ServeLimits, ServeStats, TimeoutBody, is_local_exhaustion,
    over_capacity_response,
};
use axum::body::Body;
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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
        let conn = http.serve_connection(TokioIo::new(stream), service);
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
    Ok(())
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
