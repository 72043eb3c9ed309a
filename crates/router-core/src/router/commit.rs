//! Making an answer the client's: an error inside a 200 falls back like any failure, so
//! does an empty answer; a stream is held until it says something, and `model` names
//! the model that answered.

use crate::classify::classify_in_band;
use crate::model::ModelId;
use crate::sse::{self, LineSplitter, ModelRewriter, Substance};
use crate::time::Timestamp;
use crate::upstream::{Body, ByteStream, ErrorKind, TransportError, UpstreamResponse};
use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

/// The most of a stream's head held back while waiting for its first content: beyond
/// it the stream is committed as it is (a long run of reasoning the request did not ask
/// for is not worth more memory).
pub const MAX_HELD_HEAD: usize = 256 * 1024;
/// A line begun is held whole up to this length before the stream is committed anyway:
/// an unterminated line is judged (the transport fails one over its own, smaller line
/// limit, and the attempt can still fall back) rather than committed half-read.
pub const MAX_HELD_LINE: usize = 16 * 1024 * 1024;

/// How an answer is judged before it becomes the client's.
#[derive(Clone, Copy, Debug)]
pub(super) struct Judge {
    /// Dates rate-limit resets in error objects.
    pub(super) now: Timestamp,
    /// An empty answer is a failure (see [`RouterConfig::empty_answers_fail`](super::RouterConfig)).
    pub(super) empty_fails: bool,
    /// The request asked for reasoning: reasoning alone is an answer.
    pub(super) reasoning_counts: bool,
}

fn empty_answer(elapsed: std::time::Duration) -> TransportError {
    TransportError::new(ErrorKind::EmptyAnswer, "the model returned an empty answer (no content and no tool calls)")
        .with_elapsed(elapsed)
}

/// Makes a successful answer the client's: names the chosen model in it and, for a
/// stream, waits for the first content so that an error or an empty answer before any
/// content can still fall back to another model.
pub(super) async fn commit(
    resp: UpstreamResponse,
    model: &ModelId,
    stream_errors: &Arc<AtomicU64>,
    judge: Judge,
) -> Result<UpstreamResponse, TransportError> {
    let UpstreamResponse { status, headers, body, elapsed } = resp;
    let body = match body {
        Body::Full(bytes) => {
            // A 200 whose body is an error object (a provider failing after the head
            // was sent) is a failure like any other, and may fall back.
            if let Some(err) = sse::error_in_payload(&bytes) {
                return Err(classify_in_band(&err, judge.now).with_elapsed(elapsed));
            }
            if judge.empty_fails && Substance::of(&bytes).is_some_and(|s| s.is_empty_answer(judge.reasoning_counts)) {
                return Err(empty_answer(elapsed));
            }
            Body::Full(sse::ensure_model(bytes, model.as_str()))
        }
        Body::Stream(mut stream) => {
            let mut head = VecDeque::new();
            let mut held = 0usize;
            let mut lines = LineSplitter::default();
            let mut ended = false;
            loop {
                match stream.next().await {
                    None => {
                        ended = true;
                        break;
                    }
                    Some(Err(e)) => return Err(e.with_elapsed(elapsed)),
                    Some(Ok(chunk)) => {
                        let mut verdict: Option<Result<(), TransportError>> = None;
                        lines.feed(&chunk, |line| {
                            if verdict.is_none() {
                                verdict = judge_line(line, &judge, elapsed);
                            }
                        });
                        held += chunk.len();
                        head.push_back(chunk);
                        match verdict {
                            Some(Err(e)) => return Err(e),
                            Some(Ok(())) => break,
                            None if held > MAX_HELD_HEAD && (lines.pending() == 0 || held > MAX_HELD_LINE) => break,
                            None => {}
                        }
                    }
                }
            }
            if ended && judge.empty_fails {
                // The stream ended without a word (nor a `[DONE]` to judge by).
                return Err(empty_answer(elapsed));
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

/// What one line of a stream's head decides: commit (`Ok`), fall back (`Err`), or
/// nothing yet (`None`: a comment, a role-only delta, reasoning not asked for).
fn judge_line(line: &[u8], judge: &Judge, elapsed: std::time::Duration) -> Option<Result<(), TransportError>> {
    let payload = sse::data_payload(line)?;
    if let Some(err) = sse::error_in_payload(payload) {
        return Some(Err(classify_in_band(&err, judge.now).with_elapsed(elapsed)));
    }
    if !judge.empty_fails {
        // The first event settles it, as before empty answers were judged.
        return Some(Ok(()));
    }
    if payload == b"[DONE]" {
        return Some(Err(empty_answer(elapsed)));
    }
    match Substance::of(payload) {
        // Not a chunk this router can read: not its to judge.
        None => Some(Ok(())),
        Some(s) if s.says_something(judge.reasoning_counts) || s.cut_by_length => Some(Ok(())),
        Some(s) if s.finished => Some(Err(empty_answer(elapsed))),
        Some(_) => None,
    }
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
