//! `POST /v1/messages` (and `/api/v1/messages`, any query string): Anthropic's Messages
//! API, for Claude Code and the Anthropic SDKs, on the same routing as chat completions.
//! The body is translated to a chat request (`router_dialects::anthropic`), routed by
//! [`handlers::route`], and the answer or its stream translated back; every error is in
//! Anthropic's shape. Also `count_tokens` and the Anthropic form of `/v1/models`.

use crate::anthropic_errors::anthropic_error;
use crate::error::ApiError;
use crate::handlers::{self, RouteHeaders, upstream_headers};
use crate::reframe::{KeepaliveClock, Reframe};
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::Stream;
use router_core::{Body as UpstreamBody, ByteStream, ChatRequest, RouteError, RouteFailure, Routed, TransportError};
use router_dialects::anthropic::{self, MessageStream, TranslateError, Translated};
use router_dialects::chat::read_committed;
use serde_json::{Value, json};
use std::convert::Infallible;

/// Set when a Claude model id was served from the free models (its value: the id used).
pub const SERVED_AS_HEADER: HeaderName = HeaderName::from_static("x-router-served-as");
/// The server tools left out of the request, comma-separated.
pub const DROPPED_TOOLS_HEADER: HeaderName = HeaderName::from_static("x-router-dropped-tools");
/// The header by which a request says it speaks Anthropic's API.
pub const ANTHROPIC_VERSION_HEADER: &str = "anthropic-version";

/// `POST /v1/messages`.
pub async fn messages(State(state): State<AppState>, req: Request) -> Response {
    let (chat, translated, seed) = match read(&state, req).await {
        Ok(read) => read,
        Err(e) => return e,
    };
    let estimate = chat.requirements().prompt_tokens;
    let (result, mut decision) = handlers::route(&state, &chat, seed).await;
    let fallback_id = anthropic::ids::fallback_id(decision.seed());
    let (mut resp, report) = match result {
        Ok(Routed { response, report }) => {
            let model = report.model.as_ref().map(|m| m.as_str().to_owned()).unwrap_or_default();
            let (mut passed, _) = upstream_headers(response.headers);
            let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
            let body = match response.body {
                UpstreamBody::Full(bytes) => match read_committed(&bytes, report.answer.as_deref()) {
                    // An upstream that ignored `stream: true`: the client still gets events.
                    Ok(answer) if translated.stream => {
                        let message = anthropic::message_json(&answer, &fallback_id, estimate);
                        handlers::event_stream(&mut passed);
                        Body::from(anthropic::whole_as_events(&message))
                    }
                    Ok(answer) => {
                        let message = anthropic::message_json(&answer, &fallback_id, estimate);
                        passed.insert(header::CONTENT_TYPE, handlers::JSON);
                        Body::from(message)
                    }
                    // The core judged the answer readable; this is a last guard.
                    Err(e) => {
                        let message = format!("the upstream's answer could not be read: {e}");
                        let mut resp = anthropic_error(ApiError::new(StatusCode::BAD_GATEWAY, &message, "protocol"));
                        decision.finish(&mut resp, report);
                        return resp;
                    }
                },
                UpstreamBody::Stream(stream) => {
                    handlers::event_stream(&mut passed);
                    let writer = MessageStream::new(&fallback_id, &model, estimate);
                    Body::from_stream(events(stream, writer, &state.keepalive))
                }
            };
            let mut resp = (status, body).into_response();
            *resp.headers_mut() = passed;
            (resp, report)
        }
        Err(RouteFailure { error, report }) => {
            decision.failed(&error);
            (anthropic_error(ApiError::from_route(&error)), report)
        }
    };
    notes(resp.headers_mut(), &translated);
    decision.finish(&mut resp, report);
    resp
}

/// `POST /v1/messages/count_tokens`: the router's own estimate of the prompt (the one
/// its routing uses), as `{"input_tokens": N}`.
pub async fn count_tokens(State(state): State<AppState>, req: Request) -> Response {
    match read(&state, req).await {
        Ok((chat, _, _)) => Json(json!({ "input_tokens": chat.requirements().prompt_tokens })).into_response(),
        Err(e) => e,
    }
}

/// `GET /v1/models` and `/api/v1/models`: Anthropic's list shape when the request
/// carries `anthropic-version` (model pickers), else OpenRouter's.
pub async fn list_models(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<crate::models::ModelsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    if !headers.contains_key(ANTHROPIC_VERSION_HEADER) {
        return handlers::list_models(State(state), query).await;
    }
    let snapshot = state.router.catalog();
    let now = state.router.now();
    let list = crate::models::list(&snapshot, now, &crate::models::ModelsQuery::default());
    let list = serde_json::to_value(&list).unwrap_or(Value::Null);
    let data: Vec<Value> = list["data"].as_array().map(|d| d.iter().map(anthropic_model).collect()).unwrap_or_default();
    let first = data.first().map(|m| m["id"].clone()).unwrap_or(Value::Null);
    let last = data.last().map(|m| m["id"].clone()).unwrap_or(Value::Null);
    Ok(Json(json!({ "data": data, "has_more": false, "first_id": first, "last_id": last })).into_response())
}

