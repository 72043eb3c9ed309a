//! The OpenAI dialect of errors, spoken by declared providers and local servers:
//! `{"error":{"message","type","code"}}` (or Ollama's `{"error":"..."}`), Groq-style
//! `x-ratelimit-*-requests` headers, and the rules that say a "free" provider asks for
//! payment or that a request is too large for a token budget. One table, used for HTTP
//! error answers and for errors inside a 200 alike. Pure.

use super::Headers;
use super::openrouter::parse_retry_after;
use crate::upstream::{ErrorKind, TransportError};
use serde_json::Value;
use std::time::Duration;

/// How long a busy local server's model is passed over when it gives no `Retry-After`:
/// short, and never escalating (the server is busy, not rate-limiting anyone).
pub const LOCAL_BUSY_BACKOFF: Duration = Duration::from_secs(1);

/// The kind of an answer with `status`: checked against each provider's documented
/// errors (see the tests). `code`/`type` are the error object's; `text` is its message.
fn kind(status: u16, codes: [&str; 2], message: &str, body: &[u8], local: bool) -> ErrorKind {
    match status {
        _ if asks_for_payment(status, &codes, message) => ErrorKind::PaymentRequired,
        _ if too_large_for_budget(status, message, body) => ErrorKind::TooLargeForBudget,
        429 => ErrorKind::RateLimitedModel,
        503 if local => ErrorKind::RateLimitedModel,
        401..=403 => ErrorKind::Auth,
        404 | 410 => ErrorKind::ModelUnavailable,
        400 | 413 if codes[0] == "context_length_exceeded" || message.contains("context length") => {
            ErrorKind::ContextTooLong
        }
        408 | 504 => ErrorKind::Timeout,
        500..=599 => ErrorKind::ServerError,
        _ => ErrorKind::BadRequest,
    }
}

/// Classifies a non-2xx answer of an OpenAI-compatible server. A rate limit cools the
/// model until `Retry-After`, else until `x-ratelimit-reset-requests` (Groq's
/// durations such as `2m59.56s`); a local server's 429/503 is a short "busy".
pub fn classify_openai(status: u16, header: Headers<'_>, body: &[u8], local: bool) -> TransportError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let fallback = || {
        let text = String::from_utf8_lossy(body);
        let text: String = text.trim().chars().take(300).collect();
        if text.is_empty() || parsed.is_some() {
            format!("upstream answered {status}")
        } else {
            format!("upstream answered {status}: {text}")
        }
    };
    classify(status, header, error, body, fallback, local)
}

/// Classifies an `error` found inside a 200 (a whole body, or a stream event): by its
/// numeric `code` as if it were the status, else as a server failing mid-answer.
pub fn classify_openai_in_band(error: &Value, local: bool) -> TransportError {
    let code = error.get("code").and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok());
    let status = code.filter(|c| (400..600).contains(c)).unwrap_or(500);
    let body = error.to_string();
    classify(status, &|_| None, Some(error), body.as_bytes(), || "error in answer".to_owned(), local)
}

fn classify(
    status: u16,
    header: Headers<'_>,
    error: Option<&Value>,
    body: &[u8],
    fallback: impl FnOnce() -> String,
    local: bool,
) -> TransportError {
    let message = error
        .and_then(|e| e.get("message").and_then(Value::as_str).or_else(|| e.as_str()))
        .map_or_else(fallback, str::to_owned);
    let field = |name: &str| error.and_then(|e| e.get(name)).and_then(Value::as_str).unwrap_or_default();
    let kind = kind(status, [field("code"), field("type")], &message, body, local);
    let mut err = TransportError::new(kind, message).with_status(status);
    if let Some(e) = error.filter(|e| e.is_object()) {
        err.metadata = Some(serde_json::json!({ "raw": e }));
    }
    if kind == ErrorKind::RateLimitedModel {
        let retry_after = header("retry-after").and_then(parse_retry_after);
        let reset = header("x-ratelimit-reset-requests").and_then(parse_go_duration);
        let wait = match (retry_after, local) {
            (Some(d), _) => Some(d),
            (None, true) => Some(LOCAL_BUSY_BACKOFF),
            (None, false) => reset,
        };
        if let Some(d) = wait {
            err = err.with_retry_after(d);
        }
    }
    err
}

