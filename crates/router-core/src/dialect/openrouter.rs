//! OpenRouter's dialect of errors: an HTTP error answer (status, the rate-limit headers,
//! the `{"error":{...}}` body) and an error found inside a 200 body or stream are turned
//! into the same [`ErrorKind`] by the same rules (daily cap, per-minute limit,
//! `limit_source`, context length, unavailable models, ...). Pure.

use crate::time::Timestamp;
use crate::upstream::{ErrorKind, TransportError};
use serde_json::Value;
use std::time::Duration;

/// Longest upstream text kept in a message (raw provider errors can be whole pages).
pub const MAX_MESSAGE_TEXT: usize = 1000;

/// A daily limit's `X-RateLimit-Reset` lies more than this far ahead; a per-minute
/// limit resets within a minute.
pub const DAILY_RESET_HORIZON: Duration = Duration::from_secs(5 * 60);

/// The daily free-model caps OpenRouter announces in `X-RateLimit-Limit`.
pub const DAILY_LIMITS: &[u64] = &[50, 1000];

/// Cooldown of a model whose provider's shared pool is saturated
/// (`upstream_provider_shared_pool`), when neither `Retry-After` nor the message says.
pub const SHARED_POOL_COOLDOWN: Duration = Duration::from_secs(10);

/// Wait after a 402 `openrouter_in_flight_budget` (too much spend in flight at once),
/// when `Retry-After` does not say.
pub const IN_FLIGHT_BUDGET_WAIT: Duration = Duration::from_secs(5);

/// The longest wait read from `Retry-After` or a message.
const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// Why OpenRouter limited a request: `error.metadata.limit_source` of a 429 or 402.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitSource {
    /// The account's daily free-model cap.
    FreeTierDaily,
    /// One popular free model limited for everyone (e.g. 8 requests a minute): a
    /// cooldown of that model, not a block of the account.
    SharedCapacity,
    /// The model's provider is saturated: a short cooldown of that model.
    ProviderSharedPool,
    /// 402: the account has no credits left.
    Credits,
    /// 402: the key's own spending limit.
    KeyLimit,
    /// 402: too much spend in flight at once.
    InFlightBudget,
}

impl LimitSource {
    /// Reads OpenRouter's spelling; `None` for a value this router does not know.
    pub fn parse(s: &str) -> Option<LimitSource> {
        Some(match s {
            "openrouter_free_tier_daily" => LimitSource::FreeTierDaily,
            "openrouter_shared_capacity" => LimitSource::SharedCapacity,
            "upstream_provider_shared_pool" => LimitSource::ProviderSharedPool,
            "openrouter_credits" => LimitSource::Credits,
            "openrouter_key_limit" => LimitSource::KeyLimit,
            "openrouter_in_flight_budget" => LimitSource::InFlightBudget,
            _ => return None,
        })
    }

    /// OpenRouter's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitSource::FreeTierDaily => "openrouter_free_tier_daily",
            LimitSource::SharedCapacity => "openrouter_shared_capacity",
            LimitSource::ProviderSharedPool => "upstream_provider_shared_pool",
            LimitSource::Credits => "openrouter_credits",
            LimitSource::KeyLimit => "openrouter_key_limit",
            LimitSource::InFlightBudget => "openrouter_in_flight_budget",
        }
    }

    /// The `limit_source` of an error object, when it has a known one.
    pub fn of(error: &Value) -> Option<LimitSource> {
        error.get("metadata")?.get("limit_source")?.as_str().and_then(LimitSource::parse)
    }
}

/// The rate-limit headers of an HTTP answer, read by the transport (`None` when absent
/// or unreadable). An error inside a 200 has none: OpenRouter's copies in
/// `error.metadata.headers` are read instead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitHeaders {
    /// `X-RateLimit-Limit`.
    pub limit: Option<u64>,
    /// `X-RateLimit-Remaining`.
    pub remaining: Option<u64>,
    /// `X-RateLimit-Reset`, as sent (epoch milliseconds, or seconds).
    pub reset: Option<u64>,
    /// `Retry-After`.
    pub retry_after: Option<Duration>,
}

