//! Every error a client can see, as an HTTP response in OpenRouter's shape
//! `{"error":{"code","message","metadata"}}`, including axum's own rejections.

use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use router_core::RouteError;
use router_core::error::error_body;
use serde_json::Value;
use std::time::Duration;

/// An error response: status, body, and `Retry-After` when the client should wait.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: &str, error_type: &str) -> Self {
        ApiError { status, body: error_body(status.as_u16(), message, error_type), retry_after: None }
    }

    pub fn bad_request(message: &str) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message, "invalid_request")
    }

    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or invalid client key: send `Authorization: Bearer <key>` with one of the router's keys",
            "unauthorized",
        )
    }

    pub fn not_found(path: &str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, &format!("no route for {path}"), "not_found")
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("method {method} is not allowed on {path}"),
            "method_not_allowed",
        )
    }

    pub fn unsupported_media_type(got: Option<&str>) -> Self {
        let got = got.map_or_else(|| "no content type".to_owned(), |g| format!("content type `{g}`"));
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("expected `content-type: application/json`, got {got}"),
            "unsupported_media_type",
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body is larger than the limit of {limit} bytes"),
            "payload_too_large",
        )
    }

    pub fn from_route(e: &RouteError) -> Self {
        ApiError {
            status: StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_GATEWAY),
            body: e.to_json(),
            retry_after: if matches!(e.status(), 429 | 503) { e.retry_after() } else { None },
        }
    }

    /// A body that could not be read: over the limit, or the connection failed.
    pub fn from_bytes_rejection(r: &BytesRejection, limit: usize) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::payload_too_large(limit);
        }
        if let Some(timeout) = source_of::<BodyTimeout>(r) {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                &format!("the request body stopped arriving: {timeout}"),
                "request_timeout",
            );
        }
        ApiError::new(r.status(), &format!("cannot read the request body: {}", r.body_text()), "invalid_request")
    }
}

/// The paths of OpenAI's Responses API, whose errors are in OpenAI's shape (see
/// [`ApiError::into_openai_response`]).
pub fn is_responses_path(path: &str) -> bool {
    matches!(path, "/v1/responses" | "/api/v1/responses")
}

impl ApiError {
    /// The error in OpenAI's shape `{"error":{"message","type","param","code"}}`, with its
    /// status and `Retry-After` kept (a body already in that shape is kept as it is).
    pub fn into_openai_response(self) -> Response {
        let body = if self.body["error"]["type"].is_string() {
            self.body
        } else {
            router_dialects::responses::from_openrouter(self.status.as_u16(), &self.body)
        };
        ApiError { body, ..self }.into_response()
    }
}

/// The first error of type `T` in `e`'s source chain.
fn source_of<'a, T: std::error::Error + 'static>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a T> {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(t) = s.downcast_ref::<T>() {
            return Some(t);
        }
        source = s.source();
    }
    None
}

/// `Retry-After` in whole seconds, rounded up, at least 1.
pub fn retry_after_secs(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body).unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(d) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs(d)));
        }
        resp
    }
}

/// The request body stopped arriving for longer than the body timeout (see
/// [`crate::limits::TimeoutBody`]).
#[derive(Debug, thiserror::Error)]
#[error("no request body bytes for {} s", .0.as_secs())]
pub struct BodyTimeout(pub std::time::Duration);

#[cfg(test)]
mod tests {
    use super::*;

    fn check(d: Duration, expected: u64) {
        assert_eq!(retry_after_secs(d), expected, "{d:?}");
    }

    #[test]
    fn retry_after_rounds_up() {
        check(Duration::ZERO, 1);
        check(Duration::from_millis(1), 1);
        check(Duration::from_secs(30), 30);
        check(Duration::from_millis(30_001), 31);
    }

    #[test]
    fn bodies_have_openrouter_shape() {
        let e = ApiError::unsupported_media_type(Some("text/plain"));
        assert_eq!(e.body["error"]["code"], 415);
        assert_eq!(e.body["error"]["metadata"]["error_type"], "unsupported_media_type");
        assert!(e.body["error"]["message"].as_str().is_some_and(|m| m.contains("text/plain")));
    }
}
