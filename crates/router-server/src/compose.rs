//! Composition: the adapters and the router built from a [`Config`], and the
//! background tasks (catalog refresh, state persistence, the key's tier).

use crate::config::Config;
use crate::shard::ShardedTransport;
use crate::state::AppState;
use catalog_openrouter::{CatalogConfig, CatalogError, FileStateStore, OpenRouterCatalog, SystemClock};
use router_core::{
    ChatTransport, Clock, HealthPolicy, Ports, QuotaPolicy, Router, RouterConfig, StateStore, StoreError,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use transport_http::{HttpTransport, TransportConfig, TransportInitError};

/// How long a catalog fetch may take, from connecting to the last byte.
const CATALOG_FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// How often changed resilience state is written to disk.
const PERSIST_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("catalog: {0}")]
    Catalog(#[from] CatalogError),
    #[error("transport: {0}")]
    Transport(#[from] TransportInitError),
    #[error("{0}")]
    State(#[from] StoreError),
}

/// Everything a running server is made of.
#[derive(Clone, Debug)]
pub struct Server {
    pub state: AppState,
    pub router: Arc<Router>,
    pub catalog: Arc<OpenRouterCatalog>,
    pub transport: Arc<HttpTransport>,
}

fn catalog(config: &Config, clock: Arc<dyn Clock>) -> Result<OpenRouterCatalog, CatalogError> {
    OpenRouterCatalog::new(
        CatalogConfig {
            base_url: config.openrouter_base_url.clone(),
            api_key: config.openrouter_api_key.clone(),
            refresh_interval: config.refresh_interval,
            cache_path: config.cache_path(),
            fetch_timeout: CATALOG_FETCH_TIMEOUT,
        },
        clock,
    )
}

fn transport(config: &Config) -> Result<HttpTransport, TransportInitError> {
    HttpTransport::new(TransportConfig {
        base_url: config.openrouter_base_url.clone(),
        api_key: config.openrouter_api_key.clone(),
        referer: config.http_referer.clone(),
        title: config.x_title.clone(),
        connect_timeout: config.connect_timeout,
        first_byte_timeout: config.first_byte_timeout,
        idle_timeout: config.idle_timeout,
        request_timeout: config.request_timeout,
    })
}

/// What `--check-config` checks beyond parsing: the adapters can be built, and the
/// state file (if any) can be read. Changes nothing on disk. Returns warnings.
pub fn validate(config: &Config) -> Result<Vec<String>, BuildError> {
    catalog(config, Arc::new(SystemClock))?;
    transport(config)?;
    let mut warnings = Vec::new();
    match config.state_path() {
        Some(path) => {
            if let Err(e) = FileStateStore::new(path).load() {
                warnings.push(format!("{e}; the server would set it aside and start afresh"));
            }
        }
        None => warnings.push("no data directory: cooldowns and quota counts would not survive a restart".into()),
    }
    Ok(warnings)
}

/// Builds the adapters and the router. No network call: the catalog starts from the
/// disk cache or the embedded snapshot.
pub fn build(config: &Config) -> Result<Server, BuildError> {
    build_sharded(config, 1)
}

/// [`build`] for `shards` single-threaded runtimes (see [`crate::shard`]): one upstream
/// connection pool per shard, each request using its own thread's.
pub fn build_sharded(config: &Config, shards: usize) -> Result<Server, BuildError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let catalog = Arc::new(catalog(config, clock.clone())?);
    let transport = Arc::new(transport(config)?);
    let chat: Arc<dyn ChatTransport> = if shards > 1 {
        let more = (1..shards).map(|_| self::transport(config).map(Arc::new)).collect::<Result<Vec<_>, _>>()?;
        Arc::new(ShardedTransport::new(transport.clone(), more))
    } else {
        transport.clone()
    };
    let store: Option<Arc<dyn StateStore>> = match config.state_path() {
        Some(path) => Some(Arc::new(FileStateStore::new(path))),
        None => {
            tracing::warn!("no data directory: cooldowns and quota counts will not survive a restart");
            None
        }
    };
    let ports = Ports { catalog: catalog.clone(), transport: chat, clock, store };
    let router_config = RouterConfig {
        max_attempts: config.max_attempts,
        deadline: config.deadline,
        health: HealthPolicy::default(),
        quota: QuotaPolicy { per_minute: config.per_minute, per_day: config.per_day },
    };
    let router = match Router::new(ports.clone(), router_config.clone()) {
        Ok(r) => r,
        Err(e) => {
            // An unreadable state file must not keep the server down; keep it for
            // inspection and start afresh, loudly.
            let Some(path) = config.state_path() else { return Err(e.into()) };
            let aside = set_aside(&path)?;
            tracing::warn!(error = %e, moved_to = %aside, "resilience state unreadable; starting afresh");
            Router::new(ports, router_config)?
        }
    };
    let router = Arc::new(router);
    let state = AppState::new(router.clone())
        .with_catalog(catalog.clone())
        .with_client_keys(config.api_keys.clone())
        .with_seed(config.seed)
        .with_max_body_size(config.max_body_size);
    Ok(Server { state, router, catalog, transport })
}

fn set_aside(path: &Path) -> Result<String, StoreError> {
    let aside = path.with_extension("json.unreadable");
    std::fs::rename(path, &aside).map_err(|e| StoreError(format!("cannot move {} aside: {e}", path.display())))?;
    Ok(aside.display().to_string())
}

/// The background tasks of a running server; they stop when dropped or aborted.
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

impl Server {
    /// Starts the catalog refresh loop, the state writer and, when the upstream key is
    /// set and the daily limit was not configured, the look-up of the key's tier.
    pub fn spawn_background(&self, config: &Config) -> Background {
        let mut tasks = vec![self.catalog.spawn_refresh_loop(), spawn_persist(self.router.clone())];
        if config.openrouter_api_key.is_some() && !config.per_day_explicit {
            tasks.push(tokio::spawn(adopt_key_tier(self.router.clone(), self.transport.clone())));
        }
        Background { tasks }
    }
}

/// Writes the resilience state when it changed, every second; logs a failure once
/// until it recovers rather than every second.
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

/// A key that is not on the free tier may send 1,000 free requests a day instead of 50.
async fn adopt_key_tier(router: Arc<Router>, transport: Arc<HttpTransport>) {
    match transport.key_info().await {
        Ok(info) => {
            let per_day = info.daily_free_requests();
            let policy = router.quota_policy();
            if policy.per_day.is_some() && policy.per_day != Some(per_day) {
                router.set_quota_limits(policy.per_minute, Some(per_day));
            }
            tracing::info!(free_tier = info.is_free_tier, per_day, "upstream key checked");
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the upstream key's tier; keeping the configured daily limit");
        }
    }
}
