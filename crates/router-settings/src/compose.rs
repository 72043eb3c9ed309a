//! The one composition both binaries use: the adapters and the router built from the
//! settings, and the background tasks of a long-running process.

use crate::clock::SystemClock;
use crate::settings::Settings;
use catalog_openrouter::{CatalogConfig, CatalogError, OpenRouterCatalog};
use router_core::{
    Catalog, ChatTransport, Clock, HealthPolicy, Ports, QuotaPolicy, Router, RouterConfig, StateStore, StoreError,
};
use state_file::FileStateStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use transport_http::{HttpTransport, TransportConfig, TransportInitError};

/// How often changed resilience state is written to disk: a crash loses at most this
/// much of the quota counts.
pub const PERSIST_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("catalog: {0}")]
    Catalog(#[from] CatalogError),
    #[error("transport: {0}")]
    Transport(#[from] TransportInitError),
    // Transparent: `{0}` and a source would print the store's message twice.
    #[error(transparent)]
    State(#[from] StoreError),
    #[error("shared state: {0}")]
    Shared(#[from] state_redis::RedisStateError),
}

/// The adapters and the router of a process.
#[derive(Clone, Debug)]
pub struct Composed {
    pub router: Arc<Router>,
    pub catalog: Arc<OpenRouterCatalog>,
    pub transport: Arc<HttpTransport>,
    /// The declared providers beside OpenRouter (none by default).
    pub providers: crate::pool::Providers,
}

/// The OpenRouter catalog adapter, starting from the disk cache or the embedded catalog.
pub fn catalog(settings: &Settings) -> Result<OpenRouterCatalog, CatalogError> {
    OpenRouterCatalog::new(
        CatalogConfig {
            base_url: settings.openrouter_base_url.clone(),
            api_key: settings.openrouter_api_key.clone(),
            refresh_interval: settings.refresh_interval_secs.get(),
            cache_path: settings.cache_path(),
            fetch_timeout: catalog_openrouter::DEFAULT_FETCH_TIMEOUT,
            extra_roots: settings.extra_roots().map_err(|e| CatalogError::Client(e.to_string()))?,
        },
        Arc::new(SystemClock),
    )
}

/// The HTTP transport to OpenRouter.
pub fn transport(settings: &Settings) -> Result<HttpTransport, TransportInitError> {
    HttpTransport::new(TransportConfig {
        base_url: settings.openrouter_base_url.clone(),
        api_key: settings.openrouter_api_key.clone(),
        referer: settings.http_referer.clone(),
        title: settings.x_title.clone(),
        connect_timeout: settings.connect_timeout_secs.get(),
        first_byte_timeout: settings.first_byte_timeout_secs.get(),
        idle_timeout: settings.idle_timeout_secs.get(),
        request_timeout: settings.request_timeout_secs.get(),
        max_answer_size: settings.max_answer_size,
        dialect: transport_http::Dialect::OpenRouter,
        streams_per_connection: settings.upstream_streams_per_connection,
        extra_roots: settings.extra_roots()?,
    })
}

/// The router's policy from the settings.
pub fn router_config(settings: &Settings) -> RouterConfig {
    RouterConfig {
        max_attempts: settings.max_attempts,
        deadline: settings.deadline_secs.get(),
        health: HealthPolicy { breaker_open: settings.breaker_open_secs.get(), ..HealthPolicy::default() },
        quota: QuotaPolicy { per_minute: settings.per_minute.get(), per_day: settings.per_day.get() },
        max_upstream_calls: settings.max_upstream_calls,
        empty_answers_fail: settings.empty_answers_fail,
        clamp_max_tokens: settings.clamp_max_tokens,
        max_sse_line: settings.max_sse_line,
        cheap_failure_bound: settings.cheap_failure_bound_ms.get(),
        max_cooling_wait: settings.max_cooling_wait_ms.get(),
        wait_stagger: settings.wait_stagger_ms.get(),
        sticky_sessions: settings.sticky_sessions,
        weighted: settings.weighted,
        weight_by_success: settings.weight_by_success,
        model_weights: settings.model_weights.0.iter().map(|(id, w)| (router_core::ModelId::new(id), *w)).collect(),
        providers: crate::pool::policies(settings),
    }
}

/// The router over `catalog` and `transport`, with the settings' policy and state file.
/// An unreadable state file must not keep the router down: it is set aside for
/// inspection and the router starts afresh, loudly.
pub fn router(
    settings: &Settings,
    catalog: Arc<dyn Catalog>,
    transport: Arc<dyn ChatTransport>,
) -> Result<Router, BuildError> {
    router_at(settings, settings.state_path(), catalog, transport)
}

/// [`router`] with the state at `state_path` (the CLI's `--state-path`), shared with
/// the other instances on Redis when `redis_url` is set.
pub fn router_at(
    settings: &Settings,
    state_path: Option<PathBuf>,
    catalog: Arc<dyn Catalog>,
    transport: Arc<dyn ChatTransport>,
) -> Result<Router, BuildError> {
    let router = local_router(settings, state_path, catalog, transport)?;
    Ok(match shared_state(settings)? {
        Some(shared) => router.with_shared(shared),
        None => router,
    })
}

/// The state shared with other instances (Redis), when `redis_url` is set. Connects to
/// nothing yet: that starts with the first request or the background tasks.
pub fn shared_state(settings: &Settings) -> Result<Option<Arc<dyn router_core::SharedState>>, BuildError> {
    let Some(url) = &settings.redis_url else { return Ok(None) };
    let mut config = state_redis::RedisConfig::new(url.clone());
    config.key_prefix.clone_from(&settings.redis_key_prefix);
    config.op_timeout = std::time::Duration::from_millis(settings.redis_timeout_ms.max(1));
    Ok(Some(Arc::new(state_redis::RedisState::new(config)?)))
}

fn local_router(
    settings: &Settings,
    state_path: Option<PathBuf>,
    catalog: Arc<dyn Catalog>,
    transport: Arc<dyn ChatTransport>,
) -> Result<Router, BuildError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = state_path.clone().map(|path| Arc::new(FileStateStore::new(path)) as Arc<dyn StateStore>);
    if store.is_none() {
        tracing::warn!("no data directory: cooldowns and quota counts will not survive a restart");
    }
    let ports = Ports { catalog, transport, clock, store };
    let config = router_config(settings);
    match Router::new(ports.clone(), config.clone()) {
        Ok(r) => Ok(r),
        Err(e) => {
            let Some(path) = state_path else { return Err(e.into()) };
            // A file that cannot even be moved (a data dir that is a file, no
            // permission): the reason it could not be read is the one to tell.
            let Ok(aside) = set_aside(&path) else { return Err(e.into()) };
            tracing::warn!(error = %e, moved_to = %aside, "resilience state unreadable; starting afresh");
            Ok(Router::new(ports, config)?)
        }
    }
}

fn set_aside(path: &Path) -> Result<String, StoreError> {
    let aside = path.with_extension("json.unreadable");
    std::fs::rename(path, &aside).map_err(|e| StoreError(format!("cannot move {} aside: {e}", path.display())))?;
    Ok(aside.display().to_string())
}

/// Builds the adapters and the router. No network call: the catalog starts from the
/// disk cache or the embedded snapshot.
pub fn build(settings: &Settings) -> Result<Composed, BuildError> {
    build_with(settings, |t| Ok(t.clone()))
}

/// [`build`], with the chat transport the router sends through made from the HTTP
/// transport by `chat` (the server spreads requests over one pool per serving thread).
pub fn build_with(
    settings: &Settings,
    chat: impl FnOnce(&Arc<HttpTransport>) -> Result<Arc<dyn ChatTransport>, BuildError>,
) -> Result<Composed, BuildError> {
    let catalog = Arc::new(catalog(settings)?);
    let transport = Arc::new(transport(settings)?);
    let crate::pool::Composition { catalog: union, transport: chat, providers } =
        crate::pool::compose(settings, catalog.clone(), chat(&transport)?)?;
    let router = Arc::new(router(settings, union, chat)?);
    router.attach_shared();
    Ok(Composed { router, catalog, transport, providers })
}

/// What `--check-config` checks beyond parsing: the adapters can be built, and the
/// state file (if any) can be read. Changes nothing on disk. Returns warnings.
pub fn validate(settings: &Settings) -> Result<Vec<String>, BuildError> {
    catalog(settings)?;
    transport(settings)?;
    shared_state(settings)?;
    let mut warnings = crate::pool::validate(settings)?;
    match settings.state_path() {
        Some(path) => {
            if let Err(e) = FileStateStore::new(path).load() {
                warnings.push(format!("{e}; the router would set it aside and start afresh"));
            }
        }
        None => warnings.push("no data directory: cooldowns and quota counts would not survive a restart".into()),
    }
    Ok(warnings)
}

/// The background tasks of a running process; they stop when dropped or aborted.
#[derive(Debug)]
pub struct Background {
    tasks: Vec<JoinHandle<()>>,
}

impl Background {
    pub fn abort(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.abort();
    }
}

impl Composed {
    /// Starts the catalog refresh loop, the state writer and, when the OpenRouter key is
    /// set and the daily limit was not configured, the look-up of the key's tier.
    pub fn spawn_background(&self, settings: &Settings) -> Background {
        // Listens to the other instances (when Redis is configured) from now on.
        self.router.attach_shared();
        let mut tasks = vec![spawn_persist(self.router.clone())];
        // OpenRouter is asked nothing when it is not one of the providers.
        if self.providers.openrouter {
            tasks.push(self.catalog.spawn_refresh_loop());
        }
        tasks.extend(self.providers.spawn_refresh_loops());
        // Upstream's daily count (and, when the daily limit was not configured, the key's
        // tier) is read at start, every few minutes and right after a daily-cap 429.
        if self.providers.openrouter && settings.openrouter_api_key.is_some() {
            let adopt_limit = !settings.per_day_explicit();
            let watch = crate::key_watch::watch(
                self.router.clone(),
                self.transport.clone(),
                adopt_limit,
                crate::key_watch::DEFAULT_KEY_REFRESH,
            );
            tasks.push(tokio::spawn(watch));
        }
        Background { tasks }
    }
}

/// Writes the resilience state when it changed; logs a failure once until it recovers
/// rather than at every tick.
fn spawn_persist(router: Arc<Router>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut failing = false;
        let mut tick = tokio::time::interval(PERSIST_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let r = router.clone();
            // File IO off the async workers.
            let result = tokio::task::spawn_blocking(move || r.persist()).await;
            match result {
                Ok(Ok(_)) => failing = false,
                Ok(Err(e)) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "cannot save the resilience state");
                }
                _ => {}
            }
        }
    })
}

/// One reading of the OpenRouter key, for a short-lived process (the CLI): upstream's
/// daily count reconciled with the local one and, when `per_day` was not configured, the
/// daily limit of the key's tier (1,000 instead of 50 for a key off the free tier).
pub async fn adopt_key_tier(router: &Router, transport: &HttpTransport, settings: &Settings) {
    if let Err(e) = crate::key_watch::sync_once(router, transport, !settings.per_day_explicit()).await {
        tracing::warn!(error = %e, "cannot read the upstream key; keeping the configured daily limit");
    }
}
