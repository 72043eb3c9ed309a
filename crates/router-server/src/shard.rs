//! Thread-per-core serving: one single-threaded runtime per core, each accepting on the
//! same listener and forwarding over its own upstream connection pool, so that a request
//! is read, routed, forwarded and answered on one thread without cross-thread wake-ups.

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
pub struct ShardedTransport {
    shards: Vec<Arc<HttpTransport>>,
}

impl ShardedTransport {
    pub fn new(first: Arc<HttpTransport>, more: impl IntoIterator<Item = Arc<HttpTransport>>) -> Self {
        ShardedTransport { shards: std::iter::once(first).chain(more).collect() }
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
        // Never empty: built from a first transport and more.
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
            Arc::new(HttpTransport::new(config).expect("a transport"))
        };
        let sharded = ShardedTransport::new(transport(), [transport()]);
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
}
