//! `POST /v1/embeddings` and `/api/v1/embeddings` (OpenAI's and OpenRouter's shape),
//! `GET /api/v1/embeddings/models` and `POST /api/v1/embeddings/explain`. The body is read and bounded by
//! `router_core::embeddings`, its `model` resolved to one family, and the request routed
//! by [`crate::handlers::route`] confined to that family's free endpoints (in chunks to one
//! model when an endpoint takes fewer inputs a call: `batch`); an answer is passed on
//! only when its vectors have the family's dimension.

mod batch;

use crate::error::ApiError;
use crate::handlers::{self, RouteHeaders, upstream_headers};
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use router_core::embeddings::{
    AnswerError, EmbeddingsRequest, floats_to_base64, free_embedding_models, read_answer, resolve,
};
use router_core::{Body as UpstreamBody, ChatRequest, ModelId, RejectedEntry, RouteError, RouteFailure, Routed};
use serde_json::{Value, json};

/// The family that answered (or was asked for): always on an embeddings answer, so that
/// a client that named no model learns which vector space it got.
pub const FAMILY_HEADER: HeaderName = HeaderName::from_static("x-router-embedding-family");

/// A request read: its bounds, its family, and the request the router routes.
struct Read {
    body: EmbeddingsRequest,
    family: String,
    chat: ChatRequest,
    seed: Option<u64>,
}

/// `POST /api/v1/embeddings` and `/v1/embeddings`.
pub async fn embeddings(State(state): State<AppState>, req: Request) -> Response {
    let read = match read(&state, req).await {
        Ok(read) => read,
        Err(e) => return e.into_response(),
    };
    let whole = batch::Whole { chat: &read.chat, family: &read.family, inputs: read.body.inputs, seed: read.seed };
    let (result, mut decision) = batch::route(&state, &whole).await;
    let Read { body, family, .. } = read;
    let (mut resp, mut report) = match result {
        Ok(Routed { response, report }) => {
            let (mut passed, _) = upstream_headers(response.headers);
            let checked = match response.body {
                UpstreamBody::Full(bytes) => vouch(&state, &family, &body, bytes),
                UpstreamBody::Stream(_) => Err("answered with a stream instead of a list of vectors".to_owned()),
            };
            let resp = match checked {
                Ok(bytes) => {
                    passed.insert(header::CONTENT_TYPE, handlers::JSON);
                    let mut resp = (StatusCode::OK, Body::from(bytes)).into_response();
                    *resp.headers_mut() = passed;
                    resp
                }
                Err(why) => {
                    let model = report.model.as_ref().map_or("-", |m| m.as_str());
                    let message = format!("`{model}` of embedding family `{family}` {why}");
                    let mut e = ApiError::new(StatusCode::BAD_GATEWAY, &message, "protocol");
                    e.body["error"]["metadata"]["family"] = json!(family);
                    e.into_response()
                }
            };
            (resp, report)
        }
        Err(RouteFailure { error, report }) => {
            decision.failed(&error);
            (in_family(ApiError::from_route(&error), &family).into_response(), report)
        }
    };
    if let Ok(v) = HeaderValue::from_str(&family) {
        resp.headers_mut().insert(FAMILY_HEADER, v);
    }
    // A token budget's cap is no output limit here: embeddings ask for none.
    report.max_tokens = None;
    decision.finish(&mut resp, report);
    resp
}

/// Headers, content type, body, its bounds, the family it names, and the request
/// confined to that family.
async fn read(state: &AppState, req: Request) -> Result<Read, ApiError> {
    let headers = RouteHeaders::read(req.headers()).map_err(ApiError::bad_request)?;
    let bytes = handlers::json_body(state, req).await?;
    let body = EmbeddingsRequest::read(&bytes).map_err(|e| ApiError::bad_request(&e.to_string()))?;
    let snap = state.router.catalog();
    let resolved =
        resolve(&snap, body.model.as_deref(), state.embeddings.default_family.as_deref(), state.router.now())
            .map_err(|e| ApiError::from_route(&e))?;
    let mut chat =
        ChatRequest::embeddings(bytes, &resolved.family).map_err(|e| ApiError::from_route(&RouteError::Request(e)))?;
    let seed = headers.apply(&mut chat).map_err(|e| ApiError::from_route(&RouteError::Request(e)))?;
    Ok(Read { body, family: resolved.family, chat, seed })
}

