//! Re-framing an upstream's chat stream as another dialect's events (Anthropic's
//! Messages, OpenAI's Responses), chunk by chunk, with a keep-alive after a silence: the
//! one loop both surfaces use, each through its writer.

use bytes::Bytes;
use futures_util::Stream;
use router_core::{ByteStream, TransportError};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
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
    let quiet = Box::pin(tokio::time::sleep(keepalive));
    Reframed { stream: Some(stream), writer, keepalive, quiet, armed: true }
}

/// [`reframe`]'s stream, written out: an `unfold` moved the upstream and the writer in
/// and out of its state for every chunk, and a `timeout` made a timer for each one.
struct Reframed<W> {
    /// The upstream, until the last event is written.
    stream: Option<ByteStream>,
    writer: W,
    keepalive: Duration,
    /// The silence timer: one for the stream, set again when a silence begins.
    quiet: Pin<Box<Sleep>>,
    /// Whether `quiet` counts the current silence (it is set at the first wait after a chunk).
    armed: bool,
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
                    if !this.armed {
                        this.armed = true;
                        this.quiet.as_mut().reset(Instant::now() + this.keepalive);
                    }
                    ready!(this.quiet.as_mut().poll(cx));
                    // The keep-alive ends this silence; the next wait begins another.
                    this.armed = false;
                    return Poll::Ready(Some(Ok(Bytes::from_static(this.writer.keepalive()))));
                }
            };
            this.armed = false;
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
