//! Lenient field readers over `serde_json::Value`: one odd field (a number id, a float
//! `created`) never makes a whole answer or chunk unreadable.

use super::types::{ChatError, Usage};
use serde_json::Value;

/// A string field; numbers are written out, anything else is absent.
pub(super) fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A non-negative integer field (floats truncated, negatives and text absent).
pub(super) fn count(v: &Value, key: &str) -> Option<u64> {
    let n = v.get(key)?.as_number()?;
    n.as_u64().or_else(|| n.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64))
}

/// Message or delta content: a string, or parts whose `text` is joined.
pub(super) fn content(v: &Value) -> Option<String> {
    match v.get("content")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let joined: String = parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect();
            Some(joined)
        }
        _ => None,
    }
}

/// The reasoning text: `reasoning`, else `reasoning_content` (providers use either).
pub(super) fn reasoning(v: &Value) -> Option<String> {
    v.get("reasoning")
        .and_then(Value::as_str)
        .or_else(|| v.get("reasoning_content").and_then(Value::as_str))
        .map(str::to_owned)
}

pub(super) fn usage(v: &Value) -> Option<Usage> {
    let u = v.get("usage").filter(|u| u.is_object())?;
    let detail = |outer: &str, key: &str| u.get(outer).and_then(|d| count(d, key)).unwrap_or(0);
    Some(Usage {
        prompt_tokens: count(u, "prompt_tokens").unwrap_or(0),
        completion_tokens: count(u, "completion_tokens").unwrap_or(0),
        total_tokens: count(u, "total_tokens").unwrap_or(0),
        cached_tokens: detail("prompt_tokens_details", "cached_tokens"),
        reasoning_tokens: detail("completion_tokens_details", "reasoning_tokens"),
    })
}

/// The top-level `error` object, when there is one (not null).
pub(super) fn error(v: &Value) -> Option<ChatError> {
    let e = v.get("error").filter(|e| !e.is_null())?;
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
    Some(ChatError { status, kind, message })
}

/// The first choice (the router asks for one; `n` is not offered by the dialects).
pub(super) fn first_choice(v: &Value) -> Option<&Value> {
    v.get("choices")?.as_array()?.first()
}
