//! The pure core of the free models router: requirement analysis, free-model
//! filtering, seedable selection, resilience state, and the routing service over ports.
//!
//! No IO happens here: no sockets, files, clock or environment reads, no global RNG.
//! Time comes in through the [`Clock`] port or as arguments; randomness as a seed.
//! See `docs/architecture.md`.
//!
//! The decision on its own, with no ports at all:
//!
//! ```
//! use router_core::{CatalogSnapshot, CatalogSource, ChatRequest, ModelInfo, Timestamp, filter, select};
//!
//! let model = |id: &str, price: &str, params: &[&str]| {
//!     let mut m = ModelInfo::new(id);
//!     m.context_length = Some(131_072);
//!     m.input_modalities = vec!["text".into()];
//!     m.output_modalities = vec!["text".into()];
//!     m.supported_parameters = params.iter().map(|p| p.to_string()).collect();
//!     m.pricing.0.insert("prompt".into(), price.into());
//!     m.pricing.0.insert("completion".into(), price.into());
//!     m
//! };
//! let now = Timestamp::from_secs(1_790_000_000);
//! let catalog = CatalogSnapshot::new(
//!     vec![
//!         model("qwen/qwen3-coder:free", "0", &["tools"]),
//!         model("meta-llama/llama-3.3-70b-instruct:free", "0", &[]),
//!         model("openai/gpt-4o", "0.0000025", &["tools"]), // paid: never a candidate
//!     ],
//!     CatalogSource::Memory,
//!     now,
//! );
//! let req = ChatRequest::from_slice(br#"{"model": "openrouter/free",
//!     "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
//!     "tools": [{"type": "function", "function": {"name": "get_weather"}}]}"#)?;
//!
//! let f = filter::filter(&catalog, req.requirements(), now);
//! let ids: Vec<&str> = f.candidates.iter().map(|&i| catalog.entries()[i].info.id.as_str()).collect();
//! assert_eq!(ids, ["qwen/qwen3-coder:free"]);
//! // The same seed and candidate set always give the same pick.
//! let pick = select::pick_with_seed(&f.candidates, 42).map(|&i| &catalog.entries()[i].info.id);
//! assert_eq!(pick.map(|id| id.as_str()), Some("qwen/qwen3-coder:free"));
//! # Ok::<(), router_core::RequestError>(())
//! ```

#![warn(missing_docs)]

// The modules in dependency order, layer by layer: each uses only modules in the layers
// above it (`cargo xtask modules` fails on a circle; docs/architecture.md walks the same
// order).

// Leaves: time, secrets, the model, the pick rules.
pub mod model;
pub mod secret;
pub mod select;
pub mod sticky;
pub mod time;

// The free rule, the quotas, the request, what comes back from upstream.
pub mod free;
pub mod quota;
pub mod request;
pub mod upstream;

// The catalog snapshot, the one classifier, errors, per-model health, event streams.
pub mod catalog;
pub mod dialect;
pub mod error;
pub mod health;
pub mod sse;

// Filtering, the route report, the state shared between instances.
pub mod filter;
pub mod report;
pub mod shared;

// The explanation and the ports.
pub mod explain;
pub mod ports;

// The routing service, then OpenRouter's metadata built from its report.
pub mod router;

// Embeddings: families, their requests and answers (routed by the same router).
pub mod embeddings;

pub mod metadata;

pub use catalog::{CatalogSnapshot, CatalogSource, CatalogStats};
pub use dialect::Dialect;
pub use dialect::openrouter::{LimitHeaders, LimitSource, classify_http, classify_in_band};
pub use error::RouteError;
pub use explain::{CoolingEntry, Explanation, ProviderEntry, RejectedEntry, WeightEntry};
pub use filter::{Filtered, Reason, Rejection, Shortfall, filter};
pub use free::{NotFree, is_free, not_free_reasons};
pub use health::{Cooldown, CooldownCause, HealthPolicy, HealthState, SuccessRates};
pub use model::{
    Billing, CapSet, Capability, ModelId, ModelInfo, OPENROUTER_PROVIDER, Pricing, Provenance, RawEntry,
    to_openrouter_json,
};
pub use ports::{Catalog, ChatTransport, Clock, FixedCatalog, SharedState, StateStore, StoreError};
pub use quota::{DaySource, QuotaBlock, QuotaPolicy, QuotaReport, QuotaScope, QuotaState, UpstreamDay};
pub use request::{
    ChatRequest, MAX_MODEL_ID_BYTES, MAX_MODELS, MAX_SESSION_KEY_BYTES, ROUTER_MODEL_ID, RequestError, Requirements,
    Target, WrittenMember,
};
pub use router::{Attempt, PickKind, Ports, RouteFailure, RouteReport, Routed, Router, RouterConfig};
pub use secret::{MAX_KEPT_TEXT_BYTES, Secret, redact, scrub};
pub use time::Timestamp;
pub use upstream::Endpoint;
pub use upstream::{Body, ByteStream, ErrorKind, TransportError, UpstreamResponse};
