//! `OpenRouterCatalog`: the core's `Catalog` port over OpenRouter's `GET /models`.
//!
//! Readers take the current `Arc<CatalogSnapshot>` under a lock held for one pointer
//! copy, so a request never waits for a fetch. A refresh builds the next snapshot aside
//! and swaps it in only when it is good; anything else keeps the last good one.

use crate::cache;
use crate::embedded::embedded_snapshot;
use crate::error::CatalogError;
use crate::parse::parse_models;
use catalog_refresh::{Counters as Refreshes, Failed, Refresh, Refreshed, Schedule};
use router_core::{Catalog, CatalogSnapshot, CatalogSource, CatalogStats, Clock, ModelInfo, Secret, Timestamp};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

pub const DEFAULT_BASE_URL: &str = "https://openrouter.ai/api/v1";
/// Time between background refreshes of the catalog, by default.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(600);
/// How long one fetch of `/models` may take, from connecting to the last byte.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// A `/models` body larger than this is refused rather than buffered (the real one is
/// about 1 MB).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// First retry delay after a failed background refresh; doubles up to the interval, so
/// that a machine that starts before its network catches up within a minute.
const RETRY_BASE: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct CatalogConfig {
    /// The API root; `/models` is appended.
    pub base_url: String,
    /// Sent as `Authorization: Bearer` when set. `/models` also answers without one.
    pub api_key: Option<Secret>,
    pub refresh_interval: Duration,
    /// Where the last good snapshot is kept; `None` disables the disk cache.
    pub cache_path: Option<PathBuf>,
    /// The whole fetch, from connecting to the last byte.
    pub fetch_timeout: Duration,
    /// Certificates trusted beside the system's (the `extra_ca_cert` setting).
    pub extra_roots: Vec<reqwest::Certificate>,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key: None,
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            cache_path: cache::default_cache_path(),
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            extra_roots: Vec::new(),
        }
    }
}

impl CatalogConfig {
    pub fn models_url(&self) -> String {
        format!("{}/models", self.base_url.trim_end_matches('/'))
    }

    /// OpenRouter's list of embedding models, apart from the chat models' `/models`.
    pub fn embeddings_url(&self) -> String {
        format!("{}/embeddings/models", self.base_url.trim_end_matches('/'))
    }
}

/// What a successful refresh changed: the refresh engine's outcome, as every catalog
/// reports it.
pub use catalog_refresh::Outcome as RefreshOutcome;

/// The adapter's counters plus the current snapshot's, for `/readyz`, `/metrics` and the CLI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CatalogAdapterStats {
    pub refreshes_ok: u64,
    pub refreshes_failed: u64,
    /// The last refresh error, if the last refresh failed (never contains the key).
    pub last_error: Option<String>,
    pub last_attempt_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    /// Malformed entries in the last body that parsed (whether or not it was kept).
    pub last_fetch_skipped: Option<usize>,
    pub catalog: CatalogStats,
}

/// The refreshes' counters (the engine's) and what only this catalog counts.
#[derive(Default)]
struct Counters {
    refreshes: Refreshes,
    last_fetch_skipped: Option<usize>,
}

pub struct OpenRouterCatalog {
    config: CatalogConfig,
    models_url: String,
    embeddings_url: String,
    clock: Arc<dyn Clock>,
    client: reqwest::Client,
    current: RwLock<Arc<CatalogSnapshot>>,
    /// One refresh at a time, so that swaps and cache writes happen in fetch order.
    refresh_lock: tokio::sync::Mutex<()>,
    counters: Mutex<Counters>,
}

impl fmt::Debug for OpenRouterCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenRouterCatalog")
            .field("config", &self.config)
            .field("source", self.snapshot().source())
            .finish_non_exhaustive()
    }
}

impl Catalog for OpenRouterCatalog {
    fn snapshot(&self) -> Arc<CatalogSnapshot> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

#[async_trait::async_trait]
impl Refresh for OpenRouterCatalog {
    async fn refresh_once(&self) -> Result<RefreshOutcome, Failed> {
        self.refresh().await.map_err(|e| Failed(self.redacted(&e)))
    }
}

impl Refreshed for OpenRouterCatalog {
    fn provider(&self) -> &str {
        router_core::OPENROUTER_PROVIDER
    }

    fn models_url(&self) -> &str {
        &self.models_url
    }

    fn cache_path(&self) -> Option<&Path> {
        self.config.cache_path.as_deref()
    }

    fn origin(&self) -> (CatalogSource, Timestamp) {
        let snap = self.snapshot();
        (snap.source().clone(), snap.fetched_at())
    }

    fn schedule(&self) -> Schedule {
        Schedule { interval: self.config.refresh_interval, retry_base: RETRY_BASE }
    }

