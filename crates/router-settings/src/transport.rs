//! The one mapping of the settings onto an upstream's HTTP transport, for OpenRouter
//! and for each declared provider.

use crate::provider::{ProviderKind, ProviderSettings};
use crate::settings::Settings;
use router_core::Secret;
use std::time::Duration;
use transport_http::{Dialect, HttpTransport, TransportConfig, TransportInitError};

/// The HTTP transport of the base adapters (OpenRouter's), from the flat settings.
pub(crate) fn base_transport(settings: &Settings) -> Result<HttpTransport, TransportInitError> {
    let upstream = Upstream {
        base_url: settings.openrouter_base_url.clone(),
        api_key: settings.openrouter_api_key.clone(),
        dialect: ProviderKind::BASE.dialect(false),
        provider: None,
    };
    http_transport(settings, upstream)
}

/// What tells one upstream's transport from another's; the rest is the settings'.
pub(crate) struct Upstream<'a> {
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub dialect: Dialect,
    /// A declared provider's own timeouts, where set.
    pub provider: Option<&'a ProviderSettings>,
}

/// The one mapping of the settings onto an upstream's HTTP transport. The attribution
/// headers are one of OpenRouter's request extensions, sent only where the dialect takes
/// them; a provider's own timeouts win (some free endpoints hang for minutes).
pub(crate) fn http_transport(settings: &Settings, up: Upstream<'_>) -> Result<HttpTransport, TransportInitError> {
    let attribution = up.dialect.takes_extensions();
    let own = |get: fn(&ProviderSettings) -> Option<u64>| up.provider.and_then(get).map(Duration::from_secs);
    HttpTransport::new(TransportConfig {
        base_url: up.base_url,
        api_key: up.api_key,
        referer: settings.http_referer.clone().filter(|_| attribution),
        title: settings.x_title.clone().filter(|_| attribution),
        connect_timeout: settings.connect_timeout_secs.get(),
        first_byte_timeout: own(|p| p.first_byte_timeout_secs).unwrap_or(settings.first_byte_timeout_secs.get()),
        idle_timeout: own(|p| p.idle_timeout_secs).unwrap_or(settings.idle_timeout_secs.get()),
        request_timeout: settings.request_timeout_secs.get(),
        max_answer_size: settings.max_answer_size,
        dialect: up.dialect,
        streams_per_connection: settings.upstream_streams_per_connection,
        extra_roots: settings.extra_roots()?,
    })
}
