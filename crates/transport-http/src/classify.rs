//! Error classification: turns an upstream failure (status, headers, OpenRouter error
//! body) into a typed [`TransportError`] whose kind the core can act on. Pure.

use reqwest::header::HeaderMap;
use router_core::{ErrorKind, Timestamp, TransportError};
use serde_json::Value;
use std::time::Duration;

/// Longest upstream text kept in a message (raw provider errors can be whole pages).
const MAX_TEXT: usize = 1000;

/// A daily limit's `X-RateLimit-Reset` lies more than this far ahead; a per-minute
/// limit resets within a minute.
const DAILY_RESET_HORIZON_MS: u64 = 5 * 60_000;

/// The daily free-model caps OpenRouter announces in `X-RateLimit-Limit`.
const DAILY_LIMITS: &[u64] = &[50, 1000];

/// Classifies a non-2xx upstream answer. `now` dates the rate-limit headers.
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8], now: Timestamp) -> TransportError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error")).filter(|e| e.is_object());
    let upstream_message = error.and_then(|e| e.get("message")).and_then(Value::as_str);
    let metadata = error.and_then(|e| e.get("metadata")).filter(|m| !m.is_null()).cloned();
    let raw = metadata.as_ref().and_then(|m| m.get("raw")).and_then(raw_text);

    let mut message = match upstream_message {
        Some(m) if !m.trim().is_empty() => m.trim().to_owned(),
        // Not OpenRouter's JSON (a proxy's HTML page, an empty body): keep a little of it.
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() || parsed.is_some() {
                format!("upstream answered {status}")
            } else {
                format!("upstream answered {status}: {}", truncate(text))
            }
        }
    };
    // The real reason behind "Provider returned error" is in `metadata.raw`.
    if let Some(raw) = raw.as_deref().map(str::trim).filter(|r| !r.is_empty() && !message.contains(*r)) {
        message = format!("{message}: {}", truncate(raw));
    }

    let text = format!("{} {}", message, error_type(metadata.as_ref())).to_lowercase();
    let limit =
        header_u64(headers, "x-ratelimit-limit").or_else(|| meta_header(metadata.as_ref(), "X-RateLimit-Limit"));
    let remaining = header_u64(headers, "x-ratelimit-remaining")
        .or_else(|| meta_header(metadata.as_ref(), "X-RateLimit-Remaining"));
    let reset_at = header_u64(headers, "x-ratelimit-reset")
        .or_else(|| meta_header(metadata.as_ref(), "X-RateLimit-Reset"))
        .map(epoch_to_timestamp);
    let availability = error.is_some_and(|e| e.get("availability").is_some_and(|a| !a.is_null()));

    let kind = match status {
        429 => {
            let top = upstream_message.unwrap_or("").to_lowercase();
            rate_limit_kind(&top, &text, metadata.as_ref(), limit, remaining, reset_at, now)
        }
        401 | 402 => ErrorKind::Auth,
        // A moderation refusal is about this request, not the key.
        403 if text.contains("flagged") || metadata.as_ref().is_some_and(|m| m.get("flagged_input").is_some()) => {
            ErrorKind::BadRequest
        }
        403 => ErrorKind::Auth,
        404 | 410 => ErrorKind::ModelUnavailable,
        _ if availability || is_unavailable(&text) => ErrorKind::ModelUnavailable,
        408 => ErrorKind::Timeout,
        _ if is_context_length(&text) && (400..500).contains(&status) => ErrorKind::ContextTooLong,
        400..=499 => ErrorKind::BadRequest,
        500..=599 => ErrorKind::ServerError,
        _ => ErrorKind::Protocol,
    };

    let mut err = TransportError::new(kind, message).with_status(status);
    err.metadata = metadata;
    if let Some(d) = retry_after(headers) {
        err = err.with_retry_after(d);
    }
    if let Some(t) = reset_at.filter(|_| matches!(kind, ErrorKind::DailyCapReached | ErrorKind::RateLimitedAccount)) {
        err = err.with_reset_at(t);
    }
    err
}

