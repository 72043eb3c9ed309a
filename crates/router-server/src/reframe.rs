//! Re-framing an upstream's chat stream as another dialect's events (Anthropic's
//! Messages, OpenAI's Responses), chunk by chunk, with a keep-alive after a silence: the
//! one loop both surfaces use, each through its writer.

use bytes::Bytes;
use futures_util::Stream;
use router_core::{ByteStream, TransportError};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// A dialect's writer of events from chat chunks.
pub(crate) trait Reframe: Send + 'static {
    /// What goes out after a silence (a `ping` event, an SSE comment).
    fn keepalive(&self) -> &'static [u8];
    /// The events an upstream chunk (any split of the SSE bytes) becomes.
    fn push(&mut self, chunk: &[u8]) -> Vec<u8>;
    /// The events a transport failure after the start becomes (the stream's end).
    fn fail(&mut self, error: &TransportError) -> Vec<u8>;
    /// The events that end the stream when the upstream's has ended.
    fn finish(&mut self) -> Vec<u8>;
    /// Whether the last event was written.
    fn is_ended(&self) -> bool;
}

/// The upstream's chunks through `writer`, one output per input that yields events, with
/// the writer's keep-alive in every silence, at most `keepalive` (and at least half of
/// it) after the last chunk, then every half of it. After the last event the upstream
/// stream is dropped.
pub(crate) fn reframe<W: Reframe + Unpin>(
    stream: ByteStream,
    writer: W,
    keepalive: Duration,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    let period = keepalive / 2;
    let quiet = Box::pin(tokio::time::sleep(period));
    Reframed { stream: Some(stream), writer, period, quiet, heard: false, waker: None }
}

/// [`reframe`]'s stream, written out: an `unfold` moved the upstream and the writer in
/// and out of its state for every chunk, and a `timeout` made a timer for each one.
/// Here one timer ticks every half keep-alive, and a chunk only notes that it came (no
/// clock read, no timer moved per chunk): a tick with no chunk since the last one sends
/// the keep-alive, so a silence gets one after half to all of `keepalive`.
struct Reframed<W> {
    /// The upstream, until the last event is written.
    stream: Option<ByteStream>,
    writer: W,
    /// Half the keep-alive: the ticks' period.
    period: Duration,
    /// The next tick.
    quiet: Pin<Box<Sleep>>,
    /// A chunk came since the last tick.
    heard: bool,
    /// The task `quiet` last registered, so that it is polled again only for another
    /// task or once it has fired.
    waker: Option<Waker>,
}

impl<W: Reframe + Unpin> Stream for Reframed<W> {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let Some(stream) = this.stream.as_mut() else { return Poll::Ready(None) };
            let out = match stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => this.writer.push(&bytes),
                Poll::Ready(Some(Err(e))) => this.writer.fail(&e),
                Poll::Ready(None) => this.writer.finish(),
                Poll::Pending => {
                    ready!(this.poll_quiet(cx));
                    return Poll::Ready(Some(Ok(Bytes::from_static(this.writer.keepalive()))));
                }
            };
            this.heard = true;
            if this.writer.is_ended() {
                this.stream = None;
                return Poll::Ready(Some(Ok(Bytes::from(out))));
            }
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(Bytes::from(out))));
            }
        }
    }
}

impl<W> Reframed<W> {
    /// Ready at a tick with no chunk since the one before (the keep-alive is due); each
    /// tick sets the next.
    fn poll_quiet(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let registered = self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
            if registered && !self.quiet.is_elapsed() {
                return Poll::Pending;
            }
            if self.quiet.as_mut().poll(cx).is_pending() {
                self.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            self.waker = None;
            self.quiet.as_mut().reset(Instant::now() + self.period);
            if !std::mem::take(&mut self.heard) {
                return Poll::Ready(());
            }
        }
    }
}
