//! The adapter's typed errors. Messages never contain the API key: it only ever travels
//! in a request header that reqwest marks sensitive, and no header is formatted here.

use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The body is not a model list in either shape the API serves.
    #[error("catalog body is not a model list: {0}")]
    Body(String),
    #[error("catalog fetch failed: {0}")]
    Fetch(String),
    #[error("catalog fetch timed out after {0:?}")]
    Timeout(Duration),
    #[error("catalog fetch answered http {status}: {snippet}")]
    Status { status: u16, snippet: String },
    #[error("catalog body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The guard against a pool emptied by accident (an upstream glitch, a filtered
    /// answer): the current snapshot stays.
    #[error("fetched catalog has no free models while the current one has {previous}; keeping the current one")]
    NoFreeModels { previous: usize },
    #[error("http client: {0}")]
    Client(String),
}
