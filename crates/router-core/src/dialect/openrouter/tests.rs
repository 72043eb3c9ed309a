//! OpenRouter's rules, as error objects and as HTTP answers with their headers.

use super::*;
use serde_json::json;

const NOW: Timestamp = Timestamp::from_millis(1_780_000_000_000);

fn limited(status: u16, source: &str, message: &str) -> Value {
    json!({"code": status, "message": message, "metadata": {"limit_source": source}})
}

/// Classifies `error` both as an HTTP body with `status` and as an error inside a
/// 200, and checks that both agree on `kind`.
fn both(status: u16, error: &Value, kind: ErrorKind) -> TransportError {
    let body = json!({"error": error}).to_string();
    let http = classify_http(status, &LimitHeaders::default(), body.as_bytes(), NOW);
    let in_band = classify_in_band(error, NOW);
    assert_eq!(http.kind, kind, "http {status} {error}: {http:?}");
    assert_eq!(in_band.kind, kind, "in band {error}: {in_band:?}");
    assert_eq!(http.retry_after, in_band.retry_after, "{error}");
    assert_eq!(http.message, in_band.message);
    http
}

#[test]
fn limit_source_decides_the_scope() {
    let e = both(429, &limited(429, "openrouter_free_tier_daily", "Rate limit exceeded"), ErrorKind::DailyCapReached);
    assert!(e.kind.is_account_wide());
    let e = both(
        429,
        &limited(429, "openrouter_shared_capacity", "x/y:free is limited to 8 requests per minute for all users"),
        ErrorKind::RateLimitedModel,
    );
    assert!(!e.kind.is_account_wide(), "a shared-capacity 429 cools one model, not the account");
    assert_eq!(e.retry_after, Some(Duration::from_secs(60)), "the window the message states");
    let e = both(
        429,
        &limited(429, "openrouter_shared_capacity", "Model is at capacity, retry in 12 seconds"),
        ErrorKind::RateLimitedModel,
    );
    assert_eq!(e.retry_after, Some(Duration::from_secs(12)));
    let e = both(429, &limited(429, "openrouter_shared_capacity", "busy"), ErrorKind::RateLimitedModel);
    assert_eq!(e.retry_after, None, "no stated window: the usual backoff");
    let e = both(429, &limited(429, "upstream_provider_shared_pool", "Provider busy"), ErrorKind::RateLimitedModel);
    assert_eq!(e.retry_after, Some(SHARED_POOL_COOLDOWN));
    both(402, &limited(402, "openrouter_credits", "Insufficient credits"), ErrorKind::Auth);
    both(402, &limited(402, "openrouter_key_limit", "Key limit exceeded"), ErrorKind::Auth);
    let e =
        both(402, &limited(402, "openrouter_in_flight_budget", "Too much in flight"), ErrorKind::RateLimitedAccount);
    assert_eq!(e.retry_after, Some(IN_FLIGHT_BUDGET_WAIT));
    // Even a message that reads like the daily cap does not block the account when
    // the source says it is one model's shared capacity.
    both(
        429,
        &limited(429, "openrouter_shared_capacity", "Rate limit exceeded: free-models-per-day"),
        ErrorKind::RateLimitedModel,
    );
    // An unknown source falls back to the message and headers.
    both(
        429,
        &limited(429, "something_new", "Rate limit exceeded: free-models-per-min."),
        ErrorKind::RateLimitedAccount,
    );
}

#[test]
fn the_same_rules_inside_a_200() {
    both(
        429,
        &json!({"code": 429, "message": "Rate limit exceeded: free-models-per-day.",
                "metadata": {"headers": {"X-RateLimit-Reset": "1780012800000"}}}),
        ErrorKind::DailyCapReached,
    );
    both(
        400,
        &json!({"code": 400, "message": "This endpoint's maximum context length is 8192 tokens"}),
        ErrorKind::ContextTooLong,
    );
    both(404, &json!({"code": 404, "message": "No endpoints found for a/b:free."}), ErrorKind::ModelUnavailable);
    both(
        503,
        &json!({"code": 503, "message": "Provider returned error", "metadata": {"raw": "overloaded"}}),
        ErrorKind::ServerError,
    );
    both(408, &json!({"code": 408, "message": "timed out"}), ErrorKind::Timeout);
    let e = classify_in_band(&json!({"message": "no code"}), NOW);
    assert_eq!((e.kind, e.status), (ErrorKind::Protocol, None));
    let e = classify_in_band(
        &json!({"code": 429, "message": "Provider returned error",
        "metadata": {"provider_name": "X", "raw": "rate-limited upstream"}}),
        NOW,
    );
    assert_eq!((e.kind, e.status), (ErrorKind::RateLimitedModel, Some(429)));
    assert!(e.message.contains("rate-limited upstream"), "{}", e.message);
    let e = classify_in_band(
        &json!({"code": 429, "message": "x",
        "metadata": {"headers": {"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1780012800000"}}}),
        NOW,
    );
    assert_eq!((e.kind, e.reset_at), (ErrorKind::DailyCapReached, Some(Timestamp::from_millis(1_780_012_800_000))));
}

#[test]
fn stated_windows() {
    let check = |t: &str, secs: Option<u64>| assert_eq!(stated_window(t), secs.map(Duration::from_secs), "{t}");
    check("limited to 15 requests per minute", Some(60));
    check("please retry in 30 seconds.", Some(30));
    check("try again in 2 minutes", Some(120));
    check("retry after 5s", Some(5));
    check("rate limited for 1 hour", Some(3600));
    check("temporarily rate-limited upstream. please retry shortly", None);
    check("", None);
    assert_eq!(parse_retry_after(" 1.5 "), Some(Duration::from_millis(1500)));
    assert_eq!(parse_retry_after("soon"), None);
    assert_eq!(parse_retry_after("-1"), None);
}

// HTTP answers, with the headers the transport hands over.

/// Classifies `body` with `status` and `headers` and checks its kind, and that the
/// message contains `message_part`.
fn check(status: u16, headers: &[(&str, &str)], body: &str, kind: ErrorKind, message_part: &str) -> TransportError {
    let header = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let err = crate::Dialect::OpenRouter.classify(status, &header, body.as_bytes(), NOW);
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
    let headers = [("x-ratelimit-limit", "50"), ("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1780012800000")];
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
    check(429, &[("x-ratelimit-limit", "1000"), ("x-ratelimit-remaining", "0")], bare, ErrorKind::DailyCapReached, "");
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
    check(422, &[], r#"{"error":{"code":422,"message":"Invalid tool schema"}}"#, ErrorKind::BadRequest, "tool schema");
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
