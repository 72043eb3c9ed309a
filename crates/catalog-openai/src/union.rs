//! The union catalog: OpenRouter's snapshot (when OpenRouter is a provider) and every
//! declared provider's list, as one snapshot behind the core's `Catalog` port. It is
//! rebuilt only when a part changed; reading it is a pointer comparison per part.

use crate::catalog::{OpenAiCatalog, ProviderModels};
use router_core::{Catalog, CatalogSnapshot, ModelInfo, Timestamp};
use std::collections::HashSet;
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
        let union = Arc::new(build(base_snap.as_deref(), &parts));
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
        let union = Arc::new(build(base.as_deref(), &parts));
        *built = Built { base, parts, union: Arc::clone(&union) };
        union
    }
}

/// One snapshot of every provider's models. An OpenRouter model whose id is also a
/// declared provider's exposed id gives way to the declared one, so that an id names
/// one provider (requests go by each entry's provenance, never by the id's prefix).
fn build(base: Option<&CatalogSnapshot>, parts: &[Arc<ProviderModels>]) -> CatalogSnapshot {
    let exposed: HashSet<&str> = parts.iter().flat_map(|p| p.models.iter().map(|m| m.id.as_str())).collect();
    let mut models: Vec<ModelInfo> = Vec::new();
    if let Some(b) = base {
        models.extend(b.models().filter(|m| !exposed.contains(m.id.as_str())).cloned());
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

#[cfg(test)]
mod tests {
    use super::*;
    use router_core::{Billing, CatalogSource, Provenance};

    fn free_or(id: &str) -> ModelInfo {
        let mut m = ModelInfo::new(id);
        m.pricing.0.insert("prompt".into(), "0".into());
        m
    }

    #[test]
    fn a_provider_named_like_a_vendor_shadows_only_the_same_ids() {
        let base = CatalogSnapshot::new(
            vec![free_or("qwen/qwen3-coder:free"), free_or("qwen/qwen3-8b:free")],
            CatalogSource::Memory,
            Timestamp::from_secs(1),
        );
        let mut local = ModelInfo::new("qwen/qwen3-8b:free");
        local.provider =
            Some(Provenance { provider: "qwen".into(), upstream_id: "qwen3-8b:free".into(), billing: Billing::Local });
        let part = Arc::new(ProviderModels {
            models: vec![local],
            fetched_at: Timestamp::from_secs(2),
            source: CatalogSource::Memory,
        });
        let union = build(Some(&base), &[part]);
        let ids: Vec<(&str, &str)> = union.models().map(|m| (m.id.as_str(), m.provider_name())).collect();
        assert_eq!(ids, [("qwen/qwen3-8b:free", "qwen"), ("qwen/qwen3-coder:free", "openrouter")]);
        assert_eq!(union.fetched_at(), Timestamp::from_secs(2));
    }
}