    fn refreshes(&self) -> (usize, Refreshes) {
        let models = self.snapshot().len();
        (models, self.counters.lock().unwrap_or_else(PoisonError::into_inner).refreshes.clone())
    }

    fn spawn_loop(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        self.spawn_refresh_loop()
    }
}

impl OpenRouterCatalog {
    /// Starts from the disk cache when it holds a valid snapshot of the same upstream,
    /// else from the embedded catalog (also when the embedded one is newer than the
    /// cache). Makes no network call.
    pub fn new(config: CatalogConfig, clock: Arc<dyn Clock>) -> Result<Self, CatalogError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(config.fetch_timeout)
            .connect_timeout(config.fetch_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("free-models-router/", env!("CARGO_PKG_VERSION")))
            .tls_certs_merge(config.extra_roots.iter().cloned())
            .build()
            .map_err(|e| CatalogError::Client(error_chain(&e)))?;
        let models_url = config.models_url();
        let initial = initial_snapshot(&config, &models_url);
        let stats = initial.stats(clock.now());
        tracing::info!(source = %stats.source, models = stats.models, free_models = stats.free_models, "catalog loaded");
        Ok(OpenRouterCatalog {
            embeddings_url: config.embeddings_url(),
            config,
            models_url,
            clock,
            client,
            current: RwLock::new(Arc::new(initial)),
            refresh_lock: tokio::sync::Mutex::new(()),
            counters: Mutex::new(Counters::default()),
        })
    }

    pub fn config(&self) -> &CatalogConfig {
        &self.config
    }

    pub fn models_url(&self) -> &str {
        &self.models_url
    }

    /// Fetches the catalog and swaps it in when it is good, then saves it to the disk
    /// cache. On any failure the current snapshot stays; the failure is logged and counted.
    pub async fn refresh(&self) -> Result<RefreshOutcome, CatalogError> {
        let _one_at_a_time = self.refresh_lock.lock().await;
        let started = self.clock.now();
        let result = self.fetch_and_swap().await;
        let mut c = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        match &result {
            Ok(outcome) => {
                c.refreshes.record(started, Ok(()));
                tracing::info!(
                    url = %router_core::redact(&self.models_url, &[]),
                    models = outcome.models,
                    free_models = outcome.free_models,
                    skipped = outcome.skipped,
                    added = outcome.added.len(),
                    removed = outcome.removed.len(),
                    "catalog refreshed"
                );
            }
            Err(e) => {
                let error = self.redacted(e);
                let url = router_core::redact(&self.models_url, &[]);
                tracing::warn!(%url, %error, "catalog refresh failed; keeping the current snapshot");
                c.refreshes.record(started, Err(error));
            }
        }
        result
    }

    /// An upstream or a proxy may echo the key, and a URL may hold a password: an error
    /// is redacted before it is kept, shown or logged.
    fn redacted(&self, e: &CatalogError) -> String {
        let keys: Vec<&Secret> = self.config.api_key.iter().collect();
        router_core::redact(&e.to_string(), &keys)
    }