/// One model of OpenRouter's list in Anthropic's shape.
fn anthropic_model(m: &Value) -> Value {
    let created = m["created"].as_u64().map(|s| router_core::Timestamp::from_secs(s).to_string());
    json!({
        "type": "model",
        "id": m["id"],
        "display_name": m["name"].as_str().filter(|n| !n.is_empty()).or(m["id"].as_str()),
        "created_at": created.unwrap_or_else(|| router_core::Timestamp::from_secs(0).to_string()),
        "max_input_tokens": m["context_length"],
        "max_tokens": m["top_provider"]["max_completion_tokens"],
    })
}

/// The request: headers, content type, body, translation, and the chat request with
/// its session key and pick; a refusal is already an Anthropic-shaped response.
async fn read(state: &AppState, req: Request) -> Result<(ChatRequest, Translated, Option<u64>), Response> {
    let headers = RouteHeaders::read(req.headers()).map_err(|m| anthropic_error(ApiError::bad_request(m)))?;
    let bytes = handlers::json_body(state, req).await.map_err(anthropic_error)?;
    let mut translated = anthropic::to_chat(&bytes, &state.messages).map_err(|e| refused(&e))?;
    // Written by the translation, which says where its members are: not walked again.
    let body = Bytes::from(std::mem::take(&mut translated.body));
    let mut chat = ChatRequest::from_written(body, &translated.members)
        .map_err(|e| anthropic_error(ApiError::from_route(&RouteError::Request(e))))?;
    // The answer is translated: its reading says where its members are.
    chat.record_answer_spans();
    let seed = headers.apply(&mut chat).map_err(|e| anthropic_error(ApiError::from_route(&RouteError::Request(e))))?;
    Ok((chat, translated, seed))
}

fn refused(e: &TranslateError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({ "error": { "message": e.to_string() } });
    anthropic_error(ApiError { status, body, retry_after: None })
}

/// The response headers that say what the translation changed.
fn notes(headers: &mut HeaderMap, translated: &Translated) {
    if translated.served_as_free {
        headers.insert(SERVED_AS_HEADER, HeaderValue::from_static(anthropic::request::FREE_MODEL));
    }
    if !translated.dropped_tools.is_empty()
        && let Ok(v) = HeaderValue::from_str(&translated.dropped_tools.join(", "))
    {
        headers.insert(DROPPED_TOOLS_HEADER, v);
    }
}

/// The upstream's chat chunks as Anthropic's events, re-framed chunk by chunk, with a
/// `ping` in each silence (at most the clock's interval after the last chunk, as
/// Anthropic's API pings). After the last event the upstream stream is dropped; a
/// transport error is an `error` event.
fn events(
    stream: ByteStream,
    writer: MessageStream,
    clock: &KeepaliveClock,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + use<> {
    crate::reframe::reframe(stream, writer, clock)
}

impl Reframe for MessageStream {
    fn keepalive(&self) -> &'static [u8] {
        MessageStream::ping()
    }

    fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        MessageStream::push(self, chunk, out);
    }

    fn fail(&mut self, error: &TransportError, out: &mut Vec<u8>) {
        MessageStream::fail(self, error.http_status(), &error.message, out);
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        MessageStream::finish(self, out);
    }

    fn is_ended(&self) -> bool {
        MessageStream::is_ended(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use router_core::{ErrorKind, TransportError};
    use std::time::Duration;

    /// The event names a stream of `chunks` (each after `gap`) becomes, with pings after
    /// 40 ms of silence.
    async fn names(chunks: Vec<Result<&'static str, TransportError>>, gap: Duration) -> Vec<String> {
        let upstream = futures_util::stream::iter(chunks).then(move |c| async move {
            tokio::time::sleep(gap).await;
            c.map(|s: &'static str| Bytes::from_static(s.as_bytes()))
        });
        let out: Vec<Bytes> = events(
            Box::pin(upstream),
            MessageStream::new("f", "m", 1),
            &KeepaliveClock::new(Duration::from_millis(40)),
        )
        .map(|b| b.unwrap_or_default())
        .collect()
        .await;
        let text = String::from_utf8(out.concat()).unwrap_or_default();
        text.lines().filter_map(|l| l.strip_prefix("event: ")).map(str::to_owned).collect()
    }

    fn check(names: &[String], expected: &[&str]) {
        let without_pings: Vec<&str> = names.iter().map(String::as_str).filter(|n| *n != "ping").collect();
        assert_eq!(without_pings, expected, "{names:?}");
    }

    const CHUNK: &str = "data: {\"id\":\"g\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n";

    // On tokio's paused clock: the order of a ping and a chunk is the test's, not the
    // machine's (a busy moment would let both timers fire at once).
    #[tokio::test(start_paused = true)]
    async fn a_silence_gets_pings_and_the_end_closes_the_message() {
        let got = names(vec![Ok(CHUNK), Ok("data: [DONE]\n\n")], Duration::from_millis(150)).await;
        check(
            &got,
            &[
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ],
        );
        // Before the first chunk, and between the two.
        assert_eq!(got[0], "ping", "{got:?}");
        let delta = got.iter().position(|n| n == "content_block_delta").unwrap_or(0);
        assert_eq!(got[delta + 1], "ping", "{got:?}");
    }

    #[tokio::test]
    async fn a_transport_failure_is_an_error_event() {
        let cut = TransportError::new(ErrorKind::Timeout, "no chunk for 60 s");
        let got = names(vec![Ok(CHUNK), Err(cut)], Duration::ZERO).await;
        check(&got, &["message_start", "content_block_start", "content_block_delta", "error"]);
    }
}