/// `top` is OpenRouter's own message (the account's limits are named there); `text`
/// adds the provider's raw message, which must not decide an account-wide block.
fn rate_limit_kind(
    top: &str,
    text: &str,
    metadata: Option<&Value>,
    limit: Option<u64>,
    remaining: Option<u64>,
    reset_at: Option<Timestamp>,
    now: Timestamp,
) -> ErrorKind {
    if top.contains("free-models-per-day") {
        return ErrorKind::DailyCapReached;
    }
    if top.contains("free-models-per-min") {
        return ErrorKind::RateLimitedAccount;
    }
    // A provider's own 429, relayed by OpenRouter: only this model is affected.
    if text.contains("rate-limited upstream")
        || text.contains("provider returned error")
        || metadata.is_some_and(|m| m.get("provider_name").is_some_and(|p| !p.is_null()))
    {
        return ErrorKind::RateLimitedModel;
    }
    if remaining == Some(0) {
        let daily_limit = limit.is_some_and(|l| DAILY_LIMITS.contains(&l));
        let far_reset =
            reset_at.is_some_and(|r| r.saturating_since(now) > Duration::from_millis(DAILY_RESET_HORIZON_MS));
        return if daily_limit || far_reset { ErrorKind::DailyCapReached } else { ErrorKind::RateLimitedAccount };
    }
    if limit.is_some() || remaining.is_some() {
        return ErrorKind::RateLimitedAccount;
    }
    // A bare 429 names no scope: assume the model, so another one may still answer.
    ErrorKind::RateLimitedModel
}

const UNAVAILABLE: &[&str] = &[
    "no endpoints found",
    "deprecated",
    "no longer available",
    "is not available",
    "not a valid model id",
    "model not found",
    "free period has ended",
    "free variant",
    "has been discontinued",
];

fn is_unavailable(text: &str) -> bool {
    UNAVAILABLE.iter().any(|p| text.contains(p))
}

const CONTEXT_LENGTH: &[&str] = &[
    "maximum context length",
    "context length",
    "context_length",
    "context window",
    "too many tokens",
    "prompt is too long",
    "input is too long",
];

fn is_context_length(text: &str) -> bool {
    CONTEXT_LENGTH.iter().any(|p| text.contains(p))
}

fn error_type(metadata: Option<&Value>) -> &str {
    metadata.and_then(|m| m.get("error_type")).and_then(Value::as_str).unwrap_or("")
}

