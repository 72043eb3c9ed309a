//! What comes back from upstream: an answer (status, headers, a whole body or a byte
//! stream) or a classified failure. The transport adapter produces these; the router
//! decides fallback, cooldowns and quotas from them alone.

use crate::time::Timestamp;
use bytes::Bytes;
use futures_core::Stream;
use std::fmt;
use std::pin::Pin;
use std::time::Duration;

/// A byte stream of an SSE response, as the bytes arrive.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, TransportError>> + Send>>;

/// An answer's body: whole, or as a byte stream for an SSE response.
pub enum Body {
    /// The whole body, read.
    Full(Bytes),
    /// The body as it arrives (a streamed answer).
    Stream(ByteStream),
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Full(b) => write!(f, "Body::Full({} bytes)", b.len()),
            Body::Stream(_) => f.write_str("Body::Stream(..)"),
        }
    }
}

/// A successful upstream answer.
#[derive(Debug)]
pub struct UpstreamResponse {
    /// Upstream's HTTP status.
    pub status: u16,
    /// Headers worth passing on (content type, rate-limit headers, ...), lowercase names.
    /// The names are the adapter's own constants: no allocation per request.
    pub headers: Vec<(&'static str, String)>,
    /// The body, whole or streaming.
    pub body: Body,
    /// Time from sending the request to the response head.
    pub elapsed: Duration,
}

/// What kind of failure an upstream call was: the core decides fallback, cooldowns and
/// account blocks from this alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// This model is rate-limited upstream (a provider's 429); other models may answer.
    RateLimitedModel,
    /// The account's per-minute request limit.
    RateLimitedAccount,
    /// The account's daily free-model cap (`free-models-per-day`).
    DailyCapReached,
    /// No endpoints, free variant ended, deprecated, unavailable upstream.
    ModelUnavailable,
    /// 5xx, 524, 529, an overloaded provider.
    ServerError,
    /// The call ran past one of the transport's timeouts.
    Timeout,
    /// Could not connect to upstream, or lost the connection.
    Connection,
    /// The prompt does not fit this model's context; a larger model may serve it.
    ContextTooLong,
    /// The request's own fault (400, 413, 422, ...): the same for every model.
    BadRequest,
    /// 401, 402, 403: a problem with the key, the same for every model.
    Auth,
    /// The request is too large for this model's token budget now (Groq's and
    /// Cerebras's "Request too large … tokens per minute", a 413, Gemini's input-token
    /// `RESOURCE_EXHAUSTED`): another model may take it, and this one still serves small
    /// requests, so nothing cools down.
    TooLargeForBudget,
    /// A provider declared free asked for payment (402, `PAYMENT_METHOD_REQUIRED`,
    /// "insufficient credits", "billing"): it is not free (any more), leaves the pool
    /// until its configuration or key changes, and another provider is tried.
    PaymentRequired,
    /// A mid-stream error chunk or an answer that could not be read.
    Protocol,
    /// A 200 that says nothing: no content, no tool calls, and a finish other than
    /// `length` (a refusal or a filter), or only reasoning when none was asked for.
    EmptyAnswer,
    /// This machine ran out of something (open files, memory) before the request left
    /// it: no model is to blame, no quota was used, and another model would fare no
    /// better. Answered 503 with `Retry-After` at once.
    LocalResource,
}

impl ErrorKind {
    /// Every kind, in declaration order: for views that list or check their names.
    pub const ALL: [ErrorKind; 15] = [
        ErrorKind::RateLimitedModel,
        ErrorKind::RateLimitedAccount,
        ErrorKind::DailyCapReached,
        ErrorKind::ModelUnavailable,
        ErrorKind::ServerError,
        ErrorKind::Timeout,
        ErrorKind::Connection,
        ErrorKind::ContextTooLong,
        ErrorKind::BadRequest,
        ErrorKind::Auth,
        ErrorKind::TooLargeForBudget,
        ErrorKind::PaymentRequired,
        ErrorKind::Protocol,
        ErrorKind::EmptyAnswer,
        ErrorKind::LocalResource,
    ];

