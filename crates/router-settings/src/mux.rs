//! The chat transport over every provider: each request goes to the provider that
//! serves its model (looked up in the union catalog), through that provider's own
//! HTTP transport, and never to a provider that was not declared.

use bytes::Bytes;
use futures_util::StreamExt;
use router_core::{
    Body, Catalog, ChatTransport, Endpoint, ErrorKind, ModelId, ModelInfo, TransportError, UpstreamResponse,
};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use tokio::sync::Semaphore;
use transport_http::LOCAL_BUSY_BACKOFF;

/// One provider's way out (OpenRouter's included): its transport and, for a server of
/// bounded capacity, its `max_concurrent` permits.
#[derive(Clone)]
pub(crate) struct Lane {
    transport: Arc<dyn ChatTransport>,
    permits: Option<Arc<Semaphore>>,
}

impl fmt::Debug for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lane").field("max_concurrent", &self.permits.is_some()).finish_non_exhaustive()
    }
}

impl Lane {
    pub(crate) fn new(transport: Arc<dyn ChatTransport>, max_concurrent: Option<u32>) -> Self {
        let permits = max_concurrent.map(|n| Arc::new(Semaphore::new(usize::try_from(n.max(1)).unwrap_or(usize::MAX))));
        Lane { transport, permits }
    }
}

/// Routes each send to its model's provider, by the provider's name.
pub(crate) struct ProviderMux {
    catalog: Arc<dyn Catalog>,
    lanes: BTreeMap<String, Lane>,
}

impl fmt::Debug for ProviderMux {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderMux").field("providers", &self.lanes.keys().collect::<Vec<_>>()).finish()
    }
}

impl ProviderMux {
    /// `lanes` holds every provider in force under its name, OpenRouter's under
    /// [`router_core::OPENROUTER_PROVIDER`] when it is one of them.
    pub(crate) fn new(catalog: Arc<dyn Catalog>, lanes: BTreeMap<String, Lane>) -> Self {
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
        let Some(lane) = self.lanes.get(provider) else {
            return Err(undeclared(model, provider));
        };
        let permit = match &lane.permits {
            None => None,
            Some(permits) => match Arc::clone(permits).try_acquire_owned() {
                Ok(p) => Some(p),
                // Beyond the server's capacity: another candidate now, this one shortly.
                Err(_) => {
                    let message = format!("provider `{provider}` is at its max_concurrent; nothing was sent");
                    return Err(
                        TransportError::new(ErrorKind::RateLimitedModel, message).with_retry_after(LOCAL_BUSY_BACKOFF)
                    );
                }
            },
        };
        let mut response = lane.transport.send_to(endpoint, model, body, stream).await?;
        if let (Some(permit), Body::Stream(_)) = (permit, &response.body) {
            // The permit is held until the stream is done or dropped.
            if let Body::Stream(s) = std::mem::replace(&mut response.body, Body::Full(Bytes::new())) {
                response.body = Body::Stream(Box::pin(s.map(move |item| {
                    let _held = &permit;
                    item
                })));
            }
        }
        Ok(response)
    }
}