/// How long no request is left, when an answer says so (Groq's
/// `x-ratelimit-remaining-requests: 0` with `x-ratelimit-reset-requests`): the model is
/// not asked again before then.
pub fn requests_spent_for(header: Headers<'_>) -> Option<Duration> {
    if header("x-ratelimit-remaining-requests").map(str::trim) != Some("0") {
        return None;
    }
    header("x-ratelimit-reset-requests").and_then(parse_go_duration)
}

/// Error codes (`code` or `type`) of a provider that wants to be paid: SambaNova's
/// `PAYMENT_METHOD_REQUIRED`, OpenAI's `insufficient_quota`, and the like.
const PAYMENT_CODES: [&str; 5] =
    ["payment_method_required", "insufficient_quota", "insufficient_credits", "billing_not_active", "payment_required"];

/// Phrases that say so in a message. Never a bare "billing": Groq's ordinary rate-limit
/// message links to its billing page ("Upgrade to Dev Tier today at …/settings/billing").
const PAYMENT_PHRASES: [&str; 5] =
    ["payment method", "payment required", "insufficient credits", "insufficient balance", "plan and billing details"];

fn asks_for_payment(status: u16, codes: &[&str], message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    status == 402
        || ((400..500).contains(&status)
            && (codes.iter().any(|c| PAYMENT_CODES.contains(&c.to_ascii_lowercase().as_str()))
                || PAYMENT_PHRASES.iter().any(|p| message.contains(p))))
}

/// A request larger than the model's token budget rather than a model that is down: a
/// 413, Groq's and Cerebras's "Request too large for model … on tokens per minute",
/// Gemini's `RESOURCE_EXHAUSTED` on an input-token quota. An ordinary "Rate limit
/// reached … tokens per minute" (the minute is spent; a later one takes the request) is
/// a rate limit that cools the model until its reset, not this.
fn too_large_for_budget(status: u16, message: &str, body: &[u8]) -> bool {
    let lower = message.to_ascii_lowercase();
    let too_large = lower.contains("request too large");
    let input_quota = memchr::memmem::find(body, b"InputTokensPer").is_some();
    (status == 413 && !lower.contains("context")) || (matches!(status, 413 | 429) && (too_large || input_quota))
}