    /// Whether another model may succeed where this one failed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimitedModel
                | ErrorKind::ModelUnavailable
                | ErrorKind::ServerError
                | ErrorKind::Timeout
                | ErrorKind::Connection
                | ErrorKind::ContextTooLong
                | ErrorKind::Protocol
                | ErrorKind::EmptyAnswer
                | ErrorKind::PaymentRequired
                | ErrorKind::TooLargeForBudget
        )
    }

    /// Whether the failure concerns the whole account rather than one model.
    pub fn is_account_wide(self) -> bool {
        matches!(self, ErrorKind::RateLimitedAccount | ErrorKind::DailyCapReached | ErrorKind::Auth)
    }

    /// The kind's code, e.g. `rate_limited_model`: the error code clients and metrics see.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::RateLimitedModel => "rate_limited_model",
            ErrorKind::RateLimitedAccount => "rate_limited_account",
            ErrorKind::DailyCapReached => "daily_cap_reached",
            ErrorKind::ModelUnavailable => "model_unavailable",
            ErrorKind::ServerError => "server_error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connection => "connection",
            ErrorKind::ContextTooLong => "context_too_long",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Auth => "auth",
            ErrorKind::PaymentRequired => "payment_required",
            ErrorKind::TooLargeForBudget => "too_large_for_budget",
            ErrorKind::Protocol => "protocol",
            ErrorKind::EmptyAnswer => "empty_answer",
            ErrorKind::LocalResource => "local_resource",
        }
    }

    /// The HTTP status to answer with when this is the final failure and upstream gave none.
    pub fn default_status(self) -> u16 {
        match self {
            ErrorKind::RateLimitedModel | ErrorKind::RateLimitedAccount | ErrorKind::DailyCapReached => 429,
            ErrorKind::ModelUnavailable => 404,
            ErrorKind::ServerError | ErrorKind::Connection | ErrorKind::Protocol | ErrorKind::EmptyAnswer => 502,
            ErrorKind::Timeout => 504,
            ErrorKind::ContextTooLong | ErrorKind::BadRequest => 400,
            ErrorKind::Auth => 401,
            ErrorKind::PaymentRequired => 402,
            ErrorKind::TooLargeForBudget => 413,
            ErrorKind::LocalResource => 503,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified upstream failure. Messages are upstream's own (including
/// `metadata.raw`, which carries the real reason behind "Provider returned error") and
/// never contain the key.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct TransportError {
    /// What kind of failure it was.
    pub kind: ErrorKind,
    /// Upstream's HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// What went wrong, in upstream's words where it gave any.
    pub message: String,
    /// Upstream's `error.metadata` (provider name, raw message, ...), passed on to the client.
    pub metadata: Option<serde_json::Value>,
    /// From `Retry-After`.
    pub retry_after: Option<Duration>,
    /// From `X-RateLimit-Reset` (the account's limit resets at this instant).
    pub reset_at: Option<Timestamp>,
    /// Time spent on this attempt.
    pub elapsed: Duration,
}

impl TransportError {
    /// A failure of `kind` with `message`, and nothing else known yet.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        TransportError {
            kind,
            status: None,
            message: message.into(),
            metadata: None,
            retry_after: None,
            reset_at: None,
            elapsed: Duration::ZERO,
        }
    }

    /// Records upstream's HTTP status.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Records the wait upstream asked for (`Retry-After`).
    #[must_use]
    pub fn with_retry_after(mut self, d: Duration) -> Self {
        self.retry_after = Some(d);
        self
    }

    /// Records when the account's limit resets (`X-RateLimit-Reset`).
    #[must_use]
    pub fn with_reset_at(mut self, t: Timestamp) -> Self {
        self.reset_at = Some(t);
        self
    }

    /// Records the time spent on the attempt.
    #[must_use]
    pub fn with_elapsed(mut self, d: Duration) -> Self {
        self.elapsed = d;
        self
    }

    /// The status to show the client.
    pub fn http_status(&self) -> u16 {
        self.status.filter(|s| (400..600).contains(s)).unwrap_or_else(|| self.kind.default_status())
    }
}

/// Which of an upstream's OpenAI-compatible endpoints a body is posted to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST {base}/chat/completions`.
    #[default]
    Chat,
    /// `POST {base}/embeddings`.
    Embeddings,
}

impl Endpoint {
    /// The path below the provider's base URL.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat/completions",
            Endpoint::Embeddings => "embeddings",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorKind;

    /// The match has no wildcard: a new kind does not compile until it is given its
    /// place here, and `ALL` must then hold it there.
    #[test]
    fn all_lists_every_kind_in_order() {
        let place = |k: ErrorKind| match k {
            ErrorKind::RateLimitedModel => 0,
            ErrorKind::RateLimitedAccount => 1,
            ErrorKind::DailyCapReached => 2,
            ErrorKind::ModelUnavailable => 3,
            ErrorKind::ServerError => 4,
            ErrorKind::Timeout => 5,
            ErrorKind::Connection => 6,
            ErrorKind::ContextTooLong => 7,
            ErrorKind::BadRequest => 8,
            ErrorKind::Auth => 9,
            ErrorKind::TooLargeForBudget => 10,
            ErrorKind::PaymentRequired => 11,
            ErrorKind::Protocol => 12,
            ErrorKind::EmptyAnswer => 13,
            ErrorKind::LocalResource => 14,
        };
        for (i, k) in ErrorKind::ALL.into_iter().enumerate() {
            assert_eq!(place(k), i, "{k:?}");
        }
    }
}
