//! Making an answer the client's: an error inside a 200 falls back like any failure, so
//! does an empty answer; a stream is held until it says something, and `model` names
//! the model that answered.

use crate::dialect::Dialect;
use crate::embeddings::{AnswerError, VectorCheck};
use crate::model::ModelId;
use crate::sse::{self, Answer, AnswerSpans, Event, StreamScan};
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
use std::time::Duration;

/// The most of a stream's head held back while waiting for its first content: beyond
/// it the stream is committed as it is (a long run of reasoning the request did not ask
/// for is not worth more memory). A line begun is finished first; lines are bounded by
/// [`Judge::max_line`].
pub(super) const MAX_HELD_HEAD: usize = 256 * 1024;

/// How an answer is judged before it becomes the client's.
#[derive(Clone, Copy, Debug)]
pub(super) struct Judge<'a> {
    /// Dates rate-limit resets in error objects.
    pub(super) now: Timestamp,
    /// An empty answer is a failure (see [`RouterConfig::empty_answers_fail`](super::RouterConfig)).
    pub(super) empty_fails: bool,
    /// The request asked for reasoning: reasoning alone is an answer.
    pub(super) reasoning_counts: bool,
    /// The longest event-stream line accepted (see [`RouterConfig::max_sse_line`](super::RouterConfig)).
    pub(super) max_line: usize,
    /// Whose rules read an error inside a 200.
    pub(super) dialect: Dialect,
    /// An embeddings answer's vectors: as many as inputs, of the family's dimension.
    pub(super) vectors: Option<VectorCheck<'a>>,
    /// A whole answer's reading records where its members are, for a dialect.
    pub(super) spans: bool,
}

fn empty_answer(elapsed: std::time::Duration) -> TransportError {
    TransportError::new(ErrorKind::EmptyAnswer, "the model returned an empty answer (no content and no tool calls)")
        .with_elapsed(elapsed)
}

/// Makes a successful answer the client's: names the chosen model in it and, for a
/// stream, waits for the first content so that an error or an empty answer before any
/// content can still fall back to another model. `spans` is set to where a whole chat
/// answer's members are in the committed body (`None` for anything else).
pub(super) async fn commit(
    resp: UpstreamResponse,
    model: &ModelId,
    stream_errors: &Arc<AtomicU64>,
    judge: Judge<'_>,
    spans: &mut Option<Box<AnswerSpans>>,
) -> Result<UpstreamResponse, TransportError> {
    let UpstreamResponse { status, headers, body, elapsed } = resp;
    *spans = None;
    let body = match body {
        Body::Full(bytes) => {
            let (bytes, read) = commit_whole(bytes, status, model, &judge, elapsed)?;
            *spans = read.map(Box::new);
            Body::Full(bytes)
        }
        Body::Stream(stream) => {
            Body::Stream(Box::pin(commit_stream(stream, model, stream_errors, &judge, elapsed).await?))
        }
    };
    Ok(UpstreamResponse { status, headers, body, elapsed })
}

/// A whole answer: one reading settles all (JSON at all, an error inside a 200, an
/// empty answer, where `model` is, where the members a dialect reads are), and `model`
/// is written into it.
fn commit_whole(
    bytes: Bytes,
    status: u16,
    model: &ModelId,
    judge: &Judge<'_>,
    elapsed: Duration,
) -> Result<(Bytes, Option<AnswerSpans>), TransportError> {
    let read = if judge.spans { Answer::read_recording } else { Answer::read };
    let answer = read(&bytes).map_err(|e| {
        TransportError::new(ErrorKind::Protocol, format!("upstream answered {status} with unreadable JSON: {e}"))
            .with_elapsed(elapsed)
    })?;
    // A 200 whose body is an error object (a provider failing after the head was sent)
    // is a failure like any other, and may fall back.
    if let Some(err) = answer.error(&bytes) {
        return Err(judge.dialect.classify_in_band(&err, judge.now).with_elapsed(elapsed));
    }
    if judge.empty_fails && answer.substance.is_some_and(|s| s.is_empty_answer(judge.reasoning_counts)) {
        return Err(empty_answer(elapsed));
    }
    // Vectors of another space than the family's fall back to another of its endpoints.
    if let Some(vectors) = &judge.vectors {
        let fault = |e: AnswerError| TransportError::new(ErrorKind::Protocol, e.to_string()).with_elapsed(elapsed);
        vectors.check(&bytes).map_err(fault)?;
    }
    Ok(answer.with_model_spans(bytes, &sse::json_string(model.as_str())))
}