/// The answer the client gets, when it may have it: one vector per input, all of the
/// family's dimension (held to it in the attempt loop, which falls back to another
/// endpoint of the family otherwise, and checked again here), in the encoding asked for
/// (numbers from a server that ignores `encoding_format` are re-encoded). The text says
/// why not.
fn vouch(state: &AppState, family: &str, body: &EmbeddingsRequest, bytes: Bytes) -> Result<Bytes, String> {
    let bad = |e: AnswerError| format!("answered badly: {e}");
    let answer = read_answer(&bytes, body.inputs, body.encoding).map_err(bad)?;
    state.router.embedding_dimensions().check(family, body.dimensions, answer.dimension).map_err(bad)?;
    if answer.floats_for_base64 {
        return floats_to_base64(&bytes).map(Bytes::from).map_err(bad);
    }
    Ok(bytes)
}

/// A routing failure that names the family: no other family's vectors stand in.
fn in_family(mut e: ApiError, family: &str) -> ApiError {
    let message = e.body["error"]["message"].as_str().unwrap_or_default().to_owned();
    e.body["error"]["message"] = json!(format!(
        "no free endpoint of embedding family `{family}` could answer (no other family is used): {message}"
    ));
    e.body["error"]["metadata"]["family"] = json!(family);
    e
}

/// `POST /api/v1/embeddings/explain`: the decision for an embeddings body without
/// forwarding it, as `/router/explain` gives it for chat, plus the family; a model of
/// another family is listed as rejected for that reason.
pub async fn explain(State(state): State<AppState>, req: Request) -> Response {
    let Read { body: asked, family, chat, seed } = match read(&state, req).await {
        Ok(read) => read,
        Err(e) => return e.into_response(),
    };
    let seed = seed.unwrap_or_else(|| state.seeds.next());
    let mut explanation = match state.router.explain(&chat, seed) {
        Ok(x) => x,
        Err(e) => return in_family(ApiError::from_route(&e), &family).into_response(),
    };
    let snap = state.router.catalog();
    let (kept, others): (Vec<ModelId>, Vec<ModelId>) = std::mem::take(&mut explanation.candidates)
        .into_iter()
        .partition(|id| snap.get(id.as_str()).is_some_and(|e| e.info.family() == family));
    explanation.candidates = kept;
    for id in others {
        let entry = snap.get(id.as_str());
        let theirs = entry.map_or("?", |e| e.info.family());
        explanation.rejected.push(RejectedEntry {
            provider: entry.and_then(|e| e.info.provider.as_ref()).map(|p| p.provider.to_string()),
            reasons: vec![format!("embedding family `{theirs}`, not `{family}`")],
            id,
        });
    }
    let mut body = serde_json::to_value(&explanation).unwrap_or_default();
    body["family"] = json!(family);
    if let Some(first) = batch::first_call(&state, &family, asked.inputs) {
        // Cut for an endpoint's `max_batch_inputs`: what the first call would carry.
        body["first_call_inputs"] = json!(first);
    }
    Json(body).into_response()
}

/// `GET /api/v1/embeddings/models`: every free embedding model of every provider, in
/// OpenRouter's `/models` shape, each with its `family`.
pub async fn list_models(State(state): State<AppState>) -> Response {
    let snap = state.router.catalog();
    let data: Vec<Value> = free_embedding_models(&snap, state.router.now())
        .into_iter()
        .map(|m| {
            let mut entry = m
                .raw
                .as_ref()
                .and_then(|r| serde_json::from_str(r.get()).ok())
                .unwrap_or_else(|| router_core::to_openrouter_json(m));
            if let Some(o) = entry.as_object_mut() {
                o.insert("family".into(), json!(m.family()));
            }
            entry
        })
        .collect();
    Json(json!({ "data": data })).into_response()
}
