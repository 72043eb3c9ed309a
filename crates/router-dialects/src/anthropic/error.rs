//! Errors in Anthropic's shape: `{"type":"error","error":{"type","message"}}`, the type
//! following the HTTP status as Anthropic's API uses it; and why a Messages request is refused.

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

/// The settings' names, for the errors that a setting decides.
pub const SERVE_CLAUDE_IDS_SETTING: &str = "messages_serve_claude_ids";
pub const REFUSE_SERVER_TOOLS_SETTING: &str = "messages_refuse_server_tools";

/// Why a Messages body was refused; each is a 400 (`invalid_request_error`) except
/// [`TranslateError::ClaudeModel`], a 404 (`not_found_error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("request body is not valid json: {0}")]
    Json(String),
    #[error("request body must be a json object")]
    NotAnObject,
    #[error("`{path}`: {problem}")]
    Invalid { path: String, problem: String },
    #[error(
        "model `{0}` is a paid Anthropic model and this router never forwards to one; use `openrouter/free`, or set \
         `{SERVE_CLAUDE_IDS_SETTING}` to serve Claude ids from the free models"
    )]
    ClaudeModel(String),
    #[error(
        "tool `{0}` is a server tool, which a free model cannot run (and which can bill); leave it out, or unset \
         `{REFUSE_SERVER_TOOLS_SETTING}` to drop server tools"
    )]
    ServerTool(String),
}

impl TranslateError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            TranslateError::ClaudeModel(_) => 404,
            _ => 400,
        }
    }

    pub(crate) fn invalid(path: impl Into<String>, problem: impl Into<String>) -> Self {
        TranslateError::Invalid { path: path.into(), problem: problem.into() }
    }
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