impl LimitHeaders {
    /// Reads OpenRouter's `X-RateLimit-*` and `Retry-After` from an answer's headers
    /// (`header` looks one up by lowercase name).
    pub fn read(header: super::Headers<'_>) -> Self {
        let number = |name: &str| header(name).and_then(|v| v.trim().parse().ok());
        LimitHeaders {
            limit: number("x-ratelimit-limit"),
            remaining: number("x-ratelimit-remaining"),
            reset: number("x-ratelimit-reset"),
            retry_after: header("retry-after").and_then(parse_retry_after),
        }
    }
}

/// Reads `Retry-After` in (possibly fractional) seconds. HTTP dates are not used by OpenRouter.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(MAX_WAIT.as_secs_f64())))
}

/// Classifies an HTTP error answer: `status` (not 2xx), its rate-limit `headers` and
/// its body as sent (OpenRouter's JSON, or a proxy's page).
pub fn classify_http(status: u16, headers: &LimitHeaders, body: &[u8], now: Timestamp) -> TransportError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error")).filter(|e| e.is_object());
    let fallback = || {
        // Not OpenRouter's JSON (a proxy's HTML page, an empty body): keep a little of it.
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() || parsed.is_some() {
            format!("upstream answered {status}")
        } else {
            format!("upstream answered {status}: {}", truncate(text))
        }
    };
    classify(status, headers, error, fallback, now)
}

/// Classifies an `error` object found inside a 200 (a whole body, or a stream event
/// before any content), by its `code` as if it were the answer's status. Without a
/// readable code it is a protocol failure.
pub fn classify_in_band(error: &Value, now: Timestamp) -> TransportError {
    let code = error.get("code").and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok());
    match code {
        Some(code) if (400..600).contains(&code) => {
            classify(code, &LimitHeaders::default(), Some(error), || "error in answer".to_owned(), now)
        }
        _ => {
            let message = error.get("message").and_then(Value::as_str).unwrap_or("error in answer");
            let mut e = TransportError::new(ErrorKind::Protocol, message);
            e.status = code;
            e.metadata = error.get("metadata").filter(|m| !m.is_null()).cloned();
            e
        }
    }
}

