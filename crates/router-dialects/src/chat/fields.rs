//! The read members ([`super::wire`]) as what a dialect uses: token counts, an error,
//! the reasoning text, a message's parts.

use super::types::{ChatError, Usage};
use super::wire::{Message, UsageIn};
use serde_json::Value;

pub(super) fn usage(u: &UsageIn) -> Usage {
    Usage {
        prompt_tokens: u.prompt_tokens.unwrap_or(0),
        completion_tokens: u.completion_tokens.unwrap_or(0),
        total_tokens: u.total_tokens.unwrap_or(0),
        cached_tokens: u.cached_tokens.unwrap_or(0),
        reasoning_tokens: u.reasoning_tokens.unwrap_or(0),
    }
}

/// The reasoning text: `reasoning`, else `reasoning_content` (providers use either).
pub(super) fn reasoning<'m>(m: &'m Message<'_>) -> Option<&'m str> {
    m.reasoning.as_deref().or(m.reasoning_content.as_deref())
}

/// A string field of a tree; numbers are written out, anything else is absent.
fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The top-level `error` member (not null), read from its tree: errors are rare.
pub(super) fn error(e: &Value) -> ChatError {
    let code = e.get("code");
    let status = code.and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok());
    let kind = e
        .get("metadata")
        .and_then(|m| text(m, "error_type"))
        .or_else(|| code.and_then(Value::as_str).map(str::to_owned))
        .or_else(|| text(e, "type"));
    let message = match e {
        Value::String(s) => s.clone(),
        _ => text(e, "message").unwrap_or_else(|| "the upstream reported an error".to_owned()),
    };
    ChatError { status, kind, message }
}
