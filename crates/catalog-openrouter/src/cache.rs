//! The disk cache: the last good live snapshot, saved after each successful refresh and
//! loaded at start, so that a restart without network still routes among the models
//! seen last. The format is the project's own.

use router_core::{CatalogSnapshot, CatalogSource, ModelInfo, Timestamp};
use serde::{Deserialize, Serialize};
use state_file::atomic_write;
use std::path::{Path, PathBuf};

pub const CACHE_FORMAT: u32 = 1;

/// `{"format":1,"fetched_at":<ms>,"source_url":"...","skipped":0,"models":[...]}`.
#[derive(Debug, Serialize, Deserialize)]
struct CacheFile {
    format: u32,
    /// When the data was fetched, kept so that a loaded cache shows its true age.
    fetched_at: Timestamp,
    /// The `/models` URL it came from; a cache from another upstream is not used.
    source_url: String,
    #[serde(default)]
    skipped: usize,
    models: Vec<ModelInfo>,
}

/// `<cache dir>/free-models-router/catalog.json`, when the platform has a cache directory.
pub fn default_cache_path() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("free-models-router").join("catalog.json"))
}

pub(crate) fn save(path: &Path, snapshot: &CatalogSnapshot, source_url: &str) -> Result<(), String> {
    let file = CacheFile {
        format: CACHE_FORMAT,
        fetched_at: snapshot.fetched_at(),
        source_url: source_url.to_owned(),
        skipped: snapshot.skipped(),
        models: snapshot.models().cloned().collect(),
    };
    let bytes = serde_json::to_vec(&file).map_err(|e| format!("cannot serialise the catalog cache: {e}"))?;
    atomic_write(path, &bytes).map_err(|e| format!("cannot write the catalog cache {}: {e}", path.display()))
}

/// The cached snapshot, or why it cannot be used (`Ok(None)` when there is no file).
pub(crate) fn load(path: &Path, expected_url: &str) -> Result<Option<CatalogSnapshot>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let file: CacheFile =
        serde_json::from_slice(&bytes).map_err(|e| format!("cannot parse {}: {e}", path.display()))?;
    if file.format != CACHE_FORMAT {
        return Err(format!("{} has format {}, not {CACHE_FORMAT}", path.display(), file.format));
    }
    if file.source_url != expected_url {
        return Err(format!("{} holds the catalog of {}, not {expected_url}", path.display(), file.source_url));
    }
    if file.models.is_empty() {
        return Err(format!("{} holds no models", path.display()));
    }
    let source = CatalogSource::DiskCache { path: path.display().to_string() };
    Ok(Some(CatalogSnapshot::new(file.models, source, file.fetched_at).with_skipped(file.skipped)))
}
