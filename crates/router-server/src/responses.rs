//! `POST /v1/responses` and `/api/v1/responses`: OpenAI's Responses API, stateless, on the
//! same routing as chat completions. The body is translated to a chat request
//! (`router_dialects::responses`), routed by [`handlers::route`], and the answer or its
//! stream translated back; every error is in OpenAI's shape.

use crate::error::ApiError;
use crate::handlers::{self, RouteHeaders, upstream_headers};
use crate::reframe::{KeepaliveClock, Reframe};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::Stream;
use router_core::sse::AnswerSpans;
use router_core::{
    Body as UpstreamBody, ByteStream, ChatRequest, ModelId, RouteError, RouteFailure, Routed, TransportError,
};
use router_dialects::chat::{ChatError, read_committed};
use router_dialects::responses::{EventWriter, InvalidRequest, ResponseMeta, Translated, response_json, to_chat};
use std::convert::Infallible;

/// The tools left out of the request (`web_search`, `namespace:mcp`, ...), comma-separated.
pub const DROPPED_TOOLS_HEADER: HeaderName = HeaderName::from_static("x-router-dropped-tools");

const KEEPALIVE_COMMENT: &[u8] = b": keepalive\n\n";

/// Codex CLI's conversation header; `x-session-id` wins over it. Names made once, so
/// that each request's look-up does not parse them again.
const CLIENT_SESSION_HEADERS: [HeaderName; 2] =
    [HeaderName::from_static("session-id"), HeaderName::from_static("session_id")];

/// `POST /api/v1/responses` and `/v1/responses`.
pub async fn responses(State(state): State<AppState>, req: Request) -> Response {
    let (chat, translated, seed) = match read(&state, req).await {
        Ok(read) => read,
        Err(e) => return e.into_openai_response(),
    };
    let (result, mut decision) = handlers::route(&state, &chat, seed).await;
    let (mut resp, report) = match result {
        Ok(Routed { response, report }) => {
            let now = state.router.now().as_millis();
            let meta = ResponseMeta {
                id: ResponseMeta::id_of(now, decision.seed()),
                created_at: now / 1000,
                model: report.model.clone().unwrap_or_else(|| ModelId::new("")),
            };
            let (mut passed, _) = upstream_headers(response.headers);
            let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
            let stream = translated.stream;
            let (body, events) = match answer(
                response.body,
                report.answer.as_deref(),
                meta,
                translated.echo,
                stream,
                &state.keepalive,
            ) {
                Ok(Answer::Object(body)) => (body, false),
                Ok(Answer::Events(body)) => (body, true),
                Err(e) => {
                    let mut resp = e.into_openai_response();
                    decision.finish(&mut resp, report);
                    return resp;
                }
            };
            if events {
                handlers::event_stream(&mut passed);
            } else {
                passed.insert(header::CONTENT_TYPE, handlers::JSON);
            }
            dropped_header(&mut passed, &translated.dropped_tools);
            let mut resp = (status, body).into_response();
            *resp.headers_mut() = passed;
            (resp, report)
        }
        Err(RouteFailure { error, report }) => {
            decision.failed(&error);
            let mut resp = ApiError::from_route(&error).into_openai_response();
            dropped_header(resp.headers_mut(), &translated.dropped_tools);
            (resp, report)
        }
    };
    decision.finish(&mut resp, report);
    resp
}

/// The answer's body in the Responses shape.
enum Answer {
    /// A response object (JSON).
    Object(Body),
    /// The Responses event stream.
    Events(Body),
}

/// A response object, or the event stream when the client asked for one: re-framed from
/// the upstream's stream, or written at once from a whole answer (an upstream that
/// ignored `stream`), read in place from where the router found its members (`spans`).
fn answer(
    body: UpstreamBody,
    spans: Option<&AnswerSpans>,
    meta: ResponseMeta,
    echo: Vec<u8>,
    stream: bool,
    keepalive: &KeepaliveClock,
) -> Result<Answer, ApiError> {
    let bytes = match body {
        UpstreamBody::Stream(upstream) => {
            return Ok(Answer::Events(Body::from_stream(events(upstream, EventWriter::new(meta, echo), keepalive))));
        }
        UpstreamBody::Full(bytes) => bytes,
    };
    // The core judged the answer readable; this is a last guard.
    let answer = read_committed(&bytes, spans).map_err(|e| {
        ApiError::new(StatusCode::BAD_GATEWAY, &format!("the upstream's answer could not be read: {e}"), "protocol")
    })?;
    if stream {
        let mut out = Vec::new();
        let mut writer = EventWriter::new(meta, echo);
        writer.whole(&answer, &mut out);
        return Ok(Answer::Events(Body::from(out)));
    }
    Ok(Answer::Object(Body::from(response_json(&answer, &meta, &echo))))
}

