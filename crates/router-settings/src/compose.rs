//! The one composition both binaries use: the adapters and the router built from the
//! settings, and the background tasks of a long-running process.

use crate::clock::SystemClock;
use crate::refreshes::Catalogs;
use crate::settings::Settings;
use crate::transport::base_transport;
use catalog_openrouter::CatalogError;
use catalog_refresh::Refreshed;
use router_core::{
    Catalog, CatalogSnapshot, ChatTransport, Clock, HealthPolicy, Ports, QuotaPolicy, Router, RouterConfig, StateStore,
    StoreError,
};
use state_file::FileStateStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use transport_http::{HttpTransport, TransportInitError};

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

/// What a binary asks of the composition beyond the settings.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Serving threads, each sending over its own upstream connection pools (see
    /// [`crate::shard`]); 0 and 1 both mean one.
    pub shards: usize,
    /// The resilience state here instead of in the data directory (`--state-path`).
    pub state_path: Option<PathBuf>,
    /// OpenRouter's catalog cache here instead of in the cache directory (`--cache-path`);
    /// the declared providers' caches sit beside it.
    pub cache_path: Option<PathBuf>,
    /// A fixed catalog (a `/models` file the user named) in place of every provider's
    /// live one: the router routes over it alone, each model to its provider.
    pub catalog: Option<Arc<CatalogSnapshot>>,
}

/// The adapters and the router of a process.
#[derive(Clone, Debug)]
pub struct Composed {
    pub router: Arc<Router>,
    /// Every catalog in force, each with its refresh loop (a one-shot process refreshes
    /// them itself).
    pub catalogs: Catalogs,
    /// The transport that reads the upstream key's own quota (OpenRouter's `/key`), on
    /// the first serving thread, when a provider's quota is its key's.
    pub key_reader: Option<Arc<HttpTransport>>,
    /// The declared providers beside OpenRouter (none by default).
    pub providers: crate::pool::Providers,
}