/// A stream: its head is held until the first content (or [`MAX_HELD_HEAD`]), so that
/// an error or an empty answer before any content can still fall back. Each chunk is
/// scanned once, here while the head is judged and in `RoutedStream` after: the scanner
/// judges, counts and rewrites in one pass.
async fn commit_stream(
    mut stream: ByteStream,
    model: &ModelId,
    stream_errors: &Arc<AtomicU64>,
    judge: &Judge<'_>,
    elapsed: Duration,
) -> Result<RoutedStream, TransportError> {
    let mut scan = StreamScan::new(model.as_str(), judge.max_line);
    let mut head = VecDeque::new();
    let mut held = 0usize;
    let mut ended = false;
    loop {
        let Some(chunk) = stream.next().await else {
            ended = true;
            break;
        };
        let chunk = chunk.map_err(|e| e.with_elapsed(elapsed))?;
        let mut verdict: Option<Result<(), TransportError>> = None;
        let out = scan
            .feed(&chunk, |event| {
                if verdict.is_none() {
                    verdict = judge_event(&event, judge, elapsed);
                }
            })
            .map_err(|e| TransportError::new(ErrorKind::Protocol, e.to_string()).with_elapsed(elapsed))?;
        held += chunk.len();
        if !out.is_empty() {
            head.push_back(out);
        }
        match verdict {
            Some(Err(e)) => return Err(e),
            Some(Ok(())) => break,
            None if held > MAX_HELD_HEAD && scan.pending() == 0 => break,
            None => {}
        }
    }
    if ended && judge.empty_fails {
        // The stream ended without a word (nor a `[DONE]` to judge by).
        return Err(empty_answer(elapsed));
    }
    let (model, errors) = (model.clone(), stream_errors.clone());
    Ok(RoutedStream { head, inner: stream, scan, model, done: false, errors, counted: 0 })
}

/// What one event of a stream's head decides: commit (`Ok`), fall back (`Err`), or
/// nothing yet (`None`: a role-only delta, reasoning not asked for).
fn judge_event(
    event: &Event<'_>,
    judge: &Judge<'_>,
    elapsed: std::time::Duration,
) -> Option<Result<(), TransportError>> {
    if let Some(err) = event.error {
        return Some(Err(judge.dialect.classify_in_band(err, judge.now).with_elapsed(elapsed)));
    }
    if !judge.empty_fails {
        // The first event settles it, as before empty answers were judged.
        return Some(Ok(()));
    }
    if event.payload == b"[DONE]" {
        return Some(Err(empty_answer(elapsed)));
    }
    match Answer::read(event.payload).ok().and_then(|a| a.substance) {
        // Not a chunk this router can read: not its to judge.
        None => Some(Ok(())),
        Some(s) if s.says_something(judge.reasoning_counts) || s.cut_by_length => Some(Ok(())),
        Some(s) if s.finished => Some(Err(empty_answer(elapsed))),
        Some(_) => None,
    }
}

/// A committed stream: replays the head (already scanned and rewritten), then scans the
/// rest, with `model` rewritten; an upstream failure or a line over the limit becomes an
/// in-band error chunk.
struct RoutedStream {
    head: VecDeque<Bytes>,
    inner: ByteStream,
    scan: StreamScan,
    model: ModelId,
    done: bool,
    errors: Arc<AtomicU64>,
    /// The scanner's error events already added to `errors`.
    counted: u64,
}

impl RoutedStream {
    /// Adds the error events the scanner saw since the last call to the router's count.
    fn count_errors(&mut self) {
        let seen = self.scan.error_events();
        if seen > self.counted {
            self.errors.fetch_add(seen - self.counted, Ordering::Relaxed);
            self.counted = seen;
        }
    }

    /// Ends the stream with an in-band error chunk after whatever is left of it.
    fn fail(&mut self, status: u16, message: &str) -> Bytes {
        self.done = true;
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut out = self.scan.finish(|_| {}).to_vec();
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.extend_from_slice(b"\n\n");
        }
        out.extend_from_slice(&sse::error_chunk(self.model.as_str(), status, message));
        Bytes::from(out)
    }
}

impl Stream for RoutedStream {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(chunk) = this.head.pop_front() {
            this.count_errors();
            return Poll::Ready(Some(Ok(chunk)));
        }
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => match this.scan.feed(&chunk, |_| {}) {
                    Ok(out) => {
                        this.count_errors();
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(out)));
                        }
                    }
                    Err(e) => return Poll::Ready(Some(Ok(this.fail(502, &e.to_string())))),
                },
                Poll::Ready(Some(Err(e))) => {
                    let status = e.http_status();
                    return Poll::Ready(Some(Ok(this.fail(status, &e.message))));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    let rest = this.scan.finish(|_| {});
                    this.count_errors();
                    return Poll::Ready((!rest.is_empty()).then_some(Ok(rest)));
                }
            }
        }
    }
}
