//! Re-framing an upstream's chat stream as another dialect's events (Anthropic's
//! Messages, OpenAI's Responses), chunk by chunk, with a keep-alive after a silence: the
//! one loop both surfaces use, each through its writer.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use router_core::{ByteStream, TransportError};
use std::convert::Infallible;
use std::time::Duration;

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
pub(crate) fn reframe<W: Reframe>(
    stream: ByteStream,
    writer: W,
    keepalive: Duration,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    futures_util::stream::unfold(Some((stream, writer)), move |state| async move {
        let (mut stream, mut writer) = state?;
        loop {
            let out = match tokio::time::timeout(keepalive, stream.next()).await {
                Err(_) => {
                    let beat = Bytes::from_static(writer.keepalive());
                    return Some((Ok(beat), Some((stream, writer))));
                }
                Ok(Some(Ok(bytes))) => writer.push(&bytes),
                Ok(Some(Err(e))) => writer.fail(&e),
                Ok(None) => writer.finish(),
            };
            if writer.is_ended() {
                return Some((Ok(Bytes::from(out)), None));
            }
            if !out.is_empty() {
                return Some((Ok(Bytes::from(out)), Some((stream, writer))));
            }
        }
    })
}