/// `metadata.raw` is usually a string, sometimes a provider's JSON object.
fn raw_text(raw: &Value) -> Option<String> {
    match raw {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(MAX_TEXT) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// OpenRouter repeats the rate-limit headers in `metadata.headers`.
fn meta_header(metadata: Option<&Value>, name: &str) -> Option<u64> {
    let v = metadata?.get("headers")?.get(name)?;
    v.as_u64().or_else(|| v.as_str()?.trim().parse().ok())
}

/// `X-RateLimit-Reset` is epoch milliseconds; a value that can only be seconds
/// (before 1973 as milliseconds) is read as seconds.
fn epoch_to_timestamp(v: u64) -> Timestamp {
    if v < 100_000_000_000 { Timestamp::from_secs(v) } else { Timestamp::from_millis(v) }
}

/// `Retry-After` in (possibly fractional) seconds. HTTP dates are not used by OpenRouter.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?.trim();
    let secs: f64 = v.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    const NOW: Timestamp = Timestamp::from_millis(1_780_000_000_000);

    /// Classifies `body` with `status` and `headers` and checks its kind, and that the
    /// message contains `message_part`.
    fn check(status: u16, headers: &[(&str, &str)], body: &str, kind: ErrorKind, message_part: &str) -> TransportError {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(HeaderName::from_bytes(k.as_bytes()).expect("name"), HeaderValue::from_str(v).expect("value"));
        }
        let err = classify(status, &map, body.as_bytes(), NOW);
        assert_eq!(err.kind, kind, "{status} {body}: {err:?}");
        assert_eq!(err.status, Some(status));
        assert!(err.message.contains(message_part), "{:?} lacks {message_part:?}", err.message);
        err
    }

    const UPSTREAM_429: &str = r#"{"error":{"code":429,"message":"Provider returned error","metadata":{"provider_name":"Chutes","raw":"x/y:free is temporarily rate-limited upstream. Please retry shortly"}},"user_id":"user_1"}"#;

    #[test]
    fn rate_limits_by_scope() {
        let e = check(429, &[("retry-after", "7")], UPSTREAM_429, ErrorKind::RateLimitedModel, "rate-limited upstream");
        assert!(e.message.starts_with("Provider returned error: "), "{}", e.message);
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(e.metadata.as_ref().and_then(|m| m.get("provider_name")), Some(&Value::from("Chutes")));
        assert_eq!(e.reset_at, None);

        let daily = r#"{"error":{"code":429,"message":"Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day","metadata":{"headers":{"X-RateLimit-Limit":"50","X-RateLimit-Remaining":"0","X-RateLimit-Reset":"1780012800000"}}}}"#;
        let headers =
            [("x-ratelimit-limit", "50"), ("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1780012800000")];
        let e = check(429, &headers, daily, ErrorKind::DailyCapReached, "free-models-per-day");
        assert_eq!(e.reset_at, Some(Timestamp::from_millis(1_780_012_800_000)));
        // The reset from the body's copy of the headers when the real ones are missing.
        let e = check(429, &[], daily, ErrorKind::DailyCapReached, "free-models-per-day");
        assert_eq!(e.reset_at, Some(Timestamp::from_millis(1_780_012_800_000)));

        let minute = r#"{"error":{"code":429,"message":"Rate limit exceeded: free-models-per-min. "}}"#;
        let e = check(
            429,
            &[("x-ratelimit-limit", "20"), ("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1780000060000")],
            minute,
            ErrorKind::RateLimitedAccount,
            "per-min",
        );
        assert_eq!(e.reset_at, Some(Timestamp::from_millis(1_780_000_060_000)));

        // A provider's own daily quota in `raw` concerns that model, not the account.
        let provider_daily = r#"{"error":{"code":429,"message":"Provider returned error","metadata":{"provider_name":"Google","raw":"Quota exceeded: free-models-per-day, limit 50 per day"}}}"#;
        check(429, &[], provider_daily, ErrorKind::RateLimitedModel, "Quota exceeded");

        // Only the headers: a daily limit value or a far reset means the daily cap.
        let bare = r#"{"error":{"code":429,"message":"Rate limit exceeded"}}"#;
        check(
            429,
            &[("x-ratelimit-limit", "1000"), ("x-ratelimit-remaining", "0")],
            bare,
            ErrorKind::DailyCapReached,
            "",
        );
        check(
            429,
            &[("x-ratelimit-limit", "7"), ("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1780040000")],
            bare,
            ErrorKind::DailyCapReached,
            "",
        );
        check(
            429,
            &[("x-ratelimit-limit", "20"), ("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1780000030000")],
            bare,
            ErrorKind::RateLimitedAccount,
            "",
        );
        check(429, &[], bare, ErrorKind::RateLimitedModel, "Rate limit exceeded");
        let e = check(429, &[("retry-after", "1.5")], "", ErrorKind::RateLimitedModel, "upstream answered 429");
        assert_eq!(e.retry_after, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn unavailable_models() {
        check(
            404,
            &[],
            r#"{"error":{"code":404,"message":"No endpoints found for a/b:free."}}"#,
            ErrorKind::ModelUnavailable,
            "No endpoints found",
        );
        check(404, &[], "not json", ErrorKind::ModelUnavailable, "upstream answered 404: not json");
        check(
            400,
            &[],
            r#"{"error":{"code":400,"message":"a/b:free is not a valid model ID"}}"#,
            ErrorKind::ModelUnavailable,
            "valid model",
        );
        check(
            400,
            &[],
            r#"{"error":{"code":400,"message":"The free variant of this model has been deprecated"}}"#,
            ErrorKind::ModelUnavailable,
            "deprecated",
        );
        check(
            503,
            &[],
            r#"{"error":{"code":503,"message":"Model unavailable","availability":{"code":"free_ended"}}}"#,
            ErrorKind::ModelUnavailable,
            "unavailable",
        );
        check(
            502,
            &[],
            r#"{"error":{"code":502,"message":"No endpoints found matching your data policy"}}"#,
            ErrorKind::ModelUnavailable,
            "data policy",
        );
    }

    #[test]
    fn server_errors() {
        for status in [500, 502, 503, 524, 529] {
            check(
                status,
                &[],
                r#"{"error":{"code":502,"message":"Provider returned error","metadata":{"provider_name":"X","raw":"overloaded"}}}"#,
                ErrorKind::ServerError,
                "overloaded",
            );
        }
        check(524, &[], "<html>A timeout occurred</html>", ErrorKind::ServerError, "timeout occurred");
        check(408, &[], r#"{"error":{"code":408,"message":"Request timed out"}}"#, ErrorKind::Timeout, "timed out");
        check(302, &[], "", ErrorKind::Protocol, "upstream answered 302");
    }

    #[test]
    fn the_requests_own_fault() {
        for (body, part) in [
            (
                r#"{"error":{"code":400,"message":"This endpoint's maximum context length is 8192 tokens. However, you requested about 9000 tokens"}}"#,
                "maximum context length",
            ),
            (
                r#"{"error":{"code":400,"message":"Provider returned error","metadata":{"raw":"{\"error\":\"prompt is too long: 210000 tokens > 200000 maximum\"}","provider_name":"A"}}}"#,
                "prompt is too long",
            ),
            (r#"{"error":{"code":400,"message":"Too many tokens in the input"}}"#, "Too many tokens"),
        ] {
            check(400, &[], body, ErrorKind::ContextTooLong, part);
        }
        check(
            413,
            &[],
            r#"{"error":{"code":413,"message":"Input exceeds the context length"}}"#,
            ErrorKind::ContextTooLong,
            "context length",
        );
        check(
            413,
            &[],
            r#"{"error":{"code":413,"message":"Payload too large"}}"#,
            ErrorKind::BadRequest,
            "Payload too large",
        );
        check(
            422,
            &[],
            r#"{"error":{"code":422,"message":"Invalid tool schema"}}"#,
            ErrorKind::BadRequest,
            "tool schema",
        );
        check(
            400,
            &[],
            r#"{"error":{"code":400,"message":"messages: field required"}}"#,
            ErrorKind::BadRequest,
            "field required",
        );
        check(
            403,
            &[],
            r#"{"error":{"code":403,"message":"Your input was flagged","metadata":{"reasons":["x"],"flagged_input":"..."}}}"#,
            ErrorKind::BadRequest,
            "flagged",
        );
    }

    #[test]
    fn key_problems() {
        check(
            401,
            &[],
            r#"{"error":{"code":401,"message":"No auth credentials found"}}"#,
            ErrorKind::Auth,
            "auth credentials",
        );
        check(402, &[], r#"{"error":{"code":402,"message":"Insufficient credits"}}"#, ErrorKind::Auth, "credits");
        check(403, &[], r#"{"error":{"code":403,"message":"Key limit exceeded"}}"#, ErrorKind::Auth, "Key limit");
    }

    #[test]
    fn long_raw_texts_are_cut() {
        let raw = "x".repeat(5000);
        let body =
            serde_json::json!({"error": {"code": 500, "message": "Provider returned error", "metadata": {"raw": raw}}});
        let e = check(500, &[], &body.to_string(), ErrorKind::ServerError, "xxx");
        assert!(e.message.len() < 1100, "{}", e.message.len());
        // The metadata itself is kept whole for the client.
        assert_eq!(e.metadata.and_then(|m| m["raw"].as_str().map(str::len)), Some(5000));
    }
}
