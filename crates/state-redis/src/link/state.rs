//! The shared-state adapter: built without connecting, started once (the background
//! tasks), and the router's `SharedState` calls on it.

use super::config::{RedisConfig, RedisStateError, check};
use super::events::{publisher, subscriber};
use super::heartbeat::heartbeat;
use super::inner::{Inner, now_ms};
use router_core::SharedState;
use router_core::shared::{
    EventSink, ReserveOutcome, ReserveRequest, SharedError, SharedEvent, SharedStatus, TokenCorrection, TokenOutcome,
    TokenReserve,
};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, Weak};

/// The shared-state adapter. Cheap to clone; building it connects to nothing: the
/// connection starts with the first use or [`start`](Self::start), inside a tokio runtime.
#[derive(Clone)]
pub struct RedisState {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState").field("prefix", &self.inner.config.key_prefix).finish_non_exhaustive()
    }
}

impl RedisState {
    pub fn new(config: RedisConfig) -> Result<Self, RedisStateError> {
        check(&config)?;
        let client =
            redis::Client::open(config.url.expose()).map_err(|e| RedisStateError::Url(format!("{:?}", e.kind())))?;
        Ok(RedisState { inner: Arc::new(Inner::new(config, client)) })
    }

    /// Starts the heartbeat, the subscriber and the publisher on the current tokio
    /// runtime (once; later calls do nothing). They stop when the adapter is dropped.
    pub fn start(&self) {
        if tokio::runtime::Handle::try_current().is_err() || self.inner.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let rx = self.inner.outbox_rx.lock().unwrap_or_else(PoisonError::into_inner).take();
        tokio::spawn(heartbeat(weak.clone()));
        tokio::spawn(subscriber(weak.clone()));
        if let Some(rx) = rx {
            tokio::spawn(publisher(weak, rx));
        }
    }

    /// This instance's id among the others.
    pub fn instance_id(&self) -> &str {
        &self.inner.id
    }
}

#[async_trait::async_trait]
impl SharedState for RedisState {
    async fn reserve(&self, request: &ReserveRequest) -> Result<ReserveOutcome, SharedError> {
        self.start();
        let inner = &self.inner;
        if let Some(reason) = inner.is_refused() {
            // A configuration error: said as such, never spent as an outage's share.
            return Err(SharedError::Refused(reason));
        }
        let local = |e: SharedError| {
            inner.local_reservations.fetch_add(1, Ordering::Relaxed);
            // Settling starts with the first local decision (0: not settling).
            let _ = inner.settle_from.compare_exchange(0, now_ms(), Ordering::AcqRel, Ordering::Acquire);
            Err(e)
        };
        if let Some(reason) = inner.is_down() {
            // Known to be away: no waiting on it; the heartbeat says when it is back.
            return local(SharedError::Unavailable(reason));
        }
        let Some(mut conn) = inner.conn() else { return local(SharedError::Unavailable("no runtime".into())) };
        match inner.run(&mut conn, request, inner.config.op_timeout).await {
            Err(e @ SharedError::Refused(_)) => Err(e),
            Err(e) => local(e),
            ok => ok,
        }
    }

    async fn reserve_tokens(&self, request: &TokenReserve) -> Result<TokenOutcome, SharedError> {
        self.start();
        let inner = &self.inner;
        if let Some(reason) = inner.is_refused() {
            return Err(SharedError::Refused(reason));
        }
        if let Some(reason) = inner.is_down() {
            return Err(SharedError::Unavailable(reason));
        }
        let Some(mut conn) = inner.conn() else { return Err(SharedError::Unavailable("no runtime".into())) };
        inner.run_tokens(&mut conn, request, inner.config.op_timeout).await
    }

    fn correct_tokens(&self, correction: TokenCorrection) {
        self.start();
        if self.inner.is_down().is_some() || tokio::runtime::Handle::try_current().is_err() {
            // The charge stands: counted up front, it errs safe.
            return;
        }
        let Some(mut conn) = self.inner.conn() else { return };
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move { inner.run_correction(&mut conn, &correction).await });
    }

    fn publish(&self, event: SharedEvent) {
        self.start();
        let _ = self.inner.outbox.send(event);
    }

    fn attach(&self, sink: Weak<dyn EventSink>) {
        *self.inner.sink.lock().unwrap_or_else(PoisonError::into_inner) = Some(sink);
        self.start();
    }

    fn status(&self) -> SharedStatus {
        let inner = &self.inner;
        let down = match inner.is_refused() {
            Some(r) => Some(format!("configuration error: Redis refuses this instance's credentials ({r})")),
            None => inner.is_down(),
        };
        let known = inner.known.load(Ordering::Acquire) || down.is_some();
        SharedStatus {
            connected: known && down.is_none(),
            reason: if known { down } else { Some("connecting".into()) },
            instances: inner.instances.load(Ordering::Relaxed).max(1),
            local_reservations: inner.local_reservations.load(Ordering::Relaxed),
            events_received: inner.events_received.load(Ordering::Relaxed),
            settling: inner.settle_from.load(Ordering::Acquire) != 0,
        }
    }
}