/// The request: headers, content type, body, translation, and the chat request with
/// its session key and pick.
async fn read(state: &AppState, req: Request) -> Result<(ChatRequest, Translated, Option<u64>), ApiError> {
    let mut headers = RouteHeaders::read(req.headers()).map_err(ApiError::bad_request)?;
    let client_session = client_session(req.headers());
    let bytes = handlers::json_body(state, req).await?;
    let mut translated = to_chat(&bytes, state.responses_tools).map_err(|e| invalid(&e))?;
    // Written by the translation, which says where its members are: not walked again.
    let body = Bytes::from(std::mem::take(&mut translated.chat));
    let mut chat = ChatRequest::from_written(body, &translated.members)
        .map_err(|e| ApiError::from_route(&RouteError::Request(e)))?;
    // The answer is translated: its reading says where its members are.
    chat.record_answer_spans();
    if headers.session.as_deref().is_none_or(str::is_empty) {
        headers.session = client_session.or_else(|| translated.session.clone());
    }
    let seed = headers.apply(&mut chat).map_err(|e| ApiError::from_route(&RouteError::Request(e)))?;
    Ok((chat, translated, seed))
}

fn client_session(headers: &HeaderMap) -> Option<String> {
    CLIENT_SESSION_HEADERS.iter().find_map(|name| {
        headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
    })
}

/// A translation refusal as a 400 in OpenAI's shape.
fn invalid(e: &InvalidRequest) -> ApiError {
    ApiError { status: StatusCode::BAD_REQUEST, body: e.body(), retry_after: None }
}

fn dropped_header(headers: &mut HeaderMap, dropped: &[String]) {
    if dropped.is_empty() {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(&dropped.join(", ")) {
        headers.insert(DROPPED_TOOLS_HEADER, v);
    }
}

/// The upstream's chat chunks as Responses events, re-framed chunk by chunk, with an SSE
/// comment in each silence, at most the clock's interval after the last chunk (the
/// Responses API has no ping event; every client skips comments). After the final event
/// the upstream stream is dropped; a transport error is `response.failed`.
fn events(
    stream: ByteStream,
    writer: EventWriter,
    keepalive: &KeepaliveClock,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + use<> {
    crate::reframe::reframe(stream, writer, keepalive)
}

impl Reframe for EventWriter {
    fn keepalive(&self) -> &'static [u8] {
        KEEPALIVE_COMMENT
    }

    fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        EventWriter::push(self, chunk, out);
    }

    fn fail(&mut self, error: &TransportError, out: &mut Vec<u8>) {
        let kind = Some(error.kind.as_str().to_owned());
        let message = router_core::redact(&error.message, &[]);
        EventWriter::fail(self, ChatError { status: error.status, kind, message }, out);
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        EventWriter::finish(self, out);
    }

    fn is_ended(&self) -> bool {
        EventWriter::is_ended(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use router_core::{ErrorKind, TransportError};
    use std::time::Duration;

    /// What a stream of `chunks` (each after `gap`) becomes, with a keep-alive after 40 ms
    /// of silence: the event types, and `keepalive` for each comment.
    async fn check(chunks: Vec<Result<&'static str, TransportError>>, gap: Duration) -> Vec<String> {
        let upstream = futures_util::stream::iter(chunks).then(move |c| async move {
            tokio::time::sleep(gap).await;
            c.map(|s: &'static str| Bytes::from_static(s.as_bytes()))
        });
        let meta = ResponseMeta { id: "resp_t".into(), created_at: 1, model: "m:free".into() };
        let out: Vec<Bytes> = events(
            Box::pin(upstream),
            EventWriter::new(meta, Vec::new()),
            &KeepaliveClock::new(Duration::from_millis(40)),
        )
        .map(|b| b.unwrap_or_default())
        .collect()
        .await;
        let text = String::from_utf8(out.concat()).unwrap_or_default();
        text.lines()
            .filter_map(|l| if l == ": keepalive" { Some("keepalive") } else { l.strip_prefix("event: ") })
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn codex_s_session_header_is_read_with_its_underscored_form_after_it() {
        let session = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(*k, HeaderValue::from_static(v));
            }
            client_session(&h)
        };
        assert_eq!(session(&[("session_id", "b"), ("session-id", "a")]).as_deref(), Some("a"));
        assert_eq!(session(&[("session-id", " "), ("session_id", "b")]).as_deref(), Some("b"));
        assert_eq!(session(&[("session-id", "a"), ("session-id", "c")]).as_deref(), Some("a"));
        assert_eq!(session(&[("content-type", "x")]), None);
    }

    const CHUNK: &str = "data: {\"id\":\"g\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n";

    // On tokio's paused clock, as the Messages stream's test.
    #[tokio::test(start_paused = true)]
    async fn a_silence_gets_a_comment_and_the_events_go_on() {
        let got = check(vec![Ok(CHUNK), Ok("data: [DONE]\n\n")], Duration::from_millis(150)).await;
        assert_eq!(got.first().map(String::as_str), Some("keepalive"), "{got:?}");
        let events: Vec<&str> = got.iter().map(String::as_str).filter(|n| *n != "keepalive").collect();
        assert_eq!(
            events,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let delta = got.iter().position(|n| n == "response.output_text.delta").unwrap_or(0);
        assert_eq!(got.get(delta + 1).map(String::as_str), Some("keepalive"), "{got:?}");
    }

    #[tokio::test]
    async fn a_transport_failure_is_response_failed() {
        let cut = TransportError::new(ErrorKind::Timeout, "no chunk for 60 s");
        let got = check(vec![Ok(CHUNK), Err(cut)], Duration::ZERO).await;
        assert_eq!(got.last().map(String::as_str), Some("response.failed"), "{got:?}");
        assert!(!got.iter().any(|n| n == "response.completed"), "{got:?}");
    }
}
