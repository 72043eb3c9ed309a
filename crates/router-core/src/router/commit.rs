//! Making an answer the client's: an error inside a 200 falls back like any failure, a
//! stream is held until its first event, and `model` names the model that answered.

use crate::model::ModelId;
use crate::sse::{self, LineSplitter, ModelRewriter};
use crate::upstream::{Body, ByteStream, ErrorKind, TransportError, UpstreamResponse};
use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

/// Makes a successful answer the client's: names the chosen model in it and, for a
/// stream, waits for the first event so that an error before any content can still
/// fall back to another model.
pub(super) async fn commit(
    resp: UpstreamResponse,
    model: &ModelId,
    stream_errors: &Arc<AtomicU64>,
) -> Result<UpstreamResponse, TransportError> {
    let UpstreamResponse { status, headers, body, elapsed } = resp;
    let body = match body {
        Body::Full(bytes) => {
            // A 200 whose body is an error object (a provider failing after the head
            // was sent) is a failure like any other, and may fall back.
            if let Some(err) = sse::error_in_payload(&bytes) {
                return Err(in_band_error(&err).with_elapsed(elapsed));
            }
            Body::Full(sse::ensure_model(bytes, model.as_str()))
        }
        Body::Stream(mut stream) => {
            let mut head = VecDeque::new();
            let mut lines = LineSplitter::default();
            loop {
                match stream.next().await {
                    None => break,
                    Some(Err(e)) => return Err(e.with_elapsed(elapsed)),
                    Some(Ok(chunk)) => {
                        let mut verdict: Option<Result<(), TransportError>> = None;
                        lines.feed(&chunk, |line| {
                            if verdict.is_some() {
                                return;
                            }
                            if let Some(payload) = sse::data_payload(line) {
                                verdict = Some(match sse::error_in_payload(payload) {
                                    Some(err) => Err(in_band_error(&err).with_elapsed(elapsed)),
                                    None => Ok(()),
                                });
                            }
                        });
                        head.push_back(chunk);
                        match verdict {
                            Some(Err(e)) => return Err(e),
                            Some(Ok(())) => break,
                            None => {}
                        }
                    }
                }
            }
            Body::Stream(Box::pin(RoutedStream {
                head,
                inner: stream,
                rewriter: ModelRewriter::new(model.as_str()),
                model: model.clone(),
                done: false,
                errors: stream_errors.clone(),
            }))
        }
    };
    Ok(UpstreamResponse { status, headers, body, elapsed })
}

/// An `error` object found in a stream before any content: classified by its code.
fn in_band_error(err: &serde_json::Value) -> TransportError {
    let code = err.get("code").and_then(serde_json::Value::as_u64).and_then(|c| u16::try_from(c).ok());
    let message = err.get("message").and_then(serde_json::Value::as_str).unwrap_or("error in stream");
    let kind = match code {
        Some(429) => ErrorKind::RateLimitedModel,
        Some(404) => ErrorKind::ModelUnavailable,
        Some(408) => ErrorKind::Timeout,
        Some(c) if c >= 500 => ErrorKind::ServerError,
        _ => ErrorKind::Protocol,
    };
    let mut e = TransportError::new(kind, message);
    e.status = code;
    e.metadata = err.get("metadata").cloned();
    e
}

/// A committed stream: replays the chunks read while deciding, then the rest, with
/// `model` rewritten; an upstream failure becomes an in-band error chunk.
struct RoutedStream {
    head: VecDeque<Bytes>,
    inner: ByteStream,
    rewriter: ModelRewriter,
    model: ModelId,
    done: bool,
    errors: Arc<AtomicU64>,
}

impl RoutedStream {
    fn rewrite(&mut self, chunk: &[u8]) -> Bytes {
        let before = self.rewriter.error_events();
        let out = self.rewriter.feed(chunk);
        let found = self.rewriter.error_events() - before;
        if found > 0 {
            self.errors.fetch_add(found, Ordering::Relaxed);
        }
        out
    }
}

impl Stream for RoutedStream {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(chunk) = this.head.pop_front() {
                let out = this.rewrite(&chunk);
                if out.is_empty() {
                    continue;
                }
                return Poll::Ready(Some(Ok(out)));
            }
            match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    let out = this.rewrite(&chunk);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(out)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    this.errors.fetch_add(1, Ordering::Relaxed);
                    let mut out = this.rewriter.finish().to_vec();
                    if !out.is_empty() && !out.ends_with(b"\n") {
                        out.extend_from_slice(b"\n\n");
                    }
                    out.extend_from_slice(&sse::error_chunk(this.model.as_str(), e.http_status(), &e.message));
                    return Poll::Ready(Some(Ok(Bytes::from(out))));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    let rest = this.rewriter.finish();
                    return Poll::Ready((!rest.is_empty()).then_some(Ok(rest)));
                }
            }
        }
    }
}
