//! The ports: what the core needs from the outside world, as traits that adapters
//! implement (reqwest, files, the system clock) and tests mock.

use crate::catalog::CatalogSnapshot;
use crate::health::HealthState;
use crate::model::{ModelId, ModelInfo};
use crate::shared::{
    EventSink, ReserveOutcome, ReserveRequest, SharedError, SharedEvent, SharedStatus, TokenCorrection, TokenOutcome,
    TokenReserve,
};
use crate::time::Timestamp;
use crate::upstream::{Endpoint, TransportError, UpstreamResponse};
use bytes::Bytes;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The current catalog. Reading it must never wait for a fetch: adapters keep the
/// last good snapshot and swap in a new one when a refresh succeeds.
#[cfg_attr(test, mockall::automock)]
pub trait Catalog: Send + Sync {
    /// The last good snapshot; never waits for a fetch.
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
    /// The current instant.
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
    /// The state saved last; `None` when nothing has been saved yet.
    fn load(&self) -> Result<Option<HealthState>, StoreError>;
    /// Replaces the saved state with `state`.
    fn save(&self, state: &HealthState) -> Result<(), StoreError>;
}

/// A [`StateStore`] could not load or save; the text says why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("state store: {0}")]
pub struct StoreError(pub String);

/// Sends one request body to one model: a chat completion, or (through
/// [`send_to`](Self::send_to)) another endpoint of the same upstream.
#[cfg_attr(test, mockall::automock)]
#[async_trait::async_trait]
pub trait ChatTransport: Send + Sync {
    /// `body` already names `model`. A 2xx answer is `Ok`; anything else is a
    /// classified [`TransportError`].
    async fn send(&self, model: &ModelId, body: Bytes, stream: bool) -> Result<UpstreamResponse, TransportError>;

    /// [`send`](Self::send) to `endpoint`. A transport that knows only chat refuses any
    /// other endpoint without sending anything.
    async fn send_to(
        &self,
        endpoint: Endpoint,
        model: &ModelId,
        body: Bytes,
        stream: bool,
    ) -> Result<UpstreamResponse, TransportError> {
        match endpoint {
            Endpoint::Chat => self.send(model, body, stream).await,
            Endpoint::Embeddings => Err(TransportError::new(
                crate::upstream::ErrorKind::ModelUnavailable,
                format!("the transport for `{model}` has no embeddings endpoint; nothing was sent"),
            )),
        }
    }

    /// [`send_to`](Self::send_to) the catalog entry `model`: what the router calls, so
    /// that a transport over several providers reads the entry's provider instead of
    /// looking the model up again.
    async fn send_model(
        &self,
        endpoint: Endpoint,
        model: &ModelInfo,
        body: Bytes,
        stream: bool,
    ) -> Result<UpstreamResponse, TransportError> {
        self.send_to(endpoint, &model.id, body, stream).await
    }
}

/// State shared with the other router instances of a deployment (a Redis adapter).
///
/// The router calls [`reserve`](Self::reserve) once per upstream attempt and nothing
/// else on the request path; the adapter must answer within a short bound of its own
/// (it owns the timer) and otherwise say [`SharedError::Timeout`], and the router then
/// decides locally. Events go out with [`publish`](Self::publish), which must not wait;
/// events from other instances come back through the [`EventSink`] given to [`attach`](Self::attach).
#[async_trait::async_trait]
pub trait SharedState: Send + Sync {
    /// Counts one upstream request against the shared quotas atomically, after adding
    /// the request's backlog; claims the probe when the request carries one.
    async fn reserve(&self, request: &ReserveRequest) -> Result<ReserveOutcome, SharedError>;

    /// Counts an attempt's tokens against shared token budgets atomically (all of them,
    /// or none when one cannot take them). A store that shares no token budgets says it
    /// is unavailable, and the instance decides within its share.
    async fn reserve_tokens(&self, request: &TokenReserve) -> Result<TokenOutcome, SharedError> {
        let _ = request;
        Err(SharedError::Unavailable("this shared store keeps no token budgets".to_owned()))
    }

    /// Corrects a token charge from the answer's `usage`; queued and sent in the
    /// background, like [`publish`](Self::publish).
    fn correct_tokens(&self, correction: TokenCorrection) {
        let _ = correction;
    }

    /// Tells every instance; queued and sent in the background (kept for a later
    /// connection when the store is unreachable).
    fn publish(&self, event: SharedEvent);

    /// The link's state for `/readyz` and `/metrics`.
    fn status(&self) -> SharedStatus;

    /// Where to deliver other instances' events from now on; also starts listening when
    /// called inside an async runtime. Calling it again replaces the sink.
    fn attach(&self, sink: Weak<dyn EventSink>);
}