/// The router's policy from the settings.
fn router_config(settings: &Settings) -> RouterConfig {
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

/// The router over `catalog` and `transport`, with the settings' policy and the state
/// at `state_path`, shared with the other instances on Redis when `redis_url` is set.
fn router(
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
fn shared_state(settings: &Settings) -> Result<Option<Arc<dyn router_core::SharedState>>, BuildError> {
    let Some(url) = &settings.redis_url else { return Ok(None) };
    let mut config = state_redis::RedisConfig::new(url.clone());
    config.key_prefix.clone_from(&settings.redis_key_prefix);
    config.op_timeout = std::time::Duration::from_millis(settings.redis_timeout_ms.max(1));
    Ok(Some(Arc::new(state_redis::RedisState::new(config)?)))
}

/// An unreadable state file must not keep the router down: it is set aside for
/// inspection and the router starts afresh, loudly.
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

/// Builds the adapters and the router, the same for both binaries. No network call:
/// every catalog starts from its disk cache or the embedded snapshot.
pub fn build(settings: &Settings, options: &Options) -> Result<Composed, BuildError> {
    let cache_path = options.cache_path.clone().or_else(|| settings.cache_path());
    let state_path = options.state_path.clone().or_else(|| settings.state_path());
    let catalog = Arc::new(settings.base_catalog(cache_path.clone())?);
    let transports = crate::shard::per_thread(options.shards, || base_transport(settings).map(Arc::new))?;
    let transport = transports.first().clone();
    let base: Arc<dyn Catalog> = match &options.catalog {
        Some(fixed) => Arc::new(router_core::FixedCatalog(fixed.clone())),
        None => catalog.clone(),
    };
    let parts = crate::pool::Parts { cache_path, shards: options.shards, fixed: options.catalog.is_some() };
    let crate::pool::Composition { catalog: union, transport: chat, providers } =
        crate::pool::compose(settings, &parts, base, transports)?;
    let router = Arc::new(router(settings, state_path, union, chat)?);
    router.attach_shared();
    // The base catalog's upstream is asked nothing when no provider in force is its.
    let in_force = crate::pool::has_base(settings);
    let own = in_force.then_some(catalog as Arc<dyn Refreshed>);
    let declared = providers.catalogs.iter().map(|c| Arc::clone(c) as Arc<dyn Refreshed>);
    let catalogs = Catalogs::new(own.into_iter().chain(declared).collect());
    let key_reader = in_force.then_some(transport);
    Ok(Composed { router, catalogs, key_reader, providers })
}

/// What `--check-config` checks beyond parsing: the adapters can be built, and the
/// state file (if any) can be read. Changes nothing on disk. Returns warnings.
pub fn validate(settings: &Settings) -> Result<Vec<String>, BuildError> {
    settings.base_catalog(settings.cache_path())?;
    base_transport(settings)?;
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
    /// Starts the catalogs' refresh loops, the state writer and, when the upstream key is
    /// set and the daily limit was not configured, the look-up of the key's tier.
    pub fn spawn_background(&self, settings: &Settings) -> Background {
        Background::start(&self.router, &self.catalogs, self.key_reader.as_ref(), settings)
    }
}

impl Background {
    /// The background tasks of a process built from `router`, its `catalogs` and, when a
    /// provider's quota is its key's, its `key_reader`.
    pub fn start(
        router: &Arc<Router>,
        catalogs: &Catalogs,
        key_reader: Option<&Arc<HttpTransport>>,
        settings: &Settings,
    ) -> Background {
        // Listens to the other instances (when Redis is configured) from now on.
        router.attach_shared();
        let mut tasks = vec![spawn_persist(router.clone())];
        tasks.extend(catalogs.spawn_loops());
        // Upstream's daily count (and, when the daily limit was not configured, the key's
        // tier) is read at start, every few minutes and right after a daily-cap 429.
        if let Some(reader) = key_reader.filter(|_| settings.openrouter_api_key.is_some()) {
            let adopt_limit = !settings.per_day_explicit();
            let refresh = crate::key_watch::DEFAULT_KEY_REFRESH;
            tasks.push(tokio::spawn(crate::key_watch::watch(router.clone(), reader.clone(), adopt_limit, refresh)));
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

impl Composed {
    /// One reading of the OpenRouter key, for a short-lived process (the CLI): upstream's
    /// daily count reconciled with the local one and, when `per_day` was not configured,
    /// the daily limit of the key's tier (1,000 instead of 50 for a key off the free tier).
    /// Nothing is asked when OpenRouter is not one of the providers.
    pub async fn adopt_key_tier(&self, settings: &Settings) {
        let Some(reader) = &self.key_reader else { return };
        if let Err(e) = crate::key_watch::sync_once(&self.router, reader, !settings.per_day_explicit()).await {
            tracing::warn!(error = %e, "cannot read the upstream key; keeping the configured daily limit");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{ProviderKind, ProviderSettings};
    use crate::value::Seconds;

    /// What a binary passes (the CLI's `--cache-path` and `--state-path`) and what the
    /// settings say reach every catalog the one build makes.
    #[test]
    fn the_settings_and_options_reach_every_catalog() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("temp dir");
        let local = ProviderSettings {
            local: true,
            ..ProviderSettings::new("ollama", ProviderKind::Openai, Some("http://127.0.0.1:9/v1".into()))
        };
        let openrouter = ProviderSettings::new("openrouter", ProviderKind::Openrouter, None);
        let settings = Settings {
            refresh_interval_secs: Seconds::new(7),
            providers: vec![openrouter, local],
            ..Settings::default()
        };
        let options = Options {
            cache_path: Some(dir.path().join("cache.json")),
            state_path: Some(dir.path().join("state.json")),
            ..Options::default()
        };
        std::fs::write(dir.path().join("state.json"), "not json").expect("write state");
        let c = build(&settings, &options).expect("builds without network");
        let [openrouter, ollama] = c.catalogs.list() else { panic!("every catalog in force is refreshed") };
        assert_eq!((openrouter.provider(), ollama.provider()), ("openrouter", "ollama"));
        assert_eq!(openrouter.schedule().interval, Duration::from_secs(7));
        assert_eq!(openrouter.cache_path(), options.cache_path.as_deref());
        assert_eq!(ollama.schedule().interval, Duration::from_secs(7));
        assert_eq!(ollama.cache_path(), Some(dir.path().join("catalog-ollama.json").as_path()));
        let aside = dir.path().join("state.json.unreadable");
        assert!(aside.exists(), "the state read (and, unreadable, set aside) where the options say");
    }

    /// A fixed catalog (the CLI's `--catalog-file`) is routed over alone.
    #[test]
    fn a_fixed_catalog_is_the_router_s() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let model = router_core::ModelInfo::new("a/one:free");
        let snap =
            CatalogSnapshot::new(vec![model], router_core::CatalogSource::Memory, router_core::Timestamp::default());
        let dir = tempfile::tempdir().expect("temp dir");
        let options = Options {
            catalog: Some(Arc::new(snap)),
            cache_path: Some(dir.path().join("cache.json")),
            state_path: Some(dir.path().join("state.json")),
            ..Options::default()
        };
        let c = build(&Settings::default(), &options).expect("builds");
        let ids: Vec<String> = c.router.catalog().models().map(|m| m.id.to_string()).collect();
        assert_eq!(ids, ["a/one:free"]);
    }
}
