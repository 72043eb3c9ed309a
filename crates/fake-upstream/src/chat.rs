//! `POST /chat/completions`: records the request, waits out its behaviour's delays, then
//! writes the scripted reply: a whole body, SSE events one chunk each, or a large body.

use crate::Recorded;
use crate::behaviour::{Behaviour, Reply, reply};
use crate::respond::{RespBody, full_with, model_request};
use crate::shared::Shared;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::Value;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub(crate) async fn chat(shared: Arc<Shared>, req: Request<Incoming>) -> Response<RespBody> {
    let (parts, body) = req.into_parts();
    let (json, model) = match model_request(body).await {
        Ok(read) => read,
        Err(resp) => return resp,
    };
    let stream = json.get("stream").and_then(Value::as_bool).unwrap_or(false);

    shared.count_call(&model);
    let behaviour = shared.behaviour_for(&model);
    let serial = shared.serial.fetch_add(1, Ordering::Relaxed);
    shared.keep_request(|| recorded(&parts.headers, &model, &json, stream));

    let guard = InFlight { shared: shared.clone(), done: false };
    let b = wait_out(&shared, behaviour).await;
    respond(guard, reply(&b, &model, stream, &json, serial))
}

fn recorded(headers: &http::HeaderMap, model: &str, json: &Value, stream: bool) -> Recorded {
    let header_text = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
    Recorded {
        model: model.to_owned(),
        authorization: headers.get(header::AUTHORIZATION).map(header_text),
        headers: headers.iter().map(|(k, v)| (k.as_str().to_owned(), header_text(v))).collect(),
        body: json.clone(),
        stream,
    }
}

/// Sleeps through `Delay`s and waits through `Held`s; `Hang` never returns. What is left
/// is the behaviour that answers.
async fn wait_out(shared: &Shared, mut b: Behaviour) -> Behaviour {
    loop {
        match b {
            Behaviour::Delay { first_byte, then } => {
                tokio::time::sleep(first_byte).await;
                b = *then;
            }
            Behaviour::Hang => std::future::pending::<()>().await,
            Behaviour::Held { then } => {
                hold(shared).await;
                b = *then;
            }
            _ => return b,
        }
    }
}

/// The reply as a response; `guard` counts the answer as cut short unless it ends.
fn respond(mut guard: InFlight, reply: Reply) -> Response<RespBody> {
    match reply {
        Reply::Full { status, headers, body } => {
            guard.done = true;
            drop(guard);
            full_with(status, headers, body)
        }
        Reply::Sse(events) => sse_response(guard, events),
        Reply::Large { content_type, head, filler, repeat, tail, declared } => {
            large_response(guard, content_type, [head, filler, tail], repeat, declared)
        }
    }
}

/// Counts an answer as cut short when it is dropped before being marked done.
struct InFlight {
    shared: Arc<Shared>,
    done: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.done {
            self.shared.closed_early.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Waits for [`FakeUpstream::release_held`](crate::FakeUpstream::release_held), counted in
/// `held_now` (also when the client goes away meanwhile) and `max_held`.
async fn hold(shared: &Shared) {
    struct Waiting<'a>(&'a AtomicUsize);
    impl Drop for Waiting<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let mut released = shared.release.subscribe();
    let now = shared.held_now.fetch_add(1, Ordering::Relaxed) + 1;
    let _waiting = Waiting(&shared.held_now);
    shared.max_held.fetch_max(now, Ordering::Relaxed);
    // The sender lives in `shared`, so it cannot close while we wait.
    let _ = released.wait_for(|r| *r).await;
}

fn sse_response(guard: InFlight, events: Vec<(Duration, Bytes)>) -> Response<RespBody> {
    let state = (guard, events.into_iter());
    let stream = futures_util::stream::unfold(state, |(mut guard, mut events)| async move {
        let Some((pause, event)) = events.next() else {
            guard.done = true;
            drop(guard);
            return None;
        };
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        guard.shared.events_sent.fetch_add(1, Ordering::Relaxed);
        Some((Ok::<_, Infallible>(Frame::data(event)), (guard, events)))
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// `head`, `filler` `repeat` times, then `tail`, each its own chunk (empty ones left
/// out), with a `content-length` when `declared`.
fn large_response(
    guard: InFlight,
    content_type: &'static str,
    [head, filler, tail]: [Bytes; 3],
    repeat: usize,
    declared: bool,
) -> Response<RespBody> {
    let total = head.len() + filler.len() * repeat + tail.len();
    let chunks = std::iter::once(head)
        .chain(std::iter::repeat_n(filler, repeat))
        .chain(std::iter::once(tail))
        .filter(|c| !c.is_empty());
    let state = (guard, chunks);
    let stream = futures_util::stream::unfold(state, |(mut guard, mut chunks)| async move {
        let Some(chunk) = chunks.next() else {
            guard.done = true;
            drop(guard);
            return None;
        };
        Some((Ok::<_, Infallible>(Frame::data(chunk)), (guard, chunks)))
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if declared {
        resp.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    }
    resp
}
