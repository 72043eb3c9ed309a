//! A catalog snapshot: the models known at one instant, indexed for fast filtering.

use crate::free::FreeFacts;
use crate::model::{CapSet, ModelId, ModelInfo};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Where a snapshot came from. Shown to users so that nobody mistakes an old embedded
/// catalog for live data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CatalogSource {
    /// Fetched from the upstream `/models` endpoint.
    Live {
        /// The catalog URL fetched.
        url: String,
    },
    /// Loaded from the disk cache written after an earlier live fetch.
    DiskCache {
        /// The cache file read.
        path: String,
    },
    /// Compiled into the binary; `snapshot_date` is when its data was recorded.
    Embedded {
        /// The date the data was recorded, `YYYY-MM-DD`.
        snapshot_date: String,
    },
    /// Read from a file the user named.
    File {
        /// The file read.
        path: String,
    },
    /// Built in memory (tests, embedding applications).
    Memory,
}

impl fmt::Display for CatalogSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogSource::Live { url } => write!(f, "live ({url})"),
            CatalogSource::DiskCache { path } => write!(f, "disk cache ({path})"),
            CatalogSource::Embedded { snapshot_date } => {
                write!(f, "embedded snapshot of {snapshot_date} (not live data)")
            }
            CatalogSource::File { path } => write!(f, "file ({path})"),
            CatalogSource::Memory => f.write_str("memory"),
        }
    }
}

/// One model plus what filtering needs, computed once per snapshot.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The catalog entry itself.
    pub info: ModelInfo,
    pub(crate) caps: CapSet,
    pub(crate) free: FreeFacts,
}

impl Entry {
    /// The capabilities the entry advertises, computed once when the snapshot was built.
    pub fn capabilities(&self) -> CapSet {
        self.caps
    }

    /// Whether the model is free at `now` (the full free rule, expiry included).
    pub fn is_free(&self, now: Timestamp) -> bool {
        self.free.is_free(now)
    }
}

/// An immutable set of models, sorted by id with duplicates removed, so that every
/// decision is a function of the *set* of models and never of the order upstream
/// listed them in.
#[derive(Clone, Debug)]
pub struct CatalogSnapshot {
    entries: Vec<Entry>,
    source: CatalogSource,
    fetched_at: Timestamp,
    /// Entries the adapter could not read and skipped.
    skipped: usize,
    /// The declared providers (not OpenRouter) that serve at least one model, by name.
    providers: Vec<Arc<str>>,
    /// What the hot path reads of each entry that passes the time-independent part of the
    /// free rule (the only ones that can ever be candidates, about 5% of OpenRouter's
    /// catalog, all of a declared provider's), in id order, packed so that a union of
    /// many free models filters from cache.
    hot: Vec<Hot>,
}

/// The fields [`candidates`](crate::filter::candidates) reads, one small record per
/// possibly-free entry; an unknown limit is `u64::MAX` (never binding).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hot {
    pub(crate) index: usize,
    pub(crate) caps: CapSet,
    pub(crate) context_length: u64,
    pub(crate) max_completion_tokens: u64,
    /// Milliseconds from which the model is no longer free.
    pub(crate) expires_at: u64,
}

impl CatalogSnapshot {
    /// A snapshot of `models`, sorted by id; of two entries with one id, the one that looks
    /// less free is kept.
    pub fn new(mut models: Vec<ModelInfo>, source: CatalogSource, fetched_at: Timestamp) -> Self {
        // Of two entries with one id, keep the one that looks less free: a catalog that
        // lists a model both priced and at zero must not make it free.
        models.sort_by_cached_key(|m| (m.id.clone(), FreeFacts::of(m).static_free));
        models.dedup_by(|a, b| a.id == b.id);
        let entries: Vec<Entry> = models
            .into_iter()
            .map(|info| Entry { caps: info.capabilities(), free: FreeFacts::of(&info), info })
            .collect();
        let maybe_free: Vec<usize> =
            entries.iter().enumerate().filter(|(_, e)| e.free.static_free).map(|(i, _)| i).collect();
        let mut providers: Vec<Arc<str>> =
            entries.iter().filter_map(|e| e.info.provider.as_ref().map(|p| p.provider.clone())).collect();
        providers.sort_unstable();
        providers.dedup();
        let hot = maybe_free
            .iter()
            .map(|&index: &usize| {
                let e: &Entry = &entries[index];
                Hot {
                    index,
                    caps: e.caps,
                    context_length: e.info.context_length.unwrap_or(u64::MAX),
                    max_completion_tokens: e.info.max_completion_tokens.unwrap_or(u64::MAX),
                    expires_at: e.free.expires_at.map_or(u64::MAX, Timestamp::as_millis),
                }
            })
            .collect();
        CatalogSnapshot { entries, source, fetched_at, skipped: 0, providers, hot }
    }