/// A duration as Go writes it (`2m59.56s`, `7.66s`, `1h2m`, `120ms`), as Groq sends it
/// in `x-ratelimit-reset-*`.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let value: f64 = number.parse().ok()?;
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" | "" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            _ => return None,
        };
        total += value * scale;
        rest = tail;
    }
    (total.is_finite() && total >= 0.0).then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Classifies `body` answered with `status` and `headers` by a remote provider.
    fn check(status: u16, headers: &[(&str, &str)], body: &[u8]) -> TransportError {
        let header = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        classify_openai(status, &header, body, false)
    }

    fn kind(status: u16, body: &[u8]) -> ErrorKind {
        check(status, &[], body).kind
    }

    #[test]
    fn groq_headers_date_a_rate_limit() {
        let headers = [("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "2m59.56s")];
        let body = br#"{"error":{"message":"Rate limit reached for model `llama-3.1-8b-instant` on requests per day (RPD)","type":"requests","code":"rate_limit_exceeded"}}"#;
        let e = check(429, &headers, body);
        assert_eq!(e.kind, ErrorKind::RateLimitedModel);
        assert_eq!(e.retry_after, Some(Duration::from_millis(179_560)));
        assert!(e.message.contains("requests per day"), "{}", e.message);
    }

    #[test]
    fn a_local_servers_429_or_503_is_busy() {
        let busy = classify_openai(503, &|_| None, br#"{"error":"server busy"}"#, true);
        assert_eq!((busy.kind, busy.retry_after), (ErrorKind::RateLimitedModel, Some(LOCAL_BUSY_BACKOFF)));
        assert_eq!(busy.message, "server busy");
        assert_eq!(kind(503, b""), ErrorKind::ServerError, "a remote 503 is down, not busy");
    }

    #[test]
    fn statuses_and_codes() {
        let ctx =
            br#"{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}}"#;
        assert_eq!(kind(400, ctx), ErrorKind::ContextTooLong);
        assert_eq!(kind(401, b""), ErrorKind::Auth);
        let ctx = br#"{"error":{"message":"This model's maximum context length is 8192 tokens","code":"context_length_exceeded"}}"#;
        assert_eq!(kind(413, ctx), ErrorKind::ContextTooLong);
        assert_eq!(kind(404, b""), ErrorKind::ModelUnavailable);
        assert_eq!(kind(422, b""), ErrorKind::BadRequest);
        assert_eq!(kind(504, b""), ErrorKind::Timeout);
    }

    #[test]
    fn payment_asked_for_means_not_free() {
        for (status, body) in [
            (402, &br#"{"error":{"message":"Payment Required"}}"#[..]),
            (403, br#"{"error":{"message":"Please add a payment method","code":"PAYMENT_METHOD_REQUIRED"}}"#),
            (429, br#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota"}}"#),
            (400, br#"{"error":{"message":"Your account has insufficient credits"}}"#),
        ] {
            assert_eq!(kind(status, body), ErrorKind::PaymentRequired, "{status} {}", String::from_utf8_lossy(body));
        }
        // Groq's ordinary limits link to its billing page: a rate limit, not a payment request.
        let spent = br#"{"error":{"message":"Rate limit reached for model `llama-3.1-8b-instant` in organization `org_x` service tier `on_demand` on tokens per minute (TPM): Limit 6000, Used 5000, Requested 2000. Please try again in 10s. Need more tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing","type":"tokens","code":"rate_limit_exceeded"}}"#;
        assert_eq!(kind(429, spent), ErrorKind::RateLimitedModel);
    }

    #[test]
    fn too_large_for_the_token_budget_now() {
        let groq = br#"{"error":{"message":"Request too large for model `openai/gpt-oss-20b` in organization `org_x` service tier `on_demand` on tokens per minute (TPM): Limit 8000, Requested 32979, please reduce your message size and try again.","type":"tokens","code":"rate_limit_exceeded"}}"#;
        assert_eq!(kind(413, groq), ErrorKind::TooLargeForBudget);
        assert_eq!(kind(429, groq), ErrorKind::TooLargeForBudget);
        let gemini = br#"[{"error":{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateContentInputTokensPerModelPerMinute-FreeTier"}]}]}}]"#;
        assert_eq!(kind(429, gemini), ErrorKind::TooLargeForBudget);
        assert_eq!(kind(413, b""), ErrorKind::TooLargeForBudget);
    }

    #[test]
    fn errors_inside_a_200_follow_the_same_table() {
        let paying = serde_json::json!({"message": "Payment Required", "code": 402});
        assert_eq!(classify_openai_in_band(&paying, false).kind, ErrorKind::PaymentRequired);
        let limited = serde_json::json!({"message": "slow down", "code": 429});
        assert_eq!(classify_openai_in_band(&limited, false).kind, ErrorKind::RateLimitedModel);
        // Ollama's bare string, mid-stream: the server failed, another model may answer.
        let e = classify_openai_in_band(&serde_json::json!("model crashed"), true);
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::ServerError, "model crashed"));
    }

    #[test]
    fn an_answer_that_spends_the_last_request_says_until_when() {
        let spent = |remaining: &'static str| {
            let headers = [("x-ratelimit-remaining-requests", remaining), ("x-ratelimit-reset-requests", "7.66s")];
            requests_spent_for(&|name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
        };
        assert_eq!(spent("0"), Some(Duration::from_millis(7660)));
        assert_eq!(spent("3"), None);
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(parse_go_duration("120ms"), Some(Duration::from_millis(120)));
        assert_eq!(parse_go_duration("soon"), None);
    }
}
