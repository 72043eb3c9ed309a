//! The HTTP handlers, thin on purpose: parse, call the core, map the result; plus the
//! two middlewares (client keys, and the per-request log line and counters).

use crate::error::ApiError;
use crate::events::DecisionContext;
use crate::metadata::WantsMetadata;
use crate::metrics::Endpoint;
use crate::models::{self, ModelsQuery};
use crate::state::AppState;
use crate::status::view::{Health, Readiness, ReadyStatus, RouterView};
use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Query, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use router_core::{Body as UpstreamBody, ChatRequest, RequestError, RouteError, RouteFailure, RouteReport, Routed};
use serde_json::json;
use std::time::Instant;

pub const SEED_HEADER: &str = "x-router-seed";
const MODEL_HEADER: HeaderName = HeaderName::from_static("x-router-model");
const ATTEMPTS_HEADER: HeaderName = HeaderName::from_static("x-router-attempts");
const CANDIDATES_HEADER: HeaderName = HeaderName::from_static("x-router-candidates");
/// How the answering model was chosen: `sticky`, `weighted`, `uniform` or `named`.
const PICK_HEADER: HeaderName = HeaderName::from_static("x-router-pick");
/// The output the answering model was asked for, when lowered from the request's.
const MAX_TOKENS_HEADER: HeaderName = HeaderName::from_static("x-router-max-tokens");
/// Milliseconds spent waiting for a cooling model to recover, when the request waited.
const WAITED_HEADER: HeaderName = HeaderName::from_static("x-router-waited-ms");
/// The conversation's key (wins over the body's `session_id` and `user`).
pub const SESSION_HEADER: &str = "x-session-id";
/// A request's choice of pick: `weighted` or `uniform` (else the configured default).
pub const PICK_REQUEST_HEADER: &str = "x-router-pick";

/// A chat request body (JSON content type checked, size limited, parsed once) and the
/// request's `x-router-seed`, read here so that no handler copies the header map.
#[derive(Debug)]
pub struct ChatBody(pub ChatRequest, pub Option<u64>);

impl FromRequest<AppState> for ChatBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let headers = RouteHeaders::read(req.headers()).map_err(ApiError::bad_request)?;
        let bytes = json_body(state, req).await?;
        let mut req = ChatRequest::from_bytes(bytes).map_err(|e| ApiError::from_route(&RouteError::Request(e)))?;
        let seed = headers.apply(&mut req).map_err(|e| ApiError::from_route(&RouteError::Request(e)))?;
        Ok(ChatBody(req, seed))
    }
}

/// A JSON answer's content type, made at compile time rather than checked byte by byte
/// on every answer.
pub const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Marks an answer's `headers` as an event stream's (every surface's): its content type,
/// and no caching.
pub fn event_stream(headers: &mut HeaderMap) {
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

/// A request's JSON body, as every surface reads it: refused when its content type is
/// not JSON or it is larger than the body limit.
pub async fn json_body(state: &AppState, req: Request) -> Result<Bytes, ApiError> {
    let ct = req.headers().get(header::CONTENT_TYPE);
    if !ct.is_some_and(is_json) {
        let got = ct.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        return Err(ApiError::unsupported_media_type(got.as_deref()));
    }
    Bytes::from_request(req, state).await.map_err(|r| ApiError::from_bytes_rejection(&r, state.max_body_size))
}

/// The routing headers every surface reads (chat, Messages, Responses): the seed, the
/// session key and the choice of pick.
#[derive(Debug, Default)]
pub struct RouteHeaders {
    pub seed: Option<u64>,
    /// `x-session-id`, trimmed.
    pub session: Option<String>,
    pub weighted: Option<bool>,
}

impl RouteHeaders {
    /// Reads them; the error is the message for a 400 in the caller's API shape.
    pub fn read(headers: &HeaderMap) -> Result<Self, &'static str> {
        let session = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(|s| s.trim().to_owned());
        Ok(RouteHeaders { seed: header_seed(headers)?, session, weighted: header_pick(headers)? })
    }

    /// Sets the session key and the pick on the request; returns the seed. Fails on a
    /// session key over the core's limit.
    pub fn apply(self, req: &mut ChatRequest) -> Result<Option<u64>, RequestError> {
        if let Some(key) = self.session {
            req.set_session_key(&key)?;
        }
        if let Some(weighted) = self.weighted {
            req.set_weighted(weighted);
        }
        Ok(self.seed)
    }
}

/// `application/json` or any `application/*+json`, with parameters (`; charset=utf-8`).
pub fn is_json(v: &HeaderValue) -> bool {
    let Ok(s) = v.to_str() else { return false };
    let mime = s.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("application/json")
        || (mime.get(..12).is_some_and(|p| p.eq_ignore_ascii_case("application/")) && mime.ends_with("+json"))
}

/// `x-router-seed`, when present.
fn header_seed(headers: &HeaderMap) -> Result<Option<u64>, &'static str> {
    headers
        .get(SEED_HEADER)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or("`x-router-seed` must be an unsigned 64-bit integer")
        })
        .transpose()
}

