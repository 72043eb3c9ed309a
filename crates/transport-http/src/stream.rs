//! The streamed answer: upstream bytes passed on as they arrive, with the gap between
//! chunks bounded and in-band error chunks counted and logged.

use bytes::Bytes;
use futures_util::Stream;
use router_core::sse::{LineSplitter, data_payload, error_in_payload};
use router_core::{ErrorKind, TransportError};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::time::Sleep;

use crate::{Counters, map_reqwest_error};

type Inner = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Wraps upstream's body. Dropping it drops the response and so closes the upstream
/// connection (hyper does not return a half-read connection to the pool).
pub(crate) struct UpstreamStream {
    inner: Inner,
    idle: Duration,
    /// Fires when no chunk came for `idle`; reset on every chunk.
    idle_timer: Pin<Box<Sleep>>,
    lines: LineSplitter,
    counters: Arc<Counters>,
    model: String,
    started: Instant,
    done: bool,
    /// The longest line accepted, and the length of the unfinished one so far.
    max_line: usize,
    line_len: usize,
}

impl UpstreamStream {
    pub(crate) fn new(
        inner: Inner,
        idle: Duration,
        counters: Arc<Counters>,
        model: String,
        started: Instant,
        max_line: usize,
    ) -> Self {
        UpstreamStream {
            inner,
            idle,
            idle_timer: Box::pin(tokio::time::sleep(idle)),
            lines: LineSplitter::default(),
            counters,
            model,
            started,
            done: false,
            max_line,
            line_len: 0,
        }
    }

    /// Ends the stream and lets go of the upstream connection now, not when the caller
    /// gets round to dropping us.
    fn finish(&mut self) {
        self.done = true;
        self.inner = Box::pin(futures_util::stream::empty());
    }

    /// Whether every line in `chunk` (with the unfinished one before it) stays within
    /// the limit; keeps the length of the line left unfinished.
    fn lines_fit(&mut self, chunk: &[u8]) -> bool {
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', chunk) {
            if self.line_len + (nl - start) > self.max_line {
                return false;
            }
            self.line_len = 0;
            start = nl + 1;
        }
        self.line_len += chunk.len() - start;
        self.line_len <= self.max_line
    }

    /// Counts and logs every data event in `chunk` that carries a top-level `error`.
    fn scan(&mut self, chunk: &[u8]) {
        let (counters, model) = (&self.counters, &self.model);
        self.lines.feed(chunk, |line| {
            if let Some(err) = data_payload(line).and_then(error_in_payload) {
                counters.mid_stream_errors.fetch_add(1, Ordering::Relaxed);
                let code = err.get("code").and_then(serde_json::Value::as_u64);
                let message = err.get("message").and_then(serde_json::Value::as_str).unwrap_or("");
                tracing::warn!(model = %model, code, message, "error chunk in upstream stream");
            }
        });
    }
}

impl Stream for UpstreamStream {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let deadline = tokio::time::Instant::now() + this.idle;
                this.idle_timer.as_mut().reset(deadline);
                if !this.lines_fit(&chunk) {
                    this.finish();
                    this.counters.stream_failures.fetch_add(1, Ordering::Relaxed);
                    let message = format!("upstream sent an SSE line longer than the limit of {} bytes", this.max_line);
                    let err = TransportError::new(ErrorKind::Protocol, message).with_elapsed(this.started.elapsed());
                    return Poll::Ready(Some(Err(err)));
                }
                this.scan(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish();
                this.counters.stream_failures.fetch_add(1, Ordering::Relaxed);
                let err = map_reqwest_error(e, "the upstream stream failed").with_elapsed(this.started.elapsed());
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.idle_timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.finish();
                this.counters.stream_failures.fetch_add(1, Ordering::Relaxed);
                let message = format!("no stream data from upstream for {} ms", this.idle.as_millis());
                let err = TransportError::new(ErrorKind::Timeout, message).with_elapsed(this.started.elapsed());
                Poll::Ready(Some(Err(err)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    /// What a stream of `chunks` yields with lines limited to `max` bytes: each chunk's
    /// length, or `Err` with the kind of the failure that ended it.
    async fn run(chunks: &[&'static str], max: usize) -> Vec<Result<usize, ErrorKind>> {
        let owned: Vec<reqwest::Result<Bytes>> = chunks.iter().map(|c| Ok(Bytes::from_static(c.as_bytes()))).collect();
        let inner = futures_util::stream::iter(owned);
        let counters = Arc::new(Counters::default());
        let s =
            UpstreamStream::new(Box::pin(inner), Duration::from_secs(60), counters, "m".into(), Instant::now(), max);
        s.map(|r| r.map(|b| b.len()).map_err(|e| e.kind)).collect().await
    }

    #[tokio::test]
    async fn lines_longer_than_the_limit_end_the_stream_as_a_protocol_failure() {
        // Many short lines in one chunk longer than the limit are fine.
        assert_eq!(run(&["data: 1\n\ndata: 2\n\ndata: 3\n\n"], 10).await, [Ok(27)]);
        // A line split over chunks is measured whole, before and after the split.
        assert_eq!(run(&["data: 12", "34\n", "data: 5678901\n"], 10).await, [Ok(8), Ok(3), Err(ErrorKind::Protocol)]);
        assert_eq!(run(&[": x\ndata: 1234", "5678"], 10).await, [Ok(14), Err(ErrorKind::Protocol)]);
        // Exactly at the limit (without its newline) passes.
        assert_eq!(run(&["data: 1234", "\n"], 10).await, [Ok(10), Ok(1)]);
    }
}
