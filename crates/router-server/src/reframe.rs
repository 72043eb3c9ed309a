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
/// the writer's keep-alive after `keepalive` of silence. After the last event the
/// upstream stream is dropped.
pub(crate) fn reframe<W: Reframe + Unpin>(
    stream: ByteStream,
    writer: W,
    keepalive: Duration,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    let last = Instant::now();
    let quiet = Box::pin(tokio::time::sleep_until(last + keepalive));
    Reframed { stream: Some(stream), writer, keepalive, quiet, last, waker: None }
}

/// [`reframe`]'s stream, written out: an `unfold` moved the upstream and the writer in
/// and out of its state for every chunk, and a `timeout` made a timer for each one.
/// Here one timer serves the stream, and a chunk only notes when it came: the timer is
/// moved to the silence's real end when it fires early, which is rarer than chunks.
struct Reframed<W> {
    /// The upstream, until the last event is written.
    stream: Option<ByteStream>,
    writer: W,
    keepalive: Duration,
    /// Fires at the end of the silence, or earlier (then it is moved on).
    quiet: Pin<Box<Sleep>>,
    /// When the last chunk came or the last keep-alive went out.
    last: Instant,
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
            this.last = Instant::now();
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
    /// Ready when `keepalive` has passed since the last chunk or keep-alive (and then
    /// counts the keep-alive as sent).
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
            let end = self.last + self.keepalive;
            if self.quiet.deadline() < end {
                // Chunks came since it was set: the silence ends later.
                self.quiet.as_mut().reset(end);
                continue;
            }
            self.last = Instant::now();
            self.quiet.as_mut().reset(self.last + self.keepalive);
            return Poll::Ready(());
        }
    }
}