/// `x-router-pick` on a request: `weighted` or `uniform`, when present.
fn header_pick(headers: &HeaderMap) -> Result<Option<bool>, &'static str> {
    headers
        .get(PICK_REQUEST_HEADER)
        .map(|v| match v.to_str().map(str::trim) {
            Ok(s) if s.eq_ignore_ascii_case("weighted") => Ok(true),
            Ok(s) if s.eq_ignore_ascii_case("uniform") => Ok(false),
            _ => Err("`x-router-pick` must be `weighted` or `uniform`"),
        })
        .transpose()
}

/// The decimal forms of the counts most answers carry, as static header values.
const SMALL_COUNTS: [&str; 32] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19", "20",
    "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31",
];

/// A count as a header value; below 32 without allocating (`HeaderValue::from(usize)`
/// copies its digits into a new buffer).
fn count_value(n: usize) -> HeaderValue {
    SMALL_COUNTS.get(n).map_or_else(|| HeaderValue::from(n), |s| HeaderValue::from_static(s))
}

fn router_headers(headers: &mut HeaderMap, report: &RouteReport) {
    if let Some(v) = report.model.as_ref().and_then(|m| HeaderValue::from_str(m.as_str()).ok()) {
        headers.insert(MODEL_HEADER, v);
    }
    headers.insert(ATTEMPTS_HEADER, count_value(report.attempts.len()));
    headers.insert(CANDIDATES_HEADER, count_value(report.candidates));
    if !report.attempts.is_empty() {
        headers.insert(PICK_HEADER, HeaderValue::from_static(report.pick.as_str()));
    }
    if let Some(n) = report.max_tokens {
        headers.insert(MAX_TOKENS_HEADER, HeaderValue::from(n));
    }
    if !report.waited.is_zero() {
        headers.insert(WAITED_HEADER, HeaderValue::from(u64::try_from(report.waited.as_millis()).unwrap_or(u64::MAX)));
    }
}

/// `POST /api/v1/chat/completions` and `/v1/chat/completions`.
pub async fn chat(
    State(state): State<AppState>,
    WantsMetadata(wants_metadata): WantsMetadata,
    ChatBody(req, seed): ChatBody,
) -> Response {
    let (result, mut decision) = route(&state, &req, seed).await;
    let seed = decision.seed();
    let (mut resp, report) = match result {
        Ok(Routed { response, report }) => {
            let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
            let (mut passed, content_type) = upstream_headers(response.headers);
            let body = if wants_metadata {
                crate::metadata::attach(&state.router, &req, seed, &report, response.body)
            } else {
                response.body
            };
            let body = match body {
                UpstreamBody::Full(bytes) => {
                    let ct = content_type.unwrap_or(JSON);
                    passed.insert(header::CONTENT_TYPE, ct);
                    Body::from(bytes)
                }
                UpstreamBody::Stream(stream) => {
                    event_stream(&mut passed);
                    Body::from_stream(stream)
                }
            };
            let mut resp = (status, body).into_response();
            *resp.headers_mut() = passed;
            (resp, report)
        }
        Err(RouteFailure { error, report }) => {
            decision.failed(&error);
            let mut e = ApiError::from_route(&error);
            if wants_metadata {
                e = crate::metadata::on_error(e, &state.router, &req, seed, &report, &error);
            }
            (e.into_response(), report)
        }
    };
    decision.finish(&mut resp, report);
    resp
}

/// Routes one chat request as `/chat/completions` does; every surface (chat, Messages,
/// Responses) calls it with its (translated) request, maps the result into its own
/// shape, then hands the report to [`Decision::finish`] so that the `x-router-*`
/// headers, the decision log, the dashboard and the metrics see it the same way.
pub async fn route(state: &AppState, req: &ChatRequest, seed: Option<u64>) -> (Result<Routed, RouteFailure>, Decision) {
    let decision = decide(state, req, seed);
    // Metered: an answer charged against a token budget settles its charge from its usage.
    (state.router.route_metered(req, decision.seed()).await, decision)
}

