//! `openrouter_metadata` on request: the header that asks for it, and its place in the
//! answer (a JSON body's member, a final stream chunk before `[DONE]`, beside `error`).
//! The object itself is built by the core ([`router_core::metadata`]). Without the
//! header nothing here runs and answers are byte for byte as without this module.

use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use bytes::Bytes;
use router_core::metadata::{
    LEGACY_METADATA_HEADER, METADATA_HEADER, METADATA_MEMBER, is_enabled, openrouter_metadata, requested,
};
use router_core::{Body, ChatRequest, RouteError, RouteReport, Router, sse};
use serde_json::{Map, Value};
use std::convert::Infallible;

/// Whether the request asked for `openrouter_metadata` (`X-OpenRouter-Metadata:
/// enabled`, or the legacy `X-OpenRouter-Experimental-Metadata`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WantsMetadata(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for WantsMetadata {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let asked = [METADATA_HEADER, LEGACY_METADATA_HEADER]
            .iter()
            .any(|name| parts.headers.get(*name).is_some_and(|v| is_enabled(v.as_bytes())));
        Ok(WantsMetadata(asked))
    }
}

/// The metadata object for `req`'s routing.
fn build(router: &Router, req: &ChatRequest, seed: u64, report: &RouteReport, error: Option<&RouteError>) -> Value {
    let why = router.explain(req, seed).ok();
    openrouter_metadata(&requested(req), report, error, seed, why.as_ref())
}

/// An answer with `openrouter_metadata`: a JSON body gets the member (a body that is
/// not a JSON object is passed on as it is); a stream gets a final chunk carrying it
/// before `data: [DONE]`.
pub fn attach(router: &Router, req: &ChatRequest, seed: u64, report: &RouteReport, body: Body) -> Body {
    let meta = build(router, req, seed, report, None);
    match body {
        Body::Full(bytes) => match serde_json::from_slice::<Map<String, Value>>(&bytes) {
            Ok(mut obj) => {
                obj.insert(METADATA_MEMBER.into(), meta);
                serde_json::to_vec(&obj).map_or(Body::Full(bytes), |v| Body::Full(Bytes::from(v)))
            }
            Err(_) => Body::Full(bytes),
        },
        Body::Stream(stream) => {
            let model = report.model.as_ref().map_or("", |m| m.as_str());
            Body::Stream(sse::insert_before_done(stream, sse::member_chunk(model, METADATA_MEMBER, &meta)))
        }
    }
}

/// An error answer with `openrouter_metadata` beside `error`.
pub fn on_error(
    mut err: ApiError,
    router: &Router,
    req: &ChatRequest,
    seed: u64,
    report: &RouteReport,
    error: &RouteError,
) -> ApiError {
    err.body[METADATA_MEMBER] = build(router, req, seed, report, Some(error));
    err
}
