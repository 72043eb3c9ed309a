//! Error answers handed to the core's classifiers: the transport gives the status, a
//! header lookup and the body; the rules of each dialect live in `router_core::dialect`.

use reqwest::header::HeaderMap;
use router_core::{Dialect, Timestamp, TransportError};

/// Classifies a non-2xx answer by `dialect`'s rules. `now` dates rate-limit resets.
pub fn classify(dialect: Dialect, status: u16, headers: &HeaderMap, body: &[u8], now: Timestamp) -> TransportError {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    dialect.classify(status, &header, body, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use router_core::ErrorKind;
    use std::time::Duration;

    #[test]
    fn headers_reach_each_dialects_rules() {
        let mut headers = HeaderMap::new();
        headers.insert("Retry-After", HeaderValue::from_static("7"));
        headers.insert("X-RateLimit-Limit", HeaderValue::from_static("20"));
        headers.insert("X-RateLimit-Remaining", HeaderValue::from_static("0"));
        let now = Timestamp::from_secs(1_780_000_000);
        let e = classify(Dialect::OpenRouter, 429, &headers, br#"{"error":{"message":"Rate limit exceeded"}}"#, now);
        assert_eq!((e.kind, e.retry_after), (ErrorKind::RateLimitedAccount, Some(Duration::from_secs(7))));
        let e = classify(Dialect::OpenAi { local: false }, 429, &headers, b"", now);
        assert_eq!((e.kind, e.retry_after), (ErrorKind::RateLimitedModel, Some(Duration::from_secs(7))));
    }
}
