//! Wiring: the core's `Router` built by `router-settings`, the composition the server
//! uses, so the CLI routes, falls back and counts quotas exactly as the server does.

use crate::catalog::Env;
use anyhow::{Context, Result};
use router_core::{
    CatalogSnapshot, ChatTransport, ErrorKind, FixedCatalog, ModelId, Router, Secret, TransportError, UpstreamResponse,
};
use std::sync::Arc;
use transport_http::HttpTransport;

/// The transport of a router that only explains: it never sends anything.
#[derive(Debug)]
pub(crate) struct Unsent;

#[async_trait::async_trait]
impl ChatTransport for Unsent {
    async fn send(&self, _: &ModelId, _: bytes::Bytes, _: bool) -> Result<UpstreamResponse, TransportError> {
        Err(TransportError::new(ErrorKind::Connection, "this router only explains; it sends nothing"))
    }
}

/// A router over a fixed snapshot, with the settings' policy and quotas and the saved
/// state at `--state-path`.
pub(crate) fn router(env: &Env, snapshot: Arc<CatalogSnapshot>, transport: Arc<dyn ChatTransport>) -> Result<Router> {
    let catalog = Arc::new(FixedCatalog(snapshot));
    router_settings::compose::router_at(&env.settings, Some(env.state_path.clone()), catalog, transport).with_context(
        || {
            format!(
                "cannot read the router state at {} (delete the file to start afresh, or pass --state-path)",
                env.state_path.display()
            )
        },
    )
}

/// The HTTP transport to the upstream, with the key and the settings' timeouts.
pub(crate) fn http_transport(env: &Env, key: Secret) -> Result<Arc<HttpTransport>> {
    let mut settings = env.settings.clone();
    settings.openrouter_api_key = Some(key);
    let transport = router_settings::compose::transport(&settings).context("cannot set up the http client")?;
    Ok(Arc::new(transport))
}
