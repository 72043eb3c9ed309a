//! Wiring: the core's `Router` built from the adapters, as the server builds it, so the
//! CLI routes, falls back and counts quotas exactly as the server does.

use crate::catalog::Env;
use anyhow::{Context, Result};
use catalog_openrouter::FileStateStore;
use router_core::{
    CatalogSnapshot, ChatTransport, ErrorKind, FixedCatalog, ModelId, Ports, Router, RouterConfig, Secret,
    TransportError, UpstreamResponse,
};
use std::sync::Arc;

/// The transport of a router that only explains: it never sends anything.
#[derive(Debug)]
pub struct Unsent;

#[async_trait::async_trait]
impl ChatTransport for Unsent {
    async fn send(&self, _: &ModelId, _: bytes::Bytes, _: bool) -> Result<UpstreamResponse, TransportError> {
        Err(TransportError::new(ErrorKind::Connection, "this router only explains; it sends nothing"))
    }
}

/// A router over a fixed snapshot, with the saved state at `--state-path`.
pub fn router(env: &Env, snapshot: Arc<CatalogSnapshot>, transport: Arc<dyn ChatTransport>) -> Result<Router> {
    let store = FileStateStore::new(env.state_path.clone());
    let ports = Ports {
        catalog: Arc::new(FixedCatalog(snapshot)),
        transport,
        clock: env.clock(),
        store: Some(Arc::new(store)),
    };
    Router::new(ports, RouterConfig::default()).with_context(|| {
        format!(
            "cannot read the router state at {} (delete the file to start afresh, or pass --state-path)",
            env.state_path.display()
        )
    })
}

/// The HTTP transport to the upstream, with the key.
pub fn http_transport(env: &Env, key: Secret) -> Result<Arc<dyn ChatTransport>> {
    let config = transport_http::TransportConfig {
        base_url: env.base_url.clone(),
        api_key: Some(key),
        ..transport_http::TransportConfig::default()
    };
    let transport = transport_http::HttpTransport::new(config).context("cannot set up the http client")?;
    Ok(Arc::new(transport))
}
