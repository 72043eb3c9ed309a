//! Getting a catalog: from a file the user names, or live with the disk cache and the
//! embedded catalog as fallbacks, saying which one is shown.

use crate::output::Spinner;
use anyhow::{Context, Result};
use catalog_openrouter::{CatalogConfig, OpenRouterCatalog};
use router_core::{Catalog, CatalogSnapshot, CatalogSource, Clock, Secret, Timestamp};
use router_settings::SystemClock;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What every command knows about its surroundings.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    /// The shared settings (file, environment, flags), as the server reads them.
    pub settings: router_settings::Settings,
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub cache_path: PathBuf,
    pub state_path: PathBuf,
}

impl Env {
    pub(crate) fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(SystemClock)
    }

    pub(crate) fn catalog_config(&self) -> CatalogConfig {
        CatalogConfig {
            base_url: self.base_url.clone(),
            api_key: self.api_key.clone(),
            refresh_interval: Duration::from_secs(3_600),
            cache_path: Some(self.cache_path.clone()),
            fetch_timeout: Duration::from_secs(30),
            ..CatalogConfig::default()
        }
    }
}

/// When to fetch the live catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fetch {
    /// Never: disk cache, else embedded.
    Never,
    /// Unless the disk cache is younger than this.
    IfOlderThan(Duration),
    Always,
}

/// Reads a saved `/models` response (`{"data":[...]}` or a bare array). Its age is the
/// file's modification time.
pub(crate) fn from_file(path: &Path) -> Result<Arc<CatalogSnapshot>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read catalog file {}", path.display()))?;
    let parsed = catalog_openrouter::parse_models(&bytes)
        .with_context(|| format!("{} is not a /models response", path.display()))?;
    let fetched_at = std::fs::metadata(path).and_then(|m| m.modified()).map(timestamp).unwrap_or_default();
    let source = CatalogSource::File { path: path.display().to_string() };
    Ok(Arc::new(CatalogSnapshot::new(parsed.models, source, fetched_at).with_skipped(parsed.skipped)))
}

fn timestamp(t: SystemTime) -> Timestamp {
    let ms = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    Timestamp::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// The catalog for a command: the named file, or the live one with fallbacks. Returns
/// the snapshot and, when a fallback is shown because a fetch failed, why.
pub(crate) async fn load(
    env: &Env,
    file: Option<&Path>,
    fetch: Fetch,
) -> Result<(Arc<CatalogSnapshot>, Option<String>)> {
    if let Some(path) = file {
        return Ok((from_file(path)?, None));
    }
    let clock = env.clock();
    let catalog = open(env)?;
    let current = catalog.snapshot();
    let fresh_enough = |max: Duration| {
        matches!(current.source(), CatalogSource::DiskCache { .. })
            && clock.now().saturating_since(current.fetched_at()) < max
    };
    let go = match fetch {
        Fetch::Never => false,
        Fetch::IfOlderThan(max) => !fresh_enough(max),
        Fetch::Always => true,
    };
    // OpenRouter is asked nothing when it is not one of the providers.
    let openrouter = router_settings::pool::has_openrouter(&env.settings);
    let go = go && openrouter;
    let mut note = None;
    if go {
        let result = {
            let _spinner = Spinner::start(format!("fetching the catalog from {}", env.base_url));
            catalog.refresh().await
        };
        if let Ok(outcome) = &result
            && let Some(e) = &outcome.cache_error
        {
            note = Some(format!("the catalog was fetched but not cached: {e}"));
        }
        if let Err(e) = result {
            let shown = catalog.snapshot();
            note = Some(format!(
                "could not fetch the live catalog from {}/models ({e}); showing the {}",
                env.base_url.trim_end_matches('/'),
                shown.source()
            ));
        }
    }
    // The declared providers' models beside OpenRouter's, each refreshed when the
    // OpenRouter catalog would be (offline: from their disk caches).
    let refresh = !matches!(fetch, Fetch::Never);
    let (snap, notes) = router_settings::pool::union_snapshot(&env.settings, catalog.snapshot(), refresh).await;
    let note = note.into_iter().chain(notes).reduce(|a, b| format!("{a}; {b}"));
    Ok((snap, note))
}

/// The catalog adapter: the disk cache or the embedded catalog, nothing fetched yet.
pub(crate) fn open(env: &Env) -> Result<OpenRouterCatalog> {
    OpenRouterCatalog::new(env.catalog_config(), env.clock()).context("cannot set up the catalog")
}
