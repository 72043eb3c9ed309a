//! The refusals and failures: rate limits in OpenRouter's and Groq's shapes, daily and
//! minute caps, limits that say their source, and errors inside a stream.

use super::wire::{Ctx, DONE, PROCESSING, PROVIDER, Reply, error_body, json_reply, now_ms, sse};
use bytes::Bytes;
use serde_json::json;

/// Groq's 429: `rate_limit_exceeded` with its `x-ratelimit-*-requests` headers.
pub(super) fn openai_rate_limited(model: &str, reset: &str, retry_after: Option<u64>) -> Reply {
    let body = json!({"error": {
        "message": format!("Rate limit reached for model `{model}` on requests per day (RPD)"),
        "type": "requests",
        "code": "rate_limit_exceeded",
    }});
    let mut headers = vec![
        ("x-ratelimit-limit-requests", "14400".to_owned()),
        ("x-ratelimit-remaining-requests", "0".to_owned()),
        ("x-ratelimit-reset-requests", reset.to_owned()),
    ];
    headers.extend(retry_after.map(|s| ("retry-after", s.to_string())));
    Reply::Full { status: 429, headers, body: Bytes::from(body.to_string()) }
}

/// OpenRouter's 429 "Provider returned error" for a model rate-limited upstream.
pub(super) fn rate_limited(model: &str, retry_after: Option<u64>) -> Reply {
    let raw = format!(
        "{model} is temporarily rate-limited upstream. Please retry shortly, or add your own key to \
         accumulate your rate limits: https://openrouter.ai/settings/integrations"
    );
    let body = error_body(429, "Provider returned error", Some(json!({"provider_name": PROVIDER, "raw": raw})));
    let headers = retry_after.map(|s| vec![("retry-after", s.to_string())]).unwrap_or_default();
    Reply::Full { status: 429, headers, body }
}

pub(super) fn daily_cap(reset_ms: u64) -> Reply {
    rate_limit_reply(
        "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day",
        50,
        reset_ms,
    )
}

pub(super) fn minute_cap() -> Reply {
    let next_minute = (now_ms() / 60_000 + 1) * 60_000;
    rate_limit_reply("Rate limit exceeded: free-models-per-min. ", 20, next_minute)
}

/// 429 with OpenRouter's `X-RateLimit-*` headers, also inside the error's metadata.
fn rate_limit_reply(message: &str, limit: u32, reset_ms: u64) -> Reply {
    let headers = vec![
        ("x-ratelimit-limit", limit.to_string()),
        ("x-ratelimit-remaining", "0".to_owned()),
        ("x-ratelimit-reset", reset_ms.to_string()),
    ];
    let metadata = json!({"headers": {
        "X-RateLimit-Limit": limit.to_string(),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": reset_ms.to_string(),
    }});
    Reply::Full { status: 429, headers, body: error_body(429, message, Some(metadata)) }
}

/// A content chunk, then an error chunk (502 "Provider disconnected"); a 502 unstreamed.
pub(super) fn mid_stream_error(ctx: &Ctx, stream: bool) -> Reply {
    if !stream {
        return json_reply(502, error_body(502, "Provider disconnected", None));
    }
    let err = ctx.chunk(
        "{\"role\":\"assistant\",\"content\":\"\"}",
        "\"error\"",
        ",\"error\":{\"code\":502,\"message\":\"Provider disconnected\"}",
    );
    sse(vec![Bytes::from_static(PROCESSING), ctx.content_chunk("hello"), err, Bytes::from_static(DONE)])
}

/// An error chunk with `code` as the first data event; that status unstreamed.
pub(super) fn error_first_in_stream(ctx: &Ctx, code: u16, stream: bool) -> Reply {
    let message = "Provider returned error";
    if !stream {
        return json_reply(code, error_body(code, message, None));
    }
    let err = ctx.chunk(
        "{\"role\":\"assistant\",\"content\":\"\"}",
        "\"error\"",
        &format!(",\"error\":{{\"code\":{code},\"message\":\"{message}\"}}"),
    );
    sse(vec![Bytes::from_static(PROCESSING), err, Bytes::from_static(DONE)])
}

/// An error whose `metadata.limit_source` says why; `in_band`, inside a 200.
pub(super) fn limited(
    status: u16,
    source: &str,
    message: &str,
    retry_after: Option<u64>,
    in_band: bool,
    stream: bool,
) -> Reply {
    let metadata = json!({"limit_source": source});
    if in_band {
        let error = json!({"code": status, "message": message, "metadata": metadata});
        if !stream {
            return json_reply(200, Bytes::from(json!({"error": error, "user_id": "user_fake"}).to_string()));
        }
        let event = Bytes::from(format!("data: {}\n\n", json!({"error": error})));
        return sse(vec![Bytes::from_static(PROCESSING), event, Bytes::from_static(DONE)]);
    }
    let headers = retry_after.map(|s| vec![("retry-after", s.to_string())]).unwrap_or_default();
    Reply::Full { status, headers, body: error_body(status, message, Some(metadata)) }
}
