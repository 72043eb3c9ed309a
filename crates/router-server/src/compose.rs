//! Composition: the router from `router_settings::build` (the same one the CLI builds,
//! with one upstream pool per serving thread) and the HTTP application's state.

use crate::config::Config;
use crate::state::AppState;
use router_core::Router;
use router_settings::adapters::HttpTransport;
use router_settings::{Catalogs, Options};
use std::sync::Arc;

pub use router_settings::{Background, BuildError};

/// Everything a running server is made of.
#[derive(Clone, Debug)]
pub struct Server {
    pub state: AppState,
    pub router: Arc<Router>,
    /// Every catalog in force, OpenRouter's among them when it is a provider.
    pub catalogs: Catalogs,
    /// What reads the upstream key's own quota, when a provider's quota is its key's.
    pub key_reader: Option<Arc<HttpTransport>>,
    /// The declared providers beside OpenRouter.
    pub providers: router_settings::Providers,
}

/// What `--check-config` checks beyond parsing: the adapters can be built, and the
/// state file (if any) can be read. Changes nothing on disk. Returns warnings.
pub fn validate(config: &Config) -> Result<Vec<String>, BuildError> {
    router_settings::validate(config)
}

/// Builds the adapters and the router. No network call: the catalog starts from the
/// disk cache or the embedded snapshot.
pub fn build(config: &Config) -> Result<Server, BuildError> {
    build_sharded(config, 1)
}

/// [`build`] for `shards` single-threaded runtimes (see [`crate::shard`]): one upstream
/// connection pool per shard and provider, each request using its own thread's.
pub fn build_sharded(config: &Config, shards: usize) -> Result<Server, BuildError> {
    let composed = router_settings::build(config, &Options { shards, ..Options::default() })?;
    let state = AppState::new(composed.router.clone())
        .with_catalogs(composed.catalogs.clone())
        .with_client_keys(config.api_keys.clone())
        .with_seed(config.seed)
        .with_max_body_size(config.max_body_size)
        .with_hosts(crate::host::HostCheck::new(config.listen, &config.allowed_hosts))
        .with_messages(router_dialects::anthropic::Options {
            serve_claude_ids: config.messages_serve_claude_ids,
            refuse_server_tools: config.messages_refuse_server_tools,
        })
        .with_responses_tools(router_dialects::responses::ToolPolicy::refusing(config.responses_refuse_unserved_tools))
        .with_default_embedding_family(config.default_embedding_family.clone());
    let router_settings::Composed { router, catalogs, key_reader, providers, .. } = composed;
    Ok(Server { state, router, catalogs, key_reader, providers })
}

impl Server {
    /// Starts the catalog refresh loops, the state writer and, when the upstream key is
    /// set and the daily limit was not configured, the look-up of the key's tier.
    pub fn spawn_background(&self, config: &Config) -> Background {
        Background::start(&self.router, &self.catalogs, self.key_reader.as_ref(), config)
    }
}
