//! The OpenRouter catalog adapter: parses `GET /models`, keeps the current snapshot
//! behind the core's `Catalog` port with a background refresh, a disk cache and an
//! embedded default catalog.

mod cache;
mod catalog;
mod embedded;
mod error;
mod parse;

pub use cache::{CACHE_FORMAT, default_cache_path};
pub use catalog::{
    CatalogAdapterStats, CatalogConfig, DEFAULT_BASE_URL, DEFAULT_FETCH_TIMEOUT, DEFAULT_REFRESH_INTERVAL,
    OpenRouterCatalog, RefreshOutcome,
};
pub use embedded::{EMBEDDED_FORMAT, EmbeddedCatalog, embedded_snapshot, embedded_snapshot_date};
pub use error::CatalogError;
pub use parse::{BodyShape, Parsed, SkippedEntry, openrouter_entry, parse_models};