/// The decision about to be made for `req`, with its seed (`seed`, else a fresh one):
/// for a caller that routes it in several requests of its own (an embeddings batch
/// sent in chunks).
pub fn decide(state: &AppState, req: &ChatRequest, seed: Option<u64>) -> Decision {
    let seed = seed.unwrap_or_else(|| state.seeds.next());
    let context = DecisionContext {
        requirements: *req.requirements(),
        targets: req.targets().to_vec(),
        seed,
        stream: req.is_stream(),
        error: None,
    };
    Decision { context }
}

/// A routed request's decision, until its response is built.
#[derive(Debug)]
pub struct Decision {
    context: DecisionContext,
}

impl Decision {
    /// The seed the pick used.
    pub fn seed(&self) -> u64 {
        self.context.seed
    }

    /// Notes the failure for the decision log, redacted and bounded: the message may
    /// quote an upstream's error body.
    pub fn failed(&mut self, error: &RouteError) {
        self.context.error = Some((error.error_type(), router_core::redact(&error.to_string(), &[])));
    }

    /// Adds the `x-router-*` headers and hands the decision to [`observe`].
    pub fn finish(self, resp: &mut Response, report: RouteReport) {
        router_headers(resp.headers_mut(), &report);
        // One extension rather than two: each is a boxed value in the response's map.
        resp.extensions_mut().insert(RoutedRequest { report, context: self.context });
    }
}

/// The upstream's headers that pass on to the client, and its content type apart.
pub fn upstream_headers(headers: Vec<(&'static str, String)>) -> (HeaderMap, Option<HeaderValue>) {
    let mut content_type = None;
    let mut passed = HeaderMap::with_capacity(headers.len() + 4);
    for (name, value) in headers {
        // `try_from(String)` keeps the value's buffer rather than copying it.
        let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) else {
            continue;
        };
        if n == header::CONTENT_TYPE {
            content_type = Some(v);
        } else {
            passed.insert(n, v);
        }
    }
    (passed, content_type)
}

/// What the chat handler hands to [`observe`] in the response's extensions.
#[derive(Clone, Debug)]
struct RoutedRequest {
    report: RouteReport,
    context: DecisionContext,
}

/// `POST /api/v1/router/explain`: the decision for a body, without forwarding it.
pub async fn explain(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    ChatBody(req, seed): ChatBody,
) -> Result<Response, ApiError> {
    // The header first, then `?seed=`, else the next from the server's source.
    let from_query = query.as_deref().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("seed=")));
    let seed = match (seed, from_query) {
        (Some(s), _) => s,
        (None, Some(q)) => q.parse().map_err(|_| ApiError::bad_request("`seed` must be an unsigned 64-bit integer"))?,
        (None, None) => state.seeds.next(),
    };
    let explanation = state.router.explain(&req, seed).map_err(|e| ApiError::from_route(&e))?;
    Ok(Json(explanation).into_response())
}

/// `GET /api/v1/models` and `/v1/models`.
pub async fn list_models(
    State(state): State<AppState>,
    query: Result<Query<ModelsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(&format!("invalid query: {}", e.body_text())))?;
    let snapshot = state.router.catalog();
    Ok(Json(models::list(&snapshot, state.router.now(), &q)).into_response())
}

pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// Whether the request may see the operator's details: always without client keys,
/// else with one of them.
fn operator(state: &AppState, headers: &HeaderMap) -> bool {
    !state.client_keys.required()
        || state.client_keys.accepts(headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes))
}

/// Ready once a catalog with models is loaded; says where it came from and how old it is
/// (the read model's [`Health`], serialized). With client keys set, a request without
/// one gets the status alone (what a load balancer needs), not the catalog, quota and
/// errors.
pub async fn readyz(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let full = operator(&state, &headers);
    let health = Health::read(&state);
    let ready = health.ready();
    if ready.status == Readiness::NotReady {
        let mut e =
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no catalog with free models is loaded", "not_ready");
        if full {
            e.body["error"]["metadata"]["catalog"] = serde_json::to_value(&ready.catalog).unwrap_or_default();
        }
        return e.into_response();
    }
    if !full {
        return Json(ReadyStatus { status: ready.status }).into_response();
    }
    Json(ready).into_response()
}

