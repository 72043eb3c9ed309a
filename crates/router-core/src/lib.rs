//! The pure core of the free models router: requirement analysis, free-model
//! filtering, seedable selection, resilience state, and the routing service over ports.
//!
//! No IO happens here: no sockets, files, clock or environment reads, no global RNG.
//! Time comes in through the [`Clock`] port or as arguments; randomness as a seed.
//! See `docs/architecture.md`.

pub mod catalog;
pub mod error;
pub mod filter;
pub mod free;
pub mod health;
pub mod model;
pub mod ports;
pub mod request;
pub mod router;
pub mod secret;
pub mod select;
pub mod sse;
pub mod time;

pub use catalog::{CatalogSnapshot, CatalogSource, CatalogStats};
pub use error::RouteError;
pub use filter::{Filtered, Reason, Rejection, Shortfall, filter};
pub use free::{NotFree, is_free, not_free_reasons};
pub use health::{Cooldown, CooldownCause, HealthPolicy, HealthState, QuotaBlock, QuotaReport, QuotaScope};
pub use model::{CapSet, Capability, ModelId, ModelInfo, Pricing};
pub use ports::{
    Body, ByteStream, Catalog, ChatTransport, Clock, ErrorKind, StateStore, StoreError, TransportError,
    UpstreamResponse,
};
pub use request::{ChatRequest, RequestError, Requirements, Target};
pub use router::{Attempt, Explanation, Ports, RouteFailure, RouteReport, Routed, Router, RouterConfig};
pub use secret::Secret;
pub use time::Timestamp;