    async fn fetch_and_swap(&self) -> Result<RefreshOutcome, CatalogError> {
        let body = self.fetch(&self.models_url).await?;
        let mut parsed = parse_models(&body)?;
        let embeddings = self.embedding_models(&self.snapshot()).await;
        parsed.models.extend(embeddings);
        self.counters.lock().unwrap_or_else(PoisonError::into_inner).last_fetch_skipped = Some(parsed.skipped);
        let now = self.clock.now();
        let next = CatalogSnapshot::new(parsed.models, CatalogSource::Live { url: self.models_url.clone() }, now)
            .with_skipped(parsed.skipped);
        let previous = self.snapshot();
        let free_models = next.free_models(now).count();
        let previous_free = previous.free_models(now).count();
        if free_models == 0 && previous_free > 0 {
            return Err(CatalogError::NoFreeModels { previous: previous_free });
        }
        let (added, removed) = RefreshOutcome::changed(previous.ids(), next.ids());
        let outcome = RefreshOutcome {
            models: next.len(),
            free_models,
            skipped: next.skipped(),
            added,
            removed,
            cache_error: None,
        };
        let next = Arc::new(next);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&next);
        let cache_error = match &self.config.cache_path {
            Some(path) => self.save_cache(path.clone(), next).await.err(),
            None => None,
        };
        if let Some(e) = &cache_error {
            tracing::warn!(error = %e, "catalog cache not saved");
        }
        Ok(RefreshOutcome { cache_error, ..outcome })
    }

    async fn save_cache(&self, path: PathBuf, snapshot: Arc<CatalogSnapshot>) -> Result<(), String> {
        let url = self.models_url.clone();
        tokio::task::spawn_blocking(move || cache::save(&path, &snapshot, &url))
            .await
            .map_err(|e| format!("catalog cache writer stopped: {e}"))?
    }

    /// OpenRouter's embedding models (`GET /embeddings/models`), each marked as one so
    /// that no chat request is routed to it; when that list cannot be read, the previous
    /// snapshot's (a hiccup there drops none, and the chat catalog still refreshes).
    async fn embedding_models(&self, previous: &CatalogSnapshot) -> Vec<ModelInfo> {
        match self.fetch(&self.embeddings_url).await.and_then(|b| parse_models(&b)) {
            Ok(parsed) => parsed.models.into_iter().map(as_embedding_model).collect(),
            Err(e) => {
                tracing::debug!(error = %e, "embedding models not refreshed");
                let old = previous.entries().iter().map(|e| &e.info);
                old.filter(|m| m.is_embedding() && m.provider.is_none()).cloned().collect()
            }
        }
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, CatalogError> {
        let mut request = self.client.get(url).header(reqwest::header::ACCEPT, "application/json");
        if let Some(key) = self.config.api_key.as_ref().filter(|k| !k.is_empty()) {
            // reqwest marks this header sensitive, so it is never formatted.
            request = request.bearer_auth(key.expose());
        }
        let mut response = request.send().await.map_err(|e| self.fetch_error(&e))?;
        let status = response.status().as_u16();
        if status != 200 {
            let mut snippet = Vec::new();
            while snippet.len() < 300 {
                match response.chunk().await {
                    Ok(Some(chunk)) => snippet.extend_from_slice(&chunk),
                    _ => break,
                }
            }
            let snippet: String = String::from_utf8_lossy(&snippet).chars().take(300).collect();
            return Err(CatalogError::Status { status, snippet: snippet.trim().to_owned() });
        }
        if response.content_length().is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err(CatalogError::TooLarge { limit: MAX_BODY_BYTES });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.fetch_error(&e))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(CatalogError::TooLarge { limit: MAX_BODY_BYTES });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn fetch_error(&self, e: &reqwest::Error) -> CatalogError {
        if e.is_timeout() {
            CatalogError::Timeout(self.config.fetch_timeout)
        } else {
            CatalogError::Fetch(error_chain(e))
        }
    }

    /// Refreshes now, then every `refresh_interval` with jitter, sooner after a failure
    /// (from 30 s): the one refresh engine's loop. Stops when the catalog is dropped.
    pub fn spawn_refresh_loop(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        catalog_refresh::spawn(self, Refreshed::schedule(self.as_ref()), self.clock.now())
    }

    pub fn stats(&self) -> CatalogAdapterStats {
        let catalog = self.snapshot().stats(self.clock.now());
        let c = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let r = &c.refreshes;
        CatalogAdapterStats {
            refreshes_ok: r.refreshes_ok,
            refreshes_failed: r.refreshes_failed,
            last_error: r.last_error.clone(),
            last_attempt_at: r.last_attempt_at,
            last_success_at: r.last_success_at,
            last_fetch_skipped: c.last_fetch_skipped,
            catalog,
        }
    }
}

/// An entry of the embeddings list: its output is embeddings, never text.
fn as_embedding_model(mut m: ModelInfo) -> ModelInfo {
    m.output_modalities.retain(|o| o != "text");
    if !m.is_embedding() {
        m.output_modalities.push(router_core::model::EMBEDDINGS_MODALITY.to_owned());
    }
    m
}

fn initial_snapshot(config: &CatalogConfig, models_url: &str) -> CatalogSnapshot {
    let embedded = embedded_snapshot();
    let Some(path) = &config.cache_path else { return embedded };
    match cache::load(path, models_url) {
        Ok(Some(cached)) if cached.fetched_at() >= embedded.fetched_at() => cached,
        Ok(Some(cached)) => {
            tracing::info!(cache_fetched_at = %cached.fetched_at(), "the embedded catalog is newer than the disk cache");
            embedded
        }
        Ok(None) => embedded,
        Err(e) => {
            tracing::warn!(error = %e, "catalog cache not used");
            embedded
        }
    }
}

/// An error and its causes on one line (reqwest's own message says only "error
/// sending request"; the cause says "connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This catalog's schedule (the jitter is the engine's, tested there).
    fn check(interval_secs: u64, failures: u32, expected_secs: u64) {
        let schedule = Schedule { interval: Duration::from_secs(interval_secs), retry_base: RETRY_BASE };
        assert_eq!(schedule.next_delay(failures), Duration::from_secs(expected_secs));
    }

    #[test]
    fn retries_sooner_after_failures() {
        check(600, 0, 600);
        check(600, 1, 30);
        check(600, 2, 60);
        check(600, 5, 480);
        check(600, 6, 600);
        check(600, 40, 600);
        check(10, 1, 10);
    }
}
