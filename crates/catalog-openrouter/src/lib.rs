//! The OpenRouter catalog adapter: parses `GET /models`, keeps the current snapshot
//! behind the core's `Catalog` port with a background refresh, a disk cache and an
//! embedded default catalog; also the system clock and the file-backed `StateStore`.

mod cache;
mod catalog;
mod clock;
mod embedded;
mod error;
mod parse;
mod store;

pub use cache::{CACHE_FORMAT, default_cache_path};
pub use catalog::{
    CatalogAdapterStats, CatalogConfig, DEFAULT_BASE_URL, DEFAULT_FETCH_TIMEOUT, DEFAULT_REFRESH_INTERVAL,
    OpenRouterCatalog, RefreshOutcome,
};
pub use clock::SystemClock;
pub use embedded::{EMBEDDED_FORMAT, EmbeddedCatalog, embedded_snapshot, embedded_snapshot_date};
pub use error::CatalogError;
pub use parse::{BodyShape, Parsed, SkippedEntry, openrouter_entry, parse_models, to_openrouter_json};
pub use store::{FileStateStore, atomic_write};
