//! Error classification of HTTP answers: reads the rate-limit headers and hands the
//! status, those headers and OpenRouter's error body to the core's one classifier
//! ([`router_core::classify`]), which classifies errors inside a 200 by the same rules.

use reqwest::header::HeaderMap;
use router_core::classify::{LimitHeaders, classify_http, parse_retry_after};
use router_core::{Timestamp, TransportError};

/// Classifies a non-2xx upstream answer. `now` dates the rate-limit headers.
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8], now: Timestamp) -> TransportError {
    let limits = LimitHeaders {
        limit: header_u64(headers, "x-ratelimit-limit"),
        remaining: header_u64(headers, "x-ratelimit-remaining"),
        reset: header_u64(headers, "x-ratelimit-reset"),
        retry_after: headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after),
    };
    classify_http(status, &limits, body, now)
}

/// Whose answers a transport reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    /// OpenRouter: its error objects, `X-RateLimit-*` and its limit sources.
    #[default]
    OpenRouter,
    /// A plain OpenAI-compatible server: `{"error":{"message","type","code"}}` (or
    /// Ollama's `{"error":"..."}`), Groq-style `x-ratelimit-*-requests` headers.
    /// `local`: the operator's own server, whose 429 and 503 mean "busy".
    OpenAi { local: bool },
}

/// How long a busy local server's model is passed over when it gives no `Retry-After`:
/// short, and never escalating (the server is busy, not rate-limiting anyone).
pub const LOCAL_BUSY_BACKOFF: std::time::Duration = std::time::Duration::from_secs(1);

