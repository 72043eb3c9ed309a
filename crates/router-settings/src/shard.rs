//! Thread-per-core sending: a server runs one single-threaded runtime per core, and
//! every upstream transport (OpenRouter's and each declared provider's) has one
//! connection pool per serving thread, so that a request is read, routed, forwarded and
//! answered on one thread without cross-thread wake-ups.

use bytes::Bytes;
use router_core::{ChatTransport, Endpoint, ModelId, TransportError, UpstreamResponse};
use std::cell::Cell;
use std::sync::Arc;
use transport_http::HttpTransport;

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(0) };
}

/// Marks the calling thread as serving shard `index`.
pub fn enter(index: usize) {
    SHARD.with(|s| s.set(index));
}

/// The shard the calling thread serves (0 outside any shard).
pub fn current() -> usize {
    SHARD.with(Cell::get)
}

/// One transport per shard; each request uses its own thread's, so the pooled upstream
/// connection is driven by the same runtime as the request.
#[derive(Debug)]
pub(crate) struct ShardedTransport {
    /// Never empty (see [`per_thread`]).
    shards: Vec<Arc<HttpTransport>>,
}

/// One transport per serving thread, each made by `make` (at least one).
pub(crate) fn per_thread<E>(
    shards: usize,
    mut make: impl FnMut() -> Result<Arc<HttpTransport>, E>,
) -> Result<ShardedTransport, E> {
    let shards = (0..shards.max(1)).map(|_| make()).collect::<Result<Vec<_>, E>>()?;
    Ok(ShardedTransport { shards })
}

impl ShardedTransport {
    /// The first shard's transport (the one a process's own tasks use).
    pub(crate) fn first(&self) -> &Arc<HttpTransport> {
        &self.shards[0]
    }

    /// As the router's transport: the one transport itself when there is one shard, so
    /// that a single-threaded process pays no look-up per request.
    pub(crate) fn into_chat(self) -> Arc<dyn ChatTransport> {
        match <[_; 1]>::try_from(self.shards) {
            Ok([one]) => one,
            Err(shards) => Arc::new(ShardedTransport { shards }),
        }
    }
}

#[async_trait::async_trait]
impl ChatTransport for ShardedTransport {
    async fn send(&self, model: &ModelId, body: Bytes, stream: bool) -> Result<UpstreamResponse, TransportError> {
        self.send_to(Endpoint::Chat, model, body, stream).await
    }

    async fn send_to(
        &self,
        endpoint: Endpoint,
        model: &ModelId,
        body: Bytes,
        stream: bool,
    ) -> Result<UpstreamResponse, TransportError> {
        let transport = self.shards.get(current() % self.shards.len()).unwrap_or(&self.shards[0]);
        transport.send_to(endpoint, model, body, stream).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fake_upstream::FakeUpstream;
    use transport_http::TransportConfig;

    #[tokio::test]
    async fn every_endpoint_reaches_the_shard_s_transport() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let up = FakeUpstream::start().await;
        let transport = || {
            let config = TransportConfig { base_url: up.base_url(), ..TransportConfig::default() };
            HttpTransport::new(config).map(Arc::new)
        };
        let sharded = per_thread(2, transport).expect("transports");
        let sharded = ShardedTransport { shards: sharded.shards };
        let model = ModelId::new("e/embed:free");
        let body = Bytes::from_static(br#"{"model":"e/embed:free","input":"x"}"#);
        let answer = sharded.send_to(Endpoint::Embeddings, &model, body, false).await.expect("answered");
        let router_core::Body::Full(bytes) = answer.body else { panic!("a whole answer") };
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(v["object"], "list", "{v}");
        assert_eq!(
            v["data"][0]["embedding"].as_array().map(Vec::len),
            Some(fake_upstream::DEFAULT_EMBEDDING_DIMENSION)
        );
    }

    #[test]
    fn one_shard_is_the_transport_itself() {
        let transport = || HttpTransport::new(TransportConfig::default()).map(Arc::new);
        let one = per_thread(0, transport).expect("a transport");
        let first = one.first().clone();
        let chat = one.into_chat();
        assert!(std::ptr::addr_eq(Arc::as_ptr(&chat), Arc::as_ptr(&first)), "no sharding layer for one thread");
        assert_eq!(per_thread(3, transport).expect("transports").shards.len(), 3);
    }
}
