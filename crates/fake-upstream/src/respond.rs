//! The response shapes every route shares: a whole body with its type, an OpenRouter
//! error, and reading a request's JSON body and `model`.

use crate::behaviour::error_body;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use serde_json::Value;
use std::convert::Infallible;

pub(crate) type RespBody = UnsyncBoxBody<Bytes, Infallible>;

pub(crate) const JSON: &str = "application/json";

pub(crate) fn full(status: u16, content_type: &'static str, body: Bytes) -> Response<RespBody> {
    let mut resp = Response::new(Full::new(body).boxed_unsync());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A whole JSON answer with a behaviour's extra headers (one that is not a valid header
/// value is left out).
pub(crate) fn full_with(status: u16, headers: Vec<(&'static str, String)>, body: Bytes) -> Response<RespBody> {
    let mut resp = full(status, JSON, body);
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}

pub(crate) fn error(status: u16, message: &str) -> Response<RespBody> {
    full(status, JSON, error_body(status, message, None))
}

/// A request body as JSON and the `model` it names, or the 400 that says what is wrong.
pub(crate) async fn model_request(body: Incoming) -> Result<(Value, String), Response<RespBody>> {
    let Ok(body) = body.collect().await.map(http_body_util::Collected::to_bytes) else {
        return Err(error(400, "could not read the request body"));
    };
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return Err(error(400, "request body is not valid json"));
    };
    let Some(model) = json.get("model").and_then(Value::as_str).map(str::to_owned) else {
        return Err(error(400, "model is required"));
    };
    Ok((json, model))
}