/// `GET /metrics` in the Prometheus text format (rendered by `crate::prom` from the
/// counters and the read model); with client keys set, only for a request carrying one
/// (Prometheus sends it with `authorization: {credentials: ...}`).
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !operator(&state, &headers) {
        let mut resp = ApiError::unauthorized().into_response();
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return resp;
    }
    let out = crate::prom::render(&state.metrics, &RouterView::read(&state));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}

/// A path of Anthropic's API (a doubled `/v1/v1/messages` from a base URL ending in
/// `/v1`) is answered in Anthropic's shape, with the fix.
pub async fn not_found(uri: Uri) -> Response {
    let path = uri.path();
    if crate::anthropic_errors::is_messages_path(path) {
        let mut e = ApiError::not_found(path);
        e.body["error"]["message"] = json!(format!("no route for {path}; {}", crate::anthropic_errors::BASE_URL_HINT));
        return crate::anthropic_errors::anthropic_error(e);
    }
    ApiError::not_found(path).into_response()
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let e = ApiError::method_not_allowed(method.as_str(), uri.path());
    if crate::anthropic_errors::is_messages_path(uri.path()) {
        return crate::anthropic_errors::anthropic_error(e);
    }
    e.into_response()
}

/// Refuses requests without one of the client keys, before their body is read.
/// The key is `Authorization: Bearer <key>`, or Anthropic's `x-api-key: <key>`.
pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    if state.client_keys.accepts(headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes))
        || state
            .client_keys
            .accepts_token(headers.get(crate::anthropic_errors::API_KEY_HEADER).map(HeaderValue::as_bytes))
    {
        return next.run(req).await;
    }
    if crate::anthropic_errors::is_messages_path(req.uri().path()) {
        return crate::anthropic_errors::anthropic_error(ApiError::unauthorized());
    }
    let mut resp = if crate::error::is_responses_path(req.uri().path()) {
        ApiError::unauthorized().into_openai_response()
    } else {
        ApiError::unauthorized().into_response()
    };
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

/// Counts every request and writes its one log line; for routed requests also the
/// attempts and the router's own overhead (total time minus upstream time).
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let mut resp = match crate::limits::refusal(state.max_body_size, req.headers(), req.uri().path()) {
        Some(refused) => refused,
        None if !state.hosts.accepts(req.headers()) => ApiError::new(
            StatusCode::FORBIDDEN,
            "the `Host` header names a host this router does not answer for; add it to `allowed_hosts`",
            "forbidden_host",
        )
        .into_response(),
        None => next.run(req).await,
    };
    let total = start.elapsed();
    let status = resp.status().as_u16();
    state.metrics.record_request(Endpoint::of_path(uri.path()), status);
    let total_us = u64::try_from(total.as_micros()).unwrap_or(u64::MAX);
    match resp.extensions_mut().remove::<RoutedRequest>() {
        Some(RoutedRequest { report, context }) => {
            let overhead = total.saturating_sub(report.upstream_time());
            // Said once: the provider is out of the pool after its first payment request.
            for a in report.attempts.iter().filter(|a| a.failure == Some(router_core::ErrorKind::PaymentRequired)) {
                tracing::warn!(
                    model = %a.model,
                    "a provider declared free asked for payment: it leaves the pool until its configuration or key changes"
                );
            }
            let model = report.model.clone();
            let (attempts, candidates) = (report.attempts.len(), report.candidates);
            let now = state.router.now();
            state.metrics.record_routed(now, context, report, status, total, overhead);
            tracing::info!(
                method = %method,
                path = uri.path(),
                status,
                model = model.as_ref().map_or("-", |m| m.as_str()),
                attempts,
                candidates,
                total_us,
                overhead_us = u64::try_from(overhead.as_micros()).unwrap_or(u64::MAX),
                "request"
            );
        }
        None => {
            tracing::info!(method = %method, path = uri.path(), status, model = "-", attempts = 0, total_us, "request");
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(ct: &str, expected: bool) {
        assert_eq!(is_json(&HeaderValue::from_str(ct).expect("header")), expected, "{ct}");
    }

    #[test]
    fn counts_read_the_same_from_the_table_and_beyond_it() {
        for n in [0, 1, 9, 10, 31, 32, 33, 100, 12_345] {
            assert_eq!(count_value(n), HeaderValue::from(n), "{n}");
        }
    }

    #[test]
    fn json_content_types() {
        check("application/json", true);
        check("Application/JSON; charset=utf-8", true);
        check("application/vnd.api+json", true);
        check("text/plain", false);
        check("application/x-www-form-urlencoded", false);
        check("multipart/form-data; boundary=x", false);
        check("application/jsonx", false);
    }
}
