//! Domain types for models: ids, capabilities, prices, and the catalog entry itself.
//!
//! `id` the model id, `caps` capabilities, `pricing` prices and the exact zero test,
//! `info` the catalog entry, `provider` a declared provider's provenance and billing,
//! `raw` an entry as served, `listing` OpenRouter's `/models` shape of an entry.

mod caps;
mod id;
mod info;
mod listing;
mod pricing;
mod provider;
mod raw;

pub use caps::{CapSet, Capability};
pub use id::ModelId;
pub use info::{EMBEDDINGS_MODALITY, EmbeddingQuirks, ModelInfo, OPENROUTER_PROVIDER};
pub use listing::to_openrouter_json;
pub use pricing::{Pricing, decimal_is_zero};
pub use provider::{Billing, Provenance};
pub use raw::RawEntry;
