//! The router of a command, composed by `router_settings::build` as the server's is,
//! over a catalog from a file the user names, or live with the disk cache and the
//! embedded catalog as fallbacks, saying which one is shown.

use crate::output::Spinner;
use anyhow::{Context, Result};
use router_core::{CatalogSnapshot, CatalogSource, Clock, Secret, Timestamp};
use router_settings::refreshes::{Failed, Outcome, Refreshed};
use router_settings::{Composed, Options, SystemClock};
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
    let parsed = router_settings::adapters::parse_models(&bytes)
        .with_context(|| format!("{} is not a /models response", path.display()))?;
    let fetched_at = std::fs::metadata(path).and_then(|m| m.modified()).map(timestamp).unwrap_or_default();
    let source = CatalogSource::File { path: path.display().to_string() };
    Ok(Arc::new(CatalogSnapshot::new(parsed.models, source, fetched_at).with_skipped(parsed.skipped)))
}

fn timestamp(t: SystemTime) -> Timestamp {
    let ms = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    Timestamp::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// The adapters and the router of a command, from the settings as the server builds
/// them, over the named catalog file (alone) when there is one. Nothing is fetched yet.
pub(crate) fn compose(env: &Env, file: Option<&Path>) -> Result<Composed> {
    let options = Options {
        state_path: Some(env.state_path.clone()),
        cache_path: Some(env.cache_path.clone()),
        catalog: file.map(from_file).transpose()?,
        ..Options::default()
    };
    router_settings::build(&env.settings, &options).with_context(|| {
        format!(
            "cannot set up the router (the router state is at {}: delete the file to start afresh, or pass --state-path)",
            env.state_path.display()
        )
    })
}

/// The composed router for a command with its catalogs refreshed as `fetch` says (not
/// when a file was named). Returns it and, when a fallback is shown because a fetch
/// failed, why.
pub(crate) async fn load(env: &Env, file: Option<&Path>, fetch: Fetch) -> Result<(Composed, Option<String>)> {
    let composed = compose(env, file)?;
    let note = match file {
        Some(_) => None,
        None => refresh(env, &composed, fetch).await,
    };
    Ok((composed, note))
}

/// Fetches every catalog in force as `fetch` says (a disk cache younger than its bound
/// is kept); the note names each provider whose catalog could not be fetched or cached,
/// and what is shown instead.
pub(crate) async fn refresh(env: &Env, composed: &Composed, fetch: Fetch) -> Option<String> {
    let mut notes = Vec::new();
    for catalog in composed.catalogs.list() {
        if due(env, catalog.as_ref(), fetch) {
            notes.extend(refresh_one(catalog.as_ref()).await);
        }
    }
    notes.into_iter().reduce(|a, b| format!("{a}; {b}"))
}

/// Whether `catalog` is fetched now: as `fetch` says, unless its list is from a disk
/// cache younger than the bound.
fn due(env: &Env, catalog: &dyn Refreshed, fetch: Fetch) -> bool {
    match fetch {
        Fetch::Never => false,
        Fetch::Always => true,
        Fetch::IfOlderThan(max) => {
            let (source, fetched_at) = catalog.origin();
            let cached = matches!(source, CatalogSource::DiskCache { .. });
            !(cached && env.clock().now().saturating_since(fetched_at) < max)
        }
    }
}

/// One catalog fetched now; the note says what could not be fetched or cached.
async fn refresh_one(catalog: &dyn Refreshed) -> Option<String> {
    let result = fetched(catalog).await;
    let provider = catalog.provider();
    match result {
        Ok(outcome) => {
            outcome.cache_error.map(|e| format!("the catalog of `{provider}` was fetched but not cached: {e}"))
        }
        Err(e) => Some(format!(
            "could not fetch the live catalog of `{provider}` from {} ({e}); showing {}",
            catalog.models_url(),
            shown(catalog)
        )),
    }
}

/// One refresh of `catalog`, with a spinner while it lasts.
pub(crate) async fn fetched(catalog: &dyn Refreshed) -> Result<Outcome, Failed> {
    let _spinner = Spinner::start(format!("fetching the catalog from {}", catalog.models_url()));
    catalog.refresh_once().await
}

/// What a catalog whose fetch failed shows instead: its list's source, or nothing.
fn shown(catalog: &dyn Refreshed) -> String {
    match catalog.refreshes().0 {
        0 => "none of its models".to_owned(),
        _ => format!("the {}", catalog.origin().0),
    }
}
