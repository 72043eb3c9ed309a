//! Errors in Anthropic's shape: `{"type":"error","error":{"type","message"}}`, the type
//! following the HTTP status as Anthropic's API uses it.

use serde_json::{Value, json};

/// Anthropic's error type for an HTTP status.
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        400 | 405 | 415 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        408 | 504 => "timeout_error",
        _ if (400..500).contains(&status) => "invalid_request_error",
        _ => "api_error",
    }
}

/// An error body for `status`.
pub fn error_body(status: u16, message: &str) -> Value {
    json!({ "type": "error", "error": { "type": error_type_for_status(status), "message": message } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_anthropic_types() {
        for (status, kind) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (404, "not_found_error"),
            (429, "rate_limit_error"),
            (503, "overloaded_error"),
            (502, "api_error"),
            (504, "timeout_error"),
        ] {
            assert_eq!(error_body(status, "m"), json!({"type":"error","error":{"type":kind,"message":"m"}}));
        }
    }
}
