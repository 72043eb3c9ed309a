//! The errors a Responses client sees, in OpenAI's shape
//! `{"error":{"message","type","param","code"}}`.

use serde_json::{Value, json};

/// A request the router cannot translate or will not serve: answered 400.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidRequest {
    /// What is wrong, for a person.
    pub message: String,
    /// The offending member (`input[3].content[0]`, `store`), when there is one.
    pub param: Option<String>,
    /// A short, stable code (`stateless`, `unsupported_tool`, `invalid_value`, ...).
    pub code: &'static str,
}

impl InvalidRequest {
    pub(crate) fn new(message: impl Into<String>, param: impl Into<String>, code: &'static str) -> Self {
        InvalidRequest { message: message.into(), param: Some(param.into()), code }
    }

    /// The error body (the status is 400).
    pub fn body(&self) -> Value {
        error_body(400, &self.message, self.param.as_deref(), Some(self.code))
    }
}

/// OpenAI's `type` for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 | 404 | 405 | 409 | 413 | 414 | 415 | 422 | 431 => "invalid_request_error",
        401 => "authentication_error",
        402 => "insufficient_quota",
        403 => "permission_error",
        429 => "rate_limit_error",
        _ => "server_error",
    }
}

/// An error body in OpenAI's shape.
pub fn error_body(status: u16, message: &str, param: Option<&str>, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": error_type(status), "param": param, "code": code}})
}

/// An OpenRouter-shaped error body (`{"error":{"code":N,"message","metadata":{"error_type"}}}`,
/// the router's own) in OpenAI's shape, keeping the message, the case as `code` and the
/// metadata beside it.
pub fn from_openrouter(status: u16, body: &Value) -> Value {
    let error = body.get("error");
    let message = error.and_then(|e| e.get("message")).and_then(Value::as_str).unwrap_or("the request failed");
    let metadata = error.and_then(|e| e.get("metadata")).cloned();
    let code = metadata.as_ref().and_then(|m| m.get("error_type")).and_then(Value::as_str);
    let mut out = error_body(status, message, None, code);
    if let (Some(m), Some(e)) = (metadata, out.get_mut("error")) {
        e["metadata"] = m;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, body: Value, expected: Value) {
        assert_eq!(from_openrouter(status, &body), expected);
    }

    #[test]
    fn router_errors_keep_their_message_and_case() {
        check(
            429,
            json!({"error": {"code": 429, "message": "all free models are cooling", "metadata": {"error_type": "rate_limited"}}}),
            json!({"error": {"message": "all free models are cooling", "type": "rate_limit_error", "param": null,
                "code": "rate_limited", "metadata": {"error_type": "rate_limited"}}}),
        );
        check(
            502,
            json!({"nothing": true}),
            json!({"error": {"message": "the request failed", "type": "server_error", "param": null, "code": null}}),
        );
    }

    #[test]
    fn invalid_requests_name_their_param() {
        let e = InvalidRequest::new("no", "store", "stateless");
        assert_eq!(
            e.body(),
            json!({"error": {"message": "no", "type": "invalid_request_error", "param": "store", "code": "stateless"}})
        );
    }
}
