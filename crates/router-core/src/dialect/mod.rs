//! How each upstream dialect says what went wrong: one classifier per dialect, each a
//! table a reader can check against the provider's documentation, used for HTTP error
//! answers and for errors inside a 200 alike. Pure: the transport hands over the status,
//! a header lookup and the body.

pub mod openai;
pub mod openrouter;

use crate::model::{Billing, ModelInfo};
use crate::time::Timestamp;
use crate::upstream::TransportError;
use serde_json::Value;

/// Looks up an answer's header by its lowercase name.
pub type Headers<'a> = &'a dyn Fn(&str) -> Option<&'a str>;

/// Whose answers a transport reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    /// OpenRouter: its error objects, `X-RateLimit-*` and its limit sources.
    #[default]
    OpenRouter,
    /// A plain OpenAI-compatible server (see [`openai`]).
    OpenAi {
        /// The operator's own server, whose 429 and 503 mean "busy".
        local: bool,
    },
}

impl Dialect {
    /// The dialect `info`'s upstream speaks: OpenRouter's for its own models, the
    /// OpenAI dialect for every declared provider.
    pub fn of(info: &ModelInfo) -> Self {
        match &info.provider {
            None => Dialect::OpenRouter,
            Some(p) => Dialect::OpenAi { local: p.billing == Billing::Local },
        }
    }

    /// Whether the upstream takes OpenRouter's request extensions (`provider`, `models`,
    /// `transforms`, ...); any other upstream is sent a plain OpenAI-dialect body.
    pub fn takes_extensions(self) -> bool {
        matches!(self, Dialect::OpenRouter)
    }

    /// Whether the account's request quota is its key's own (OpenRouter's `/key`: the
    /// tier's requests a minute and a day), kept in the account ledger, read back from
    /// the upstream's counter and shared over the link; otherwise the account keeps the
    /// limits and token budgets the operator declared for it.
    pub fn quota_is_the_keys(self) -> bool {
        matches!(self, Dialect::OpenRouter)
    }

    /// Whether the upstream's host breaker counts while its models are the whole pool.
    /// OpenRouter's does not: every model is behind its one host, and an open breaker
    /// would only turn every request into a 503. A plain server's does, alone or not.
    pub fn breaker_when_alone(self) -> bool {
        !matches!(self, Dialect::OpenRouter)
    }

    /// Classifies a non-2xx answer. `now` dates OpenRouter's rate-limit resets.
    pub fn classify(self, status: u16, header: Headers<'_>, body: &[u8], now: Timestamp) -> TransportError {
        match self {
            Dialect::OpenRouter => {
                openrouter::classify_http(status, &openrouter::LimitHeaders::read(header), body, now)
            }
            Dialect::OpenAi { local } => openai::classify_openai(status, header, body, local),
        }
    }

    /// How long the model that gave an answer with these headers has no request left,
    /// when the answer says so.
    pub fn requests_spent_for(self, header: Headers<'_>) -> Option<std::time::Duration> {
        match self {
            // OpenRouter's `X-RateLimit-*` are the account's, kept by the quota ledger.
            Dialect::OpenRouter => None,
            Dialect::OpenAi { .. } => openai::requests_spent_for(header),
        }
    }

    /// Classifies an `error` object found inside a 200 (a body, or a stream event).
    pub fn classify_in_band(self, error: &Value, now: Timestamp) -> TransportError {
        match self {
            Dialect::OpenRouter => openrouter::classify_in_band(error, now),
            Dialect::OpenAi { local } => openai::classify_openai_in_band(error, local),
        }
    }
}
