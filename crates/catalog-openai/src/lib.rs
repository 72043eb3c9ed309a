//! Catalogs of OpenAI-compatible providers (free tiers and the operator's own servers)
//! and the union catalog that the router routes over: OpenRouter's models under their
//! own ids, every other provider's as `<provider>/<upstream id>`.

mod catalog;
pub mod known;
mod union;

pub use catalog::{
    CACHE_FORMAT, DEFAULT_FETCH_TIMEOUT, DEFAULT_REFRESH_INTERVAL, FetchError, NOT_CHAT, OpenAiCatalog,
    ProviderCatalogConfig, ProviderCatalogStats, ProviderModels, build_models,
};
pub use known::{KnownProvider, ModelCaps, known_provider};
pub use union::UnionCatalog;
