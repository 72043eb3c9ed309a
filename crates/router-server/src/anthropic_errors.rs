//! Anthropic's wire conventions that the whole server needs, apart from the Messages
//! handlers so that the middlewares and fallbacks can use them: which paths speak
//! Anthropic's API, its key header, and any error in its shape.

use crate::error::ApiError;
use axum::response::{IntoResponse, Response};
use router_dialects::anthropic;

/// Anthropic's header for the client key (`Authorization: Bearer` works as well).
pub const API_KEY_HEADER: &str = "x-api-key";
/// What a client that asked for a Messages path the router does not have should change.
pub const BASE_URL_HINT: &str =
    "the Messages API is POST /v1/messages: set ANTHROPIC_BASE_URL to the router's root, without /v1";

/// Whether `path` is a Messages path, whose errors take Anthropic's shape.
pub fn is_messages_path(path: &str) -> bool {
    path.ends_with("/messages") || path.ends_with("/messages/count_tokens")
}

/// Any router error in Anthropic's shape, its status and `Retry-After` kept. The
/// message is the router's (it names the setting, the model, the limit).
pub fn anthropic_error(e: ApiError) -> Response {
    let message = e.body["error"]["message"].as_str().unwrap_or("the router could not serve the request").to_owned();
    ApiError { body: anthropic::error_body(e.status.as_u16(), &message), ..e }.into_response()
}
