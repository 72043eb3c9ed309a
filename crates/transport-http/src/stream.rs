//! The streamed answer: upstream bytes passed on as they arrive, with the gap between
//! chunks bounded. Nothing here looks inside the bytes: the core scans each chunk once
//! (its lines, error events, `model`, the line limit).

use bytes::Bytes;
use futures_util::Stream;
use router_core::{ErrorKind, TransportError};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::time::Sleep;

use crate::failure::map_reqwest_error;
use crate::lanes::Lanes;

type Inner = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Wraps upstream's body. Dropping it drops the response and so closes the upstream
/// connection (hyper does not return a half-read connection to the pool).
pub(crate) struct UpstreamStream {
    inner: Inner,
    idle: Duration,
    /// Armed for `idle` after the last chunk, lazily: a chunk only notes its time, and
    /// the timer, when it fires, moves itself to `last_chunk + idle` if a chunk came
    /// since. Resetting it on every chunk cost a timer-wheel update per chunk and, at
    /// one connection, a wake-up of the runtime's driver (an eventfd write) per stream.
    idle_timer: Pin<Box<Sleep>>,
    last_chunk: tokio::time::Instant,
    lanes: Arc<Lanes>,
    started: Instant,
    done: bool,
    /// The lane place this stream holds until it ends or is dropped.
    lane: Option<usize>,
}

impl UpstreamStream {
    pub(crate) fn new(inner: Inner, idle: Duration, lanes: Arc<Lanes>, started: Instant, lane: usize) -> Self {
        let now = tokio::time::Instant::now();
        UpstreamStream {
            inner,
            idle,
            idle_timer: Box::pin(tokio::time::sleep_until(now + idle)),
            last_chunk: now,
            lanes,
            started,
            done: false,
            lane: Some(lane),
        }
    }

    /// Frees the stream's lane place (once).
    fn release_lane(&mut self) {
        if let Some(lane) = self.lane.take() {
            self.lanes.release(lane);
        }
    }

    /// Ends the stream and lets go of the upstream connection now, not when the caller
    /// gets round to dropping us.
    fn finish(&mut self) {
        self.done = true;
        self.inner = Box::pin(futures_util::stream::empty());
        self.release_lane();
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
                this.last_chunk = tokio::time::Instant::now();
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish();
                let err = map_reqwest_error(e, "the upstream stream failed").with_elapsed(this.started.elapsed());
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                this.done = true;
                this.release_lane();
                Poll::Ready(None)
            }
            Poll::Pending => {
                loop {
                    if this.idle_timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    let due = this.last_chunk + this.idle;
                    if due <= tokio::time::Instant::now() {
                        break;
                    }
                    // A chunk came since the timer was armed: it runs from that chunk.
                    this.idle_timer.as_mut().reset(due);
                }
                this.finish();
                let message = format!("no stream data from upstream for {} ms", this.idle.as_millis());
                let err = TransportError::new(ErrorKind::Timeout, message).with_elapsed(this.started.elapsed());
                Poll::Ready(Some(Err(err)))
            }
        }
    }
}

impl Drop for UpstreamStream {
    fn drop(&mut self) {
        self.release_lane();
    }
}
