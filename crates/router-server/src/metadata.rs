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
use serde::de::IgnoredAny;
use serde_json::Value;
use std::collections::BTreeMap;
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
        Body::Full(bytes) => Body::Full(append_member(bytes, &meta)),
        Body::Stream(stream) => {
            let model = report.model.as_ref().map_or("", |m| m.as_str());
            Body::Stream(sse::insert_before_done(stream, sse::member_chunk(model, METADATA_MEMBER, &meta)))
        }
    }
}

/// `bytes` (a JSON object) with `openrouter_metadata` added as its last member; every
/// other byte stays as upstream sent it. A body that is not a JSON object is passed on
/// as it is.
fn append_member(bytes: Bytes, meta: &Value) -> Bytes {
    let is_object = serde_json::from_slice::<BTreeMap<String, IgnoredAny>>(&bytes).is_ok();
    let Some(end) = bytes.iter().rposition(|&b| b == b'}').filter(|_| is_object) else { return bytes };
    let before = bytes[..end].trim_ascii_end();
    let empty = before.last() == Some(&b'{');
    let mut out = Vec::with_capacity(bytes.len() + 1024);
    out.extend_from_slice(before);
    out.extend_from_slice(if empty { b"\"" } else { b",\"" });
    out.extend_from_slice(METADATA_MEMBER.as_bytes());
    out.extend_from_slice(b"\":");
    if serde_json::to_writer(&mut out, meta).is_err() {
        return bytes;
    }
    out.extend_from_slice(&bytes[end..]);
    Bytes::from(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_member_is_appended_without_touching_other_bytes() {
        let meta = json!({"strategy": "free"});
        let body = Bytes::from_static(b"{\"z\":1, \"a\":{\"b\":[]}}\n");
        let out = append_member(body, &meta);
        assert_eq!(&out[..], b"{\"z\":1, \"a\":{\"b\":[]},\"openrouter_metadata\":{\"strategy\":\"free\"}}\n");
        assert_eq!(
            &append_member(Bytes::from_static(b"{ }"), &meta)[..],
            b"{\"openrouter_metadata\":{\"strategy\":\"free\"}}"
        );
        for not_object in [&b"[1]"[..], b"not json", b"{\"a\":"] {
            assert_eq!(&append_member(Bytes::copy_from_slice(not_object), &meta)[..], not_object);
        }
    }
}
