//! The union catalog: OpenRouter's snapshot (when OpenRouter is a provider) and every
//! declared provider's list, as one snapshot behind the core's `Catalog` port. It is
//! rebuilt only when a part changed; reading it is a pointer comparison per part.

use crate::catalog::{OpenAiCatalog, ProviderModels};
use router_core::{Catalog, CatalogSnapshot, ModelInfo, Timestamp};
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

pub struct UnionCatalog {
    /// OpenRouter's catalog, when OpenRouter is one of the providers.
    base: Option<Arc<dyn Catalog>>,
    providers: Vec<Arc<OpenAiCatalog>>,
    built: RwLock<Built>,
}

struct Built {
    base: Option<Arc<CatalogSnapshot>>,
    parts: Vec<Arc<ProviderModels>>,
    union: Arc<CatalogSnapshot>,
}

impl fmt::Debug for UnionCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnionCatalog")
            .field("openrouter", &self.base.is_some())
            .field("providers", &self.providers.iter().map(|p| p.name()).collect::<Vec<_>>())
            .finish()
    }
}

impl UnionCatalog {
    pub fn new(base: Option<Arc<dyn Catalog>>, providers: Vec<Arc<OpenAiCatalog>>) -> Self {
        let base_snap = base.as_ref().map(|b| b.snapshot());
        let parts: Vec<Arc<ProviderModels>> = providers.iter().map(|p| p.models()).collect();
        let names: Vec<&str> = providers.iter().map(|p| p.name()).collect();
        let union = Arc::new(build(base_snap.as_deref(), &parts, &names));
        UnionCatalog { base, providers, built: RwLock::new(Built { base: base_snap, parts, union }) }
    }

    pub fn providers(&self) -> &[Arc<OpenAiCatalog>] {
        &self.providers
    }
}

impl Catalog for UnionCatalog {
    fn snapshot(&self) -> Arc<CatalogSnapshot> {
        let base = self.base.as_ref().map(|b| b.snapshot());
        let fresh = |built: &Built| {
            let same_base = match (&base, &built.base) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            same_base && self.providers.iter().zip(&built.parts).all(|(p, part)| Arc::ptr_eq(&p.models(), part))
        };
        {
            let built = self.built.read().unwrap_or_else(PoisonError::into_inner);
            if fresh(&built) {
                return Arc::clone(&built.union);
            }
        }
        let mut built = self.built.write().unwrap_or_else(PoisonError::into_inner);
        if fresh(&built) {
            return Arc::clone(&built.union);
        }
        let parts: Vec<Arc<ProviderModels>> = self.providers.iter().map(|p| p.models()).collect();
        let names: Vec<&str> = self.providers.iter().map(|p| p.name()).collect();
        let union = Arc::new(build(base.as_deref(), &parts, &names));
        *built = Built { base, parts, union: Arc::clone(&union) };
        union
    }
}

/// One snapshot of every provider's models. An OpenRouter id that reads like a declared
/// provider's (`<provider>/...`) is left out, so that an exposed id names one provider.
fn build(base: Option<&CatalogSnapshot>, parts: &[Arc<ProviderModels>], names: &[&str]) -> CatalogSnapshot {
    let declared = |m: &ModelInfo| m.id.as_str().split_once('/').is_some_and(|(p, _)| names.contains(&p));
    let mut models: Vec<ModelInfo> = Vec::new();
    if let Some(b) = base {
        models.extend(b.models().filter(|m| !declared(m)).cloned());
    }
    for part in parts {
        models.extend(part.models.iter().cloned());
    }
    let fetched_at = base
        .map(CatalogSnapshot::fetched_at)
        .into_iter()
        .chain(parts.iter().filter(|p| !p.models.is_empty()).map(|p| p.fetched_at))
        .max()
        .unwrap_or(Timestamp::default());
    let source = match (base, parts.iter().find(|p| !p.models.is_empty())) {
        (Some(b), _) => b.source().clone(),
        (None, Some(p)) => p.source.clone(),
        (None, None) => router_core::CatalogSource::Memory,
    };
    let skipped = base.map_or(0, CatalogSnapshot::skipped);
    CatalogSnapshot::new(models, source, fetched_at).with_skipped(skipped)
}