/// Classifies a non-2xx answer of an OpenAI-compatible server. A rate limit cools the
/// model until `Retry-After`, else until `x-ratelimit-reset-requests` (Groq's
/// durations such as `2m59.56s`); a local server's 429/503 is a short "busy".
pub fn classify_openai(status: u16, headers: &HeaderMap, body: &[u8], local: bool) -> TransportError {
    use router_core::ErrorKind;
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let message = error
        .and_then(|e| e.get("message").and_then(serde_json::Value::as_str).or_else(|| e.as_str()))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text: String = text.trim().chars().take(300).collect();
            if text.is_empty() || parsed.is_some() {
                format!("upstream answered {status}")
            } else {
                format!("upstream answered {status}: {text}")
            }
        });
    let code = error.and_then(|e| e.get("code")).and_then(serde_json::Value::as_str).unwrap_or_default();
    let kind_field = error.and_then(|e| e.get("type")).and_then(serde_json::Value::as_str).unwrap_or_default();
    let text = |v: &str| headers.get(v).and_then(|h| h.to_str().ok()).map(str::trim);
    let retry_after = text("retry-after").and_then(parse_retry_after);
    let kind = match status {
        _ if asks_for_payment(status, &[code, kind_field], &message) => ErrorKind::PaymentRequired,
        _ if too_large_for_budget(status, &message, body) => ErrorKind::TooLargeForBudget,
        429 => ErrorKind::RateLimitedModel,
        503 if local => ErrorKind::RateLimitedModel,
        401..=403 => ErrorKind::Auth,
        404 | 410 => ErrorKind::ModelUnavailable,
        400 | 413 if code == "context_length_exceeded" || message.contains("context length") => {
            ErrorKind::ContextTooLong
        }
        408 | 504 => ErrorKind::Timeout,
        500..=599 => ErrorKind::ServerError,
        _ => ErrorKind::BadRequest,
    };
    let mut err = TransportError::new(kind, message).with_status(status);
    if let Some(e) = error.filter(|e| e.is_object()) {
        err.metadata = Some(serde_json::json!({ "raw": e }));
    }
    if kind == ErrorKind::RateLimitedModel {
        let reset = text("x-ratelimit-reset-requests").and_then(parse_go_duration);
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
pub fn parse_go_duration(text: &str) -> Option<std::time::Duration> {
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
    (total.is_finite() && total >= 0.0).then(|| std::time::Duration::from_secs_f64(total))
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};
    use router_core::ErrorKind;
    use serde_json::Value;
    use std::time::Duration;

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
    fn openai_dialect_and_groq_headers() {
        let mut map = HeaderMap::new();
        let mut set = |k: &str, v: &str| {
            map.insert(HeaderName::from_bytes(k.as_bytes()).expect("name"), HeaderValue::from_str(v).expect("value"));
        };
        set("x-ratelimit-remaining-requests", "0");
        set("x-ratelimit-reset-requests", "2m59.56s");
        let body = br#"{"error":{"message":"Rate limit reached for model `llama-3.1-8b-instant` on requests per day (RPD)","type":"requests","code":"rate_limit_exceeded"}}"#;
        let e = classify_openai(429, &map, body, false);
        assert_eq!(e.kind, ErrorKind::RateLimitedModel);
        assert_eq!(e.retry_after, Some(Duration::from_millis(179_560)));
        assert!(e.message.contains("requests per day"), "{}", e.message);
        // A local server's 429 or 503 is "busy": a short back-off.
        let busy = classify_openai(503, &HeaderMap::new(), br#"{"error":"server busy"}"#, true);
        assert_eq!((busy.kind, busy.retry_after), (ErrorKind::RateLimitedModel, Some(LOCAL_BUSY_BACKOFF)));
        assert_eq!(busy.message, "server busy");
        let down = classify_openai(503, &HeaderMap::new(), b"", false);
        assert_eq!(down.kind, ErrorKind::ServerError);
        let ctx =
            br#"{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}}"#;
        assert_eq!(classify_openai(400, &HeaderMap::new(), ctx, false).kind, ErrorKind::ContextTooLong);
        assert_eq!(classify_openai(401, &HeaderMap::new(), b"", false).kind, ErrorKind::Auth);
        // Payment asked for: the provider is not free (any more).
        for (status, body) in [
            (402, &br#"{"error":{"message":"Payment Required"}}"#[..]),
            (403, br#"{"error":{"message":"Please add a payment method","code":"PAYMENT_METHOD_REQUIRED"}}"#),
            (429, br#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota"}}"#),
            (400, br#"{"error":{"message":"Your account has insufficient credits"}}"#),
        ] {
            let e = classify_openai(status, &HeaderMap::new(), body, false);
            assert_eq!(e.kind, ErrorKind::PaymentRequired, "{status} {}", String::from_utf8_lossy(body));
        }
        // Too large for the token budget now: another model, no cooldown.
        let groq = br#"{"error":{"message":"Request too large for model `openai/gpt-oss-20b` in organization `org_x` service tier `on_demand` on tokens per minute (TPM): Limit 8000, Requested 32979, please reduce your message size and try again.","type":"tokens","code":"rate_limit_exceeded"}}"#;
        assert_eq!(classify_openai(413, &HeaderMap::new(), groq, false).kind, ErrorKind::TooLargeForBudget);
        assert_eq!(classify_openai(429, &HeaderMap::new(), groq, false).kind, ErrorKind::TooLargeForBudget);
        let gemini = br#"[{"error":{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateContentInputTokensPerModelPerMinute-FreeTier"}]}]}}]"#;
        assert_eq!(classify_openai(429, &HeaderMap::new(), gemini, false).kind, ErrorKind::TooLargeForBudget);
        assert_eq!(classify_openai(413, &HeaderMap::new(), b"", false).kind, ErrorKind::TooLargeForBudget);
        // Groq's ordinary limits link to its billing page: a rate limit, not a payment request.
        let spent = br#"{"error":{"message":"Rate limit reached for model `llama-3.1-8b-instant` in organization `org_x` service tier `on_demand` on tokens per minute (TPM): Limit 6000, Used 5000, Requested 2000. Please try again in 10s. Need more tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing","type":"tokens","code":"rate_limit_exceeded"}}"#;
        assert_eq!(classify_openai(429, &HeaderMap::new(), spent, false).kind, ErrorKind::RateLimitedModel);
        let ctx = br#"{"error":{"message":"This model's maximum context length is 8192 tokens","code":"context_length_exceeded"}}"#;
        assert_eq!(classify_openai(413, &HeaderMap::new(), ctx, false).kind, ErrorKind::ContextTooLong);
        assert_eq!(classify_openai(404, &HeaderMap::new(), b"", false).kind, ErrorKind::ModelUnavailable);
        assert_eq!(classify_openai(422, &HeaderMap::new(), b"", false).kind, ErrorKind::BadRequest);
        assert_eq!(parse_go_duration("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(parse_go_duration("120ms"), Some(Duration::from_millis(120)));
        assert_eq!(parse_go_duration("soon"), None);
    }

    #[test]
    fn limit_source_with_headers() {
        // A shared-capacity 429 carries the account's headers too; it still cools one model.
        let body = r#"{"error":{"code":429,"message":"x/y:free is limited to 8 requests per minute","metadata":{"limit_source":"openrouter_shared_capacity"}}}"#;
        let e = check(
            429,
            &[("x-ratelimit-limit", "50"), ("x-ratelimit-remaining", "0"), ("retry-after", "20")],
            body,
            ErrorKind::RateLimitedModel,
            "8 requests",
        );
        assert_eq!(e.retry_after, Some(Duration::from_secs(20)), "Retry-After wins over the stated window");
        let daily = r#"{"error":{"code":429,"message":"Rate limit exceeded","metadata":{"limit_source":"openrouter_free_tier_daily"}}}"#;
        let e = check(429, &[("x-ratelimit-reset", "1780012800000")], daily, ErrorKind::DailyCapReached, "exceeded");
        assert_eq!(e.reset_at, Some(Timestamp::from_millis(1_780_012_800_000)));
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
