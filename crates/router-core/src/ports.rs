//! The ports: what the core needs from the outside world, as traits that adapters
//! implement (reqwest, files, the system clock) and tests mock.

use crate::catalog::CatalogSnapshot;
use crate::health::HealthState;
use crate::model::ModelId;
use crate::time::Timestamp;
use crate::upstream::{TransportError, UpstreamResponse};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// The current catalog. Reading it must never wait for a fetch: adapters keep the
/// last good snapshot and swap in a new one when a refresh succeeds.
#[cfg_attr(test, mockall::automock)]
pub trait Catalog: Send + Sync {
    fn snapshot(&self) -> Arc<CatalogSnapshot>;
}

/// A catalog that never changes: one snapshot behind the [`Catalog`] port, for a one-shot
/// command, an embedding that manages its own catalog, tests and benches.
#[derive(Debug)]
pub struct FixedCatalog(pub Arc<CatalogSnapshot>);

impl Catalog for FixedCatalog {
    fn snapshot(&self) -> Arc<CatalogSnapshot> {
        self.0.clone()
    }
}

/// Wall-clock time, the core's only source of "now", and the only way it waits.
#[cfg_attr(test, mockall::automock)]
#[async_trait::async_trait]
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;

    /// Waits for `duration` (a request waiting for a cooling model to recover) and says
    /// whether it did. A clock that cannot wait (the default) answers `false` at once,
    /// and the router answers 429 as it would without waiting.
    async fn sleep(&self, duration: Duration) -> bool {
        let _ = duration;
        false
    }
}

/// Somewhere to keep the router's resilience state (cooldowns, quota counts, an
/// account block) across restarts.
#[cfg_attr(test, mockall::automock)]
pub trait StateStore: Send + Sync {
    fn load(&self) -> Result<Option<HealthState>, StoreError>;
    fn save(&self, state: &HealthState) -> Result<(), StoreError>;
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("state store: {0}")]
pub struct StoreError(pub String);

/// Sends one chat-completion request body to one model.
#[cfg_attr(test, mockall::automock)]
#[async_trait::async_trait]
pub trait ChatTransport: Send + Sync {
    /// `body` already names `model`. A 2xx answer is `Ok`; anything else is a
    /// classified [`TransportError`].
    async fn send(&self, model: &ModelId, body: Bytes, stream: bool) -> Result<UpstreamResponse, TransportError>;
}