fn classify(
    status: u16,
    headers: &LimitHeaders,
    error: Option<&Value>,
    fallback: impl FnOnce() -> String,
    now: Timestamp,
) -> TransportError {
    let upstream_message = error.and_then(|e| e.get("message")).and_then(Value::as_str);
    let metadata = error.and_then(|e| e.get("metadata")).filter(|m| !m.is_null()).cloned();
    let raw = metadata.as_ref().and_then(|m| m.get("raw")).and_then(raw_text);
    let source = error.and_then(LimitSource::of);

    let mut message = match upstream_message {
        Some(m) if !m.trim().is_empty() => m.trim().to_owned(),
        _ => fallback(),
    };
    // The real reason behind "Provider returned error" is in `metadata.raw`.
    if let Some(raw) = raw.as_deref().map(str::trim).filter(|r| !r.is_empty() && !message.contains(*r)) {
        message = format!("{message}: {}", truncate(raw));
    }

    let text = format!("{} {}", message, error_type(metadata.as_ref())).to_lowercase();
    let limit = headers.limit.or_else(|| meta_header(metadata.as_ref(), "X-RateLimit-Limit"));
    let remaining = headers.remaining.or_else(|| meta_header(metadata.as_ref(), "X-RateLimit-Remaining"));
    let reset_at =
        headers.reset.or_else(|| meta_header(metadata.as_ref(), "X-RateLimit-Reset")).map(epoch_to_timestamp);
    let availability = error.is_some_and(|e| e.get("availability").is_some_and(|a| !a.is_null()));

    let kind = match (status, source) {
        (_, Some(LimitSource::FreeTierDaily)) => ErrorKind::DailyCapReached,
        (_, Some(LimitSource::SharedCapacity | LimitSource::ProviderSharedPool)) => ErrorKind::RateLimitedModel,
        (_, Some(LimitSource::InFlightBudget)) => ErrorKind::RateLimitedAccount,
        (_, Some(LimitSource::Credits | LimitSource::KeyLimit)) => ErrorKind::Auth,
        (429, None) => {
            let top = upstream_message.unwrap_or("").to_lowercase();
            rate_limit_kind(&top, &text, metadata.as_ref(), limit, remaining, reset_at, now)
        }
        (401 | 402, None) => ErrorKind::Auth,
        // A moderation refusal is about this request, not the key.
        (403, None)
            if text.contains("flagged") || metadata.as_ref().is_some_and(|m| m.get("flagged_input").is_some()) =>
        {
            ErrorKind::BadRequest
        }
        (403, None) => ErrorKind::Auth,
        (404 | 410, None) => ErrorKind::ModelUnavailable,
        _ if availability || is_unavailable(&text) => ErrorKind::ModelUnavailable,
        (408, None) => ErrorKind::Timeout,
        _ if is_context_length(&text) && (400..500).contains(&status) => ErrorKind::ContextTooLong,
        (400..=499, None) => ErrorKind::BadRequest,
        (500..=599, None) => ErrorKind::ServerError,
        _ => ErrorKind::Protocol,
    };

    let mut err = TransportError::new(kind, message).with_status(status);
    let retry_after = headers.retry_after.or_else(|| match source {
        Some(LimitSource::SharedCapacity) => stated_window(&text),
        Some(LimitSource::ProviderSharedPool) => Some(stated_window(&text).unwrap_or(SHARED_POOL_COOLDOWN)),
        Some(LimitSource::InFlightBudget) => Some(IN_FLIGHT_BUDGET_WAIT),
        _ => None,
    });
    err.metadata = metadata;
    if let Some(d) = retry_after {
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
        let far_reset = reset_at.is_some_and(|r| r.saturating_since(now) > DAILY_RESET_HORIZON);
        return if daily_limit || far_reset { ErrorKind::DailyCapReached } else { ErrorKind::RateLimitedAccount };
    }
    if limit.is_some() || remaining.is_some() {
        return ErrorKind::RateLimitedAccount;
    }
    // A bare 429 names no scope: assume the model, so another one may still answer.
    ErrorKind::RateLimitedModel
}

/// The window a rate-limit message states, if any: "retry in 12 seconds",
/// "try again in 2 minutes", "8 requests per minute" (a minute), ... `text` is lowercase.
pub fn stated_window(text: &str) -> Option<Duration> {
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| !w.is_empty())
        .collect();
    let unit = |w: &str| -> Option<u64> {
        match w {
            "s" | "sec" | "secs" | "second" | "seconds" => Some(1),
            "m" | "min" | "mins" | "minute" | "minutes" => Some(60),
            "h" | "hr" | "hour" | "hours" => Some(3600),
            _ => None,
        }
    };
    // "<n> <unit>" (or "<n>s") after "in", "after" or "for": an explicit wait.
    for i in 1..words.len() {
        if !matches!(words[i - 1], "in" | "after" | "for") {
            continue;
        }
        if let (Ok(n), Some(u)) = (words[i].parse::<f64>(), words.get(i + 1).and_then(|w| unit(w)))
            && n.is_finite()
            && n >= 0.0
        {
            return Some(Duration::from_secs_f64((n * u as f64).min(MAX_WAIT.as_secs_f64())));
        }
        if let Some(n) = words[i].strip_suffix('s').and_then(|n| n.parse::<u64>().ok()) {
            return Some(Duration::from_secs(n).min(MAX_WAIT));
        }
    }
    // "<n> requests per <unit>": the limit's window.
    words.windows(2).find_map(|w| (w[0] == "per").then(|| unit(w[1])).flatten()).map(Duration::from_secs)
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
    match s.char_indices().nth(MAX_MESSAGE_TEXT) {
        Some((i, _)) => &s[..i],
        None => s,
    }
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

#[cfg(test)]
mod tests;
