//! The chat transport over every provider: each request goes to the provider that
//! serves its model (named by the catalog entry), through that provider's own HTTP
//! transport, and never to a provider that was not declared. It keeps no state: quotas,
//! rate limits and a server's `max_concurrent` are the core's.

use bytes::Bytes;
use router_core::{Catalog, ChatTransport, Endpoint, ErrorKind, ModelId, ModelInfo, TransportError, UpstreamResponse};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Routes each send to its model's provider, by the provider's name.
pub(crate) struct ProviderMux {
    catalog: Arc<dyn Catalog>,
    lanes: BTreeMap<String, Arc<dyn ChatTransport>>,
}

impl fmt::Debug for ProviderMux {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderMux").field("providers", &self.lanes.keys().collect::<Vec<_>>()).finish()
    }
}

impl ProviderMux {
    /// `lanes` holds every provider in force under its name, OpenRouter's under
    /// [`router_core::OPENROUTER_PROVIDER`] when it is one of them.
    pub(crate) fn new(catalog: Arc<dyn Catalog>, lanes: BTreeMap<String, Arc<dyn ChatTransport>>) -> Self {
        ProviderMux { catalog, lanes }
    }
}

/// Never sent: the model's provider is not one this process was configured with.
fn undeclared(model: &ModelId, provider: &str) -> TransportError {
    TransportError::new(
        ErrorKind::ModelUnavailable,
        format!("`{model}` belongs to provider `{provider}`, which is not configured; nothing was sent"),
    )
}

#[async_trait::async_trait]
impl ChatTransport for ProviderMux {
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
        let snap = self.catalog.snapshot();
        let Some(entry) = snap.get(model.as_str()) else {
            return Err(TransportError::new(ErrorKind::ModelUnavailable, format!("`{model}` is not in the catalog")));
        };
        self.send_model(endpoint, &entry.info, body, stream).await
    }

    /// The router's way in: the entry says its provider, nothing is looked up.
    async fn send_model(
        &self,
        endpoint: Endpoint,
        info: &ModelInfo,
        body: Bytes,
        stream: bool,
    ) -> Result<UpstreamResponse, TransportError> {
        let model = &info.id;
        let provider = info.provider_name();
        let Some(transport) = self.lanes.get(provider) else {
            return Err(undeclared(model, provider));
        };
        transport.send_to(endpoint, model, body, stream).await
    }
}