    /// Records how many entries the adapter could not read and skipped.
    #[must_use]
    pub fn with_skipped(mut self, skipped: usize) -> Self {
        self.skipped = skipped;
        self
    }

    /// A snapshot with no models, from [`CatalogSource::Memory`], fetched at the epoch.
    pub fn empty() -> Self {
        CatalogSnapshot::new(Vec::new(), CatalogSource::Memory, Timestamp::default())
    }

    /// Every entry, in id order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Every model, in id order.
    pub fn models(&self) -> impl ExactSizeIterator<Item = &ModelInfo> {
        self.entries.iter().map(|e| &e.info)
    }

    /// The number of models (after duplicates were removed).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the snapshot has no models.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The possibly-free entries' filtering fields, in id order.
    pub(crate) fn hot(&self) -> &[Hot] {
        &self.hot
    }

    /// The position of `id` in [`entries`](Self::entries); `None` when it is not listed.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.entries.binary_search_by(|e| e.info.id.as_str().cmp(id)).ok()
    }

    /// The entry for `id`; `None` when it is not listed.
    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.index_of(id).map(|i| &self.entries[i])
    }

    /// Where the snapshot came from.
    pub fn source(&self) -> &CatalogSource {
        &self.source
    }

    /// When the snapshot's data was fetched or loaded.
    pub fn fetched_at(&self) -> Timestamp {
        self.fetched_at
    }

    /// Entries the adapter could not read and skipped.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The models that are free at `now`, in id order.
    pub fn free_models(&self, now: Timestamp) -> impl Iterator<Item = &ModelInfo> {
        self.entries.iter().filter(move |e| e.free.is_free(now)).map(|e| &e.info)
    }

    /// Counts and provenance at `now`.
    pub fn stats(&self, now: Timestamp) -> CatalogStats {
        CatalogStats {
            models: self.entries.len(),
            free_models: self.free_models(now).count(),
            skipped: self.skipped,
            source: self.source.clone(),
            fetched_at: self.fetched_at,
            age_secs: now.saturating_since(self.fetched_at).as_secs(),
        }
    }

    /// The declared providers (not OpenRouter) serving at least one model, by name.
    pub fn providers(&self) -> &[Arc<str>] {
        &self.providers
    }

    /// Whether models from more than one provider are in the snapshot (OpenRouter's own
    /// count as one): a provider's spent quota then leaves the others to serve.
    pub fn is_union(&self) -> bool {
        match self.providers.len() {
            0 => false,
            1 => self.entries.iter().any(|e| e.info.provider.is_none()),
            _ => true,
        }
    }

    /// Every model id, in order.
    pub fn ids(&self) -> impl Iterator<Item = &ModelId> {
        self.entries.iter().map(|e| &e.info.id)
    }
}

/// Counts and provenance of a snapshot, for `/readyz`, `/metrics` and the CLI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CatalogStats {
    /// Models in the snapshot.
    pub models: usize,
    /// Models free at the time the stats were taken.
    pub free_models: usize,
    /// Entries the adapter could not read and skipped.
    pub skipped: usize,
    /// Where the snapshot came from.
    pub source: CatalogSource,
    /// When the snapshot's data was fetched or loaded.
    pub fetched_at: Timestamp,
    /// Seconds since `fetched_at`.
    pub age_secs: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_deduplicated_and_searchable() {
        let snap = CatalogSnapshot::new(
            vec![ModelInfo::new("c:free"), ModelInfo::new("a:free"), ModelInfo::new("c:free")],
            CatalogSource::Memory,
            Timestamp::default(),
        );
        let ids: Vec<&str> = snap.ids().map(ModelId::as_str).collect();
        assert_eq!(ids, ["a:free", "c:free"]);
        assert_eq!(snap.index_of("c:free"), Some(1));
        assert!(snap.get("b:free").is_none());
    }

    #[test]
    fn a_duplicate_id_keeps_the_priced_entry() {
        let mut free = ModelInfo::new("a:free");
        free.pricing.0.insert("prompt".into(), "0".into());
        let mut priced = free.clone();
        priced.pricing.0.insert("prompt".into(), "0.000001".into());
        for models in [vec![free.clone(), priced.clone()], vec![priced, free]] {
            let snap = CatalogSnapshot::new(models, CatalogSource::Memory, Timestamp::default());
            assert_eq!(snap.len(), 1);
            assert_eq!(snap.free_models(Timestamp::default()).count(), 0);
        }
    }
}
